"""Training FLOPs (forward + backward), per step and expected under nested-budget sampling.

Backward rules, as torch FlopCounterMode counts them (`flop` convention):
- linear and core head: 2x forward (gradient of the input and of the weight);
- patch-embedding conv: 1x forward (the image needs no gradient: weight gradient only);
- SDPA: flash-style backward = registry `sdpa_backward` (5 bmm, 2.5x forward); math backend 2x;
- flex: as flash (NB: FlexAttention's backward is not counted by any counter).
"""

from __future__ import annotations

from dataclasses import replace

from costmodel.config import Config
from costmodel.cost import OpTotal, config_cost
from costmodel.registry import op_cost
from costmodel.spec import ModelSpec

BACKWARDS = ("flash", "math")


def _backward(op: OpTotal, attention_backward: str) -> int:
    forward = op.flop
    if op.op == "conv2d":
        return forward
    if op.op in ("sdpa", "flex_attention"):
        if attention_backward == "math":
            return 2 * forward
        if op.op == "flex_attention":
            return 5 * forward // 2
        shape = {k: op.shape[k] for k in ("batch", "heads", "q_len", "kv_len", "head_dim",
                                          "elem_bytes")}
        return op.launches * op_cost("sdpa_backward", **shape).flop
    return 2 * forward


def training_flops(c: Config, attention_backward: str = "flash",
                   teacher: Config | None = None) -> dict[str, int]:
    """{'forward', 'backward', 'teacher', 'total'} FLOPs of one training step at the config's C;
    a distillation `teacher` (frozen) adds its forward only."""
    if attention_backward not in BACKWARDS:
        raise ValueError(f"attention_backward must be one of {BACKWARDS}")
    forward = backward = 0
    for op in config_cost(c).ops:
        forward += int(op.flop)
        backward += int(_backward(op, attention_backward))
    taught = int(config_cost(teacher).total("flop")) if teacher is not None else 0
    return {"forward": forward, "backward": backward, "teacher": taught,
            "total": forward + backward + taught}


def teacher_config(student: Config, teacher: ModelSpec) -> Config:
    """The teacher's configuration for a student's batch: the same images at the teacher's patch
    grid; a teacher must be a dense model."""
    from costmodel.config import configure
    from costmodel.errors import ArgumentError

    if teacher.is_core:
        raise ArgumentError("teacher", f"must be a dense model; {teacher.name} is a core model")
    return configure(teacher, teacher.round_resolution(student.height), batch=student.batch,
                     dtype=student.dtype)


def expected_training_flops(c: Config, attention_backward: str = "flash",
                            teacher: Config | None = None) -> float:
    """Expected FLOPs per step when C is drawn from the model's nested budgets with its weights."""
    spec = c.spec
    weights = spec.budget_weights or (1,) * len(spec.budgets)
    steps = [training_flops(replace(c, core_tokens=budget), attention_backward, teacher)["total"]
             for budget in spec.budgets]
    return sum(w * s for w, s in zip(weights, steps)) / sum(weights)
