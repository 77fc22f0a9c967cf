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
from costmodel.measurements import Measurement, read_measurements
from costmodel.spec import get_model
from planners.devices import OP_CLASSES, DeviceSpec, catalog_defaults
from planners.roofline import ClassTerms, config_rooflines

RIDGE = 1e-3
GROUP_PX = 64


def resolution_group(m: Measurement) -> int:
    """Resolutions rounded to the nearest 64 px: 252 and 256 are one group."""
    return int(round(m.resolution / GROUP_PX)) * GROUP_PX


def timed_rows(path: str | Path, device: DeviceSpec) -> list[Measurement]:
    """The rows of a measurement file usable to calibrate `device`: status ok with a time, taken
    on the same kind of device (rows from another kind are an error, not a silent mix)."""
    kind = "cpu" if device.kind == "cpu" else "cuda"
    rows = [m for m in read_measurements(path) if m.timed]
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
        terms = ClassTerms.of(config_rooflines(c, device))
        R[i] = [float(terms.roofline_s[k]) for k in OP_CLASSES]
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


def fit(R: np.ndarray, launches: np.ndarray, times: np.ndarray, device: DeviceSpec,
        iterations: int = 200) -> Fit:
    """Least squares on log error (Levenberg-Marquardt), pulled weakly towards the catalog's
    documented default efficiencies and overhead (so a refit of a calibrated device is the same)."""
    A = np.column_stack([R, launches])
    defaults = catalog_defaults()  # the prior is always the documented defaults: idempotent
    prior = np.log([1.0 / defaults["efficiency"][c] for c in OP_CLASSES]
                   + [defaults["kernel_launch_overhead_s"]])
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

    def to_dict(self) -> dict:
        h = self.holdout
        return {"device": self.device.name, "efficiencies": self.fit.efficiency,
                "overhead_s": self.fit.overhead_s,
                "holdout": {"rows": h.rows, "mape": h.mape, "max_abs_error": h.max_abs_error,
                            "within_10pct": h.within_10pct, "resolution_groups": list(h.groups),
                            "latency_interval": list(h.interval)},
                "measurements": self.measurements}


def calibrate(measurements: str | Path, device: DeviceSpec) -> Calibration:
    rows = timed_rows(measurements, device)
    R, launches = design(rows, device)
    times = np.array([m.time_s for m in rows])
    h = holdout(R, launches, times, [resolution_group(m) for m in rows], device)
    final = fit(R, launches, times, device)
    calibrated = replace(device, efficiency=final.efficiency, kernel_launch_overhead_s=final.overhead_s,
                         latency_interval=h.interval, calibrated=True)
    return Calibration(calibrated, final, h, str(measurements))


def profile_toml(cal: Calibration) -> str:
    """A device file holding the calibrated device: pass it to `coreplan plan --device-file`."""
    d, h = cal.device, cal.holdout
    peaks = ", ".join(f"{k} = {v:.6g}" for k, v in d.peak_flops_per_s.items())
    eff = ", ".join(f"{k} = {v:.6g}" for k, v in d.efficiency.items())
    return "\n".join([
        f"# Calibrated by `coreplan calibrate` from {cal.measurements} ({h.rows} rows).",
        f"# Held out by resolution group {list(h.groups)}: MAPE {h.mape:.3f}, max |error| "
        f"{h.max_abs_error:.3f}, within 10%: {h.within_10pct:.3f}.",
        f"[devices.{d.name}]",
        f"description = {_quote(d.description)}",
        f'kind = "{d.kind}"',
        f"peak_flops_per_s = {{ {peaks} }}",
        f"memory_bandwidth_bytes_per_s = {d.memory_bandwidth_bytes_per_s:.6g}",
        f"memory_capacity_bytes = {d.memory_capacity_bytes:.6g}",
        f"kernel_launch_overhead_s = {d.kernel_launch_overhead_s:.6g}",
        f"efficiency = {{ {eff} }}",
        f"latency_interval = [{h.interval[0]:.6g}, {h.interval[1]:.6g}]",
        f"calibrated_from = {_quote(cal.measurements)}",
        f"source = {_quote(d.source)}", ""])


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
