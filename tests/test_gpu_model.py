"""The datasheet GPU model: the power-limited clock, the boost-is-max cap, and the fit across
devices (its power coefficient recovered from a synthetic fleet; the catalog's defaults reproduced
by a fresh fit on the public files)."""

import dataclasses
import tomllib
from pathlib import Path

import numpy as np
import pytest

from costmodel.config import configure
from costmodel.measurements import Measurement
from costmodel.spec import get_model
from planners.devices import CATALOG_PATH, OP_CLASSES, device_toml, get_device, load_devices
from planners.roofline import config_rooflines, latency_s, simulate

TIMM = Path(__file__).resolve().parents[1] / "data/public/timm"
EAGER = [TIMM / "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
         TIMM / "benchmark-infer-amp-nchw-pt291-cu130-5090.csv",
         TIMM / "benchmark-infer-amp-nchw-pt291-cu130-pro6000maxq.csv"]


# --------------------------------------------------------------------------- clock scale
def test_a_power_capped_gpu_sustains_the_clock_its_board_power_allows():
    # RTX PRO 6000 Max-Q: 438.9 TFLOP/s fp16 at 2.288 GHz, 300 W. With k = 0.5 W per
    # (TFLOP/s x GHz^2), full matrix load at boost would draw 0.5 x 438.9 x 2.288^2 =
    # 0.5 x 438.9 x 5.234944 = 1148.83 W; power goes with f^3, so the clock settles at
    # (300 / 1148.83)^(1/3) = 0.261025^(1/3) = 0.63914 of boost (1.462 GHz).
    d = dataclasses.replace(get_device("rtx-pro-6000-maxq"), power_coefficient=0.5)
    assert d.clock_scale() == pytest.approx(0.63914, rel=1e-4)


def test_a_gpu_within_its_power_runs_at_its_rated_clock():
    # RTX 3090: 0.5 x 71 x 1.695^2 = 0.5 x 71 x 2.873025 = 101.99 W at boost, under its 350 W
    d = dataclasses.replace(get_device("rtx-3090"), power_coefficient=0.5)
    assert d.clock_scale() == 1.0


@pytest.mark.parametrize("change", [dict(board_power_w=None), dict(power_coefficient=None),
                                    dict(boost_clock_hz=None), dict(kind="cpu")])
def test_without_its_numbers_the_clock_is_not_scaled(change):
    d = dataclasses.replace(get_device("rtx-pro-6000-maxq"), **change)
    assert d.clock_scale() == 1.0


def test_matrix_ops_run_at_the_scaled_peak_and_elementwise_ops_do_not():
    base = dataclasses.replace(get_device("rtx-pro-6000-maxq"), power_coefficient=0.5,
                               sm_count=None, memory_bandwidth_bytes_per_s=1e18,
                               efficiency={k: 1.0 for k in OP_CLASSES}, kernel_launch_overhead_s=0)
    unscaled = dataclasses.replace(base, board_power_w=None)
    c = configure(get_model("vit_base_patch16_224"), 224, batch=8, dtype="fp16")
    scaled_ops = {o.path: o for o in simulate(c, base).ops}
    plain_ops = {o.path: o for o in simulate(c, unscaled).ops}
    checked = set()
    for path, op in scaled_ops.items():
        if op.flops == 0:
            continue  # views and copies: no arithmetic, and memory is free here
        checked.add(op.op_class)
        ratio = op.time_s / plain_ops[path].time_s
        expected = 1 / 0.63914 if op.op_class in ("gemm", "attention") else 1.0
        assert ratio == pytest.approx(expected, rel=1e-4), path
    assert checked == set(OP_CLASSES)


def test_a_gpu_whose_boost_is_its_maximum_never_beats_its_peak_on_defaults():
    for name in ("a100-sxm-80gb", "a100-pcie-40gb", "h100-sxm", "l4", "t4", "jetson-agx-orin"):
        d = get_device(name)
        assert d.boost_is_max
        for c in ("gemm", "attention"):
            assert d.efficiency[c] * d.clock_scale() <= 1 + 1e-12, (name, c)


def test_a_device_files_own_efficiency_is_not_capped(tmp_path):
    own = dataclasses.replace(get_device("a100-sxm-80gb"), name="mine",
                              efficiency={"gemm": 1.2, "attention": 0.9, "elementwise": 0.5})
    assert own.boost_is_max
    path = tmp_path / "d.toml"
    path.write_text(device_toml(own))
    assert load_devices(path)["mine"].efficiency["gemm"] == 1.2


@pytest.mark.parametrize("text,message", [
    ("boost_is_max = 1", "boost_is_max: expected true or false"),
    ("board_power_w = -300", "board_power_w: expected a positive number"),
    ("power_coefficient = \"high\"", "power_coefficient: expected a positive number"),
])
def test_bad_power_fields_are_one_clear_error(device_file, text, message):
    from costmodel.errors import CoreplanError

    with pytest.raises(CoreplanError, match=message):
        load_devices(device_file(text + "\n"))


# --------------------------------------------------------------------------- fit across devices
def _fleet_rows(truth: dict):
    """timm-like rows timed by a known model on each device of `truth` (name -> device)."""
    rows, line = [], 1
    for name, device in truth.items():
        for model, side in (("vit_small_patch16_224", 224), ("vit_base_patch16_224", 224),
                            ("vit_large_patch16_224", 224), ("vit_base_patch16_384", 384),
                            ("vit_base_patch14_dinov2", 518), ("vit_small_patch16_dinov3", 256)):
            for batch in (64, 256):
                c = configure(get_model(model), side, batch=batch, dtype="fp16")
                t = float(latency_s(config_rooflines(c, device), device))
                rows.append(Measurement(model, side, 0, "dense", batch, "fp16", "ok",
                                        family=get_model(model).family, device="cuda",
                                        device_name=name, runtime="eager",
                                        time_ms_median=t * 1e3, note="timm benchmark synthetic",
                                        line=line))
                line += 1
    return rows


def test_the_fit_across_devices_recovers_a_known_power_coefficient(monkeypatch):
    from planners import calibrate as cal

    efficiency = {"gemm": 0.85, "attention": 0.85, "elementwise": 0.45}
    truth = {name: dataclasses.replace(get_device(name), efficiency=efficiency,
                                       kernel_launch_overhead_s=cal.default_overhead(),
                                       power_coefficient=0.8, host_launch_s=None)
             for name in ("rtx-3090", "rtx-5090", "rtx-pro-6000-maxq")}
    # at k = 0.8 the RTX 3090 runs at its rated clock, the others below it
    assert truth["rtx-3090"].clock_scale() == 1.0
    assert truth["rtx-5090"].clock_scale() < 0.95 and truth["rtx-pro-6000-maxq"].clock_scale() < 0.6
    rows = _fleet_rows(truth)
    monkeypatch.setattr(cal, "load_rows", lambda paths, include_busy=False: rows)
    result = cal.calibrate(["synthetic"], None)
    assert result.power_coefficient == pytest.approx(0.8, rel=0.01)
    for c, eta in efficiency.items():
        assert result.fit.efficiency[c] == pytest.approx(eta, rel=0.01)
    # each power-limited device predicted from the other two: the model is exact, so is the
    # prediction. Without the RTX 3090 no device runs at its rated clock, and a larger coefficient
    # with a larger efficiency fits the other two equally: the fit assumes the least throttling
    # (the smallest coefficient), so the held-out RTX 3090 is predicted too slow, never too fast.
    groups = result.holdout.by_group()
    assert groups["rtx-5090"][1] < 1e-3 and groups["rtx-pro-6000-maxq"][1] < 1e-3
    assert result.holdout_power["rtx-3090"] < 0.8
    errors = np.array(result.holdout.errors)[np.array(result.holdout.row_groups) == "rtx-3090"]
    assert (errors > 0).all()


def test_a_fit_across_devices_takes_one_kind(cli):
    cpu = TIMM / "benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv"
    code, _, err = cli("calibrate", "--measurements", f"{EAGER[0]},{cpu}")
    assert code == 2 and err.count("\n") == 1 and "both cpu and gpu devices" in err


def test_one_timm_file_without_a_device_calibrates_its_own_device(cli):
    code, out, err = cli("calibrate", "--measurements", str(EAGER[0]), "--format", "json")
    import json

    doc = json.loads(out)
    assert code in (0, 1), err
    assert doc["device"] == "rtx-3090" and doc["holdout"]["by"] == "family"


def test_the_catalogs_gpu_defaults_are_a_fresh_fit_across_the_public_files():
    from planners.calibrate import calibrate

    defaults = tomllib.loads(Path(CATALOG_PATH).read_text())["defaults"]["gpu"]
    result = calibrate(EAGER, None)
    assert result.power_coefficient == pytest.approx(defaults["power_coefficient"], rel=1e-4)
    for c in OP_CLASSES:
        assert result.fit.efficiency[c] == pytest.approx(defaults["efficiency"][c], rel=1e-4)
    assert result.fit.overhead_s == defaults["kernel_launch_overhead_s"]
    assert result.holdout.interval == pytest.approx(tuple(defaults["latency_interval"]), rel=1e-5)
    assert get_device("rtx-4090").latency_interval == tuple(defaults["latency_interval"])
    assert get_device("i9-10940x").latency_interval is None  # a CPU: not what the fit saw


# --------------------------------------------------------------------------- the host
DOCS = Path(__file__).resolve().parents[1] / "data/public/papers-and-docs"
HF_V100 = DOCS / "hf-transformers-torch-compile-v100.csv"


def test_a_gpu_prediction_is_the_larger_of_its_work_and_the_hosts_issuing():
    """ViT-B/16 at 224 px, fp16, on an H100 with a host that spends 0.1 ms a launch: at batch 1
    the host's launches x 0.1 ms exceed the GPU's work (host-bound); at batch 512 the GPU's work
    is the larger, and the host's time hides behind it."""
    h100 = dataclasses.replace(get_device("h100-sxm"), host_launch_s={"eager": 1e-4})
    small = simulate(configure(get_model("vit_base_patch16_224"), 224, batch=1, dtype="fp16"),
                     h100)
    launches = sum(o.launches for o in small.ops)
    assert small.host_s == pytest.approx(launches * 1e-4)
    assert small.host_bound and small.latency_s == pytest.approx(small.host_s)
    assert small.device_s == pytest.approx(sum(o.time_s for o in small.ops))
    big = simulate(configure(get_model("vit_base_patch16_224"), 224, batch=512, dtype="fp16"),
                   h100)
    assert not big.host_bound and big.latency_s == pytest.approx(big.device_s)
    # no host cost for the runtime: the device's work alone
    none = dataclasses.replace(h100, host_launch_s={"compiled": 1e-4})
    c = configure(get_model("vit_base_patch16_224"), 224, batch=1, dtype="fp16")
    assert simulate(c, none).host_s == 0 and not simulate(c, none).host_bound


def test_simulate_says_when_the_host_decides(cli):
    code, out, err = cli("simulate", "vit_base_patch16_224", "--device", "h100-sxm",
                         "--batch", "1", "--dtype", "fp16")
    assert code == 0, err
    assert "host-bound: the CPU issuing" in out and "CUDA graphs" in out
    code, out, err = cli("simulate", "vit_base_patch16_224", "--device", "h100-sxm",
                         "--batch", "256", "--dtype", "fp16")
    assert code == 0, err
    assert "host-bound" not in out


def test_a_cpu_has_no_host_term():
    cpu = get_device("cpu-epyc-2core")
    sim = simulate(configure(get_model("veca-small"), 224, cores=16, dtype="fp32"), cpu)
    assert cpu.host_launch_s is None and sim.host_s == 0
    assert sim.latency_s == pytest.approx(sim.device_s)


def test_the_catalogs_host_cost_is_the_public_host_bound_series():
    """[defaults.gpu] host_launch_s equals what planners.calibrate.host_launch_costs derives from
    Hugging Face's V100 table: batch 1 over its launches where the series is host-bound."""
    from planners.calibrate import host_launch_costs, load_rows

    derived = host_launch_costs(load_rows([HF_V100]))
    catalog = tomllib.loads(CATALOG_PATH.read_text())["defaults"]["gpu"]["host_launch_s"]
    assert set(catalog) == {"eager", "compiled", "unfused"}
    for runtime, value in catalog.items():
        assert value == pytest.approx(derived[runtime][0], rel=1e-5), runtime
    # by hand: the unfused batch-1 row is 10.495 ms over its launches
    rows = [m for m in load_rows([HF_V100]) if m.batch == 1 and m.runtime == "unfused"]
    v100 = get_device("v100-sxm2-16gb")
    launches = sum(o.launches for o in config_rooflines(rows[0].config(), v100, "unfused"))
    assert derived["unfused"][0] == pytest.approx(10.495e-3 / launches)


def test_a_series_that_scales_with_its_work_sets_no_host_cost():
    """Two rows whose time over predicted work is the same at batch 1 and 16: GPU-bound, no
    host cost is derived from them."""
    from planners.calibrate import host_launch_costs

    v100 = get_device("v100-sxm2-16gb")
    rows = []
    for batch in (1, 16):
        c = configure(get_model("vit_base_patch16_224"), 224, batch=batch, dtype="fp32")
        work = sum(o.time_s(v100) for o in config_rooflines(c, v100, "compiled"))
        rows.append(Measurement("vit_base_patch16_224", 224, 0, "dense", batch, "fp32", "ok",
                                device="cuda", device_name="v100-sxm2-16gb", runtime="compiled",
                                time_ms_median=1.3 * work * 1e3,
                                note="published: synthetic"))
    assert host_launch_costs(rows) == {}


# --------------------------------------------------------------------------- documents
def test_the_documents_table_reads_as_records_with_reasons_for_the_rest(tmp_path):
    from costmodel.doc_results import is_doc_file, read_docs

    results = read_docs(HF_V100)
    assert [(m.batch, m.runtime) for m in results.records] == [
        (1, "unfused"), (1, "compiled"), (4, "unfused"), (4, "compiled"), (16, "unfused"),
        (16, "compiled")]  # transformers' eager ViT wrote attention as matmul, softmax, matmul
    first = results.records[0]
    assert (first.model, first.device_name, first.torch_version, first.time_ms_median) == \
        ("vit_base_patch16_224", "v100-sxm2-16gb", "2.0.1", 10.495)
    assert len(results.skipped) == 12 and all("beit" in why for _, why in results.skipped)
    path = tmp_path / "doc.csv"
    path.write_text("model,img_size,batch,precision,runtime,gpu,value,unit,notes\n"
                    "vit_base_patch16_224 (ViT-B/16),224,8,fp32,pytorch_eager,V100,400,img_per_s,"
                    "timm; torch 1.13.1\n"
                    "vit_base_patch16_224,224,unstated,fp32,pytorch_eager,V100,300,img_per_s,x\n"
                    "vit_base_patch16_224,224,8,fp32,pytorch_eager,A999,300,img_per_s,x\n")
    assert is_doc_file(path) and not is_doc_file(TIMM / EAGER[0].name)
    doc = read_docs(path)
    assert doc.records[0].time_ms_median == pytest.approx(8 / 400 * 1e3)  # 20 ms a batch of 8
    assert doc.records[0].runtime == "eager" and doc.records[0].torch_version == "1.13.1"
    assert [why for _, why in doc.skipped] == [
        "vit_base_patch16_224: batch or precision not stated",
        "GPU 'A999' is not in the catalog"]


@pytest.mark.parametrize("body,message", [
    ("vit_base_patch16_224,224,8,fp32,pytorch_eager,V100,-3,img_per_s,x", "positive number"),
    ("vit_base_patch16_224,224,8,fp32,pytorch_eager,V100,3,seconds,x", "expected ms_per_batch"),
])
def test_a_bad_documents_row_is_one_clear_error(tmp_path, body, message):
    from costmodel.doc_results import read_docs
    from costmodel.errors import CoreplanError

    path = tmp_path / "doc.csv"
    path.write_text("model,img_size,batch,precision,runtime,gpu,value,unit,notes\n" + body + "\n")
    with pytest.raises(CoreplanError, match=message):
        read_docs(path)


def test_plan_says_when_its_choice_is_host_bound(cli):
    import json

    code, out, err = cli("plan", "vit_base_patch16_224", "--device", "h100-sxm", "--batch", "1",
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)["chosen"]["host_bound"] is True
    code, out, err = cli("plan", "vit_base_patch16_224", "--device", "h100-sxm", "--batch", "1")
    assert code == 0 and "note: host-bound" in out
    code, out, err = cli("plan", "vit_base_patch16_224", "--device", "h100-sxm", "--batch",
                         "256", "--format", "json")
    assert code == 0 and json.loads(out)["chosen"]["host_bound"] is False


def test_a_host_bound_interval_runs_from_the_gpus_work_to_the_hosts(cli):
    """GPU-bound: the device's interval around the prediction. Host-bound: from the GPU's own work
    (a host issuing at no cost) times the interval's bottom, to the host's time times its top."""
    import json

    h100 = get_device("h100-sxm")
    lo, hi = h100.latency_interval
    for batch, bound in ((1, True), (256, False)):
        code, out, err = cli("plan", "vit_base_patch16_224", "--device", "h100-sxm", "--batch",
                             str(batch), "--dtype", "bf16", "--format", "json")
        assert code == 0, err
        chosen = json.loads(out)["chosen"]
        sim = simulate(configure(get_model("vit_base_patch16_224"), 224, batch=batch,
                                 dtype="bf16"), h100)
        assert chosen["host_bound"] is bound and sim.host_bound is bound
        low, high = chosen["latency_ms_interval"]
        assert high == pytest.approx(sim.latency_s * 1e3 * hi, rel=1e-9)
        assert low == pytest.approx((sim.device_s if bound else sim.latency_s) * 1e3 * lo,
                                    rel=1e-9)


def test_the_hosts_cost_per_launch_can_be_given_on_the_command_line(cli):
    """--host-launch-us sets this host's cost for every runtime: the prediction is the larger of
    the GPU's work and launches x that cost (the launches counted by simulate)."""
    import json

    base = ("vit_base_patch16_224", "--device", "h100-sxm", "--batch", "1", "--dtype", "bf16",
            "--format", "json")
    code, out, err = cli("simulate", *base, "--host-launch-us", "15")
    assert code == 0, err
    sim = json.loads(out)
    assert sim["host_s"] == pytest.approx(sim["launches"] * 15e-6, rel=1e-12)
    assert sim["latency_s"] == max(sim["device_s"], sim["host_s"])
    code, out, _ = cli("plan", *base, "--host-launch-us", "15")
    assert json.loads(out)["chosen"]["latency_ms"] == pytest.approx(sim["latency_s"] * 1e3)
    code, out, _ = cli("simulate", *base, "--host-launch-us", "0")
    assert json.loads(out)["host_s"] == 0 and not json.loads(out)["latency_s"] > sim["device_s"]
    for bad in ("-1", "nan"):
        code, _, err = cli("simulate", *base, "--host-launch-us", bad)
        assert code == 2 and "--host-launch-us must be microseconds" in err
    code, _, err = cli("plan", "veca-small", "--device", "cpu-epyc-2core", "--resolution", "224",
                       "--host-launch-us", "15")
    assert code == 2 and "applies to a GPU" in err
