"""Held-out latency check: configurations no fit has seen, against a device's predictions.

Times dense ViTs built by a third party (Hugging Face transformers Dinov2 / DINOv3ViT from a config,
random init, their default attention) and coreplan's own reference models at resolutions, batches
and core budgets that are in neither the profile (op micro-benchmarks only) nor the committed
validate data, with the trusted protocol (warm-up, a machine probe between repeats) in interleaved
rounds: every configuration is built first, then each round times each of them once
(`--min-time` / `--rounds` seconds of calls), so that the VM's drift over minutes reaches all of
them alike; a row is the median of its quiet rounds, its `time_ms_iqr` the spread between rounds,
and a configuration with fewer than half its rounds quiet, or whose rounds spread by more than
10% of their median (UNSTEADY), gets as many again. Run it on a quiet machine:

    .venv/bin/python benchmarks/latency_holdout.py --device-file profile.toml --device NAME \
        [--out results.csv] [--threads 2]
    .venv/bin/python benchmarks/latency_holdout.py --device NAME --report results.csv
    .venv/bin/python benchmarks/latency_holdout.py --device NAME --report run2.csv --against run1.csv
    .venv/bin/python benchmarks/latency_holdout.py --device-file profile.toml --device NAME \
        --cores-sweep veca-small:640 --out sweep.csv

`--cores-sweep MODEL:SIDE` times one VECA model at every core budget instead (split layout, batch
1): how latency moves with C, measured and predicted (`--report` prints the largest C over the
smallest both ways).
`--against` compares the measured times of two runs of the same configurations: how far the machine
agrees with itself (raw, and normalised by the probe), the floor under any prediction's error.
Each row is written as a measurement record (costmodel/measurements.py; `note` says which
implementation ran and how many rounds were quiet) when the rounds end, or, interrupted, for every
configuration with a quiet round (`--resume` times again a row with fewer than half of `--rounds`
quiet, as such an interrupted row is); the summary prints MAPE and the share within ±10%.
"""

from __future__ import annotations

import argparse
import sys

import torch

from costmodel.config import configure
from costmodel.measurements import Measurement, MeasurementWriter
from costmodel.spec import get_model
from planners.accuracy import predict_measurement
from planners.devices import get_device
from reference.machine import machine_name
from reference.models import build_model, forward_kwargs, hf_model
from reference.timing import Probe

# (implementation, catalog model, side px, batch, C or None, impl)
HOLDOUT = (
    ("hf", "dinov2-small", 224, 1, None, "dense"),
    ("hf", "dinov2-small", 448, 2, None, "dense"),
    ("hf", "dinov2-small", 644, 1, None, "dense"),
    ("hf", "dinov2-base", 224, 2, None, "dense"),
    ("hf", "dinov2-base", 448, 1, None, "dense"),
    ("hf", "dinov2-large", 224, 1, None, "dense"),
    ("hf", "dinov3-small", 224, 1, None, "dense"),
    ("hf", "dinov3-small", 320, 4, None, "dense"),
    ("hf", "dinov3-small", 640, 1, None, "dense"),
    ("hf", "dinov3-base", 320, 1, None, "dense"),
    ("hf", "dinov3-base", 448, 2, None, "dense"),
    ("reference", "veca-small", 224, 1, 16, "split"),
    ("reference", "veca-small", 320, 2, 32, "split"),
    ("reference", "veca-small", 448, 1, 48, "masked"),
    ("reference", "veca-small", 640, 1, 24, "split"),
    ("reference", "veca-splus", 384, 1, 32, "split"),
    ("reference", "veca-base", 320, 1, 16, "split"),
    ("reference", "veca-base", 448, 1, 40, "split"),
    ("reference", "dinov3-small", 448, 2, None, "dense"),
    ("reference", "dinov2-base", 336, 1, None, "dense"),
)


def cores_sweep(text: str) -> tuple:
    """The configurations of `--cores-sweep MODEL:SIDE`: that VECA model at that side, batch 1,
    split layout, at every core budget it was trained with (C = 8, 16, ..., 64)."""
    from costmodel.errors import CoreplanError

    name, _, side = text.partition(":")
    if not side.isdigit() or int(side) < 1:
        raise CoreplanError(f"--cores-sweep {text!r}: expected MODEL:SIDE, e.g. veca-small:640")
    spec = get_model(name)
    if not spec.is_core:
        raise CoreplanError(f"--cores-sweep: {name} has no core tokens (a VECA model has)")
    return tuple(("reference", name, int(side), 1, c, "split") for c in spec.budgets)


def forward_of(source: str, name: str, side: int, batch: int, cores, impl: str):
    torch.manual_seed(0)
    images = torch.randn(batch, 3, side, side)
    if source == "hf":
        model = hf_model(name)
        return lambda: model(pixel_values=images)
    spec = get_model(name)
    model = build_model(spec, impl=impl if spec.is_core else None).eval()
    kwargs = forward_kwargs(spec, cores or 0)
    return lambda: model(images, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", required=True)
    parser.add_argument("--device-file")
    parser.add_argument("--out", default="holdout.csv")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds of timed calls per configuration, spread over the rounds")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds: each times every configuration once")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--cores-sweep", metavar="MODEL:SIDE",
                        help="time this VECA model (split layout, batch 1) at this side at every "
                        "core budget, 8 to 64, instead of the held-out set: how latency moves "
                        "with C")
    parser.add_argument("--report", help="only predict the rows of this file, timing nothing")
    parser.add_argument("--against", help="with --report: an earlier run of the same "
                        "configurations; print how far the two runs' measured times agree")
    args = parser.parse_args()
    device = get_device(args.device, args.device_file)
    if args.report:
        from costmodel.measurements import latest, read_measurements

        _summary(latest(read_measurements(args.report)), device)
        if args.against:
            _agreement(read_measurements(args.against), read_measurements(args.report))
        return 0
    if args.against:
        parser.error("--against goes with --report")
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    if not args.min_time > 0:
        parser.error("--min-time must be a positive number of seconds")
    cases = cores_sweep(args.cores_sweep) if args.cores_sweep else HOLDOUT
    torch.set_num_threads(args.threads)
    writer = MeasurementWriter(args.out, args.resume)
    from costmodel.measurements import latest

    # busy rows are re-timed, and rows with fewer than half of --rounds quiet (an interrupted run)
    done = {r.key() for r in latest(writer.records)
            if not r.busy and 2 * _rounds_quiet(r, args.rounds) >= args.rounds}
    todo = {}
    for source, name, side, batch, cores, impl in cases:
        c = configure(get_model(name), side, cores=cores, batch=batch, impl=impl)
        key = (name, str(side), str(c.core_tokens), c.impl, str(batch), "fp32", "cpu", "eager",
               "transformers" if source == "hf" else "torch")
        if key not in done:
            todo[(source, c)] = None
    try:
        with torch.no_grad():
            _time_rounds(todo, args, writer)
    finally:
        writer.close()
    _summary(latest(writer.records), device)
    return 0


def _time_rounds(todo: dict, args, writer) -> None:
    """Time the configurations in interleaved rounds (reference.timing.interleaved): each round
    times every configuration for min_time / rounds seconds; a configuration's row is its rounds
    combined. Where fewer than half of a configuration's rounds were quiet, or its rounds spread by
    more than UNSTEADY of their median, it gets as many rounds again (those configurations alone:
    a noisy machine's rows get twice the rounds, and the run up to twice the time). Rows are
    written when the rounds end, or, interrupted, for every configuration with a quiet round so
    far."""
    from reference.timing import combine_rounds, interleaved

    for key in todo:
        todo[key] = forward_of(key[0], key[1].spec.name, key[1].height, key[1].batch,
                               key[1].core_tokens, key[1].impl)
    torch.set_num_threads(args.threads)  # the probe's quiet time at the threads it times with
    probe = Probe("cpu")
    probe.settle()
    timings = {key: [] for key in todo}
    per_round = args.min_time / args.rounds
    try:
        for attempt in range(2):
            calls = {k: f for k, f in todo.items()
                     if attempt == 0 or 2 * _quiet(timings[k]) < len(timings[k])
                     or _spread(timings[k]) > UNSTEADY}
            for _, key, t in interleaved(calls, args.rounds, min_run_time_s=per_round,
                                         min_repeats=1, warmup=2 if attempt == 0 else 0,
                                         threads=args.threads, probe=probe):
                timings[key].append(t)
    except KeyboardInterrupt:
        timings = {k: ts for k, ts in timings.items() if _quiet(ts)}
        print(f"interrupted: writing the {len(timings)} configurations with a quiet round",
              file=sys.stderr)
        raise
    finally:
        for key, ts in timings.items():
            if ts:
                record = _record(key[0], key[1], combine_rounds(ts), args.threads)
                writer.write(record)
                print(f"{record.label():45s} {key[0]:9s} {record.time_ms_median:9.1f} ms "
                      f"(spread {record.time_ms_iqr:.1f} over {record.note.split('; ')[1]}, "
                      f"probe x{record.probe_ratio or 0:.2f}) {record.status}", file=sys.stderr)


def _rounds_quiet(record, rounds: int) -> int:
    """The quiet rounds a written row says it had ("k of n rounds quiet" in its note); a row
    timed in one block (before rounds) counts as all `rounds`."""
    import re

    found = re.search(r"(\d+) of \d+ rounds quiet", record.note or "")
    return int(found.group(1)) if found else rounds


def _quiet(timings) -> int:
    return sum(1 for t in timings if t.busy_reason() is None)


def _spread(timings) -> float:
    """The spread between a configuration's rounds over their median (reference.timing.
    combine_rounds: the quiet rounds' IQR), 0 before it has any."""
    from reference.timing import combine_rounds

    if not timings:
        return 0.0
    r = combine_rounds(timings)
    return r.spread_ms / r.median_ms


def _record(source: str, c, r, threads: int) -> Measurement:
    """The measurement row of one configuration's combined rounds (reference.timing.Rounds):
    time_ms_iqr is the spread between rounds."""
    note = f"implementation: {source}; {r.quiet} of {r.rounds} rounds quiet"
    return Measurement(c.spec.name, c.height, c.core_tokens, c.impl, c.batch, c.dtype,
                       "busy" if r.busy else "ok", family=c.spec.family,
                       patch_tokens=c.patch_tokens, device="cpu", device_name=machine_name("cpu"),
                       runtime="eager", framework="transformers" if source == "hf" else "torch",
                       torch_version=torch.__version__, threads=threads,
                       time_ms_median=round(r.median_ms, 4), time_ms_iqr=round(r.spread_ms, 4),
                       time_ms_min=round(r.min_ms, 4), repeats=r.repeats,
                       probe_ms=round(r.probe_ms, 4) if r.probe_ms else None,
                       probe_ratio=round(r.probe_ratio, 4) if r.probe_ratio else None,
                       note=note + (f"; {r.busy}" if r.busy else ""))


def _summary(records, device) -> None:
    """Every timed row against the prediction; and, where the device file and the rows carry the
    machine probe's readings, against the prediction scaled by how much slower the machine ran
    (planners/accuracy.probe_scale): the model's error apart from the machine's drift."""
    import numpy as np

    from planners.accuracy import probe_scale

    rows = [(r, predict_measurement(r, device)) for r in records if r.timed]
    errors = np.array([p / r.time_s - 1 for r, p in rows])
    scales = [probe_scale(r, device) for r, _ in rows]
    scaled = (np.array([p * s / r.time_s - 1 for (r, p), s in zip(rows, scales)])
              if rows and all(scales) else None)
    print(f"\n{'configuration':45s} {'impl.':9s} {'measured':>9s} {'IQR':>5s} {'predicted':>9s} "
          f"{'error':>7s}" + (f" {'probe':>6s} {'scaled':>7s}" if scaled is not None else ""))
    for i, ((r, p), e) in enumerate(zip(rows, errors)):
        source = (r.note or "").split(";")[0].removeprefix("implementation: ")
        extra = f" {scales[i]:6.2f} {scaled[i]:+7.1%}" if scaled is not None else ""
        spread = f"{r.time_ms_iqr / r.time_ms_median:5.1%}" if r.time_ms_iqr is not None else ""
        print(f"{r.label():45s} {source:9s} {r.time_ms_median:9.1f} {spread:>5s} {p * 1e3:9.1f} "
              f"{e:+7.1%}{extra}")
    busy = sum(1 for r in records if r.status == "busy")
    print(f"\nheld-out rows: {len(rows)} ({busy} busy rows left out); {_line(errors)}")
    if scaled is not None:
        print(f"scaled by the probe (the machine's speed then over the profile's, median "
              f"{np.median(scales):.2f}): {_line(scaled)}")
    if len(errors) > 1:  # one factor for the whole run: the machine's speed then, as the rows say
        offset = float(np.median(errors))
        print(f"with the run's median error ({offset:+.1%}) taken out of every row: "
              f"{_line((1 + errors) / (1 + offset) - 1)}")
    if device.latency_interval and len(errors):
        print(inside_interval(errors, device.latency_interval))
    for line in core_slopes(rows):
        print(line)
    print("IQR: the measured time's interquartile range over its median (between the rounds, in "
          "a file timed in rounds; within its one block in one timed before)")
    noisy = unsteady(records)
    if noisy:
        print(noisy)
    if device.calibration_warning():  # what every plan on this device says
        print(f"note: {device.calibration_warning()}")


def core_slopes(rows) -> list[str]:
    """How the time moves with C, measured and predicted, for each model, side and batch timed
    at two core budgets or more (`--cores-sweep`): one line each, the largest C over the
    smallest. `rows`: (record, predicted seconds)."""
    groups: dict[tuple, dict[int, tuple[float, float]]] = {}
    for r, p in rows:
        if r.core_tokens:
            key = (r.model, r.resolution, r.batch, r.impl, r.framework)
            groups.setdefault(key, {})[r.core_tokens] = (r.time_s, float(p))
    lines = []
    for (model, side, batch, impl, _), by_c in groups.items():
        if len(by_c) < 2:
            continue
        low, high = min(by_c), max(by_c)
        (m_low, p_low), (m_high, p_high) = by_c[low], by_c[high]
        lines.append(f"{model} {side}px B={batch} {impl}: C={high} over C={low}: measured "
                     f"x{m_high / m_low:.3f}, predicted x{p_high / p_low:.3f}")
    return lines


def inside_interval(errors, interval) -> str:
    """The share of rows whose measured time over the prediction lies inside the device's
    latency interval (`ms 5-95%`: [lo, hi] multipliers of a prediction); `errors` are
    predicted / measured - 1."""
    import numpy as np

    ratio = 1 / (1 + np.asarray(errors))  # measured / predicted
    inside = (ratio >= interval[0]) & (ratio <= interval[1])
    return (f"inside the device's interval (measured / predicted in x{interval[0]:.3f} ... "
            f"x{interval[1]:.3f}): {inside.mean():.0%} ({int(inside.sum())} of {len(ratio)})")


UNSTEADY = 0.10  # a run whose rows' rounds spread by more than this (IQR over median) is unsteady


def unsteady(records) -> str | None:
    """One line when the rows' rounds spread by a median above UNSTEADY of their median (the
    goal's ±10%): the machine was not quiet while they ran, whatever the probe read, and the
    run's errors say as much about the machine as about the model. None otherwise, or where no
    row says its spread."""
    import numpy as np

    spreads = [r.time_ms_iqr / r.time_ms_median for r in records
               if r.timed and r.time_ms_iqr is not None and r.time_ms_median]
    if not spreads or np.median(spreads) <= UNSTEADY:
        return None
    return (f"unsteady: the rows' rounds spread by a median {np.median(spreads):.1%} of their "
            f"time (above {UNSTEADY:.0%}): the machine was not quiet while this ran (the probe "
            f"does not see all of it); time it again before reading its errors as the model's")


def _agreement(first, second) -> None:
    from planners.accuracy import repeatability

    agreement = repeatability(first, second)
    r, floor = agreement.summary(), agreement.floor()
    print(f"\nthe same {r['rows']} configurations in the two runs, measured against measured: "
          f"mean |difference| {r['mean_abs_difference']:.1%}; within ±10%: "
          f"{r['within_10pct']:.0%}; max {r['max_abs_difference']:.1%}")
    if "probe_normalised" in r:
        n = r["probe_normalised"]
        print(f"normalised by the probe: mean |difference| {n['mean_abs_difference']:.1%}; "
              f"within ±10%: {n['within_10pct']:.0%}; max {n['max_abs_difference']:.1%}")
    print(f"the earlier run as an exact prediction of this one: MAPE {floor['mape']:.1%}, within "
          f"±10% {floor['within_10pct']:.0%}: it {'meets' if floor['meets_goal'] else 'misses'} "
          f"the goal (benchmarks/repeat_floor.py: the floor under any model's error here)")


def _line(errors) -> str:
    import numpy as np

    within = np.abs(errors) <= 0.10
    return (f"MAPE {np.abs(errors).mean():.1%}; within ±10%: {within.mean():.0%} "
            f"({int(within.sum())} of {len(errors)}); max |error| {np.abs(errors).max():.1%}")


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)  # an unknown device, a missing or malformed file: one line, exit 2
