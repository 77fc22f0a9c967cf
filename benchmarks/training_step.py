"""Time nested-dropout training steps on CPU and set them beside the predicted training FLOPs.

Each step draws a core budget C from the model's nested budgets with the catalog's weights
(reference.training.BudgetSampler, seeded) and runs forward + backward + AdamW on a synthetic
target (reference.training.training_step). Per budget: median step time (torch.utils.benchmark),
predicted FLOPs per step (costmodel.training, flash-style SDPA backward as on CPU) and the achieved
GFLOP/s; then the expected FLOPs per step under the weights and the measured mean over sampled steps.
With a distillation TEACHER (a dense catalog model), every step first runs the frozen teacher
forward on the same images, as the authors' training does; FLOPs then include its forward.
Usage: .venv/bin/python benchmarks/training_step.py [MODEL] [RESOLUTION] [BATCH] [TEACHER]
"""

import statistics
import sys
import time

import torch

from costmodel.config import configure
from costmodel.spec import get_model
from costmodel.training import expected_training_flops, teacher_config, training_flops
from reference.models import build_model
from reference.timing import time_call
from reference.training import BudgetSampler, training_step


def main(name: str = "veca-small", resolution: int = 128, batch: int = 4,
         teacher: str | None = None) -> None:
    torch.manual_seed(0)
    spec = get_model(name)
    model = build_model(spec).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, resolution, resolution)
    taught = teacher_config(configure(spec, resolution, batch=batch), get_model(teacher)) \
        if teacher else None
    frozen = build_model(taught.spec).eval() if teacher else None

    def step(cores):
        if frozen is not None:
            with torch.no_grad():
                frozen(images)
        return training_step(model, images, optimizer, core_tokens=cores)

    print(f"{name} {resolution}px batch {batch} fp32, threads={torch.get_num_threads()}"
          f"{f', teacher {teacher}' if teacher else ''}\n")
    print("| C | step ms (IQR) | predicted GFLOP/step | achieved GFLOP/s |")
    print("|---|---|---|---|")
    per_budget = {}
    for cores in spec.budgets:
        c = configure(spec, resolution, cores=cores, batch=batch)
        t = time_call(lambda: step(cores), min_run_time_s=1.0, min_repeats=3)
        flops = training_flops(c, "flash", taught)["total"]
        per_budget[cores] = t.median_ms
        print(f"| {cores} | {t.median_ms:.1f} ({t.iqr_ms:.1f}) | {flops / 1e9:.2f} | "
              f"{flops / t.median_ms / 1e6:.1f} |")
    sampler = BudgetSampler.from_spec(spec, seed=0)
    steps = []
    for _ in range(20):
        cores = sampler.sample()
        start = time.perf_counter()
        step(cores)
        steps.append((time.perf_counter() - start) * 1e3)
    expected = expected_training_flops(configure(spec, resolution, batch=batch), "flash", taught)
    print(f"\nnested dropout, 20 sampled steps: mean {statistics.mean(steps):.1f} ms/step; "
          f"expected {expected / 1e9:.2f} GFLOP/step under weights {list(spec.budget_weights)}")


def _arguments(argv: list[str]) -> list:
    from costmodel.errors import CoreplanError

    if len(argv) > 4:
        raise CoreplanError("usage: training_step.py [MODEL] [RESOLUTION] [BATCH] [TEACHER]")
    try:
        return [int(a) if i in (1, 2) else a for i, a in enumerate(argv)]
    except ValueError:
        raise CoreplanError(f"RESOLUTION and BATCH are whole numbers, got {argv[1:3]}") from None


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(lambda: main(*_arguments(sys.argv[1:])))
