"""Charts, their exports, `coreplan chart` / `report`, and the notebooks (executed headless)."""

from pathlib import Path

import pytest

from costmodel.config import configure
from costmodel.spec import get_model
from planners.devices import get_device

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "data/measurements/cpu-epyc-2core-2026-11-24.csv"


def _charts():
    from coreplan import charts

    core, dense = get_model("veca-small"), get_model("dinov3-small")
    h100 = get_device("h100-sxm")
    frame = charts.scaling_frame([core, dense], (224, 512))
    yield "scaling", charts.scaling_chart(frame, "gflops")
    yield "scaling-memory", charts.scaling_chart(frame, "memory_gb", log=False)
    yield "crossover", charts.crossover_chart(charts.crossover_frame(core, dense))
    yield "validation", charts.validation_chart(charts.validation_frame(CSV, get_device("cpu-epyc-2core")))
    c = configure(core, 512, cores=64, batch=8, dtype="bf16")
    yield "roofline", charts.roofline_chart(charts.roofline_frame(c, h100), h100, "bf16")
    yield "frontier", charts.frontier_chart(charts.frontier_frame(core, [h100, get_device("l4")],
                                                                  resolution=512, budgets_ms=[1, 10]))
    yield "elastic", charts.elastic_chart(charts.elastic_frame(core, h100, resolution=512))


def untitled_axes(spec: dict) -> list[str]:
    """Positional channels (x, y) with a field but no title of their own, in every layer: the
    axis would fall back to the raw field name (or merge it into another layer's title)."""
    missing = []
    for part in ("vconcat", "hconcat", "concat"):  # panels: each checked as a chart of its own
        for index, panel in enumerate(spec.get(part, [])):
            missing += [f"{part} {index} {m}" for m in untitled_axes(panel)]
    for index, layer in enumerate(spec.get("layer", [] if any(
            k in spec for k in ("vconcat", "hconcat", "concat")) else [spec])):
        for channel in ("x", "y"):
            enc = layer.get("encoding", {}).get(channel)
            if enc and "field" in enc and not enc.get("title") and enc.get("axis", {}) is not None:
                missing.append(f"layer {index} {channel}={enc['field']}")
    return missing


def test_every_chart_is_valid_vega_lite_with_titled_axes():
    for name, chart in _charts():
        spec = chart.to_dict()  # validates against the Vega-Lite schema
        assert "$schema" in spec, name
        assert spec.get("title"), name
        assert untitled_axes(spec) == [], name


def test_the_scaling_chart_shows_what_c_adds_on_its_own_panel():
    """On the log panel the budgets' lines lie within a few percent; the second panel plots each
    C's cost over the smallest C's at the same resolution, from zero, where they separate."""
    from coreplan import charts
    from costmodel.cost import count

    core = get_model("veca-small")
    frame = charts.scaling_frame([core, get_model("dinov3-small")], (224, 512))
    spec = charts.scaling_chart(frame, "gflops").to_dict()
    assert len(spec["vconcat"]) == 2 and untitled_axes(spec) == []
    added = charts._added_by_cores(frame, "gflops").set_index(["resolution", "cores"])["added_pct"]
    flops = {c: count(configure(core, 224, cores=c)).total for c in (8, 64)}
    assert added[(224, 64)] == pytest.approx((flops[64] / flops[8] - 1) * 100)
    assert added[(224, 8)] == 0 and added[(224, 64)] > added[(512, 64)] > 0


def test_the_axis_check_catches_an_untitled_axis():
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    bare = alt.Chart(frame, title="t").mark_line().encode(x="a:Q", y=alt.Y("b:Q", title="b (ms)"))
    assert untitled_axes(bare.to_dict()) == ["layer 0 x=a"]
    assert untitled_axes(alt.vconcat(bare, bare).to_dict()) == ["vconcat 0 layer 0 x=a",
                                                              "vconcat 1 layer 0 x=a"]


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".svg", b"<svg"), (".html", b"<!DOCTYPE")])
def test_exports_are_non_empty_files_of_the_right_type(tmp_path, suffix, magic):
    from coreplan.charts import save

    name, chart = next(iter(_charts()))
    path = save(chart, tmp_path / f"c{suffix}")
    data = path.read_bytes()
    assert data.startswith(magic) and len(data) > 1000
    if suffix == ".html":  # self-contained: the Vega scripts are inline, nothing is fetched
        assert b"vegaEmbed" in data and b"cdn.jsdelivr" not in data and b"<script src" not in data


def test_chart_command_works_as_documented(cli, tmp_path):
    out = tmp_path / "cost.png"
    code, stdout, err = cli("chart", "scaling", "--models", "veca-base,dinov3-base", "--out", str(out))
    assert code == 0, err
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("args,message", [
    (("chart", "pie", "--out", "x.png"), "unknown chart kind 'pie'"),
    (("chart", "scaling", "--out", "x.gif"), "unsupported extension '.gif'"),
    (("chart", "scaling", "--out", "/nonexistent-dir/x.png"), "does not exist"),
    (("report", "--out", "r.pdf"), "use a .html file name"),
])
def test_chart_bad_input_is_one_line_exit_2(cli, args, message):
    code, _, err = cli(*args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_report_is_one_self_contained_page(cli, tmp_path):
    out = tmp_path / "report.html"
    code, _, err = cli("report", "--models", "veca-small,dinov3-small", "--devices", "l4",
                       "--resolution", "512", "--out", str(out))
    assert code == 0, err
    text = out.read_text()
    assert text.count("vegaEmbed('#chart") >= 5 and "<table" in text
    assert "cdn.jsdelivr" not in text and "<script src" not in text
    # plan tables read as the terminal's do: no raw floats, None or NaN in any cell
    import re

    cells = re.findall(r"<td>([^<]*)</td>", text)
    assert cells and not [c for c in cells if re.search(r"e[+-]\d|None|NaN|nan", c)]
    assert "<th>latency ms</th>" in text and "<th>memory GB</th>" in text


@pytest.mark.parametrize("name", ["01_cost_model.ipynb", "02_validation.ipynb",
                                  "03_capacity_planning.ipynb"])
def test_notebook_executes(name):
    import time

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit stripped"
    start = time.perf_counter()
    # run where Jupyter runs a notebook opened from notebooks/: its own folder
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    assert time.perf_counter() - start < 60
