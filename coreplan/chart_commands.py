"""`coreplan chart` and `coreplan report` (altair and pandas load only when they run)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from coreplan.app import DeviceFile, ModelFile, Runtime, app, names, sides, square
from coreplan.output import check_new, check_out
from costmodel.errors import CoreplanError, check_choice
from costmodel.spec import get_model

KINDS = ("scaling", "crossover", "validation", "roofline", "frontier", "elastic")
# the committed CPU data, found from the installed package (not from the working directory)
DEFAULT_MEASUREMENTS = str(Path(__file__).resolve().parents[1]
                           / "data/measurements/cpu-epyc-2core-2026-11-24.csv")


@app.command()
def chart(kind: str,
          out: str = typer.Option(..., "--out", help="FILE.html (offline), .png or .svg."),
          models: str = typer.Option("veca-base,dinov3-base", "--models", help="scaling: models."),
          model: str = typer.Option("veca-base", "--model", help="Core model (other kinds)."),
          versus: Optional[str] = typer.Option(None, "--versus", help="crossover: dense model."),
          devices: str = typer.Option("h100-sxm,l4,jetson-agx-orin", "--devices", help="frontier."),
          device: Optional[str] = typer.Option(None, "--device", help="roofline, elastic, validation."),
          resolution: str = typer.Option("1024", "--resolution", help="Side in px."),
          resolutions: str = typer.Option("224,256,384,512,768,1024,1536,2048", "--resolutions"),
          cores: Optional[int] = typer.Option(None, "--cores", help="roofline: C (default max)."),
          batch: int = typer.Option(1, "--batch"), dtype: str = typer.Option("bf16", "--dtype"),
          quantity: Optional[str] = typer.Option(None, "--quantity",
                                                 help="scaling: gflops|memory_gb; validation: time|memory."),
          measurements: str = typer.Option(DEFAULT_MEASUREMENTS, "--measurements"),
          linear: bool = typer.Option(False, "--linear", help="scaling: linear y axis."),
          force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
          device_file: Optional[str] = DeviceFile(),
          model_file: Optional[str] = ModelFile()) -> None:
    """Render one chart: scaling, crossover, validation, roofline, frontier or elastic."""
    from planners.devices import get_device

    check_choice("chart kind", kind, KINDS)
    check_out(out)
    check_new(out, force)
    from coreplan import charts
    from costmodel.config import configure
    from planners.planner import baseline_model

    spec = get_model(model, model_file)
    side = square(resolution, "chart")
    if kind == "scaling":
        q = check_choice("quantity", quantity or "gflops", ("gflops", "memory_gb"))
        check_choice("dtype", dtype, ("fp32", "bf16", "fp16"))
        frame = charts.scaling_frame([get_model(m, model_file) for m in names(models, "--models")],
                                     sides(resolutions), batch, dtype)
        result = charts.scaling_chart(frame, q, log=not linear)
    elif kind == "crossover":
        dense = get_model(versus, model_file) if versus else baseline_model(spec)
        if not spec.is_core or dense is None or dense.is_core:
            raise CoreplanError("crossover needs a core --model and a dense --versus")
        result = charts.crossover_chart(charts.crossover_frame(spec, dense))
    elif kind == "validation":
        q = {"time": "time (ms)", "memory": "activation peak (MB)"}[
            check_choice("quantity", quantity or "time", ("time", "memory"))]
        frame = charts.validation_frame(measurements, get_device(device or "cpu-2core", device_file))
        result = charts.validation_chart(frame, q)
    elif kind == "roofline":
        dev = get_device(device or "h100-sxm", device_file)
        c = configure(spec, spec.round_resolution(side), cores=cores, batch=batch, dtype=dtype)
        result = charts.roofline_chart(charts.roofline_frame(c, dev), dev, dtype)
    elif kind == "frontier":
        devs = [get_device(d, device_file) for d in names(devices, "--devices")]
        result = charts.frontier_chart(charts.frontier_frame(spec, devs, resolution=side,
                                                             batch=batch, dtype=dtype), spec.name)
    else:
        if not spec.is_core:
            raise CoreplanError(f"the elastic chart needs a core model; {spec.name} is dense")
        dev = get_device(device or "h100-sxm", device_file)
        result = charts.elastic_chart(charts.elastic_frame(spec, dev, resolution=side,
                                                           batch=batch, dtype=dtype))
    print(charts.save(result, out))


@app.command()
def report(out: str = typer.Option("report.html", "--out"),
           models: str = typer.Option("veca-base,dinov3-base", "--models"),
           devices: str = typer.Option("h100-sxm,l4,jetson-agx-orin", "--devices"),
           resolution: str = typer.Option("1024", "--resolution", help="Side in px."), batch: int = typer.Option(1, "--batch"),
           dtype: str = typer.Option("bf16", "--dtype"),
           latency_ms: Optional[float] = typer.Option(None, "--latency-ms"),
           memory_gb: Optional[float] = typer.Option(None, "--memory-gb"),
           measurements: str = typer.Option(DEFAULT_MEASUREMENTS, "--measurements"),
           runtime: str = Runtime(),
           force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
           device_file: Optional[str] = DeviceFile(),
           model_file: Optional[str] = ModelFile()) -> None:
    """One self-contained HTML page (offline) with the key tables and charts."""
    from planners.devices import get_device
    from planners.planner import Budgets

    if Path(out).suffix.lower() != ".html":
        raise CoreplanError(f"--out {out}: the report is HTML; use a .html file name")
    check_out(out)
    check_new(out, force)
    from coreplan.report import build_report

    text = build_report([get_model(m, model_file) for m in names(models, "--models")],
                        [get_device(d, device_file) for d in names(devices, "--devices")],
                        resolution=square(resolution, "report"), batch=batch, dtype=dtype,
                        budgets=Budgets(latency_ms, memory_gb), measurements=measurements,
                        runtime=runtime)
    try:
        Path(out).write_text(text)
    except OSError as err:
        raise CoreplanError(f"cannot write {out}: {err.strerror}") from None
    print(out)
