"""Every held-out run against the profile it followed, with today's code: the record in one table.

    .venv/bin/python benchmarks/holdout_record.py [RUN ...]

Each RUN (default: every data/measurements/holdout-cpu-*[12].csv whose profile is committed) is a
file of benchmarks/latency_holdout.py named `holdout-cpu-NAME1.csv` or `holdout-cpu-NAME-1.csv`
(and 2): it followed the profile `data/profiles/cpu-NAME.toml`, whose device it is predicted by.
For each: its MAPE, share within ±10% and median error as predicted, whether that meets the own-
machine goal (MAPE at most 5%, at least 90% within ±10%), and the same scaled by the machine
probe read during the run (planners/accuracy.probe_scale: not known when a plan is made). Then
how many runs meet the goal each way.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from costmodel.errors import CoreplanError
from costmodel.measurements import latest, read_measurements
from planners.accuracy import WITHIN, meets_goal, predict_measurement, probe_scale
from planners.devices import get_device, load_devices

ROOT = Path(__file__).resolve().parents[1]
RUN = re.compile(r"holdout-cpu-(?P<name>.+?)-?[12]\.csv$")


def _profile_path(run: Path) -> Path | None:
    """Where the profile a run followed would be, by the naming convention; None for a name
    that is not a run's."""
    found = RUN.search(run.name)
    return ROOT / "data/profiles" / f"cpu-{found['name']}.toml" if found else None


def profile_of(run: Path) -> Path:
    """The profile a run followed; one line where the name is not a run's or it is missing."""
    profile = _profile_path(run)
    if profile is None:
        raise CoreplanError(f"{run}: not a held-out run's name (holdout-cpu-NAME1.csv or "
                            f"holdout-cpu-NAME-1.csv, and 2)")
    if not profile.is_file():
        raise CoreplanError(f"{run}: no profile data/profiles/{profile.name} for it")
    return profile


def record(run: Path) -> dict:
    """One run's errors as predicted and scaled by the probe (None where a row lacks a reading)."""
    profile = profile_of(run)
    device = get_device(next(iter(load_devices(profile))), profile)
    rows = [r for r in latest(read_measurements(run)) if r.timed]
    if not rows:
        raise CoreplanError(f"{run}: no timed rows")
    errors = np.array([float(predict_measurement(r, device)) / r.time_s - 1 for r in rows])
    scales = [probe_scale(r, device) for r in rows]
    scaled = (np.array([(1 + e) * s - 1 for e, s in zip(errors, scales)])
              if all(scales) else None)
    return {"run": run.name, "profile": profile.name, "errors": errors, "scaled": scaled}


def _cells(errors) -> str:
    if errors is None:
        return f"{'':>6s} {'':>5s} {'':>6s}"
    e = np.abs(errors)
    return (f"{e.mean():6.1%} {(e <= WITHIN).mean():5.0%} "
            f"{'met' if meets_goal(errors) else '-':>6s}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, metavar="RUN")
    args = parser.parse_args(argv)
    runs = args.runs or [p for p in sorted((ROOT / "data/measurements").glob(
        "holdout-cpu-*[12].csv")) if (_profile_path(p) or Path()).is_file()]
    records = [record(run) for run in runs]
    width = max(len(r["run"]) for r in records)
    print(f"{'run':{width}s} {'MAPE':>6s} {'±10%':>5s} {'goal':>6s} {'median':>7s}   "
          f"scaled by the probe: {'MAPE':>6s} {'±10%':>5s} {'goal':>6s}")
    for r in records:
        print(f"{r['run']:{width}s} {_cells(r['errors'])} {np.median(r['errors']):+7.1%}   "
              f"{'':21s}{_cells(r['scaled'])}")
    met = sum(meets_goal(r["errors"]) for r in records)
    with_probe = [r for r in records if r["scaled"] is not None]
    met_scaled = sum(meets_goal(r["scaled"]) for r in with_probe)
    print(f"\n{len(records)} runs: {met} meet the goal as predicted; scaled by the probe read "
          f"during each run, {met_scaled} of the {len(with_probe)} with its readings")
    return 0


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)  # a run without its profile, a missing file: one line, exit 2
