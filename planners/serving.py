"""Elastic serving under load: K identical devices serve one request stream, C chosen per batch.

The simulation. Requests arrive (planners.workload), wait in one first-in-first-out queue shared
by the devices and are served in batches (dynamic batching): the device that frees first takes the
queue's head at once when `max_batch` requests wait; otherwise it waits until the batch fills or
the oldest request has waited `batch_timeout_s`, whichever comes first, and takes what has come
(at most `max_batch`). A batch of b images at core budget C takes s(b, C), the latency model's
predicted time on the device (`planners.planner.predicted_seconds`, the planner's own numbers). A
request's latency is its wait in the queue plus its batch's service time.

The machinery is a compact event loop over batches, not a discrete-event library: with one FIFO
queue the queue is a pointer into the sorted arrival times, so a batch costs a heap operation and
a few binary searches and a request costs nothing in Python (its latency is one vectorised
subtraction at the end). A general library schedules an event per request and process step.

Policies (`Policy`):
- static: every batch at one C (for a dense model: the model as it is).
- elastic: per batch, the largest allowed C whose predicted schedule meets the objective for the
  batch and for every request already queued behind it. The batch and that backlog are cut into
  rounds of K batches of the batch's size; round r ends at t + r * s(b, C) (t: dispatch time),
  and the oldest request of each round must finish within `slo_s` of its arrival. Rounds 1-16 are
  checked one by one; a deeper backlog is checked on rounds growing by 25%, each bounding the
  rounds up to the next from the safe side (arrivals are sorted, so a later round's oldest request
  arrived no earlier). When no C meets it (overload), the batch runs at the smallest C and counts
  as an overload batch. NB: the K - 1 other devices are assumed free at t; they may still be busy.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from costmodel.config import configure
from costmodel.errors import ArgumentError
from costmodel.spec import ModelSpec
from planners.devices import DeviceSpec
from planners.limits import MAX_BATCH, MAX_DEVICES, MAX_SERVICE_CV

EXACT_ROUNDS = 16


@dataclass(frozen=True)
class ServiceTable:
    """Predicted service seconds of a batch: seconds[b - 1][j] for b images at cores[j]
    (ascending; (None,) for a dense model)."""

    model: str
    cores: tuple
    seconds: np.ndarray  # (max_batch, len(cores))

    @property
    def max_batch(self) -> int:
        return self.seconds.shape[0]

    def column(self, cores) -> int:
        if cores not in self.cores:
            raise ArgumentError("cores", f"{cores} is not among {self.model}'s budgets "
                                f"{', '.join(map(str, self.cores))}")
        return self.cores.index(cores)

    def capacity_img_per_s(self, cores=None, devices: int = 1, max_batch: int | None = None) -> float:
        """The most images per second K devices serve at C: full batches (of `max_batch`,
        default the table's largest) back to back."""
        j = self.column(cores if cores is not None else self.cores[-1])
        b = max_batch or self.max_batch
        return devices * b / float(self.seconds[b - 1, j])


def service_table(spec: ModelSpec, device: DeviceSpec, *, resolution: int, dtype: str,
                  max_batch: int, cores_allowed=None, impl: str | None = None,
                  runtime: str = "eager") -> ServiceTable:
    """The latency model's s(b, C) for b = 1..max_batch and every allowed C, in one pass. The
    largest batch at the largest C must fit in the device's memory."""
    from planners.planner import GB, allowed_budgets, predicted_seconds

    if not isinstance(max_batch, int) or not 1 <= max_batch <= MAX_BATCH:
        raise ArgumentError("max_batch", f"must be an integer in 1..{MAX_BATCH}, got {max_batch!r}")
    cores = tuple(allowed_budgets(spec, cores_allowed))
    side = spec.round_resolution(resolution)
    need, capacity = batch_bytes(spec, device, resolution=side, dtype=dtype, batch=max_batch,
                                 cores=cores[-1], impl=impl), device.memory_capacity_bytes
    if need > capacity:
        raise ArgumentError("max_batch", f"{max_batch} does not fit on {device.name}: "
                            f"{need / GB:.3g} GB > {capacity / GB:g} GB")
    configs = [configure(spec, side, cores=c, batch=b, impl=impl, dtype=dtype)
               for b in range(1, max_batch + 1) for c in cores]
    seconds = np.asarray(predicted_seconds(configs, device, runtime), dtype=np.float64)
    return ServiceTable(spec.name, cores, seconds.reshape(max_batch, len(cores)))


def batch_bytes(spec: ModelSpec, device: DeviceSpec, *, resolution: int, dtype: str, batch: int,
                cores=None, impl: str | None = None) -> int:
    """The process footprint of serving `batch` images at C = `cores` (default the largest)."""
    from planners.planner import allowed_budgets, process_bytes

    cores = cores if cores is not None else allowed_budgets(spec, None)[-1]
    config = configure(spec, spec.round_resolution(resolution), cores=cores, batch=batch,
                       impl=impl, dtype=dtype)
    return process_bytes(config, device)


@dataclass(frozen=True)
class Policy:
    """How each batch's C is chosen: kind "static" (at `cores`; None for a dense model) or
    "elastic" (over the table's budgets); `name` labels the results ("dense" for a baseline)."""

    name: str
    kind: str
    table: ServiceTable
    cores: int | None = None

    @property
    def fastest_cores(self) -> int | None:
        """The C of its fastest service: the smallest budget (elastic) or its own C (static)."""
        return self.table.cores[0] if self.kind == "elastic" else self.cores

    def capacity_img_per_s(self, devices: int = 1, max_batch: int | None = None) -> float:
        """The most images/s it can serve: full batches back to back at its fastest C."""
        return self.table.capacity_img_per_s(self.fastest_cores, devices, max_batch)

    def capacity_devices(self, offered_img_per_s: float, max_batch: int | None = None) -> int:
        """The capacity bound: the fewest devices whose full batches at the fastest C serve the
        offered rate with each device busy all the time and no queue (`plan --demand`'s count
        at the same batch and C). A stable fleet needs more than this capacity: at least this
        many devices, and queueing under an objective usually needs more."""
        from planners.economics import devices_for

        return devices_for(offered_img_per_s, self.capacity_img_per_s(1, max_batch))


POLICIES = ("static", "elastic", "dense", "all")


def make_policies(spec: ModelSpec, device: DeviceSpec, *, resolution: int, dtype: str,
                  policy: str = "all", max_batch: int = 8, cores: int | None = None,
                  cores_allowed=None, impl: str | None = None, runtime: str = "eager",
                  versus: ModelSpec | None = None) -> list[Policy]:
    """The policies asked for, each with its service table on `device`: "static" (every batch at
    `cores`, default the largest budget; a dense model as it is), "elastic" (a core model, C per
    batch among `cores_allowed`), "dense" (the `versus` baseline, default the catalog's dense
    model of the same width and depth), or "all" that apply. An argument that no policy asked
    for uses is refused, naming it."""
    from costmodel.config import check_cores
    from costmodel.errors import check_choice
    from planners.planner import baseline_model

    from planners.roofline import check_runtime_dtype

    from costmodel.config import check_side

    check_choice("policy", policy, POLICIES)
    check_runtime_dtype(runtime, dtype)
    check_side(spec, resolution)
    _check_policy_arguments(spec, policy, cores, cores_allowed)
    base = versus or (baseline_model(spec) if spec.is_core else None)
    if base is not None and base.is_core:
        raise ArgumentError("versus", f"takes a dense model; {base.name} is a core model")
    if policy == "dense" and base is None:
        raise ArgumentError("policy", "dense needs a dense baseline model (versus)")

    def table(model, allowed=None):
        return service_table(model, device, resolution=resolution, dtype=dtype,
                             max_batch=max_batch, cores_allowed=allowed,
                             impl=impl if model is spec else None, runtime=runtime)

    chosen = []
    if policy in ("static", "all"):
        if spec.is_core:
            static = check_cores(spec, cores)
            chosen.append(Policy(f"static C={static}", "static", table(spec, [static]), static))
        else:
            chosen.append(Policy("static", "static", table(spec)))
    if policy in ("elastic", "all") and spec.is_core:
        chosen.append(Policy("elastic", "elastic", table(spec, cores_allowed or None)))
    if policy in ("dense", "all") and base is not None:
        chosen.append(Policy(f"dense {base.name}", "static", table(base)))
    return chosen


def _check_policy_arguments(spec: ModelSpec, policy: str, cores, cores_allowed) -> None:
    if not spec.is_core and policy == "elastic":
        raise ArgumentError("policy", f"elastic needs a core model; {spec.name} is dense")
    if cores_allowed and not spec.is_core:
        raise ArgumentError("cores_allowed", f"applies to core models; {spec.name} is dense")
    if cores is not None and policy in ("elastic", "dense"):
        raise ArgumentError("cores", f"fixes the static policy's C; the {policy} policy does "
                            f"not use it (elastic chooses among the allowed budgets)")
    if cores_allowed and policy in ("static", "dense"):
        raise ArgumentError("cores_allowed", f"lists the elastic policy's budgets; the "
                            f"{policy} policy does not use it (static runs at its C)")
    if cores is not None and not spec.is_core:
        raise ArgumentError("cores", f"applies to core models; {spec.name} is dense")


def check_objective(policies: list[Policy], slo_s: float, model: str, device: str) -> None:
    """An objective below the fastest service any of the model's own policies gives (one image
    at its fastest C) cannot be met: refused, saying that fastest time."""
    own = [p for p in policies if p.table.model == model] or policies
    fastest = min(map(fastest_s, own))
    if slo_s < fastest:
        raise ArgumentError("slo_ms", f"{slo_s * 1e3:g} ms is below the fastest possible "
                            f"service, {fastest * 1e3:.4g} ms ({model}, one image, on {device})")


@dataclass(frozen=True)
class ServeResult:
    """One policy's run. Latencies in ms; cores_histogram: requests served at each C."""

    policy: str
    model: str
    devices: int
    latency_ms: dict
    slo_attainment: float
    throughput_img_per_s: float
    mean_cores: float | None
    cores_histogram: dict
    expected_quality: float | None
    requests: int
    batches: int
    missed: int
    overload_batches: int
    mean_batch: float
    wait_ms_mean: float
    service_ms_mean: float
    utilisation: float
    quality_missing: tuple = field(default=())  # budgets used that the quality table lacks

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["cores_histogram"] = {str(k): v for k, v in self.cores_histogram.items()}
        d["quality_missing"] = list(self.quality_missing)
        return d


def _batches(arrivals: list[float], devices: int, max_batch: int, timeout_s: float, pick):
    """The event loop: (start, size, column) per batch; `pick(t, head, size)` returns the column
    of the table to serve the batch starting at head with, and its service seconds."""
    n = len(arrivals)
    free = [0.0] * devices
    starts, sizes, columns, services = [], [], [], []
    head = 0
    while head < n:
        t = heapq.heappop(free)
        oldest = arrivals[head]
        if t < oldest:
            t = oldest
        stop = min(n, head + max_batch)
        end = bisect_right(arrivals, t, head, stop)
        if end - head < max_batch:  # not full: wait for it to fill or for the timeout
            fill = arrivals[head + max_batch - 1] if head + max_batch - 1 < n else math.inf
            due = min(fill, oldest + timeout_s)
            if due > t:
                t = due
                end = bisect_right(arrivals, t, head, stop)
        column, seconds = pick(t, head, end - head)
        heapq.heappush(free, t + seconds)
        starts.append(t)
        sizes.append(end - head)
        columns.append(column)
        services.append(seconds)
        head = end
    return starts, sizes, columns, services


def _elastic_pick(arrivals: list[float], table: ServiceTable, devices: int, slo_s: float,
                  overloads: list):
    """The elastic policy (module docstring) as a `pick` for the event loop."""
    rows = table.seconds.tolist()
    n = len(arrivals)

    def pick(t: float, head: int, size: int):
        row = rows[size - 1]
        queued = bisect_right(arrivals, t, head + size, n) - head  # the batch + its backlog
        per_round = devices * size
        last = -(-queued // per_round)
        allowed = math.inf  # the most seconds a round may take
        r = 1
        while True:
            slack = arrivals[head + (r - 1) * per_round] + slo_s - t
            if r >= last:
                allowed = min(allowed, slack / r)
                break
            following = r + 1 if r < EXACT_ROUNDS else min(last, r * 5 // 4)
            allowed = min(allowed, slack / (following - 1))
            if allowed < row[0]:
                break
            r = following
        for j in range(len(row) - 1, -1, -1):
            if row[j] <= allowed:
                return j, row[j]
        overloads.append(1)
        return 0, row[0]

    return pick


def serve(policy: Policy, arrivals: np.ndarray, *, slo_s: float, devices: int = 1,
          max_batch: int | None = None, batch_timeout_s: float = 0.0,
          quality: dict | None = None, service_cv: float = 0.0, seed: int = 0) -> ServeResult:
    """Simulate one policy on one arrival sequence (sorted seconds). See the module docstring.

    `service_cv`: the coefficient of variation of a batch's service time around the latency
    model's (0: deterministic, as the model predicts it). Each batch's time is the model's times
    a gamma-distributed factor of mean 1 and that CV (seeded by `seed`), so that with Poisson
    arrivals and batch 1 the mean wait is the Pollaczek-Khinchine M/G/1 value
    rho E[S] (1 + cv^2) / (2 (1 - rho))."""
    table = policy.table
    max_batch = max_batch or table.max_batch
    _check_serve(arrivals, slo_s, devices, max_batch, batch_timeout_s, table)
    times = arrivals.tolist()
    overloads: list = []
    if policy.kind == "elastic":
        pick = _elastic_pick(times, table, devices, slo_s, overloads)
    else:
        column = table.column(policy.cores)
        fixed = table.seconds[:, column].tolist()

        def pick(t, head, size):
            return column, fixed[size - 1]

    if service_cv:
        check_service_cv(service_cv)
        shape = 1.0 / service_cv ** 2  # gamma of mean 1: shape k, scale 1/k, CV 1/sqrt(k)
        factors = np.random.default_rng(seed).gamma(shape, 1.0 / shape, len(times)).tolist()
        drawn = iter(factors)
        exact = pick

        def pick(t, head, size):  # noqa: F811  (the deterministic pick, varied)
            column, seconds = exact(t, head, size)
            return column, seconds * next(drawn)

    starts, sizes, columns, services = _batches(times, devices, max_batch, batch_timeout_s, pick)
    return _result(policy, arrivals, devices, slo_s, quality, np.array(starts), np.array(sizes),
                   np.array(columns), np.array(services), len(overloads))


def check_service_cv(service_cv: float) -> float:
    """A service-time CV in 0..MAX_SERVICE_CV, else one error naming the argument."""
    if not (math.isfinite(service_cv) and 0 <= service_cv <= MAX_SERVICE_CV):
        raise ArgumentError("service_cv", f"must be in 0..{MAX_SERVICE_CV:g} (a service time "
                            f"varying {service_cv:g}x its mean is not one service), got "
                            f"{service_cv:g}")
    return service_cv


def _check_serve(arrivals, slo_s, devices, max_batch, timeout_s, table) -> None:
    if len(arrivals) == 0:
        raise ArgumentError("arrivals", "has no request")
    if not (isinstance(slo_s, (int, float)) and math.isfinite(slo_s) and slo_s > 0):
        raise ArgumentError("slo_s", f"must be a positive number, got {slo_s!r}")
    if not isinstance(devices, int) or devices < 1:
        raise ArgumentError("devices", f"must be a positive integer, got {devices!r}")
    if not isinstance(max_batch, int) or not 1 <= max_batch <= table.max_batch:
        raise ArgumentError("max_batch", f"must be an integer in 1..{table.max_batch}")
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s >= 0):
        raise ArgumentError("batch_timeout_s", f"must be a number >= 0, got {timeout_s!r}")


def _result(policy, arrivals, devices, slo_s, quality, starts, sizes, columns, services,
            overloads) -> ServeResult:
    table = policy.table
    service = np.repeat(services, sizes)  # per request
    wait = np.repeat(starts, sizes) - arrivals
    latency = wait + service
    span = float(np.max(starts + services) - arrivals[0]) or float(np.max(services))
    per_column = np.bincount(columns, weights=sizes, minlength=len(table.cores)).astype(int)
    core_model = table.cores[0] is not None
    histogram = {c: int(k) for c, k in zip(table.cores, per_column) if k} if core_model else {}
    mean_cores = (sum(c * k for c, k in histogram.items()) / len(arrivals)) if core_model else None
    expected, missing = None, ()
    if quality is not None and core_model:
        missing = tuple(c for c in histogram if c not in quality)
        if not missing:
            expected = sum(quality[c] * k for c, k in histogram.items()) / len(arrivals)
    p50, p95, p99 = np.percentile(latency, [50, 95, 99]) * 1e3
    return ServeResult(
        policy.name, table.model, devices,
        {"mean": float(latency.mean() * 1e3), "p50": float(p50), "p95": float(p95), "p99": float(p99)},
        float(np.mean(latency <= slo_s)), len(arrivals) / span, mean_cores, histogram, expected,
        len(arrivals), len(starts), int(np.sum(latency > slo_s)), overloads,
        float(sizes.mean()), float(wait.mean() * 1e3), float(service.mean() * 1e3),
        float(services.sum() / (devices * span)), missing)


def fastest_s(policy: Policy) -> float:
    """The shortest service any request of this policy can get: batch 1 at its smallest C."""
    return float(policy.table.seconds[0, policy.table.column(policy.fastest_cores)])


def devices_needed(policy: Policy, arrivals: np.ndarray, *, slo_s: float, max_batch: int | None = None,
                   batch_timeout_s: float = 0.0, limit: int = MAX_DEVICES,
                   service_cv: float = 0.0, seed: int = 0):
    """The fewest devices for which the policy's p99 latency is within `slo_s` on these arrivals,
    with the results at that count and at one fewer: (devices, result, result_one_fewer), or
    (None, result at `limit`, None) when even `limit` devices miss. A lower bound from capacity
    starts the search; then doubling, then bisection (p99 falls as devices are added). A fleet
    whose capacity is below the offered rate never holds the objective, whatever a finite run's
    p99 says: its queue grows without end, and a short run sees only the start of it."""
    results: dict[int, ServeResult] = {}

    def at(k: int) -> ServeResult:  # each device count is simulated once
        if k not in results:
            results[k] = serve(policy, arrivals, slo_s=slo_s, devices=k, max_batch=max_batch,
                               batch_timeout_s=batch_timeout_s, service_cv=service_cv,
                               seed=seed)
        return results[k]

    span = float(arrivals[-1] - arrivals[0]) or 1.0
    offered = len(arrivals) / span

    def ok(k: int) -> bool:
        stable = policy.capacity_img_per_s(k, max_batch) > offered
        return stable and at(k).latency_ms["p99"] <= slo_s * 1e3

    low, high = 0, min(limit, policy.capacity_devices(offered, max_batch))
    if fastest_s(policy) > slo_s:  # one image alone misses: no fleet helps
        return None, at(high), None
    while not ok(high):
        if high >= limit:
            return None, at(high), None
        low, high = high, min(limit, high * 2)
    if low == 0 and high > 1:
        low = high - 1
        while low >= 1 and ok(low):
            high, low = low, max(0, low - max(1, low // 2))
    while high - low > 1:
        middle = (low + high) // 2
        high, low = (middle, low) if ok(middle) else (high, middle)
    return high, at(high), (at(low) if low >= 1 else None)


def load_sweep(policies: list[Policy], arrivals_at, rates, *, slo_s: float, devices: int = 1,
               max_batch: int | None = None, batch_timeout_s: float = 0.0,
               quality: dict | None = None, service_cv: float = 0.0,
               seed: int = 0) -> list[tuple[float, ServeResult]]:
    """Every policy at every offered rate (img/s): (rate, result) pairs; `arrivals_at(rate)` gives
    the arrival times for a rate (one seed for all, so the loads differ only in rate)."""
    out = []
    for rate in rates:
        arrivals = arrivals_at(rate)
        out += [(float(rate), serve(p, arrivals, slo_s=slo_s, devices=devices, max_batch=max_batch,
                                    batch_timeout_s=batch_timeout_s, quality=quality,
                                    service_cv=service_cv, seed=seed))
                for p in policies]
    return out
