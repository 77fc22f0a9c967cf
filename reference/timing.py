"""Wall-clock timing you can trust: warm-up, a machine probe interleaved with the repeats, dispersion.

A `Probe` is a fixed reference workload (a chain of square matmuls on the same device and thread
count as the timed call). Its quiet time is the fastest block median seen so far; while a call is
timed, the probe runs between repeats, and its median over the row divided by that quiet time is
the row's `probe_ratio`. A busy machine (another job on the same cores, a noisy neighbour) slows the
probe too, so a ratio well above 1 says "do not trust this row" (status `busy`), whatever the
timed call's own spread says. CUDA: every timed region is synchronised.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from costmodel.measurements import BUSY_PROBE_RATIO  # noqa: E402  (one limit for writers and readers)
# interquartile range above 25% of the median: the timing is not stable. With nothing else running,
# rows of `validate --quick` on this project's 2-core VM spread up to 16% (the VM's own speed
# wanders; see BUSY_PROBE_RATIO), and another process's load shows in the probe first.
BUSY_DISPERSION = 0.25


@dataclass(frozen=True)
class Timing:
    median_ms: float
    iqr_ms: float
    min_ms: float
    repeats: int
    threads: int
    probe_ms: float | None  # median probe time during the row
    probe_ratio: float | None  # probe_ms / the quiet probe time known then

    @property
    def dispersion(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms else 0.0

    def busy_reason(self, probe_limit: float = BUSY_PROBE_RATIO,
                    dispersion_limit: float = BUSY_DISPERSION) -> str | None:
        """Why this timing looks taken on a busy machine, or None."""
        if self.probe_ratio is not None and self.probe_ratio > probe_limit:
            return f"probe {self.probe_ratio:.2f}x its quiet time (limit {probe_limit:.2f})"
        if self.repeats >= 4 and self.dispersion > dispersion_limit:
            return f"IQR {self.dispersion:.0%} of the median (limit {dispersion_limit:.0%})"
        return None


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _seconds(fn, device: str) -> float:
    """One call's seconds: on a CPU by the wall clock; on CUDA between two events recorded on the
    stream around the call (launches included: the end event waits for the last kernel; no host
    synchronisation inside the timed region)."""
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    start_s = time.perf_counter()
    fn()
    return time.perf_counter() - start_s


def graph_replay(fn, device: str = "cuda", warmup: int = 3):
    """`fn` captured as a CUDA graph: a no-argument callable that replays it (the same kernels
    with no launch from Python), or None where it cannot be captured (an error is returned as the
    second value). On a CPU there is nothing to capture: (None, "no CUDA graphs on a CPU")."""
    if device != "cuda":
        return None, "no CUDA graphs on a CPU"
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        torch.cuda.synchronize()
        return graph.replay, None
    except Exception as err:  # a kernel that cannot be captured: say which, time it eagerly
        torch.cuda.synchronize()
        return None, f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"


class Probe:
    """A fixed matmul chain, timed between repeats to tell a quiet machine from a busy one.

    Args:
        device: "cpu" or "cuda".
        size: side of the square fp32 matrices (CPU default 384: ~3 ms for the chain on 2 cores;
            CUDA 2048: 4 products of 2 x 2048^3 FLOPs, ~1 ms at a data-center GPU's fp32 rate).
        chain: matmuls per probe.
    """

    def __init__(self, device: str = "cpu", size: int | None = None, chain: int = 4) -> None:
        self.device = device
        size = size or (384 if device == "cpu" else 2048)
        generator = torch.Generator().manual_seed(0)
        self.a = torch.randn(size, size, generator=generator).to(device)
        self.b = torch.randn(size, size, generator=generator).to(device) / size ** 0.5
        self.chain = chain
        self.quiet_s: float | None = None
        self.run()  # warm

    def run(self) -> None:
        x = self.a
        for _ in range(self.chain):
            x = x @ self.b  # (size, size) @ (size, size) -> (size, size)

    def sample(self, repeats: int = 3) -> float:
        """Median seconds of `repeats` probes after one untimed run (so the timed call's effect on
        the caches does not count as a busy machine); the fastest median ever seen is the quiet
        time."""
        self.run()
        median = statistics.median(_seconds(self.run, self.device) for _ in range(repeats))
        self.quiet_s = median if self.quiet_s is None else min(self.quiet_s, median)
        return median

    def settle(self, rounds: int = 5) -> float:
        """Sample a few times (start of a sweep) so the quiet time is not one lucky or busy sample."""
        for _ in range(rounds):
            self.sample()
        return self.quiet_s


def time_call(fn, *, min_run_time_s: float = 1.0, min_repeats: int = 5, warmup: int = 2,
              threads: int | None = None, device: str = "cpu", probe: Probe | None = None,
              max_repeats: int = 1000) -> Timing:
    """Time `fn()` (no arguments): warm-up calls, then single timed calls, each preceded by a
    probe sample when a probe is given, until both `min_run_time_s` of timed calls and
    `min_repeats` calls are done.

    Args:
        fn: the call to time, e.g. ``lambda: model(images, core_tokens=64)``.
        min_run_time_s: keep measuring until the timed calls took this long in total.
        min_repeats: at least this many timed calls (the IQR needs several).
        warmup: untimed calls first (lazy initialisation, allocator, caches, autotuning).
        threads: CPU intra-op threads during timing (default: torch's current setting).
        device: "cuda" synchronises around every timed call.
        probe: the machine probe; its samples give the row's probe_ratio.
        max_repeats: stop after this many calls even if min_run_time_s is not reached.
    """
    previous = torch.get_num_threads()
    threads = threads or previous
    torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            fn()
        times, probes, spent = [], [], 0.0
        while (spent < min_run_time_s or len(times) < min_repeats) and len(times) < max_repeats:
            if probe is not None:
                probes.append(probe.sample())
            times.append(_seconds(fn, device))
            spent += times[-1]
        if probe is not None:
            probes.append(probe.sample())
    finally:
        torch.set_num_threads(previous)
    q1, _, q3 = statistics.quantiles(times, n=4) if len(times) >= 2 else (times[0],) * 3
    probe_s = statistics.median(probes) if probe is not None else None
    return Timing(statistics.median(times) * 1e3, (q3 - q1) * 1e3, min(times) * 1e3, len(times),
                  threads, probe_s * 1e3 if probe_s else None,
                  probe_s / probe.quiet_s if probe_s else None)


def interleaved(calls: dict, rounds: int, *, min_run_time_s: float, min_repeats: int = 1,
                warmup: int = 1, threads: int | None = None, device: str = "cpu",
                probe: Probe | None = None, deadline: float | None = None):
    """Time every call once per round, round after round: yields (round, key, Timing) as each is
    timed. A machine whose speed drifts over minutes reaches every call alike, and a slow minute
    costs each call one round rather than one call all of its repeats (a call's time is then the
    median of its rounds: `combine_rounds`). `calls`: key -> no-argument callable; the warm-up
    runs in the first round only; past `deadline` (time.monotonic()) nothing more is timed. The
    caller keeps what was yielded if it stops early."""
    for round_ in range(rounds):
        for key, fn in calls.items():
            if deadline is not None and time.monotonic() > deadline:
                return
            yield round_, key, time_call(fn, min_run_time_s=min_run_time_s,
                                         min_repeats=min_repeats,
                                         warmup=warmup if round_ == 0 else 0, threads=threads,
                                         device=device, probe=probe)


@dataclass(frozen=True)
class Rounds:
    """One call's rounds combined: `median_ms` the median of the quiet rounds' medians,
    `spread_ms` their interquartile range (the drift between rounds; 0 with fewer than two),
    `min_ms` the fastest call of any quiet round, `repeats` the calls of the quiet rounds, the
    probe's median readings over them; `quiet` and `rounds` count the rounds. All rounds busy: the
    same over all of them, `busy` set to the last round's reason."""

    median_ms: float
    spread_ms: float
    min_ms: float
    repeats: int
    probe_ms: float | None
    probe_ratio: float | None
    quiet: int
    rounds: int
    busy: str | None


def combine_rounds(timings: list[Timing]) -> Rounds:
    """`Rounds` of one call's per-round timings (at least one)."""
    if not timings:
        raise ValueError("combine_rounds needs at least one round")
    quiet = [t for t in timings if t.busy_reason() is None]
    use = quiet or timings
    medians = [t.median_ms for t in use]
    q1, _, q3 = statistics.quantiles(medians, n=4) if len(medians) >= 2 else (medians[0],) * 3
    probes = [t.probe_ms for t in use if t.probe_ms is not None]
    ratios = [t.probe_ratio for t in use if t.probe_ratio is not None]
    return Rounds(statistics.median(medians), q3 - q1, min(t.min_ms for t in use),
                  sum(t.repeats for t in use), statistics.median(probes) if probes else None,
                  statistics.median(ratios) if ratios else None, len(quiet), len(timings),
                  None if quiet else timings[-1].busy_reason())
