"""Device catalog: frozen DeviceSpec entries loaded from planners/devices.toml or a user file."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from costmodel.errors import CoreplanError, lookup

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


KNOWN_FIELDS = {"description", "kind", "peak_flops_per_s", "memory_bandwidth_bytes_per_s",
                "memory_capacity_bytes", "kernel_launch_overhead_s", "efficiency", "source",
                "latency_interval", "calibrated_from"}


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
    return DeviceSpec(
        name=name, description=str(table.get("description", name)), kind=kind,
        peak_flops_per_s=_table(path, name, "peak_flops_per_s", table["peak_flops_per_s"], PEAK_DTYPES),
        memory_bandwidth_bytes_per_s=_positive(path, name, "memory_bandwidth_bytes_per_s",
                                               table["memory_bandwidth_bytes_per_s"]),
        memory_capacity_bytes=_positive(path, name, "memory_capacity_bytes",
                                        table["memory_capacity_bytes"]),
        kernel_launch_overhead_s=_positive(path, name, "kernel_launch_overhead_s", overhead, True),
        efficiency=efficiency, source=table["source"],
        latency_interval=tuple(interval) if interval else None,
        calibrated="calibrated_from" in table)


def load_devices(path: str | Path) -> dict[str, DeviceSpec]:
    """Every `[devices.NAME]` table of a TOML file (with the catalog's [defaults])."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CoreplanError(f"device file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CoreplanError(f"device file {path}: malformed TOML: {err}") from None
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
