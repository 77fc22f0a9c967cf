"""Device catalog: frozen DeviceSpec entries loaded from planners/devices.toml or a user file."""

from __future__ import annotations

import math
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

from costmodel.errors import CoreplanError, lookup
from costmodel.registry import MATRIX_CLASSES, OP_CLASSES
from costmodel.tomlfile import load_tables, toml_string
from planners.footprint import FootprintModel, footprint_toml, model_from_table
from planners.limits import MAX_SERVICE_CV
from planners.profile import Profile, profile_from_table, profile_toml

CATALOG_PATH = Path(__file__).with_name("devices.toml")
PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "int8")
HOST_RUNTIMES = ("eager", "compiled", "unfused")  # planners.roofline.BASE_RUNTIMES
DEVICE_KINDS = ("gpu", "cpu")
# a calibration whose own held-out MAPE is above this makes every plan on the device say that its
# latencies are unreliable (DeviceSpec.calibration_warning): the target a plan is held to is ±10%
UNRELIABLE_CALIBRATION = 0.10


def spec_field(kind: str | None, unit: str = "", description: str = "", *, default=MISSING,
               column=None):
    """A `DeviceSpec` field, declared once: how a device file holds it (`kind`: a reader and
    writer below; None: not a file key), its unit and description, and the `devices` table's
    column (header, scale), if it has one."""
    metadata = dict(kind=kind, unit=unit, description=description, column=column)
    return field(metadata=metadata) if default is MISSING else field(default=default,
                                                                      metadata=metadata)


@dataclass(frozen=True)
class DeviceSpec:
    """One device. Units are in the field names; peaks are dense (no sparsity). Each field is
    declared once (`spec_field`): the device file's reader and writer and the `devices` table
    derive from the declarations (`FIELDS`)."""

    name: str = spec_field(None, "", "what files and commands call it", column="device")
    description: str = spec_field("text", "", "what it is")
    kind: str = spec_field("kind", "", "gpu or cpu", column="kind")
    peak_flops_per_s: dict[str, float] = spec_field(
        "rates", "FLOP/s", "dense peak per dtype (2 per multiply-add): the matrix units', the "
        "vector unit's for fp32", column=("TF/s", 1e-12))
    memory_bandwidth_bytes_per_s: float = spec_field("positive", "B/s", "DRAM/HBM bandwidth",
                                                     column=("GB/s", 1e-9))
    memory_capacity_bytes: float = spec_field("positive", "B", "memory usable by one process",
                                              column=("GB", 1e-9))
    kernel_launch_overhead_s: float = spec_field("seconds", "s", "fixed cost per op launch")
    efficiency: dict[str, float] = spec_field(
        "classes", "", "achieved fraction of the roofline (or of a profiled time) per op class")
    source: str = spec_field("source", "", "where its numbers come from")
    latency_interval: tuple[float, float] | None = spec_field(
        "interval", "", "[lo, hi] multipliers of a predicted latency (5-95% of measured / "
        "predicted)", default=None)
    calibrated: bool = spec_field(None, "", "fitted on its own measurements (file key "
                                  "calibrated_from: which)", default=False)
    profile: Profile | None = spec_field("profile", "", "measured op times (coreplan profile)",
                                         default=None)
    footprint: FootprintModel | None = spec_field(
        "footprint", "", "what a process occupies beyond live tensors", default=None)
    sm_count: int | None = spec_field("count", "SMs", "GPU streaming multiprocessors (tile and "
                                      "wave quantization)", default=None)
    boost_clock_hz: float | None = spec_field("positive", "Hz", "GPU boost clock (the clock its "
                                              "peaks are quoted at)", default=None)
    board_power_w: float | None = spec_field("positive", "W", "GPU board power limit (TDP / "
                                             "total graphics power)", default=None, column=("W", 1))
    boost_is_max: bool = spec_field("flag", "", "the datasheet's boost clock is the most the GPU "
                                    "ever runs at", default=False)
    power_coefficient: float | None = spec_field(
        "positive", "W/(TFLOP/s GHz^2)", "power drawn per unit of matrix work (clock_scale)",
        default=None)
    host_launch_s: dict[str, float] | None = spec_field(
        "runtimes", "s", "GPU: what the host CPU spends issuing one launch, per runtime (eager, "
        "compiled, unfused); the GPU waits on it when its own work is shorter", default=None)
    measured_on: str | None = spec_field(
        "text", "", "the machine its numbers were measured on: CPU (model x cores) or GPU, "
        "threads, torch version", default=None)
    service_cv: float | None = spec_field(
        "fraction", "", "coefficient of variation of a forward's time over repeated runs (the "
        "median over measured rows of IQR / 1.349 / median); serve's default --service-cv",
        default=None)
    calibration_mape: float | None = spec_field(
        "fraction", "", "the calibration's own held-out error: MAPE of its measured rows, each "
        "predicted by a fit made without its group (coreplan profile, calibrate); above "
        "UNRELIABLE_CALIBRATION its latencies are not to be relied on", default=None)
    price_per_hour_usd: float | None = spec_field(
        "positive", "USD/h", "what one device costs per hour (a public cloud's on-demand list "
        "price; needs price_source)", default=None, column=("$/h", 1))
    price_source: str | None = spec_field("text", "", "where the price comes from and when it "
                                          "was read", default=None)

    def measured_elsewhere(self, here: str | None = None) -> str | None:
        """For a device measured on a CPU (`measured_on`): a line saying so when this machine's
        CPU model is another one (its numbers are that machine's), else None."""
        if self.kind != "cpu" or not self.measured_on:
            return None
        here = here or this_cpu()
        there = self.measured_on.split(",")[0].strip()
        if there == here:
            return None
        return (f"{self.name} was measured on {self.measured_on}; this machine is {here}: its "
                f"predictions are that machine's (`coreplan profile` measures this one)")

    def calibration_warning(self) -> str | None:
        """A line when the device's own calibration predicted its held-out rows worse than
        UNRELIABLE_CALIBRATION (MAPE), None otherwise. On a CPU profile it means the op times
        were measured while the machine ran unlike itself: every profile of the developers' VM
        above it missed the held-out benchmark's goal on both runs after it (README)."""
        if self.calibration_mape is None or self.calibration_mape <= UNRELIABLE_CALIBRATION:
            return None
        again = ("`coreplan profile` it again on a quiet machine" if self.profile is not None
                 else "calibrate it on more measurements, timed on a quiet machine")
        return (f"{self.name}'s calibration predicted its own held-out rows with MAPE "
                f"{self.calibration_mape:.1%} (above {UNRELIABLE_CALIBRATION:.0%}): its "
                f"latencies are unreliable; {again}")

    def notes(self) -> list[str]:
        """Every caveat a plan on this device carries (measured on another CPU, a calibration
        that missed its own check, datasheet numbers assumed), one line each."""
        return [n for n in (self.measured_elsewhere(), self.calibration_warning(),
                            self.assumptions()) if n]

    def assumptions(self) -> str | None:
        """For a GPU without the numbers the shape and clock model need, one line naming them
        and what is assumed in their place; None where nothing is missing."""
        if self.kind != "gpu":
            return None
        said = []
        if not self.sm_count:
            said.append("sm_count (tiles and waves are not rounded up: small batches come out "
                        "faster)")
        missing = [k for k in ("boost_clock_hz", "board_power_w") if not getattr(self, k)]
        if missing:
            said.append(f"{' and '.join(missing)} (the matrix peak is taken at the rated clock "
                        f"under any load: a power-limited part comes out faster)")
        if not said:
            return None
        return f"{self.name} has no {'; no '.join(said)}"

    def check_dtype(self, dtype: str) -> None:
        """A profiled device answers for the dtype its op times were measured in, and no other
        (its curves are that dtype's); one line says so."""
        if self.profile is not None and dtype != self.profile.dtype:
            raise CoreplanError(f"device {self.name} was profiled in {self.profile.dtype}: it "
                                f"answers for {self.profile.dtype} only, not {dtype} (profile it "
                                f"again in {dtype}, or plan in {self.profile.dtype})")

    def peak(self, dtype: str) -> float:
        if dtype not in self.peak_flops_per_s:
            have = ", ".join(self.peak_flops_per_s)
            raise CoreplanError(f"device {self.name} has no {dtype} peak (it lists: {have})")
        return self.peak_flops_per_s[dtype]

    @property
    def efficiency_origin(self) -> str:
        """Where its efficiencies come from: profile (measured op times), own data (calibrated),
        gpu fit (fitted across devices on public benchmarks) or assumed."""
        if self.profile is not None:
            return "profile"
        if self.calibrated:
            return "own data"
        return "gpu fit" if self.kind == "gpu" else "assumed"

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


FIELDS = {f.name: f for f in fields(DeviceSpec)}
CALIBRATED_FROM = "calibrated_from"  # the file key behind `calibrated`: which measurements
FILE_KEYS = {name for name, f in FIELDS.items() if f.metadata["kind"]} | {CALIBRATED_FROM}
REQUIRED = ("peak_flops_per_s", "memory_bandwidth_bytes_per_s", "memory_capacity_bytes", "source")


# --------------------------------------------------------------------------- reading a field
def _number(where: str, key: str, value, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise CoreplanError(f"{where} {key}: expected a positive number, got {value!r}")
    return float(value)


def _keyed(where: str, key: str, value, allowed) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise CoreplanError(f"{where} {key}: expected a table like {{ {allowed[0]} = ... }}")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise CoreplanError(f"{where} {key}.{unknown[0]}: unknown key; choose from "
                            f"{', '.join(allowed)}")
    return {k: _number(where, f"{key}.{k}", v) for k, v in value.items()}


def _count(where: str, key: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise CoreplanError(f"{where} {key}: expected a positive integer, got {value!r}")
    return value


def _flag(where: str, key: str, value) -> bool:
    if not isinstance(value, bool):
        raise CoreplanError(f"{where} {key}: expected true or false, got {value!r}")
    return value


def _interval(where: str, key: str, value) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) or not (
            0 < value[0] <= 1 <= value[1]):
        raise CoreplanError(f"{where} {key}: expected [lo <= 1, hi >= 1]")
    return float(value[0]), float(value[1])


def _source(where: str, key: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CoreplanError(f"{where} {key}: every device needs one")
    return value


def _fraction(where: str, key: str, value) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0 <= value <= MAX_SERVICE_CV:
        raise CoreplanError(f"{where} {key}: expected a number in 0..{MAX_SERVICE_CV:g}, got "
                            f"{value!r}")
    return float(value)


def _kind(where: str, key: str, value) -> str:
    if value not in DEVICE_KINDS:
        raise CoreplanError(f"{where} {key}: expected gpu or cpu")
    return value


# field kind -> reader (where, key, value) -> value
READERS = {
    "text": lambda where, key, value: str(value), "kind": _kind, "source": _source,
    "rates": lambda where, key, value: _keyed(where, key, value, PEAK_DTYPES),
    "classes": lambda where, key, value: _keyed(where, key, value, OP_CLASSES),
    "runtimes": lambda where, key, value: _keyed(where, key, value, HOST_RUNTIMES),
    "positive": _number, "seconds": lambda where, key, value: _number(where, key, value, True),
    "count": _count, "flag": _flag, "interval": _interval, "fraction": _fraction,
    "profile": lambda where, key, value: profile_from_table(where, value),
    "footprint": lambda where, key, value: model_from_table(where, value),
}


# --------------------------------------------------------------------------- inherited values
def _inherited(name: str, own: dict, defaults: dict, where: str) -> dict:
    """The fields a device takes from the catalog's [defaults] (by kind, then for every kind)
    where its own table does not set them."""
    kind = own.get("kind", "gpu")
    by_kind = defaults.get(kind) if isinstance(defaults.get(kind), dict) else {}
    efficiency = {**defaults.get("efficiency", {}), **by_kind.get("efficiency", {}),
                  **own.get("efficiency", {})}
    efficiency = READERS["classes"](where, "efficiency", efficiency)
    if set(efficiency) != set(OP_CLASSES):
        raise CoreplanError(f"{where} efficiency: needs {', '.join(OP_CLASSES)}")
    values = {"kind": kind, "description": own.get("description", name), "efficiency": efficiency}
    if "kernel_launch_overhead_s" not in own:
        values["kernel_launch_overhead_s"] = READERS["seconds"](
            where, "kernel_launch_overhead_s", by_kind.get(
                "kernel_launch_overhead_s", defaults.get("kernel_launch_overhead_s", 0)))
    if "latency_interval" not in own and "efficiency" not in own and "profile" not in own:
        interval = by_kind.get("latency_interval")  # the held-out spread of the default fit
        if interval is not None:
            values["latency_interval"] = READERS["interval"](where, "latency_interval", interval)
    if "host_launch_s" in by_kind:  # a device's own runtimes over the defaults' (the rest kept)
        values["host_launch_s"] = {**READERS["runtimes"](where, "host_launch_s",
                                                         by_kind["host_launch_s"]),
                                   **(own.get("host_launch_s") or {})}
    if "power_coefficient" not in own and "power_coefficient" in by_kind:
        values["power_coefficient"] = READERS["positive"](where, "power_coefficient",
                                                          by_kind["power_coefficient"])
    if "footprint" not in own:
        table = (defaults.get("footprint") or {}).get(kind)
        if table is not None:
            values["footprint"] = READERS["footprint"](where, "footprint", table)
    return values


def device_from_table(path: str, name: str, table: dict, defaults: dict) -> DeviceSpec:
    """A device from its `[devices.NAME]` table: every field read as its declaration says, then
    what it inherits from the catalog's defaults; errors name the file, device and field."""
    where = f"device file {path}: [devices.{name}]"
    if not isinstance(table, dict):
        raise CoreplanError(f"{where} must be a table")
    unknown = sorted(set(table) - FILE_KEYS)
    if unknown:
        raise CoreplanError(f"{where} {unknown[0]}: unknown field")
    for key in REQUIRED:
        if key not in table:
            raise CoreplanError(f"{where} {key}: missing")
    own = {key: READERS[FIELDS[key].metadata["kind"]](where, key, value)
           for key, value in table.items() if key != CALIBRATED_FROM}
    if ("price_per_hour_usd" in own) != bool(own.get("price_source", "").strip()):
        raise CoreplanError(f"{where} price_per_hour_usd and price_source go together: a price "
                            f"says where it comes from and when it was read")
    values = {**own, **_inherited(name, own, defaults, where)}
    device = DeviceSpec(name=name, calibrated=CALIBRATED_FROM in table, **values)
    device = _cap_default_efficiency(device, own.get("efficiency", {}))
    _check_physical(path, device)
    return device


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
                   "memory_capacity_bytes": 1e14, "kernel_launch_overhead_s": 1.0,
                   "host_launch_s": 1.0, "price_per_hour_usd": 1000.0}
# 1,000 USD an hour for one device is a month's or a node's price, not a device-hour's (an
# eight-GPU node lists at tens of USD an hour).
# efficiency scales the roofline or, where a profile measured the op, the profiled time (a
# calibration factor; 0.2-2 is plausible there). The roofline's matrix peak is the datasheet's, at
# the rated boost clock; GeForce and workstation GPUs run above it when power allows (the RTX
# 3090's own timm data needs gemm 1.1: ~1.86 GHz against 1.695 rated), so up to 1.25 is physical;
# more is a unit mistake or a fit gone wrong.
MAX_EFFICIENCY = {False: 1.25, True: 2.0}


# Below these a number is a unit mistake (TFLOP/s, GB/s or GB written where the file takes FLOP/s,
# B/s and B), not a device: 100 MFLOP/s, 10 MB/s and 10 MB are below any processor ViTs run on.
PHYSICAL_MINIMUMS = {"peak_flops_per_s": (1e8, "FLOP/s (2 per multiply-add), not TFLOP/s"),
                     "memory_bandwidth_bytes_per_s": (1e7, "B/s, not GB/s"),
                     "memory_capacity_bytes": (1e7, "bytes, not GB"),
                     "board_power_w": (1.0, "watts")}


def _check_physical(path, d: DeviceSpec) -> None:
    where = f"device file {path}: [devices.{d.name}]"
    lows = {"peak_flops_per_s": min(d.peak_flops_per_s.values()),
            "memory_bandwidth_bytes_per_s": d.memory_bandwidth_bytes_per_s,
            "memory_capacity_bytes": d.memory_capacity_bytes, "board_power_w": d.board_power_w}
    for key, value in lows.items():
        low, unit = PHYSICAL_MINIMUMS[key]
        if value is not None and value < low:
            raise CoreplanError(f"{where} {key}: {value:g} is below {low:g}, less than any device "
                                f"has; the file takes {unit}")
    values = {"peak_flops_per_s": max(d.peak_flops_per_s.values()),
              "memory_bandwidth_bytes_per_s": d.memory_bandwidth_bytes_per_s,
              "memory_capacity_bytes": d.memory_capacity_bytes,
              "kernel_launch_overhead_s": d.kernel_launch_overhead_s,
              "host_launch_s": max((d.host_launch_s or {0: 0.0}).values()),
              "price_per_hour_usd": d.price_per_hour_usd or 0.0}
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
    data, devices = load_tables(path, "device file", "devices")
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


def this_cpu() -> str:
    """This machine's CPU model and core count ("AMD EPYC x2"), from /proc/cpuinfo."""
    import os
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


DEVICE_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


def check_device_name(name: str) -> str:
    """A device name a file can hold and a command can name: letters, digits, '-', '_', '.'."""
    import re

    from costmodel.errors import ArgumentError

    if not re.fullmatch(DEVICE_NAME, name):
        raise ArgumentError("name", f"{name!r}: use letters, digits, '-', '_' or '.' (files "
                            f"and commands name the device by it)")
    return name


LOCAL = "local"  # the device name that means "this machine": its saved profile


def local_profiles() -> Path:
    """Where `coreplan profile` keeps a copy of each machine's profile ($XDG_CACHE_HOME or
    ~/.cache, then coreplan/devices)."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coreplan" / \
        "devices"


def machine_key(cpu: str, threads: int, torch_version: str | None) -> str:
    """The file name a machine's profile is saved under: CPU model, threads, torch version."""
    import re

    text = f"{cpu} {threads}t torch {torch_version or 'none'}"
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") + ".toml"


def this_machine() -> tuple[str, int, str | None]:
    """(CPU model x cores, threads torch would use, torch's version) without importing torch."""
    import os
    from importlib import metadata

    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        version = None
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return this_cpu(), threads, version


def local_device() -> DeviceSpec:
    """This machine's saved profile (its CPU model, thread count and torch version); without
    one, one error saying how to make it."""
    cpu, threads, version = this_machine()
    path = local_profiles() / machine_key(cpu, threads, version)
    if not path.is_file():
        stem = machine_key(cpu, threads, version).split(f"-{threads}t-")
        others = sorted(local_profiles().glob(f"{stem[0]}-*t-{stem[-1]}")) if len(stem) == 2 \
            else []
        elsewhere = (f"; saved with other thread counts: {', '.join(map(str, others))} (give "
                     f"one as the device file)") if others else ""
        raise CoreplanError(f"device {LOCAL!r} means this machine ({cpu}, {threads} threads, torch "
                            f"{version}), which has no profile yet: run `coreplan profile` "
                            f"(about 5 minutes; it saves one for {LOCAL!r}){elsewhere}")
    devices = load_devices(path)
    return next(iter(devices.values()))


def get_device(name: str, device_file: str | Path | None = None) -> DeviceSpec:
    """A device from a user file (first) or the catalog; "local": this machine's saved profile
    (where no file names a device "local"); unknown names list close matches."""
    devices = dict(device_catalog())
    if device_file is not None:
        devices.update(load_devices(device_file))
    if name == LOCAL and LOCAL not in devices:
        return local_device()
    return lookup("device", name, devices, cutoff=0.4)


def _rates(values: dict) -> str:
    return "{ " + ", ".join(f"{k} = {v:.6g}" for k, v in values.items()) + " }"


# field kind -> writer (value) -> its TOML text; sub-tables (profile, footprint) come last
WRITERS = {
    "text": toml_string, "source": toml_string, "kind": toml_string, "rates": _rates,
    "classes": _rates, "runtimes": _rates, "positive": lambda v: f"{v:.6g}", "seconds": lambda v: f"{v:.6g}",
    "count": str, "flag": lambda v: "true", "interval": lambda v: f"[{v[0]:.6g}, {v[1]:.6g}]", "fraction": lambda v: f"{v:.6g}",
}


def default_footprint(kind: str) -> FootprintModel | None:
    """The catalog's footprint terms for a device kind (what a device without its own has)."""
    table = (catalog_defaults().get("footprint") or {}).get(kind)
    return None if table is None else model_from_table("device catalog [defaults]", table)


def device_toml(d: DeviceSpec, *, comments: tuple[str, ...] = (),
                calibrated_from: str | None = None) -> str:
    """The text of a device file holding `d` (its profile and its own footprint terms
    included): for --device-file. Every declared file field with a value is written (its
    source last); a footprint equal to the catalog's default for its kind is left to it."""
    lines = [f"# {c}" for c in comments] + [f"[devices.{d.name}]"]
    for name, f in FIELDS.items():
        value, kind = getattr(d, name), f.metadata["kind"]
        if kind in WRITERS and name != "source" and value is not None and value is not False:
            lines.append(f"{name} = {WRITERS[kind](value)}")
    if calibrated_from:
        lines.append(f"{CALIBRATED_FROM} = {toml_string(calibrated_from)}")
    lines.append(f"source = {toml_string(d.source)}")
    if d.footprint is not None and d.footprint != default_footprint(d.kind):
        lines += ["", *footprint_toml(d.name, d.footprint)]
    if d.profile is not None:
        lines += ["", *profile_toml(d.name, d.profile)]
    return "\n".join(lines) + "\n"


def device_rows(devices, scaled: bool = True) -> list[dict]:
    """The `devices` table: each declared column (header, scale), peaks in fp32 and bf16, the
    clock held under matrix load and where the efficiencies come from. `scaled=False` (CSV):
    the fields' own units and names (FLOP/s, B/s, B, W), as JSON has them."""
    rows = []
    for d in devices:
        row = {}
        for name, f in FIELDS.items():
            column, value = f.metadata["column"], getattr(d, name)
            if isinstance(column, str):
                row[column] = value
            elif column and name == "peak_flops_per_s":
                header, scale = column if scaled else ("flop_per_s", 1)
                sep = " " if scaled else "_"
                row.update({f"{k}{sep}{header}": (value[k] * scale if k in value else "n/a")
                            for k in ("fp32", "bf16")})
            elif column:
                header, scale = column if scaled else (name, 1)
                row[header] = value * scale if value else ""
        rows.append({**row, "clock": round(d.clock_scale(), 2),
                     "efficiency": d.efficiency_origin})
    return rows


def _check_readable(path: Path, text: str) -> None:
    """A device file is written only if it reads back (an unusable one is refused, saying why)."""
    data = tomllib.loads(text)
    defaults = data.get("defaults") or catalog_defaults()
    try:
        for name, table in data.get("devices", {}).items():
            device_from_table(str(path), name, table, defaults)
    except CoreplanError as err:
        raise CoreplanError(f"not writing {path}, which would not read back: {err}") from None


def check_output_file(path: str | Path, force: bool = False, flag: str = "--out") -> Path:
    """What writing a device file at `path` would refuse, said before any work is done: the
    built-in catalog, a directory, an existing file without `force`, a missing or unwritable
    directory."""
    import os

    path = Path(path)
    if path.resolve() == CATALOG_PATH.resolve():
        raise CoreplanError(f"{flag} {path} is coreplan's built-in device catalog: write elsewhere")
    if path.is_dir():
        raise CoreplanError(f"{flag} {path} is a directory: choose a file name")
    if path.exists() and not force:
        raise CoreplanError(f"{flag} {path} exists: pass --force to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CoreplanError(f"{flag} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CoreplanError(f"{flag} {path}: not writable here")
    return path


def write_device_file(path: str | Path, text: str, force: bool = False) -> Path:
    """Write a device file whole or not at all (a temporary file renamed into place); refuses the
    built-in catalog, and an existing file unless `force`."""
    import os
    import tempfile

    path = Path(path)
    if path.resolve() == CATALOG_PATH.resolve():
        raise CoreplanError(f"{path} is coreplan's built-in device catalog: write elsewhere")
    _check_readable(path, text)
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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as an ordinary file (mkstemp made it private)
        os.replace(temporary, path)
    except OSError as err:
        raise CoreplanError(f"cannot write {path}: {err.strerror}") from None
    return path
