"""Parameter counts per slash path (no torch).

The matrices and biases of the linear and conv layers are read off the model's graph (each op's
registry record says what one launch reads: `weights`), so they follow the graph's structure
(fused or separate q, k, v, their biases, the MLP, the core heads, the output head) without a
second description of it. The model's other parameters (tokens, position tables, core
coordinates and gates, norms, LayerScale) come from its spec.
"""

from __future__ import annotations

from functools import lru_cache

from costmodel.registry import REGISTRY, Weights
from costmodel.spec import ModelSpec


@lru_cache(maxsize=256)
def weighted_nodes(spec: ModelSpec) -> tuple[tuple[str, object, Weights], ...]:
    """(path, repeat, weights of one copy) of every graph node that reads parameters."""
    from costmodel.attention import default_impl
    from costmodel.graph import build_graph

    dims = spec.dims(batch=1, rows=1, cols=1, core_tokens=spec.max_cores, elem_bytes=1)
    return tuple((n.path, n.repeat, REGISTRY[n.op].weights(n.shape))
                 for n in build_graph(spec, dims, default_impl(spec.kind))
                 if REGISTRY[n.op].weights is not None)


def _other_parameters(spec: ModelSpec) -> dict[str, int]:
    D, L = spec.embed_dim, spec.depth
    counts = {}
    if spec.cls_tokens:
        counts["cls_token"] = spec.cls_tokens * D
    if spec.register_tokens:
        counts["register_tokens"] = spec.register_tokens * D
    if spec.pos_embed == "learned":
        counts["pos_embed"] = (spec.pos_embed_grid ** 2 + spec.cls_tokens) * D
    if spec.is_core:
        counts["core_tokens"] = spec.max_cores * D
        counts["core_coords"] = spec.max_cores * 2  # learned (y, x) of every core for RoPE
    if spec.core_coord_head:
        counts["core_gate"] = L - 1  # one scalar gate per layer after the first
    layer = {"layer/norm1": 2 * D, "layer/norm2": 2 * D}
    if spec.layer_scale:
        layer["layer/attn/layer_scale"] = D
        layer["layer/mlp/layer_scale"] = D
    counts.update({path: L * n for path, n in layer.items()})
    counts["final_norm"] = 2 * D
    return counts


def parameter_counts(spec: ModelSpec) -> dict[str, int]:
    """Parameters by path, whole model (layers summed over depth)."""
    counts = {path: int(repeat * w.parameters) for path, repeat, w in weighted_nodes(spec)}
    counts.update(_other_parameters(spec))
    return counts


@lru_cache(maxsize=256)
def parameter_count(spec: ModelSpec) -> int:
    return sum(parameter_counts(spec).values())


def largest_weight_matrix(spec: ModelSpec) -> int:
    """Elements of the model's largest linear or conv weight matrix (the qkv projection or the
    MLP's first matrix in the catalog's models)."""
    return max(int(w.matrix) for _, _, w in weighted_nodes(spec))


@lru_cache(maxsize=256)
def parameter_tensors(spec: ModelSpec) -> int:
    """How many parameter tensors the model has (what an optimizer that runs tensor by tensor
    launches its kernels for): each linear or conv layer's matrix and bias, each norm's weight
    and bias, each LayerScale, and every other parameter of the spec as one tensor."""
    layers = sum(int(repeat) * (1 + (1 if w.bias else 0)) for _, repeat, w in weighted_nodes(spec))
    others = _other_parameters(spec)
    norms = [p for p in others if p.endswith(("norm1", "norm2")) or p == "final_norm"]
    count = layers + sum(2 * (spec.depth if p.startswith("layer/") else 1) for p in norms)
    count += sum(spec.depth for p in others if p.endswith("layer_scale"))
    count += sum(1 for p in others if not p.startswith("layer/") and p != "final_norm")
    return count
