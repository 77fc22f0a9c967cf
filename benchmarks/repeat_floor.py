"""How far a machine agrees with itself: the floor under any latency prediction's error there.

    .venv/bin/python benchmarks/repeat_floor.py FIRST SECOND [FIRST SECOND ...]

Files are taken two at a time: two runs of the same held-out configurations
(benchmarks/latency_holdout.py), the second timed after the first. Each pair's first run is taken
as a prediction of its second, as a model that had predicted the first run exactly would predict
it: its MAPE, share within ±10%, the level (the median error: how much faster or slower the whole
machine ran the second time) and the MAPE with the level taken out, and whether it meets the own-
machine goal (MAPE at most 5%, at least 90% within ±10%). A machine whose repeats miss the goal
cannot be predicted within it by any model: a run's miss there is the machine's as much as the
model's. Sorted by name, the files of `holdout-NAME1.csv, holdout-NAME2.csv` pairs come out in
pairs (`ls data/measurements/holdout-*[12].csv`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from costmodel.errors import CoreplanError
from costmodel.measurements import read_measurements
from planners.accuracy import GOAL_MAPE, GOAL_WITHIN, repeatability


def floors(paths: list[Path]) -> list[tuple[Path, Path, dict]]:
    """Each pair's floor (planners.accuracy.Repeatability.floor); refused in one line when the
    files do not come in pairs, or a pair shares no timed configuration."""
    if len(paths) < 2 or len(paths) % 2:
        raise CoreplanError(f"expected pairs of runs (FIRST SECOND ...), got {len(paths)} "
                            f"file(s)")
    out = []
    for first, second in zip(paths[::2], paths[1::2]):
        runs = read_measurements(first), read_measurements(second)
        try:
            r = repeatability(*runs)
        except CoreplanError as e:
            raise CoreplanError(f"{first.name} and {second.name}: {e}") from None
        out.append((first, second, r.floor()))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="FILE",
                        help="runs of held-out configurations, two at a time: first, second")
    args = parser.parse_args(argv)
    rows = floors(args.runs)
    width = max(len(first.name) for first, _, _ in rows)
    print(f"{'first run (predicting the next file)':{width}s} {'rows':>4s} {'MAPE':>6s} "
          f"{'±10%':>5s} {'level':>7s} {'out':>6s}  goal")
    for first, _, f in rows:
        print(f"{first.name:{width}s} {f['rows']:4d} {f['mape']:6.1%} {f['within_10pct']:5.0%} "
              f"{f['level']:+7.1%} {f['mape_level_out']:6.1%}  "
              f"{'met' if f['meets_goal'] else 'missed'}")
    met = sum(f["meets_goal"] for _, _, f in rows)
    mape = np.array([f["mape"] for _, _, f in rows])
    out = np.array([f["mape_level_out"] for _, _, f in rows])
    level = np.abs([f["level"] for _, _, f in rows])
    print(f"\n{met} of {len(rows)} pairs: the first run, as an exact prediction of the second, "
          f"meets the goal (MAPE at most {GOAL_MAPE:.0%}, at least {GOAL_WITHIN:.0%} within "
          f"±10%); MAPE median {np.median(mape):.1%} (range {mape.min():.1%}-{mape.max():.1%}); "
          f"with the level taken out median {np.median(out):.1%}; |level| median "
          f"{np.median(level):.1%}, max {level.max():.1%}")
    print("level: the median of first / second - 1 (negative: the machine ran slower the second "
          "time; positive: faster); out: the MAPE with the level taken out of every row")
    return 0


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)  # a missing file, files not in pairs: one line, exit 2
