"""Chart kinds: each kind takes the options of a `ChartRequest` it uses, checks them, fills its own
defaults and builds its chart from coreplan.charts (altair and pandas load with it).

`build(kind, request)` is what `coreplan chart` calls; a library error names the request's field
(`ArgumentError("quantity", ...)`), which the CLI says as its flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from coreplan import charts
from costmodel.errors import ArgumentError, check_choice
from costmodel.spec import ModelSpec


@dataclass(frozen=True)
class ChartRequest:
    """Everything a chart may be asked for; each kind reads what it uses.

    Args:
        model: the core model (crossover, roofline, frontier, elastic); models: scaling's.
        versus: crossover's dense model (default: the catalog's of the same width and depth).
        devices: frontier's device names; device: roofline's, elastic's or validation's.
        resolution, resolutions: a side in px; scaling's sides.
        cores, batch, dtype: the configuration (roofline: C, default the largest).
        quantity: scaling: gflops or memory_gb; validation: time or memory.
        measurements: validation's measurement file; linear: scaling's y axis.
        device_file, model_file: devices and models beyond the catalogs.
    """

    model: ModelSpec
    models: tuple[ModelSpec, ...] = ()
    versus: ModelSpec | None = None
    devices: tuple[str, ...] = ()
    device: str | None = None
    resolution: int = 1024
    resolutions: tuple[int, ...] = ()
    cores: int | None = None
    batch: int = 1
    dtype: str = "bf16"
    quantity: str | None = None
    measurements: str | None = None
    linear: bool = False
    device_file: str | None = None
    model_file: str | None = None

    def get_device(self, default: str):
        from planners.devices import get_device

        return get_device(self.device or default, self.device_file)


def _scaling(r: ChartRequest):
    quantity = check_choice("quantity", r.quantity or "gflops", ("gflops", "memory_gb"))
    check_choice("dtype", r.dtype, ("fp32", "bf16", "fp16"))
    frame = charts.scaling_frame(list(r.models), r.resolutions, r.batch, r.dtype)
    return charts.scaling_chart(frame, quantity, log=not r.linear)


def _crossover(r: ChartRequest):
    from planners.planner import baseline_model

    dense = r.versus or baseline_model(r.model)
    if not r.model.is_core or dense is None or dense.is_core:
        raise ArgumentError("model", f"{r.model.name}: the crossover chart needs a core model and "
                            f"a dense versus model")
    return charts.crossover_chart(charts.crossover_frame(r.model, dense))


def _validation(r: ChartRequest):
    quantity = {"time": "time (ms)", "memory": "activation peak (MB)"}[
        check_choice("quantity", r.quantity or "time", ("time", "memory"))]
    frame = charts.validation_frame(r.measurements, r.get_device("cpu-epyc-2core"), r.model_file)
    return charts.validation_chart(frame, quantity)


def _roofline(r: ChartRequest):
    from costmodel.config import configure

    device = r.get_device("h100-sxm")
    c = configure(r.model, r.model.round_resolution(r.resolution), cores=r.cores, batch=r.batch,
                  dtype=r.dtype)
    return charts.roofline_chart(charts.roofline_frame(c, device), device, r.dtype)


def _frontier(r: ChartRequest):
    from planners.devices import get_device

    devices = [get_device(d, r.device_file) for d in r.devices]
    return charts.frontier_chart(charts.frontier_frame(r.model, devices, resolution=r.resolution,
                                                       batch=r.batch, dtype=r.dtype), r.model.name)


def _elastic(r: ChartRequest):
    if not r.model.is_core:
        raise ArgumentError("model", f"{r.model.name}: the elastic chart needs a core model; it "
                            f"is dense")
    return charts.elastic_chart(charts.elastic_frame(r.model, r.get_device("h100-sxm"),
                                                     resolution=r.resolution, batch=r.batch,
                                                     dtype=r.dtype))


KINDS = {"scaling": _scaling, "crossover": _crossover, "validation": _validation,
         "roofline": _roofline, "frontier": _frontier, "elastic": _elastic}


def build(kind: str, request: ChartRequest):
    """The chart of one kind (an altair chart); `coreplan.charts.save` writes it."""
    return KINDS[check_choice("chart kind", kind, tuple(KINDS))](request)
