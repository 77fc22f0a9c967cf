"""Held-out latency error on timm's published GPU benchmarks (data/public/timm).

    .venv/bin/python benchmarks/timm_holdout.py [--timm-dir DIR]

Every row is predicted by parameters fitted without it:
- own data: each file calibrated on its own device, leave one model family out;
- datasheet only: one set of parameters (tensor-core and elementwise efficiencies, the power
  coefficient of the clock model) fitted on the OTHER devices' eager files (one a device: its
  newest torch version's, so that no device weighs more for having more files), predicting the
  held-out device from its datasheet (leave one device out). For a compiled file the same eager
  fit predicts it under `--runtime compiled`: the runtime changes the graph, not the parameters.
And, not held out, `catalog` rows: the catalog's GPU defaults (the fit across all three eager
files) on each file, the error a user of the catalog sees on these devices.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from costmodel.timm_results import read_timm
from planners.accuracy import accuracy_of
from planners.calibrate import calibrate, fit_devices, predict_devices
from planners.devices import get_device

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "data/public/timm"


def gpu_files(directory: Path, runtime: str) -> list[Path]:
    out = []
    for path in sorted(directory.glob("benchmark-infer-*.csv")):
        info = read_timm(path).file
        base = info.runtime.split("+")[0]  # eager (torch 1.x: unfused, eager too) or compiled
        if (info.device_kind == "cuda" and (base == runtime or (base, runtime) == ("unfused", "eager"))
                and info.precision == "fp16"):
            out.append(path)
    return out


def newest_per_device(paths: list[Path]) -> list[Path]:
    """One file a device: the one with the newest torch version."""
    def version(path):
        return tuple(int(x) for x in read_timm(path).file.torch_version.split("."))

    best: dict[str, Path] = {}
    for path in paths:
        device = read_timm(path).file.device
        if device not in best or version(path) > version(best[device]):
            best[device] = path
    return sorted(best.values())


def line(table, runtime, device, errors, torch="") -> str:
    errors = np.abs(np.asarray(errors))
    return (f"{table:15s} {runtime:9s} {device:18s} {torch:6s} {len(errors):5d} "
            f"{errors.mean():7.1%} {(errors <= 0.10).mean():6.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timm-dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    eager = newest_per_device(gpu_files(args.timm_dir, "eager"))
    if len(eager) < 2:  # one device: nothing held out
        from costmodel.errors import CoreplanError

        raise CoreplanError(f"--timm-dir {args.timm_dir}: timm's eager fp16 GPU benchmark files "
                            f"of two devices at least are needed (benchmark-infer-amp-*.csv)")
    device_of = {p: read_timm(p).file.device for p in gpu_files(args.timm_dir, "eager")
                 + gpu_files(args.timm_dir, "compiled")}
    torch_of = {p: read_timm(p).file.torch_version for p in device_of}
    print(f"{'table':15s} {'runtime':9s} {'device':18s} {'torch':6s} {'rows':>5s} {'MAPE':>7s} "
          f"{'±10%':>6s}")
    fits = {}
    for runtime in ("eager", "compiled"):
        files = gpu_files(args.timm_dir, runtime)
        for path in files:
            errors = accuracy_of(read_timm(path).records, get_device(device_of[path])).errors
            print(line("catalog", runtime, device_of[path], errors, torch_of[path]))
        for path in files:
            h = calibrate(path, get_device(device_of[path]), by="family").holdout
            print(line("own data", runtime, device_of[path], h.errors, torch_of[path]))
        held = []
        for path in files:
            device = device_of[path]
            train = [p for p in eager if device_of[p] != device]
            if len(train) < 2:
                continue
            if device not in fits:
                fits[device] = fit_devices(train)
            rows, predicted = predict_devices(fits[device], path)
            errors = predicted / np.array([m.time_s for m in rows]) - 1
            held += list(errors)
            print(line("datasheet only", runtime, device, errors, torch_of[path])
                  + f"   k={fits[device].power_coefficient:.3f}")
        if held:
            print(line("datasheet only", runtime, "(all devices)", held))


if __name__ == "__main__":
    from costmodel.errors import script_main

    np.seterr(all="ignore")
    script_main(main)
