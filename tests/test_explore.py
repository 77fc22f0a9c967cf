"""`coreplan explore`: the page's numbers are `coreplan plan --format json`'s, exactly; in
headless Chromium (where installed) it opens in under 2 s, answers each control in under 100 ms,
and shows and charts what the planner says for every model and device it holds."""

import base64
import contextlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from coreplan.cli import main

DEVICE = ("[devices.x]\nsource = 'datasheet'\nmemory_bandwidth_bytes_per_s = 1e11\n"
          "memory_capacity_bytes = 4e9\npeak_flops_per_s = { fp32 = 1e13, bf16 = 4e13 }\n"
          "latency_interval = [0.8, 1.3]\n")
SIDES = (224, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 2048)  # the page's grid
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
GB = 1e9


def browser() -> str | None:
    for name in (os.environ.get("COREPLAN_BROWSER"), "chromium", "chromium-browser",
                 "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def plan_json(*args: str) -> dict:
    """`coreplan plan ... --format json`, run in this process (the command itself)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main(["plan", *args, "--format", "json"])
    assert status in (0, 3), (args, status)
    return json.loads(out.getvalue())


def explore(tmp, *args: str) -> tuple[str, str]:
    page = tmp / "planner.html"
    proc = subprocess.run([sys.executable, "-m", "coreplan.cli", "explore", "--out", str(page),
                           *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp / "cache")})
    assert proc.returncode == 0, proc.stderr
    return str(page), proc.stdout


@pytest.fixture(scope="module")
def small_page(tmp_path_factory):
    """One core model (and its dense baseline) on two catalog devices and a file's device."""
    tmp = tmp_path_factory.mktemp("explore")
    (tmp / "d.toml").write_text(DEVICE)
    page, said = explore(tmp, "--models", "veca-small", "--devices", "l4,cpu-epyc-2core",
                         "--device-file", str(tmp / "d.toml"))
    return page, said, tmp / "d.toml"


def page_data(page: str) -> dict:
    text = open(page).read()
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


def floats(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f8")


def test_page_holds_the_planners_numbers(small_page):
    page, said, device_file = small_page
    assert re.match(r".*planner\.html: \d+\.\d MB, 1 model\(s\) and their dense baselines on 3 "
                    r"device\(s\), built in", said)
    data = page_data(page)
    assert list(data["devices"]) == ["l4", "cpu-epyc-2core", "x"]  # the file's device is added
    assert data["devices"]["x"]["dtypes"] == ["fp32", "bf16"]
    assert set(data["models"]) == {"veca-small", "dinov3-small"}
    # index = ((C index) * sides + side index) * batches + batch index (C-major)
    checks = [("veca-small", "l4", "fp16", "compiled", 24, 7, 3),
              ("veca-small", "x", "bf16", "eager", 64, 12, 8),
              ("dinov3-small", "cpu-epyc-2core", "fp32", "unfused", None, 0, 0)]
    for model, device, dtype, runtime, cores, r, b in checks:
        m = data["models"][model]
        ci = m["budgets"].index(cores)
        i = (ci * len(SIDES) + r) * len(BATCHES) + b
        series = data["series"][f"{model}|{device}|{dtype}"]
        args = [model, "--device", device, "--resolution", str(SIDES[r]), "--batch",
                str(BATCHES[b]), "--dtype", dtype, "--runtime", runtime,
                "--device-file", str(device_file)]
        if cores:
            args += ["--cores-allowed", str(cores)]
        want = plan_json(*args)["candidates"][0]
        assert floats(series["seconds"][runtime])[i] * 1e3 == want["latency_ms"]
        assert floats(series["memory"])[i] == want["memory_bytes"]
        assert floats(m["flops"])[i] == want["flops"]
        assert m["sides"][r] == want["resolution"]


def test_bad_input_is_one_line(cli, tmp_path):
    for args, said in [(["--out", str(tmp_path / "p.txt")], "the page is HTML"),
                       (["--out", str(tmp_path / "p.html"), "--devices", "h100-sxx"], "h100"),
                       (["--out", str(tmp_path / "p.html"), "--models", "veca-bsae"], "veca-base")]:
        status, out, err = cli("explore", *args)
        assert status == 2 and err.count("\n") == 1 and said in err, (args, err)
    (tmp_path / "p.html").write_text("mine")
    status, out, err = cli("explore", "--out", str(tmp_path / "p.html"), "--devices", "l4")
    assert status == 2 and "--force" in err and (tmp_path / "p.html").read_text() == "mine"


def selftest(chrome: str, page: str) -> dict:
    """The page's own self-test (#selftest) in headless Chromium: what it showed, and timings."""
    proc = subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=30000", "--dump-dom",
                           f"file://{os.path.abspath(page)}#selftest"],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="selftest-result">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no self-test result in the page (Chromium said: {proc.stderr[-500:]})"
    return json.loads(html.unescape(found.group(1)))


def check_sample(sample: dict, device_file=None) -> None:
    args = [sample["model"], "--device", sample["device"], "--resolution",
            str(sample["resolution"]), "--batch", str(sample["batch"]), "--dtype",
            sample["dtype"], "--runtime", sample["runtime"]]
    if device_file is not None:
        args += ["--device-file", str(device_file)]
    if sample["cores"] is not None:
        args += ["--cores-allowed", str(sample["cores"])]
    for flag, key in (("--latency-ms", "latency_budget_ms"), ("--memory-gb", "memory_budget_gb"),
                      ("--demand", "demand")):
        if sample[key]:
            args += [flag, sample[key]]
    planned = plan_json(*args)
    want, shown = planned["candidates"][0], sample["shown"]
    for key in ("latency_ms", "memory_bytes", "throughput_img_per_s", "flops"):
        assert float(shown[key]) == want[key], (sample, key)
    interval = want["latency_ms_interval"]
    assert shown["latency_ms_interval"] == (" ".join(map(repr, interval)) if interval else "none")
    assert shown["tightest"] == want["tightest"] and shown["feasible"] == str(want["feasible"]).lower()
    needed = planned["devices_needed"]
    assert shown["devices_needed"] == ("none" if needed is None else str(needed)), sample
    rates = planned["economics"]  # the chosen answer's: there when the first candidate fits
    priced = rates is not None and want["feasible"] and rates["usd_per_million_images"] is not None
    if rates is not None and want["feasible"]:
        for key in ("joules_per_image", "usd_per_million_images"):
            expected = rates[key]
            if expected is None:
                assert shown[key] == "none", (sample, key)
            else:
                assert float(shown[key]) == expected, (sample, key)
    if planned["baseline"] is not None:
        base = planned["baseline"]
        for key in ("latency_ms", "memory_bytes", "throughput_img_per_s", "flops"):
            assert float(sample["baseline"][key]) == base[key], (sample, key)
        assert sample["baseline"]["tightest"] == base["tightest"]
    # the charts mark the current choice at its x with the shown value
    charts = sample["charts"]
    assert charts["chart-res|latency"] == [str(want["resolution"]), shown["latency_ms"]]
    assert charts["chart-res|memory"] == [str(want["resolution"]), shown["memory_bytes"]]
    if sample["cores"] is not None:
        assert charts["chart-cores|latency"] == [str(want["cores"]), shown["latency_ms"]]
    else:
        assert "chart-cores|latency" not in charts  # a dense model has no C
    # a latency budget within twice the plotted latencies is drawn on the chart
    if sample["latency_budget_ms"] and float(sample["latency_budget_ms"]) <= 2 * float(shown["latency_ms"]):
        assert "budget" in sample["limits"]
    return priced


@pytest.mark.skipif(browser() is None, reason="no Chromium here (install Debian's `chromium`, or "
                    "name one in COREPLAN_BROWSER) to run the page in a real browser")
def test_page_in_a_real_browser(small_page):
    page, _, device_file = small_page
    result = selftest(browser(), page)
    assert result["updates"] > 30  # every option of every control, then the budgets
    first = result["initial"]  # opened as the planner would choose: its dtype is plan's auto
    assert (first["model"], first["device"]) == ("veca-small", "l4")
    assert first["dtype"] == plan_json("veca-small", "--device", "l4", "--resolution", "1024")["dtype"]
    assert len(result["samples"]) == 2 * 3  # each model on each device
    priced = [check_sample(sample, device_file) for sample in result["samples"]]
    assert any(priced)  # an L4 sample's energy and price were compared with plan's
    assert {s["device"] for s in result["samples"]} == {"l4", "cpu-epyc-2core", "x"}
    assert {s["dtype"] for s in result["samples"] if s["device"] == "x"} <= {"fp32", "bf16"}
    for control in result["controls"]:  # labelled, with units where they have them; keyboard
        assert control["label"] and control["keyboard"], control
    labels = {c["id"]: c["label"] for c in result["controls"]}
    assert labels["latency"] == "Latency budget (ms per batch)" and labels["memory"].endswith("(GB)")


@pytest.mark.skipif(browser() is None, reason="no Chromium here (install Debian's `chromium`, or "
                    "name one in COREPLAN_BROWSER) to run the page in a real browser")
def test_default_page_size_and_speed(tmp_path):
    """The default grid (two models, their baselines, seven devices): under 10 MB, open in under
    2 s and each control answered in under 100 ms."""
    page, said = explore(tmp_path)
    size = os.path.getsize(page)
    assert size < 10e6 and f"{size / 1e6:.1f} MB" in said
    result = selftest(browser(), page)
    assert result["load_ms"] < 2000, result["load_ms"]
    assert result["max_update_ms"] < 100, result["max_update_ms"]
    assert len(result["samples"]) == 4 * 7
    for sample in result["samples"][::5]:  # a sample of what it showed, against the planner
        check_sample(sample)


def test_a_heavy_page_is_answered_with_a_warning(capsys, tmp_path, monkeypatch):
    """Past HEAVY_PAGE_BYTES a page opens slowly: written, and said in one warning line (here
    with the limit lowered to 1 kB, so that a one-model, one-device page crosses it)."""
    import coreplan.chart_commands as chart_commands
    from coreplan.cli import main

    monkeypatch.setattr(chart_commands, "HEAVY_PAGE_BYTES", 1e3)
    page = tmp_path / "p.html"
    code = main(["explore", "--out", str(page), "--models", "veca-small", "--devices", "l4"])
    err = capsys.readouterr().err
    assert code == 0 and page.stat().st_size > 1e3
    assert "warning: the page is" in err and "above 0.001 MB" in err
