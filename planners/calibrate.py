"""Calibration: fit per-op-class efficiencies and the launch overhead to measured latencies.

Model (planners.roofline): T = sum_c R_c / eta_c + n_launches * overhead, where R_c is the pure
roofline time of op class c. The fit minimises the squared log error sum (log T_pred - log T_meas)^2
by Levenberg-Marquardt over log(1/eta_c) and log(overhead), started from a linear least-squares fit
of the relative error, with a weak pull (ridge 1e-3) towards the catalog's documented defaults so a
class the data cannot see (e.g. elementwise ops hidden by GEMMs) stays at its default.

Held-out error: leave-one-resolution-out. Each resolution group (resolutions rounded to the nearest
64 px, so 252 and 256 are one group) is predicted by a fit on the other groups; every row is
predicted once while held out. The latency interval is the 5th-95th percentile of measured /
predicted over those held-out rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from costmodel.config import configure
from costmodel.errors import CoreplanError
from costmodel.measurements import Measurement, latest, read_measurements
from costmodel.spec import get_model
from planners.devices import OP_CLASSES, DeviceSpec, catalog_defaults
from planners.roofline import ClassTerms, config_rooflines

RIDGE = 1e-3
GROUP_PX = 64
MAX_HELDOUT_MAPE = 0.25  # a fit predicting its held-out rows worse than this is not shipped
MAX_OVERHEAD_S = 1e-3


def resolution_group(m: Measurement) -> int:
    """Resolutions rounded to the nearest 64 px: 252 and 256 are one group."""
    return int(round(m.resolution / GROUP_PX)) * GROUP_PX


def timed_rows(path: str | Path, device: DeviceSpec, include_busy: bool = False) -> list[Measurement]:
    """The rows of a measurement file usable to calibrate `device`: status ok with a time (and
    busy ones if asked), the latest per configuration, taken on the same kind of device (rows from
    another kind are an error, not a silent mix)."""
    kind = "cpu" if device.kind == "cpu" else "cuda"
    rows = [m for m in latest(read_measurements(path)) if m.timed or (include_busy and m.busy)]
    for m in rows:
        if m.device and m.device != kind:
            raise CoreplanError(f"{path}:{m.line}: measured on {m.device}, but the device being "
                                f"calibrated is {kind}")
    if not rows:
        raise CoreplanError(f"{path}: no rows with status ok and a time")
    return rows


def design(rows: list[Measurement], device: DeviceSpec):
    """(R: rows x classes of roofline seconds at eta = 1, launches per row)."""
    R = np.zeros((len(rows), len(OP_CLASSES)))
    launches = np.zeros(len(rows))
    for i, m in enumerate(rows):
        try:
            c = configure(get_model(m.model), m.resolution, cores=m.core_tokens or None,
                          batch=m.batch, impl=m.impl, dtype=m.dtype)
        except CoreplanError as err:
            raise CoreplanError(f"measurements line {m.line}: {err}") from None
        terms = ClassTerms.of(config_rooflines(c, device), device)
        R[i] = [float(terms.reference_s[k]) for k in OP_CLASSES]
        launches[i] = float(terms.launches)
    return R, launches


@dataclass(frozen=True)
class Fit:
    efficiency: dict[str, float]
    overhead_s: float

    def predict(self, R: np.ndarray, launches: np.ndarray) -> np.ndarray:
        inverse = np.array([1.0 / self.efficiency[c] for c in OP_CLASSES])
        return R @ inverse + launches * self.overhead_s


def _start(A: np.ndarray, times: np.ndarray, prior: np.ndarray) -> np.ndarray:
    weights, *_ = np.linalg.lstsq(A / times[:, None], np.ones(len(times)), rcond=None)
    return np.where(weights > 0, np.log(np.maximum(weights, 1e-300)), prior)


def _prior(device: DeviceSpec) -> np.ndarray:
    if device.profile is not None:
        return np.log([1.0] * len(OP_CLASSES) + [max(device.profile.dispatch_s, 1e-7)])
    defaults = catalog_defaults()
    return np.log([1.0 / defaults["efficiency"][c] for c in OP_CLASSES]
                  + [defaults["kernel_launch_overhead_s"]])


def fit(R: np.ndarray, launches: np.ndarray, times: np.ndarray, device: DeviceSpec,
        iterations: int = 200) -> Fit:
    """Least squares on log error (Levenberg-Marquardt), pulled weakly towards a prior that never
    depends on an earlier fit (so a refit of a calibrated device is the same): the catalog's
    documented defaults for a roofline device; for a profiled device efficiency 1 (the model runs
    its ops as fast as the profile did) and the profile's dispatch cost per launch."""
    A = np.column_stack([R, launches])
    prior = _prior(device)
    x, damping = _start(A, times, prior), 1e-3

    def residuals(params):
        pred = A @ np.exp(params)
        return np.concatenate([np.log(pred) - np.log(times), math.sqrt(RIDGE) * (params - prior)])

    r = residuals(x)
    for _ in range(iterations):
        pred = A @ np.exp(x)
        J = np.vstack([A * np.exp(x) / pred[:, None], math.sqrt(RIDGE) * np.eye(len(x))])
        step = np.linalg.solve(J.T @ J + damping * np.diag(np.diag(J.T @ J) + 1e-12), -J.T @ r)
        trial = residuals(x + step)
        if trial @ trial < r @ r:
            x, r, damping = x + step, trial, damping / 3
            if np.abs(step).max() < 1e-10:
                break
        else:
            damping *= 4
    inverse = np.exp(x)
    return Fit({c: float(1.0 / inverse[i]) for i, c in enumerate(OP_CLASSES)}, float(inverse[-1]))


@dataclass(frozen=True)
class Holdout:
    rows: int
    groups: tuple[int, ...]
    mape: float
    max_abs_error: float
    within_10pct: float
    interval: tuple[float, float]  # 5th and 95th percentile of measured / predicted
    errors: tuple[float, ...]  # predicted / measured - 1, per row, in input order


def holdout(R, launches, times, groups, device: DeviceSpec) -> Holdout:
    """Leave-one-resolution-group-out: every row predicted by a fit that never saw its group."""
    predicted = np.zeros(len(times))
    distinct = sorted(set(groups))
    if len(distinct) < 2:
        raise CoreplanError("held-out error needs measurements at two or more resolutions")
    groups = np.asarray(groups)
    for g in distinct:
        train, test = groups != g, groups == g
        predicted[test] = fit(R[train], launches[train], times[train], device).predict(
            R[test], launches[test])
    errors = predicted / times - 1
    ratio = times / predicted
    lo, hi = np.percentile(ratio, [5, 95])
    return Holdout(len(times), tuple(distinct), float(np.mean(np.abs(errors))),
                   float(np.max(np.abs(errors))), float(np.mean(np.abs(errors) <= 0.10)),
                   (float(min(lo, 1.0)), float(max(hi, 1.0))), tuple(float(e) for e in errors))


@dataclass(frozen=True)
class Calibration:
    device: DeviceSpec  # the calibrated device (efficiency, overhead, latency interval replaced)
    fit: Fit
    holdout: Holdout
    measurements: str

    def problems(self, max_error: float = MAX_HELDOUT_MAPE) -> list[str]:
        """Why this fit should not be shipped: physically impossible or predicting badly."""
        found = []
        low, high = (0.5, 2.0) if self.device.profile is not None else (0.0, 1.0)
        for k, eta in self.fit.efficiency.items():
            if not low < eta <= high:
                what = "of the profiled speed" if self.device.profile is not None else "of peak"
                found.append(f"efficiency {k} = {eta:.3g} is outside ({low:g}, {high:g}] {what}")
        if not 0 <= self.fit.overhead_s <= MAX_OVERHEAD_S:
            found.append(f"overhead {self.fit.overhead_s * 1e6:.3g} us per op is implausible")
        if self.holdout.mape > max_error:
            found.append(f"held-out MAPE {self.holdout.mape:.1%} is above {max_error:.0%}")
        return found

    def to_dict(self) -> dict:
        h = self.holdout
        return {"device": self.device.name, "efficiencies": self.fit.efficiency,
                "overhead_s": self.fit.overhead_s,
                "holdout": {"rows": h.rows, "mape": h.mape, "max_abs_error": h.max_abs_error,
                            "within_10pct": h.within_10pct, "resolution_groups": list(h.groups),
                            "latency_interval": list(h.interval)},
                "problems": self.problems(), "measurements": self.measurements}


def calibrate(measurements: str | Path, device: DeviceSpec, include_busy: bool = False) -> Calibration:
    rows = timed_rows(measurements, device, include_busy)
    R, launches = design(rows, device)
    times = np.array([m.time_s for m in rows])
    h = holdout(R, launches, times, [resolution_group(m) for m in rows], device)
    final = fit(R, launches, times, device)
    calibrated = replace(device, efficiency=final.efficiency, kernel_launch_overhead_s=final.overhead_s,
                         latency_interval=h.interval, calibrated=True)
    return Calibration(calibrated, final, h, str(measurements))


def device_file(cal: Calibration) -> str:
    """A device file holding the calibrated device: pass it to `coreplan plan --device-file`."""
    from planners.devices import device_toml

    h = cal.holdout
    return device_toml(cal.device, calibrated_from=cal.measurements, comments=(
        f"Calibrated by `coreplan calibrate` from {cal.measurements} ({h.rows} rows).",
        f"Held out by resolution group {list(h.groups)}: MAPE {h.mape:.3f}, max |error| "
        f"{h.max_abs_error:.3f}, within 10%: {h.within_10pct:.3f}."))
