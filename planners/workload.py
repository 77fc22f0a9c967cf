"""What a server is fed and what its answers are worth: arrival processes and quality tables.

Arrival times are seconds from the start of the run, sorted, as a float64 numpy array.
- `poisson`: a Poisson process of the given mean rate.
- `bursty`: a two-state Markov-modulated Poisson process (MMPP-2) with the same mean rate. The
  process alternates calm and burst periods of exponentially distributed length (means
  `calm_mean_s`, `burst_mean_s`); in a burst requests arrive at `burst_factor` times the mean
  rate, in calm periods at the rate that keeps the long-run mean equal to `rate`. The defaults
  (`Bursty()`): bursts at 4x the mean rate, 1 s long on average, every 10 s on average (so 10% of
  the time), and calm periods at 2/3 of the mean rate.
- `read_trace`: a file of timestamps (seconds), one per line; replayed as given, or scaled in
  time to another mean rate.

A quality table (`read_quality`) maps a core budget C to a quality figure (e.g. a top-1 accuracy).
It is taken as given: a budget missing from the file has no quality, and nothing is interpolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from costmodel.errors import ArgumentError, CoreplanError, read_text

MAX_REQUESTS = 50_000_000  # ~400 MB per float64 array of arrival times


@dataclass(frozen=True)
class Bursty:
    """An MMPP-2 of mean rate `rate` (see the module docstring)."""

    burst_factor: float = 4.0
    burst_mean_s: float = 1.0
    calm_mean_s: float = 9.0

    @property
    def burst_share(self) -> float:
        return self.burst_mean_s / (self.burst_mean_s + self.calm_mean_s)

    @property
    def calm_factor(self) -> float:
        """The calm rate as a multiple of the mean, so that the long-run mean is the rate."""
        return (1.0 - self.burst_share * self.burst_factor) / (1.0 - self.burst_share)


def _positive(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ArgumentError(name, f"must be a positive number, got {value!r}")


def _check_run(rate: float, duration_s: float) -> None:
    _positive("rate", rate)
    _positive("duration_s", duration_s)
    if rate * duration_s > MAX_REQUESTS:
        raise ArgumentError("duration_s", f"{duration_s:g} s at {rate:g}/s is {rate * duration_s:.3g} "
                            f"requests; at most {MAX_REQUESTS:.0e} per run")


def _rng(seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ArgumentError("seed", f"must be an integer >= 0, got {seed!r}")
    return np.random.default_rng(seed)


def _uniform_in(starts, lengths, rates, rng) -> np.ndarray:
    """A Poisson process of rate rates[i] on each interval [starts[i], starts[i] + lengths[i]):
    a Poisson count per interval, then that many uniform times in it (exact for Poisson)."""
    counts = rng.poisson(np.asarray(rates) * np.asarray(lengths))
    times = (np.repeat(starts, counts) + rng.random(int(counts.sum())) * np.repeat(lengths, counts))
    times.sort()
    return times


def poisson(rate: float, duration_s: float, seed: int = 0) -> np.ndarray:
    """Arrival times of a Poisson process of `rate` per second on [0, duration_s)."""
    _check_run(rate, duration_s)
    rng = _rng(seed)
    return _uniform_in(np.array([0.0]), np.array([duration_s]), np.array([rate]), rng)


def bursty(rate: float, duration_s: float, seed: int = 0, shape: Bursty = Bursty()) -> np.ndarray:
    """Arrival times of the MMPP-2 `shape` with mean `rate` per second on [0, duration_s); the run
    starts in a calm period."""
    _check_run(rate, duration_s)
    if not 0 < shape.burst_share * shape.burst_factor < 1:
        raise ArgumentError("shape", "bursts must carry less than all of the mean rate")
    rng = _rng(seed)
    cycle = shape.burst_mean_s + shape.calm_mean_s
    pairs = int(duration_s / cycle * 1.5) + 16
    while True:  # enough calm/burst pairs to pass the end of the run
        lengths = np.empty(2 * pairs)
        lengths[0::2] = rng.exponential(shape.calm_mean_s, pairs)
        lengths[1::2] = rng.exponential(shape.burst_mean_s, pairs)
        if lengths.sum() >= duration_s:
            break
        pairs *= 2
    starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    keep = starts < duration_s
    starts, lengths = starts[keep], np.minimum(lengths[keep], duration_s - starts[keep])
    factors = np.where(np.arange(len(starts)) % 2 == 0, shape.calm_factor, shape.burst_factor)
    return _uniform_in(starts, lengths, rate * factors, rng)


# the arrival processes by name: (rate, duration_s, seed) -> sorted arrival times
PROCESSES = {"poisson": poisson, "bursty": bursty}


def read_trace(path, rate: float | None = None, duration_s: float | None = None) -> np.ndarray:
    """Arrival times from a trace file: one timestamp in seconds per line (a header line and lines
    starting with '#' are skipped), shifted to start at 0 and sorted. With `rate`, times are
    scaled so that the trace's mean rate (requests / span) becomes `rate`; with `duration_s`, the
    trace is cut there."""
    times = []
    for number, line in enumerate(read_text(path, "trace file").splitlines(), 1):
        text = line.split(",")[0].strip()
        if not text or text.startswith("#") or (number == 1 and not _is_number(text)):
            continue
        if not _is_number(text) or not math.isfinite(float(text)) or float(text) < 0:
            raise CoreplanError(f"trace file {path}:{number}: expected a timestamp in seconds "
                                f"(a finite number >= 0), got {text!r}")
        times.append(float(text))
    if len(times) < 2:
        raise CoreplanError(f"trace file {path}: needs at least two timestamps, found {len(times)}")
    arrivals = np.sort(np.array(times))
    arrivals -= arrivals[0]
    if arrivals[-1] <= 0:
        raise CoreplanError(f"trace file {path}: every timestamp is the same; no rate to replay")
    if rate is not None:
        _positive("rate", rate)
        arrivals *= (len(arrivals) / arrivals[-1]) / rate
    if duration_s is not None:
        _positive("duration_s", duration_s)
        arrivals = arrivals[arrivals < duration_s]
        if len(arrivals) == 0:
            raise ArgumentError("duration_s", f"{duration_s:g} s keeps no request of trace {path}")
    return arrivals


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_quality(path) -> dict[int, float]:
    """A quality table: CSV with the header `cores,quality` (more columns, e.g. a source, are
    kept out of the numbers); '#' lines are comments. An empty quality cell means the value is
    not known and is left out."""
    import csv

    lines = [line for line in read_text(path, "quality file").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    rows = list(csv.reader(lines))
    header = [name.strip() for name in rows[0]] if rows else []
    if "cores" not in header or "quality" not in header:
        raise CoreplanError(f"quality file {path}: expected a header with columns cores,quality")
    at_cores, at_quality = header.index("cores"), header.index("quality")
    table: dict[int, float] = {}
    seen: set[int] = set()
    for number, row in enumerate(rows[1:], 2):
        cells = [cell.strip() for cell in row] + [""] * len(header)
        try:
            cores = int(cells[at_cores])
            quality = float(cells[at_quality]) if cells[at_quality] else None
        except ValueError:
            raise CoreplanError(f"quality file {path}: row {number}: expected an integer C and a "
                                f"number, got {cells[at_cores]!r}, {cells[at_quality]!r}") from None
        if cores <= 0 or (quality is not None and not math.isfinite(quality)) or cores in seen:
            raise CoreplanError(f"quality file {path}: row {number}: C must be positive, unique, "
                                f"and the quality finite")
        seen.add(cores)
        if quality is not None:
            table[cores] = quality
    if not table:
        raise CoreplanError(f"quality file {path}: no core budget has a quality")
    negative = [c for c, q in table.items() if q < 0]
    if negative:
        raise CoreplanError(f"quality file {path}: C={negative[0]}: quality {table[negative[0]]:g} "
                            f"is negative (a quality is a score such as accuracy, in [0, 1] or "
                            f"percent)")
    values = list(table.values())
    if max(values) > 1 and min(values) <= 1:  # 0.81 beside 79.3: fractions and percentages
        raise CoreplanError(f"quality file {path}: mixes fractions (at most 1: "
                            f"{min(values):g}) and percentages (above 1: {max(values):g}); "
                            f"write one scale")
    if max(values) > 100:
        raise CoreplanError(f"quality file {path}: quality {max(values):g} is above 100, "
                            f"neither a fraction nor a percentage")
    return table


def check_quality_budgets(table: dict[int, float], spec) -> None:
    """Every C of a quality table is one of the model's budgets (a row for another C would be
    read for a C the model never runs)."""
    foreign = sorted(c for c in table if c not in spec.budgets)
    if foreign:
        raise CoreplanError(f"quality file: C={foreign[0]} is not a core budget of {spec.name} "
                            f"({', '.join(map(str, spec.budgets))})")
