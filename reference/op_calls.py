"""Pointwise ops as PyTorch runs them alone, for `coreplan profile` (reference/profile.py).

Each op's registry record names its maker here (`torch_op`, costmodel/ops.py); a maker takes
(rows, width, device, dtype) and returns a no-argument callable that runs the op once on
rows x width elements. Inputs rotate through more memory than the caches hold, so each call reads
memory the previous calls did not leave in cache (a model's activations are not reused call after
call either).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference.models import apply_rope, rope_tables

COLD_BYTES = 64 * 2**20  # elementwise inputs rotate through this much memory: beyond the caches
HEAD_DIM = 64  # RoPE and its tables at the catalog's head dim


def rotating(make_inputs, count: int, call):
    """A no-argument callable that runs `call` on the next of `count` input sets in turn."""
    sets = [make_inputs() for _ in range(count)]
    state = {"next": 0}

    def run():
        inputs = sets[state["next"]]
        state["next"] = (state["next"] + 1) % count
        return call(*inputs)
    return run


def _pairs(rows: int, width: int, device, dtype):
    copies = max(1, min(256, COLD_BYTES // (2 * rows * width * 4)))

    def pair():
        return (torch.randn(rows, width, device=device, dtype=dtype),
                torch.randn(rows, width, device=device, dtype=dtype))
    return pair, copies


def _on_pairs(call):
    """A maker running `call(a, b)` on rotating pairs of (rows, width) tensors."""
    def make(rows: int, width: int, device, dtype):
        pair, copies = _pairs(rows, width, device, dtype)
        return rotating(pair, copies, call)
    return make


gelu = _on_pairs(lambda a, b: F.gelu(a))
silu = _on_pairs(lambda a, b: F.silu(a))
tanh = _on_pairs(lambda a, b: torch.tanh(a))
mul = _on_pairs(lambda a, b: a * b)
add = _on_pairs(lambda a, b: a + b)


def layer_norm(rows: int, width: int, device, dtype):
    pair, copies = _pairs(rows, width, device, dtype)
    norm = torch.nn.LayerNorm(width).to(device=device, dtype=dtype)
    return rotating(pair, copies, lambda x, _: norm(x))


def rope_table(rows: int, width: int, device, dtype):
    """The tables as the models build them: rows x width entries, S = entries / head dim."""
    coords = torch.randn(1, rows * width // HEAD_DIM, 2, device=device, dtype=dtype)
    return lambda: rope_tables(coords, HEAD_DIM)


def rope(rows: int, width: int, device, dtype):
    """(B, H, S, d) with d = 64 and cos/sin (B, 1, S, d)."""
    a = torch.randn(rows, width, device=device, dtype=dtype)
    b = torch.randn(rows, width, device=device, dtype=dtype)
    x = a.view(1, width // HEAD_DIM, rows, HEAD_DIM)
    cos = b[:, :HEAD_DIM].reshape(1, 1, rows, HEAD_DIM)
    sin = b[:, HEAD_DIM:2 * HEAD_DIM].reshape(1, 1, rows, HEAD_DIM)
    return lambda: apply_rope(x, cos, sin)
