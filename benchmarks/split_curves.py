"""The split layout's two attention calls at patch counts no profile point has, three ways.

`coreplan profile` times the split kernel's two calls (the C cores over [cores; patches], and the
N patches over the C cores) on a grid of C and N (reference.profile.SHORT_SIDES, LONG_SIDES). This
script times that grid, the grid profiles used before 2026-12-02 (C 8, 16, 32, 64; N 64, 256,
1024, 4096) and calls at (C, N) that VECA models run off both (N a model's patch count: 400, 576,
784, 1600, 3136; C between the old grid's), all in interleaved rounds (each round a fresh copy of
every call's tensors, the rounds in alternating order, a call's time the median of its rounds),
then predicts every call from the grid points through the planner's own lookup
(planners.profile.Profile), three ways:
- `before`: the old grid, one curve per call and head dim over the work of every point (calls of
  equal work and different C merged by their median), as profiles had it before;
- `by C, before`: the old grid, a curve per C over N; a C between two curves read log-linear in
  C between them at the call's work;
- `today`: today's grid, a curve per C (every multiple of 8 up to 64) over N.
Rows on both grids are in sample for all three; rows on today's grid only are in sample for
`today`; rows off today's grid are held out from all three. Run it alone on a quiet machine:

    .venv/bin/python benchmarks/split_curves.py [--rounds 4] [--threads 2] [--out FILE.json]
    .venv/bin/python benchmarks/split_curves.py --report FILE.json
"""

from __future__ import annotations

import statistics

HEAD_DIM = 64  # every catalog model's
# (C, N) off the grid: veca-small and veca-base at 320, 384, 448, 640 and 896 px (N = 400, 576,
# 784, 1600, 3136) with core budgets between the grid's, and grid budgets at patch counts between
# the grid's
# budgets between the grid's, and grid budgets at patch counts between the grid's
OFF_GRID = ((24, 1600), (32, 400), (40, 784), (48, 576), (56, 3136), (24, 400), (40, 1600),
            (16, 1600), (32, 1600), (32, 784), (64, 784), (8, 400))
CALL_S = 0.05  # seconds of calls per point and round
REGIMES = ("few_queries", "few_keys")  # the cores' call, the patches' call
# the grid of the profiles written before 2026-12-02: C and N
BEFORE = ((8, 16, 32, 64), (64, 256, 1024, 4096))


def main() -> int:
    from rounds_cli import rounds_main

    return rounds_main(__doc__, measure, report, rounds=4)


def points():
    """(regime, C, N, on the grid) of every call timed: the grid of a profile today, the grid's
    of before (reference.profile before 2026-12-02: C 8, 16, 32, 64; N 64, 256, 1024, 4096), and
    OFF_GRID; the patches' call only where N > 64 (with fewer it is a square call)."""
    from costmodel.ops import sdpa_regime
    from reference.profile import LONG_SIDES, SHORT_SIDES

    grid = sorted({(c, n) for c in SHORT_SIDES for n in LONG_SIDES}
                  | {(c, n) for c in BEFORE[0] for n in BEFORE[1]})
    calls = [(c, n, True) for c, n in grid] + [(c, n, False) for c, n in OFF_GRID]
    return [(r, c, n, on) for r in REGIMES for c, n, on in calls
            if sdpa_regime(*_sides(r, c, n)) == r]


def measure(rounds: int, threads: int) -> list[dict]:
    import torch

    from reference.profile import REFERENCE_HEADS, _split_half, time_point

    torch.set_num_threads(threads)
    calls = points()
    times = {p: [] for p in calls}
    with torch.no_grad():
        for r in range(rounds):
            for p in (calls if r % 2 == 0 else calls[::-1]):
                regime, c, n, _ = p
                fn = _split_half(REFERENCE_HEADS, c, n, HEAD_DIM, "cpu", torch.float32,
                                 cores_half=regime == "few_queries")()
                times[p].append(time_point(fn, "cpu", min_time_s=CALL_S, repeats=3))
    return [{"regime": r, "cores": c, "patches": n, "grid": on, "seconds": times[(r, c, n, on)]}
            for r, c, n, on in calls]


def _sides(regime: str, c: int, n: int) -> tuple[int, int]:
    """(queries, keys) of the cores' call or the patches' call."""
    return (c, c + n) if regime == "few_queries" else (n, c)


def _shape(regime: str, c: int, n: int):
    from costmodel.registry import REGISTRY
    from reference.profile import REFERENCE_HEADS

    q, kv = _sides(regime, c, n)
    return REGISTRY["sdpa"].make_shape(batch=1, heads=REFERENCE_HEADS, q_len=q, kv_len=kv,
                                       head_dim=HEAD_DIM, elem_bytes=4, masked=False)


def profiles(rows: list[dict], grid=None):
    """(by work, by C): the two profiles built from the median times of the grid rows (those
    whose C and N are in `grid`, (Cs, Ns); today's profile grid by default)."""
    from reference.profile import LONG_SIDES, SHORT_SIDES

    grid = grid or (SHORT_SIDES, LONG_SIDES)
    from costmodel.registry import REGISTRY
    from planners.profile import Curve, Profile

    by_work: dict[tuple, dict[float, list[float]]] = {}
    by_c: dict[tuple, list[tuple[float, float]]] = {}
    for row in rows:
        if not (row["grid"] and row["cores"] in grid[0] and row["patches"] in grid[1]):
            continue
        shape = _shape(row["regime"], row["cores"], row["patches"])
        work = float(REGISTRY["sdpa"].profile_work(shape))
        seconds = statistics.median(row["seconds"])
        by_work.setdefault((row["regime"], HEAD_DIM, False), {}).setdefault(work, []).append(
            seconds)
        by_c.setdefault((row["regime"], HEAD_DIM, False, row["cores"]), []).append(
            (work, seconds))
    merged = tuple(Curve(key, tuple(sorted(w)), tuple(statistics.median(w[x]) for x in sorted(w)))
                   for key, w in by_work.items())
    keyed = tuple(Curve(key, tuple(w for w, _ in sorted(p)), tuple(t for _, t in sorted(p)))
                  for key, p in by_c.items())
    return (Profile("fp32", 0, 0.0, {"sdpa": merged}), Profile("fp32", 0, 0.0, {"sdpa": keyed}))


def report(rows: list[dict]) -> None:
    import numpy as np

    from reference.profile import LONG_SIDES, SHORT_SIDES

    before = profiles(rows, BEFORE)
    ways = {"before": before[0], "by C, before": before[1], "today": profiles(rows)[1]}
    print(f"{'call':12s} {'C':>3s} {'N':>5s} {'measured ms':>11s} {'rounds':>13s} "
          + " ".join(f"{w:>13s}" for w in ways))
    errors = {}
    for row in rows:
        shape = _shape(row["regime"], row["cores"], row["patches"])
        seconds = statistics.median(row["seconds"])
        predicted = [p.seconds("sdpa", shape, 1) for p in ways.values()]
        if any(p is None for p in predicted):  # N <= 64: a square call, looked up as such
            continue
        e = [float(p) / seconds - 1 for p in predicted]
        if row["grid"] and not (row["cores"] in SHORT_SIDES and row["patches"] in LONG_SIDES):
            continue  # a point of the grid of before only
        where = "off today's grid" if not row["grid"] else (
            "on both grids" if row["cores"] in BEFORE[0] and row["patches"] in BEFORE[1]
            else "on today's grid only")
        for way, value in zip(ways, e):
            errors.setdefault(where, {}).setdefault(way, []).append(value)
        spread = f"{min(row['seconds']) * 1e3:.3f}-{max(row['seconds']) * 1e3:.3f}"
        print(f"{row['regime']:12s} {row['cores']:3d} {row['patches']:5d} {seconds * 1e3:11.3f} "
              f"{spread:>13s} " + " ".join(f"{v:+13.1%}" for v in e)
              + ("  off grid" if not row["grid"] else ""))
    for where, by_way in errors.items():
        print(f"{where}: {len(next(iter(by_way.values())))} calls; MAPE (max) "
              + "; ".join(f"{way} {np.mean(np.abs(v)):.1%} ({np.max(np.abs(v)):.1%})"
                          for way, v in by_way.items()))


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)
