"""The planner: the largest core budget (or resolution, or batch) that meets every budget.

Feasibility is monotone in C, resolution and batch for latency, memory and device capacity (all
grow with each), so "largest feasible" is well defined; a throughput floor (images/s) is checked too
(it only gets easier with batch, harder with C and resolution). Every candidate says which limit
binds: the constraint with the largest usage (value / limit; > 1 means violated).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from costmodel.config import Config, configure
from costmodel.errors import CoreplanError
from costmodel.memory import inference_memory
from costmodel.numeric import config_dims, evaluate
from costmodel.spec import ModelSpec, catalog
from planners.devices import DeviceSpec
from planners.roofline import latency_s

GB = 1e9  # budgets in decimal gigabytes
SOLVES = ("cores", "resolution", "batch")


@dataclass(frozen=True)
class Budgets:
    """Limits a plan must meet; None = no limit. Device memory capacity always applies."""

    latency_ms: float | None = None
    memory_gb: float | None = None
    throughput_img_per_s: float | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)
                                          and value > 0):
                flag = "--" + name.replace("_img_per_s", "").replace("_", "-")
                raise CoreplanError(f"{flag} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Candidate:
    cores: int | None
    resolution: int
    batch: int
    flops: float
    latency_ms: float
    latency_ms_interval: tuple[float, float] | None
    memory_bytes: int
    throughput_img_per_s: float
    feasible: bool
    binding: str
    usage: dict[str, float]  # value / limit per constraint

    def to_dict(self) -> dict:
        d = asdict(self)
        d["latency_ms_interval"] = list(self.latency_ms_interval) if self.latency_ms_interval else None
        return d


def evaluate_configs(configs: list[Config], device: DeviceSpec, budgets: Budgets) -> list[Candidate]:
    """Candidates for configurations of one model and impl, latency evaluated in one numpy call."""
    spec, impl, dtype = configs[0].spec, configs[0].impl, configs[0].dtype
    per = [config_dims(c) for c in configs]
    dims = {k: np.array([d[k] for d in per], dtype=np.float64) for k in per[0]}
    entries = evaluate(spec, impl, "model", **dims)  # one pass gives FLOPs and the roofline
    seconds = np.atleast_1d(latency_s(spec, impl, device, dtype, entries=entries, **dims))
    flops = np.atleast_1d(sum(e["flop"] for e in entries.values()))
    return [_candidate(c, float(t), float(f), device, budgets)
            for c, t, f in zip(configs, seconds, flops)]


def _candidate(c: Config, seconds: float, flops: float, device: DeviceSpec,
               budgets: Budgets) -> Candidate:
    memory = inference_memory(c).total_bytes
    throughput = c.batch / seconds
    usage = {"capacity": memory / device.memory_capacity_bytes}
    if budgets.latency_ms is not None:
        usage["latency"] = seconds * 1e3 / budgets.latency_ms
    if budgets.memory_gb is not None:
        usage["memory"] = memory / (budgets.memory_gb * GB)
    if budgets.throughput_img_per_s is not None:
        usage["throughput"] = budgets.throughput_img_per_s / throughput
    interval = None
    if device.latency_interval:
        interval = (seconds * 1e3 * device.latency_interval[0], seconds * 1e3 * device.latency_interval[1])
    binding = max(usage, key=usage.get)
    return Candidate(c.core_tokens or None, c.height, c.batch, flops, seconds * 1e3, interval,
                     memory, throughput, usage[binding] <= 1.0, binding, usage)


@dataclass(frozen=True)
class Plan:
    device: str
    model: str
    impl: str
    resolution: int
    batch: int
    dtype: str
    solve: str
    budgets: Budgets
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]
    baseline: Candidate | None
    baseline_model: str | None
    demand_img_per_s: float | None
    devices_needed: int | None

    def to_dict(self) -> dict:
        return {"device": self.device, "model": self.model, "impl": self.impl,
                "resolution": self.resolution, "batch": self.batch, "dtype": self.dtype,
                "solve": self.solve, "budgets": asdict(self.budgets),
                "chosen": self.chosen.to_dict() if self.chosen else None,
                "candidates": [c.to_dict() for c in self.candidates],
                "baseline": ({"model": self.baseline_model, **self.baseline.to_dict()}
                             if self.baseline else None),
                "demand_img_per_s": self.demand_img_per_s, "devices_needed": self.devices_needed}

    def to_frame(self):
        """The candidates (and the baseline, model column set) as a pandas DataFrame."""
        import pandas as pd

        rows = [{"model": self.model, **c.to_dict()} for c in self.candidates]
        if self.baseline:
            rows.append({"model": self.baseline_model, **self.baseline.to_dict()})
        return pd.DataFrame(rows)


def baseline_model(spec: ModelSpec) -> ModelSpec | None:
    """The catalog's dense model of the same width and depth (same patch size and DINOv3 first)."""
    same = [s for s in catalog().values() if not s.is_core and s.embed_dim == spec.embed_dim
            and s.depth == spec.depth]
    same.sort(key=lambda s: (s.patch_size != spec.patch_size, s.family != "dinov3", s.name))
    return same[0] if same else None


def _round(spec: ModelSpec, resolution: int) -> int:
    return max(spec.patch_size, resolution // spec.patch_size * spec.patch_size)


def _largest(feasible, low: int, high: int) -> int | None:
    """Largest integer k in [low, high] with feasible(k), for a feasibility that is monotone
    (true up to some k, false above); None if feasible(low) is false."""
    if not feasible(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if feasible(mid) else (low, mid - 1)
    return low


def _one(spec, device, budgets, resolution, *, cores, batch, impl, dtype) -> Candidate:
    c = configure(spec, _round(spec, resolution), cores=cores, batch=batch, impl=impl, dtype=dtype)
    return evaluate_configs([c], device, budgets)[0]


LADDER_PX = (224, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)


def plan(spec: ModelSpec, device: DeviceSpec, *, resolution: int | None = None, batch: int = 1,
         dtype: str = "bf16", budgets: Budgets = Budgets(), cores_allowed=None,
         solve: str = "cores", cores: int | None = None, impl: str | None = None,
         demand_img_per_s: float | None = None, versus: ModelSpec | None = None,
         max_resolution: int = 4096, max_batch: int = 4096) -> Plan:
    """Plan one model on one device. See the module docstring for the rules.

    Args:
        resolution: input side in px (rounded down to the patch); not needed for solve="resolution".
        cores_allowed: candidate core budgets for solve="cores" (default: the model's budgets).
        cores: the core budget for solve="resolution" or "batch" (default: the largest allowed).
        versus: dense baseline (default: the catalog's dense model of the same width and depth).
    """
    if solve not in SOLVES:
        raise CoreplanError(f"unknown solve {solve!r}; choose one of {', '.join(SOLVES)}")
    if demand_img_per_s is not None and not demand_img_per_s > 0:
        raise CoreplanError(f"--demand must be positive, got {demand_img_per_s}")
    if resolution is None and solve != "resolution":
        raise CoreplanError("--resolution is required unless --solve resolution")
    allowed = _allowed(spec, cores_allowed)
    fixed = dict(batch=batch, impl=impl, dtype=dtype)
    if solve == "cores":
        configs = [configure(spec, _round(spec, resolution), cores=c, **fixed) for c in allowed]
        candidates = evaluate_configs(configs, device, budgets)
        feasible = [c for c in candidates if c.feasible]
        chosen = feasible[-1] if feasible else None
    else:
        core = (cores if cores is not None else allowed[-1]) if spec.is_core else None
        solver = _solve_resolution if solve == "resolution" else _solve_batch
        chosen, candidates = solver(spec, device, budgets, resolution, core, batch, impl, dtype,
                                    max_resolution if solve == "resolution" else max_batch)
    base_spec = versus or (baseline_model(spec) if spec.is_core else None)
    baseline = None
    if base_spec is not None:
        at = chosen or candidates[0]
        baseline = _one(base_spec, device, budgets, at.resolution, cores=None, batch=at.batch,
                        impl=None, dtype=dtype)
    needed = (math.ceil(demand_img_per_s / chosen.throughput_img_per_s)
              if chosen and demand_img_per_s else None)
    impl_used = configure(spec, spec.patch_size, cores=allowed[-1] if spec.is_core else None,
                          impl=impl).impl
    return Plan(device.name, spec.name, impl_used, _round(spec, resolution or spec.patch_size),
                batch, dtype, solve, budgets, chosen, tuple(candidates), baseline,
                base_spec.name if base_spec else None, demand_img_per_s, needed)


def _allowed(spec: ModelSpec, cores_allowed) -> list:
    if not spec.is_core:
        if cores_allowed:
            raise CoreplanError(f"--cores-allowed applies to core models; {spec.name} is dense")
        return [None]
    from costmodel.config import check_cores

    return sorted({check_cores(spec, c) for c in (cores_allowed or spec.budgets)})


def _largest_on_ladder(keys, evaluate_many, evaluate_one, feasible) -> tuple:
    """Largest feasible integer in [keys[0], keys[-1]], feasibility monotone: one vectorised pass
    over the ladder `keys`, then bisection between the last feasible and the next rung."""
    keys = sorted(set(keys))
    ladder = evaluate_many(keys)
    ok = [k for k, c in zip(keys, ladder) if feasible(c)]
    if not ok:
        return None, ladder
    low = max(ok)
    high = next((k - 1 for k in keys if k > low), low)
    best = _largest(lambda k: feasible(evaluate_one(k)), low, high)
    return best, ladder


def _solve_resolution(spec, device, budgets, resolution, core, batch, impl, dtype, limit):
    p = spec.patch_size

    def config(k):
        return configure(spec, k * p, cores=core, batch=batch, impl=impl, dtype=dtype)

    keys = {1, max(1, limit // p)} | {max(1, px // p) for px in LADDER_PX if px <= limit}
    best, ladder = _largest_on_ladder(
        keys, lambda ks: evaluate_configs([config(k) for k in ks], device, budgets),
        lambda k: evaluate_configs([config(k)], device, budgets)[0], lambda c: c.feasible)
    chosen = evaluate_configs([config(best)], device, budgets)[0] if best else None
    candidates = sorted([*ladder, *([chosen] if chosen else [])], key=lambda c: c.resolution)
    return chosen, _unique(candidates)


def _solve_batch(spec, device, budgets, resolution, core, batch, impl, dtype, limit):
    no_throughput = Budgets(budgets.latency_ms, budgets.memory_gb, None)
    side = _round(spec, resolution)

    def many(keys, limits=budgets):
        return evaluate_configs([configure(spec, side, cores=core, batch=b, impl=impl, dtype=dtype)
                                 for b in keys], device, limits)

    keys = {1, limit} | {2 ** i for i in range(int(math.log2(limit)) + 1)}
    best, _ = _largest_on_ladder(keys, lambda ks: many(ks, no_throughput),
                                 lambda b: many([b], no_throughput)[0], lambda c: c.feasible)
    ladder = many(sorted(keys))
    chosen = many([best])[0] if best else None
    candidates = sorted([*ladder, *([chosen] if chosen else [])], key=lambda c: c.batch)
    return (chosen if chosen and chosen.feasible else None), _unique(candidates)


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    seen, out = set(), []
    for c in candidates:
        if (c.resolution, c.batch) not in seen:
            seen.add((c.resolution, c.batch))
            out.append(c)
    return out


def describe(c: Candidate, budgets: Budgets, device: DeviceSpec) -> str:
    """The candidate's binding constraint in words, e.g. 'latency 25.1 ms > 20 ms'."""
    sign = ">" if not c.feasible else "<="
    if c.binding == "latency":
        return f"latency {c.latency_ms:.4g} ms {sign} {budgets.latency_ms:g} ms"
    if c.binding == "memory":
        return f"memory {c.memory_bytes / GB:.4g} GB {sign} {budgets.memory_gb:g} GB"
    if c.binding == "throughput":
        sign = "<" if not c.feasible else ">="
        return (f"throughput {c.throughput_img_per_s:.4g} img/s {sign} "
                f"{budgets.throughput_img_per_s:g} img/s")
    return (f"memory {c.memory_bytes / GB:.4g} GB {sign} {device.name} capacity "
            f"{device.memory_capacity_bytes / GB:g} GB")


def infeasible_message(p: Plan, spec: ModelSpec, device: DeviceSpec, **fixed) -> str:
    """One line: the smallest violation and the nearest feasible alternative."""
    worst = min(p.candidates, key=lambda c: c.usage[c.binding])
    where = f"C={worst.cores} " if worst.cores else ""
    line = (f"nothing feasible for {spec.name} on {device.name}: the smallest violation is at "
            f"{where}{worst.resolution} px, batch {worst.batch}: {describe(worst, p.budgets, device)}")
    return line + "; " + nearest_feasible(p, spec, device, **fixed)


def nearest_feasible(p: Plan, spec: ModelSpec, device: DeviceSpec, **fixed) -> str:
    """The largest resolution (at the plan's batch) and the largest batch (at its resolution) that
    fit at the smallest allowed core budget."""
    core = _allowed(spec, fixed.get("cores_allowed"))[0]
    alternatives = []
    impl, limit = fixed.get("impl"), 4096
    by_res, _ = _solve_resolution(spec, device, p.budgets, None, core, p.batch, impl, p.dtype, limit)
    if by_res:
        alternatives.append(f"{by_res.resolution} px at batch {p.batch}")
    if p.solve != "resolution":
        by_batch, _ = _solve_batch(spec, device, p.budgets, p.resolution, core, p.batch, impl,
                                   p.dtype, limit)
        if by_batch:
            alternatives.append(f"batch {by_batch.batch} at {p.resolution} px")
    at = f" at C={core}" if core else ""
    if not alternatives:
        return f"no resolution or batch fits{at} either"
    return f"nearest feasible{at}: " + " or ".join(alternatives)
