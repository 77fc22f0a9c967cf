"""Training FLOPs (forward + backward), per step and expected under nested-budget sampling.

Each op's backward rule is its registry record's (`OpDef.gradient_flop`), as torch
FlopCounterMode counts it (`flop` convention): 2x forward by default (the input's and the
weight's gradient: linear, bmm, the core heads); the patch-embedding conv 1x (the image needs no
gradient); SDPA flash-style = the `sdpa_backward` formula (5 bmm, 2.5x forward), the math backend
2x; flex as flash (NB: FlexAttention's backward is not counted by any counter).
"""

from __future__ import annotations

from dataclasses import replace

from costmodel.config import Config
from costmodel.cost import OpTotal, config_cost
from costmodel.registry import REGISTRY
from costmodel.spec import ModelSpec

BACKWARDS = ("flash", "math")


def _backward(op: OpTotal, attention_backward: str) -> int:
    return REGISTRY[op.op].gradient_flop(op.flop, op.shape, op.launches, attention_backward)


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
