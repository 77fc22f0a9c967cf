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
"""

from __future__ import annotations

import numpy as np

import costmodel.ops  # noqa: F401  (registers the formulas)
from costmodel.registry import REGISTRY, as_shape

TILE = 128


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
    if mm.layout == "flash":
        tiles = mm.batches * _ceil(mm.m, TILE)
        kv = _ceil(mm.n, TILE) * TILE
        return _ceil(tiles, sms) * sms * 4 * TILE * kv * mm.k
    tiles = mm.batches * _ceil(mm.m, TILE) * _ceil(mm.n, TILE)
    return _ceil(tiles, sms) * sms * 2 * TILE * TILE * mm.k


def matmul_flops(op: str, shape):
    """The same op's matmul FLOPs without rounding (for the share of `full` that is matmul)."""
    record = REGISTRY.get(op)
    return None if record is None else record.matmul_flops(shape)
