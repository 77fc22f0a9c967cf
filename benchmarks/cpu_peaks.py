"""Measure this CPU's fp32 GEMM rate and memory bandwidth (for the cpu-epyc-2core device entry).

GEMM: a 2048^3 fp32 matmul (2 FLOP per multiply-add). Bandwidth: `out.copy_(src)` and a triad
`torch.add(b, c, alpha=2, out=a)` over 512 MiB arrays (far beyond the 32 MiB L3), counting the bytes
read plus written. Median of 7 runs after a warm-up, with torch's default threads (recorded).
Usage: .venv/bin/python benchmarks/cpu_peaks.py
"""

import statistics
import time

import torch


def median_s(fn, runs: int = 7) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    gemm = 2 * n ** 3 / median_s(lambda: torch.mm(a, b, out=out))
    elems = 512 * 2 ** 20 // 4
    src, dst, third = torch.ones(elems), torch.empty(elems), torch.ones(elems)
    copy = 2 * 4 * elems / median_s(lambda: dst.copy_(src))
    triad = 3 * 4 * elems / median_s(lambda: torch.add(src, third, alpha=2.0, out=dst))
    print(f"threads={torch.get_num_threads()}")
    print(f"gemm_fp32_flops_per_s={gemm:.4g}")
    print(f"copy_bytes_per_s={copy:.4g}")
    print(f"triad_bytes_per_s={triad:.4g}")


if __name__ == "__main__":
    main()
