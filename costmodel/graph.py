"""Layers and models composed from registry ops, keyed by slash paths (`layer/attn/qk`).

A layer calls attention and MLP builders; the attention call is its implementation's nodes
(costmodel/attention.py); every node is a registered op at a typed shape: no cost is re-derived
here. The same builder runs on Python ints (exact), numpy arrays (many configurations at
once) and sympy symbols (closed forms): see `costmodel.dims.Dims` and `costmodel.cost.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import costmodel.ops  # noqa: F401  (registers the formulas)
from costmodel.attention import attention_impl
from costmodel.dims import Dims
from costmodel.registry import REGISTRY, OpCost, Shape
from costmodel.spec import ModelSpec

SCOPES = ("model", "layer", "attention", "attention-core")

_LAYER = frozenset({"model", "layer"})
_ATTN = _LAYER | {"attention"}
_CORE = _ATTN | {"attention-core"}


# Under torch.autocast with fp32 weights the residual stream is fp32 (promoted by the fp32
# position table, cores or register tokens) while each block's branch comes out of a 16-bit
# matmul; a node of a "promote" op says the precision of the tensors it streams: its reads, then
# its write ("16": the autocast dtype). Broadcast parameters (LayerScale's gamma, the position
# table) are fp32 and promote the result, and are not streamed.
RESIDUAL_AMP = ("fp32", "16", "fp32")  # the fp32 stream plus the 16-bit branch, written fp32
PROMOTED_AMP = ("16", "fp32")  # a 16-bit tensor with an fp32 parameter, written fp32


@dataclass(frozen=True)
class OpNode:
    """One op in the graph: `repeat` copies in the whole model, one copy in the smaller scopes.

    `shape` is the op's typed shape record; `amp` the precisions of the tensors a "promote" op
    streams under autocast (reads, then write), None where all are the autocast dtype."""

    path: str
    op: str
    shape: Shape = field(hash=False)
    scopes: frozenset = frozenset({"model"})
    repeat: object = 1
    amp: tuple | None = None

    def cost(self) -> OpCost:
        return REGISTRY[self.op].cost(self.shape)

    @property
    def op_class(self) -> str:
        return REGISTRY[self.op].op_class


def node(path: str, op: str, shape: dict, scopes=frozenset({"model"}), repeat=1,
         amp: tuple | None = None) -> OpNode:
    """A graph node of registered op `op` at `shape` (its formula's keyword arguments)."""
    record = REGISTRY[op]
    if amp is not None and record.autocast != "promote":
        raise ValueError(f"{path}: op {op!r} is not promoted under autocast; it takes no "
                         f"precisions")
    return OpNode(path, op, record.make_shape(**shape), scopes, repeat, amp)


def build_graph(spec: ModelSpec, dims: Dims, impl: str) -> list[OpNode]:
    """Every op of a forward pass of `spec` at `dims` with attention implementation `impl`."""
    nodes = _stem(spec, dims)
    nodes += _attention_block(spec, dims, impl)
    nodes += _mlp_block(spec, dims)
    tokens = dims.batch * dims.seq_len
    nodes.append(node("final_norm", "layer_norm",
                      dict(numel=tokens * dims.embed_dim, affine=True, elem_bytes=dims.elem_bytes)))
    if spec.output_head:
        # x (B*S, D) @ W_out^T (D, out) -> (B*S, out): the distillation head on every token
        nodes.append(node("output_head", "linear", dict(
            tokens=tokens, in_features=dims.embed_dim, out_features=spec.distill_output_dim,
            bias=True, elem_bytes=dims.elem_bytes)))
    return nodes


def _stem(spec: ModelSpec, d: Dims) -> list[OpNode]:
    W = d.elem_bytes
    nodes = [node("patch_embed", "conv2d", dict(
        batch=d.batch, in_chans=spec.in_chans, out_chans=d.embed_dim, kernel=d.patch_size,
        out_pixels=d.patch_tokens, bias=True, elem_bytes=W))]
    if spec.pos_embed == "learned":
        rows = d.patch_tokens + spec.cls_tokens  # the table covers cls + patches; registers come after
        nodes.append(node("pos_embed/interp", "interp_bicubic", dict(
            out_numel=d.patch_tokens * d.embed_dim, in_numel=d.pos_table_rows * d.embed_dim,
            elem_bytes=W), repeat=d.interpolate))
        nodes.append(node("pos_embed/add", "add", dict(numel=d.batch * rows * d.embed_dim,
                                                       other_numel=rows * d.embed_dim,
                                                       elem_bytes=W), amp=PROMOTED_AMP))
    if spec.core_coord_head:
        coords = dict(numel=d.batch * d.core_tokens * 2, elem_bytes=W)
        # before layers 1..L-1: that layer's Linear(D, 2) on the C cores, times its gate, added
        nodes += [node("core_coords/head", "linear", dict(
                      tokens=d.batch * d.core_tokens, in_features=d.embed_dim, out_features=2,
                      bias=True, elem_bytes=W), repeat=d.depth - 1),
                  node("core_coords/gate", "mul", coords, repeat=d.depth - 1),
                  node("core_coords/update", "add", coords, repeat=d.depth - 1),
                  # tanh of the raw coordinates: once before layer 0, then after every update
                  node("core_coords/tanh", "tanh", coords, repeat=d.depth)]
    if spec.pos_embed == "rope":
        # cos and sin tables over the rotated tokens: every layer for core models (the cores'
        # coordinates move), once per forward for dense models (fixed patch grid)
        rotated = d.batch * spec.rope_tokens(d.patch_tokens, d.core_tokens) * d.head_dim
        nodes.append(node("rope_tables", "rope_table", dict(numel=rotated, elem_bytes=W),
                          repeat=d.depth if spec.is_core else 1))
    return nodes


def _layer(path: str, op: str, d: Dims, scopes=_LAYER, amp: tuple | None = None,
           **shape) -> OpNode:
    return node(path, op, dict(shape, elem_bytes=d.elem_bytes), scopes, d.depth, amp)


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
    """The attention call of one layer, as its implementation's record lists it."""
    return [_layer(f"layer/attn/{leaf}", op, d, _CORE, **shape)
            for leaf, op, shape in attention_impl(impl).nodes(d)]


def _residual(block: str, spec: ModelSpec, d: Dims) -> list[OpNode]:
    numel = d.batch * d.seq_len * d.embed_dim
    nodes = []
    if spec.layer_scale:
        # x (B, S, D) * gamma (D,): gamma broadcast, read once
        nodes.append(_layer(f"layer/{block}/layer_scale", "mul", d, amp=PROMOTED_AMP, numel=numel,
                            other_numel=d.embed_dim))
    nodes.append(_layer(f"layer/{block}/residual", "add", d, amp=RESIDUAL_AMP, numel=numel))
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
