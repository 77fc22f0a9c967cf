"""Is AMP's extra memory traffic what limits the GPU latency model? A what-if on timm's data.

    .venv/bin/python benchmarks/timm_amp_traffic.py

timm's benchmarks run eager autocast (AMP) with fp32 weights: layer norms and the residual stream
stay fp32 and every weight is cast to fp16 each forward, while the cost graph counts fp16 bytes.
This script re-runs the leave-one-device-out fit of benchmarks/timm_holdout.py with the
elementwise ops' bytes multiplied by FACTOR and, optionally, CAST bytes per parameter of weight
casts added as one elementwise op (6 = read fp32 + write fp16), and prints the held-out MAPE per
device next to the unchanged model's (eager files: timm_holdout.py predicts the compiled ones from
the same eager fit). The model itself is not changed: the what-if replaces the
roofline records only inside this process.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

import planners.calibrate as calibration

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script, next to timm_holdout
from timm_holdout import DEFAULT_DIR, gpu_files  # noqa: E402

from costmodel.params import parameter_count
from planners.roofline import OpRoofline, config_rooflines

WHAT_IFS = ((1.0, 0.0), (2.0, 0.0), (2.0, 6.0), (1.5, 6.0))


def with_amp_traffic(factor: float, cast_bytes_per_param: float):
    def rooflines(c, device, runtime="eager"):
        ops = config_rooflines(c, device, runtime)
        if c.dtype not in ("fp16", "bf16"):
            return ops
        ops = tuple(dataclasses.replace(o, bytes=o.bytes * factor, memory_s=o.memory_s * factor)
                    if o.op_class == "elementwise" else o for o in ops)
        if cast_bytes_per_param:
            moved = cast_bytes_per_param * parameter_count(c.spec)
            ops += (OpRoofline("weight_casts", "cast", "elementwise", 0, moved, 1, 0.0,
                               moved / device.memory_bandwidth_bytes_per_s, {}),)
        return ops
    return rooflines


def main() -> None:
    print(f"{'runtime':9s} {'elementwise x':>13s} {'cast B/param':>12s} {'device':18s} "
          f"{'rows':>5s} {'MAPE':>7s}")
    for runtime in ("eager",):  # the compiled files are predicted from this eager fit
        files = gpu_files(DEFAULT_DIR, runtime)
        for factor, cast in WHAT_IFS:
            calibration.config_rooflines = with_amp_traffic(factor, cast)
            h = calibration.calibrate(files, None, by="device").holdout
            for device, (rows, mape, _) in [*h.by_group().items(), ("(all devices)",
                                                                     (h.rows, h.mape, None))]:
                print(f"{runtime:9s} {factor:13g} {cast:12g} {device:18s} {rows:5d} {mape:7.1%}")
    calibration.config_rooflines = config_rooflines


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
