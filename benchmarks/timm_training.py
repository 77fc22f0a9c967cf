"""The training step against timm's published training benchmark (data/public/timm).

    .venv/bin/python benchmarks/timm_training.py [--file benchmark-train-....csv]

Every ViT row of the file (forward under autocast, backward and an SGD step with momentum and
Nesterov, timm's benchmark default, at the batch the file names) predicted from the GPU's datasheet
with the catalog's parameters (planners/training_step.py: nothing is fitted on training data).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from costmodel.timm_results import read_timm_train
from planners.devices import get_device
from planners.roofline import host_s, latency_s
from planners.training_step import training_rooflines

DEFAULT = (Path(__file__).resolve().parents[1]
           / "data/public/timm/benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv")


def training_errors(path: Path) -> tuple[list, np.ndarray]:
    """(rows, predicted / measured - 1) of a timm training file."""
    results = read_timm_train(path)
    device = get_device(results.file.device)
    predicted = []
    for m in results.records:
        ops = training_rooflines(m.config(), device, m.runtime, "sgd", m.torch_version)
        predicted.append((float(latency_s(ops, device)), float(host_s(ops))))
    errors = np.array([p / m.time_s - 1 for m, (p, _) in zip(results.records, predicted)])
    return list(zip(results.records, predicted)), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT)
    args = parser.parse_args()
    rows, errors = training_errors(args.file)
    print(f"{'configuration':45s} {'measured':>9s} {'predicted':>9s} {'error':>7s} {'host':>6s}")
    for (m, (p, host)), e in zip(rows, errors):
        print(f"{m.label():45s} {m.time_ms_median:9.1f} {p * 1e3:9.1f} {e:+7.1%} "
              f"{host / p:6.0%}")
    a = np.abs(errors)
    print(f"\n{len(a)} rows: MAPE {a.mean():.1%}, within ±10% {(a <= 0.10).mean():.0%}, "
          f"median error {np.median(errors):+.1%}, max |error| {a.max():.1%}")


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)
