"""`coreplan profile`: time this machine's ops at the shapes the catalog's models produce.

What is measured (each point: warm-up, then the median of repeated timed calls):
- linear: every (in_features, out_features) pair of the catalog's projections and MLPs, over a
  geometric ladder of token counts (batch x sequence);
- conv2d: every patch embedding (3*P*P -> D), over a ladder of output positions;
- sdpa (head dims of the catalog): square calls (dense attention; masked with the core-periphery
  mask built as the reference kernel builds it) over sequence lengths; the split layout's two calls:
  few queries (the C cores over [cores; patches]) and few keys (the N patches over the C cores),
  written into the output as the reference kernel writes them;
- elementwise ops (layer norm, GELU, SiLU, mul, add, 2D RoPE) over a ladder of sizes;
- the dispatch cost of a trivial op.
Points are taken in order of how much of a ViT's time they explain, each within a cap on one call's
time, until the time budget is spent; what did not fit is reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from costmodel.spec import catalog
from planners.profile import ELEMENTWISE_KINDS, Curve, Profile
from reference.attention import core_periphery_mask
from reference.counting import DTYPES
from reference.models import apply_rope, rope_tables

TOKENS = (32, 128, 512, 2048, 8192, 32768)
SEQUENCES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
SHORT_SIDES = (8, 16, 32, 64)
LONG_SIDES = (64, 256, 1024, 4096)
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


def _linear_points(pairs, device, dtype):
    for k, n in pairs:
        for m in TOKENS:
            def make(m=m, k=k, n=n):
                x = torch.randn(m, k, device=device, dtype=dtype)
                w = torch.randn(n, k, device=device, dtype=dtype)
                b = torch.randn(n, device=device, dtype=dtype)
                return lambda: F.linear(x, w, b)  # x (m,k) @ w^T (k,n) -> (m,n)
            yield Point("linear", (k, n), 2.0 * m * k * n, make)


def _conv_points(pairs, device, dtype):
    for depth, out, patch in pairs:
        chans = depth // (patch * patch)
        for positions in (64, 256, 1024, 4096, 16384):
            side = int(positions ** 0.5)

            def make(side=side, chans=chans, out=out, patch=patch):
                conv = torch.nn.Conv2d(chans, out, patch, patch).to(device=device, dtype=dtype)
                x = torch.randn(1, chans, side * patch, side * patch, device=device, dtype=dtype)
                return lambda: conv(x)
            yield Point("conv2d", (depth, out), 2.0 * side * side * out * depth, make)


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
                yield Point("sdpa", ("square", d, masked), 4.0 * h * s * s * d, make)
        for c in SHORT_SIDES:
            for n in LONG_SIDES:
                yield Point("sdpa", ("few_queries", d, False), 4.0 * h * c * (c + n) * d,
                            _split_half(h, c, n, d, device, dtype, cores_half=True))
                yield Point("sdpa", ("few_keys", d, False), 4.0 * h * n * c * d,
                            _split_half(h, c, n, d, device, dtype, cores_half=False))


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


COLD_BYTES = 64 * 2**20  # elementwise inputs rotate through this much memory: beyond the caches


def _rotating(make_inputs, count: int, call):
    """A no-argument callable that runs `call` on the next of `count` input sets in turn, so each
    call reads memory the previous calls did not leave in cache (a model's activations are not
    reused call after call either)."""
    sets = [make_inputs() for _ in range(count)]
    state = {"next": 0}

    def run():
        inputs = sets[state["next"]]
        state["next"] = (state["next"] + 1) % count
        return call(*inputs)
    return run


def _elementwise_points(device, dtype, width: int = 384):
    ops = {"gelu": lambda a, b: F.gelu(a), "silu": lambda a, b: F.silu(a),
           "mul": lambda a, b: a * b, "add": lambda a, b: a + b, "tanh": lambda a, b: torch.tanh(a)}
    for numel in NUMELS:
        rows = max(1, numel // width)
        for kind in ELEMENTWISE_KINDS:
            if kind == "softmax":
                continue

            def make(kind=kind, rows=rows):
                copies = max(1, min(256, COLD_BYTES // (2 * rows * width * 4)))
                pair = lambda: (torch.randn(rows, width, device=device, dtype=dtype),  # noqa: E731
                                torch.randn(rows, width, device=device, dtype=dtype))
                a, b = pair()
                if kind == "layer_norm":
                    norm = torch.nn.LayerNorm(width).to(device=device, dtype=dtype)
                    return _rotating(pair, copies, lambda x, _: norm(x))
                if kind == "rope_table":  # the tables as the models build them: S = numel / 64
                    coords = torch.randn(1, rows * width // 64, 2, device=device, dtype=dtype)
                    return lambda: rope_tables(coords, 64)
                if kind == "rope":  # (B, H, S, d) with d = 64 and cos/sin (B, 1, S, d)
                    x = a.view(1, width // 64, rows, 64)
                    cos, sin = b[:, :64].reshape(1, 1, rows, 64), b[:, 64:128].reshape(1, 1, rows, 64)
                    return lambda: apply_rope(x, cos, sin)
                return _rotating(pair, copies, ops[kind])
            yield Point(kind, (kind,), float(rows * width), make)


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


def time_point(fn, device: str, min_time_s: float, repeats: int) -> float:
    """Median seconds of one call after a warm-up call."""
    fn()
    _sync(device)
    times = []
    while len(times) < repeats or sum(times) < min_time_s:
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
        if len(times) >= 200:
            break
    return statistics.median(times)


def dispatch_seconds(device: str, dtype) -> float:
    a = torch.ones(1, device=device, dtype=dtype)
    return time_point(lambda: a + a, device, 0.05, 50)


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


def run_profile(*, device: str = "cpu", dtype: str = "fp32", threads: int | None = None,
                budget_s: float = 300.0, max_call_s: float = 0.25, source: str = "",
                on_point=None) -> ProfileRun:
    """Measure every point within `budget_s`; `on_point(done, total, point)` reports progress."""
    torch_dtype = DTYPES[dtype]
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    measured: dict[tuple, list[tuple[float, float]]] = {}
    fastest: dict[str, float] = {}  # work per second seen so far, per kind
    skipped = 0
    points = all_points(device, torch_dtype)
    try:
        with torch.no_grad():
            dispatch = dispatch_seconds(device, torch_dtype)
            bandwidth = bandwidth_bytes_per_s(device, torch_dtype)
            for index, point in enumerate(points):
                if on_point:
                    on_point(index, len(points), point)
                if time.perf_counter() - start > budget_s:
                    skipped += len(points) - index
                    break
                expected = point.work / fastest[point.kind] if point.kind in fastest else 0.0
                seconds = None if expected > 2 * max_call_s else _measure(point, device, max_call_s)
                if seconds is None:
                    skipped += 1
                    continue
                fastest[point.kind] = max(fastest.get(point.kind, 0.0), point.work / seconds)
                measured.setdefault((point.kind, point.key), []).append((point.work, seconds))
    finally:
        torch.set_num_threads(previous)
    return _result(measured, skipped, dispatch, bandwidth, dtype, threads or previous, source,
                   time.perf_counter() - start)


def _measure(point: Point, device: str, max_call_s: float) -> float | None:
    fn = point.make()
    _sync(device)
    first = time.perf_counter()
    fn()
    _sync(device)
    if time.perf_counter() - first > 4 * max_call_s:  # far too big for the budget: skip
        return None
    return time_point(fn, device, min_time_s=min(0.05, max_call_s), repeats=3)


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
