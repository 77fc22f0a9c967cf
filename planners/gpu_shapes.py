"""Shape-aware work on a GPU: tile and wave quantization of matmul-class ops (torch-free).

Which layout an op has and its dimensions come from its registry record (`matmul`: a `Matmul`
of layout "gemm" or "flash"); this module only knows how tiled matrix units run each layout.

A tensor-core GEMM kernel computes its (M, N) output in TILE x TILE tiles, each over the full K,
and runs them in waves of one tile per SM: a wave that is not full still takes a whole wave's time.
So the work a device actually does is

    tiles = batches * ceil(M / TILE) * ceil(N / TILE),   waves = ceil(tiles / SMs)
    quantized FLOPs = waves * SMs * 2 * TILE * TILE * K

(>= the op's FLOPs; equal when every tile and every wave is full). Fused attention (flash-style)
tiles the queries of each (batch, head) and streams keys in blocks of TILE:
    tiles = batch * heads * ceil(q_len / TILE),   quantized FLOPs = waves * SMs * 4 * TILE *
    (ceil(kv_len / TILE) * TILE) * head_dim.
The split layout's patches-to-cores call has only C keys: its kv side rounds up to one block.

Split-K. When the output has fewer tiles than SMs, one wave would leave most SMs idle and the
time would not follow the work; cuBLAS then splits K (stream-K on Hopper: the same idea, K
iterations spread over all SMs) and flash attention splits the keys. The reduction dimension runs
in blocks of TILE (kiters = ceil(K / TILE)), split s ways, s = min(floor(SMs / tiles), kiters):

    waves = ceil(tiles * s / SMs),   per split: min(K, ceil(kiters / s) * TILE) of K
    quantized FLOPs = waves * SMs * 2 * TILE * TILE * (K per split)

so that time follows work down to one TILE of K per SM, and then the launch floor (s = 1 is the
unsplit formula). Where the TILE x TILE grid leaves SMs idle, cuBLAS (and flash attention) also
has SMALL x SMALL tiles: the tile size with the less quantized work is taken, each split as above.
On the V100 rows of data/public/papers-and-docs (ViT-B/16 fp32, batch 4: M = 788 tokens, 42 tiles
of 128 on 80 SMs) the 128 tiles alone put the roofline floor 15% above the measured time.
NB: the partial sums' reduction (s x M x N fp32, written and read once) is not counted: at the
small M and N where splitting happens it is a few MB at most.
"""

from __future__ import annotations

import numpy as np

import costmodel.ops  # noqa: F401  (registers the formulas)
from costmodel.registry import REGISTRY, as_shape

TILE = 128
SMALL = 64  # the smaller tiles an underfilled grid may take


def _ceil(a, b):
    return -(-np.asarray(a) // b)


def matmul_of(op: str, shape):
    """The op's matrix layout (`costmodel.registry.Matmul`) from its registry record, or None
    for ops without one. `shape`: the op's typed shape, or a dict of (at least) the dimensions
    its layout reads."""
    record = REGISTRY.get(op)
    if record is None or record.matmul is None:
        return None
    return record.matmul(as_shape(shape))


def quantized_matmul_flops(op: str, shape, sms: int):
    """The matmul FLOPs (2 per multiply-add) the device spends on one launch, tiles and waves
    rounded up; None for ops without a tiled matmul."""
    mm = matmul_of(op, shape)
    if mm is None:
        return None
    large = _quantized(mm, sms, TILE)
    underfilled = _tiles(mm, TILE) < sms
    return np.where(underfilled, np.minimum(large, _quantized(mm, sms, SMALL)), large)[()]


def _tiles(mm, tile: int):
    """Output tiles: (batch, query tile) for flash, (batch, row tile, column tile) for gemm."""
    if mm.layout == "flash":
        return mm.batches * _ceil(mm.m, tile)
    return mm.batches * _ceil(mm.m, tile) * _ceil(mm.n, tile)


def _blocks(mm, tile: int):
    """Blocks of the reduction dimension: keys for flash (mm.n), K for gemm."""
    return _ceil(mm.n if mm.layout == "flash" else mm.k, tile)


def _quantized(mm, sms: int, tile: int):
    tiles, blocks = _tiles(mm, tile), _blocks(mm, tile)
    split = _split(tiles, blocks, sms)
    waves = _ceil(tiles * split, sms)
    if mm.layout == "flash":  # keys stream in blocks of `tile`
        return waves * sms * 4 * tile * (_ceil(blocks, split) * tile) * mm.k
    per_split = np.minimum(mm.k, _ceil(blocks, split) * tile)
    return waves * sms * 2 * tile * tile * per_split


def split_ways(op: str, shape, sms: int):
    """How many ways the op's reduction dimension is split on a GPU of `sms` SMs with the large
    tiles (1: not split); None for ops without a tiled matmul."""
    mm = matmul_of(op, shape)
    if mm is None:
        return None
    return _split(_tiles(mm, TILE), _blocks(mm, TILE), sms)


def _split(tiles, blocks, sms: int):
    """s = min(floor(SMs / tiles), blocks of the reduction), at least 1 (module docstring)."""
    return np.maximum(1, np.minimum(sms // np.maximum(tiles, 1), blocks))


def matmul_flops(op: str, shape):
    """The same op's matmul FLOPs without rounding (for the share of `full` that is matmul)."""
    record = REGISTRY.get(op)
    return None if record is None else record.matmul_flops(shape)
