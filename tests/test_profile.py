"""Device profiles (measured op times), predictions from them, and timing you can trust."""

import dataclasses
import json
import math
import signal
import subprocess
import sys
import time

import pytest

from costmodel.config import configure
from costmodel.cost import config_cost
from costmodel.errors import CoreplanError
from costmodel.spec import get_model
from planners.devices import OP_CLASSES, device_toml, get_device, load_devices
from planners.profile import Curve, Profile
from planners.roofline import latency_s, op_rooflines, simulate


# --------------------------------------------------------------------------- interpolation
def test_curve_interpolates_throughput_in_log_space_and_clamps():
    # 1e6 work in 1 ms (1e9/s) and 4e6 in 2 ms (2e9/s)
    curve = Curve(("k",), (1e6, 4e6), (1e-3, 2e-3))
    # at 2e6, the log midpoint, the rate is the geometric mean sqrt(1e9 * 2e9)
    assert curve.seconds_at(2e6) == pytest.approx(2e6 / math.sqrt(2e18), rel=1e-12)
    assert curve.seconds_at(8e6) == pytest.approx(8e6 / 2e9, rel=1e-12)    # flat beyond the end
    assert curve.seconds_at(5e5) == pytest.approx(5e5 / 1e9, rel=1e-12)    # flat before the start
    assert list(curve.seconds_at([1e6, 4e6])) == pytest.approx([1e-3, 2e-3], rel=1e-12)


RATES = {"linear": 1e11, "conv2d": 5e10, "sdpa": 2e10}  # FLOP/s
ELEMENTS_PER_S = 5e8


def synthetic_profile(pairs, conv_pairs, head_dim=64) -> Profile:
    """Constant rates: each op's time is its work over its kind's rate."""
    curves = {
        "linear": tuple(Curve(p, (1e6, 1e12), (1e6 / RATES["linear"], 1e12 / RATES["linear"]))
                        for p in pairs),
        "conv2d": tuple(Curve(p, (1e6, 1e12), (1e6 / RATES["conv2d"], 1e12 / RATES["conv2d"]))
                        for p in conv_pairs),
        "sdpa": tuple(Curve((regime, head_dim, masked), (1e6, 1e12),
                            (1e6 / RATES["sdpa"], 1e12 / RATES["sdpa"]))
                      for regime in ("square", "few_queries", "few_keys") for masked in (False, True)),
        **{k: (Curve((k,), (1e3, 1e9), (1e3 / ELEMENTS_PER_S, 1e9 / ELEMENTS_PER_S)),)
           for k in ("layer_norm", "gelu", "silu", "mul", "add", "rope", "rope_table", "tanh")},
    }
    return Profile("fp32", 2, 3e-6, curves, "synthetic")


def test_a_synthetic_profile_predicts_known_op_times():
    """veca-small, 256 px, C=8, B=1: every op's time written out from the constant rates."""
    spec = get_model("veca-small")
    c = configure(spec, 256, cores=8, batch=1)
    N, C, D, F, L = 256, 8, 384, 1024, 12
    S = N + C
    profile = synthetic_profile([(D, D), (D, 2 * F), (F, D), (D, 2), (D, 768)], [(768, D)])
    device = dataclasses.replace(get_device("cpu-epyc-2core"), profile=profile,
                                 efficiency={k: 1.0 for k in OP_CLASSES},
                                 kernel_launch_overhead_s=0.0)
    gemm = (2 * N * 768 * D                                          # patch conv
            ) / RATES["conv2d"] + (
        L * (4 * 2 * S * D * D + 2 * S * D * 2 * F + 2 * S * F * D)  # projections and MLP
        + (L - 1) * 2 * C * D * 2                                    # core-coordinate heads
        + 2 * S * D * 768) / RATES["linear"]                         # distillation head
    attention = L * 4 * D * (2 * N * C + C * C) / RATES["sdpa"]     # two split calls per layer
    elements = (2 * L + 1) * S * D        # norms
    elements += L * 2 * S * D             # RoPE on q and k
    elements += L * 2 * S * D             # residual adds
    elements += L * 2 * S * F             # SwiGLU: silu and the gate product
    elements += L * S * (D // 6)          # RoPE tables (tokens x head dim) every layer
    elements += L * C * 2                 # tanh of the core coordinates
    elements += (L - 1) * 2 * C * 2       # coordinate gate multiply and update add
    predicted = latency_s(op_rooflines(config_cost(c), device, "fp32"), device)
    assert predicted == pytest.approx(gemm + attention + elements / ELEMENTS_PER_S, rel=1e-9)
    assert {op.source for op in simulate(c, device).ops} == {"profile"}


def test_ops_the_profile_lacks_fall_back_to_the_roofline():
    spec = get_model("veca-small")
    c = configure(spec, 256, cores=8, batch=1, impl="flex")
    device = dataclasses.replace(get_device("cpu-epyc-2core"),
                                 profile=synthetic_profile([(384, 384)], []))
    sources = {op.path: op.source for op in simulate(c, device).ops}
    assert sources["layer/attn/flex"] == "roofline" and sources["patch_embed"] == "roofline"
    assert sources["layer/attn/q"] == "profile"
    # an in/out pair it does not hold takes the nearest pair's curve (the same rate here)
    assert sources["layer/mlp/fc1"] == "profile"


def test_a_profile_round_trips_through_a_device_file(tmp_path):
    device = dataclasses.replace(get_device("cpu-epyc-2core"), name="mine",
                                 profile=synthetic_profile([(384, 384), (384, 2048)], [(768, 384)]))
    path = tmp_path / "mine.toml"
    path.write_text(device_toml(device))
    back = load_devices(path)["mine"]
    assert back.profile.curves.keys() == device.profile.curves.keys()
    assert back.profile.probe_ms is None  # none was recorded
    c = configure(get_model("veca-small"), 384, cores=16, batch=2)
    assert latency_s(op_rooflines(config_cost(c), back, "fp32"), back) == pytest.approx(
        latency_s(op_rooflines(config_cost(c), device, "fp32"), device), rel=1e-6)


BAD_PROFILES = [
    ("dtype = 'fp32'\nthreads = 2\ncurves = []\n", "profile.dispatch_s: missing"),
    ("dtype = 'fp32'\nthreads = 2\ndispatch_s = -1\ncurves = []\n", "dispatch_s: expected seconds"),
    ("dtype = 'fp32'\nthreads = 2\ndispatch_s = 1e-6\ncurves = [{ kind = 'add' }]\n",
     "curves[0]: expected { kind, key, work, seconds }"),
    ("dtype = 'fp32'\nthreads = 2\ndispatch_s = 1e-6\n"
     "curves = [{ kind = 'add', key = ['add'], work = [2.0, 1.0], seconds = [1.0, 1.0] }]\n",
     "work must increase"),
    ("dtype = 'fp32'\nthreads = 2\ndispatch_s = 1e-6\n"
     "curves = [{ kind = 'add', key = ['add'], work = [1.0], seconds = [-1.0] }]\n",
     "must be positive"),
    ("dtype = 'fp32'\nthreads = 2\ndispatch_s = 1e-6\n"
     "curves = [{ kind = 'add', key = ['add'], work = ['a'], seconds = [1.0] }]\n",
     "lists of numbers"),
    ("dtype = 'fp32'\nthreads = 2\ndispatch_s = 1e-6\nprobe_ms = -2\ncurves = []\n",
     "probe_ms: expected a positive number, got -2"),
]


@pytest.mark.parametrize("body,message", BAD_PROFILES)
def test_bad_profile_files_are_one_clear_error(device_file, body, message):
    with pytest.raises(CoreplanError) as err:
        load_devices(device_file("[devices.x.profile]\n" + body))
    assert message in str(err.value) and "[devices.x].profile" in str(err.value)


class QuietProbe:
    """A machine probe that always reads its quiet time."""

    quiet_s = 2e-3

    def sample(self, repeats: int = 3) -> float:
        return self.quiet_s


def test_the_profile_pipeline_recovers_known_op_times(monkeypatch):
    """run_profile with the stopwatch replaced by a synthetic device (work / rate + dispatch):
    the profile it returns predicts exactly those op times."""
    import reference.profile as rp

    rate = {"linear": 8e10, "conv2d": 4e10, "sdpa": 3e10}

    def synthetic(point, device, max_call_s, share=1.0):
        return point.work / rate.get(point.kind, 1e9) + 2e-6

    monkeypatch.setattr(rp, "_measure", synthetic)
    run = rp.run_profile(budget_s=60, max_call_s=1e6, probe=QuietProbe())
    assert run.skipped == 0 and run.measured == len(rp.all_points("cpu", None))
    p = run.profile
    assert p.seconds("linear", dict(tokens=512, in_features=384, out_features=1152), 1) == \
        pytest.approx(2 * 512 * 384 * 1152 / 8e10 + 2e-6, rel=1e-9)
    assert p.seconds("sdpa", dict(batch=1, heads=12, q_len=1024, kv_len=1024, head_dim=64), 3) \
        == pytest.approx(3 * (4 * 12 * 1024 * 1024 * 64 / 3e10 + 2e-6), rel=1e-9)
    numel = 640_000 // 384 * 384  # a measured size (rows of 384)
    assert p.seconds("gelu", dict(numel=numel), 1) == pytest.approx(numel / 1e9 + 2e-6, rel=1e-9)


def test_op_points_are_timed_in_two_rounds_so_a_steady_drift_scales_every_point_alike(monkeypatch):
    """Three points, two rounds: the first in order, the second reversed, each with half the
    calls. The machine slows steadily, 10% more with every call timed (call k at 1 + 0.1 k): the
    points' calls are 0 and 5, 1 and 4, 2 and 3, so each point's median (of two, their mean) is
    at 1.25 its own time: the drift moves every point alike and no curve's shape."""
    import reference.profile as rp

    assert rp.CURVE_ROUNDS == 2
    points = [p for p in rp.all_points("cpu", None) if p.kind == "linear"][:3]
    monkeypatch.setattr(rp, "all_points", lambda device, dtype: points)
    calls, shares = [], set()

    def synthetic(point, device, max_call_s, share=1.0):
        shares.add(share)
        calls.append(points.index(point))
        return (1 + 0.1 * (len(calls) - 1)) * point.work / 8e10

    monkeypatch.setattr(rp, "_measure", synthetic)
    run = rp.run_profile(budget_s=60, max_call_s=1e6, probe=QuietProbe())
    assert calls == [0, 1, 2, 2, 1, 0]
    assert shares == {0.5}
    curve = {c.key: c for c in run.profile.curves["linear"]}
    for p in points:
        assert curve[p.key].seconds[curve[p.key].work.index(p.work)] == pytest.approx(
            1.25 * p.work / 8e10, rel=1e-12)


def test_a_busy_round_of_a_point_is_left_out_of_its_median():
    from reference.profile import _combined

    # probe readings 1.0, 2.0 (busy: above 1.5x) and 1.1: the median of 1.0 and 1.2 s
    assert _combined([(1.0, 1.0), (5.0, 2.0), (1.2, 1.1)]) == (pytest.approx(1.1), [1.0, 2.0, 1.1])
    assert _combined([(3.0, 1.9), (2.5, 1.7)])[0] == 2.5  # none quiet: the quietest round's


def test_profile_command_writes_a_usable_device_file(cli, tmp_path):
    out = tmp_path / "here.toml"
    code, stdout, err = cli("profile", "--name", "here", "--out", str(out), "--budget-s", "2",
                            "--threads", "1", "--no-footprint")
    assert code == 0, err
    assert "op points" in stdout and out.exists()
    # two seconds measure few points: --out has them, this machine's saved profile is not replaced
    assert "not saved as this machine's profile" in err
    assert not list((tmp_path / "cache").rglob("*.toml"))
    code, stdout, err = cli("simulate", "veca-small", "--device", "here", "--device-file",
                            str(out), "--resolution", "224", "--dtype", "fp32", "--format", "json")
    assert code == 0, err
    code, _, err = cli("profile", "--name", "here", "--out", str(out), "--budget-s", "2")
    assert code == 2 and "pass --force" in err


def test_profile_fits_footprint_terms_and_writes_them(monkeypatch, tmp_path):
    """The profile's footprint step with the fresh workers replaced by a fake allocator of known
    terms: the device file it writes carries those terms back."""
    import dataclasses

    import reference.footprint as rf
    from planners.footprint import FootprintModel, footprint
    from reference.own_device import FOOTPRINT, footprint_terms, mapping_threshold

    # this machine's allocator (glibc here: tensors above 32 MiB mapped apart, counted once)
    known = FootprintModel({"torch": 200e6}, 1.05, {"torch": 4e6}, 1.6, 1.2, 12e6,
                           mapped_above_bytes=mapping_threshold())

    def fake(model, side, *, batch=1, cores=None, impl=None, threads=2, **_):
        c = configure(get_model(model), side, batch=batch, cores=cores)
        t = footprint(c, known).terms
        built = t["runtime_baseline"] + t["weights"] + t["build"] + t["inputs"]
        return rf.Footprint(t["runtime_baseline"], built,
                            built + t["activations"] + t.get("activations_mapped", 0)
                            + t["gemm_packing"] + t["workspace"])

    monkeypatch.setattr(rf, "measure", fake)
    fitted, _, left = footprint_terms(2, configs=[c for c in FOOTPRINT if c[0] == "torch"])
    assert left == ""
    assert fitted.activation_factor == pytest.approx(1.6, rel=1e-6)
    assert fitted.mapped_above_bytes == known.mapped_above_bytes
    assert fitted.pack_factor == pytest.approx(1.2, rel=1e-4)
    device = dataclasses.replace(get_device("cpu-epyc-2core"), name="here", footprint=fitted)
    path = tmp_path / "here.toml"
    path.write_text(device_toml(device))
    back = load_devices(path)["here"].footprint
    assert back.baseline_bytes == pytest.approx({"torch": 200e6})
    assert back.workspace_bytes == pytest.approx(12e6, rel=1e-4)
    assert back.mapped_above_bytes == known.mapped_above_bytes


def test_a_small_footprint_process_is_measured_again_and_an_odd_run_outvoted(monkeypatch):
    """A process with under 256 MB of activations is measured twice; where the two peaks differ
    by more than 3% a third run decides (the median). The fake: dinov2-small at 224 px, batch 1
    (4 MB of activations) peaks at 350, then 320 (8.6% apart), then 352 MB: 350 MB is fitted
    on; at batch 2, 400 then 401 MB (they agree): their mean, 400.5; veca-small at 1024 px,
    batch 12 and 8 (about 1 GB and 0.7 GB) run once. Every process runs once before any is
    repeated."""
    import reference.footprint as rf
    from planners import footprint_fit
    from reference.own_device import footprint_terms

    peaks = {("dinov2-small", 1): [350e6, 320e6, 352e6], ("dinov2-small", 2): [400e6, 401e6],
             ("veca-small", 12): [1600e6], ("veca-small", 8): [1200e6]}
    calls = []

    def fake(model, side, *, batch=1, cores=None, impl=None, threads=2, **_):
        calls.append((model, batch))
        runs = peaks[(model, batch)]
        return rf.Footprint(200e6, 300e6, runs[(calls.count((model, batch)) - 1) % len(runs)])

    seen = []
    monkeypatch.setattr(rf, "measure", fake)
    monkeypatch.setattr(footprint_fit, "fit_model", lambda rows, **_: seen.extend(rows) or "fit")
    configs = [("torch", "dinov2-small", 224, 1, None), ("torch", "dinov2-small", 224, 2, None),
               ("torch", "veca-small", 1024, 12, 64), ("torch", "veca-small", 1024, 8, 64)]
    terms, ran, _ = footprint_terms(2, configs=configs)
    assert calls == [("dinov2-small", 1), ("dinov2-small", 2), ("veca-small", 12),
                     ("veca-small", 8), ("dinov2-small", 1), ("dinov2-small", 1),
                     ("dinov2-small", 2)]
    assert terms == "fit" and ran == 4
    assert [r.forward_bytes for r in seen] == [350e6, 400.5e6, 1600e6, 1200e6]


def test_a_short_footprint_budget_drops_repeats_before_a_large_process(monkeypatch):
    """A clock that moves 10 s a process, a deadline 21 s on and a 2.5 s start-up a torch
    process: the small process runs at 0 s, the large one at 10 s (10 + 2.5 < 21); the small
    one's repeat, due at 20 s, would end past the deadline and is dropped. (Repeating first, the
    large process would have been left out.)"""
    import reference.footprint as rf
    import reference.own_device as od
    from planners import footprint_fit

    clock = {"now": 0.0}
    calls = []

    def fake(model, side, *, batch=1, cores=None, impl=None, threads=2, **_):
        calls.append(model)
        clock["now"] += 10.0
        return rf.Footprint(200e6, 300e6, 400e6 if model == "dinov2-small" else 1600e6)

    monkeypatch.setattr(od, "time", type("Clock", (), {"monotonic": lambda: clock["now"]}))
    monkeypatch.setattr(rf, "measure", fake)
    monkeypatch.setattr(footprint_fit, "fit_model", lambda rows, **_: "fit")
    configs = [("torch", "dinov2-small", 224, 1, None), ("torch", "veca-small", 1024, 12, 64)]
    _, ran, left = od.footprint_terms(2, deadline=21.0, configs=configs)
    assert calls == ["dinov2-small", "veca-small"] and ran == 2 and left == ""


def test_two_footprint_runs_that_agree_are_averaged():
    from reference.footprint import Footprint
    from reference.own_device import _centre, _disagree

    a, b = Footprint(200, 300, 500_000_000), Footprint(202, 304, 510_000_000)  # 2% apart
    assert not _disagree([a, b]) and _centre([a, b]) == Footprint(201, 302, 505_000_000)
    assert _disagree([a, Footprint(200, 300, 460_000_000)])  # 8.7% apart


def test_an_interrupted_profile_writes_nothing(tmp_path):
    out = tmp_path / "never.toml"
    proc = subprocess.Popen([sys.executable, "-m", "coreplan.cli", "profile", "--name", "x",
                             "--out", str(out), "--budget-s", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # torch's import on a busy machine; an interrupt at any point writes nothing
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "no device file written" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- trusted timing
class ScriptedProbe:
    """A probe whose samples are given: quiet 2 ms, then whatever the test scripts."""

    def __init__(self, samples):
        self.samples = list(samples)
        self.quiet_s = 2e-3

    def sample(self, repeats: int = 3) -> float:
        return self.samples.pop(0)


def test_a_slow_probe_marks_the_timing_busy():
    """Another process computing on this VM's cores made the probe 2.9-3.2x slower; with nothing
    else running it wandered up to 1.3x (costmodel.measurements.BUSY_PROBE_RATIO)."""
    from reference.timing import time_call

    t = time_call(lambda: time.sleep(0.005), min_run_time_s=0.0, min_repeats=4, warmup=0,
                  probe=ScriptedProbe([6.0e-3] * 5))
    assert t.probe_ratio == pytest.approx(3.0) and t.probe_ms == pytest.approx(6.0)
    assert "probe 3.00x" in t.busy_reason()
    drift = time_call(lambda: time.sleep(0.005), min_run_time_s=0.0, min_repeats=4, warmup=0,
                      probe=ScriptedProbe([2.6e-3] * 5))
    assert drift.probe_ratio == pytest.approx(1.3)
    assert drift.busy_reason(dispersion_limit=10.0) is None  # the VM's own drift: not busy
    quiet = time_call(lambda: time.sleep(0.005), min_run_time_s=0.0, min_repeats=4, warmup=0,
                      probe=ScriptedProbe([2.0e-3, 2.1e-3, 2.0e-3, 2.05e-3, 2.0e-3]))
    # (dispersion is tested by hand below; a sleep's jitter on a loaded machine must not count)
    assert quiet.probe_ratio == pytest.approx(1.0)
    assert quiet.busy_reason(dispersion_limit=10.0) is None


def test_wide_dispersion_marks_the_timing_busy():
    from reference.timing import Timing

    # quartiles 100 and 130 ms around a 110 ms median: IQR 27% of the median
    t = Timing(110.0, 30.0, 95.0, 8, 2, 2.0, 1.0)
    assert "IQR 27%" in t.busy_reason()
    assert Timing(110.0, 5.0, 105.0, 8, 2, 2.0, 1.0).busy_reason() is None


def test_a_device_file_keeps_every_field_it_was_given(tmp_path):
    """The writer derives from the fields' declarations: a zero launch cost is written (not left
    to the catalog's 5 us), and so are a footprint of the device's own and its power fields."""
    from planners.footprint import FootprintModel

    own = FootprintModel({"torch": 1e8}, 1.0, {"torch": 0.0}, 1.5, 0.5, 1e6, "my measurements")
    device = dataclasses.replace(get_device("h100-sxm"), name="mine", kernel_launch_overhead_s=0.0,
                                 footprint=own, latency_interval=(0.9, 1.2))
    path = tmp_path / "mine.toml"
    path.write_text(device_toml(device))
    back = load_devices(path)["mine"]
    assert back.kernel_launch_overhead_s == 0.0
    assert back.footprint == own and back.latency_interval == (0.9, 1.2)
    assert (back.sm_count, back.board_power_w, back.boost_is_max) == (132, 700.0, True)
    catalog_footprint = dataclasses.replace(device, footprint=get_device("l4").footprint)
    assert "footprint]" not in device_toml(catalog_footprint)  # the kind's default: left to it


def _without_masked_attention(device):
    """The device with its profile's masked attention curves left out."""
    curves = dict(device.profile.curves)
    curves["sdpa"] = tuple(c for c in curves["sdpa"] if not c.key[2])
    return dataclasses.replace(device, profile=dataclasses.replace(device.profile, curves=curves))


def test_masked_attention_on_a_profiled_cpu_is_its_measured_curve():
    """A masked call is square (q = kv = S), so its time is the profile's masked square curve;
    the short-side curves, measured unmasked only, are not needed (they were, and a masked call
    fell back to the roofline: veca-small at 448 px, C=48 was predicted 13-15% fast)."""
    c = configure(get_model("veca-small"), 256, cores=8, batch=2, impl="masked")
    cpu = get_device("cpu-epyc-2core")
    (op,) = [o for o in simulate(c, cpu).ops if o.path == "layer/attn/sdpa_masked"]
    assert op.source == "profile"
    (bare,) = [o for o in simulate(c, _without_masked_attention(cpu)).ops
               if o.path == "layer/attn/sdpa_masked"]
    assert bare.source == "roofline"


def _split_profile(*curves) -> Profile:
    return Profile("fp32", 2, 0.0, {"sdpa": tuple(curves)}, "synthetic")


def _few_keys(cores, patches, heads=6):
    from costmodel.registry import REGISTRY

    return REGISTRY["sdpa"].make_shape(batch=1, heads=heads, q_len=patches, kv_len=cores,
                                       head_dim=64, elem_bytes=4)


def test_the_split_calls_are_looked_up_by_their_number_of_cores():
    """Curves per C: C=16 and C=32 are their own curves; C=24 lies between them, log-linear in C
    at the call's work: with 1 ms at C=16 and 4 ms at C=32 (constant over work here), C=24 takes
    1 ms x 4^(log2(24/16)) = 1 ms x 1.5^2 = 2.25 ms; C=64, past the last curve, takes the nearest
    (C=32)."""
    flat = lambda key, t: Curve(key, (1.0, 1e15), (t, t))  # noqa: E731
    profile = _split_profile(flat(("few_keys", 64, False, 16), 1e-3),
                             flat(("few_keys", 64, False, 32), 4e-3))
    seconds = lambda c: float(profile.seconds("sdpa", _few_keys(c, 1024), 1))  # noqa: E731
    assert seconds(16) == pytest.approx(1e-3, rel=1e-12)
    assert seconds(32) == pytest.approx(4e-3, rel=1e-12)
    assert seconds(24) == pytest.approx(2.25e-3, rel=1e-12)
    assert seconds(64) == pytest.approx(4e-3, rel=1e-12)
    # a shape over several C at once (the planner's candidates) answers element by element
    import numpy as np

    many = profile.seconds("sdpa", _few_keys(np.array([16, 24, 32]), 1024), 1)
    assert list(many) == pytest.approx([1e-3, 2.25e-3, 4e-3], rel=1e-12)


def test_a_profile_with_one_split_curve_over_every_c_still_answers():
    """Profiles written before the split curves were keyed by C hold one curve per call over
    every C: the lookup falls back to it (the shipped CPU entry's profile is one)."""
    old = _split_profile(Curve(("few_keys", 64, False), (1e6, 1e9), (1e-4, 1e-1)))
    # 2 FLOPs a multiply-add; q k^T (1024 x 64 by 64 x 24) and p v (1024 x 24 by 24 x 64); B*H = 4
    work = 2 * 2 * 4 * 1024 * 24 * 64
    seconds = float(old.seconds("sdpa", _few_keys(24, 1024, heads=4), 1))
    assert seconds == pytest.approx(work * 1e-10, rel=1e-9)  # its constant 1e10 FLOP/s
    cpu = get_device("cpu-epyc-2core")
    c = configure(get_model("veca-small"), 320, cores=24, batch=1, impl="split")
    assert {o.source for o in simulate(c, cpu).ops if "attn" in o.path} == {"profile"}


def test_a_fresh_profile_times_the_split_calls_on_a_curve_per_c():
    import torch

    from reference.profile import LONG_SIDES, SHORT_SIDES, all_points

    keys = {p.key for p in all_points("cpu", torch.float32) if p.key[0] != "square"
            and p.kind == "sdpa"}
    heads = {k[1] for k in keys}
    assert keys == {(r, d, False, c) for r in ("few_queries", "few_keys") for d in heads
                    for c in SHORT_SIDES}
    per_curve = {}
    for p in all_points("cpu", torch.float32):
        if p.kind == "sdpa" and p.key in keys:
            per_curve[p.key] = per_curve.get(p.key, 0) + 1
    # every N for the cores' call; the patches' call only where the patches outnumber 64 (with
    # fewer, both sides are short and the lookup takes the square curve)
    assert {k: n for k, n in per_curve.items()} == {
        k: len(LONG_SIDES) if k[0] == "few_queries" else sum(n > 64 for n in LONG_SIDES)
        for k in keys}


def test_unfused_attention_on_a_profiled_cpu_runs_its_parts():
    """Where the masked call has no profiled curve (here left out of the committed CPU entry's
    profile), the unfused runtime runs it as two batched GEMMs, the scale and a softmax; the
    softmax part has its own shape (it was looked up in the profile without one and failed)."""
    c = configure(get_model("veca-small"), 256, cores=8, batch=2, impl="masked")
    cpu = _without_masked_attention(get_device("cpu-epyc-2core"))
    ops = {o.path: o for o in simulate(c, cpu, "unfused").ops}
    parts = ("layer/attn/sdpa_masked/qk", "layer/attn/sdpa_masked/softmax",
             "layer/attn/sdpa_masked/av")
    assert all(ops[p].source == "roofline" for p in parts)
    # S = 8 + 256 = 264 tokens, B*H = 2*6: the softmax reads and writes every score (fp32) and
    # reads the mask once more: (2 + 1) * 4 B * 12 * 264^2, in each of 12 layers
    assert ops["layer/attn/sdpa_masked/softmax"].bytes == 12 * 3 * 4 * 12 * 264 * 264


def test_a_curve_that_falls_as_its_work_grows_is_measured_again_then_cut():
    """A smaller op cannot take longer than a larger one of its curve (beyond the machine's
    noise): such a point is measured again; still slower, it is left out, and a curve left with
    one point is left out whole."""
    import reference.profile as rp

    again = {}

    def quiet(point, device, max_call_s, probe):  # measuring again gives the same time
        again[point.work] = again.get(point.work, 0) + 1
        return {1.0: 5.0, 2.0: 2.0, 4.0: 4.5, 8.0: 9.0}[point.work], 1.0, 1

    points = {("linear", (1, 1), w): rp.Point("linear", (1, 1), w, None) for w in (1, 2, 4, 8)}
    measured = {("linear", (1, 1)): [(1.0, 5.0), (2.0, 2.0), (4.0, 4.5), (8.0, 9.0)],
                ("gelu", ("gelu",)): [(1.0, 1.0), (2.0, 2.1)]}
    original = rp._quiet
    rp._quiet = quiet
    try:
        notes = rp._monotone(measured, points, "cpu", 1.0, None, lambda: True)
    finally:
        rp._quiet = original
    # 5.0 s at work 1 against 2.0 s at work 2 (and 4.5 at 4): measured twice more, then cut
    assert measured[("linear", (1, 1))] == [(2.0, 2.0), (4.0, 4.5), (8.0, 9.0)]
    assert again[1.0] == 2 and len(notes) == 1 and "1 point(s) left out" in notes[0]
    assert measured[("gelu", ("gelu",))] == [(1.0, 1.0), (2.0, 2.1)]  # rising: untouched
    falling = {("add", ("add",)): [(1.0, 3.0), (2.0, 1.0)]}
    rp._quiet = lambda *a: None
    try:
        notes = rp._monotone(falling, {}, "cpu", 1.0, None, lambda: False)
    finally:
        rp._quiet = original
    assert falling == {} and "left out, its time falls" in notes[0]


def test_local_means_this_machines_saved_profile(tmp_path, monkeypatch):
    from costmodel.errors import CoreplanError
    from planners.devices import local_profiles, machine_key, this_machine

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(CoreplanError, match="which has no profile yet: run `coreplan profile`"):
        get_device("local")
    cpu, threads, version = this_machine()
    saved = local_profiles() / machine_key(cpu, threads, version)
    saved.parent.mkdir(parents=True)
    mine = dataclasses.replace(get_device("cpu-epyc-2core"), name="mine")
    saved.write_text(device_toml(mine))
    assert get_device("local").name == "mine"
    assert str(saved).startswith(str(tmp_path)) and saved.name.endswith(".toml")


def test_a_plan_on_a_cpu_entry_measured_elsewhere_says_so(cli, device_file):
    path = device_file("measured_on = 'Intel(R) Xeon(R) Platinum x2, 2 threads, torch 2.13.0'\n"
                       "kind = 'cpu'\n")
    code, out, err = cli("plan", "veca-small", "--device", "x", "--device-file", str(path),
                         "--resolution", "224", "--dtype", "fp32")
    assert code == 0, err
    assert "x was measured on Intel(R) Xeon(R) Platinum x2" in " ".join(out.split())
    code, out, _ = cli("plan", "veca-small", "--device", "x", "--device-file", str(path),
                       "--resolution", "224", "--dtype", "fp32", "--format", "json")
    assert "Intel(R) Xeon(R) Platinum x2" in json.loads(out)["measured_elsewhere"]


def test_a_calibration_that_missed_its_own_check_is_said_in_every_plan(cli, device_file):
    """calibration_mape above 10% (a profile's calibration predicting its own held-out models
    that badly): plan, simulate and serve say in a note that its latencies are unreliable, and
    plan's JSON carries the line; at 10% or below nothing is said; a bad value is one line."""
    bad = device_file("kind = 'cpu'\ncalibration_mape = 0.119\n")
    args = ("--device", "x", "--device-file", str(bad), "--resolution", "224", "--dtype", "fp32")
    said = ("x's calibration predicted its own held-out rows with MAPE 11.9% (above 10%): its "
            "latencies are unreliable")
    serve = ("serve", "veca-small", "--rate", "1", "--duration-s", "20", "--slo-ms", "5000")
    for command in (("plan", "veca-small"), ("simulate", "veca-small"), serve):
        code, out, err = cli(*command, *args)
        assert code == 0, err
        assert said in " ".join(out.split()), command
    code, out, _ = cli("plan", "veca-small", *args, "--format", "json")
    assert json.loads(out)["calibration_warning"].startswith(said)
    fine = device_file("kind = 'cpu'\ncalibration_mape = 0.1\n")
    code, out, err = cli("plan", "veca-small", "--device", "x", "--device-file", str(fine),
                         "--resolution", "224", "--dtype", "fp32")
    assert code == 0 and "calibration predicted" not in out, err
    wrong = device_file("kind = 'cpu'\ncalibration_mape = -0.2\n")
    code, _, err = cli("plan", "veca-small", "--device", "x", "--device-file", str(wrong),
                       "--resolution", "224", "--dtype", "fp32")
    assert code == 2 and "calibration_mape" in err and len(err.strip().splitlines()) == 1


def test_a_profile_whose_calibration_missed_writes_the_warning_into_its_file(tmp_path):
    """The device file `coreplan profile` writes (coreplan.measure_commands._write_profile) for a
    calibration that missed its own check by 20%: the field, and a `# Warning:` line saying so."""
    from types import SimpleNamespace

    from coreplan.measure_commands import _write_profile
    from planners.devices import get_device, load_devices

    device = dataclasses.replace(get_device("cpu-epyc-2core"), name="mine", calibration_mape=0.2)
    run = SimpleNamespace(measured=300, skipped=2, busy_note=lambda: None, notes=[],
                          profile=device.profile)
    found = SimpleNamespace(curves=run, seconds=290.0, calibration_note="10 whole models",
                            footprint_rows=9, timing=lambda: "290 s in all", footprint_note="",
                            device=device, calibration=object())
    out = tmp_path / "mine.toml"
    _write_profile(found, out, save=False)
    text = out.read_text()
    assert ("# Warning: mine's calibration predicted its own held-out rows with MAPE 20.0% (above "
            "10%): its latencies are unreliable; `coreplan profile` it again on a quiet machine."
            in text)
    assert load_devices(str(out))["mine"].calibration_mape == pytest.approx(0.2)


def test_calibrate_writes_its_own_held_out_error_into_the_device_file(tmp_path):
    """The device file `calibrate` writes carries the held-out MAPE it printed, and reads back."""
    from planners.calibrate import calibrate, device_file as calibrated_file
    from planners.devices import get_device, load_devices

    cal = calibrate("data/measurements/cpu-epyc-2core-2026-11-24.csv", get_device("cpu-epyc-2core"))
    path = tmp_path / "cal.toml"
    path.write_text(calibrated_file(cal))
    back = load_devices(str(path))["cpu-epyc-2core"]
    assert back.calibration_mape == pytest.approx(cal.holdout.mape, rel=1e-5)
    assert 0 < back.calibration_mape < 0.10 and back.calibration_warning() is None


def test_footprint_leaves_out_a_process_that_would_overrun_the_budget():
    """With one second left, every process (its start alone takes longer) is left out and named,
    and none is started."""
    import time

    from planners.devices import get_device
    from reference.own_device import FOOTPRINT, footprint_terms

    start = time.monotonic()
    terms, ran, note = footprint_terms(2, time.monotonic() + 1.0, device=get_device("cpu-epyc-2core"))
    assert terms is None and ran == 0 and time.monotonic() - start < 1.0
    assert note.startswith("left out to keep to the budget: ")
    assert note.count("(about ") == len(FOOTPRINT) and "transformers dinov2-small 448 px B=56" in note


def test_the_probe_scale_is_the_machines_speed_then_over_the_profiles(tmp_path):
    """A device file records the probe's reading the profile stands for; a measurement's own
    reading over it scales a prediction (2.5 ms against 2.0 ms: the machine ran 1.25x slower)."""
    from costmodel.measurements import Measurement
    from planners.accuracy import probe_scale

    profile = dataclasses.replace(synthetic_profile([(384, 384)], []), probe_ms=2.0)
    device = dataclasses.replace(get_device("cpu-epyc-2core"), name="mine", profile=profile)
    path = tmp_path / "mine.toml"
    path.write_text(device_toml(device))
    back = load_devices(path)["mine"]
    assert back.profile.probe_ms == 2.0
    row = Measurement("veca-small", 224, 16, "split", 1, "fp32", "ok", probe_ms=2.5)
    assert probe_scale(row, back) == 1.25
    assert probe_scale(dataclasses.replace(row, probe_ms=None), back) is None
    assert probe_scale(row, get_device("l4")) is None  # no profile, no reference reading


def test_repeatability_matches_two_runs_by_configuration():
    """Two runs of the same configurations: 110 ms against 100 ms (+10%) and 80 against 100 (-20%),
    the probe 1.1x slower in the second run for both; a row only one run has is not compared."""
    import numpy as np

    from costmodel.errors import CoreplanError
    from costmodel.measurements import Measurement
    from planners.accuracy import repeatability

    def row(cores, ms, probe):
        return Measurement("veca-small", 224, cores, "split", 1, "fp32", "ok",
                           time_ms_median=ms, probe_ms=probe)

    first = [row(16, 100.0, 2.0), row(32, 100.0, 2.0), row(48, 50.0, 2.0)]
    second = [row(16, 110.0, 2.2), row(32, 80.0, 2.2)]
    r = repeatability(first, second).summary()
    assert r["rows"] == 2
    assert np.isclose(r["mean_abs_difference"], 0.15)  # (0.10 + 0.20) / 2
    assert r["within_10pct"] == 0.5 and np.isclose(r["max_abs_difference"], 0.20)
    n = r["probe_normalised"]  # 1.1 / 1.1 - 1 = 0 and 0.8 / 1.1 - 1 = -0.2727
    assert np.isclose(n["mean_abs_difference"], (0 + 3 / 11) / 2)
    assert n["within_10pct"] == 0.5
    with pytest.raises(CoreplanError, match="share no timed configuration"):
        repeatability(first[2:], second)


def test_the_goal_and_a_runs_own_repeat_by_hand():
    """meets_goal: 19 rows 4% off and one 20% off: MAPE (19 x 4 + 20) / 20 = 4.8%, 95% within
    ±10%: met; two rows 20% off: MAPE 5.6%: missed; three rows 11% off, the rest exact: MAPE
    1.65% but 85% within: missed. A run's repeat as its prediction: first 100, 200, 400 ms,
    second 125, 200, 400 ms: errors 100 / 125 - 1 = -20%, 0, 0: MAPE 6.67%, 2 of 3 within,
    level (median) 0, missed."""
    import numpy as np

    from costmodel.measurements import Measurement
    from planners.accuracy import meets_goal, repeatability

    assert meets_goal([0.04] * 19 + [-0.20])
    assert not meets_goal([0.04] * 18 + [0.20, -0.20])
    assert not meets_goal([0.0] * 17 + [0.11] * 3)
    assert not meets_goal([])

    def row(cores, ms):
        return Measurement("veca-small", 224, cores, "split", 1, "fp32", "ok", time_ms_median=ms)

    floor = repeatability([row(16, 100.0), row(32, 200.0), row(48, 400.0)],
                          [row(16, 125.0), row(32, 200.0), row(48, 400.0)]).floor()
    assert floor["rows"] == 3 and np.isclose(floor["mape"], 0.2 / 3)
    assert np.isclose(floor["within_10pct"], 2 / 3) and floor["level"] == 0.0
    assert np.isclose(floor["mape_level_out"], 0.2 / 3) and not floor["meets_goal"]
    # the whole machine 10% slower the second time: level -1/11, nothing left once it is out
    floor = repeatability([row(16, 100.0), row(32, 200.0)],
                          [row(16, 110.0), row(32, 220.0)]).floor()
    assert np.isclose(floor["level"], 100 / 110 - 1) and np.isclose(floor["mape_level_out"], 0)
    assert np.isclose(floor["mape"], 1 / 11) and not floor["meets_goal"]


def test_repeat_floor_reports_each_pair_and_refuses_an_odd_count(tmp_path):
    """benchmarks/repeat_floor.py on two pairs: one that repeats within 2% (met) and one 10%
    slower the second time (MAPE 9.1%, missed): "1 of 2 pairs"; three files: one line, exit 2."""
    import subprocess
    import sys
    from pathlib import Path

    from costmodel.measurements import Measurement, MeasurementWriter

    def run_file(name, times):
        writer = MeasurementWriter(tmp_path / name, resume=False)
        for cores, ms in zip((16, 32, 48), times):
            writer.write(Measurement("veca-small", 224, cores, "split", 1, "fp32", "ok",
                                     time_ms_median=ms))
        writer.close()
        return str(tmp_path / name)

    files = [run_file("a1.csv", (100, 200, 300)), run_file("a2.csv", (102, 198, 300)),
             run_file("b1.csv", (100, 200, 300)), run_file("b2.csv", (110, 220, 330))]
    root = Path(__file__).resolve().parents[1]
    run = lambda *a: subprocess.run([sys.executable, "benchmarks/repeat_floor.py", *a],  # noqa: E731
                                    cwd=root, capture_output=True, text=True)
    proc = run(*files)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[-1] for line in lines[1:3]] == ["met", "missed"]
    assert "-9.1%" in lines[2]  # 100 / 110 - 1
    assert any(line.startswith("1 of 2 pairs") for line in lines)
    proc = run(*files[:3])
    assert proc.returncode == 2 and "expected pairs of runs" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # latency_holdout.py --report B --against A says the same of one pair: 100/110 - 1 = -9.1%
    proc = subprocess.run([sys.executable, "benchmarks/latency_holdout.py", "--device",
                           "cpu-epyc-2core", "--report", files[3], "--against", files[2]],
                          cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith(
        "the earlier run as an exact prediction of this one: MAPE 9.1%, within ±10% 100%: it "
        "misses the goal")


def test_holdout_record_agrees_with_each_runs_report():
    """benchmarks/holdout_record.py on the two committed runs after `-night`: each row's MAPE and
    share within ±10% are the ones `latency_holdout.py --report` prints for that run against
    that profile (4.1%, 95% and 3.8%, 100%: both meet the goal), and the count says so."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    runs = [f"data/measurements/holdout-cpu-epyc-2core-2026-12-01-night{r}.csv" for r in (1, 2)]
    out = subprocess.run([sys.executable, "benchmarks/holdout_record.py", *runs], cwd=root,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    for run, line in zip(runs, rows[1:3]):
        report = subprocess.run(
            [sys.executable, "benchmarks/latency_holdout.py", "--device",
             "epyc-2core-2026-12-01-night", "--device-file",
             "data/profiles/cpu-epyc-2core-2026-12-01-night.toml", "--report", run],
            cwd=root, capture_output=True, text=True).stdout
        held = next(x for x in report.splitlines() if x.startswith("held-out rows"))
        mape, within = line.split()[1:3]
        assert f"MAPE {mape}; within ±10%: {within}" in held
    assert rows[-1].startswith("2 runs: 2 meet the goal as predicted")


def test_profile_rows_record_the_spread_of_repeated_forwards():
    """The whole models profile times keep each round's IQR (their median over rounds), so that
    the device file gets a service-time CV: IQR / 1.349 / median, here worked by hand."""
    import time

    from planners.calibrate import service_cv
    from reference.own_device import ROUNDS, CalibrationRounds

    rounds = CalibrationRounds([("veca-small", 224, 1, 8, "split")], "cpu", "fp32", 1)
    for _ in range(ROUNDS):
        rounds.round(time.monotonic() + 30)
    rows, _ = rounds.records()
    (row,) = rows
    assert row.time_ms_iqr is not None and row.time_ms_iqr >= 0
    assert service_cv(rows) == pytest.approx(row.time_ms_iqr / 1.349 / row.time_ms_median)


def test_a_gpu_profile_measures_the_hosts_issuing_time():
    """A GPU profile records this host's eager issuing time per launch (timed on the host while
    the kernels queue) as host_launch_s for eager and unfused; compiled keeps the catalog's. On
    a CPU the same timing is the trivial op's whole cost, positive and far under a millisecond."""
    import torch

    from reference.profile import host_launch_runtimes, host_launch_seconds

    per_launch = host_launch_seconds("cpu", torch.float32, launches=200, rounds=3)
    assert 0 < per_launch < 1e-3
    assert host_launch_runtimes(3e-5) == {"eager": 3e-5, "unfused": 3e-5}
    assert host_launch_runtimes(None) is None


def test_a_device_files_host_launch_runtimes_keep_the_defaults_for_the_rest(device_file):
    """A GPU device file that sets only eager's issuing time keeps the catalog's for the others
    (as a profile writes it), instead of none."""
    from planners.devices import catalog_defaults

    defaults = catalog_defaults()["gpu"]["host_launch_s"]
    path = device_file("host_launch_s = { eager = 2e-05 }\n")
    (device,) = load_devices(path).values()
    assert device.host_launch_s == {"eager": 2e-05, "compiled": defaults["compiled"],
                                    "unfused": defaults["unfused"]}


def test_the_latency_interval_is_widened_by_the_machines_drift_in_quadrature():
    """reference.own_device.widened, by hand: (x0.9, x1.1) and a drift of (x0.9, x1.1) around
    the middle sqrt(0.99) = 0.99499: low side log-widths -0.10034 and -0.10536, in quadrature
    0.14550, so 0.99499 * exp(-0.14550) = 0.86026; high side 0.10034 and 0.09531 -> 0.13839, so
    0.99499 * exp(0.13839) = 1.14266. No drift leaves the interval as it is."""
    from reference.own_device import widened

    assert widened((0.9, 1.1), (0.9, 1.1)) == pytest.approx((0.86026, 1.14266), abs=2e-5)
    assert widened((0.944, 1.053), (1.0, 1.0)) == pytest.approx((0.944, 1.053))


def test_the_calibration_rounds_drift_pools_each_models_rounds_over_its_median():
    """CalibrationRounds.drift by hand: model a's quiet rounds 10, 11, 9 ms (its median 10: ratios
    1.0, 1.1, 0.9; a busy round of 30 ms left out), model b's 20, 20 (1.0, 1.0); pooled and
    sorted 0.9, 1.0, 1.0, 1.0, 1.1: the 5th percentile at 0.2 of the first step, 0.92, the 95th
    at 0.8 of the last, 1.08 (linear interpolation). Under four ratios: no drift."""
    from reference.own_device import CalibrationRounds
    from reference.timing import Timing

    def t(ms, ratio=1.0):
        return Timing(ms, 0.0, ms, 2, 1, 2.0 * ratio, ratio)

    rounds = CalibrationRounds.__new__(CalibrationRounds)
    rounds.times = {"a": [t(10.0), t(11.0), t(30.0, ratio=2.0), t(9.0)], "b": [t(20.0), t(20.0)]}
    assert rounds.drift() == pytest.approx((0.92, 1.08))
    rounds.times = {"a": [t(10.0), t(11.0)], "b": [t(20.0)]}
    assert rounds.drift() is None


def test_curve_rounds_report_gives_each_arms_spread_over_its_runs(tmp_path):
    """benchmarks/curve_rounds.py --report on four made-up runs. One round: configuration a
    predicted 1.0 and 1.2 s, b 2.0 and 2.4 s: each varies by std/mean = 0.1414/1.1 = 12.9%, and
    once each run's level (the geometric mean of its two) is taken out, by 0. Two rounds: a 1.0
    and 1.0, b 2.0 and 2.0: 0.0%."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    def run(rounds, a, b):
        return {"rounds": rounds, "seconds": 90, "points": 276, "skipped": 17,
                "machine_state": "", "predicted_s": {"a": a, "b": b}}

    path = tmp_path / "runs.json"
    path.write_text(json.dumps([run(1, 1.0, 2.0), run(2, 1.0, 2.0), run(1, 1.2, 2.4),
                                run(2, 1.0, 2.0)]))
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "benchmarks/curve_rounds.py", "--report", str(path)],
                         cwd=root, capture_output=True, text=True, timeout=60).stdout
    assert "1 round(s), 2 runs (90-90 s each): a configuration's prediction varies by a median " \
           "12.9% (mean 12.9%, max 12.9%)" in out
    assert "with each run's level taken out: median 0.0%" in out
    assert "2 round(s), 2 runs (90-90 s each): a configuration's prediction varies by a median " \
           "0.0%" in out


def test_linear_points_read_a_fresh_copy_of_their_weight_each_call(monkeypatch):
    # a model's layers each bring their own weights from memory: a linear point cycles through
    # copies laid out in a pool of 4 x the last-level cache, so no call finds its weight cached
    import reference.profile as rp

    monkeypatch.setattr(rp, "last_level_cache_bytes", lambda device: 1 << 20)  # 1 MiB
    seen = []
    real = rp.F.linear
    monkeypatch.setattr(rp.F, "linear", lambda x, w, b: (seen.append(w.data_ptr()), real(x, w, b))[1])
    try:
        # 64 x 128 fp32 weights are 32 KiB; the pool is max(4 MiB, 64 MiB) = 64 MiB: 2048 copies
        point = next(p for p in rp._linear_points([(128, 64)], "cpu", None) if p.key)
        fn = point.make()
        for _ in range(3):
            fn()
        pool = rp._POOLS[("cpu", None)]
        assert pool.numel() * 4 == 64 << 20
        assert len(set(seen)) == 3  # three calls, three different weights
        assert seen[1] - seen[0] == 64 * 128 * 4  # one after another in the pool
        copies = rp.cold_weights(64, 128, "cpu", None)
        assert len(copies) == 2048
        assert copies[-1].data_ptr() + 64 * 128 * 4 == pool.data_ptr() + (64 << 20)
    finally:
        rp.release_weight_pools()


def test_the_last_level_cache_is_read_from_sysfs(monkeypatch, tmp_path):
    import reference.machine as rm

    for index, size in enumerate(("32K", "512K", "32768K")):
        (tmp_path / f"index{index}").mkdir()
        (tmp_path / f"index{index}" / "size").write_text(size + "\n")
    monkeypatch.setattr(rm.glob, "glob", lambda pattern: sorted(
        str(p) for p in tmp_path.glob("index*/size")))
    assert rm.last_level_cache_bytes("cpu") == 32768 * 1024
    monkeypatch.setattr(rm.glob, "glob", lambda pattern: [])
    assert rm.last_level_cache_bytes("cpu") == rm.CACHE_FALLBACK_BYTES


def test_cold_weights_report_gives_each_ways_median_and_their_ratio(tmp_path):
    """benchmarks/cold_weights.py --report on made-up rounds: cached 1, 2, 3 ms (median 2), cold
    2.2, 2.4, 2.6 ms (median 2.4): ratio 1.20; round by round 2.2, 1.2, 0.87 -> 0.87-2.20."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "cold.json"
    path.write_text(json.dumps({"rows": [{"in": 384, "out": 1536, "tokens": 257, "copies": 40,
                                          "cached": [1e-3, 2e-3, 3e-3],
                                          "cold": [2.2e-3, 2.4e-3, 2.6e-3]}]}))
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "benchmarks/cold_weights.py", "--report", str(path)],
                         cwd=root, capture_output=True, text=True, timeout=60).stdout
    assert "  384 -> 1536     257     2.000     2.400    1.20  0.87-2.20" in out


def test_split_curves_report_predicts_an_off_grid_call_from_the_curves_per_c(capsys):
    """benchmarks/split_curves.py --report on made-up times: the patches' call takes N x 1 us
    whatever C (its time follows the patches). At C=24, N=1600: today's curve at C=24 is a
    constant rate over N, so 1.6 ms; the curves of before at C=16 and 32 read at the call's work
    (that of N = 2400 at C=16, 1200 at C=32: 2.4 and 1.2 ms), log-linear in C: 2.4 ms x 0.5^
    log2(1.5) = 1.6 ms. Measured 3.2 ms: both -50.0%."""
    import sys
    from pathlib import Path

    from reference.profile import LONG_SIDES, SHORT_SIDES

    grid = {(c, n) for c in SHORT_SIDES for n in LONG_SIDES if n > 64} | {
        (c, n) for c in (8, 16, 32, 64) for n in (256, 1024, 4096)}
    rows = [{"regime": "few_keys", "cores": c, "patches": n, "grid": True,
             "seconds": [n * 1e-6, n * 1e-6]} for c, n in sorted(grid)]
    rows.append({"regime": "few_keys", "cores": 24, "patches": 1600, "grid": False,
                 "seconds": [3.1e-3, 3.3e-3]})
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import split_curves

    split_curves.report(rows)
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.endswith("off grid")]
    assert line.split()[:4] == ["few_keys", "24", "1600", "3.200"]
    assert line.split()[-4:-2] == ["-50.0%", "-50.0%"]


def test_a_models_timed_time_is_split_by_the_profilers_shares():
    """Calibration by attribution: the profiler says where a forward's time goes, the plain
    timing how much there is (a profiled forward runs slower: its own cost per op). By hand:
    rounds (gemm 1, attention 2, gaps 1) and (2, 2, 0) s, shares (0.25, 0.5, 0.25) and
    (0.5, 0.5, 0), their mean (0.375, 0.5, 0.125), times a timed 2 s: 0.75, 1.0, 0.25 s."""
    from reference.own_device import split

    assert split([[1.0, 2.0, 1.0], [2.0, 2.0, 0.0]], 2.0) == pytest.approx([0.75, 1.0, 0.25])
    assert split(None, 2.0) is None and split([[0.0, 0.0, 0.0]], 2.0) is None


def test_the_last_calibration_round_yields_what_a_stage_before_it_overran(monkeypatch):
    """reference.own_device.measure with every stage replaced and a clock of its own: budget
    100 s, so the calibration's share is 22 s (7.33 s a round), the curves' 40 s and the
    footprint's 38 s; the footprint overruns by 10 s, so the last round starts 102.67 s in and
    its deadline is the budget's end (100 s in), not 7.33 s past its start."""
    from types import SimpleNamespace

    import reference.own_device as own
    import reference.profile

    clock = [0.0]
    monkeypatch.setattr(own.time, "monotonic", lambda: clock[0])
    deadlines = []

    class Rounds:
        def __init__(self, *args, **kwargs):
            pass

        def round(self, deadline):
            deadlines.append(deadline)
            clock[0] = max(clock[0], deadline)  # a round uses all it is given
            return 0

    def curves(**kwargs):
        clock[0] += kwargs["budget_s"]
        return SimpleNamespace(profile=SimpleNamespace(threads=1))

    def footprint(threads, deadline, device=None):
        clock[0] = deadline + 10.0  # its last process finishes 10 s past its deadline
        return None, 0, ""

    monkeypatch.setattr(own, "CalibrationRounds", Rounds)
    monkeypatch.setattr(reference.profile, "run_profile", curves)
    monkeypatch.setattr(reference.profile, "profiled_device",
                        lambda *args: get_device("cpu-epyc-2core"))
    monkeypatch.setattr(own, "_measured_on", lambda *args: "here")
    monkeypatch.setattr(own, "footprint_terms", footprint)
    monkeypatch.setattr(own, "_calibrate", lambda spec, rounds: (None, "not made"))
    own.measure("x", budget_s=100.0)
    assert deadlines[:2] == pytest.approx([22 / 3, 22 / 3 + 40 + 22 / 3])
    assert deadlines[2] == pytest.approx(100.0)  # was 102.67 + 7.33 = 110


def test_the_profile_budget_counts_from_the_process_start(monkeypatch):
    """`coreplan profile --budget-s 300` means 300 s of wall time with start-up: what the
    imports took is taken off the stages' budget, and 3 s kept for what runs past a stage's
    deadline and for writing the file (300 - 7 - 3 = 290)."""
    import subprocess
    import sys

    import reference.machine
    import reference.own_device
    from coreplan.measure_commands import _profile_with_progress

    age = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5); from "
                          "reference.machine import process_age_s; print(process_age_s())"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert 0.5 <= float(age) < 30
    got = {}
    monkeypatch.setattr(reference.machine, "process_age_s", lambda: 7.0)
    monkeypatch.setattr(reference.own_device, "measure", lambda *a, **k: got.update(k))
    _profile_with_progress("x", "cpu", "fp32", 1, 300.0, True, True)
    assert got["budget_s"] == 290.0
