"""Models nobody here wrote, timed as timm's own benchmark times them.

timm's ViTs (`timm.create_model`, random weights) and Hugging Face's Dinov2 and DINOv3
(`reference.models.hf_model`), at a batch, under autocast with fp32 weights ("amp", what timm's
files call amp: fp16) or with 16-bit weights (plain), eagerly or under torch.compile: each run is
one measurement record (framework timm or transformers; runtime eager+amp, compiled+amp, eager or
compiled), so that calibration and the held-out tables read them like timm's published files.
A run that does not fit is a row with status oom; a framework that is not installed is a row
with status error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from costmodel.measurements import Measurement
from reference.counting import DTYPES
from reference.machine import machine_name
from reference.timing import time_call


@dataclass(frozen=True)
class Run:
    """One third-party run: a timm model name (or a catalog name for Hugging Face's models)."""

    model: str
    framework: str  # timm | transformers
    resolution: int
    batch: int
    dtype: str  # the autocast dtype (amp) or the weights' dtype
    amp: bool  # autocast over fp32 weights
    compiled: bool = False

    @property
    def runtime(self) -> str:
        return ("compiled" if self.compiled else "eager") + ("+amp" if self.amp else "")

    def label(self) -> str:
        return f"{self.framework} {self.model} {self.resolution}px B={self.batch} {self.runtime} " \
               f"{self.dtype}"


def build(run: Run, device: str) -> torch.nn.Module:
    """The model with random weights, on the device, in its weights' dtype."""
    if run.framework == "timm":
        import timm

        model = timm.create_model(run.model, pretrained=False, img_size=run.resolution)
    else:
        from reference.models import hf_model

        model = hf_model(run.model)
    weights = torch.float32 if run.amp else DTYPES[run.dtype]
    model = model.to(device=device, dtype=weights).eval()
    return torch.compile(model) if run.compiled else model


def measure(run: Run, device: str, *, min_run_time_s: float = 0.5, min_repeats: int = 5,
            warmup: int = 3) -> Measurement:
    """Time one run (median of single forwards after warm-up); failures become the status."""
    from costmodel.cost import count
    from costmodel.spec import get_model

    row = dict(model=run.model, resolution=run.resolution, core_tokens=0, impl="dense",
               batch=run.batch, dtype=run.dtype, device=device,
               device_name=machine_name(device), runtime=run.runtime,
               framework=run.framework, torch_version=torch.__version__, note="")
    try:
        spec = get_model(run.model)
        c = _config(spec, run)
        row.update(family=spec.family, patch_tokens=c.patch_tokens,
                   flops_predicted=count(c, "model", "flop").total)
        model = build(run, device)
        images = torch.randn(run.batch, 3, run.resolution, run.resolution, device=device,
                             dtype=torch.float32 if run.amp else DTYPES[run.dtype])

        def forward():
            with torch.no_grad(), torch.autocast(device, dtype=DTYPES[run.dtype],
                                                 enabled=run.amp):
                model(images)

        t = time_call(forward, min_run_time_s=min_run_time_s, min_repeats=min_repeats,
                      warmup=warmup, device=device)
        row.update(time_ms_median=round(t.median_ms, 4), time_ms_iqr=round(t.iqr_ms, 4),
                   time_ms_min=round(t.min_ms, 4), repeats=t.repeats, status="ok")
    except ImportError as err:
        row.update(status=f"error: {err.name or err} is not installed")
    except Exception as err:  # a failing run is a row, and the stage goes on
        oom = "out of memory" in str(err).lower() or type(err).__name__ == "OutOfMemoryError"
        row.update(status="oom" if oom else
                   f"error: {type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}")
    finally:
        if device == "cuda":
            torch.cuda.empty_cache()
    return Measurement(**row)


def _config(spec, run: Run):
    from costmodel.config import configure

    return configure(spec, spec.round_resolution(run.resolution), batch=run.batch,
                     dtype=run.dtype)
