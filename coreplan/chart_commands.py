"""`coreplan chart` and `coreplan report` (altair and pandas load only when they run)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from coreplan.app import app, DeviceFile, ModelFile, names, option, Runtime, sides, square
from coreplan.output import check_new, check_out
from costmodel.errors import CoreplanError, check_choice
from costmodel.spec import get_model

# the committed CPU data, found from the installed package (not from the working directory)
DEFAULT_MEASUREMENTS = str(Path(__file__).resolve().parents[1]
                           / "data/measurements/cpu-epyc-2core-2026-11-24.csv")


@app.command()
def chart(kind: str,
          out: str = option("out", ..., help="FILE.html (offline), .png or .svg."),
          models: str = option("models", "veca-base,dinov3-base", help="scaling: models."),
          model: str = option("model", "veca-base", help="Core model (other kinds)."),
          versus: Optional[str] = option("versus", None, help="crossover: dense model."),
          devices: str = option("devices", "h100-sxm,l4,jetson-agx-orin", help="frontier."),
          device: Optional[str] = option("device", None, help="roofline, elastic, validation."),
          resolution: str = option("resolution", "1024", help="Side in px."),
          resolutions: str = option("resolutions", "224,256,384,512,768,1024,1536,2048", help="scaling, crossover: sides in px, comma list."),
          cores: Optional[int] = option("cores", None, help="roofline: C (default max)."),
          batch: int = option("batch", 1, help="Images per batch."),
          dtype: str = option("dtype", "bf16", help="fp32, bf16 or fp16."),
          quantity: Optional[str] = option("quantity", None, help="scaling: gflops|memory_gb; validation: time|memory."),
          measurements: str = option("measurements", DEFAULT_MEASUREMENTS, help="validate CSV(s) of the validation chart, comma list."),
          linear: bool = option("linear", False, help="scaling: linear y axis."),
          force: bool = option("force", False, help="Replace --out if it exists."),
          device_file: Optional[str] = DeviceFile(),
          model_file: Optional[str] = ModelFile()) -> None:
    """Render one chart: scaling, crossover, validation, roofline, frontier or elastic."""
    from coreplan.chart_kinds import KINDS as CHART_KINDS
    from coreplan.chart_kinds import ChartRequest, build

    check_choice("chart kind", kind, tuple(CHART_KINDS))
    check_out(out)
    check_new(out, force)
    from coreplan import charts

    request = ChartRequest(
        model=get_model(model, model_file),
        models=tuple(get_model(m, model_file) for m in names(models, "models"))
        if kind == "scaling" else (),
        versus=get_model(versus, model_file) if versus else None,
        devices=tuple(names(devices, "devices")), device=device,
        resolution=square(resolution, "chart"),
        resolutions=tuple(sides(resolutions)) if kind == "scaling" else (), cores=cores,
        batch=batch, dtype=dtype, quantity=quantity, measurements=measurements, linear=linear,
        device_file=device_file, model_file=model_file)
    print(charts.save(build(kind, request), out))


@app.command()
def explore(out: str = option("out", "planner.html", help="The page to write (.html)."),
            models: str = option("models", ",".join(("veca-base", "veca-small")),
                                 help="Models (each with its dense baseline), comma list."),
            devices: str = option("devices", "h100-sxm,a100-sxm-80gb,l4,t4,rtx-4090,"
                                             "jetson-agx-orin,cpu-epyc-2core",
                                  help="Devices, comma list (every device of --device-file "
                                       "is added)."),
            force: bool = option("force", False, help="Replace --out if it exists."),
            device_file: Optional[str] = DeviceFile(),
            model_file: Optional[str] = ModelFile()) -> None:
    """One self-contained page (offline): move C, resolution, batch, device and runtime and see
    latency, memory, throughput and the fleet for a demand, with the planner's own numbers."""
    import time

    from planners.devices import get_device, load_devices

    if Path(out).suffix.lower() != ".html":
        raise CoreplanError(f"--out {out}: the page is HTML; use a .html file name")
    check_out(out)
    check_new(out, force)
    specs = [get_model(m, model_file) for m in names(models, "models")]
    wanted = names(devices, "devices")
    if device_file is not None:
        wanted += [d for d in load_devices(device_file) if d not in wanted]
    devs = [get_device(d, device_file) for d in wanted]
    from coreplan.explore import build_page

    start = time.perf_counter()
    text = build_page(specs, devs)
    try:
        Path(out).write_text(text)
    except OSError as err:
        raise CoreplanError(f"cannot write {out}: {err.strerror}") from None
    size = len(text.encode())
    print(f"{out}: {size / 1e6:.1f} MB, {len(specs)} model(s) and their dense "
          f"baselines on {len(devs)} device(s), built in {time.perf_counter() - start:.1f} s")
    if size > HEAVY_PAGE_BYTES:  # each device and model pair adds about 0.4 MB
        print(f"coreplan: warning: the page is {size / 1e6:.1f} MB, above "
              f"{HEAVY_PAGE_BYTES / 1e6:g} MB: a browser opens it slowly; fewer --devices or "
              f"--models keep it light", file=sys.stderr)


HEAVY_PAGE_BYTES = 10e6  # above this the page opens slowly (the default page is about 4.4 MB)


@app.command()
def report(out: str = option("out", "report.html", help="The page to write (HTML, offline)."),
           models: str = option("models", "veca-base,dinov3-base", help="Models, comma list."),
           devices: str = option("devices", "h100-sxm,l4,jetson-agx-orin", help="Devices, comma list."),
           resolution: str = option("resolution", "1024", help="Side in px."),
           batch: int = option("batch", 1, help="Images per batch."),
           dtype: str = option("dtype", "bf16", help="fp32, bf16 or fp16."),
           latency_ms: Optional[float] = option("latency_ms", None, help="Latency budget per batch (ms)."),
           memory_gb: Optional[float] = option("memory_gb", None, help="Memory budget (decimal GB)."),
           measurements: str = option("measurements", DEFAULT_MEASUREMENTS, help="validate CSV(s) of the validation chart, comma list."),
           runtime: str = Runtime(),
           force: bool = option("force", False, help="Replace --out if it exists."),
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

    text = build_report([get_model(m, model_file) for m in names(models, "models")],
                        [get_device(d, device_file) for d in names(devices, "devices")],
                        resolution=square(resolution, "report"), batch=batch, dtype=dtype,
                        budgets=Budgets(latency_ms, memory_gb), measurements=measurements,
                        runtime=runtime)
    try:
        Path(out).write_text(text)
    except OSError as err:
        raise CoreplanError(f"cannot write {out}: {err.strerror}") from None
    print(out)
