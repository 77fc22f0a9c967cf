"""CPU time of the attention sub-block, dense vs core-periphery, beside the FLOP ratio.

Dense: SDPA of N tokens over N tokens. Core-periphery: C cores over [cores; patches] and N patches
over the C cores (the `split` kernel; `masked` for comparison). D = 384 (6 heads of 64), C = 64,
batch 1, fp32. FLOPs from costmodel's registered `sdpa` formula (2 per multiply-add), time from
torch.utils.benchmark (median, IQR). Usage: .venv/bin/python benchmarks/attention_subblocks.py
Prints a Markdown table (as in the README).
"""

import torch

from costmodel.registry import op_cost
from reference.attention import CorePeripheryAttention, DenseAttention
from reference.timing import time_call

HEADS, HEAD_DIM, CORES = 6, 64, 64


def sdpa_flops(q_len: int, kv_len: int) -> int:
    return int(op_cost("sdpa", batch=1, heads=HEADS, q_len=q_len, kv_len=kv_len,
                       head_dim=HEAD_DIM, elem_bytes=4).flop)


def timed(kernel, seq: int, **kwargs):
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, HEADS, seq, HEAD_DIM) for _ in range(3))
    with torch.no_grad():
        return time_call(lambda: kernel(q, k, v, **kwargs), min_run_time_s=2.0, min_repeats=5)


def main() -> None:
    print(f"threads={torch.get_num_threads()} torch={torch.__version__}\n")
    print("| N | dense ms (IQR) | split ms (IQR) | masked ms (IQR) | FLOP ratio dense/core "
          "| time ratio dense/split | time ratio dense/masked |")
    print("|---|---|---|---|---|---|---|")
    for n in (1024, 4096):
        dense_flops = sdpa_flops(n, n)
        core_flops = sdpa_flops(CORES, CORES + n) + sdpa_flops(n, CORES)
        dense = timed(DenseAttention(), n)
        split = timed(CorePeripheryAttention(impl="split"), n + CORES, core_tokens=CORES)
        masked = timed(CorePeripheryAttention(impl="masked"), n + CORES, core_tokens=CORES)
        print(f"| {n} | {dense.median_ms:.2f} ({dense.iqr_ms:.2f}) | {split.median_ms:.3f} "
              f"({split.iqr_ms:.3f}) | {masked.median_ms:.2f} ({masked.iqr_ms:.2f}) | "
              f"{dense_flops / core_flops:.1f} | {dense.median_ms / split.median_ms:.1f} | "
              f"{dense.median_ms / masked.median_ms:.2f} |")


if __name__ == "__main__":
    main()
