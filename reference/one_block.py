"""One transformer block, dense against core-periphery: the paper's per-block claim, measured.

A block of a dense model (DINOv3-base shaped: cls, registers and N patches, RoPE on the patches)
and of a core model (VECA-base shaped: C cores and N patches, RoPE on all) at the same side and
batch, each timed alone on the device (reference/timing.py; CUDA events and, on a GPU, its CUDA
graph replay), with the cost model's FLOPs of one layer and the latency model's prediction of
one layer on a catalog device. The core block runs each core implementation asked for (split,
flex: FlexAttention, under torch.compile where asked).
"""

from __future__ import annotations

import torch

from costmodel.config import configure
from costmodel.spec import get_model
from reference.attention import AttentionKernel
from reference.counting import DTYPES
from reference.models import Block, patch_grid, rope_tables
from reference.timing import graph_replay, time_call

COLUMNS = ("model", "impl", "compiled", "resolution", "tokens", "batch", "dtype", "device",
           "flops_layer_predicted", "time_ms_median", "time_ms_iqr", "time_ms_graph",
           "predicted_ms_layer", "predicted_on", "status", "note")


def _inputs(spec, config, device):
    """The block's input x (B, S, D) and its RoPE tables, as the encoders build them."""
    batch, D = config.batch, spec.embed_dim
    rows, cols = config.grid
    dtype = DTYPES[config.dtype]
    x = torch.randn(batch, config.seq_len, D, device=device, dtype=dtype)
    grid = patch_grid(rows, cols, device, dtype).expand(batch, -1, -1)
    if spec.is_core:
        cores = torch.rand(batch, config.core_tokens, 2, device=device, dtype=dtype) * 2 - 1
        return x, dict(rope=rope_tables(torch.cat([cores, grid], 1), spec.head_dim),
                       core_tokens=config.core_tokens)
    return x, dict(rope=rope_tables(grid, spec.head_dim), rope_start=spec.rope_start)


def predicted_layer_ms(config, device_name: str) -> float:
    """The latency model's time of one layer (the model's `layer/` ops over its depth)."""
    from planners.devices import get_device
    from planners.roofline import simulate

    sim = simulate(config, get_device(device_name))
    layer = sum(op.time_s for op in sim.ops if op.path.startswith("layer/"))
    return layer / config.spec.depth * 1e3


def measure(model: str, impl: str, *, resolution: int, batch: int, dtype: str, device: str,
            cores: int | None = None, compiled: bool = False, predicted_on: str = "h200",
            min_run_time_s: float = 0.3) -> dict:
    """One block's row (COLUMNS)."""
    from costmodel.cost import count

    spec = get_model(model)
    c = configure(spec, spec.round_resolution(resolution), cores=cores, batch=batch, impl=impl,
                  dtype=dtype)
    row = dict(model=model, impl=c.impl, compiled=compiled, resolution=c.height,
               tokens=c.seq_len, batch=batch, dtype=dtype, device=device,
               flops_layer_predicted=count(c, "layer", "flop").total,
               predicted_ms_layer=round(predicted_layer_ms(c, predicted_on), 4),
               predicted_on=predicted_on, status="ok", note="")
    try:
        torch.manual_seed(0)
        block = Block(spec, AttentionKernel(c.impl, compiled=compiled)).to(
            device=device, dtype=DTYPES[dtype]).eval()
        x, kwargs = _inputs(spec, c, device)

        def forward():
            with torch.no_grad():
                block(x, **kwargs)

        t = time_call(forward, min_run_time_s=min_run_time_s, min_repeats=5, warmup=3,
                      device=device)
        row.update(time_ms_median=round(t.median_ms, 4), time_ms_iqr=round(t.iqr_ms, 4))
        replay, why = graph_replay(forward, device)
        if replay is not None:
            g = time_call(replay, min_run_time_s=min_run_time_s, min_repeats=5, warmup=3,
                          device=device)
            row["time_ms_graph"] = round(g.median_ms, 4)
        else:
            row["note"] = f"no CUDA graph: {why}"
    except Exception as err:  # a failing block is a row
        oom = "out of memory" in str(err).lower() or type(err).__name__ == "OutOfMemoryError"
        row["status"] = "oom" if oom else f"error: {type(err).__name__}: {str(err)[:160]}"
    finally:
        if device == "cuda":
            torch.cuda.empty_cache()
    return row
