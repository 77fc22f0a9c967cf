"""Rendering for the CLI: a rich table, JSON or CSV of the same rows."""

from __future__ import annotations

import csv
import io
import json
import sys

FORMATS = ("table", "json", "csv")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return "" if value is None else str(value)


def table(rows: list[dict], title: str | None = None, caption: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, caption=caption, caption_justify="left")
    columns = list(rows[0]) if rows else []
    for col in columns:
        t.add_column(col, justify="left" if isinstance(rows[0][col], str) else "right")
    for row in rows:
        t.add_row(*(_cell(row.get(c)) for c in columns))
    Console(width=max(100, min(200, 12 * len(columns) + 20))).print(t)


def plan_rows(p) -> list[dict]:
    """A plan's candidates (and its dense baseline) as the rows people read: units in the column
    names, empty cells rather than None."""
    from planners.planner import GB

    def row(c, model):
        interval = (f"{c.latency_ms_interval[0]:.3g}-{c.latency_ms_interval[1]:.3g}"
                    if c.latency_ms_interval else "")
        return {"model": model, "C": c.cores or "", "px": c.resolution, "batch": c.batch,
                "GFLOP": c.flops / 1e9, "latency ms": c.latency_ms, "interval": interval,
                "memory GB": c.memory_bytes / GB, "img/s": c.throughput_img_per_s,
                "feasible": "yes" if c.feasible else "no", "binding": c.binding,
                "chosen": "<-" if c == p.chosen else ""}

    rows = [row(c, p.model) for c in p.candidates]
    if p.baseline:
        rows.append({**row(p.baseline, p.baseline_model), "chosen": "dense"})
    return rows


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
         caption: str | None = None) -> None:
    """JSON prints `document`; table and CSV print `rows`."""
    if fmt == "json":
        print(json.dumps(document, indent=2, default=str))
    elif fmt == "csv":
        csv_rows(rows)
    else:
        table(rows, title, caption)


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
