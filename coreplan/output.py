"""Rendering for the CLI: a rich table, JSON or CSV of the same rows."""

from __future__ import annotations

import csv
import io
import json
import sys

FORMATS = ("table", "json", "csv")
WIDTH = 80  # tables are laid out for an 80-column terminal, also when printed to a file


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return "" if value is None else str(value)


def _numeric(values) -> bool:
    """A column of numbers (or numbers already formatted as text) is right-aligned."""
    present = [v for v in values if v not in (None, "")]
    return bool(present) and all(
        (isinstance(v, (int, float)) and not isinstance(v, bool))
        or (isinstance(v, str) and v[:1] in "0123456789-.<" and not v[:1].isalpha()
            and any(ch.isdigit() for ch in v) and " " not in v) for v in present)


def table(rows: list[dict], title: str | None = None, caption: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from rich import box

    # one space between columns and a rule under the header: 80-column terminals hold the tables
    t = Table(box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False, show_edge=False)
    columns = list(rows[0]) if rows else []
    for col in columns:  # a cell is never wrapped or cut: a name or "latency 25%" stays whole
        t.add_column(col, justify="right" if _numeric([r.get(col) for r in rows]) else "left",
                     no_wrap=True)
    for row in rows:
        t.add_row(*(_cell(row.get(c)) for c in columns))
    text = Console(width=_terminal())
    if title:  # above the table, wrapped at the terminal's width rather than the table's
        text.print(title, highlight=False)
    Console(width=max(_terminal(), _needed(t))).print(t)
    if caption:  # under the table, wrapped at the terminal's width rather than the table's
        text.print(caption, highlight=False)


def _terminal() -> int:
    """The terminal's width, at least WIDTH (WIDTH when output is not a terminal)."""
    import shutil

    return max(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)


def _needed(t) -> int:
    """The width a table needs with no cell wrapped or cut: a table wider than the terminal is
    printed whole (the terminal wraps the line) rather than a cell losing its end."""
    from rich.console import Console
    from rich.measure import Measurement

    probe = Console(width=10_000)
    return Measurement.get(probe, probe.options, t).maximum


PAGE_NAMES = {"ms": "latency ms", "ms 5-95%": "latency ms 5-95%", "GB": "memory GB",
              "fits": "feasible", "tightest": "tightest limit (use)", "": "chosen"}


def chosen_line(p, device) -> str:
    """What a plan chose and why, in one line: the binding limit, or that the answer is the top
    of the search (then no budget binds; the tightest limit is named with its use)."""
    from planners.planner import describe

    if p.chosen:
        what = {"cores": f"C={p.chosen.cores}" if p.chosen.cores else f"{p.model} as given",
                "resolution": f"{p.chosen.resolution} px", "batch": f"batch {p.chosen.batch}"}[p.solve]
        if p.at_search_limit:
            top = {"cores": "the largest allowed budget",
                   "resolution": "the top of the search (--max-resolution "
                                 f"{p.problem.max_resolution}); larger may fit",
                   "batch": f"the top of the search (--max-batch {p.problem.max_batch}); "
                            "larger may fit"}[p.solve]
            if not p.chosen.cores and p.solve == "cores":
                top = "a dense model has no C to choose"
            line = (f"chosen: {what}, {top}; no budget binds (tightest: "
                    f"{describe(p.chosen, p.budgets, device)})")
        else:
            line = f"chosen: {what} (binding: {describe(p.chosen, p.budgets, device)})"
    else:
        line = "chosen: none feasible"
    return line


def economics_line(e, device) -> str:
    """A fleet's (or one busy device's) rates in one line: images/s per device, energy per image
    at board power and the price per million images, each where the device has the number."""
    said = [f"{e.img_per_s_per_device:,.4g} img/s per device"
            + (f" ({e.utilisation:.0%} busy)" if e.devices > 1 or e.utilisation < 1 else "")]
    if e.joules_per_image is not None:
        said.append(f"{e.joules_per_image:.3g} J/image at the {e.board_power_w:g} W board "
                    f"power while busy")
    else:
        said.append("no energy (the device has no board_power_w)")
    if e.usd_per_million_images is not None:
        fleet = f"{e.devices:,} x " if e.devices > 1 else ""
        said.append(f"{e.usd_per_million_images:,.3g} USD per million images at {fleet}"
                    f"{e.price_per_hour_usd:g} USD/h (price_source in --format json)")
    else:
        said.append("no price (set price_per_hour_usd and price_source in a device file)")
    return "; ".join(said)


def sig3(value, digits: int = 3):
    """A table cell for a rate: `digits` significant digits, blank for None (no such number)."""
    return "" if value is None else float(f"{value:.{digits}g}")


def page_rows(rows: list[dict]) -> list[dict]:
    """Rows for a page rather than a terminal: the long column names."""
    return [{PAGE_NAMES.get(k, k): v for k, v in row.items()} for row in rows]


def plan_rows(p) -> list[dict]:
    """A plan's candidates (and its dense baseline) as the rows people read: units in the column
    names, empty cells rather than None."""
    from planners.planner import GB

    intervals = any(c.latency_ms_interval for c in p.candidates)

    def row(c, model, mark):
        out = {"model": model, "C": c.cores or "", "px": c.resolution, "batch": c.batch,
               "GFLOP": c.flops / 1e9, "ms": c.latency_ms}
        if intervals:
            low, high = c.latency_ms_interval or (None, None)
            out["ms 5-95%"] = f"{_short(low)}-{_short(high)}" if low else ""
        out.update({"GB": c.memory_bytes / GB, "img/s": c.throughput_img_per_s,
                    "fits": "yes" if c.feasible else "no",
                    "tightest": f"{c.tightest} {_share(c.usage[c.tightest])}", "": mark})
        return out

    rows = [row(c, p.model, "<-" if c == p.chosen else "") for c in p.candidates]
    if p.baseline:
        rows.append(row(p.baseline, p.baseline_model, "dense"))
    return rows


def _short(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"  # thousands as the ms column


def _share(usage: float) -> str:
    """A constraint's use of its limit: 87%, 0.3%, 125%."""
    return f"{usage:.0%}" if usage >= 0.1 else f"{usage:.1%}" if usage >= 0.001 else "<0.1%"


def html_table(rows: list[dict]) -> str:
    """The same rows as an HTML table, each cell formatted as the terminal table formats it."""
    import html

    if not rows:
        return "<p>(no rows)</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def csv_rows(rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    sys.stdout.write(buffer.getvalue())


def emit(fmt: str, *, document, rows: list[dict], title: str | None = None,
         caption: str | None = None, table_rows: list[dict] | None = None) -> None:
    """JSON prints `document`; CSV prints `rows`; the table prints `table_rows` (rows laid out
    for 80 columns: scaled units, short headers) or else `rows`."""
    if fmt == "json":
        print(json.dumps(document, indent=2, default=str))
    elif fmt == "csv":
        csv_rows(rows)
    else:
        table(table_rows if table_rows is not None else rows, title, caption)


CHART_EXTENSIONS = (".html", ".png", ".svg")


def check_new(path, force: bool) -> None:
    """One rule for every file a command writes: an existing file is replaced only with force."""
    from pathlib import Path

    from costmodel.errors import ArgumentError

    if Path(path).exists() and not force:
        raise ArgumentError("force", f"is needed to replace {path}, which exists")


def check_out(path) -> None:
    """A chart's --out: a supported extension in an existing directory, else one clear error."""
    from pathlib import Path

    from costmodel.errors import CoreplanError

    path = Path(path)
    if path.suffix.lower() not in CHART_EXTENSIONS:
        raise CoreplanError(f"--out {path}: unsupported extension {path.suffix or '(none)'!r}; use "
                            f"{', '.join(CHART_EXTENSIONS)}")
    if not path.parent.is_dir():
        raise CoreplanError(f"--out {path}: directory {path.parent} does not exist")
