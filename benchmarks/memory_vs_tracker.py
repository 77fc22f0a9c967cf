"""Predicted inference activation peak vs the live-tensor tracker, on CPU.

Run: .venv/bin/python benchmarks/memory_vs_tracker.py
"""

import torch

from costmodel.config import configure
from costmodel.memory import inference_memory
from costmodel.spec import get_model
from reference.memory import measure_forward_cpu
from reference.models import build_model, forward_kwargs

CONFIGS = [("veca-small", 256, 64, "split", 2), ("veca-small", 512, 8, "split", 1),
           ("veca-small", 256, 64, "masked", 2), ("veca-small", 1024, 64, "masked", 1),
           ("dinov2-small", 224, None, None, 2), ("dinov2-small-reg", 448, None, None, 1),
           ("dinov3-small", 256, None, None, 2), ("dinov3-small", 512, None, None, 1),
           ("dinov2-giant", 224, None, None, 1), ("veca-base", 512, 32, "split", 1)]


def main() -> None:
    torch.manual_seed(0)
    print("model,resolution,cores,impl,batch,predicted_bytes,measured_bytes,ratio,predicted_stage")
    for name, res, cores, impl, batch in CONFIGS:
        c = configure(get_model(name), res, cores=cores, batch=batch, impl=impl)
        model = build_model(c.spec, impl=c.impl).eval()
        measured = measure_forward_cpu(model, torch.randn(batch, 3, res, res),
                                       **forward_kwargs(c.spec, c.core_tokens))
        predicted = inference_memory(c)
        ratio = predicted.activation_peak_bytes / measured.activation_peak_bytes
        print(f"{name},{res},{cores},{c.impl},{batch},{predicted.activation_peak_bytes},"
              f"{measured.activation_peak_bytes},{ratio:.3f},{predicted.peak_stage}")


if __name__ == "__main__":
    main()
