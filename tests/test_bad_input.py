"""Bad or edge input across commands: one clear line and exit 2, or a correct answer."""

import json

import pytest

CATALOG = open("costmodel/catalog.toml").read().split("[models.veca-splus]")[0]


DEVICE = """[devices.fast]
kind = "gpu"
peak_flops_per_s = {{ fp32 = {peak}, bf16 = {peak} }}
memory_bandwidth_bytes_per_s = 1e12
memory_capacity_bytes = 8e10
efficiency = {{ gemm = {gemm}, attention = 0.5, elementwise = 0.5 }}
source = "a test"
"""


@pytest.mark.parametrize("args,message", [
    (("plan", "veca-base", "--device", "l4", "--resolution", "0"), "--resolution 0x0: must be positive"),
    (("plan", "veca-base", "--device", "l4", "--resolution", "8"), "below one 16-px patch"),
    (("compare", "veca-base", "dinov3-base", "--resolutions", "256,-4"), "must be positive"),
    (("chart", "scaling", "--resolutions", "0", "--out", "x.png"), "must be positive"),
    (("plan", "veca-base", "--device", "l4", "--resolution", "512", "--demand", "inf"),
     "--demand must be a positive number"),
    (("plan", "veca-base", "--device", "l4", "--resolution", "512", "--solve", "cores", "--cores", "8"),
     "--cores fixes C"),
    (("validate", "--quick", "--min-time", "nan", "--out", "never.csv"), "--min-time must be"),
    (("validate", "--quick", "--min-time", "inf", "--out", "never.csv"), "--min-time must be"),
    (("chart", "elastic", "--model", "dinov3-base", "--out", "e.png"), "needs a core model"),
    (("chart", "scaling", "--dtype", "int8", "--out", "s.png"), "unknown dtype 'int8'"),
    (("report", "--measurements", "/nonexistent.csv", "--out", "r.html"), "no such file"),
    (("validate", "--quick", "--out", "/dev/full"), "cannot write /dev/full: No space left"),
    (("plan", "veca-base", "--device", "fast", "--device-file", "absurd-peak.toml",
      "--resolution", "512"), "peak_flops_per_s: 1e+300 is above 1e+17"),
    (("plan", "veca-base", "--device", "fast", "--device-file", "efficiency-50.toml",
      "--resolution", "512"), "efficiency.gemm: 50 is above 1"),
])
def test_bad_input_is_one_line(cli, tmp_path, args, message):
    (tmp_path / "absurd-peak.toml").write_text(DEVICE.format(peak="1e300", gemm=0.7))
    (tmp_path / "efficiency-50.toml").write_text(DEVICE.format(peak="1e14", gemm=50))
    args = [str(tmp_path / a) if a.endswith((".png", ".html", ".csv", ".toml")) and "/" not in a
            else a for a in args]
    code, _, err = cli(*args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["nan", "inf", "-2.0"])
def test_a_non_finite_mlp_ratio_is_named(cli, tmp_path, value):
    path = tmp_path / "m.toml"
    path.write_text(CATALOG.replace("[models.veca-small]", "[models.x]").replace(
        "mlp_ratio = 2.66667", f"mlp_ratio = {value}"))
    code, _, err = cli("flops", "x", "--resolution", "256", "--model-file", str(path))
    assert code == 2 and "field 'mlp_ratio' must be a positive number" in err


def test_upper_case_chart_suffix_writes_that_format(cli, tmp_path):
    out = tmp_path / "cost.PNG"
    code, _, err = cli("chart", "scaling", "--models", "veca-small", "--resolutions", "224",
                       "--out", str(out))
    assert code == 0, err
    assert out.read_bytes().startswith(b"\x89PNG")


def test_plan_picks_each_devices_best_dtype_by_default(cli):
    code, out, err = cli("plan", "veca-base", "--device", "t4,cpu-epyc-2core,h100-sxm", "--resolution",
                         "256", "--format", "json")
    assert code == 0, err
    # the T4 has no bf16 (Turing), the CPU only fp32, the H100 bf16
    assert [(d["device"], d["dtype"]) for d in json.loads(out)] == [
        ("t4", "fp16"), ("cpu-epyc-2core", "fp32"), ("h100-sxm", "bf16")]


def test_devices_say_na_for_a_dtype_a_device_lacks(cli):
    code, out, _ = cli("devices")
    t4 = next(line for line in out.splitlines() if line.startswith("t4 "))
    assert code == 0 and "n/a" in t4


def test_chart_and_report_find_the_committed_data_from_any_directory(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "v.png"
    proc = subprocess.run([sys.executable, "-m", "coreplan.cli", "chart", "validation", "--out",
                           str(out)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(b"\x89PNG")


def test_writing_over_a_file_needs_force(cli, tmp_path):
    out = tmp_path / "c.svg"
    out.write_text("keep me")
    code, _, err = cli("chart", "scaling", "--models", "veca-small", "--resolutions", "224",
                       "--out", str(out))
    assert code == 2 and "--force is needed to replace" in err and out.read_text() == "keep me"
    code, _, err = cli("chart", "scaling", "--models", "veca-small", "--resolutions", "224",
                       "--out", str(out), "--force")
    assert code == 0 and out.read_text().startswith("<svg")


def test_resume_mends_a_row_cut_while_it_was_written(tmp_path):
    from costmodel.measurements import Measurement, MeasurementWriter, read_measurements

    path = tmp_path / "r.csv"
    writer = MeasurementWriter(path, resume=False)
    writer.write(Measurement("veca-small", 64, 8, "split", 1, "fp32", "ok"))
    writer.write(Measurement("veca-small", 64, 8, "split", 2, "fp32", "ok", note='a "quoted" note'))
    writer.close()
    whole = path.read_text()
    path.write_text(whole[:whole.index("quoted")])      # cut inside the second row's quoted field
    resumed = MeasurementWriter(path, resume=True)
    assert "dropped an incomplete last row" in resumed.repaired
    resumed.write(Measurement("dinov3-small", 64, 0, "dense", 1, "fp32", "ok"))
    resumed.close()
    assert [(r.model, r.batch) for r in read_measurements(path)] == [
        ("veca-small", 1), ("dinov3-small", 1)]
    path.write_text(path.read_text().rstrip("\n"))      # a complete last row without its newline
    again = MeasurementWriter(path, resume=True)
    assert "added the missing newline" in again.repaired and len(again.records) == 2
    again.close()


@pytest.mark.parametrize("args", [
    ("plan", "veca-base", "--device", "cpu-epyc-2core", "--resolution", "512"),
    ("plan", "veca-base", "--device", "l4,h100-sxm", "--resolution", "1024", "--batch", "8",
     "--latency-ms", "25", "--demand", "5000"),
    ("plan", "veca-base", "--device", "l4", "--solve", "resolution", "--latency-ms", "50"),
    ("devices",), ("models",), ("flops", "veca-base", "--resolution", "512"),
    ("memory", "veca-base", "--resolution", "512", "--device", "l4"),
    ("simulate", "veca-base", "--device", "l4", "--resolution", "512"),
    ("compare", "veca-base", "dinov3-base"),
    ("crossover", "veca-base", "--versus", "dinov3-base"),
    ("serve", "veca-small", "--device", "cpu-epyc-2core", "--resolution", "512", "--dtype", "fp32",
     "--rate", "2.5", "--slo-ms", "2000", "--max-batch", "1", "--duration-s", "400"),
])
def test_tables_fit_an_80_column_terminal_without_cutting_cells(cli, args):
    code, out, _ = cli(*args)
    assert code in (0, 3)
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    assert "…" not in out  # rich marks a cell it had to cut with an ellipsis


def test_a_plan_at_the_top_of_its_search_says_no_budget_binds(cli):
    # capacity at 2.9% is not what stops C at 64: 64 is the largest budget there is
    code, out, _ = cli("plan", "veca-base", "--device", "cpu-epyc-2core", "--resolution", "512")
    assert code == 0 and "C=64, the largest allowed budget; no budget binds" in out
    code, out, _ = cli("plan", "veca-base", "--device", "l4", "--solve", "resolution",
                       "--max-resolution", "2048", "--format", "json")
    doc = json.loads(out)
    assert doc["chosen"]["resolution"] == 2048 and doc["at_search_limit"] is True
    code, out, _ = cli("plan", "veca-base", "--device", "l4", "--solve", "resolution",
                       "--latency-ms", "50", "--format", "json")
    doc = json.loads(out)
    assert doc["chosen"]["latency_ms"] <= 50 and doc["at_search_limit"] is False
    assert doc["chosen"]["tightest"] == "latency"


def test_plan_as_csv_and_chart_with_a_model_file(cli, tmp_path):
    import csv
    import io

    code, out, _ = cli("plan", "veca-base", "--device", "l4,h100-sxm", "--resolution", "1024",
                       "--batch", "8", "--latency-ms", "25", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 3  # nothing fits on the L4
    assert [r["role"] for r in rows if r["device"] == "h100-sxm"].count("chosen") == 1
    assert not [r for r in rows if r["device"] == "l4" and r["role"] == "chosen"]
    assert {r["role"] for r in rows} == {"", "chosen", "dense baseline"}
    models = tmp_path / "m.toml"
    models.write_text(CATALOG.replace("[models.veca-small]", "[models.mine]"))
    code, _, err = cli("chart", "elastic", "--model", "mine", "--model-file", str(models),
                       "--device", "l4", "--out", str(tmp_path / "e.svg"))
    assert code == 0, err
    assert (tmp_path / "e.svg").stat().st_size > 1000


@pytest.mark.parametrize("column, value, what", [("threads", "1", "thread counts: 2 (59 rows), 1 (1 row)"),
                                                 ("dtype", "bf16", "dtypes: fp32 (59 rows), bf16 (1 row)"),
                                                 ("device_name", "Other CPU", "machines")])
def test_calibrate_refuses_rows_from_another_setup(cli, tmp_path, column, value, what):
    import csv

    with open("data/measurements/cpu-epyc-2core-2026-11-24.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    # the last record of the file is one of the 60 latest quiet ones (it supersedes nothing)
    rows[-1][rows[0].index(column)] = value
    mixed = tmp_path / "mixed.csv"
    with open(mixed, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    code, _, err = cli("calibrate", "--measurements", str(mixed), "--device", "cpu-epyc-2core")
    assert code == 2 and f"the measurements mix {what}" in err


def test_an_absurd_resolution_is_answered_with_a_warning(cli):
    code, out, err = cli("flops", "veca-base", "--resolution", "1000000", "--format", "json")
    assert code == 0 and json.loads(out)["total"] > 0
    assert "warning: --resolution 1000000: above 16,384 px" in err
    code, _, err = cli("flops", "veca-base", "--resolution", "1024")
    assert code == 0 and "warning" not in err
