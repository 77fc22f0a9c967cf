"""Measured op times (a device profile) and predictions interpolated from them (torch-free).

A profile is data: for each op kind, curves of measured seconds per launch against the op's work,
keyed by the op's discrete shape (a linear layer's in/out features, an attention call's head dim,
mask and which side is short). `coreplan profile` measures them on the machine at hand
(`reference/profile.py`) and stores them in a device file (`[devices.NAME.profile]`).

Prediction for one op of the cost graph: find its curve (the same key; else, where two curves differ
from the key in one numeric part only, one below and one above, both, the time log-linear in that
part between them at the same work; else the nearest key in log space, numeric parts only),
interpolate log(throughput) piecewise-linearly in log(work), clamped at the curve's ends (beyond
the largest measured size the throughput is taken as flat), and divide the op's work by it; times
its launches. An op's curve key and work come from its registry record (`profile_key`,
`profile_work`: the `flop` count for matmul-class ops, the element count for elementwise ops;
attention picks its curve by which side is short and, for the split layout's two calls, by the
short side's length, `profile_seconds`). An op kind
the profile does not hold is left to the roofline. Everything broadcasts over numpy arrays of
shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from costmodel.errors import CoreplanError
from costmodel.tomlfile import toml_string
import costmodel.ops  # noqa: F401  (registers the formulas)
from costmodel.registry import REGISTRY


@dataclass(frozen=True)
class Curve:
    """Seconds per launch measured at increasing work for one key of one op kind."""

    key: tuple
    work: tuple[float, ...]
    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.work) != len(self.seconds) or not self.work:
            raise CoreplanError(f"profile curve {self.key}: needs matching work and seconds")
        if any(not (math.isfinite(w) and w > 0) for w in self.work + self.seconds):
            raise CoreplanError(f"profile curve {self.key}: work and seconds must be positive")
        if list(self.work) != sorted(self.work):
            raise CoreplanError(f"profile curve {self.key}: work must increase")

    def seconds_at(self, work):
        """Interpolated seconds per launch at `work` (float or array)."""
        log_w = np.log(np.asarray(self.work, dtype=float))
        log_rate = log_w - np.log(np.asarray(self.seconds, dtype=float))  # log(work per second)
        x = np.log(np.maximum(np.asarray(work, dtype=float), 1e-30))
        return np.exp(x - np.interp(x, log_w, log_rate))


@dataclass(frozen=True)
class Profile:
    """A device's measured op times.

    Args:
        dtype: the dtype the ops were measured in.
        threads: CPU threads during measurement (0 on a GPU).
        dispatch_s: the fixed cost of one trivial op launch.
        curves: op kind -> its curves.
        source: how it was measured (command, machine, date).
        machine_state: what the machine was doing meanwhile (load, CPU steal, the probe).
        probe_ms: the machine probe's median reading (reference/timing.Probe) while the whole
            models the calibration timed ran (else while the curves were measured): the speed
            the predictions stand for. A measurement's own probe_ms over it is how much slower
            the machine was then (planners/accuracy.probe_scale).
        calibration_ms: the calibration's whole models as the profile timed them, by
            configuration (Measurement.label()): what `coreplan recheck` times again to see how
            far the machine has moved since (planners/recheck.py).
    """

    dtype: str
    threads: int
    dispatch_s: float
    curves: dict[str, tuple[Curve, ...]] = field(default_factory=dict)
    source: str = ""
    machine_state: str = ""
    probe_ms: float | None = None
    calibration_ms: dict[str, float] = field(default_factory=dict)

    def seconds(self, op: str, shape, launches):
        """Predicted seconds of `launches` launches of graph op `op` at `shape` (its typed shape),
        or None when the profile does not hold this op kind."""
        record = REGISTRY.get(op)
        if record is None or op not in self.curves:
            return None
        per_launch = record.profiled_seconds(lambda key, work: self._time(op, key, work), shape)
        return None if per_launch is None else per_launch * launches

    def _time(self, kind: str, key: tuple, work):
        """Seconds at `work` on the curve of `key`; else between the two that bracket it in one
        number; else on the nearest; None where no curve of this kind shares its categories."""
        curves = self.curves.get(kind, ())
        curve = next((c for c in curves if c.key == key), None)
        if curve is None:
            between = _bracket(curves, key)
            if between is not None:
                (low, x_low), (high, x_high), x = between
                f = (math.log(x) - math.log(x_low)) / (math.log(x_high) - math.log(x_low))
                return np.exp((1 - f) * np.log(low.seconds_at(work))
                              + f * np.log(high.seconds_at(work)))
            same = [c for c in curves if _categorical(c.key) == _categorical(key)]
            if not same:
                return None
            curve = min(same, key=lambda c: _distance(c.key, key))
        return curve.seconds_at(work)


def _bracket(curves, key: tuple):
    """Two curves that differ from `key` in one numeric part only, one below and one above
    (the split layout's curves, one per C: C=24 between 16 and 32): the nearest on each side,
    ((curve, its value), (curve, its value), the key's value); else None."""
    for i, x in enumerate(key):
        if not _numeric(x) or not x > 0:
            continue
        rest = key[:i] + key[i + 1:]
        along = [(c, c.key[i]) for c in curves if len(c.key) == len(key)
                 and c.key[:i] + c.key[i + 1:] == rest and _numeric(c.key[i]) and c.key[i] > 0]
        below = [cv for cv in along if cv[1] < x]
        above = [cv for cv in along if cv[1] > x]
        if below and above:
            return (max(below, key=lambda cv: cv[1]), min(above, key=lambda cv: cv[1]), x)
    return None


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _categorical(key: tuple) -> tuple:
    return tuple(k for k in key if not _numeric(k))


def _distance(a: tuple, b: tuple) -> float:
    nums = [(x, y) for x, y in zip(a, b) if isinstance(x, (int, float)) and not isinstance(x, bool)]
    return sum((math.log(max(x, 1)) - math.log(max(y, 1))) ** 2 for x, y in nums)


# --------------------------------------------------------------------------- TOML form
def profile_from_table(where: str, table: dict) -> Profile:
    """A Profile from a device file's `[devices.NAME.profile]` table; errors name the field."""
    def bad(key: str, why: str) -> CoreplanError:
        return CoreplanError(f"{where}.profile.{key}: {why}")

    if not isinstance(table, dict):
        raise bad("", "expected a table")
    for key in ("dtype", "threads", "dispatch_s", "curves"):
        if key not in table:
            raise bad(key, "missing")
    dispatch = table["dispatch_s"]
    if not isinstance(dispatch, (int, float)) or isinstance(dispatch, bool) or not (
            math.isfinite(dispatch) and 0 <= dispatch < 1):
        raise bad("dispatch_s", f"expected seconds in [0, 1), got {dispatch!r}")
    if not isinstance(table["curves"], list):
        raise bad("curves", "expected a list of { kind, key, work, seconds } tables")
    curves: dict[str, list[Curve]] = {}
    for index, entry in enumerate(table["curves"]):
        if not isinstance(entry, dict) or set(entry) != {"kind", "key", "work", "seconds"}:
            raise bad(f"curves[{index}]", "expected { kind, key, work, seconds }")
        try:
            curve = Curve(tuple(entry["key"]), tuple(float(w) for w in entry["work"]),
                          tuple(float(t) for t in entry["seconds"]))
        except CoreplanError as err:
            raise bad(f"curves[{index}]", str(err)) from None
        except (TypeError, ValueError):
            raise bad(f"curves[{index}]", "work and seconds must be lists of numbers") from None
        curves.setdefault(str(entry["kind"]), []).append(curve)
    models = table.get("calibration_ms", {})
    if not isinstance(models, dict) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
            for v in models.values()):
        raise bad("calibration_ms", "expected a table of configuration = positive milliseconds")
    return Profile(str(table["dtype"]), int(table["threads"]), float(dispatch),
                   {k: tuple(v) for k, v in curves.items()}, str(table.get("source", "")),
                   str(table.get("machine_state", "")), _positive_or_none(table, "probe_ms", bad),
                   {str(k): float(v) for k, v in models.items()})


def _positive_or_none(table: dict, name: str, bad) -> float | None:
    value = table.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise bad(name, f"expected a positive number, got {value!r}")
    return float(value)


def profile_toml(name: str, profile: Profile) -> list[str]:
    """The `[devices.NAME.profile]` lines of a device file."""
    lines = [f"[devices.{name}.profile]", f'dtype = "{profile.dtype}"',
             f"threads = {profile.threads}", f"dispatch_s = {profile.dispatch_s:.6g}",
             f"source = {toml_string(profile.source)}",
             *([f"machine_state = {toml_string(profile.machine_state)}"]
               if profile.machine_state else []),
             *([f"probe_ms = {profile.probe_ms:.6g}"] if profile.probe_ms else []),
             *(["calibration_ms = { " + ", ".join(f"{toml_string(k)} = {v:.6g}" for k, v in
                                                   profile.calibration_ms.items()) + " }"]
               if profile.calibration_ms else []), "curves = ["]
    for kind, curves in profile.curves.items():
        for c in curves:
            key = ", ".join(toml_string(k) if isinstance(k, str) else
                            ("true" if k is True else "false" if k is False else str(k))
                            for k in c.key)
            work = ", ".join(f"{w:.6g}" for w in c.work)
            seconds = ", ".join(f"{t:.6g}" for t in c.seconds)
            lines.append(f'  {{ kind = "{kind}", key = [{key}], work = [{work}], '
                         f"seconds = [{seconds}] }},")
    lines.append("]")
    return lines
