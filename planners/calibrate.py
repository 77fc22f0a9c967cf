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


GROUPINGS = ("resolution", "family", "model", "device")


def resolution_group(m: Measurement) -> int:
    """Resolutions rounded to the nearest 64 px: 252 and 256 are one group."""
    return int(round(m.resolution / GROUP_PX)) * GROUP_PX


def group_of(m: Measurement, by: str):
    """The held-out group of a row: its resolution group, model family, model or device."""
    if by == "resolution":
        return resolution_group(m)
    if by == "family":
        return m.family or get_model(m.model).family
    if by == "device":
        return m.device_name or ""
    return m.model


def load_rows(paths, include_busy: bool = False) -> list[Measurement]:
    """Timed rows of validate CSVs (status ok, the latest per configuration; busy ones if asked)
    and of timm benchmark files (every mapped model's row), in file order."""
    from costmodel.timm_results import is_timm_file, read_timm

    rows: list[Measurement] = []
    for path in ([paths] if isinstance(paths, (str, Path)) else paths):
        if is_timm_file(path):
            found = list(read_timm(path).records)
        else:
            found = [m for m in latest(read_measurements(path))
                     if m.timed or (include_busy and m.busy)]
        if not found:
            raise CoreplanError(f"{path}: no rows with status ok and a time")
        rows += found
    return rows


SETUP = (("device_name", "machine"), ("threads", "thread count"), ("dtype", "dtype"))


def check_one_setup(rows: list[Measurement]) -> None:
    """Rows fitted into one device file must come from one machine, one thread count and one
    dtype (its efficiencies are one number per op class): anything else is refused, naming what
    is mixed and how many rows each has."""
    from collections import Counter

    for field, what in SETUP:
        counts = Counter(getattr(m, field) for m in rows)
        if len(counts) > 1:
            found = ", ".join(f"{value if value is not None else 'unrecorded'} ({n} row"
                              f"{'s' if n > 1 else ''})"
                              for value, n in counts.most_common())
            raise CoreplanError(f"the measurements mix {what}s: {found}; a device file describes "
                                f"one {what}: calibrate each separately")


def from_timm(m: Measurement) -> bool:
    """A row read from a timm benchmark file (its device is a catalog name, not a machine's)."""
    return bool(m.note) and m.note.startswith("timm benchmark")


def row_devices(rows: list[Measurement], device: DeviceSpec | None,
                device_file=None) -> list[DeviceSpec]:
    """The device each row was measured on: `device` for all (its kind must match theirs, and a
    timm row names its own device), else the catalog device each timm row names."""
    from planners.devices import get_device

    out = []
    for m in rows:
        if device is not None:
            kind = "cpu" if device.kind == "cpu" else "cuda"
            if m.device and m.device != kind:
                raise CoreplanError(f"line {m.line}: measured on {m.device}, but the device "
                                    f"being calibrated is {kind}")
            if from_timm(m) and m.device_name != device.name:
                raise CoreplanError(f"line {m.line}: measured on {m.device_name}, not on "
                                    f"{device.name}")
            out.append(device)
        else:
            if not from_timm(m):
                raise CoreplanError(f"line {m.line}: a validate row names no catalog device; "
                                    f"give the device")
            out.append(get_device(m.device_name, device_file))
    return out


def design(rows: list[Measurement], devices):
    """(R: rows x classes of reference seconds at eta = 1, launches per row); `devices` is one
    device for every row or one per row."""
    devices = devices if isinstance(devices, list) else [devices] * len(rows)
    R = np.zeros((len(rows), len(OP_CLASSES)))
    launches = np.zeros(len(rows))
    for i, (m, device) in enumerate(zip(rows, devices)):
        try:
            c = configure(get_model(m.model), m.resolution, cores=m.core_tokens or None,
                          batch=m.batch, impl=m.impl, dtype=m.dtype)
        except CoreplanError as err:
            raise CoreplanError(f"measurements line {m.line}: {err}") from None
        terms = ClassTerms.of(config_rooflines(c, device, m.runtime or "eager"), device)
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
    by: str = "resolution"  # what a group is
    row_groups: tuple = ()  # each row's group, in input order

    def by_group(self) -> dict:
        """{group: (rows, MAPE, share within 10%)}."""
        errors = np.abs(np.asarray(self.errors))
        groups = np.asarray(self.row_groups, dtype=object)
        return {g: (int((groups == g).sum()), float(errors[groups == g].mean()),
                    float((errors[groups == g] <= 0.10).mean())) for g in self.groups}


def holdout(R, launches, times, groups, device: DeviceSpec, by: str = "resolution") -> Holdout:
    """Leave-one-group-out: every row predicted by a fit that never saw its group."""
    predicted = np.zeros(len(times))
    distinct = sorted(set(groups), key=str)
    if len(distinct) < 2:
        raise CoreplanError(f"held-out error needs measurements of two or more {by} groups")
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
                   (float(min(lo, 1.0)), float(max(hi, 1.0))), tuple(float(e) for e in errors),
                   by, tuple(groups.tolist()))


@dataclass(frozen=True)
class Calibration:
    device: DeviceSpec | None  # the calibrated device (None when fitted across devices)
    fit: Fit
    holdout: Holdout
    measurements: str
    devices: tuple[str, ...] = ()  # the devices the rows were measured on

    def problems(self, max_error: float = MAX_HELDOUT_MAPE) -> list[str]:
        """Why this fit should not be shipped: physically impossible or predicting badly."""
        found = []
        profiled = self.device is not None and self.device.profile is not None
        # NB: relative to a profile, an efficiency below 1 also carries work the graph does not
        # list (copies, concatenations and views between ops, which a model runs and the profile
        # does not): the CPU's elementwise class needs 0.3 for that. Five times slower than the
        # profile, or twice as fast, is not plausible.
        low, high = (0.2, 2.0) if profiled else (0.0, 1.0)
        for k, eta in self.fit.efficiency.items():
            if not low < eta <= high:
                what = "of the profiled speed" if profiled else "of peak"
                found.append(f"efficiency {k} = {eta:.3g} is outside ({low:g}, {high:g}] {what}")
        if not 0 <= self.fit.overhead_s <= MAX_OVERHEAD_S:
            found.append(f"overhead {self.fit.overhead_s * 1e6:.3g} us per op is implausible")
        if self.holdout.mape > max_error:
            found.append(f"held-out MAPE {self.holdout.mape:.1%} is above {max_error:.0%}")
        return found

    def to_dict(self) -> dict:
        h = self.holdout
        return {"device": self.device.name if self.device else None, "devices": list(self.devices),
                "efficiencies": self.fit.efficiency, "overhead_s": self.fit.overhead_s,
                "holdout": {"rows": h.rows, "by": h.by, "mape": h.mape,
                            "max_abs_error": h.max_abs_error, "within_10pct": h.within_10pct,
                            "groups": [str(g) for g in h.groups],
                            "by_group": {str(g): {"rows": n, "mape": e, "within_10pct": w}
                                         for g, (n, e, w) in h.by_group().items()},
                            "latency_interval": list(h.interval)},
                "problems": self.problems(), "measurements": self.measurements}


def calibrate(measurements, device: DeviceSpec | None, include_busy: bool = False,
              by: str | None = None, device_file=None) -> Calibration:
    """Fit efficiencies and the per-op overhead to measured times, with held-out error.

    Args:
        measurements: a path or a list of paths (validate CSVs, timm benchmark files).
        device: the device every row was measured on; None fits one set of parameters across the
            devices the rows name (timm files), for devices known only by their datasheets.
        by: held-out grouping (resolution, family, model or device); default: resolution for
            validate data, family for timm data, device when several devices are fitted at once.
    """
    from costmodel.errors import check_choice

    paths = [measurements] if isinstance(measurements, (str, Path)) else list(measurements)
    rows = load_rows(paths, include_busy)
    if device is not None:
        check_one_setup(rows)
    devices = row_devices(rows, device, device_file)
    if by is None:
        timm = all(from_timm(m) for m in rows)
        by = "device" if device is None else ("family" if timm else "resolution")
    check_choice("held-out grouping", by, GROUPINGS)
    R, launches = design(rows, devices)
    times = np.array([m.time_s for m in rows])
    base = device or devices[0]
    h = holdout(R, launches, times, [group_of(m, by) for m in rows], base, by)
    final = fit(R, launches, times, base)
    calibrated = replace(base, efficiency=final.efficiency, kernel_launch_overhead_s=final.overhead_s,
                         latency_interval=h.interval, calibrated=True) if device else None
    return Calibration(calibrated, final, h, ",".join(str(p) for p in paths),
                       tuple(sorted({d.name for d in devices})))


def device_file(cal: Calibration) -> str:
    """A device file holding the calibrated device: pass it to `coreplan plan --device-file`."""
    from planners.devices import device_toml

    h = cal.holdout
    return device_toml(cal.device, calibrated_from=cal.measurements, comments=(
        f"Calibrated by `coreplan calibrate` from {cal.measurements} ({h.rows} rows).",
        f"Held out by {h.by} {[str(g) for g in h.groups]}: MAPE {h.mape:.3f}, max |error| "
        f"{h.max_abs_error:.3f}, within 10%: {h.within_10pct:.3f}."))
