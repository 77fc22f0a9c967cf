"""Wall-clock timing of a forward with torch.utils.benchmark: median and interquartile range.

CPU: the Timer runs with an explicit thread count, which is recorded. CUDA: the Timer synchronizes
around every block; a warm-up call runs first so lazy initialisation and autotuning are not timed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils import benchmark


@dataclass(frozen=True)
class Timing:
    median_ms: float
    iqr_ms: float
    min_ms: float
    repeats: int
    threads: int


def time_call(fn, *, min_run_time_s: float = 1.0, min_repeats: int = 3, warmup: int = 1,
              threads: int | None = None) -> Timing:
    """Time `fn()` (no arguments).

    Args:
        fn: the call to time, e.g. ``lambda: model(images, core_tokens=64)``.
        min_run_time_s: keep measuring until this much time was spent (blocked_autorange).
        min_repeats: at least this many measurements, so the IQR means something for slow calls.
        warmup: untimed calls first.
        threads: intra-op threads during timing (default: torch's current setting).
    """
    threads = threads or torch.get_num_threads()
    for _ in range(warmup):
        fn()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    measurements = [timer.blocked_autorange(min_run_time=min_run_time_s)]
    while sum(len(m.times) for m in measurements) < min_repeats:
        measurements.append(timer.timeit(number=1))
    times = [t for m in measurements for t in m.times]
    merged = benchmark.Measurement(1, times, measurements[0].task_spec)
    return Timing(merged.median * 1e3, merged.iqr * 1e3, min(times) * 1e3, len(times), threads)
