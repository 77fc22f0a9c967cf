"""What a process occupies on a GPU beyond its tensors: the terms the GPU footprint assumes.

`measure(configs)` starts a fresh Python process (so the CUDA context is its own) that reads the
device's used memory (`nvidia-smi`) before and after CUDA starts (the context), then after its
first matrix product (the cuBLAS workspace, also as the caching allocator reserves it), then for
each configuration one inference forward: the allocator's peak allocated and reserved bytes
(their ratio is the x1.25 the GPU footprint assumes). On a CPU the same worker runs the
forwards and leaves the GPU terms empty (the rehearsal).

Run as a module it is that worker: `python -m reference.cuda_footprint '<json request>'`.
"""

from __future__ import annotations

import json
import subprocess
import sys

MIB = 2 ** 20


def measure(configs: list[dict], device: str = "cuda", timeout_s: float = 300) -> dict:
    """The worker's findings: context_bytes, cublas_workspace_bytes (used memory and reserved),
    and per configuration {model, resolution, batch, cores, allocated_peak_bytes,
    reserved_peak_bytes}."""
    request = dict(device=device, configs=configs)
    proc = subprocess.run([sys.executable, "-m", "reference.cuda_footprint", json.dumps(request)],
                          capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"CUDA footprint worker failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _smi_used() -> int | None:
    """The GPU's used memory as `nvidia-smi` reports it (every process's), or None."""
    import shutil

    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=30).stdout.split()
    return int(out[0]) * MIB if out else None


def _worker(request: dict) -> dict:
    device = request["device"]
    before = _smi_used() if device == "cuda" else None
    import torch

    found: dict = {"device": device}
    if device == "cuda":
        torch.cuda.init()
        torch.empty(1, device="cuda")
        torch.cuda.synchronize()
        after = _smi_used()
        found["context_bytes"] = None if before is None or after is None else after - before
        reserved = torch.cuda.memory_reserved()
        a = torch.randn(1024, 1024, device="cuda", dtype=torch.bfloat16)
        (a @ a).sum().item()  # the first cuBLAS call: handle and workspace
        torch.cuda.synchronize()
        used = _smi_used()
        found["cublas_workspace_bytes"] = None if used is None or after is None else used - after
        found["cublas_reserved_bytes"] = torch.cuda.memory_reserved() - reserved
        del a
        torch.cuda.empty_cache()
    found["configs"] = [_forward(torch, device, c) for c in request["configs"]]
    return found


def _forward(torch, device: str, request: dict) -> dict:
    from costmodel.config import configure
    from costmodel.spec import get_model
    from reference.counting import DTYPES, make_inputs
    from reference.models import build_model, forward_kwargs

    c = configure(get_model(request["model"]), request["resolution"], batch=request["batch"],
                  cores=request.get("cores"), dtype=request.get("dtype", "bf16"))
    model = build_model(c.spec).to(device=device, dtype=DTYPES[c.dtype]).eval()
    images = make_inputs(c, device)
    out = dict(request)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base_alloc, base_reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    with torch.no_grad():
        model(images, **forward_kwargs(c.spec, c.core_tokens))
    if device == "cuda":
        torch.cuda.synchronize()
        out.update(allocated_peak_bytes=torch.cuda.max_memory_allocated() - base_alloc,
                   reserved_peak_bytes=torch.cuda.max_memory_reserved() - base_reserved)
        del model, images
        torch.cuda.empty_cache()
    return out


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
