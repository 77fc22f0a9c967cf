"""Commands over reference/ and planners/ (imported lazily: torch loads only when they run)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from coreplan.cli import _format, _ints, _names, app
from coreplan.output import emit
from costmodel.config import CORE_IMPLS, DTYPE_BYTES, check_choice
from costmodel.errors import CoreplanError
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
    model_file: Optional[str] = typer.Option(None, "--model-file"),
) -> None:
    """Measure configurations against the prediction: one CSV row per configuration.

    Exit status 1 if any FLOP count disagrees with the prediction or a case errors.
    """
    from reference.validate import FULL, QUICK, Options, ResultsFile, plan_cases

    defaults = QUICK if quick else {**FULL, "models": tuple(catalog())}
    check_choice("device", device, ("cpu", "cuda"))
    specs = [get_model(m, model_file) for m in (_names(models, "--models") if models
                                                 else defaults["models"])]
    impl_list = _names(impls, "--impls") if impls else list(defaults["impls"])
    for impl in impl_list:
        check_choice("impl", impl, CORE_IMPLS)
    dtypes = _names(dtype, "--dtype") if dtype else list(defaults["dtypes"])
    for d in dtypes:
        check_choice("dtype", d, tuple(k for k in DTYPE_BYTES if k != "tf32"))
    if min_time <= 0 or (threads is not None and threads <= 0):
        raise CoreplanError("--min-time and --threads must be positive")
    _check_device(device)
    cases = plan_cases(specs, _ints(resolutions, "--resolutions") if resolutions else defaults["resolutions"],
                       _ints(cores, "--cores") if cores else defaults["cores"], impl_list,
                       _ints(batch, "--batch") if batch else defaults["batches"], dtypes, device)
    options = Options(time_it=time_it, min_run_time_s=0.05 if quick and min_time == 1.0 else min_time,
                      threads=threads, compile_flex=compile_flex)
    results = ResultsFile(out, resume)
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

        def on_row(case, row):
            status = "resumed" if row is None else f"{row['status']} {row.get('flops_match', '')}"
            progress.update(task, advance=1, description=f"{case.label()}: {status}")
        try:
            sweep(cases, results, options, on_row)
        except KeyboardInterrupt:
            interrupted = True
    _report(summarize(results.rows), results, interrupted)


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
    for row in results.rows:
        if row.get("flops_match") == "MISMATCH" or str(row.get("status", "")).startswith("error"):
            print(f"  {row['model']} {row['resolution']} C={row['core_tokens']} {row['impl']} "
                  f"B={row['batch']}: {row['status']} {row.get('flops_match', '')} "
                  f"{row.get('note', '')}", file=sys.stderr)
    if interrupted:
        print(f"coreplan: interrupted; finished rows are in {results.path} (--resume continues)",
              file=sys.stderr)
        raise typer.Exit(130)
    if s.mismatched or s.errors:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- planners
DeviceFile = typer.Option(None, "--device-file", help="TOML file with [devices.NAME] tables.")


@app.command()
def devices(device_file: Optional[str] = DeviceFile, fmt: str = typer.Option("table", "--format")) -> None:
    """List the device catalog (dense peaks, bandwidth, capacity, efficiencies, sources)."""
    from dataclasses import asdict

    from planners.devices import device_catalog, load_devices

    found = dict(device_catalog())
    if device_file:
        found.update(load_devices(device_file))
    rows = [{"device": d.name, "kind": d.kind,
             **{f"{k} TFLOP/s": d.peak_flops_per_s.get(k, 0) / 1e12 for k in ("fp32", "bf16")},
             "GB/s": d.memory_bandwidth_bytes_per_s / 1e9, "GB": d.memory_capacity_bytes / 1e9,
             "launch us": d.kernel_launch_overhead_s * 1e6,
             "calibrated": "yes" if d.calibrated else "no"} for d in found.values()]
    emit(_format(fmt), document=[asdict(d) for d in found.values()], rows=rows,
         title="coreplan device catalog (dense peaks; sources: --format json)")


@app.command()
def simulate(model: str, device: str = typer.Option(..., "--device"),
             resolution: str = typer.Option(..., "--resolution"),
             cores: Optional[int] = typer.Option(None, "--cores"), batch: int = typer.Option(1, "--batch"),
             dtype: str = typer.Option("bf16", "--dtype"), impl: Optional[str] = typer.Option(None, "--impl"),
             device_file: Optional[str] = DeviceFile, model_file: Optional[str] = typer.Option(None, "--model-file"),
             fmt: str = typer.Option("table", "--format")) -> None:
    """Per-op roofline of one configuration: time, intensity and the bound each op hits."""
    from dataclasses import asdict

    from costmodel.config import configure
    from planners.devices import get_device
    from planners.roofline import simulate as run

    fmt = _format(fmt)
    dev = get_device(device, device_file)
    c = configure(get_model(model, model_file), resolution, cores=cores, batch=batch, impl=impl, dtype=dtype)
    sim = run(c, dev)
    rows = [{"op": o.path, "class": o.op_class, "GFLOP": o.flops / 1e9, "MB": o.bytes / 1e6,
             "FLOP/B": o.intensity_flop_per_byte, "bound": o.bound, "time_us": o.time_s * 1e6,
             "share": o.time_s / sim.latency_s} for o in sim.ops]
    share = sim.bound_share()
    emit(fmt, document={**asdict(sim), "bound_share": share}, rows=rows,
         title=f"{c.spec.name} {c.height}px C={c.core_tokens} B={c.batch} {dtype} on {dev.name}: "
               f"{sim.latency_s * 1e3:.4g} ms (roofline floor {sim.floor_s * 1e3:.4g} ms)",
         caption=f"time share: compute-bound {share['compute']:.0%}, memory-bound "
                 f"{share['memory']:.0%}, launch overhead {share['overhead']:.0%}")


@app.command()
def calibrate(measurements: str = typer.Option(..., "--measurements", help="validate CSV."),
              device: str = typer.Option(..., "--device"), device_file: Optional[str] = DeviceFile,
              out: Optional[str] = typer.Option(None, "--out", help="Write a calibrated device file."),
              fmt: str = typer.Option("table", "--format")) -> None:
    """Fit per-op-class efficiencies and launch overhead to measured times; held-out error."""
    from pathlib import Path

    from planners.calibrate import calibrate as run, profile_toml
    from planners.devices import get_device

    fmt = _format(fmt)
    cal = run(measurements, get_device(device, device_file))
    if out:
        try:
            Path(out).write_text(profile_toml(cal))
        except OSError as err:
            raise CoreplanError(f"cannot write {out}: {err.strerror}") from None
    h = cal.holdout
    rows = [{"quantity": f"efficiency {k}", "value": v} for k, v in cal.fit.efficiency.items()]
    rows += [{"quantity": "launch overhead (us)", "value": cal.fit.overhead_s * 1e6},
             {"quantity": "held-out rows", "value": h.rows},
             {"quantity": "held-out MAPE", "value": f"{h.mape:.1%}"},
             {"quantity": "held-out max |error|", "value": f"{h.max_abs_error:.1%}"},
             {"quantity": "held-out within 10%", "value": f"{h.within_10pct:.1%}"},
             {"quantity": "latency interval (5-95%)", "value": f"x{h.interval[0]:.3f} .. x{h.interval[1]:.3f}"}]
    emit(fmt, document=cal.to_dict(), rows=rows,
         title=f"calibration of {cal.device.name} on {measurements}",
         caption=f"held out by resolution group {list(h.groups)} px (leave one group out)"
                 + (f"; wrote {out}" if out else ""))


def _floats(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise CoreplanError(f"{flag}: expected a number, got {text!r}") from None


@app.command()
def plan(model: str, device: str = typer.Option(..., "--device", help="Device name(s), comma list."),
         resolution: Optional[int] = typer.Option(None, "--resolution", help="Side in px."),
         batch: int = typer.Option(1, "--batch"), dtype: str = typer.Option("bf16", "--dtype"),
         latency_ms: Optional[str] = typer.Option(None, "--latency-ms"),
         memory_gb: Optional[str] = typer.Option(None, "--memory-gb", help="Decimal GB."),
         throughput: Optional[str] = typer.Option(None, "--throughput", help="Minimum img/s."),
         cores_allowed: Optional[str] = typer.Option(None, "--cores-allowed"),
         solve: str = typer.Option("cores", "--solve", help="cores, resolution or batch."),
         cores: Optional[int] = typer.Option(None, "--cores", help="C for --solve resolution|batch."),
         demand: Optional[str] = typer.Option(None, "--demand", help="Images/s to serve."),
         versus: Optional[str] = typer.Option(None, "--versus", help="Dense baseline model."),
         impl: Optional[str] = typer.Option(None, "--impl"),
         device_file: Optional[str] = DeviceFile,
         model_file: Optional[str] = typer.Option(None, "--model-file"),
         fmt: str = typer.Option("table", "--format", help="table or json.")) -> None:
    """Largest core budget (or resolution, or batch) meeting every budget, per device.

    Exit status 3 if a device has no feasible answer (one line says the smallest violation and the
    nearest feasible alternative).
    """
    from planners.devices import get_device
    from planners.planner import Budgets, infeasible_message
    from planners.planner import plan as make_plan

    fmt = check_choice("format", fmt, ("table", "json"))
    spec = get_model(model, model_file)
    budgets = Budgets(_floats(latency_ms, "--latency-ms"), _floats(memory_gb, "--memory-gb"),
                      _floats(throughput, "--throughput"))
    devs = [get_device(d, device_file) for d in _names(device, "--device")]
    fixed = dict(cores_allowed=_ints(cores_allowed, "--cores-allowed") if cores_allowed else None,
                 impl=impl)
    base = get_model(versus, model_file) if versus else None
    if base is not None and base.is_core:
        raise CoreplanError(f"--versus takes a dense model; {base.name} is a core model")
    if batch <= 0:
        raise CoreplanError(f"--batch must be positive, got {batch}")
    plans = [make_plan(spec, d, resolution=resolution, batch=batch, dtype=dtype, budgets=budgets,
                       solve=solve, cores=cores, demand_img_per_s=_floats(demand, "--demand"),
                       versus=base, **fixed) for d in devs]
    if fmt == "json":
        import json

        docs = [p.to_dict() for p in plans]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        for p, d in zip(plans, devs):
            _plan_table(p, d)
    failed = [(p, d) for p, d in zip(plans, devs) if p.chosen is None]
    for p, d in failed:
        print(f"coreplan: {infeasible_message(p, spec, d, **fixed)}", file=sys.stderr)
    if failed:
        raise typer.Exit(3)


def _plan_table(p, device) -> None:
    from planners.planner import GB, describe

    def row(c, model):
        interval = (f"{c.latency_ms_interval[0]:.3g}-{c.latency_ms_interval[1]:.3g}"
                    if c.latency_ms_interval else "")
        return {"model": model, "C": c.cores or "", "px": c.resolution, "batch": c.batch,
                "GFLOP": c.flops / 1e9, "latency ms": c.latency_ms, "interval": interval,
                "memory GB": c.memory_bytes / GB, "img/s": c.throughput_img_per_s,
                "feasible": "yes" if c.feasible else "no", "binding": c.binding,
                "chosen": "<-" if c == p.chosen else ""}

    rows = [row(c, p.model) for c in p.candidates]
    if p.baseline:
        rows.append({**row(p.baseline, p.baseline_model), "chosen": "dense"})
    limits = ", ".join(f"{k}={v:g}" for k, v in vars(p.budgets).items() if v is not None) or "none"
    if p.chosen:
        what = {"cores": f"C={p.chosen.cores}" if p.chosen.cores else f"{p.model} as given",
                "resolution": f"{p.chosen.resolution} px", "batch": f"batch {p.chosen.batch}"}[p.solve]
        caption = f"chosen: {what} (binding: {describe(p.chosen, p.budgets, device)})"
    else:
        caption = "chosen: none feasible"
    if p.devices_needed:
        caption += f"; devices for {p.demand_img_per_s:g} img/s: {p.devices_needed}"
    emit("table", document=None, rows=rows,
         title=f"{p.model} on {device.name}: solve {p.solve}, {p.dtype}, budgets: {limits}",
         caption=caption)
