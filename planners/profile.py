"""Measured op times (a device profile) and predictions interpolated from them (torch-free).

A profile is data: for each op kind, curves of measured seconds per launch against the op's work,
keyed by the op's discrete shape (a linear layer's in/out features, an attention call's head dim,
mask and which side is short). `coreplan profile` measures them on the machine at hand
(`reference/profile.py`) and stores them in a device file (`[devices.NAME.profile]`).

Prediction for one op of the cost graph: find its curve (the same key, else the nearest key in log
space, numeric parts only), interpolate log(throughput) piecewise-linearly in log(work), clamped at
the curve's ends (beyond the largest measured size the throughput is taken as flat), and divide the
op's work by it; times its launches. Work is the op's `flop` count for matmul-class ops and its
element count for elementwise ops. An op kind the profile does not hold is left to the roofline.
Everything broadcasts over numpy arrays of shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from costmodel.errors import CoreplanError

# op kind -> how a graph op's shape becomes (curve key, work per launch)
ELEMENTWISE_KINDS = ("layer_norm", "gelu", "silu", "mul", "add", "rope", "rope_table", "tanh",
                     "softmax")
SHORT = 64  # an attention side of at most this many tokens is "short" (the split layout's cores)


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
    """

    dtype: str
    threads: int
    dispatch_s: float
    curves: dict[str, tuple[Curve, ...]] = field(default_factory=dict)
    source: str = ""

    def seconds(self, op: str, shape: dict, launches):
        """Predicted seconds of `launches` launches of graph op `op` at `shape`, or None when the
        profile does not hold this op kind."""
        route = _ROUTES.get(op)
        per_launch = route(self, shape) if route is not None else None
        return None if per_launch is None else per_launch * launches

    def _curve(self, kind: str, key: tuple) -> Curve | None:
        curves = self.curves.get(kind, ())
        exact = [c for c in curves if c.key == key]
        if exact:
            return exact[0]
        same = [c for c in curves if _categorical(c.key) == _categorical(key)]
        if not same:
            return None
        return min(same, key=lambda c: _distance(c.key, key))

    def _time(self, kind: str, key: tuple, work):
        curve = self._curve(kind, key)
        if curve is None:
            return None
        return curve.seconds_at(work)


def _categorical(key: tuple) -> tuple:
    return tuple(k for k in key if not isinstance(k, (int, float)) or isinstance(k, bool))


def _distance(a: tuple, b: tuple) -> float:
    nums = [(x, y) for x, y in zip(a, b) if isinstance(x, (int, float)) and not isinstance(x, bool)]
    return sum((math.log(max(x, 1)) - math.log(max(y, 1))) ** 2 for x, y in nums)


# --------------------------------------------------------------------------- routes: graph op -> curve
def _linear(p: Profile, s: dict):
    work = 2 * s["tokens"] * s["in_features"] * s["out_features"]
    return p._time("linear", (s["in_features"], s["out_features"]), work)


def _conv(p: Profile, s: dict):
    depth = s["in_chans"] * s["kernel"] * s["kernel"]
    work = 2 * s["batch"] * s["out_pixels"] * s["out_chans"] * depth
    return p._time("conv2d", (depth, s["out_chans"]), work)


def _sdpa(p: Profile, s: dict):
    """Three regimes, chosen per element: few queries (the cores' call), few keys (the patches'
    call), and the rest (square-ish: dense and masked attention)."""
    q, kv, d, masked = s["q_len"], s["kv_len"], s["head_dim"], bool(s.get("masked", False))
    work = 4 * s["batch"] * s["heads"] * q * kv * d
    regimes = {
        "few_queries": p._time("sdpa", ("few_queries", d, masked), work),
        "few_keys": p._time("sdpa", ("few_keys", d, masked), work),
        "square": p._time("sdpa", ("square", d, masked), work),
    }
    if any(v is None for v in regimes.values()):
        return None
    q, kv = np.asarray(q), np.asarray(kv)
    return np.where(q <= SHORT, np.where(kv <= SHORT, regimes["square"], regimes["few_queries"]),
                    np.where(kv <= SHORT, regimes["few_keys"], regimes["square"]))


def _elementwise(kind: str):
    def route(p: Profile, s: dict):
        return p._time(kind, (kind,), s["numel"])
    return route


_ROUTES = {"linear": _linear, "conv2d": _conv, "sdpa": _sdpa,
           **{k: _elementwise(k) for k in ELEMENTWISE_KINDS}}


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
    return Profile(str(table["dtype"]), int(table["threads"]), float(dispatch),
                   {k: tuple(v) for k, v in curves.items()}, str(table.get("source", "")))


def profile_toml(name: str, profile: Profile) -> list[str]:
    """The `[devices.NAME.profile]` lines of a device file."""
    lines = [f"[devices.{name}.profile]", f'dtype = "{profile.dtype}"',
             f"threads = {profile.threads}", f"dispatch_s = {profile.dispatch_s:.6g}",
             f"source = {_quote(profile.source)}", "curves = ["]
    for kind, curves in profile.curves.items():
        for c in curves:
            key = ", ".join(_quote(k) if isinstance(k, str) else
                            ("true" if k is True else "false" if k is False else str(k))
                            for k in c.key)
            work = ", ".join(f"{w:.6g}" for w in c.work)
            seconds = ", ".join(f"{t:.6g}" for t in c.seconds)
            lines.append(f'  {{ kind = "{kind}", key = [{key}], work = [{work}], '
                         f"seconds = [{seconds}] }},")
    lines.append("]")
    return lines


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
