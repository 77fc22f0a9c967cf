"""How well a device's latency model predicts measured times: per row and in summary.

Used for held-out checks: a profile never sees model-level measurements, so every row of a validate
CSV is held out from it; a calibration reports its own held-out rows (planners.calibrate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costmodel.errors import CoreplanError
from costmodel.measurements import Measurement, latest, read_measurements
from planners.devices import DeviceSpec
from planners.roofline import config_rooflines, latency_s

WITHIN = 0.10
# The own-machine latency goal (a run of held-out configurations): MAPE at most GOAL_MAPE and at
# least GOAL_WITHIN of the rows within ±WITHIN.
GOAL_MAPE = 0.05
GOAL_WITHIN = 0.90


def meets_goal(errors) -> bool:
    """Whether a run's errors (predicted / measured - 1, one per row) meet the goal."""
    e = np.abs(np.asarray(errors, dtype=float))
    return bool(len(e)) and e.mean() <= GOAL_MAPE and (e <= WITHIN).mean() >= GOAL_WITHIN


@dataclass(frozen=True)
class RowError:
    measurement: Measurement
    predicted_s: float

    @property
    def error(self) -> float:
        """predicted / measured - 1."""
        return self.predicted_s / self.measurement.time_s - 1


@dataclass(frozen=True)
class Accuracy:
    device: str
    rows: tuple[RowError, ...]

    @property
    def errors(self) -> np.ndarray:
        return np.array([r.error for r in self.rows])

    def summary(self) -> dict:
        e = np.abs(self.errors)
        return {"rows": len(e), "mape": float(e.mean()), "max_abs_error": float(e.max()),
                "within_10pct": float((e <= WITHIN).mean()),
                "median_error": float(np.median(self.errors))}

    def table(self) -> list[dict]:
        return [{"configuration": r.measurement.label(), "measured ms": r.measurement.time_ms_median,
                 "predicted ms": r.predicted_s * 1e3, "error": f"{r.error:+.1%}"}
                for r in self.rows]

    def caption(self) -> str:
        s = self.summary()
        return (f"{s['rows']} rows: MAPE {s['mape']:.1%}, within ±10%: {s['within_10pct']:.0%}, "
                f"max |error| {s['max_abs_error']:.1%}, median error {s['median_error']:+.1%}")


def predict_measurement(m: Measurement, device: DeviceSpec, model_file=None) -> float:
    """Predicted seconds of the measured configuration on `device` (its model from
    `model_file` or the catalog)."""
    return float(latency_s(config_rooflines(m.config(model_file), device, m.runtime or "eager"),
                           device))


def probe_scale(m: Measurement, device: DeviceSpec) -> float | None:
    """How much slower the machine ran when `m` was timed than when `device` was profiled: the
    machine probe's reading then over the profile's (Profile.probe_ms); None where either is
    missing. On a shared VM whose speed wanders, a prediction times this scale separates the
    model's error from the machine's drift (benchmarks/latency_holdout.py reports both)."""
    reference = device.profile.probe_ms if device.profile is not None else None
    if not reference or not m.probe_ms:
        return None
    return m.probe_ms / reference


@dataclass(frozen=True)
class Repeatability:
    """The same configurations timed in two runs of one machine: how far the machine agrees with
    itself, the floor under any prediction's error there. `ratios`: second run's time over the
    first's per configuration; `probe_ratios`: the machine probe's reading in the second over the
    first (None where a row lacks one)."""

    labels: tuple[str, ...]
    ratios: np.ndarray
    probe_ratios: np.ndarray | None

    def summary(self) -> dict:
        out = {"rows": len(self.labels), **_spread(self.ratios - 1)}
        if self.probe_ratios is not None:
            out["probe_normalised"] = _spread(self.ratios / self.probe_ratios - 1)
        return out

    @property
    def as_prediction(self) -> np.ndarray:
        """The first run taken as a prediction of the second: first / second - 1 per row, the
        errors of a model that had predicted the first run exactly."""
        return 1 / self.ratios - 1

    def floor(self) -> dict:
        """The first run as a prediction of the second, in the goal's terms: MAPE, share within
        ±10%, the level (the median error: the machine's speed between the runs), MAPE with the
        level taken out, and whether it meets the goal. No model can be expected to meet the goal
        on a machine whose own repeat does not."""
        e = self.as_prediction
        level = float(np.median(e))
        return {"rows": len(e), "mape": float(np.abs(e).mean()),
                "within_10pct": float((np.abs(e) <= WITHIN).mean()), "level": level,
                "mape_level_out": float(np.abs((1 + e) / (1 + level) - 1).mean()),
                "meets_goal": meets_goal(e)}


def _spread(d: np.ndarray) -> dict:
    d = np.abs(d)
    return {"mean_abs_difference": float(d.mean()), "within_10pct": float((d <= WITHIN).mean()),
            "max_abs_difference": float(d.max())}


def repeatability(first, second) -> Repeatability:
    """Timed rows of two runs matched by configuration (Measurement.key); refused in one line
    when they share none."""
    a = {m.key(): m for m in latest(first) if m.timed}
    b = {m.key(): m for m in latest(second) if m.timed}
    keys = [k for k in a if k in b]
    if not keys:
        raise CoreplanError("the two runs share no timed configuration")
    ratios = np.array([b[k].time_s / a[k].time_s for k in keys])
    probes = None
    if all(a[k].probe_ms and b[k].probe_ms for k in keys):
        probes = np.array([b[k].probe_ms / a[k].probe_ms for k in keys])
    return Repeatability(tuple(a[k].label() for k in keys), ratios, probes)


def accuracy_of(records, device: DeviceSpec, model_file=None) -> Accuracy:
    """Measured records against `device`'s prediction."""
    return Accuracy(device.name, tuple(RowError(m, predict_measurement(m, device, model_file))
                                       for m in records))


def prediction_errors(path: str | Path, device: DeviceSpec, include_busy: bool = False,
                      model_file=None) -> Accuracy:
    """Every timed row of a measurement file against `device`'s prediction."""
    rows = [m for m in latest(read_measurements(path)) if m.timed or (include_busy and m.busy)]
    if not rows:
        raise CoreplanError(f"{path}: no rows with status ok and a time")
    return accuracy_of(rows, device, model_file)
