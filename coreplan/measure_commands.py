"""`coreplan validate`: the measured-vs-predicted sweep (torch loads only when it runs)."""

from __future__ import annotations

import math
import sys
from typing import Optional

import typer

from coreplan.app import ModelFile, app, ints, names, sides
from coreplan.output import emit
from costmodel.config import CORE_IMPLS, DTYPE_BYTES
from costmodel.errors import CoreplanError, check_choice
from costmodel.spec import catalog, get_model


@app.command()
def validate(
    models: Optional[str] = typer.Option(None, "--models", help="Comma list (default: catalog)."),
    resolutions: Optional[str] = typer.Option(None, "--resolutions",
                                              help="Comma list; rounded down to each patch."),
    cores: Optional[str] = typer.Option(None, "--cores", help="Core budgets (default 8,64)."),
    impls: Optional[str] = typer.Option(None, "--impls", help="Core impls (default split,masked)."),
    batch: Optional[str] = typer.Option(None, "--batch", help="Batch sizes (default 1,4)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="fp32, bf16, fp16 (comma list)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    quick: bool = typer.Option(False, "--quick", help="Small sweep over every family and impl."),
    out: str = typer.Option("results.csv", "--out", help="CSV written row by row."),
    resume: bool = typer.Option(False, "--resume", help="Skip rows already in --out."),
    time_it: bool = typer.Option(True, "--time/--no-time", help="Run and time real forwards."),
    min_time: float = typer.Option(1.0, "--min-time", help="Timing budget per case, seconds."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (recorded)."),
    compile_flex: bool = typer.Option(False, "--compile-flex", help="torch.compile flex."),
    model_file: Optional[str] = ModelFile(),
) -> None:
    """Measure configurations against the prediction: one CSV row per configuration.

    Exit status 1 if any FLOP count disagrees with the prediction or a case errors.
    """
    from costmodel.measurements import MeasurementWriter
    from reference.validate import FULL, QUICK, Options, plan_cases

    defaults = QUICK if quick else {**FULL, "models": tuple(catalog())}
    check_choice("device", device, ("cpu", "cuda"))
    specs = [get_model(m, model_file) for m in (names(models, "--models") if models
                                                 else defaults["models"])]
    impl_list = names(impls, "--impls") if impls else list(defaults["impls"])
    for impl in impl_list:
        check_choice("impl", impl, CORE_IMPLS)
    dtypes = names(dtype, "--dtype") if dtype else list(defaults["dtypes"])
    for d in dtypes:
        check_choice("dtype", d, tuple(k for k in DTYPE_BYTES if k != "tf32"))
    if not (math.isfinite(min_time) and 0 < min_time <= 3600):
        raise CoreplanError(f"--min-time must be a number of seconds in (0, 3600], got {min_time}")
    if threads is not None and threads <= 0:
        raise CoreplanError(f"--threads must be positive, got {threads}")
    _check_device(device)
    cases = plan_cases(specs, sides(resolutions) if resolutions else defaults["resolutions"],
                       ints(cores, "--cores") if cores else defaults["cores"], impl_list,
                       ints(batch, "--batch") if batch else defaults["batches"], dtypes, device)
    options = Options(time_it=time_it, min_run_time_s=0.05 if quick and min_time == 1.0 else min_time,
                      threads=threads, compile_flex=compile_flex)
    results = MeasurementWriter(out, resume)
    _run_sweep(cases, results, options)


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CoreplanError("--device cuda: no CUDA device is available here")


def _run_sweep(cases, results, options) -> None:
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
            sweep(cases, results, options, on_row)
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
        ("oom", s.oom), ("errors", s.errors), ("worst activation-memory error", worst))]
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
