"""What a process running a model occupies: peak resident set size of a fresh worker, by stage.

`measure(...)` starts a new Python process (so no row sees another's high-water mark) that
imports torch (and transformers for Hugging Face models), builds the model with random weights,
runs one inference forward, and reports its peak RSS (Linux VmHWM) after each stage:

    baseline   after the imports                       (the runtime's own footprint)
    built      after building the model                (+ weights and what building leaves)
    forward    after one forward                       (+ activations, inputs/outputs, workspaces,
                                                        and what the allocator keeps)

Run as a module it is that worker: `python -m reference.footprint '<json request>'`.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import dataclass

KIB = 1024


def _peak_rss_bytes() -> int:
    """This process's peak RSS since it started its program (Linux VmHWM). NB: getrusage's
    ru_maxrss is not used: on Linux it carries the parent's RSS at fork across exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * KIB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB  # KiB on Linux


@dataclass(frozen=True)
class Footprint:
    baseline_bytes: int
    built_bytes: int
    forward_bytes: int  # the process's peak RSS: what "does it fit?" is asked of

    @property
    def build_rise_bytes(self) -> int:
        return self.built_bytes - self.baseline_bytes

    @property
    def forward_rise_bytes(self) -> int:
        return self.forward_bytes - self.built_bytes


def measure(model: str, resolution: int, *, batch: int = 1, cores: int | None = None,
            impl: str | None = None, source: str = "reference", threads: int = 2,
            timeout_s: float = 600) -> Footprint:
    """Peak RSS by stage of a fresh process running one forward (CPU, fp32)."""
    request = dict(model=model, resolution=resolution, batch=batch, cores=cores, impl=impl,
                   source=source, threads=threads)
    proc = subprocess.run([sys.executable, "-m", "reference.footprint", json.dumps(request)],
                          capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"footprint worker failed: {tail}")
    return Footprint(**json.loads(proc.stdout.strip().splitlines()[-1]))


def _worker(request: dict) -> dict:
    import torch

    if request["source"] == "hf":
        import transformers  # noqa: F401  (its import is part of that runtime's baseline)
    torch.set_num_threads(request["threads"])
    baseline = _peak_rss_bytes()
    with torch.no_grad():
        forward = _build(request)
        built = _peak_rss_bytes()
        forward()
    return dict(baseline_bytes=baseline, built_bytes=built, forward_bytes=_peak_rss_bytes())


def _build(request: dict):
    import torch

    from costmodel.config import configure
    from costmodel.spec import get_model

    spec = get_model(request["model"])
    c = configure(spec, request["resolution"], cores=request["cores"], batch=request["batch"],
                  impl=request["impl"])
    torch.manual_seed(0)
    if request["source"] == "hf":
        from reference.models import hf_model

        model = hf_model(spec.name)
        images = torch.randn(c.batch, 3, c.height, c.width)
        return lambda: model(pixel_values=images)
    from reference.models import build_model, forward_kwargs

    model = build_model(spec, impl=c.impl).eval()
    images = torch.randn(c.batch, 3, c.height, c.width)
    kwargs = forward_kwargs(spec, c.core_tokens)
    return lambda: model(images, **kwargs)


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
