"""How much a profile's op curves move from one profile to the next, by how their points are timed.

Runs the op-curve stage of `coreplan profile` (reference.profile.run_profile, its 120 s share of
the default budget) again and again, alternating two ways of timing each point: in one block (the
way before 2026-12-01: a warm-up, then at least 3 calls and 0.05 s) and in CURVE_ROUNDS rounds over
the stage (the second in reverse order, each with its share of the calls). Each run's curves, as
a device file with no calibration (efficiency 1, no overhead), predict the held-out configurations
of `benchmarks/latency_holdout.py`; the spread of one configuration's prediction over the runs of
one arm is how far the curves alone move between two profiles of the same machine. Run it alone
on a quiet machine (8 runs: about 13 minutes on 2 cores):

    .venv/bin/python benchmarks/curve_rounds.py --out results.json [--runs 8] [--threads 2]
    .venv/bin/python benchmarks/curve_rounds.py --report results.json

Every finished run is written as it ends (an interrupt keeps them); `--report` prints, per arm,
each configuration's coefficient of variation over the runs, the runs' overall level (geometric
mean of their predictions over all runs'), and the variation once each run's level is taken out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from costmodel.errors import CoreplanError

HOLDOUT_ROWS = Path(__file__).resolve().parents[1] / \
    "data/measurements/holdout-cpu-epyc-2core-2026-12-01-spread-d1.csv"  # its configurations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="JSON file the runs are written to")
    parser.add_argument("--runs", type=int, default=8, help="runs in all, the arms alternating")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=120.0,
                        help="each run's budget (the curves' share of a 300 s profile)")
    parser.add_argument("--report", help="only summarise this file, timing nothing")
    args = parser.parse_args()
    if args.report:
        report(_load(args.report))
        return 0
    if not args.out:
        raise CoreplanError("give --out FILE.json (or --report FILE.json)")
    if args.runs < 2:
        raise CoreplanError(f"--runs {args.runs}: needs 2 or more (one of each arm)")
    from planners.devices import check_output_file

    out = check_output_file(args.out)
    runs = measure(args.runs, args.threads, args.budget_s, out)
    report(runs)
    return 0


def measure(count: int, threads: int, budget_s: float, out: Path) -> list[dict]:
    import reference.profile as rp
    from costmodel.measurements import read_measurements
    from planners.accuracy import predict_measurement

    records = [m for m in read_measurements(HOLDOUT_ROWS) if m.timed]
    runs = []
    for index in range(count):
        rounds = 1 if index % 2 == 0 else rp.CURVE_ROUNDS
        begin = time.monotonic()
        run = rp.run_profile(budget_s=budget_s, threads=threads, rounds=rounds)
        device = rp.profiled_device("curves", "cpu", run)
        runs.append({"rounds": rounds, "seconds": round(time.monotonic() - begin, 1),
                     "points": run.measured, "skipped": run.skipped,
                     "machine_state": run.profile.machine_state,
                     "predicted_s": {m.label(): predict_measurement(m, device) for m in records}})
        out.write_text(json.dumps(runs, indent=1))
        print(f"run {index + 1} of {count}: {rounds} round(s), {runs[-1]['seconds']:.0f} s; "
              f"{run.profile.machine_state}", flush=True)
    return runs


def _load(path: str) -> list[dict]:
    try:
        runs = json.loads(Path(path).read_text())
        arms = {run["rounds"] for run in runs}
        labels = [set(run["predicted_s"]) for run in runs]
    except FileNotFoundError:
        raise CoreplanError(f"{path}: no such file") from None
    except (ValueError, KeyError, TypeError) as err:
        raise CoreplanError(f"{path}: not a curve_rounds.py file ({err})") from None
    if len(arms) < 2 or any(label != labels[0] for label in labels):
        raise CoreplanError(f"{path}: needs runs of both arms over the same configurations")
    return runs


def report(runs: list[dict]) -> None:
    import numpy as np

    labels = list(runs[0]["predicted_s"])
    arms = sorted({run["rounds"] for run in runs})
    table = {}
    print(f"{'configuration':42s} " + " ".join(f"{f'{a} round(s): cv':>16s}" for a in arms))
    for arm in arms:
        p = np.array([[run["predicted_s"][k] for k in labels] for run in runs
                      if run["rounds"] == arm])
        level = np.exp(np.log(p).mean(axis=1))
        shape = p / level[:, None]
        table[arm] = (_cv(p), _cv(shape), level / level.mean(), len(p),
                      [run["seconds"] for run in runs if run["rounds"] == arm])
    for i, label in enumerate(labels):
        print(f"{label:42s} " + " ".join(f"{table[a][0][i]:16.1%}" for a in arms))
    for arm in arms:
        cv, shape, level, n, seconds = table[arm]
        print(f"\n{arm} round(s), {n} runs ({min(seconds):.0f}-{max(seconds):.0f} s each): a "
              f"configuration's prediction varies by a median {np.median(cv):.1%} (mean "
              f"{cv.mean():.1%}, max {cv.max():.1%}); the runs' levels "
              + ", ".join(f"x{v:.3f}" for v in level)
              + f"; with each run's level taken out: median {np.median(shape):.1%}")


def _cv(values):
    return values.std(axis=0, ddof=1) / values.mean(axis=0)


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)
