"""Small batches on a GPU: published rows at batch 1-16 against the datasheet model.

    .venv/bin/python benchmarks/small_batch.py [--docs FILE.csv ...]

Reads the documents' CSVs of data/public/papers-and-docs (costmodel/doc_results.py), derives the
host's cost per launch from the host-bound series (planners.calibrate.host_launch_costs: what the
catalog's [defaults.gpu] host_launch_s holds), and predicts every row from its GPU's datasheet
with the catalog's parameters (fitted on timm's files of other GPUs: these GPUs are held out of
that fit). The batch-1 rows that set the host's cost are marked: they are not held out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from planners.calibrate import host_launch_costs, load_rows, row_devices
from planners.roofline import config_rooflines, host_s, latency_and_work_s

DOCS = Path(__file__).resolve().parents[1] / "data/public/papers-and-docs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", nargs="*", type=Path,
                        default=[DOCS / "hf-transformers-torch-compile-v100.csv"])
    args = parser.parse_args()
    rows = load_rows(args.docs)
    costs = host_launch_costs(rows)
    print("host cost per launch, from the host-bound series (median, series):")
    for runtime, (seconds, n) in sorted(costs.items()):
        print(f"  {runtime:9s} {seconds * 1e6:6.1f} us  ({n} series"
              + (", taken from the other eager path" if n == 0 else "") + ")")
    print(f"\n{'configuration':42s} {'runtime':9s} {'device':15s} {'measured':>9s} "
          f"{'GPU work':>9s} {'host':>7s} {'predicted':>9s} {'error':>7s}")
    errors: dict[int, list[float]] = {}
    fitted = {(m.runtime, m.model) for m in rows if m.batch == min(r.batch for r in rows)}
    for m, device in zip(rows, row_devices(rows, None)):
        ops = config_rooflines(m.config(), device, m.runtime)
        latency, own = latency_and_work_s(ops, device)
        predicted, work = float(latency), float(own)
        error = predicted / m.time_s - 1
        sets = m.batch == 1 and (m.runtime, m.model) in fitted and float(host_s(ops)) > work
        if not sets:
            errors.setdefault(m.batch, []).append(error)
        print(f"{m.label():42s} {m.runtime:9s} {device.name:15s} {m.time_ms_median:9.2f} "
              f"{work * 1e3:9.2f} {float(host_s(ops)) * 1e3:7.2f} {predicted * 1e3:9.2f} "
              f"{error:+7.1%}" + ("  (sets the host's cost)" if sets else ""))
    print()
    for batch, e in sorted(errors.items()):
        e = np.abs(e)
        print(f"batch {batch:3d}: {len(e)} held-out rows, MAPE {e.mean():.1%}, within ±10% "
              f"{(e <= 0.10).mean():.0%}")


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)
