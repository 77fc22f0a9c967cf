"""`coreplan profile`: time this machine's ops at the shapes the catalog's models produce.

What is measured (each point in two interleaved rounds, the second in reverse order, each round a
fresh copy of its tensors, a warm-up call, then timed calls; the point's time is the median of
its quiet rounds):
- linear: every (in_features, out_features) pair of the catalog's projections and MLPs, over a
  geometric ladder of token counts (batch x sequence), each call with the next of many copies of
  its weight spread over a pool four times the last-level cache (a model's layers each bring their
  own weights from memory; the same weight again would be timed from cache);
- conv2d: every patch embedding (3*P*P -> D), over a ladder of output positions;
- sdpa (head dims of the catalog): square calls (dense attention; masked with the core-periphery
  mask built as the reference kernel builds it) over sequence lengths; the split layout's two calls:
  few queries (the C cores over [cores; patches]) and few keys (the N patches over the C cores),
  written into the output as the reference kernel writes them, a curve per C over N;
- every pointwise op whose registry record says how PyTorch runs it alone (`torch_op`:
  layer norm, GELU, SiLU, mul, add, tanh, 2D RoPE and its tables) over a ladder of sizes;
- the dispatch cost of a trivial op.
Each point's curve key and work are its op's (the registry record's `profile_key` and
`profile_work`, as a prediction looks them up). Points are taken in order of how much of a ViT's
time they explain, each within a cap on one call's time, until the time budget is spent; what
did not fit is reported. Points are timed with reference.timing (the one timer), each beside a
sample of the machine probe: a point timed on a busy machine is measured again, a curve whose
time falls as its work grows is measured again or left out, and the profile records the
machine's state (load, CPU steal, the probe's readings) and says how many points stayed busy.
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass, replace
from types import SimpleNamespace

import torch
import torch.nn.functional as F

import costmodel.ops  # noqa: F401  (registers the formulas)
from costmodel.measurements import BUSY_PROBE_RATIO
from costmodel.ops import sdpa_regime
from costmodel.registry import OP_CLASSES, REGISTRY, resolve
from costmodel.spec import catalog
from planners.profile import Curve, Profile
from reference.attention import core_periphery_mask
from reference.counting import DTYPES
from reference.machine import last_level_cache_bytes

TOKENS = (32, 128, 512, 2048, 8192, 32768)
SEQUENCES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
# the split layout's calls: a curve per core budget (every one VECA's nested dropout trains, a
# multiple of 8 up to 64) over the patches. On 2026-12-01 (2-core EPYC, benchmarks/split_curves.py,
# 24 calls off every grid) one curve over every C by work alone, as profiles had it before, missed
# them by a mean 56%; curves at C = 8, 16, 32, 64 read log-linear in C between them 15% (the
# patches' call at C = 24, 40, 48 and 56 13-44% too fast); a curve at every budget 12%.
SHORT_SIDES = (8, 16, 24, 32, 40, 48, 56, 64)
LONG_SIDES = (64, 256, 512, 1024, 2048, 4096)
NUMELS = (10_000, 40_000, 160_000, 640_000, 2_560_000, 10_240_000, 40_960_000)
REFERENCE_HEADS = 12  # batch x heads of the attention points (a base model at batch 1)


@dataclass(frozen=True)
class Point:
    kind: str
    key: tuple
    work: float
    make: object  # () -> a no-argument callable that runs the op once


def catalog_shapes():
    """(linear pairs, conv pairs (depth, out), head dims) of every catalog model."""
    linear, conv, heads = set(), set(), set()
    for s in catalog().values():
        D, F_ = s.embed_dim, s.mlp_hidden_dim
        linear |= {(D, 3 * D) if s.fused_qkv else (D, D), (D, D), (F_, D),
                   (D, 2 * F_ if s.mlp == "swiglu" else F_)}
        if s.core_coord_head:
            linear.add((D, 2))
        conv.add((s.in_chans * s.patch_size ** 2, D, s.patch_size))
        heads.add(s.head_dim)
    return sorted(linear), sorted(conv), sorted(heads)


def _bytes(dtype) -> int:
    """Bytes per element of a torch dtype (a point's work does not depend on it)."""
    return getattr(dtype, "itemsize", 4)


def _point(op: str, make, key=None, **shape) -> Point:
    """A point of op `op` at `shape` (its formula's arguments): the op's own profile key (unless
    given) and work."""
    record = REGISTRY[op]
    typed = record.make_shape(**shape)
    return Point(op, record.profile_key(typed) if key is None else key,
                 float(record.profile_work(typed)), make)


# A model's every layer has its own weights, so a layer's weights reach the GEMM from memory, not
# from the cache the previous call of the same layer left them in (the activations it multiplies
# were written just before and are in cache). Linear points therefore cycle through copies of
# their weight laid out in one pool this many times the last-level cache. Measured on 2026-12-01
# (2-core EPYC, 32 MiB L3; benchmarks/cold_weights.py, ViT-S and ViT-B shapes): cold over cached
# weights x1.24-1.53 at 32 tokens, x1.04-1.17 at 128, x1.01-1.10 at 257, x0.98-1.04 from 513.
POOL_CACHES = 4
_POOLS: dict = {}


def _weight_pool(device: str, dtype) -> torch.Tensor:
    """One flat buffer of POOL_CACHES x the last-level cache (64 MiB at least), made once per
    device and dtype while a profile runs (release_weight_pools frees it)."""
    key = (device, dtype)
    if key not in _POOLS:
        numel = max(POOL_CACHES * last_level_cache_bytes(device), 64 << 20) // _bytes(dtype)
        _POOLS[key] = torch.randn(numel, device=device, dtype=dtype)
    return _POOLS[key]


def release_weight_pools() -> None:
    """Free the pools cold_weights laid its copies in (at the end of a profile or benchmark)."""
    _POOLS.clear()


def cold_weights(n: int, k: int, device: str, dtype) -> list[torch.Tensor]:
    """(n, k) weights laid out one after another in the pool: as many as it holds, at least
    one (a weight larger than half the pool is a fresh read from memory every call anyway)."""
    pool = _weight_pool(device, dtype)
    size = n * k
    if size > pool.numel():
        return [torch.randn(n, k, device=device, dtype=dtype)]
    return [pool[i * size:(i + 1) * size].view(n, k) for i in range(pool.numel() // size)]


def _linear_points(pairs, device, dtype):
    for k, n in pairs:
        for m in TOKENS:
            def make(m=m, k=k, n=n):
                x = torch.randn(m, k, device=device, dtype=dtype)
                weights = cold_weights(n, k, device, dtype)
                b = torch.randn(n, device=device, dtype=dtype)
                turn = itertools.count()

                def call():  # x (m,k) @ w^T (k,n) -> (m,n), the next copy of w each call
                    return F.linear(x, weights[next(turn) % len(weights)], b)
                return call
            yield _point("linear", make, tokens=m, in_features=k, out_features=n, bias=True,
                         elem_bytes=_bytes(dtype))


def _conv_points(pairs, device, dtype):
    for depth, out, patch in pairs:
        chans = depth // (patch * patch)
        for positions in (64, 256, 1024, 4096, 16384):
            side = int(positions ** 0.5)

            def make(side=side, chans=chans, out=out, patch=patch):
                conv = torch.nn.Conv2d(chans, out, patch, patch).to(device=device, dtype=dtype)
                x = torch.randn(1, chans, side * patch, side * patch, device=device, dtype=dtype)
                return lambda: conv(x)
            yield _point("conv2d", make, batch=1, in_chans=chans, out_chans=out, kernel=patch,
                         out_pixels=side * side, bias=True, elem_bytes=_bytes(dtype))


def _qkv(heads, q_len, kv_len, d, device, dtype):
    seq = max(q_len, kv_len)
    return (torch.randn(1, heads, seq, d, device=device, dtype=dtype) for _ in range(3))


def _sdpa_points(head_dims, device, dtype):
    h = REFERENCE_HEADS
    for d in head_dims:
        for masked in (False, True):
            for s in SEQUENCES:
                def make(s=s, d=d, masked=masked):
                    q, k, v = _qkv(h, s, s, d, device, dtype)
                    if not masked:
                        return lambda: F.scaled_dot_product_attention(q, k, v)
                    cores = min(64, s // 2)  # the mask is built per call, as the kernel does
                    return lambda: F.scaled_dot_product_attention(
                        q, k, v, attn_mask=core_periphery_mask(s, cores, q.device))
                yield _attention_point(("square", d, masked), make, h, s, s, d, dtype, masked)
        for c in SHORT_SIDES:
            for n in LONG_SIDES:
                yield _attention_point(("few_queries", d, False, c),
                                       _split_half(h, c, n, d, device, dtype, cores_half=True),
                                       h, c, c + n, d, dtype)
                if sdpa_regime(n, c) != "few_keys":  # as many patches as cores at most
                    continue
                yield _attention_point(("few_keys", d, False, c),
                                       _split_half(h, c, n, d, device, dtype, cores_half=False),
                                       h, n, c, d, dtype)


def _attention_point(key, make, heads, q_len, kv_len, head_dim, dtype, masked=False) -> Point:
    """An SDPA point; its curve (which side is short) is the one its measurement stands for."""
    return _point("sdpa", make, key=key, batch=1, heads=heads, q_len=q_len, kv_len=kv_len,
                  head_dim=head_dim, elem_bytes=_bytes(dtype), masked=masked)


def _split_half(h, c, n, d, device, dtype, cores_half: bool):
    """One of the split kernel's two calls, on slices of [cores; patches], written into the
    (B, S, H, d) output as the kernel writes it."""
    def make():
        q, k, v = _qkv(h, c + n, c + n, d, device, dtype)
        out = q.new_empty(1, c + n, h, d)

        def cores():
            # q_c (B,H,C,d) @ k^T (B,H,d,S) -> (B,H,C,S); @ v -> (B,H,C,d)
            out[:, :c] = F.scaled_dot_product_attention(q[:, :, :c], k, v).transpose(1, 2)

        def patches():
            # q_p (B,H,N,d) @ k_c^T (B,H,d,C) -> (B,H,N,C); @ v_c -> (B,H,N,d)
            out[:, c:] = F.scaled_dot_product_attention(
                q[:, :, c:], k[:, :, :c], v[:, :, :c]).transpose(1, 2)
        return cores if cores_half else patches
    return make


def _elementwise_points(device, dtype, width: int = 384):
    """Every pointwise op that says how PyTorch runs it alone, over a ladder of sizes."""
    for record in REGISTRY.values():
        if record.torch_op is None or record.profile_key is None:
            continue
        maker = resolve(record.torch_op)
        for numel in NUMELS:
            rows = max(1, numel // width)
            shape = SimpleNamespace(numel=rows * width)

            def make(maker=maker, rows=rows):
                return maker(rows, width, device, dtype)
            yield Point(record.name, record.profile_key(shape), float(record.profile_work(shape)),
                        make)


def all_points(device: str, dtype) -> list[Point]:
    """Every point, ordered so that a budget cut leaves every curve covered: first the smallest
    point of every curve, then the second smallest of each, and so on."""
    linear, conv, heads = catalog_shapes()
    points = [*_linear_points(linear, device, dtype), *_sdpa_points(heads, device, dtype),
              *_conv_points(conv, device, dtype), *_elementwise_points(device, dtype)]
    rank: dict[tuple, int] = {}
    ranked = []
    for order, point in enumerate(sorted(points, key=lambda p: (p.kind, p.key, p.work))):
        curve = (point.kind, point.key)
        ranked.append((rank.get(curve, 0), order, point))
        rank[curve] = rank.get(curve, 0) + 1
    return [point for _, _, point in sorted(ranked, key=lambda r: (r[0], r[1]))]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_point(fn, device: str, min_time_s: float, repeats: int, warmup: int = 1) -> float:
    """One call's median seconds (reference.timing.time_call: `warmup` untimed calls, then at
    least `repeats` calls and `min_time_s` of them, at most 200)."""
    from reference.timing import time_call

    timing = time_call(fn, min_run_time_s=min_time_s, min_repeats=repeats, warmup=warmup,
                       device=device, max_repeats=200)
    return timing.median_ms / 1e3


def dispatch_seconds(device: str, dtype) -> float:
    a = torch.ones(1, device=device, dtype=dtype)
    return time_point(lambda: a + a, device, 0.05, 50)


def host_launch_seconds(device: str, dtype, launches: int = 400, rounds: int = 5) -> float:
    """What the host spends issuing one launch of a trivial op, eager: `launches` back-to-back
    adds timed on the host before the device is synchronised (on a GPU the kernels queue and the
    host's issuing is what is timed; a trivial kernel finishes faster than the next is issued),
    the median over `rounds`. On a CPU the op runs as it is issued: its whole cost."""
    a = torch.ones(1, device=device, dtype=dtype)
    out = torch.empty_like(a)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(launches // 4):  # warm: the allocator, the dispatcher's caches
        torch.add(a, a, out=out)
    times = []
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        for _ in range(launches):
            torch.add(a, a, out=out)
        times.append((time.perf_counter() - start) / launches)
        sync()
    return statistics.median(times)


def bandwidth_bytes_per_s(device: str, dtype, numel: int = 16_000_000) -> float:
    """Bytes moved per second by an elementwise add far larger than the caches (3 tensors)."""
    a = torch.randn(numel, device=device, dtype=dtype)
    b = torch.randn(numel, device=device, dtype=dtype)
    out = torch.empty_like(a)
    seconds = time_point(lambda: torch.add(a, b, out=out), device, 0.2, 5)
    return 3 * numel * a.element_size() / seconds


@dataclass(frozen=True)
class ProfileRun:
    profile: Profile
    measured: int
    skipped: int  # points over the per-call cap or past the budget
    seconds: float
    peak_flops_per_s: float  # fastest linear throughput seen
    bandwidth_bytes_per_s: float  # an add of 16M elements, far beyond the caches (3 tensors moved)
    busy: int = 0  # points whose machine probe ran slower than BUSY_PROBE_RATIO x its quiet time
    probe_ratio_max: float | None = None  # the slowest probe seen, relative to its quiet time
    notes: tuple[str, ...] = ()  # curves left out, and why
    host_launch_s: float | None = None  # GPU: the host's issuing time per eager launch

    def busy_note(self) -> str | None:
        """What to say when points were timed on a busy machine, or None."""
        if not self.busy:
            return None
        return (f"{self.busy} of {self.measured} op points were timed on a busy machine (probe up "
                f"to {self.probe_ratio_max:.2f}x its quiet time, limit {BUSY_PROBE_RATIO:.2f}); "
                f"measure again on a quiet machine")


def run_profile(*, device: str = "cpu", dtype: str = "fp32", threads: int | None = None,
                budget_s: float = 300.0, max_call_s: float = 0.25, source: str = "",
                on_point=None, probe=None, rounds: int | None = None) -> ProfileRun:
    """Measure every point within `budget_s`; `on_point(done, total, point)` reports progress.

    Every point is timed beside a sample of the machine probe; a point timed busy is measured
    again (up to RETRIES times, the quietest kept); a curve whose time falls as its work grows by
    more than MONOTONE_SLACK is measured again and, still falling, left out (said in the run's
    notes). `probe`: the machine probe (default: a reference.timing.Probe of the device);
    `rounds`: the rounds each point is timed in (default CURVE_ROUNDS; 1: one block a point)."""
    torch_dtype = DTYPES[dtype]
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    state = _MachineState()
    measured: dict[tuple, list[tuple[float, float]]] = {}
    ratios: list[float] = []  # the probe's reading of every point's round (its quietest try)
    points = all_points(device, torch_dtype)
    try:
        with torch.no_grad():
            from reference.timing import Probe

            dispatch = dispatch_seconds(device, torch_dtype)
            host_launch = host_launch_seconds(device, torch_dtype) if device == "cuda" else None
            bandwidth = bandwidth_bytes_per_s(device, torch_dtype)
            if probe is None:
                probe = Probe(device)
                probe.settle()
            timed_rounds, skipped, retried = _rounds(points, device, max_call_s, probe,
                                                     lambda: time.perf_counter() - start > budget_s,
                                                     on_point, rounds or CURVE_ROUNDS)
            for point, rounds in timed_rounds.items():
                seconds, point_ratios = _combined(rounds)
                ratios.extend(point_ratios)
                measured.setdefault((point.kind, point.key), []).append((point.work, seconds))
            if not any(kind == "linear" for kind, _ in measured):
                _first_linear(points, measured, device, max_call_s)  # the peak needs one
            by_point = {(p.kind, p.key, p.work): p for p in points}
            notes = _monotone(measured, by_point, device, max_call_s, probe,
                              lambda: time.perf_counter() - start < budget_s)
    finally:
        torch.set_num_threads(previous)
        release_weight_pools()
    run = _result(measured, skipped, dispatch, bandwidth, dtype, threads or previous, source,
                  time.perf_counter() - start)
    busy = sum(min(r for _, r in rounds) > BUSY_PROBE_RATIO for rounds in timed_rounds.values())
    run = replace(run, busy=busy, probe_ratio_max=max(ratios, default=None), notes=tuple(notes),
                  host_launch_s=host_launch)
    reading = probe.quiet_s * statistics.median(ratios) * 1e3 if ratios and probe.quiet_s else None
    return replace(run, profile=replace(run.profile, machine_state=state.describe(
        probe, ratios, retried, busy), probe_ms=reading))


def _measure(point: Point, device: str, max_call_s: float, share: float = 1.0) -> float | None:
    """Median seconds of one point, or None when one call is far too slow for the budget. The
    first call checks that; then one warm-up call (none in a round where that first call took
    over WARM_CALL_S: it was the warm-up) and `share` of the point's timed calls (one round's
    share, when it is timed in several)."""
    fn = point.make()
    _sync(device)
    first = time.perf_counter()
    fn()
    _sync(device)
    took = time.perf_counter() - first
    if took > 4 * max_call_s:  # far too big for the budget: skip
        return None
    return time_point(fn, device, min_time_s=min(0.05, max_call_s) * share,
                      repeats=max(1, int(3 * share)),
                      warmup=0 if share < 1 and took > WARM_CALL_S else 1)


RETRIES = 2  # a point timed busy is measured again at most this many times
# rounds each op point is timed in (reference.profile._rounds): one block per point put the
# machine's drift over the stage's minutes into whole ranks of points (every curve's 512-token
# linear, say, timed in the same few seconds). Two rounds, the second in reverse order, put every
# point's mean at the stage's middle, so a steady drift scales every point alike; three (tried on
# 2026-12-01) used the stage's whole 120 s share, a fresh copy of every point's tensors a round
CURVE_ROUNDS = 2
WARM_CALL_S = 0.01  # a first call this long warms a round's point alone (no warm-up call after)
MONOTONE_SLACK = 0.25  # a curve may dip this much as its work grows (the machine's own noise)


def _quiet(point: Point, device: str, max_call_s: float, probe, share: float = 1.0):
    """(seconds, probe ratio, tries) of a point: measured again while its probe reads busy, the
    quietest of the tries kept; None when one call is far too slow for the budget."""
    best = None
    for tries in range(1, RETRIES + 2):
        ratio = probe.sample() / probe.quiet_s
        seconds = _measure(point, device, max_call_s, share)
        if seconds is None:
            return None
        if best is None or ratio < best[1]:
            best = (seconds, ratio, tries)
        if ratio <= BUSY_PROBE_RATIO:
            break
    return best[0], best[1], tries


def _rounds(points, device, max_call_s, probe, over_budget, on_point=None,
            rounds: int = CURVE_ROUNDS):
    """Every point timed in `rounds` interleaved rounds: the first round takes the points in
    order (skipping one whose time, by the fastest rate seen of its kind, is over twice the cap),
    each later round the first round's points again, in reverse order every other round, so that
    every point's rounds sit at different moments of the stage and on average at its middle.
    Each round times a fresh copy of the point with its share of the calls (`_quiet`).
    The budget cuts the rounds short: a point keeps the rounds it got; points the first round
    did not reach are skipped. Returns ({point: [(seconds, probe ratio), ...]}, skipped, points
    measured again as busy)."""
    timed: dict[Point, list[tuple[float, float]]] = {}
    fastest: dict[str, float] = {}  # work per second seen so far, per kind
    skipped, done, retried = 0, 0, set()
    total = len(points) * rounds
    for turn in range(rounds):
        order = points if turn == 0 else list(timed)[::-1 if turn % 2 else 1]
        for index, point in enumerate(order):
            if on_point:
                on_point(done, total, point)
            done += 1
            if over_budget():
                if turn == 0:
                    skipped += len(points) - index
                return timed, skipped, len(retried)
            if turn == 0:
                expected = point.work / fastest[point.kind] if point.kind in fastest else 0.0
                if expected > 2 * max_call_s:
                    skipped += 1
                    continue
            result = _quiet(point, device, max_call_s, probe, share=1 / rounds)
            if result is None:
                skipped += turn == 0
                continue
            seconds, ratio, tries = result
            if tries > 1:
                retried.add(point)
            timed.setdefault(point, []).append((seconds, ratio))
            fastest[point.kind] = max(fastest.get(point.kind, 0.0), point.work / seconds)
        if turn == 0:
            total = len(points) + len(timed) * (rounds - 1)
    return timed, skipped, len(retried)


def _combined(rounds: list[tuple[float, float]]) -> tuple[float, list[float]]:
    """A point's seconds from its rounds: the median of the quiet ones (probe at most
    BUSY_PROBE_RATIO), or the quietest round's where none was quiet; and the rounds' probe
    readings."""
    quiet = [s for s, r in rounds if r <= BUSY_PROBE_RATIO]
    seconds = statistics.median(quiet) if quiet else min(rounds, key=lambda sr: sr[1])[0]
    return seconds, [r for _, r in rounds]


def _first_linear(points, measured: dict, device, max_call_s) -> None:
    """One linear point (the smallest), measured past the budget: a device file needs a peak."""
    point = next(p for p in points if p.kind == "linear")
    seconds = _measure(point, device, max(max_call_s, 1.0))
    if seconds is not None:
        measured.setdefault((point.kind, point.key), []).append((point.work, seconds))


def _falling(pairs: list) -> list[int]:
    """Points that took longer than some larger point of their curve, beyond MONOTONE_SLACK."""
    return [i for i in range(len(pairs) - 1)
            if pairs[i][1] * (1 - MONOTONE_SLACK) > min(t for _, t in pairs[i + 1:])]


def _monotone(measured: dict, by_point: dict, device, max_call_s, probe, time_left) -> list:
    """Curves whose seconds fall as their work grows beyond MONOTONE_SLACK: the points that took
    longer than a larger one are measured again (while time is left); a point still doing so is
    left out, and a curve left with fewer than two points is left out whole. Returns what was
    done, one line a curve."""
    notes = []
    for (kind, key), pairs in list(measured.items()):
        pairs.sort()
        for _ in range(2):
            bad = _falling(pairs)
            if not bad or not time_left():
                break
            for i in {j for i in bad for j in (i, i + 1)}:
                timed = _quiet(by_point[(kind, key, pairs[i][0])], device, max_call_s, probe)
                if timed is not None:
                    pairs[i] = (pairs[i][0], timed[0])
        bad = _falling(pairs)
        if not bad:
            continue
        shown = ", ".join(f"{t:.3g} s" for _, t in pairs)
        pairs[:] = [p for i, p in enumerate(pairs) if i not in bad]
        if len(pairs) < 2:
            del measured[(kind, key)]
            notes.append(f"{kind} {key}: left out, its time falls as its work grows ({shown})")
        else:
            notes.append(f"{kind} {key}: {len(bad)} point(s) left out, slower than a larger "
                         f"one ({shown})")
    return notes


class _MachineState:
    """What the machine was doing while it was profiled: load at the start, CPU steal over the
    run (Linux /proc), the probe's quiet time and how its samples ran."""

    def __init__(self) -> None:
        self.load = _loadavg()
        self.steal = _steal()

    def describe(self, probe, ratios, retried: int, busy: int) -> str:
        parts = [f"load {self.load:.2f} at the start" if self.load is not None else None]
        steal = _steal()
        if steal is not None and self.steal is not None and steal[1] > self.steal[1]:
            share = (steal[0] - self.steal[0]) / (steal[1] - self.steal[1])
            parts.append(f"CPU steal {share:.1%}")
        if ratios:
            ordered = sorted(ratios)
            parts.append(f"probe quiet {probe.quiet_s * 1e3:.3g} ms, median "
                         f"{ordered[len(ordered) // 2]:.2f}x, max {ordered[-1]:.2f}x")
        parts.append(f"{retried} points measured again, {busy} still busy "
                     f"(probe above {BUSY_PROBE_RATIO:.2f}x)")
        return "; ".join(p for p in parts if p)


def _loadavg() -> float | None:
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _steal():
    """(steal, total) jiffies of all CPUs (Linux /proc/stat), or None."""
    try:
        fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def profiled_device(name: str, device: str, run: ProfileRun):
    """The device file entry of a profile run (`planners.devices.DeviceSpec`): its op curves,
    the fastest linear layer as its peak, the bandwidth of a large add, this machine's memory."""
    import datetime
    import os

    from planners.devices import DeviceSpec, check_device_name
    from reference.machine import machine_name, memory_capacity_bytes

    check_device_name(name)
    if not (run.peak_flops_per_s > 0 and run.bandwidth_bytes_per_s > 0):
        from costmodel.errors import CoreplanError

        raise CoreplanError("the profile measured no linear layer or no bandwidth within its "
                            "budget: give it more time")
    dtype = run.profile.dtype
    peaks = {"fp32": run.peak_flops_per_s} if dtype == "fp32" else {
        dtype: run.peak_flops_per_s, "fp32": run.peak_flops_per_s / 2}
    when = datetime.date.today().isoformat()
    n = run.profile.threads
    threads = f", {n} thread{'s' if n != 1 else ''}" if n else ""
    return DeviceSpec(
        name=name, description=f"{machine_name(device)} (profiled{threads})",
        kind="cpu" if device == "cpu" else "gpu", peak_flops_per_s=peaks,
        memory_bandwidth_bytes_per_s=run.bandwidth_bytes_per_s,
        memory_capacity_bytes=float(memory_capacity_bytes(device)),
        kernel_launch_overhead_s=0.0, efficiency={c: 1.0 for c in OP_CLASSES},
        source=(f"measured by `coreplan profile` on {when} ({os.cpu_count()} CPUs visible): "
                f"peak = fastest linear layer seen, bandwidth = an elementwise add of 16M "
                f"elements (3 tensors moved); op times in [devices.{name}.profile]"
                + ("; host_launch_s (eager, unfused) = this host's issuing time per launch of a "
                   "trivial op (compiled: the catalog's)" if run.host_launch_s else "")),
        profile=run.profile, host_launch_s=host_launch_runtimes(run.host_launch_s))


def host_launch_runtimes(per_launch_s: float | None) -> dict | None:
    """A measured eager issuing time as the device's `host_launch_s`: eager and unfused issue
    launches the same way; compiled (its own launcher) is left to the catalog's default."""
    return {"eager": per_launch_s, "unfused": per_launch_s} if per_launch_s else None


def _result(measured, skipped, dispatch, bandwidth, dtype, threads, source, seconds) -> ProfileRun:
    curves: dict[str, list[Curve]] = {}
    for (kind, key), pairs in measured.items():
        by_work: dict[float, list[float]] = {}
        for work, t in pairs:
            by_work.setdefault(work, []).append(t)
        work = sorted(by_work)
        curves.setdefault(kind, []).append(
            Curve(key, tuple(work), tuple(statistics.median(by_work[w]) for w in work)))
    peak = max((w / t for (kind, _), pairs in measured.items() if kind == "linear"
                for w, t in pairs), default=0.0)
    profile = Profile(dtype, threads, dispatch, {k: tuple(v) for k, v in curves.items()}, source)
    return ProfileRun(profile, sum(len(p) for p in measured.values()), skipped, seconds, peak,
                      bandwidth)
