"""A linear layer with its weight cached against the same layer reading a fresh weight each call.

A model's every layer has its own weights, so inside a forward a GEMM reads its weight from memory;
an op benchmark that calls the same layer again reads it from the cache the previous call left it
in. `coreplan profile` therefore times its linear points with cold weights (reference.profile:
each call takes the next of many copies laid out in a pool four times the last-level cache). This
script measures the difference on the catalog's ViT-S and ViT-B shapes over token counts: both
ways in interleaved rounds (cached, then cold, then the other order), each round the median of
its calls, each way's time the median of its rounds. Run it alone on a quiet machine:

    .venv/bin/python benchmarks/cold_weights.py [--rounds 6] [--threads 2] [--out FILE.json]
    .venv/bin/python benchmarks/cold_weights.py --report FILE.json
"""

from __future__ import annotations

import statistics

SHAPES = ((384, 1536), (1536, 384), (768, 768), (768, 3072))  # (in, out): ViT-S MLP, ViT-B
TOKENS = (32, 128, 257, 513, 1025)
CALL_S = 0.05  # seconds of calls per way and round


def main() -> int:
    from rounds_cli import rounds_main

    def facts() -> dict:
        from reference.machine import last_level_cache_bytes

        return {"last_level_cache_bytes": last_level_cache_bytes("cpu")}
    return rounds_main(__doc__, measure, report, rounds=6, facts=facts)


def _round_s(fn) -> float:
    """The median of a round's calls (CALL_S of them, 3 at least) after a warm-up call
    (reference.profile.time_point, the profile's own timer)."""
    from reference.profile import time_point

    return time_point(fn, "cpu", min_time_s=CALL_S, repeats=3)


def measure(rounds: int, threads: int) -> list[dict]:
    import itertools

    import torch
    import torch.nn.functional as F

    from reference.profile import cold_weights, release_weight_pools

    torch.set_num_threads(threads)
    rows = []
    try:
        with torch.no_grad():
            for (k, n), m in itertools.product(SHAPES, TOKENS):
                x, b = torch.randn(m, k), torch.randn(n)
                weights = cold_weights(n, k, "cpu", None)
                turn = itertools.count()
                ways = {"cached": lambda: F.linear(x, weights[0], b),
                        "cold": lambda: F.linear(x, weights[next(turn) % len(weights)], b)}
                times = {way: [] for way in ways}
                for r in range(rounds):
                    for way in (("cached", "cold") if r % 2 == 0 else ("cold", "cached")):
                        times[way].append(_round_s(ways[way]))
                row = {"in": k, "out": n, "tokens": m, "copies": len(weights), **times}
                rows.append(row)
                print(_line(row), flush=True)
    finally:
        release_weight_pools()
    return rows


def _line(row: dict) -> str:
    cached, cold = statistics.median(row["cached"]), statistics.median(row["cold"])
    ratios = [c / h for c, h in zip(row["cold"], row["cached"])]
    return (f"{row['in']:5d} -> {row['out']:<5d} {row['tokens']:6d} {cached * 1e3:9.3f} "
            f"{cold * 1e3:9.3f} {cold / cached:7.2f}  {min(ratios):.2f}-{max(ratios):.2f}")


def report(rows: list[dict]) -> None:
    print(f"{'linear':13s} {'tokens':>6s} {'cached ms':>9s} {'cold ms':>9s} {'ratio':>7s}  "
          f"round by round (min-max)")
    for row in rows:
        print(_line(row))


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)
