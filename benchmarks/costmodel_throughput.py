"""Configurations per second of the numeric cost model, and the speed-up over fvcore tracing.

Last line: configs_per_second=<number>. Run: .venv/bin/python benchmarks/costmodel_throughput.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from costmodel.config import configure
from costmodel.cost import evaluate
from costmodel.spec import get_model


def configs_per_second(n: int, repeats: int) -> float:
    """Model-scope FLOPs of n random veca-base configurations (batch, grid, C) in one evaluation
    of the graph on numpy int64 arrays (exact up to 9.2e18)."""
    spec = get_model("veca-base")
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(1, 128, n), rng.integers(1, 128, n)
    dims = spec.dims(batch=rng.integers(1, 65, n), rows=rows, cols=cols,
                     core_tokens=8 * rng.integers(1, 9, n), elem_bytes=np.full(n, 2))

    def run():
        return evaluate(spec, "split", dims).total("flop")

    run()  # warm
    best = min(_timed(run) for _ in range(repeats))
    return n / best


def fvcore_seconds_per_config() -> float:
    from reference.counting import counting_model, fvcore_count, make_inputs

    c = configure(get_model("veca-base"), 512, cores=64)
    model, images = counting_model(c), make_inputs(c, "cpu")
    fvcore_count(model, (images,), {"core_tokens": 64})  # warm
    return min(_timed(lambda: fvcore_count(model, (images,), {"core_tokens": 64})) for _ in range(3))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-fvcore", action="store_true", help="skip the fvcore comparison")
    args = parser.parse_args()
    rate = configs_per_second(args.configs, args.repeats)
    if not args.no_fvcore:
        per_config = fvcore_seconds_per_config()
        print(f"fvcore_seconds_per_config={per_config:.4f} (veca-base 512 px, C=64, meta tensors)")
        print(f"speedup_vs_fvcore={rate * per_config:,.0f}x")
    print(f"configs_per_second={rate:.0f}")


if __name__ == "__main__":
    main()
