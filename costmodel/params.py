"""Parameter counts per slash path, derived from the ModelSpec (no torch)."""

from __future__ import annotations

from costmodel.spec import ModelSpec


def _linear(in_features: int, out_features: int, bias: bool) -> int:
    return in_features * out_features + (out_features if bias else 0)


def parameter_counts(spec: ModelSpec) -> dict[str, int]:
    """Parameters by path, whole model (layers summed over depth)."""
    D, F, L = spec.embed_dim, spec.mlp_hidden_dim, spec.depth
    counts = {"patch_embed": _linear(spec.in_chans * spec.patch_size ** 2, D, True)}
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
        # one Linear(D, 2) per layer after the first, and one scalar gate per such layer
        counts["core_head"] = (L - 1) * _linear(D, 2, True)
        counts["core_gate"] = L - 1
    layer = {"layer/norm1": 2 * D, "layer/norm2": 2 * D, "layer/attn/out": _linear(D, D, True)}
    if spec.fused_qkv:
        # NB: DINOv3 keeps a 3D bias vector and masks its key third; the parameters still exist.
        layer["layer/attn/qkv"] = _linear(D, 3 * D, spec.qkv_bias)
    else:
        for name in "qkv":
            layer[f"layer/attn/{name}"] = _linear(
                D, D, spec.qkv_bias and (spec.key_bias or name != "k"))
    fc1_out = 2 * F if spec.mlp == "swiglu" else F
    layer["layer/mlp/fc1"] = _linear(D, fc1_out, True)
    layer["layer/mlp/fc2"] = _linear(F, D, True)
    if spec.layer_scale:
        layer["layer/attn/layer_scale"] = D
        layer["layer/mlp/layer_scale"] = D
    counts.update({path: L * n for path, n in layer.items()})
    counts["final_norm"] = 2 * D
    if spec.output_head:
        counts["output_head"] = _linear(D, spec.distill_output_dim, True)
    return counts


def parameter_count(spec: ModelSpec) -> int:
    return sum(parameter_counts(spec).values())
