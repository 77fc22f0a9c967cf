"""Held-out latency error on timm's published GPU benchmarks (data/public/timm).

    .venv/bin/python benchmarks/timm_holdout.py [--timm-dir DIR]

Three tables, each row predicted by a fit that never saw it:
- defaults: the catalog's documented default efficiencies, no fit (datasheet numbers only);
- own data: each file calibrated on its device, leave one model family out;
- datasheet only: one set of efficiencies fitted across the other devices' files of the same
  runtime, predicting the held-out device from its datasheet (leave one device out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from costmodel.timm_results import read_timm
from planners.accuracy import accuracy_of
from planners.calibrate import calibrate
from planners.devices import get_device

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "data/public/timm"


def gpu_files(directory: Path, runtime: str) -> list[Path]:
    out = []
    for path in sorted(directory.glob("benchmark-infer-*.csv")):
        info = read_timm(path).file
        if info.device_kind == "cuda" and info.runtime == runtime and info.precision == "fp16":
            out.append(path)
    return out


def defaults_error(path: Path) -> dict:
    results = read_timm(path)
    device = get_device(results.file.device)
    return accuracy_of(results.records, device).summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timm-dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    print(f"{'table':15s} {'runtime':9s} {'device':18s} {'rows':>5s} {'MAPE':>7s} {'±10%':>6s}")
    for runtime in ("eager", "compiled"):
        files = gpu_files(args.timm_dir, runtime)
        for path in files:
            s = defaults_error(path)
            print(f"{'defaults':15s} {runtime:9s} {read_timm(path).file.device:18s} {s['rows']:5d} "
                  f"{s['mape']:7.1%} {s['within_10pct']:6.0%}")
        for path in files:
            info = read_timm(path).file
            h = calibrate(path, get_device(info.device), by="family").holdout
            print(f"{'own data':15s} {runtime:9s} {info.device:18s} {h.rows:5d} {h.mape:7.1%} "
                  f"{h.within_10pct:6.0%}")
        if len(files) >= 2:
            h = calibrate(files, None, by="device").holdout
            for device, (rows, mape, within) in h.by_group().items():
                print(f"{'datasheet only':15s} {runtime:9s} {device:18s} {rows:5d} {mape:7.1%} "
                      f"{within:6.0%}")
            print(f"{'datasheet only':15s} {runtime:9s} {'(all devices)':18s} {h.rows:5d} "
                  f"{h.mape:7.1%} {h.within_10pct:6.0%}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
