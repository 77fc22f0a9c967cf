"""Does the machine probe see what slows whole models? Samples side by side, over and over.

Each iteration takes, one after another: the machine probe (reference.timing.Probe, a chain of
384x384 matmuls), an add streaming 24 MB (2M elements, 3 tensors) and one streaming 192 MB (16M),
a 1024x384 by 384x1536 linear layer (each the median of 3 calls), then one forward of each of three
held-out configurations of benchmarks/latency_holdout.py. It prints each one's coefficient of
variation over the iterations and the correlation of their log times: a probe that tracks the
machine would correlate with the models as the models do with each other. Run it alone:

    .venv/bin/python benchmarks/probe_tracking.py [--seconds 150] [--threads 2] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

MODELS = {"dinov2-small 448px B=1": ("hf", "dinov2-small", 448, 1, None, "dense"),
          "veca-small 320px C=32 B=2": ("reference", "veca-small", 320, 2, 32, "split"),
          "dinov3-small 224px B=1": ("hf", "dinov3-small", 224, 1, None, "dense")}


def main() -> int:
    from costmodel.errors import CoreplanError

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="write every iteration's times here (JSON)")
    args = parser.parse_args()
    if not args.seconds > 0:
        raise CoreplanError("--seconds must be a positive number")
    rows = sample(args.seconds, args.threads)
    if len(rows) < 3:
        raise CoreplanError(f"{len(rows)} iteration(s) in {args.seconds:g} s: too few to "
                            f"correlate, give more --seconds")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    report(rows)
    return 0


def _median_s(fn) -> float:
    """The median of 3 calls after a warm-up (reference.profile.time_point: the one timer)."""
    from reference.profile import time_point

    return time_point(fn, "cpu", min_time_s=0.0, repeats=3)


def sample(seconds: float, threads: int) -> list[dict]:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from latency_holdout import forward_of

    from reference.timing import Probe

    torch.set_num_threads(threads)
    probe = Probe("cpu")
    probe.settle()
    small = [torch.randn(2_000_000) for _ in range(3)]
    large = [torch.randn(16_000_000) for _ in range(3)]
    x, w = torch.randn(1024, 384), torch.randn(1536, 384)
    forwards = {name: forward_of(*case) for name, case in MODELS.items()}
    rows = []
    with torch.no_grad():
        for forward in forwards.values():  # warm
            forward()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            row = {"probe": probe.sample(),
                   "add 24 MB": _median_s(lambda: torch.add(small[0], small[1], out=small[2])),
                   "add 192 MB": _median_s(lambda: torch.add(large[0], large[1], out=large[2])),
                   "linear 1024x384x1536": _median_s(lambda: torch.nn.functional.linear(x, w))}
            for name, forward in forwards.items():
                start = time.perf_counter()
                forward()
                row[name] = time.perf_counter() - start
            rows.append(row)
    return rows


def report(rows: list[dict]) -> None:
    import numpy as np

    keys = list(rows[0])
    logs = np.log(np.array([[row[k] for k in keys] for row in rows]))
    times = np.exp(logs)
    print(f"{len(rows)} iterations\n\n{'':28s} {'cv':>6s}  correlation of log times")
    corr = np.corrcoef(logs.T)
    print(f"{'':28s} {'':6s}  " + " ".join(f"{i + 1:>6d}" for i in range(len(keys))))
    for i, key in enumerate(keys):
        cv = times[:, i].std() / times[:, i].mean()
        print(f"{i + 1}. {key:25s} {cv:6.1%}  " + " ".join(f"{c:6.2f}" for c in corr[i]))


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)
