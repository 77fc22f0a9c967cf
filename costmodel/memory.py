"""Memory model: weights, inference activation peak, and training memory, every term separately.

Units: bytes. X = B*S*D*W is one residual-stream tensor (S tokens per layer, W bytes per element);
Fx = B*S*F*W one MLP-hidden tensor. The live sets below are enumerated from the reference forward
(`reference/models.py`) and checked against a live-tensor tracker in the tests:

- Inside a block the caller still holds the block's input, so a block's base is 3X (block input,
  current x, normalised h) plus the RoPE cos/sin tables (2*B*S_rope*d*W).
- Attention: q, k, v (3X); RoPE on all tokens peaks while rotating k (k*cos, rotate_half(k),
  rotate_half(k)*sin: +3X); RoPE on patches only (DINOv3) also keeps the fused qkv (3X) and the cat
  of the rotated q (X). SDPA stage: output X + logsumexp (fp32, B*H*S) and what the attention
  implementation's record says its call keeps live (costmodel/attention.py; the masked impl: the
  boolean mask, S^2 bytes, and the float mask SDPA derives from it, S^2 * W). What one layer keeps
  for backward from the call is the record's too (the split impl keeps both calls' outputs).
  NB: fused CPU/CUDA SDPA writes its output in (B, S, H, d) order, so merging heads is a view.
- MLP: SwiGLU keeps fc1's output (2 Fx), silu(u) (Fx) and the gated product (Fx); GELU keeps fc1's
  output and its activation (2 Fx).
NB: the allocator's rounding and kernels' internal workspaces are not modelled (see README).
"""

from __future__ import annotations

from dataclasses import dataclass

from costmodel.attention import attention_impl
from costmodel.config import Config
from costmodel.params import parameter_count

LOGSUMEXP_BYTES = 4  # SDPA keeps its logsumexp in fp32 whatever the dtype
NORM_STATS_BYTES = 4  # LayerNorm keeps mean and rstd in fp32 for backward


@dataclass(frozen=True)
class MemoryResult:
    weights_bytes: int
    activation_peak_bytes: int
    total_bytes: int
    terms: dict[str, int]
    peak_stage: str


def _units(c: Config) -> dict[str, int]:
    s, W = c.spec, c.elem_bytes
    B, S, D, F = c.batch, c.seq_len, s.embed_dim, s.mlp_hidden_dim
    rope_tokens = s.rope_tokens(c.patch_tokens, c.core_tokens)
    return dict(X=B * S * D * W, Fx=B * S * F * W,
                tables=2 * B * rope_tokens * s.head_dim * W,
                lse=LOGSUMEXP_BYTES * B * s.num_heads * S)


def residual_bytes(c: Config) -> int:
    """One (B, S, D) tensor: the residual stream's bytes (the unit X below)."""
    return _units(c)["X"]


def inference_stage_tensors(c: Config) -> dict[str, list[int]]:
    """The bytes of each tensor live at each candidate peak of one forward (no_grad), as the
    module docstring enumerates them: a fused qkv projection is one (B, S, 3D) tensor whose views
    are q, k and v; SwiGLU's fc1 output one (B, S, 2F) tensor. A stage's sum is its live bytes
    (inference_stages); the sizes matter where an allocator treats large tensors apart
    (planners/footprint.py)."""
    u, s = _units(c), c.spec
    X, Fx = u["X"], u["Fx"]
    base = [X, X, X] + ([u["tables"] // 2] * 2 if u["tables"] else [])  # + RoPE's cos and sin
    qkv = [3 * X] if s.fused_qkv else [X, X, X]
    if s.pos_embed != "rope":
        rope = []
    elif s.rope_start:
        rope = [X] * 4  # rotating a suffix: the rotated q's cat and k's temporaries
    else:
        rope = [X] * 3
    mlp = [2 * Fx, Fx, Fx] if s.mlp == "swiglu" else [Fx, Fx]
    stem = [c.batch * c.patch_tokens * s.embed_dim * c.elem_bytes] + [X] * (3 if s.extra_tokens else 1)
    return {
        "stem": stem,
        "attention/projections": base + qkv + rope,
        "attention/sdpa": base + qkv + [X, u["lse"]] + attention_impl(c.impl).live_tensors(c, u),
        "mlp": base + mlp,
        "final_norm": [X, X],
        **({"output_head": [X, c.batch * c.seq_len * s.distill_output_dim * c.elem_bytes]}
           if s.output_head else {}),
    }


def inference_stages(c: Config) -> dict[str, int]:
    """Live activation bytes at each candidate peak of one forward (no_grad)."""
    return {stage: sum(tensors) for stage, tensors in inference_stage_tensors(c).items()}


def weights_bytes(c: Config) -> int:
    return parameter_count(c.spec) * c.elem_bytes


def inference_memory(c: Config) -> MemoryResult:
    """Weights plus the activation peak of one inference forward."""
    stages = inference_stages(c)
    stage = max(stages, key=stages.get)
    weights = weights_bytes(c)
    terms = {"weights": weights, **{f"activation/{k}": v for k, v in stages.items()}}
    return MemoryResult(weights, stages[stage], weights + stages[stage], terms, stage)


def saved_per_layer(c: Config) -> dict[str, int]:
    """Bytes one layer keeps for backward, by what keeps it."""
    u, s, W = _units(c), c.spec, c.elem_bytes
    X = u["X"]
    terms = {"norms": 2 * X + 2 * 2 * NORM_STATS_BYTES * c.batch * c.seq_len,
             "qkv_input": X, "mlp_input": X}
    learned_positions = s.is_core  # core coordinates are learned: RoPE saves its inputs too
    if s.pos_embed == "rope":
        terms["rope"] = (4 * X + 3 * u["tables"] // 2) if learned_positions else u["tables"]
    # rotating a suffix concatenates new q and k: both cat outputs are saved too
    terms["sdpa_inputs"] = 3 * X + (2 * X if s.pos_embed == "rope" and s.rope_start else 0)
    terms.update(attention_impl(c.impl).saved_terms(c, u))  # its outputs, masks, ...
    if s.layer_scale:
        terms["layer_scale"] = 2 * X
    terms["mlp_hidden"] = (4 if s.mlp == "swiglu" else 2) * u["Fx"]
    if s.core_coord_head:
        terms["core_head_input"] = c.batch * c.core_tokens * s.embed_dim * W
    return terms


def training_memory(c: Config, optimizer_states: int = 2, teacher: Config | None = None) -> MemoryResult:
    """Weights, gradients, AdamW states (2 per parameter, in the parameters' dtype) and the
    activations kept for backward over all layers; the peak adds one MLP's temporaries.

    With a distillation `teacher` (frozen, forward only, before the student's forward): its
    weights stay resident, its outputs are kept for the loss, and its own forward peak (no saved
    activations) competes with the student's backward peak."""
    weights = weights_bytes(c)
    per_layer = saved_per_layer(c)
    saved = sum(per_layer.values()) * c.spec.depth
    if c.spec.output_head:
        saved += _units(c)["X"]  # the output head's input (the final norm's output)
    transient = inference_stages(c)["mlp"]
    terms = {"weights": weights, "gradients": weights, "optimizer": optimizer_states * weights,
             "saved_activations": saved, "transient": transient,
             **{f"saved_per_layer/{k}": v for k, v in per_layer.items()}}
    activation, stage, extra = saved + transient, "backward", 0
    if teacher is not None:
        t = inference_memory(teacher)
        outputs = teacher.batch * teacher.seq_len * teacher.spec.embed_dim * teacher.elem_bytes
        terms.update({"teacher/weights": t.weights_bytes, "teacher/outputs": outputs,
                      "teacher/forward_peak": t.activation_peak_bytes})
        if t.activation_peak_bytes > activation:
            stage = "teacher forward"
        activation = max(activation, t.activation_peak_bytes) + outputs
        extra = t.weights_bytes
    total = (2 + optimizer_states) * weights + extra + activation
    return MemoryResult(weights, activation, total, terms, stage)


LAYER_STAGES = ("attention/projections", "attention/sdpa", "mlp")


def layer_memory(c: Config, mode: str = "inference") -> MemoryResult:
    """One transformer layer: its weights (the model's layer parameters over its depth) and its
    activations: at a forward's peak inside the layer (the largest of its stages), or in training
    what the layer keeps for backward (saved_per_layer) plus the MLP's temporaries."""
    from costmodel.params import parameter_counts

    layer_params = sum(v for k, v in parameter_counts(c.spec).items() if k.startswith("layer/"))
    weights = layer_params // c.spec.depth * c.elem_bytes
    if mode == "training":
        saved = saved_per_layer(c)
        transient = inference_stages(c)["mlp"]
        terms = {"weights": weights, **{f"saved/{k}": v for k, v in saved.items()},
                 "transient": transient}
        activation = sum(saved.values()) + transient
        return MemoryResult(weights, activation, weights + activation, terms, "backward")
    stages = {k: v for k, v in inference_stages(c).items() if k in LAYER_STAGES}
    stage = max(stages, key=stages.get)
    terms = {"weights": weights, **{f"activation/{k}": v for k, v in stages.items()}}
    return MemoryResult(weights, stages[stage], weights + stages[stage], terms, stage)


def memory(c: Config, mode: str = "inference", teacher: Config | None = None) -> MemoryResult:
    if mode == "training":
        return training_memory(c, teacher=teacher)
    return inference_memory(c)
