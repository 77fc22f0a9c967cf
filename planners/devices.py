"""Device catalog: frozen DeviceSpec entries loaded from planners/devices.toml or a user file."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from costmodel.errors import CoreplanError, lookup, read_text
from costmodel.registry import MATRIX_CLASSES, OP_CLASSES
from planners.footprint import FootprintModel, model_from_table
from planners.profile import Profile, profile_from_table

CATALOG_PATH = Path(__file__).with_name("devices.toml")
PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "int8")


@dataclass(frozen=True)
class DeviceSpec:
    """One device. Units are in the field names; peaks are dense (no sparsity)."""

    name: str
    description: str
    kind: str  # gpu | cpu
    peak_flops_per_s: dict[str, float]
    memory_bandwidth_bytes_per_s: float
    memory_capacity_bytes: float
    kernel_launch_overhead_s: float
    efficiency: dict[str, float]
    source: str
    latency_interval: tuple[float, float] | None = None  # calibrated [lo, hi] multipliers
    calibrated: bool = False
    profile: Profile | None = None  # measured op times (coreplan profile), used where they apply
    footprint: FootprintModel | None = None  # what a process occupies beyond live tensors
    sm_count: int | None = None  # GPU streaming multiprocessors (tile and wave quantization)
    boost_clock_hz: float | None = None  # GPU boost clock (the clock its peaks are quoted at)
    board_power_w: float | None = None  # GPU board power limit (TDP / total graphics power)
    boost_is_max: bool = False  # the datasheet's boost clock is the most the GPU ever runs at
    power_coefficient: float | None = None  # W per (TFLOP/s x GHz^2) of matrix work (clock_scale)

    def peak(self, dtype: str) -> float:
        if dtype not in self.peak_flops_per_s:
            have = ", ".join(self.peak_flops_per_s)
            raise CoreplanError(f"device {self.name} has no {dtype} peak (it lists: {have})")
        return self.peak_flops_per_s[dtype]

    def clock_scale(self) -> float:
        """The share of the boost clock a GPU sustains under full matrix load (its power limit).

        Dynamic power is work rate x V^2 and V rises with f, so matrix work at clock f draws
            P(f) = k * R16(f) * f^2,  R16(f) = R16_boost * f / f_boost   [W; TFLOP/s, GHz]
        (R16: the 16-bit tensor rate; k: `power_coefficient`, one number fitted across devices).
        Where P(f_boost) exceeds the board power the clock settles where P(f) = board power:
            scale = min(1, (board_power / (k * R16_boost * f_boost^2)) ** (1/3)).
        1 where a number is missing (CPUs, devices without a board power)."""
        if (self.kind != "gpu" or not self.board_power_w or not self.boost_clock_hz
                or not self.power_coefficient):
            return 1.0
        rate = self.peak_flops_per_s.get("fp16") or self.peak_flops_per_s.get("bf16")
        if not rate:
            return 1.0
        demand_w = self.power_coefficient * rate / 1e12 * (self.boost_clock_hz / 1e9) ** 2
        return min(1.0, (self.board_power_w / demand_w) ** (1 / 3))


def _positive(path: str, name: str, key: str, value, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise CoreplanError(f"device file {path}: [devices.{name}] {key}: expected a positive "
                            f"number, got {value!r}")
    return float(value)


def _table(path: str, name: str, key: str, value, allowed) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise CoreplanError(f"device file {path}: [devices.{name}] {key}: expected a table like "
                            f"{{ {allowed[0]} = ... }}")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise CoreplanError(f"device file {path}: [devices.{name}] {key}.{unknown[0]}: unknown key; "
                            f"choose from {', '.join(allowed)}")
    return {k: _positive(path, name, f"{key}.{k}", v) for k, v in value.items()}


def _footprint(path: str, name: str, table: dict, defaults: dict, kind: str):
    """The device's own footprint table, else the catalog's default for its kind."""
    own = table.get("footprint")
    if own is None:
        own = (defaults.get("footprint") or {}).get(kind)
    return None if own is None else model_from_table(f"device file {path}: [devices.{name}]", own)


def _count(path: str, name: str, key: str, value) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise CoreplanError(f"device file {path}: [devices.{name}] {key}: expected a positive "
                            f"integer, got {value!r}")
    return value


KNOWN_FIELDS = {"description", "kind", "peak_flops_per_s", "memory_bandwidth_bytes_per_s",
                "memory_capacity_bytes", "kernel_launch_overhead_s", "efficiency", "source",
                "latency_interval", "calibrated_from", "profile", "sm_count", "boost_clock_hz",
                "footprint", "board_power_w", "boost_is_max", "power_coefficient"}


def device_from_table(path: str, name: str, table: dict, defaults: dict) -> DeviceSpec:
    if not isinstance(table, dict):
        raise CoreplanError(f"device file {path}: [devices.{name}] must be a table")
    unknown = sorted(set(table) - KNOWN_FIELDS)
    if unknown:
        raise CoreplanError(f"device file {path}: [devices.{name}] {unknown[0]}: unknown field")
    for key in ("peak_flops_per_s", "memory_bandwidth_bytes_per_s", "memory_capacity_bytes", "source"):
        if key not in table:
            raise CoreplanError(f"device file {path}: [devices.{name}] {key}: missing")
    if not isinstance(table["source"], str) or not table["source"].strip():
        raise CoreplanError(f"device file {path}: [devices.{name}] source: every device needs one")
    kind = table.get("kind", "gpu")
    if kind not in ("gpu", "cpu"):
        raise CoreplanError(f"device file {path}: [devices.{name}] kind: expected gpu or cpu")
    by_kind = defaults.get(kind) if isinstance(defaults.get(kind), dict) else {}
    efficiency = dict(defaults.get("efficiency", {}))
    efficiency.update(by_kind.get("efficiency", {}))
    own = _table(path, name, "efficiency", table["efficiency"], OP_CLASSES) \
        if "efficiency" in table else {}
    efficiency.update(own)
    efficiency = _table(path, name, "efficiency", efficiency, OP_CLASSES)
    if set(efficiency) != set(OP_CLASSES):
        raise CoreplanError(f"device file {path}: [devices.{name}] efficiency: needs "
                            f"{', '.join(OP_CLASSES)}")
    interval = table.get("latency_interval")
    if interval is None and "efficiency" not in table and "profile" not in table:
        interval = by_kind.get("latency_interval")  # the held-out spread of the default fit
    if interval is not None and (not isinstance(interval, list) or len(interval) != 2
                                 or not 0 < interval[0] <= 1 <= interval[1]):
        raise CoreplanError(f"device file {path}: [devices.{name}] latency_interval: expected "
                            f"[lo <= 1, hi >= 1]")
    overhead = table.get("kernel_launch_overhead_s", by_kind.get(
        "kernel_launch_overhead_s", defaults.get("kernel_launch_overhead_s", 0)))
    boost_is_max = table.get("boost_is_max", False)
    if not isinstance(boost_is_max, bool):
        raise CoreplanError(f"device file {path}: [devices.{name}] boost_is_max: expected true or "
                            f"false, got {boost_is_max!r}")
    device = DeviceSpec(
        name=name, description=str(table.get("description", name)), kind=kind,
        peak_flops_per_s=_table(path, name, "peak_flops_per_s", table["peak_flops_per_s"], PEAK_DTYPES),
        memory_bandwidth_bytes_per_s=_positive(path, name, "memory_bandwidth_bytes_per_s",
                                               table["memory_bandwidth_bytes_per_s"]),
        memory_capacity_bytes=_positive(path, name, "memory_capacity_bytes",
                                        table["memory_capacity_bytes"]),
        kernel_launch_overhead_s=_positive(path, name, "kernel_launch_overhead_s", overhead, True),
        efficiency=efficiency, source=table["source"],
        latency_interval=tuple(interval) if interval else None,
        calibrated="calibrated_from" in table,
        profile=(profile_from_table(f"device file {path}: [devices.{name}]", table["profile"])
                 if "profile" in table else None),
        footprint=_footprint(path, name, table, defaults, kind),
        sm_count=_count(path, name, "sm_count", table.get("sm_count")),
        boost_clock_hz=_optional(path, name, "boost_clock_hz", table),
        board_power_w=_optional(path, name, "board_power_w", table),
        boost_is_max=boost_is_max,
        power_coefficient=_optional(path, name, "power_coefficient",
                                    {**by_kind, **table}))
    device = _cap_default_efficiency(device, own)
    _check_physical(path, device)
    return device


def _optional(path: str, name: str, key: str, table: dict) -> float | None:
    return _positive(path, name, key, table[key]) if key in table else None



def _cap_default_efficiency(device: DeviceSpec, own: dict) -> DeviceSpec:
    """A default matrix efficiency, fitted on GPUs whose clocks run above their rated boost, must
    not let a GPU whose boost clock is its maximum beat its datasheet peak: efficiency x
    clock_scale <= 1 for the classes the device's own table does not set."""
    if not device.boost_is_max:
        return device
    limit = 1.0 / device.clock_scale()
    capped = {c: (min(eta, limit) if c in MATRIX_CLASSES and c not in own else eta)
              for c, eta in device.efficiency.items()}
    return replace(device, efficiency=capped)


# Beyond these a number is a unit mistake, not a device: 100 PFLOP/s is ~50x the fastest dense
# accelerator rate, 100 TB/s and 100 TB ~20x the largest HBM bandwidth and capacity on one device.
PHYSICAL_LIMITS = {"peak_flops_per_s": 1e17, "memory_bandwidth_bytes_per_s": 1e14,
                   "memory_capacity_bytes": 1e14, "kernel_launch_overhead_s": 1.0}
# efficiency scales the roofline or, where a profile measured the op, the profiled time (a
# calibration factor; 0.2-2 is plausible there). The roofline's matrix peak is the datasheet's, at
# the rated boost clock; GeForce and workstation GPUs run above it when power allows (the RTX
# 3090's own timm data needs gemm 1.1: ~1.86 GHz against 1.695 rated), so up to 1.25 is physical;
# more is a unit mistake or a fit gone wrong.
MAX_EFFICIENCY = {False: 1.25, True: 2.0}


def _check_physical(path, d: DeviceSpec) -> None:
    where = f"device file {path}: [devices.{d.name}]"
    values = {"peak_flops_per_s": max(d.peak_flops_per_s.values()),
              "memory_bandwidth_bytes_per_s": d.memory_bandwidth_bytes_per_s,
              "memory_capacity_bytes": d.memory_capacity_bytes,
              "kernel_launch_overhead_s": d.kernel_launch_overhead_s}
    for key, value in values.items():
        if value > PHYSICAL_LIMITS[key]:
            raise CoreplanError(f"{where} {key}: {value:g} is above {PHYSICAL_LIMITS[key]:g}, more "
                                f"than any device has; check the units")
    limit = MAX_EFFICIENCY[d.profile is not None]
    for op_class, eta in d.efficiency.items():
        if eta > limit:
            what = ("a profiled time's calibration factor" if d.profile is not None
                    else "the fraction of the roofline an op reaches")
            raise CoreplanError(f"{where} efficiency.{op_class}: {eta:g} is above {limit:g} "
                                f"({what}); it would predict faster than physically possible")


def load_devices(path: str | Path) -> dict[str, DeviceSpec]:
    """Every `[devices.NAME]` table of a TOML file (with the catalog's [defaults])."""
    path = Path(path)
    try:
        data = tomllib.loads(read_text(path, "device file"))
    except tomllib.TOMLDecodeError as err:
        raise CoreplanError(f"device file {path}: malformed TOML: {' '.join(str(err).split())}") \
            from None
    devices = data.get("devices")
    if not isinstance(devices, dict) or not devices:
        raise CoreplanError(f"device file {path}: no [devices.NAME] tables")
    defaults = data.get("defaults") or (catalog_defaults() if path != CATALOG_PATH else {})
    return {name: device_from_table(str(path), name, table, defaults)
            for name, table in devices.items()}


@lru_cache(maxsize=1)
def catalog_defaults() -> dict:
    """The catalog's documented default efficiencies and launch overhead ([defaults])."""
    return tomllib.loads(CATALOG_PATH.read_text()).get("defaults", {})


@lru_cache(maxsize=1)
def device_catalog() -> dict[str, DeviceSpec]:
    return load_devices(CATALOG_PATH)


def get_device(name: str, device_file: str | Path | None = None) -> DeviceSpec:
    """A device from a user file (first) or the catalog; unknown names list close matches."""
    devices = dict(device_catalog())
    if device_file is not None:
        devices.update(load_devices(device_file))
    return lookup("device", name, devices, cutoff=0.4)


def device_toml(d: DeviceSpec, *, comments: tuple[str, ...] = (),
                calibrated_from: str | None = None) -> str:
    """The text of a device file holding `d` (its profile included): for --device-file."""
    from planners.profile import profile_toml

    peaks = ", ".join(f"{k} = {v:.6g}" for k, v in d.peak_flops_per_s.items())
    eff = ", ".join(f"{k} = {v:.6g}" for k, v in d.efficiency.items())
    lines = [f"# {c}" for c in comments] + [
        f"[devices.{d.name}]", f"description = {_quote(d.description)}", f'kind = "{d.kind}"',
        f"peak_flops_per_s = {{ {peaks} }}",
        f"memory_bandwidth_bytes_per_s = {d.memory_bandwidth_bytes_per_s:.6g}",
        f"memory_capacity_bytes = {d.memory_capacity_bytes:.6g}",
        f"kernel_launch_overhead_s = {d.kernel_launch_overhead_s:.6g}",
        f"efficiency = {{ {eff} }}"]
    if d.sm_count:
        lines.append(f"sm_count = {d.sm_count}")
    if d.boost_clock_hz:
        lines.append(f"boost_clock_hz = {d.boost_clock_hz:.6g}")
    if d.board_power_w:
        lines.append(f"board_power_w = {d.board_power_w:.6g}")
    if d.boost_is_max:
        lines.append("boost_is_max = true")
    if d.power_coefficient:
        lines.append(f"power_coefficient = {d.power_coefficient:.6g}")
    if d.latency_interval:
        lines.append(f"latency_interval = [{d.latency_interval[0]:.6g}, {d.latency_interval[1]:.6g}]")
    if calibrated_from:
        lines.append(f"calibrated_from = {_quote(calibrated_from)}")
    lines.append(f"source = {_quote(d.source)}")
    if d.footprint is not None and d.footprint.source.startswith("measured by `coreplan profile`"):
        f = d.footprint
        per = lambda terms: ", ".join(f"{k} = {v:.6g}" for k, v in terms.items())  # noqa: E731
        lines += ["", f"[devices.{d.name}.footprint]",
                  f"baseline_bytes = {{ {per(f.baseline_bytes)} }}",
                  f"weights_factor = {f.weights_factor:.6g}",
                  f"build_bytes = {{ {per(f.build_bytes)} }}",
                  f"activation_factor = {f.activation_factor:.6g}",
                  f"pack_factor = {f.pack_factor:.6g}", f"workspace_bytes = {f.workspace_bytes:.6g}",
                  f"source = {_quote(f.source)}"]
    if d.profile is not None:
        lines += ["", *profile_toml(d.name, d.profile)]
    return "\n".join(lines) + "\n"


def write_device_file(path: str | Path, text: str, force: bool = False) -> Path:
    """Write a device file whole or not at all (a temporary file renamed into place); refuses the
    built-in catalog, and an existing file unless `force`."""
    import os
    import tempfile

    path = Path(path)
    if path.resolve() == CATALOG_PATH.resolve():
        raise CoreplanError(f"{path} is coreplan's built-in device catalog: write elsewhere")
    if path.is_dir():
        raise CoreplanError(f"{path} is a directory: choose a file name")
    if path.exists() and not force:
        from costmodel.errors import ArgumentError

        raise ArgumentError("force", f"is needed to replace {path}, which exists")
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.",
                                             suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as err:
        raise CoreplanError(f"cannot write {path}: {err.strerror}") from None
    return path


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
