"""Layers and models composed from registry ops, keyed by slash paths (`layer/attn/qk`).

A layer calls attention and MLP builders, attention calls the registered formulas: no cost is
re-derived here. The same builder runs on Python ints (exact), numpy arrays (many configurations at
once) and sympy symbols (closed forms): see `costmodel.dims.Dims` and `costmodel.cost.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import costmodel.ops  # noqa: F401  (registers the formulas)
from costmodel.registry import REGISTRY, OpCost, op_cost
from costmodel.dims import Dims
from costmodel.spec import ModelSpec

SCOPES = ("model", "layer", "attention", "attention-core")

_LAYER = frozenset({"model", "layer"})
_ATTN = _LAYER | {"attention"}
_CORE = _ATTN | {"attention-core"}


@dataclass(frozen=True)
class OpNode:
    """One op in the graph: `repeat` copies in the whole model, one copy in the smaller scopes."""

    path: str
    op: str
    shape: dict = field(hash=False)
    scopes: frozenset = frozenset({"model"})
    repeat: object = 1

    def cost(self) -> OpCost:
        return op_cost(self.op, **self.shape)

    @property
    def op_class(self) -> str:
        return REGISTRY[self.op].op_class


def build_graph(spec: ModelSpec, dims: Dims, impl: str) -> list[OpNode]:
    """Every op of a forward pass of `spec` at `dims` with attention implementation `impl`."""
    nodes = _stem(spec, dims)
    nodes += _attention_block(spec, dims, impl)
    nodes += _mlp_block(spec, dims)
    tokens = dims.batch * dims.seq_len
    nodes.append(OpNode("final_norm", "layer_norm",
                        dict(numel=tokens * dims.embed_dim, affine=True, elem_bytes=dims.elem_bytes)))
    if spec.output_head:
        # x (B*S, D) @ W_out^T (D, out) -> (B*S, out): the distillation head on every token
        nodes.append(OpNode("output_head", "linear", dict(
            tokens=tokens, in_features=dims.embed_dim, out_features=spec.distill_output_dim,
            bias=True, elem_bytes=dims.elem_bytes)))
    return nodes


def _stem(spec: ModelSpec, d: Dims) -> list[OpNode]:
    W = d.elem_bytes
    nodes = [OpNode("patch_embed", "conv2d", dict(
        batch=d.batch, in_chans=spec.in_chans, out_chans=d.embed_dim, kernel=d.patch_size,
        out_pixels=d.patch_tokens, bias=True, elem_bytes=W))]
    if spec.pos_embed == "learned":
        rows = d.patch_tokens + spec.cls_tokens  # the table covers cls + patches; registers come after
        nodes.append(OpNode("pos_embed/interp", "interp_bicubic", dict(
            out_numel=d.patch_tokens * d.embed_dim, in_numel=d.pos_table_rows * d.embed_dim,
            elem_bytes=W), repeat=d.interpolate))
        nodes.append(OpNode("pos_embed/add", "add", dict(numel=d.batch * rows * d.embed_dim,
                                                         other_numel=rows * d.embed_dim,
                                                         elem_bytes=W)))
    if spec.core_coord_head:
        coords = dict(numel=d.batch * d.core_tokens * 2, elem_bytes=W)
        # before layers 1..L-1: that layer's Linear(D, 2) on the C cores, times its gate, added
        nodes += [OpNode("core_coords/head", "linear", dict(
                      tokens=d.batch * d.core_tokens, in_features=d.embed_dim, out_features=2,
                      bias=True, elem_bytes=W), repeat=d.depth - 1),
                  OpNode("core_coords/gate", "mul", coords, repeat=d.depth - 1),
                  OpNode("core_coords/update", "add", coords, repeat=d.depth - 1),
                  # tanh of the raw coordinates: once before layer 0, then after every update
                  OpNode("core_coords/tanh", "tanh", coords, repeat=d.depth)]
    if spec.pos_embed == "rope":
        # cos and sin tables over the rotated tokens: every layer for core models (the cores'
        # coordinates move), once per forward for dense models (fixed patch grid)
        rotated = d.batch * spec.rope_tokens(d.patch_tokens, d.core_tokens) * d.head_dim
        nodes.append(OpNode("rope_tables", "rope_table", dict(numel=rotated, elem_bytes=W),
                            repeat=d.depth if spec.is_core else 1))
    return nodes


def _layer(path: str, op: str, d: Dims, scopes=_LAYER, **shape) -> OpNode:
    return OpNode(path, op, dict(shape, elem_bytes=d.elem_bytes), scopes, d.depth)


def _attention_block(spec: ModelSpec, d: Dims, impl: str) -> list[OpNode]:
    tokens, D = d.batch * d.seq_len, d.embed_dim
    nodes = [_layer("layer/norm1", "layer_norm", d, numel=tokens * D, affine=True)]
    if spec.fused_qkv:
        # NB: DINOv3 zeroes the key third of the qkv bias with a mask but still adds all 3D biases.
        nodes.append(_layer("layer/attn/qkv", "linear", d, _ATTN, tokens=tokens, in_features=D,
                            out_features=3 * D, bias=spec.qkv_bias))
    else:
        for name in ("q", "k", "v"):
            bias = spec.qkv_bias and (spec.key_bias or name != "k")
            nodes.append(_layer(f"layer/attn/{name}", "linear", d, _ATTN, tokens=tokens,
                                in_features=D, out_features=D, bias=bias))
    if spec.pos_embed == "rope":
        rotated = d.batch * spec.rope_tokens(d.patch_tokens, d.core_tokens) * D
        nodes += [_layer(f"layer/attn/rope_{t}", "rope", d, _ATTN, numel=rotated) for t in "qk"]
    nodes += _attention_core(d, impl)
    nodes.append(_layer("layer/attn/out", "linear", d, _ATTN, tokens=tokens, in_features=D,
                        out_features=D, bias=True))
    return nodes + _residual("attn", spec, d)


def _attention_core(d: Dims, impl: str) -> list[OpNode]:
    common = dict(batch=d.batch, heads=d.num_heads, head_dim=d.head_dim)
    C, N, S = d.core_tokens, d.patch_tokens, d.seq_len
    if impl == "split":
        return [_layer("layer/attn/sdpa_cores", "sdpa", d, _CORE, q_len=C, kv_len=S, **common),
                _layer("layer/attn/sdpa_patches", "sdpa", d, _CORE, q_len=N, kv_len=C, **common)]
    if impl == "masked":
        return [_layer("layer/attn/sdpa_masked", "sdpa", d, _CORE, q_len=S, kv_len=S, masked=True,
                       **common)]
    if impl == "flex":
        return [_layer("layer/attn/flex", "flex_attention", d, _CORE, seq_len=S, core_len=C, **common)]
    return [_layer("layer/attn/sdpa", "sdpa", d, _CORE, q_len=S, kv_len=S, **common)]


def _residual(block: str, spec: ModelSpec, d: Dims) -> list[OpNode]:
    numel = d.batch * d.seq_len * d.embed_dim
    nodes = []
    if spec.layer_scale:
        # x (B, S, D) * gamma (D,): gamma broadcast, read once
        nodes.append(_layer(f"layer/{block}/layer_scale", "mul", d, numel=numel,
                            other_numel=d.embed_dim))
    nodes.append(_layer(f"layer/{block}/residual", "add", d, numel=numel))
    return nodes


def _mlp_block(spec: ModelSpec, d: Dims) -> list[OpNode]:
    tokens, D, F = d.batch * d.seq_len, d.embed_dim, d.mlp_hidden_dim
    nodes = [_layer("layer/norm2", "layer_norm", d, numel=tokens * D, affine=True)]
    if spec.mlp == "swiglu":
        nodes += [
            _layer("layer/mlp/fc1", "linear", d, tokens=tokens, in_features=D, out_features=2 * F,
                   bias=True),
            _layer("layer/mlp/silu", "silu", d, numel=tokens * F),
            _layer("layer/mlp/gate", "mul", d, numel=tokens * F)]
    else:
        nodes += [
            _layer("layer/mlp/fc1", "linear", d, tokens=tokens, in_features=D, out_features=F, bias=True),
            _layer("layer/mlp/gelu", "gelu", d, numel=tokens * F)]
    nodes.append(_layer("layer/mlp/fc2", "linear", d, tokens=tokens, in_features=F, out_features=D,
                        bias=True))
    return nodes + _residual("mlp", spec, d)
