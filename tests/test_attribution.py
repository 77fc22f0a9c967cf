"""Calibration by attribution: a model's time charged to op classes under the profiler, and the
efficiencies and held-out error computed from it."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from costmodel.measurements import Measurement
from costmodel.registry import OP_CLASSES
from planners.calibrate import (attributed_efficiencies, attributed_overhead,
                                calibrate_attributed, design)
from planners.devices import get_device
from reference.attribution import attribute

PROFILE = "data/profiles/cpu-epyc-2core-2026-12-01.toml"


def only(seconds: dict) -> set:
    return {k for k, v in seconds.items() if v > 0}


X = torch.randn(64, 64)
W = torch.randn(64, 64)
IMAGE, KERNEL = torch.randn(1, 1, 64, 64), torch.randn(8, 1, 4, 4)
Q = torch.randn(1, 4, 16, 64)
XT = X.T


@pytest.mark.parametrize("what, forward, charged", [
    ("linear", lambda: F.linear(X, W), "gemm"),
    ("matmul", lambda: X @ W, "gemm"),
    ("conv2d (through aten::convolution)", lambda: F.conv2d(IMAGE, KERNEL, stride=4), "gemm"),
    ("sdpa", lambda: F.scaled_dot_product_attention(Q, Q, Q), "attention"),
    ("gelu", lambda: F.gelu(X), "elementwise"),
    ("a copy no record claims", lambda: XT.contiguous(), "elementwise"),
])
def test_each_op_is_charged_to_its_class(what, forward, charged):
    with torch.no_grad():
        found = attribute(forward, calls=3)
    assert only(found.seconds) == {charged}, (what, found.seconds)
    assert 0 < sum(found.seconds.values()) <= found.wall_s * 1.05 and found.ops == 1


def test_a_model_spends_time_in_every_class():
    from costmodel.spec import get_model
    from reference.models import build_model, forward_kwargs

    spec = get_model("veca-small")
    model = build_model(spec, impl="split").eval()
    images, kwargs = torch.randn(1, 3, 128, 128), forward_kwargs(spec, 16)
    with torch.no_grad():
        found = attribute(lambda: model(images, **kwargs))
    assert all(found.seconds[k] > 0 for k in OP_CLASSES), found.seconds
    assert max(found.seconds, key=found.seconds.get) == "gemm"  # 64 tokens of width 384
    assert sum(found.seconds.values()) + found.unattributed_s == pytest.approx(found.wall_s)


def test_attributed_efficiency_is_the_pooled_ratio():
    # rows x (gemm, attention, elementwise): profiled seconds R, seconds spent in the model
    assert OP_CLASSES == ("gemm", "attention", "elementwise")
    R = [[2.0, 1.0, 1.0], [4.0, 0.0, 2.0]]
    spent = [[3.0, 2.0, 3.0], [5.0, 0.0, 3.0]]
    assert attributed_efficiencies(R, spent) == {"gemm": 6 / 8, "attention": 1 / 2,
                                                 "elementwise": 3 / 6}
    assert attributed_efficiencies([[1.0, 0.0, 1.0]], [[2.0, 0.0, 4.0]])["attention"] == 1.0


def test_attributed_overhead_is_the_pooled_gap_per_launch_with_a_floor():
    assert attributed_overhead([0.01, 0.03], [100, 300], 1e-6) == 0.04 / 400
    assert attributed_overhead([0.01, 0.03], [100, 300], 2e-4) == 2e-4


def _row(model, side, cores, impl, batch):
    return Measurement(model, side, cores, impl, batch, "fp32", "ok", device="cpu",
                       time_ms_median=1.0, threads=2, device_name="test cpu")


def test_calibrate_attributed_recovers_known_efficiencies():
    """Rows whose class seconds are the profile's divided by chosen efficiencies, and whose wall
    times are those seconds plus the held overhead per launch: the calibration gives back the
    chosen efficiencies and predicts every held-out row exactly."""
    device = get_device("epyc-2core-2026-12-01", PROFILE)
    rows = [_row("veca-small", 224, 16, "split", 1), _row("dinov3-small", 256, 0, "dense", 2),
            _row("veca-small", 384, 8, "split", 1), _row("dinov2-small", 448, 0, "dense", 1)]
    R, launches = design(rows, device)
    chosen = np.array([0.8, 0.6, 0.4])
    spent = R / chosen
    overhead = 5e-6
    times = spent.sum(axis=1) + launches * overhead
    rows = [r.__class__(**{**r.__dict__, "time_ms_median": t * 1e3}) for r, t in zip(rows, times)]
    cal = calibrate_attributed(rows, spent, device, overhead)
    assert cal.fit.efficiency == pytest.approx(dict(zip(OP_CLASSES, chosen)), rel=1e-12)
    assert cal.fit.overhead_s == overhead and cal.device.efficiency == cal.fit.efficiency
    assert cal.holdout.rows == 4 and cal.holdout.mape == pytest.approx(0, abs=1e-12)
    assert not cal.problems()
    # the gaps between top-level ops, 30 us per launch: the overhead measured, not held
    gapped = calibrate_attributed(rows, spent, device, 1e-6, unattributed=launches * 3e-5)
    assert gapped.fit.overhead_s == pytest.approx(3e-5, rel=1e-12)
    assert gapped.fit.efficiency == cal.fit.efficiency


def test_calibrate_attributed_checks_its_input():
    device = get_device("epyc-2core-2026-12-01", PROFILE)
    rows = [_row("veca-small", 224, 16, "split", 1), _row("dinov2-small", 448, 0, "dense", 1)]
    with pytest.raises(ValueError, match="expected 2 rows of 3 classes"):
        calibrate_attributed(rows, [[1.0, 1.0, 1.0]], device, 1e-6)
    with pytest.raises(ValueError, match="unattributed seconds: expected 2 values"):
        calibrate_attributed(rows, [[1.0, 1.0, 1.0]] * 2, device, 1e-6, unattributed=[0.1])


def test_the_profiler_writes_nothing_to_the_terminal(capfd):
    with torch.no_grad():
        attribute(lambda: F.linear(X, W))
    assert capfd.readouterr().err == ""
