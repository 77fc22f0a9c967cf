"""The planner: the largest core budget (or resolution, or batch) that meets every budget.

Feasibility is monotone in C, resolution and batch for latency, memory and device capacity (all
grow with each), so "largest feasible" is well defined; a throughput floor (images/s) is checked too
(it only gets easier with batch, harder with C and resolution). Every candidate says which limit
binds: the constraint with the largest usage (value / limit; > 1 means violated).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from costmodel.config import Config, check_cores, check_countable, check_side, configure
from costmodel.cost import evaluate
from costmodel.errors import ArgumentError
from costmodel.memory import inference_memory
from costmodel.spec import ModelSpec, catalog
from planners.devices import DeviceSpec
from planners.limits import MAX_BATCH, MAX_RESOLUTION
from planners.roofline import latency_and_work_s, op_rooflines

GB = 1e9  # budgets in decimal gigabytes
SOLVES = ("cores", "resolution", "batch")


def _positive(name: str, value) -> None:
    if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                  and math.isfinite(value) and value > 0):
        raise ArgumentError(name, f"must be a positive number, got {value!r}")


LATENCY_AT = ("predicted", "p95")


@dataclass(frozen=True)
class Budgets:
    """Limits a plan must meet; None = no limit. Device memory capacity always applies.
    `latency_at`: what the latency budget is checked against: the predicted latency, or "p95" the
    top of the device's latency interval (`ms 5-95%`: the time that 95% of the held-out
    measurements behind the interval stayed under, for the prediction's error)."""

    latency_ms: float | None = None
    memory_gb: float | None = None
    throughput_img_per_s: float | None = None
    latency_at: str = "predicted"

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name != "latency_at":
                _positive(name, value)
        if self.latency_at not in LATENCY_AT:
            raise ArgumentError("latency_at", f"must be one of {', '.join(LATENCY_AT)}, got "
                                f"{self.latency_at!r}")

    def checked_latency_ms(self, c: "Candidate") -> float:
        """The candidate's latency the budget is checked against."""
        return c.latency_ms_interval[1] if self.latency_at == "p95" else c.latency_ms


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
    tightest: str  # the limit closest to binding (highest use); binding only when infeasible
    usage: dict[str, float]  # value / limit per constraint
    tensor_memory_bytes: int = 0  # weights + live-tensor peak (memory_bytes is the process footprint)
    host_bound: bool = False  # GPU: the host issuing launches takes longer than the GPU's work

    def to_dict(self) -> dict:
        d = asdict(self)
        d["flops"] = int(round(self.flops))  # FLOPs are counted: an integer, not 7.3e11 as a float
        d["latency_ms_interval"] = list(self.latency_ms_interval) if self.latency_ms_interval else None
        return d


def _stack_dims(configs: list[Config]):
    """One Dims of numpy arrays holding every configuration (same model)."""
    spec = configs[0].spec
    column = lambda f: np.array([f(c) for c in configs], dtype=np.float64)  # noqa: E731
    return spec.dims(batch=column(lambda c: c.batch), rows=column(lambda c: c.grid[0]),
                     cols=column(lambda c: c.grid[1]), core_tokens=column(lambda c: c.core_tokens),
                     elem_bytes=column(lambda c: c.elem_bytes))


def evaluate_configs(configs: list[Config], device: DeviceSpec, budgets: Budgets,
                     runtime: str = "eager", mode: str = "inference",
                     optimizer: str = "sgd") -> list[Candidate]:
    """Candidates for configurations of one model and impl, evaluated in one vectorised pass
    (the graph gives FLOPs and the roofline at once)."""
    if mode == "training":
        seconds, flops, work = _training_seconds_and_flops(configs, device, runtime, optimizer)
    else:
        seconds, flops, work = _seconds_and_flops(configs, device, runtime)
    return [_candidate(c, float(t), float(f), device, budgets, float(w), mode, optimizer)
            for c, t, f, w in zip(configs, seconds, flops, work)]


def _training_seconds_and_flops(configs: list[Config], device: DeviceSpec, runtime: str,
                                optimizer: str):
    """A training step's seconds, FLOPs (forward and backward) and device work per
    configuration (planners/training_step.py), one configuration at a time."""
    from costmodel.training import training_flops
    from planners.training_step import training_rooflines

    seconds, flops, work = [], [], []
    for c in configs:
        latency, own = latency_and_work_s(training_rooflines(c, device, runtime, optimizer),
                                          device)
        seconds.append(float(latency))
        work.append(float(own))
        flops.append(training_flops(c)["total"])
    return np.array(seconds), np.array(flops, dtype=float), np.array(work)


def predicted_seconds(configs: list[Config], device: DeviceSpec, runtime: str = "eager") -> np.ndarray:
    """The latency model's time (s) of each configuration (one model, impl and dtype), in one
    vectorised pass: what the planner and the serving simulator both use."""
    return _seconds_and_flops(configs, device, runtime)[0]


def predicted_work_seconds(configs: list[Config], device: DeviceSpec,
                           runtime: str = "eager") -> np.ndarray:
    """The device's own work (s) of each configuration: `predicted_seconds` without the host's
    issuing time (equal where the device decides; less where the host does)."""
    return _seconds_and_flops(configs, device, runtime)[2]


def _seconds_and_flops(configs: list[Config], device: DeviceSpec, runtime: str):
    spec, impl, dtype = configs[0].spec, configs[0].impl, configs[0].dtype
    if any((c.spec, c.impl, c.dtype) != (spec, impl, dtype) for c in configs):
        raise ArgumentError("configs", "must share one model, impl and dtype")
    for c in configs:
        check_countable(c)
    cost = evaluate(spec, impl, _stack_dims(configs))
    seconds, work = latency_and_work_s(op_rooflines(cost, device, dtype, runtime), device)
    n = (len(configs),)
    return (np.broadcast_to(np.atleast_1d(seconds), n), np.atleast_1d(cost.total("flop")),
            np.broadcast_to(np.atleast_1d(work), n))


def _candidate(c: Config, seconds: float, flops: float, device: DeviceSpec,
               budgets: Budgets, work: float | None = None, mode: str = "inference",
               optimizer: str = "sgd") -> Candidate:
    """One configuration against the budgets. `work`: the device's own seconds (a GPU: without
    the host's issuing time; `seconds` is the larger of the two). The latency interval by regime:
    where the device's work decides, the device's interval around the prediction; where the host
    does (host-bound), from the device's work alone (a host issuing at no cost) to the host's
    time at the interval's top (the host's cost is the catalog's reference host's, not yours)."""
    host_bound = work is not None and seconds > work
    memory = process_bytes(c, device, mode=mode, optimizer=optimizer)
    throughput = c.batch / seconds
    usage = {"capacity": memory / device.memory_capacity_bytes}
    interval = None
    if device.latency_interval:
        low = (work if host_bound else seconds) * device.latency_interval[0]
        interval = (low * 1e3, seconds * 1e3 * device.latency_interval[1])
    if budgets.latency_ms is not None:
        if budgets.latency_at == "p95" and interval is None:
            raise ArgumentError("latency_at", f"p95 checks the budget at the top of the "
                                f"device's latency interval, and {device.name} has none (a "
                                f"calibrated or profiled device file carries one)")
        checked = interval[1] if budgets.latency_at == "p95" else seconds * 1e3
        usage["latency"] = checked / budgets.latency_ms
    if budgets.memory_gb is not None:
        usage["memory"] = memory / (budgets.memory_gb * GB)
    if budgets.throughput_img_per_s is not None:
        usage["throughput"] = budgets.throughput_img_per_s / throughput
    tightest = max(usage, key=usage.get)
    return Candidate(c.core_tokens or None, c.height, c.batch, flops, seconds * 1e3, interval,
                     memory, throughput, usage[tightest] <= 1.0, tightest, usage,
                     tensor_bytes(c, mode, optimizer), host_bound)


def tensor_bytes(c: Config, mode: str = "inference", optimizer: str = "sgd") -> int:
    """Weights and live tensors: a forward's peak, or a training step's (weights, gradients,
    optimizer states, activations saved for backward; costmodel.memory.training_memory)."""
    from costmodel.memory import training_memory
    from planners.training_step import OPTIMIZER_STATES

    if mode == "training":
        return training_memory(c, OPTIMIZER_STATES[optimizer]).total_bytes
    return inference_memory(c).total_bytes


def process_bytes(c: Config, device: DeviceSpec, framework: str = "torch",
                  mode: str = "inference", optimizer: str = "sgd") -> int:
    """What memory budgets are checked against: the process footprint on this device
    (planners/footprint.py), or weights + live tensors where the device has no footprint terms.
    Training: the footprint's fixed terms with the training step's tensors in place of the
    forward's (planners.footprint.training_footprint)."""
    from planners.footprint import footprint, training_footprint
    from planners.training_step import OPTIMIZER_STATES

    if device.footprint is None:
        return tensor_bytes(c, mode, optimizer)
    if mode == "training":
        return training_footprint(c, device.footprint, OPTIMIZER_STATES[optimizer],
                                  framework).total_bytes
    return footprint(c, device.footprint, framework).total_bytes


@dataclass(frozen=True)
class Problem:
    """What every solve strategy receives: one model on one device under budgets.

    Args:
        resolution: input side in px (rounded down to the patch); None for solve="resolution".
        cores_allowed: candidate core budgets, ascending (core models); (None,) for dense ones.
        cores: the core budget used by solve="resolution" and solve="batch".
        max_resolution, max_batch: the search limits of solve="resolution" and solve="batch".
    """

    spec: ModelSpec
    device: DeviceSpec
    budgets: Budgets
    resolution: int | None
    batch: int
    dtype: str
    impl: str | None
    cores_allowed: tuple
    cores: int | None
    max_resolution: int
    max_batch: int
    runtime: str = "eager"
    mode: str = "inference"  # or "training": a training step's time and memory
    optimizer: str = "sgd"  # training: sgd or adamw

    def config(self, *, resolution: int | None = None, batch: int | None = None,
               cores: int | None = None) -> Config:
        return configure(self.spec, self.spec.round_resolution(resolution or self.resolution),
                         cores=cores if cores is not None else self.cores,
                         batch=batch or self.batch, impl=self.impl, dtype=self.dtype)

    def candidates(self, configs: list[Config], budgets: Budgets | None = None) -> list[Candidate]:
        return evaluate_configs(configs, self.device, budgets or self.budgets, self.runtime,
                                self.mode, self.optimizer)


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
    problem: Problem | None = None  # what was solved (search limits, allowed budgets)

    @property
    def runtime(self) -> str:
        """How the model runs (planners.roofline.RUNTIMES)."""
        return self.problem.runtime if self.problem else "eager"

    @property
    def mode(self) -> str:
        """inference (a forward) or training (a training step)."""
        return self.problem.mode if self.problem else "inference"

    @property
    def at_search_limit(self) -> bool:
        """True when the answer is the top of what was searched (the largest allowed C, or
        max_resolution / max_batch): no budget stopped it, so more might fit."""
        if self.chosen is None or self.problem is None:
            return False
        problem = self.problem
        top = {"cores": lambda c: c.cores == problem.cores_allowed[-1],
               "resolution": lambda c: c.resolution == problem.spec.round_resolution(
                   problem.max_resolution),
               "batch": lambda c: c.batch == problem.max_batch}[self.solve]
        return top(self.chosen)

    @property
    def economics(self):
        """The chosen configuration's rates (planners.economics): with a demand, the fleet of
        `devices_needed` serving it; without, one device kept busy. None without a choice."""
        from planners.economics import at_full_use, economics

        if self.chosen is None or self.problem is None:
            return None
        device, per_device = self.problem.device, self.chosen.throughput_img_per_s
        if not self.devices_needed:
            return at_full_use(device, per_device)
        return economics(device, devices=self.devices_needed, img_per_s=self.demand_img_per_s,
                         utilisation=self.demand_img_per_s / (self.devices_needed * per_device))

    def to_dict(self) -> dict:
        return {"device": self.device, "model": self.model, "impl": self.impl,
                "resolution": self.resolution, "batch": self.batch, "dtype": self.dtype,
                "runtime": self.runtime, "mode": self.mode,
                **({"optimizer": self.problem.optimizer} if self.mode == "training" else {}),
                "solve": self.solve, "budgets": asdict(self.budgets),
                "chosen": self.chosen.to_dict() if self.chosen else None,
                "candidates": [c.to_dict() for c in self.candidates],
                "baseline": ({"model": self.baseline_model, **self.baseline.to_dict()}
                             if self.baseline else None),
                "demand_img_per_s": self.demand_img_per_s, "devices_needed": self.devices_needed,
                "at_search_limit": self.at_search_limit,
                "measured_elsewhere": (self.problem.device.measured_elsewhere()
                                       if self.problem else None),
                "calibration_warning": (self.problem.device.calibration_warning()
                                        if self.problem else None),
                "assumptions": self.problem.device.assumptions() if self.problem else None,
                # a batch also waits for its requests: at the demand, (batch - 1) / demand
                "fill_ms_at_demand": ((self.chosen.batch - 1) / self.demand_img_per_s * 1e3
                                      if self.chosen and self.demand_img_per_s else None),
                "economics": self.economics.to_dict() if self.economics else None,
                "price_source": self.problem.device.price_source if self.problem else None}

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


# --------------------------------------------------------------------------- solve strategies
# Each takes a Problem and returns (chosen candidate or None, candidates to show).

def _solve_cores(problem: Problem) -> tuple[Candidate | None, list[Candidate]]:
    """The largest allowed core budget that meets every limit (at the problem's resolution)."""
    candidates = problem.candidates([problem.config(cores=c) for c in problem.cores_allowed])
    feasible = [c for c in candidates if c.feasible]
    return (feasible[-1] if feasible else None), candidates


def _largest(feasible, low: int, high: int) -> int | None:
    """Largest integer k in [low, high] with feasible(k), for a feasibility that is monotone
    (true up to some k, false above); None if feasible(low) is false."""
    if not feasible(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if feasible(mid) else (low, mid - 1)
    return low


def _largest_on_ladder(keys, evaluate_many, feasible) -> tuple:
    """Largest feasible integer in [keys[0], keys[-1]], feasibility monotone: one vectorised pass
    over the ladder `keys`, then bisection between the last feasible and the next rung."""
    keys = sorted(set(keys))
    ladder = evaluate_many(keys)
    ok = [k for k, c in zip(keys, ladder) if feasible(c)]
    if not ok:
        return None, ladder
    low = max(ok)
    high = next((k - 1 for k in keys if k > low), low)
    return _largest(lambda k: feasible(evaluate_many([k])[0]), low, high), ladder


LADDER_PX = (224, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)


def _solve_resolution(problem: Problem) -> tuple[Candidate | None, list[Candidate]]:
    """The largest square resolution (a multiple of the patch, up to max_resolution) that meets
    every limit at the problem's core budget and batch."""
    p, limit = problem.spec.patch_size, problem.max_resolution

    def many(keys):
        return problem.candidates([problem.config(resolution=k * p) for k in keys])

    keys = {1, max(1, limit // p)} | {max(1, px // p) for px in LADDER_PX if px <= limit}
    best, ladder = _largest_on_ladder(keys, many, lambda c: c.feasible)
    chosen = many([best])[0] if best else None
    # the search starts at one patch (a tight budget still finds its answer); the rows listed
    # start at the ladder's first side, below it only the answer itself
    shown = [c for c in ladder if c.resolution >= min(LADDER_PX)]
    candidates = sorted([*shown, *([chosen] if chosen else [])], key=lambda c: c.resolution)
    return chosen, _unique(candidates or ladder)


def _solve_batch(problem: Problem) -> tuple[Candidate | None, list[Candidate]]:
    """The largest batch (up to max_batch) that meets the latency and memory limits; a throughput
    floor is checked on the answer (it only gets easier with batch)."""
    limit = problem.max_batch
    no_throughput = replace(problem.budgets, throughput_img_per_s=None)

    def many(keys, budgets=no_throughput):
        return problem.candidates([problem.config(batch=b) for b in keys], budgets)

    keys = {1, limit} | {2 ** i for i in range(int(math.log2(limit)) + 1)}
    best, _ = _largest_on_ladder(keys, many, lambda c: c.feasible)
    ladder = many(sorted(keys), problem.budgets)
    chosen = many([best], problem.budgets)[0] if best else None
    candidates = sorted([*ladder, *([chosen] if chosen else [])], key=lambda c: c.batch)
    return (chosen if chosen and chosen.feasible else None), _unique(candidates)


SOLVERS = {"cores": _solve_cores, "resolution": _solve_resolution, "batch": _solve_batch}


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    seen, out = set(), []
    for c in candidates:
        if (c.resolution, c.batch) not in seen:
            seen.add((c.resolution, c.batch))
            out.append(c)
    return out


# --------------------------------------------------------------------------- the planner
def best_dtype(device: DeviceSpec) -> str:
    """The dtype a profiled device was measured in; else the device's fastest 16-bit type it has
    a peak for (bf16, else fp16), else fp32."""
    if device.profile is not None:
        return device.profile.dtype
    return next((d for d in ("bf16", "fp16") if d in device.peak_flops_per_s), "fp32")


def plan(spec: ModelSpec, device: DeviceSpec, *, resolution: int | None = None, batch: int = 1,
         dtype: str = "bf16", budgets: Budgets = Budgets(), cores_allowed=None,
         solve: str = "cores", cores: int | None = None, impl: str | None = None,
         demand_img_per_s: float | None = None, versus: ModelSpec | None = None,
         max_resolution: int = MAX_RESOLUTION, max_batch: int = MAX_BATCH,
         runtime: str = "eager", mode: str = "inference", optimizer: str = "sgd") -> Plan:
    """Plan one model on one device. See the module docstring for the rules.

    Args:
        resolution: input side in px (rounded down to the patch); not needed for solve="resolution".
        cores_allowed: candidate core budgets for solve="cores" (default: the model's budgets).
        cores: the core budget for solve="resolution" or "batch" (default: the largest allowed).
        versus: dense baseline (default: the catalog's dense model of the same width and depth).
        max_resolution, max_batch: search limits of solve="resolution" and solve="batch".
        runtime: "eager", "compiled" (torch.compile fuses elementwise chains) or "unfused" (eager
            with attention as matmul, softmax, matmul).
        dtype: a dtype, or "auto": the device's best supported (`best_dtype`).
        mode: "inference" (a forward) or "training" (a training step: forward, backward and the
            `optimizer`'s step, sgd or adamw; its time and memory).
    """
    if dtype == "auto":
        dtype = best_dtype(device)
    problem = _problem(spec, device, resolution=resolution, batch=batch, dtype=dtype,
                       budgets=budgets, cores_allowed=cores_allowed, solve=solve, cores=cores,
                       impl=impl, max_resolution=max_resolution, max_batch=max_batch,
                       runtime=runtime, mode=mode, optimizer=optimizer)
    _positive("demand_img_per_s", demand_img_per_s)
    chosen, candidates = SOLVERS[solve](problem)
    base_spec = versus or (baseline_model(spec) if spec.is_core else None)
    baseline = None
    if base_spec is not None:
        if base_spec.is_core:
            raise ArgumentError("versus", f"takes a dense model; {base_spec.name} is a core model")
        at = chosen or candidates[0]
        baseline = evaluate_configs([configure(base_spec, base_spec.round_resolution(at.resolution),
                                               batch=at.batch, dtype=dtype)], device, budgets,
                                    runtime, mode, optimizer)[0]
    from planners.economics import devices_for

    needed = (devices_for(demand_img_per_s, chosen.throughput_img_per_s)
              if chosen and demand_img_per_s else None)
    impl_used = problem.config(resolution=spec.patch_size, cores=problem.cores_allowed[-1]).impl
    return Plan(device.name, spec.name, impl_used,
                spec.round_resolution(problem.resolution or spec.patch_size),
                batch, dtype, solve, budgets, chosen, tuple(candidates), baseline,
                base_spec.name if base_spec else None, demand_img_per_s, needed, problem)


def _problem(spec, device, *, resolution, batch, dtype, budgets, cores_allowed, solve, cores, impl,
             max_resolution, max_batch, runtime, mode="inference", optimizer="sgd") -> Problem:
    from costmodel.errors import check_choice
    from planners.roofline import MODES, check_runtime_dtype
    from planners.training_step import OPTIMIZERS

    check_choice("solve", solve, SOLVES)
    check_runtime_dtype(runtime, dtype)
    check_choice("mode", mode, MODES)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    if resolution is None and solve != "resolution":
        resolution = spec.native_side  # a model's stored input size, where it has one
        if resolution is None:
            raise ArgumentError("resolution", f"is required unless solve is 'resolution' "
                                              f"({spec.name} has no native input size)")
    if resolution is not None and solve != "resolution":
        check_side(spec, resolution)
    if solve == "cores" and cores is not None:
        raise ArgumentError("cores", "fixes C when solving for resolution or batch; when solving "
                            "for cores, restrict the budgets searched with the allowed budgets")
    for name, value in (("max_resolution", max_resolution), ("max_batch", max_batch)):
        if not isinstance(value, int) or value < 1:
            raise ArgumentError(name, f"must be a positive integer, got {value!r}")
    allowed = allowed_budgets(spec, cores_allowed)
    core = (check_cores(spec, cores) if cores is not None else allowed[-1]) if spec.is_core else None
    problem = Problem(spec, device, budgets, resolution, batch, dtype, impl, tuple(allowed), core,
                      max_resolution, max_batch, runtime, mode, optimizer)
    problem.config(resolution=resolution or spec.patch_size)  # validates batch, dtype, impl, C
    return problem


def allowed_budgets(spec: ModelSpec, cores_allowed) -> list:
    """The core budgets to consider, ascending and checked (default: the model's own); [None]
    for a dense model, which takes none."""
    if not spec.is_core:
        if cores_allowed:
            raise ArgumentError("cores_allowed", f"applies to core models; {spec.name} is dense")
        return [None]
    try:
        return sorted({check_cores(spec, c) for c in (cores_allowed or spec.budgets)})
    except ArgumentError as err:
        raise ArgumentError("cores_allowed", err.detail) from None


# --------------------------------------------------------------------------- explaining a plan
def describe(c: Candidate, budgets: Budgets, device: DeviceSpec) -> str:
    """The candidate's tightest constraint in words, e.g. 'latency 25.1 ms > 20 ms'."""
    sign = ">" if not c.feasible else "<="
    if c.tightest == "latency":
        at = " at the interval's top (p95)" if budgets.latency_at == "p95" else ""
        return f"latency {budgets.checked_latency_ms(c):.4g} ms{at} {sign} {budgets.latency_ms:g} ms"
    if c.tightest == "memory":
        return f"memory {c.memory_bytes / GB:.4g} GB {sign} {budgets.memory_gb:g} GB"
    if c.tightest == "throughput":
        sign = "<" if not c.feasible else ">="
        return (f"throughput {c.throughput_img_per_s:.4g} img/s {sign} "
                f"{budgets.throughput_img_per_s:g} img/s")
    return (f"memory {c.memory_bytes / GB:.4g} GB {sign} {device.name} capacity "
            f"{device.memory_capacity_bytes / GB:g} GB")


def infeasible_message(p: Plan) -> str:
    """One line: the smallest violation and the nearest feasible alternative."""
    problem = p.problem
    worst = min(p.candidates, key=lambda c: c.usage[c.tightest])
    where = f"C={worst.cores} " if worst.cores else ""
    line = (f"nothing feasible for {p.model} on {p.device}: the smallest violation is at "
            f"{where}{worst.resolution} px, batch {worst.batch}: "
            f"{describe(worst, p.budgets, problem.device)}")
    return line + "; " + nearest_feasible(p)


def nearest_feasible(p: Plan) -> str:
    """The largest resolution (at the plan's batch) and the largest batch (at its resolution) that
    fit at the smallest allowed core budget, within the plan's own search limits."""
    problem = replace(p.problem, cores=p.problem.cores_allowed[0])
    alternatives = []
    by_res, _ = _solve_resolution(problem)
    if by_res:
        alternatives.append(f"{by_res.resolution} px at batch {p.batch}")
    if p.solve != "resolution":
        by_batch, _ = _solve_batch(problem)
        if by_batch:
            alternatives.append(f"batch {by_batch.batch} at {p.resolution} px")
    core = problem.cores
    at = f" at C={core}" if core else ""
    if not alternatives:
        return f"no resolution or batch fits{at} either"
    return f"nearest feasible{at}: " + " or ".join(alternatives)
