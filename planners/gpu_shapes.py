"""Shape-aware work on a GPU: tile and wave quantization of matmul-class ops, and fusion under
torch.compile (torch-free).

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

TILE = 128


def _ceil(a, b):
    return -(-np.asarray(a) // b)


def gemm_dims(op: str, shape: dict):
    """(batches, M, N, K) of a matmul-class op, or None for other ops."""
    if op == "linear":
        return 1, shape["tokens"], shape["out_features"], shape["in_features"]
    if op == "bmm":
        return shape["batch"], shape["m"], shape["n"], shape["k"]
    if op == "conv2d":
        depth = shape["in_chans"] * shape["kernel"] * shape["kernel"]
        return 1, shape["batch"] * shape["out_pixels"], shape["out_chans"], depth
    return None


def quantized_matmul_flops(op: str, shape: dict, sms: int):
    """The matmul FLOPs (2 per multiply-add) the device spends on one launch, tiles and waves
    rounded up; None for ops without a tiled matmul."""
    dims = gemm_dims(op, shape)
    if dims is not None:
        batches, m, n, k = dims
        tiles = batches * _ceil(m, TILE) * _ceil(n, TILE)
        return _ceil(tiles, sms) * sms * 2 * TILE * TILE * k
    if op == "sdpa":
        tiles = shape["batch"] * shape["heads"] * _ceil(shape["q_len"], TILE)
        kv = _ceil(shape["kv_len"], TILE) * TILE
        return _ceil(tiles, sms) * sms * 4 * TILE * kv * shape["head_dim"]
    return None


def matmul_flops(op: str, shape: dict):
    """The same op's matmul FLOPs without rounding (for the share of `full` that is matmul)."""
    dims = gemm_dims(op, shape)
    if dims is not None:
        batches, m, n, k = dims
        return 2 * batches * m * n * k
    if op == "sdpa":
        return 4 * shape["batch"] * shape["heads"] * shape["q_len"] * shape["kv_len"] * \
            shape["head_dim"]
    return None
