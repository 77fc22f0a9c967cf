"""Device catalog: frozen DeviceSpec entries loaded from planners/devices.toml or a user file."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from costmodel.errors import CoreplanError, lookup, read_text
from planners.footprint import FootprintModel, model_from_table
from planners.profile import Profile, profile_from_table

CATALOG_PATH = Path(__file__).with_name("devices.toml")
OP_CLASSES = ("gemm", "attention", "elementwise")
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

    def peak(self, dtype: str) -> float:
        if dtype not in self.peak_flops_per_s:
            have = ", ".join(self.peak_flops_per_s)
            raise CoreplanError(f"device {self.name} has no {dtype} peak (it lists: {have})")
        return self.peak_flops_per_s[dtype]


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
                "footprint"}


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
    efficiency = dict(defaults.get("efficiency", {}))
    efficiency.update(table.get("efficiency", {}))
    efficiency = _table(path, name, "efficiency", efficiency, OP_CLASSES)
    if set(efficiency) != set(OP_CLASSES):
        raise CoreplanError(f"device file {path}: [devices.{name}] efficiency: needs "
                            f"{', '.join(OP_CLASSES)}")
    interval = table.get("latency_interval")
    if interval is not None and (not isinstance(interval, list) or len(interval) != 2
                                 or not 0 < interval[0] <= 1 <= interval[1]):
        raise CoreplanError(f"device file {path}: [devices.{name}] latency_interval: expected "
                            f"[lo <= 1, hi >= 1]")
    kind = table.get("kind", "gpu")
    if kind not in ("gpu", "cpu"):
        raise CoreplanError(f"device file {path}: [devices.{name}] kind: expected gpu or cpu")
    overhead = table.get("kernel_launch_overhead_s", defaults.get("kernel_launch_overhead_s", 0))
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
        boost_clock_hz=(_positive(path, name, "boost_clock_hz", table["boost_clock_hz"])
                        if "boost_clock_hz" in table else None))
    _check_physical(path, device)
    return device


# Beyond these a number is a unit mistake, not a device: 100 PFLOP/s is ~50x the fastest dense
# accelerator rate, 100 TB/s and 100 TB ~20x the largest HBM bandwidth and capacity on one device.
PHYSICAL_LIMITS = {"peak_flops_per_s": 1e17, "memory_bandwidth_bytes_per_s": 1e14,
                   "memory_capacity_bytes": 1e14, "kernel_launch_overhead_s": 1.0}
# efficiency scales the roofline (at most 1: no op beats its roofline) or, where a profile
# measured the op, the profiled time (a calibration factor; 0.2-2 is plausible there)
MAX_EFFICIENCY = {False: 1.0, True: 2.0}


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
