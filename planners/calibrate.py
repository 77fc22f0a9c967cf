"""Calibration: fit per-op-class efficiencies and the launch overhead to measured latencies.

Model (planners.roofline): T = sum_c R_c / eta_c + n_launches * overhead, where R_c is the pure
roofline time of op class c. The fit minimises the squared log error sum (log T_pred - log T_meas)^2
by Levenberg-Marquardt over log(1/eta_c) and log(overhead), started from a linear least-squares fit
of the relative error, with a weak pull (ridge 1e-3) towards the catalog's documented defaults so a
class the data cannot see (e.g. elementwise ops hidden by GEMMs) stays at its default.

Across devices (timm files naming several, no `device`): one set of parameters for devices known
by their datasheets: one efficiency for the matrix classes (gemm and attention both run on the
tensor cores), one for elementwise ops, the launch cost held at the catalog's default, and the
power coefficient of DeviceSpec.clock_scale (searched in one dimension around the linear fit),
held out by device: each device predicted by the parameters fitted on the others.

From a profile (`coreplan profile`): where whole models' time was attributed to op classes
(reference/attribution.py), each class's efficiency is measured directly, the profiled seconds of
its ops over the seconds the models spent in them (`calibrate_attributed`); a fit of three
efficiencies to ten whole-model times cannot tell the classes apart.

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

from costmodel.errors import CoreplanError
from costmodel.measurements import Measurement, latest, read_measurements
from costmodel.spec import get_model
from costmodel.registry import OP_CLASSES
from planners.devices import MAX_EFFICIENCY, DeviceSpec, catalog_defaults
from planners.roofline import ClassTerms, config_rooflines

RIDGE = 1e-3
GROUP_PX = 64
MAX_HELDOUT_MAPE = 0.25  # a fit predicting its held-out rows worse than this is not shipped
MAX_OVERHEAD_S = 1e-3


GROUPINGS = ("resolution", "family", "model", "device")


def resolution_group(m: Measurement) -> int:
    """Resolutions rounded to the nearest 64 px: 252 and 256 are one group."""
    return int(round(m.resolution / GROUP_PX)) * GROUP_PX


def group_of(m: Measurement, by: str, model_file=None):
    """The held-out group of a row: its resolution group, model family, model or device."""
    if by == "resolution":
        return resolution_group(m)
    if by == "family":
        return m.family or get_model(m.model, model_file).family
    if by == "device":
        return m.device_name or ""
    return m.model


def load_rows(paths, include_busy: bool = False) -> list[Measurement]:
    """Timed rows of validate CSVs (status ok, the latest per configuration; busy ones if asked),
    of timm benchmark files and of documents' CSVs (every mapped model's row), in file order; measurement records
    given instead of a path are taken as they are (the timed ones)."""
    from costmodel.doc_results import is_doc_file, read_docs
    from costmodel.timm_results import is_timm_file, read_timm

    rows: list[Measurement] = []
    given = [m for m in ([] if isinstance(paths, (str, Path)) else paths)
             if isinstance(m, Measurement)]
    if given:
        rows = [m for m in given if m.timed or (include_busy and m.busy)]
        if not rows:
            raise CoreplanError("no measurement with status ok and a time")
        return rows
    for path in ([paths] if isinstance(paths, (str, Path)) else paths):
        if is_timm_file(path):
            found = list(read_timm(path).records)
        elif is_doc_file(path):
            found = list(read_docs(path).records)
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
    """A row published by others (a timm benchmark file, or a number from another project's
    documentation): its device is a catalog name, not a machine's."""
    return bool(m.note) and m.note.startswith(("timm benchmark", "published:"))


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


def design(rows: list[Measurement], devices, model_file=None):
    """(R: rows x classes of reference seconds at eta = 1, launches per row); `devices` is one
    device for every row or one per row; `model_file` holds models the catalog does not."""
    devices = devices if isinstance(devices, list) else [devices] * len(rows)
    R = np.zeros((len(rows), len(OP_CLASSES)))
    launches = np.zeros(len(rows))
    for i, (m, device) in enumerate(zip(rows, devices)):
        terms = ClassTerms.of(config_rooflines(m.config(model_file), device,
                                               m.runtime or "eager"), device)
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


def _start(A: np.ndarray, target: np.ndarray, times: np.ndarray, prior: np.ndarray) -> np.ndarray:
    weights, *_ = np.linalg.lstsq(A / times[:, None], target / times, rcond=None)
    return np.where(weights > 0, np.log(np.maximum(weights, 1e-300)), prior)


def _prior(device: DeviceSpec) -> np.ndarray:
    if device.profile is not None:
        return np.log([1.0] * len(OP_CLASSES) + [max(device.profile.dispatch_s, 1e-7)])
    defaults = catalog_defaults()
    return np.log([1.0 / defaults["efficiency"][c] for c in OP_CLASSES]
                  + [default_overhead(device.kind)])


def tie_matrix(R: np.ndarray) -> np.ndarray:
    """The design with attention's reference time moved into gemm's column (one efficiency for
    all work on the matrix units)."""
    R = np.array(R, dtype=float)
    g, a = OP_CLASSES.index("gemm"), OP_CLASSES.index("attention")
    R[:, g] += R[:, a]
    R[:, a] = 0.0
    return R


def fit(R: np.ndarray, launches: np.ndarray, times: np.ndarray, device: DeviceSpec,
        iterations: int = 200, overhead_s: float | None = None, tied: bool = False) -> Fit:
    """Least squares on log error (Levenberg-Marquardt), pulled weakly towards a prior that never
    depends on an earlier fit (so a refit of a calibrated device is the same): the catalog's
    documented defaults for a roofline device; for a profiled device efficiency 1 (the model runs
    its ops as fast as the profile did) and the profile's dispatch cost per launch.

    Args:
        overhead_s: hold the launch overhead at this value instead of fitting it.
        tied: one efficiency for gemm and attention (both run on the matrix units).
    """
    R = tie_matrix(R) if tied else np.asarray(R, dtype=float)
    prior = _prior(device)
    if overhead_s is None:
        A, offset = np.column_stack([R, launches]), np.zeros(len(times))
    else:
        A, offset, prior = R, np.asarray(launches, dtype=float) * overhead_s, prior[:-1]
    x, damping = _start(A, times - offset, times, prior), 1e-3

    def residuals(params):
        pred = A @ np.exp(params) + offset
        return np.concatenate([np.log(pred) - np.log(times), math.sqrt(RIDGE) * (params - prior)])

    r = residuals(x)
    for _ in range(iterations):
        pred = A @ np.exp(x) + offset
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
    efficiency = {c: float(1.0 / inverse[i]) for i, c in enumerate(OP_CLASSES)}
    if tied:
        efficiency["attention"] = efficiency["gemm"]
    return Fit(efficiency, float(inverse[-1]) if overhead_s is None else float(overhead_s))


# The power coefficient (DeviceSpec.clock_scale) is searched on a log grid, then refined by golden
# section between the best point's neighbours; W per (TFLOP/s x GHz^2). Where the data cannot tell
# coefficients apart (every power-limited device scales alike, so a larger coefficient with a
# larger efficiency fits as well), the smallest wins: a tilt of LEAN per unit of log coefficient,
# far below any real difference in fit, assumes no more throttling than the data shows.
POWER_GRID = np.geomspace(0.05, 5.0, 21)
GOLDEN_STEPS = 14
LEAN = 1e-6


@dataclass(frozen=True)
class AcrossFit:
    """One set of parameters for devices known by their datasheets: efficiencies (gemm and
    attention tied), the catalog's launch overhead held fixed, and the power coefficient."""

    fit: Fit
    power_coefficient: float


class _Designs:
    """design() of each device's rows at a power coefficient, cached by the clock scale it gives."""

    def __init__(self, rows, devices, model_file=None):
        self.groups: dict[str, list[int]] = {}
        for i, d in enumerate(devices):
            self.groups.setdefault(d.name, []).append(i)
        self.rows, self.devices, self.cache = rows, devices, {}
        self.model_file = model_file

    def at(self, k: float):
        n = len(self.rows)
        R, launches = np.zeros((n, len(OP_CLASSES))), np.zeros(n)
        for name, idx in self.groups.items():
            device = replace(self.devices[idx[0]], power_coefficient=k)
            key = (name, round(device.clock_scale(), 12))
            if key not in self.cache:
                self.cache[key] = design([self.rows[i] for i in idx], device, self.model_file)
            R[idx], launches[idx] = self.cache[key]
        return R, launches


def fit_across(designs: _Designs, times: np.ndarray, mask: np.ndarray) -> AcrossFit:
    """Efficiencies and the power coefficient minimising the squared log error of the rows in
    `mask` (the launch overhead held at the catalog's default for the kind: at timm's batches it
    is under 1% of a step, and left free it soaks up whatever differs between devices)."""
    base = designs.devices[int(np.flatnonzero(mask)[0])]
    overhead = default_overhead(base.kind)

    def evaluate(log_k):
        R, launches = designs.at(float(np.exp(log_k)))
        f = fit(R[mask], launches[mask], times[mask], base, overhead_s=overhead, tied=True)
        loss = float(np.mean(np.log(f.predict(R[mask], launches[mask]) / times[mask]) ** 2))
        return loss + LEAN * log_k, f

    grid = np.log(POWER_GRID)
    losses = [evaluate(x)[0] for x in grid]
    best = int(np.argmin(losses))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = evaluate(a)[0], evaluate(b)[0]
    for _ in range(GOLDEN_STEPS):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = evaluate(a)[0]
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = evaluate(b)[0]
    candidates = [(losses[best], grid[best]), (fa, a), (fb, b)]
    log_k = min(candidates)[1]
    return AcrossFit(evaluate(log_k)[1], float(np.exp(log_k)))


def fit_devices(measurements) -> AcrossFit:
    """One set of parameters fitted across the devices that timm files name (no held-out)."""
    rows = load_rows(measurements)
    designs = _Designs(rows, row_devices(rows, None))
    return fit_across(designs, np.array([m.time_s for m in rows]), np.ones(len(rows), dtype=bool))


def predict_devices(across: AcrossFit, measurements) -> tuple[list[Measurement], np.ndarray]:
    """The rows of timm files and their times predicted by a fit across devices (each row on the
    device its file names, from that device's datasheet and the fit's parameters)."""
    rows = load_rows(measurements)
    R, launches = _Designs(rows, row_devices(rows, None)).at(across.power_coefficient)
    return rows, across.fit.predict(R, launches)


# A series' smallest batch is host-bound when its time over its predicted GPU work exceeds the
# largest batch's (where the GPU's work dominates) by more than this: beyond the +-10% the model
# shows on GPU-bound rows of unseen devices, the rest is the host.
HOST_BOUND_EXCESS = 1.1


def host_launch_costs(rows: list[Measurement]) -> dict[str, tuple[float, int]]:
    """The host's cost per launch, per base runtime, from published GPU rows where the GPU waits
    on the host. Rows are grouped in series that differ only in batch (model, resolution,
    runtime, device, torch version, source); the host issues the same launches at every batch
    while the GPU's work grows with it, so where the smallest batch's time over its predicted work
    (planners.roofline: the ops' times) exceeds the largest batch's by HOST_BOUND_EXCESS, the
    smallest batch is host-bound and its time over its launches is what the host spent per
    launch. Returns the median per runtime and how many series gave one; eager and unfused issue
    their ops the same way (PyTorch from Python): one without series of its own takes the other's
    (count 0)."""
    from planners.roofline import AMP, config_rooflines, work_s

    series: dict[tuple, list[tuple[int, float, float, float]]] = {}
    for m, device in zip(rows, row_devices(rows, None)):
        runtime = m.runtime or "eager"
        ops = config_rooflines(m.config(), device, runtime)
        work = float(work_s(ops, device))
        launches = float(sum(op.launches for op in ops))
        key = (m.model, m.resolution, runtime, m.device_name, m.torch_version, m.note)
        series.setdefault(key, []).append((m.batch, m.time_s, work, launches))
    found: dict[str, list[float]] = {}
    for key, points in series.items():
        points.sort()
        (_, t0, w0, n0), (_, t1, w1, _) = points[0], points[-1]
        if len(points) > 1 and t0 / w0 > HOST_BOUND_EXCESS * t1 / w1:
            found.setdefault(key[2].removesuffix(AMP), []).append(t0 / n0)
    out = {r: (float(np.median(v)), len(v)) for r, v in found.items()}
    for a, b in (("eager", "unfused"), ("unfused", "eager")):
        if a not in out and b in out:
            out[a] = (out[b][0], 0)
    return out


def default_overhead(kind: str = "gpu") -> float:
    """The catalog's assumed launch cost for a device kind ([defaults.<kind>], else [defaults])."""
    defaults = catalog_defaults()
    return float(defaults.get(kind, {}).get("kernel_launch_overhead_s",
                                            defaults["kernel_launch_overhead_s"]))


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


def _groups(groups, by: str):
    distinct = sorted(set(groups), key=str)
    if len(distinct) < 2:
        raise CoreplanError(f"held-out error needs measurements of two or more {by} groups")
    return np.asarray(groups), distinct


def _summary(predicted, times, groups, distinct, by: str) -> Holdout:
    errors = predicted / times - 1
    ratio = times / predicted
    lo, hi = np.percentile(ratio, [5, 95])
    return Holdout(len(times), tuple(distinct), float(np.mean(np.abs(errors))),
                   float(np.max(np.abs(errors))), float(np.mean(np.abs(errors) <= 0.10)),
                   (float(min(lo, 1.0)), float(max(hi, 1.0))), tuple(float(e) for e in errors),
                   by, tuple(groups.tolist()))


def holdout(R, launches, times, groups, device: DeviceSpec, by: str = "resolution",
            overhead_s: float | None = None) -> Holdout:
    """Leave-one-group-out: every row predicted by a fit that never saw its group."""
    groups, distinct = _groups(groups, by)
    predicted = np.zeros(len(times))
    held = {} if overhead_s is None else {"overhead_s": overhead_s}
    for g in distinct:
        train, test = groups != g, groups == g
        predicted[test] = fit(R[train], launches[train], times[train], device,
                              **held).predict(R[test], launches[test])
    return _summary(predicted, times, groups, distinct, by)


def holdout_across(designs: _Designs, times, groups, by: str = "device"):
    """Leave-one-group-out for the fit across devices: each group predicted by efficiencies and a
    power coefficient fitted without it (held out by device: from its datasheet alone). Returns the
    Holdout and each group's power coefficient."""
    groups, distinct = _groups(groups, by)
    predicted, coefficients = np.zeros(len(times)), {}
    for g in distinct:
        train, test = groups != g, groups == g
        across = fit_across(designs, times, train)
        R, launches = designs.at(across.power_coefficient)
        predicted[test] = across.fit.predict(R[test], launches[test])
        coefficients[g] = across.power_coefficient
    return _summary(predicted, times, groups, distinct, by), coefficients


@dataclass(frozen=True)
class Calibration:
    device: DeviceSpec | None  # the calibrated device (None when fitted across devices)
    fit: Fit
    holdout: Holdout
    measurements: str
    devices: tuple[str, ...] = ()  # the devices the rows were measured on
    power_coefficient: float | None = None  # fitted across devices (DeviceSpec.clock_scale)
    holdout_power: dict | None = None  # each held-out group's power coefficient

    def problems(self, max_error: float = MAX_HELDOUT_MAPE) -> list[str]:
        """Why this fit should not be shipped: physically impossible or predicting badly."""
        found = []
        profiled = self.device is not None and self.device.profile is not None
        # NB: relative to a profile, an efficiency below 1 also carries work the graph does not
        # list (copies, concatenations and views between ops, which a model runs and the profile
        # does not): the CPU's elementwise class measures about 0.4 by attribution (reference/
        # attribution.py). Five times slower than the profile, or twice as fast, is not plausible.
        low, high = (0.2, MAX_EFFICIENCY[True]) if profiled else (0.0, MAX_EFFICIENCY[False])
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
                            "by_group": {str(g): {"rows": n, "mape": e, "within_10pct": w,
                                                  **({"power_coefficient": self.holdout_power[g]}
                                                     if self.holdout_power else {})}
                                         for g, (n, e, w) in h.by_group().items()},
                            "latency_interval": list(h.interval)},
                "power_coefficient": self.power_coefficient,
                "problems": self.problems(), "measurements": self.measurements}


def calibrate(measurements, device: DeviceSpec | None, include_busy: bool = False,
              by: str | None = None, device_file=None, model_file=None,
              overhead_s: float | None = None) -> Calibration:
    """Fit efficiencies and the per-op overhead to measured times, with held-out error.

    Args:
        measurements: a path or a list of paths (validate CSVs, timm benchmark files).
        device: the device every row was measured on; None fits one set of parameters across the
            devices the rows name (timm files), for devices known only by their datasheets.
        by: held-out grouping (resolution, family, model or device); default: resolution for
            validate data, family for timm data, device when several devices are fitted at once.
        device_file, model_file: devices and models beyond the catalogs (the rows' own).
        overhead_s: hold the per-op overhead at this (a few rows cannot tell it from the
            efficiencies) instead of fitting it.
    """
    from costmodel.errors import check_choice

    paths = [measurements] if isinstance(measurements, (str, Path)) else list(measurements)
    rows = load_rows(paths, include_busy)
    if any(isinstance(p, Measurement) for p in paths):
        paths = [f"{len(rows)} measurements"]
    if device is None:
        named = {m.device_name for m in rows if from_timm(m)}
        if len(named) == 1 and all(from_timm(m) for m in rows):
            from planners.devices import get_device

            device = get_device(named.pop(), device_file)  # one device's timm file: its own data
    if device is not None:
        check_one_setup(rows)
    devices = row_devices(rows, device, device_file)
    if by is None:
        timm = all(from_timm(m) for m in rows)
        by = "device" if device is None else ("family" if timm else "resolution")
    check_choice("held-out grouping", by, GROUPINGS)
    times = np.array([m.time_s for m in rows])
    groups = [group_of(m, by, model_file) for m in rows]
    label = ",".join(str(p) for p in paths)
    names = tuple(sorted({d.name for d in devices}))
    if device is None:
        kinds = sorted({d.kind for d in devices})
        if len(kinds) > 1:
            raise CoreplanError(f"the measurements name both {' and '.join(kinds)} devices: one "
                                f"set of parameters is fitted across devices of one kind")
        designs = _Designs(rows, devices, model_file)
        h, per_group = holdout_across(designs, times, groups, by)
        across = fit_across(designs, times, np.ones(len(rows), dtype=bool))
        return Calibration(None, across.fit, h, label, names, across.power_coefficient, per_group)
    R, launches = design(rows, devices, model_file)
    h = holdout(R, launches, times, groups, device, by, overhead_s)
    final = fit(R, launches, times, device, overhead_s=overhead_s)
    calibrated = replace(device, efficiency=final.efficiency,
                         kernel_launch_overhead_s=final.overhead_s, latency_interval=h.interval,
                         calibrated=True, service_cv=service_cv(rows) or device.service_cv,
                         calibration_mape=h.mape)
    return Calibration(calibrated, final, h, label, names)


NORMAL_IQR_SIGMAS = 1.349  # a normal distribution's interquartile range, in standard deviations


def service_cv(rows: list[Measurement]) -> float | None:
    """The spread of a forward's time over repeated runs, as a coefficient of variation: per row
    IQR / 1.349 / median (NB: the normal-equivalent standard deviation, robust to a slow
    outlier), the median over the rows that recorded an IQR. None where none did (published
    tables give one time per row)."""
    import statistics

    cvs = [m.time_ms_iqr / NORMAL_IQR_SIGMAS / m.time_ms_median for m in rows
           if m.time_ms_iqr is not None and m.time_ms_median]
    return statistics.median(cvs) if cvs else None


def attributed_efficiencies(R: np.ndarray, spent: np.ndarray) -> dict[str, float]:
    """Each class's efficiency as whole models ran it (reference/attribution.py): the profiled
    seconds of its ops over the seconds the models spent in them, pooled over the rows (long runs
    weigh most). R and spent: rows x OP_CLASSES. A class the rows did not run stays at 1 (the
    profile's own speed)."""
    R, spent = np.asarray(R, dtype=float), np.asarray(spent, dtype=float)
    efficiency = {}
    for i, c in enumerate(OP_CLASSES):
        ref, took = R[:, i].sum(), spent[:, i].sum()
        efficiency[c] = float(ref / took) if ref > 0 and took > 0 else 1.0
    return efficiency


def attributed_overhead(unattributed: np.ndarray, launches: np.ndarray, floor_s: float) -> float:
    """The per-op overhead as whole models ran it: the seconds between their top-level ops
    (Python, module calls: in no class) over their ops' launches, pooled over the rows; never
    below `floor_s` (the profile's dispatch cost of one trivial op)."""
    total = float(np.sum(launches))
    return max(float(floor_s), float(np.sum(unattributed)) / total if total > 0 else 0.0)


def calibrate_attributed(rows: list[Measurement], spent, device: DeviceSpec,
                         overhead_s: float, unattributed=None) -> Calibration:
    """Calibrate a profiled device from whole models whose time was attributed to op classes:
    efficiencies by `attributed_efficiencies`; the per-op overhead by `attributed_overhead` from
    each row's unattributed seconds (never below `overhead_s`), or held at `overhead_s` without
    them. The held-out error (leave one resolution group out: each group predicted by what the
    others measured) is on the rows' own wall times (`time_ms_median`)."""
    spent = np.asarray(spent, dtype=float)
    if spent.shape != (len(rows), len(OP_CLASSES)):
        raise CoreplanError(f"attributed seconds: expected {len(rows)} rows of "
                            f"{len(OP_CLASSES)} classes, got shape {spent.shape}")
    gaps = None if unattributed is None else np.asarray(unattributed, dtype=float)
    if gaps is not None and gaps.shape != (len(rows),):
        raise CoreplanError(f"unattributed seconds: expected {len(rows)} values, got shape "
                            f"{gaps.shape}")
    check_one_setup(rows)
    R, launches = design(rows, device)
    times = np.array([m.time_s for m in rows])
    groups, distinct = _groups([group_of(m, "resolution") for m in rows], "resolution")

    def fitted(mask) -> Fit:
        overhead = (overhead_s if gaps is None else
                    attributed_overhead(gaps[mask], launches[mask], overhead_s))
        return Fit(attributed_efficiencies(R[mask], spent[mask]), float(overhead))

    predicted = np.zeros(len(times))
    for g in distinct:
        test = groups == g
        predicted[test] = fitted(~test).predict(R[test], launches[test])
    h = _summary(predicted, times, groups, distinct, "resolution")
    final = fitted(np.ones(len(rows), dtype=bool))
    calibrated = replace(device, efficiency=final.efficiency, kernel_launch_overhead_s=final.overhead_s,
                         latency_interval=h.interval, calibrated=True,
                         service_cv=service_cv(rows) or device.service_cv,
                         calibration_mape=h.mape)
    return Calibration(calibrated, final, h, f"{len(rows)} measurements, attributed by op class",
                       (device.name,))


def device_file(cal: Calibration) -> str:
    """A device file holding the calibrated device: pass it to `coreplan plan --device-file`."""
    from planners.devices import device_toml

    h = cal.holdout
    return device_toml(cal.device, calibrated_from=cal.measurements, comments=(
        f"Calibrated by `coreplan calibrate` from {cal.measurements} ({h.rows} rows).",
        f"Held out by {h.by} {[str(g) for g in h.groups]}: MAPE {h.mape:.3f}, max |error| "
        f"{h.max_abs_error:.3f}, within 10%: {h.within_10pct:.3f}."))
