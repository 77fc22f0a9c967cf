"""`coreplan validate`, `profile` and `recheck`: measuring this machine (torch loads only when they
run)."""

from __future__ import annotations

import math
import os
import sys
from typing import Optional

import typer

from coreplan.app import app, DeviceFile, ints, ModelFile, names, option, sides
from coreplan.output import emit
from costmodel.attention import impls as attention_impls
from costmodel.config import DTYPE_BYTES
from costmodel.errors import CoreplanError, check_choice
from costmodel.spec import catalog, get_model


@app.command()
def validate(
    models: Optional[str] = option("models", None, help="Comma list (default: catalog)."),
    resolutions: Optional[str] = option("resolutions", None, help="Comma list; rounded down to each patch."),
    cores: Optional[str] = option("cores", None, help="Core budgets (default 8,64)."),
    impls: Optional[str] = option("impls", None, help="Core impls (default split,masked)."),
    batch: Optional[str] = option("batch", None, help="Batch sizes (default 1,4)."),
    dtype: Optional[str] = option("dtype", None, help="fp32, bf16, fp16 (comma list)."),
    device: str = option("device", "cpu", help="cpu or cuda."),
    quick: bool = option("quick", False, help="Small sweep over every family and impl."),
    out: str = option("out", "results.csv", help="CSV written row by row."),
    resume: bool = option("resume", False, help="Skip rows already in --out."),
    time_it: bool = option("time_it", True, help="Run and time real forwards.", switch=True),
    min_time: float = option("min_time", 1.0, help="Timing budget per case, seconds."),
    repeats: int = option("repeats", 5, help="At least this many timed forwards per case."),
    warmup: int = option("warmup", 2, help="Untimed forwards per case first."),
    retry_busy: bool = option("retry_busy", False, help="With --resume: re-measure rows recorded as busy."),
    footprint: Optional[bool] = option("footprint", None, help="Measure the process footprint in a fresh "
                                                  "worker per row (CPU; default: on unless "
                                                  "--quick).", switch=True),
    threads: Optional[int] = option("threads", None, help="CPU threads (recorded)."),
    compile_flex: bool = option("compile_flex", False, help="torch.compile flex."),
    model_file: Optional[str] = ModelFile(),
) -> None:
    """Measure configurations against the prediction: one CSV row per configuration.

    Exit status 1 if any FLOP count disagrees with the prediction or a case errors.
    """
    from costmodel.measurements import MeasurementWriter
    from reference.validate import FULL, QUICK, Options, plan_cases

    defaults = QUICK if quick else {**FULL, "models": tuple(catalog())}
    check_choice("device", device, ("cpu", "cuda"))
    specs = [get_model(m, model_file) for m in (names(models, "models") if models
                                                 else defaults["models"])]
    impl_list = names(impls, "impls") if impls else list(defaults["impls"])
    for impl in impl_list:
        check_choice("impl", impl, attention_impls("core"))
    dtypes = names(dtype, "dtype") if dtype else list(defaults["dtypes"])
    for d in dtypes:
        check_choice("dtype", d, tuple(k for k in DTYPE_BYTES if k != "tf32"))
    if not (math.isfinite(min_time) and 0 < min_time <= 3600):
        raise CoreplanError(f"--min-time must be a number of seconds in (0, 3600], got {min_time}")
    if threads is not None and threads <= 0:
        raise CoreplanError(f"--threads must be positive, got {threads}")
    if repeats < 1 or warmup < 0:
        raise CoreplanError("--repeats must be at least 1 and --warmup at least 0")
    if threads is not None and threads > (os.cpu_count() or threads):
        print(f"coreplan: warning: --threads {threads} exceeds this machine's {os.cpu_count()} "
              f"cores; timings will be oversubscribed", file=sys.stderr)
    _check_device(device)
    cases = plan_cases(specs, sides(resolutions) if resolutions else defaults["resolutions"],
                       ints(cores, "cores") if cores else defaults["cores"], impl_list,
                       ints(batch, "batch") if batch else defaults["batches"], dtypes, device)
    options = Options(time_it=time_it, min_run_time_s=0.05 if quick and min_time == 1.0 else min_time,
                      min_repeats=repeats, warmup=warmup, threads=threads, compile_flex=compile_flex,
                      footprint=(not quick) if footprint is None else footprint)
    results = MeasurementWriter(out, resume)
    if results.repaired:
        print(f"coreplan: note: {results.repaired}", file=sys.stderr)
    _run_sweep(cases, results, options, retry_busy)


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CoreplanError("--device cuda: no CUDA device is available here")


def _run_sweep(cases, results, options, retry_busy: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.console import Console

    from reference.validate import summarize, sweep

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    interrupted = False
    _sigterm_as_interrupt()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("validate", total=len(cases))

        def on_row(case, record):
            status = "resumed" if record is None else f"{record.status} {record.flops_match or ''}"
            progress.update(task, advance=1, description=f"{case.label()}: {status}")
        try:
            sweep(cases, results, options, on_row, retry_busy)
        except KeyboardInterrupt:
            interrupted = True
    _report(summarize(results.records), results, interrupted)


def _sigterm_as_interrupt() -> None:
    """A terminated sweep (kill, a batch system's time limit) stops like Ctrl-C: summary, exit 130."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _report(s, results, interrupted: bool) -> None:
    worst = "n/a" if s.worst_memory_error is None else \
        f"{s.worst_memory_error:+.1%} ({s.worst_memory_case})"
    rows = [{"quantity": k, "value": v} for k, v in (
        ("rows in file", s.rows), ("status ok", s.ok), ("FLOPs exact (both counters)", s.exact),
        ("FLOPs mismatched", s.mismatched), ("uncountable (flex)", s.uncountable),
        ("oom", s.oom), ("errors", s.errors), ("busy machine (rerun with --resume --retry-busy)",
                                               s.busy),
        ("worst activation-memory error", worst))]
    emit("table", document=None, rows=rows, title=f"validate summary: {results.path}")
    for r in results.records:
        if r.flops_match == "MISMATCH" or r.status.startswith("error"):
            print(f"  {r.label()}: {r.status} {r.flops_match or ''} {r.note or ''}",
                  file=sys.stderr)
    if interrupted:
        print(f"coreplan: interrupted; finished rows are in {results.path} (--resume continues)",
              file=sys.stderr)
        raise typer.Exit(130)
    if s.mismatched or s.errors:
        raise typer.Exit(1)


@app.command()
def profile(
    name: str = option("name", "local", help="Device name for the file (default: local, which "
                                             "--device local finds)."),
    out: Optional[str] = option("out", None, help="Device file to write (TOML); a copy is kept "
                                                  "for --device local either way."),
    device: str = option("device", "cpu", help="cpu or cuda."),
    dtype: str = option("dtype", "fp32", help="fp32, bf16 or fp16."),
    threads: Optional[int] = option("threads", None, help="CPU threads (recorded)."),
    budget_s: float = option("budget_s", 300.0, help="Seconds for all of it: op times, "
                                                     "calibration and footprint (more: more "
                                                     "accurate)."),
    check: Optional[str] = option("check", None, help="A validate CSV to predict with the new "
                                                      "profile."),
    force: bool = option("force", False, help="Replace --out if it exists."),
    calibrate: bool = option("calibrate", True, help="Time a few whole models and fit the "
                                                     "efficiencies to them.", switch=True),
    footprint: bool = option("footprint", True, help="Also measure the process footprint terms "
                                                     "(CPU; torch and transformers).",
                             switch=True),
    model_file: Optional[str] = ModelFile(),
) -> None:
    """Measure this machine and write a calibrated device file that plan and simulate use.

    Op times, then a few whole models timed and fitted (the held-out error is printed), then the
    process footprint. Use it as `--device local`, or `--device NAME --device-file FILE`.
    Interrupted, it writes nothing.
    """
    from planners.devices import check_device_name, check_output_file

    check_device_name(name)
    check_choice("device", device, ("cpu", "cuda"))
    check_choice("dtype", dtype, tuple(k for k in DTYPE_BYTES if k != "tf32"))
    if not (math.isfinite(budget_s) and 1 <= budget_s <= 3600):
        raise CoreplanError(f"--budget-s must be seconds in [1, 3600], got {budget_s}")
    if threads is not None and threads <= 0:
        raise CoreplanError(f"--threads must be positive, got {threads}")
    cpus = os.cpu_count() or 1
    if threads is not None and device == "cpu" and threads > cpus:
        raise CoreplanError(f"--threads {threads}: this machine has {cpus} CPUs; a profile "
                            f"measures the threads a deployment would use")
    if out:  # before the minutes of measuring, not after
        check_output_file(out, force)
    if check:  # the file it will be checked on must read, before measuring too
        from costmodel.measurements import read_measurements

        if not any(m.timed for m in read_measurements(check)):
            raise CoreplanError(f"--check {check}: no timed rows to predict")
    try:
        _check_device(device)
        found = _profile_with_progress(name, device, dtype, threads, budget_s, calibrate,
                                       footprint)
    except KeyboardInterrupt:  # at any point before the file is written: nothing is written
        print("coreplan: interrupted; no device file written", file=sys.stderr)
        raise typer.Exit(130)
    run = found.curves
    partial = run.measured < run.skipped  # most points unmeasured: not this machine's profile
    if partial and not out:
        raise CoreplanError(
            f"measured {run.measured} of {run.measured + run.skipped} op points within "
            f"--budget-s {budget_s:g}: too few to stand for this machine; nothing written (the "
            f"default 300 s measures them on 2 cores; --out writes a partial file)")
    written = _write_profile(found, out, save=not partial)
    if partial:
        print(f"coreplan: note: measured {run.measured} of {run.measured + run.skipped} op "
              f"points: written to --out only, not saved as this machine's profile "
              f"(--device local keeps the one it had)", file=sys.stderr)
    print(f"wrote {', '.join(map(str, written))}: {run.measured} op points ({run.skipped} "
          f"skipped); calibration: {found.calibration_note}; footprint: "
          f"{found.footprint_rows} processes; {found.timing()}")
    from planners.devices import this_machine

    local = run.profile.threads == this_machine()[1]  # what --device local looks for
    uses = (["--device local"] if local else []) + (
        [f"--device {name} --device-file {written[0]}"] if out or not local else [])
    print(f"use it as {' or '.join(uses)}")
    for note in run.notes:
        print(f"coreplan: note: {note}", file=sys.stderr)
    if found.footprint_note:
        print(f"coreplan: note: footprint: {found.footprint_note} (a larger --budget-s "
              f"measures them)", file=sys.stderr)
    if run.busy_note():
        print(f"coreplan: warning: {run.busy_note()}", file=sys.stderr)
    if found.device.calibration_warning():
        print(f"coreplan: warning: {found.device.calibration_warning()}", file=sys.stderr)
    if check:
        _print_check(check, found.device, model_file)


@app.command()
def recheck(
    device: str = option("device", "local", help="A profiled CPU device (default: local, this "
                                                 "machine's saved profile)."),
    device_file: Optional[str] = DeviceFile(),
    budget_s: float = option("budget_s", 60.0, help="Seconds for building and timing the "
                                                    "models."),
) -> None:
    """Time the profile's calibration models now and say whether the profile still holds.

    A shared machine's speed wanders: when the models run beyond ±5% of their time when profiled
    (of the device's predictions, for a file without those times), plans on it are off by as
    much while it lasts. Nothing is written.
    """
    from planners.devices import get_device
    from planners.recheck import Recheck

    spec = get_device(device, device_file)
    if spec.kind != "cpu" or spec.profile is None:
        raise CoreplanError(f"{spec.name} has no op profile of a CPU: recheck holds a "
                            f"`coreplan profile` device against this machine")
    if not (math.isfinite(budget_s) and 10 <= budget_s <= 3600):
        raise CoreplanError(f"--budget-s must be seconds in [10, 3600], got {budget_s}")
    threads = spec.profile.threads
    cpus = os.cpu_count() or 1
    if threads and threads > cpus:
        raise CoreplanError(f"{spec.name} was profiled with {threads} threads; this machine has "
                            f"{cpus} CPUs")
    import reference.own_device as own
    from reference.machine import process_age_s

    def on_round(done, total):
        print(f"recheck: round {done + 1} of {total}: {len(own.CALIBRATION)} whole models",
              file=sys.stderr, flush=True)

    try:
        records, rounds, drift = own.recheck(threads=threads, on_round=on_round,
                                             budget_s=max(5.0, budget_s - process_age_s()))
    except KeyboardInterrupt:
        print("coreplan: interrupted", file=sys.stderr)
        raise typer.Exit(130)
    found = Recheck.of(spec, records)
    rows = [{"configuration": r.label(), "measured ms": round(r.time_ms_median, 2),
             "profiled ms": round(t, 2) if t is not None else "",
             "predicted ms": round(p * 1e3, 2), "error": f"{e:+.1%}"}
            for r, t, p, e in zip(found.rows, found.profiled_ms, found.predicted_s, found.errors)]
    moved = (f"; its {rounds} rounds moved x{drift[0]:.3f} to x{drift[1]:.3f} (5-95%)"
             if drift else "")
    emit("table", document=None, rows=rows, title=f"{spec.name} against this machine now "
         f"({rounds} rounds)", caption=found.verdict() + moved)
    busy = len(records) - len(found.rows)
    for note in spec.notes() + ([f"{busy} model(s) busy in every round, left out"] if busy
                                else []):
        print(f"coreplan: note: {note}", file=sys.stderr)


def _write_profile(found, out, save: bool = True):
    """The device file, at --out (if given) and, if `save`, as this machine's saved profile."""
    from planners.devices import device_toml, local_profiles, machine_key, write_device_file

    run = found.curves
    comments = (f"Measured by `coreplan profile` in {found.seconds:.0f} s: {run.measured} op "
                f"points, {run.skipped} skipped (over the per-call cap or the budget); "
                f"calibration: {found.calibration_note}; footprint: {found.footprint_rows} "
                f"processes; {found.timing()}.",
                *([f"Footprint: {found.footprint_note}."] if found.footprint_note else []),
                *([f"Warning: {run.busy_note()}."] if run.busy_note() else []),
                *([f"Warning: {found.device.calibration_warning()}."]
                  if found.device.calibration_warning() else []),
                *(f"Note: {n}." for n in run.notes))
    text = device_toml(found.device, comments=comments,
                       calibrated_from="coreplan profile" if found.calibration else None)
    from planners.devices import this_machine

    cpu, _, version = this_machine()
    written = []
    if save:
        saved = local_profiles() / machine_key(cpu, run.profile.threads, version)
        saved.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_device_file(saved, text, force=True))
    if out:
        written.insert(0, write_device_file(out, text, force=True))
    return written


# a model (with its profiled forward) or a footprint process started before its stage's deadline
# finishes past it: a profile of 2026-12-01 (-late-c) took 298 s of stages after about 3 s of
# start-up, 300.96 s wall where its budget was 300
FINISH_RESERVE_S = 3.0


def _profile_with_progress(name, device, dtype, threads, budget_s, calibrate, footprint):
    """reference.own_device.measure, with progress: a bar on a terminal, plain lines when the
    output is redirected. The budget counts from the process's start: the imports before it
    (about 3 s on 2 cores) are part of the wall time a user waits; and FINISH_RESERVE_S is kept
    for what runs past a stage's deadline and for writing the file."""
    from reference.machine import process_age_s
    from reference.own_device import measure

    budget_s = max(1.0, budget_s - process_age_s() - FINISH_RESERVE_S)

    if not sys.stderr.isatty():
        def on_point(done, total, point):
            if done % 50 == 0:
                print(f"profile: op times {done}/{total}", file=sys.stderr, flush=True)

        def on_stage(stage, detail):
            print(f"profile: {stage}: {detail}", file=sys.stderr, flush=True)

        return measure(name, device=device, dtype=dtype, threads=threads, budget_s=budget_s,
                       calibrate=calibrate, footprint=footprint, on_stage=on_stage,
                       on_point=on_point)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("profile", total=None)

        def on_point(done, total, point):
            progress.update(task, completed=done, total=total,
                            description=f"{point.kind} {point.key}")

        def on_stage(stage, detail):
            progress.update(task, completed=0, total=None, description=f"{stage}: {detail}")
        return measure(name, device=device, dtype=dtype, threads=threads, budget_s=budget_s,
                       calibrate=calibrate, footprint=footprint, on_stage=on_stage,
                       on_point=on_point)


def _print_check(path, spec, model_file=None) -> None:
    from planners.accuracy import prediction_errors

    report = prediction_errors(path, spec, model_file=model_file)
    emit("table", document=None, rows=report.table(), title=f"{spec.name} predicting {path}",
         caption=report.caption())
