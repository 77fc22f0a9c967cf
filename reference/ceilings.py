"""What a device is and the two ceilings it reaches: a large matrix product and a large copy.

`device_facts` records the device (name, multiprocessors, memory, L2, driver, CUDA and torch
versions, clocks from `nvidia-smi`); `gemm_ceiling` times an n x n x n matrix product on random
data and `copy_ceiling` a device-to-device copy (bytes read plus written), each the median of
several timed runs after warm-up, timed with CUDA events on a GPU (reference/timing.py). These
are the numbers a roofline's peaks are checked against. On a CPU the same code runs at small
sizes (the rehearsal).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess

import torch

from reference.counting import DTYPES
from reference.machine import machine_name
from reference.timing import time_call

SMI_FIELDS = ("name", "driver_version", "memory.total", "clocks.sm", "clocks.max.sm",
              "clocks.mem", "clocks.max.mem", "power.limit", "power.draw", "temperature.gpu")


def nvidia_smi() -> dict:
    """One query of `nvidia-smi` (SMI_FIELDS, as it prints them), or {} where there is none."""
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(zip(SMI_FIELDS, (v.strip() for v in out[0].split(",")))) if out else {}


def device_facts(device: str) -> dict:
    """What the device and its software are."""
    facts = {"device": device, "name": machine_name(device), "torch": torch.__version__,
             "cuda": torch.version.cuda, "python": platform.python_version(),
             "cpus": os.cpu_count(), "cpu": machine_name("cpu")}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        facts.update(sm_count=props.multi_processor_count, memory_bytes=props.total_memory,
                     capability=f"{props.major}.{props.minor}",
                     l2_cache_bytes=getattr(props, "L2_cache_size", None),
                     smi_before=nvidia_smi())
    return facts


def gemm_ceiling(device: str, n: int, dtype: str = "bf16", repeats: int = 10) -> dict:
    """FLOP/s of an n x n x n matrix product on random data (2 per multiply-add): median, best
    and every run."""
    torch.manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=DTYPES[dtype])
    b = torch.randn(n, n, device=device, dtype=DTYPES[dtype])
    times = _times(lambda: a @ b, device, repeats)  # a (n,n) @ b (n,n) -> (n,n)
    flops = 2 * n ** 3
    return {"n": n, "dtype": dtype, "flop": flops,
            "median_flop_per_s": flops / statistics.median(times),
            "best_flop_per_s": flops / min(times), "seconds": times}


def copy_ceiling(device: str, nbytes: int, repeats: int = 10) -> dict:
    """Bytes per second (read plus written) of a device-to-device copy of nbytes / 2 of random
    data: median, best and every run."""
    half = nbytes // 2
    src = torch.randint(0, 255, (half,), device=device, dtype=torch.uint8)
    dst = torch.empty_like(src)
    times = _times(lambda: dst.copy_(src), device, repeats)
    return {"bytes_moved": 2 * half, "median_bytes_per_s": 2 * half / statistics.median(times),
            "best_bytes_per_s": 2 * half / min(times), "seconds": times}


def _times(fn, device: str, repeats: int) -> list[float]:
    """Seconds of `repeats` single runs after three warm-ups (one timer: reference/timing)."""
    for _ in range(3):
        fn()
    return [time_call(fn, min_run_time_s=0.0, min_repeats=1, warmup=0, device=device,
                      max_repeats=1).median_ms / 1e3 for _ in range(repeats)]
