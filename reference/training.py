"""Nested-dropout training: a seeded budget sampler and one training step on a synthetic target.

VECA trains every core prefix at once: each step draws a budget C from the model's nested budgets
(C = 8, 16, ..., max) with the catalog's weights, and runs the step with only the first C cores.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from costmodel.errors import CoreplanError
from costmodel.spec import ModelSpec


@dataclass
class BudgetSampler:
    """Draws core budgets with given weights, reproducibly.

    Args:
        budgets: the allowed core counts, e.g. (8, 16, ..., 64).
        weights: one non-negative weight per budget (not all zero).
        seed: seeds a private random.Random, so sampling never disturbs torch's RNG.
    """

    budgets: tuple[int, ...]
    weights: tuple[float, ...]
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.budgets or len(self.budgets) != len(self.weights):
            raise CoreplanError("budget sampler needs one weight per budget")
        if any(w < 0 for w in self.weights) or not sum(self.weights):
            raise CoreplanError("budget weights must be non-negative and not all zero")
        self._rng = random.Random(self.seed)

    @classmethod
    def from_spec(cls, spec: ModelSpec, seed: int = 0) -> "BudgetSampler":
        if not spec.is_core:
            raise CoreplanError(f"{spec.name} is dense: it has no core budgets")
        weights = spec.budget_weights or (1,) * len(spec.budgets)
        return cls(tuple(spec.budgets), tuple(float(w) for w in weights), seed)

    @property
    def probabilities(self) -> dict[int, float]:
        total = sum(self.weights)
        return {b: w / total for b, w in zip(self.budgets, self.weights)}

    def sample(self) -> int:
        return self._rng.choices(self.budgets, weights=self.weights, k=1)[0]


def training_step(model: torch.nn.Module, images: torch.Tensor, optimizer: torch.optim.Optimizer,
                  *, core_tokens: int | None = None) -> float:
    """One forward + backward + optimizer step; the target is zeros of the output's shape (MSE).

    Args:
        model: a reference model from `reference.models.build_model`, in train mode.
        images: (B, 3, H, W).
        optimizer: over the model's parameters.
        core_tokens: the active core budget (core models); None for dense models.
    """
    kwargs = {} if core_tokens is None else {"core_tokens": core_tokens}
    optimizer.zero_grad(set_to_none=True)
    out = model(images, **kwargs)
    loss = torch.nn.functional.mse_loss(out, torch.zeros_like(out))
    loss.backward()
    optimizer.step()
    return float(loss.detach())
