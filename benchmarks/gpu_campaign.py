"""The GPU campaign: FLOPs, memory and latency on CUDA in one call, rehearsed without a GPU.

    PYTHONPATH=. python3 benchmarks/gpu_campaign.py --out DIR --device cuda [--budget-s 480]
    PYTHONPATH=. python3 benchmarks/gpu_campaign.py --out DIR --device cpu --rehearse

Stages, in order of value, each with its share of the budget (what one leaves over goes to the
next), each writing complete files as it goes, so that a cut leaves every finished stage and row:
 1. facts.json        the device and its software; a bf16 GEMM of 8192^3 and a device-to-device
                      copy of 4 GB, timed (the two ceilings)
 2. validate.csv      the reference models on the device (measurement records, schema 6): FLOPs by
                      FlopCounterMode around the device's own forward (fvcore at batch 1),
                      activation peak and reserved bytes, latency eager and as a CUDA graph
                      replay; rows ordered so that the first minutes spread over model,
                      resolution, batch, C and implementation
 3. profile.toml      `coreplan profile` on the device (bf16), as a device file
 4. footprint.json    the CUDA context, the cuBLAS workspace, the allocator's reserved against
                      allocated bytes (a fresh process)
 5. third_party.csv   timm's ViTs and Hugging Face's Dinov2/DINOv3 at timm's batch sizes, AMP and
                      bf16 weights, eager and compiled (measurement records)
 6. block.csv         one block at 1024 px: dense against core (C = 64), split against flex
A short summary table is printed last (and written to summary.txt). `--rehearse` runs every
stage through the same code at tiny sizes (under a minute on 2 CPU cores): tests/test_campaign.py
runs it. Nothing here imports altair or the chart stack.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

STAGES = (("facts", 0.05), ("validate", 0.40), ("profile", 0.25), ("footprint", 0.05),
          ("third_party", 0.17), ("block", 0.08))


@dataclass(frozen=True)
class Sizes:
    """What each stage measures: the GPU's campaign or the CPU rehearsal's tiny one."""

    gemm_n: int
    gemm_dtype: str
    copy_bytes: int
    validate: dict
    validate_times: dict
    profile_s: float
    footprint: tuple
    third_party: tuple
    block: dict


GPU = Sizes(
    gemm_n=8192, gemm_dtype="bf16", copy_bytes=4 * 10**9,
    validate=dict(core=("veca-small", "veca-base"), dense=("dinov2-small", "dinov2-base",
                                                           "dinov3-small", "dinov3-base"),
                  late=("veca-large", "dinov2-large", "dinov3-large"),
                  resolutions=(224, 512, 768, 1024), core_only=(2048,), batches=(1, 8, 64),
                  cores=(8, 32, 64), impls=("split", "masked", "flex"), dtype="bf16",
                  flex_limit=(512, 8), other_dtypes=("fp16", "fp32")),
    validate_times=dict(min_run_time_s=0.2, min_repeats=5, warmup=3),
    profile_s=150.0,
    footprint=(("veca-base", 1024, 8, 64), ("dinov3-base", 1024, 8, None),
               ("veca-small", 512, 64, 64), ("dinov2-base", 518, 64, None)),
    third_party=(("timm", "vit_small_patch16_224", 224, 1024), ("timm", "vit_base_patch16_224",
                                                               224, 1024),
                 ("timm", "vit_large_patch16_224", 224, 1024),
                 ("timm", "vit_base_patch16_384", 384, 1024),
                 ("timm", "vit_base_patch14_dinov2", 518, 768),
                 ("timm", "vit_base_patch16_dinov3", 256, 1024),
                 ("transformers", "dinov2-base", 518, 768),
                 ("transformers", "dinov3-base", 256, 1024)),
    block=dict(resolution=1024, batches=(1, 8), dtype="bf16", compile_flex=True,
               predicted_on="h200"))

REHEARSAL = Sizes(
    gemm_n=256, gemm_dtype="fp32", copy_bytes=64 * 10**6,
    validate=dict(core=("veca-small",), dense=("dinov2-small", "dinov3-small"), late=(),
                  resolutions=(64,), core_only=(96,), batches=(1, 2), cores=(8, 16),
                  impls=("split", "masked", "flex"), dtype="fp32", flex_limit=(64, 1),
                  other_dtypes=()),
    validate_times=dict(min_run_time_s=0.02, min_repeats=3, warmup=1),
    profile_s=6.0,
    footprint=(("veca-small", 64, 2, 8),),
    third_party=(("transformers", "dinov2-small", 56, 2), ("timm", "vit_small_patch16_224",
                                                          64, 2)),
    block=dict(resolution=128, batches=(1,), dtype="fp32", compile_flex=False,
               predicted_on="cpu-epyc-2core"))


class Budget:
    """Cumulative deadlines: stage i may run until its share and all earlier shares are spent."""

    def __init__(self, total_s: float) -> None:
        self.start, self.total = time.monotonic(), total_s
        shares, running = {}, 0.0
        for name, share in STAGES:
            running += share
            shares[name] = running
        self.until = shares

    def over(self, stage: str) -> bool:
        return time.monotonic() - self.start > self.until[stage] * self.total

    def left(self, stage: str) -> float:
        return max(0.0, self.until[stage] * self.total - (time.monotonic() - self.start))


def _write_json(path: Path, document) -> None:
    """Whole or not at all (a temporary file renamed into place)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=1, default=str))
    os.replace(temporary, path)


# --------------------------------------------------------------------------- 1. facts
def stage_facts(out: Path, device: str, sizes: Sizes, budget: Budget) -> dict:
    from reference.ceilings import copy_ceiling, device_facts, gemm_ceiling, nvidia_smi

    facts = device_facts(device)
    _write_json(out / "facts.json", facts)
    facts["gemm"] = gemm_ceiling(device, sizes.gemm_n, sizes.gemm_dtype)
    _write_json(out / "facts.json", facts)
    facts["copy"] = copy_ceiling(device, sizes.copy_bytes)
    if device == "cuda":
        facts["smi_after"] = nvidia_smi()  # clocks just after the GEMMs
    _write_json(out / "facts.json", facts)
    return {"GEMM TFLOP/s": facts["gemm"]["median_flop_per_s"] / 1e12,
            "copy TB/s": facts["copy"]["median_bytes_per_s"] / 1e12}


# --------------------------------------------------------------------------- 2. validate
def validate_cases(device: str, plan: dict) -> list:
    """Every case of the stage, ordered to spread early (`spread`)."""
    from costmodel.spec import get_model
    from reference.validate import Case

    cases = []
    for name in (*plan["core"], *plan["dense"], *plan["late"]):
        spec = get_model(name)
        sides = plan["resolutions"] + (plan["core_only"] if spec.is_core else ())
        for side in sides:
            side = spec.round_resolution(side)
            pairs = ([(c, i) for c in plan["cores"] for i in plan["impls"]] if spec.is_core
                     else [(0, "dense")])
            for cores, impl in pairs:
                for batch in plan["batches"]:
                    if impl == "flex" and (side > plan["flex_limit"][0]
                                           or batch > plan["flex_limit"][1]):
                        continue  # eager flex writes every score: only small calls
                    cases.append(Case(spec, side, cores, impl, batch, plan["dtype"], device))
    late = [c for c in cases if c.spec.name in plan["late"]]
    early = spread([c for c in cases if c.spec.name not in plan["late"]])
    extra = [Case(c.spec, c.resolution, c.core_tokens, c.impl, c.batch, dtype, device)
             for dtype in plan["other_dtypes"] for c in early[:3]]
    return early[:6] + extra + early[6:] + spread(late)


def spread(cases: list) -> list:
    """Greedy: next, the case showing the most (dimension, value) pairs not yet shown, ties to
    the cheaper (smaller side and batch first); once no case shows anything new, a new round
    begins. So the first rows already span every model, side, batch, C and implementation."""
    seen: set = set()
    left = sorted(cases, key=lambda c: (c.resolution * c.batch, c.spec.name, c.core_tokens))
    ordered = []
    while left:
        gains = [len(_pairs(c) - seen) for c in left]
        best = max(range(len(left)), key=lambda i: (gains[i], -i))
        if gains[best] == 0:
            seen = set()
            continue
        case = left.pop(best)
        seen |= _pairs(case)
        ordered.append(case)
    return ordered


def _pairs(case) -> set:
    return {("model", case.spec.name), ("resolution", case.resolution), ("batch", case.batch),
            ("cores", case.core_tokens), ("impl", case.impl)}


def stage_validate(out: Path, device: str, sizes: Sizes, budget: Budget) -> dict:
    from costmodel.measurements import MeasurementWriter
    from reference.validate import ModelCache, Options, summarize, sweep

    cases = validate_cases(device, sizes.validate)
    options = Options(count_on_device=True, graph=True, memory_headroom=1.3,
                      **sizes.validate_times)
    writer = MeasurementWriter(out / "validate.csv", resume=False)
    sweep(cases, writer, options, stop=lambda: budget.over("validate"), models=ModelCache())
    s = summarize(writer.records)
    graphed = [r for r in writer.records if r.time_ms_graph and r.time_ms_median]
    saving = (sum(r.time_ms_median - r.time_ms_graph for r in graphed) / len(graphed)
              if graphed else None)
    return {"rows": f"{s.rows} of {len(cases)}", "FLOPs exact": s.exact,
            "mismatched": s.mismatched, "oom/errors": s.oom + s.errors, "busy": s.busy,
            "mean eager - graph ms": saving}


# --------------------------------------------------------------------------- 3. profile
def stage_profile(out: Path, device: str, sizes: Sizes, budget: Budget) -> dict:
    from planners.devices import device_toml, write_device_file
    from reference.machine import machine_name
    from reference.profile import profiled_device, run_profile

    dtype = "bf16" if device == "cuda" else "fp32"
    seconds = min(sizes.profile_s, max(budget.left("profile") - 5, 1.0))
    run = run_profile(device=device, dtype=dtype, budget_s=seconds,
                      source=f"benchmarks/gpu_campaign.py on {machine_name(device)}, {dtype}")
    name = "h200-profiled" if device == "cuda" else "rehearsal-profiled"
    busy = run.busy_note()
    write_device_file(out / "profile.toml", device_toml(
        profiled_device(name, device, run), comments=(
            f"Measured by benchmarks/gpu_campaign.py in {run.seconds:.0f} s: {run.measured} op "
            f"points, {run.skipped} skipped.", *([f"Warning: {busy}."] if busy else []))),
        force=True)
    return {"points": run.measured, "skipped": run.skipped, "busy points": run.busy,
            "peak TFLOP/s": run.peak_flops_per_s / 1e12,
            "host us/launch": run.host_launch_s * 1e6 if run.host_launch_s else None}


# --------------------------------------------------------------------------- 4. footprint
def stage_footprint(out: Path, device: str, sizes: Sizes, budget: Budget) -> dict:
    from reference.cuda_footprint import measure

    dtype = "bf16" if device == "cuda" else "fp32"
    configs = [dict(model=m, resolution=r, batch=b, cores=c, dtype=dtype)
               for m, r, b, c in sizes.footprint]
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()  # this process's cached blocks out of the worker's reading
    found = measure(configs, device, timeout_s=max(budget.left("footprint"), 30))
    _write_json(out / "footprint.json", found)
    ratios = [c["reserved_peak_bytes"] / c["allocated_peak_bytes"] for c in found["configs"]
              if c.get("allocated_peak_bytes")]
    mb = lambda v: None if v is None else v / 2**20  # noqa: E731
    return {"context MiB": mb(found.get("context_bytes")),
            "cuBLAS workspace MiB": mb(found.get("cublas_workspace_bytes")),
            "reserved/allocated": max(ratios) if ratios else None}


# --------------------------------------------------------------------------- 5. third party
def third_party_runs(device: str, sizes: Sizes) -> list:
    """timm's amp (fp16 autocast) eager first, then bf16 weights, then compiled amp."""
    from reference.third_party import Run

    amp16 = "fp16" if device == "cuda" else "bf16"
    runs = [Run(m, f, r, b, amp16, amp=True) for f, m, r, b in sizes.third_party]
    runs += [Run(m, f, r, b, "bf16", amp=False) for f, m, r, b in sizes.third_party]
    if device == "cuda":  # torch.compile takes a minute or so a model: the first two only
        runs += [Run(m, f, r, b, amp16, amp=True, compiled=True)
                 for f, m, r, b in sizes.third_party[:2]]
    return runs


def stage_third_party(out: Path, device: str, sizes: Sizes, budget: Budget) -> dict:
    from costmodel.measurements import MeasurementWriter
    from reference.third_party import measure

    writer = MeasurementWriter(out / "third_party.csv", resume=False)
    runs = third_party_runs(device, sizes)
    try:
        for run in runs:
            if budget.over("third_party"):
                break
            writer.write(measure(run, device, **({} if device == "cuda" else dict(
                min_run_time_s=0.02, min_repeats=3, warmup=1))))
    finally:
        writer.close()
    ok = [r for r in writer.records if r.status == "ok"]
    return {"rows": f"{len(writer.records)} of {len(runs)}", "ok": len(ok),
            "not run": sorted({r.status for r in writer.records if r.status != "ok"})}


# --------------------------------------------------------------------------- 6. one block
def stage_block(out: Path, device: str, sizes: Sizes, budget: Budget) -> dict:
    from reference.one_block import COLUMNS, measure

    plan = sizes.block
    rows = []
    runs = [("dinov3-base", "dense", None, False), ("veca-base", "split", 64, False),
            ("veca-base", "flex", 64, plan["compile_flex"])]
    with open(out / "block.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for batch in plan["batches"]:
            for model, impl, cores, compiled in runs:
                if budget.over("block"):
                    break
                row = measure(model, impl, resolution=plan["resolution"], batch=batch,
                              dtype=plan["dtype"], device=device, cores=cores,
                              compiled=compiled, predicted_on=plan["predicted_on"],
                              min_run_time_s=0.3 if device == "cuda" else 0.02)
                writer.writerow(row)
                handle.flush()
                rows.append(row)
    ms = {f"{r['impl']} B={r['batch']} ms": r.get("time_ms_median") for r in rows}
    return {"rows": len(rows), **ms}


RUNNERS = {"facts": stage_facts, "validate": stage_validate, "profile": stage_profile,
           "footprint": stage_footprint, "third_party": stage_third_party, "block": stage_block}


def run(out: Path, device: str, budget_s: float, rehearse: bool) -> list[tuple]:
    """Every stage in order within the budget; a stage that fails is reported, and the next runs."""
    sizes = REHEARSAL if rehearse else GPU
    budget = Budget(budget_s)
    results = []
    for name, _ in STAGES:
        started = time.monotonic()
        if budget.over(name):
            results.append((name, 0.0, "skipped: its share of the budget was spent"))
            continue
        try:
            found = RUNNERS[name](out, device, sizes, budget)
        except KeyboardInterrupt:
            results.append((name, time.monotonic() - started, "interrupted"))
            break
        except Exception as err:  # one stage failing leaves the others' files
            found = f"failed: {type(err).__name__}: {str(err)[:200]}"
        results.append((name, time.monotonic() - started, found))
        print(f"[{name}] {time.monotonic() - started:.1f} s: {found}", flush=True)
    return results


def summary(results: list[tuple]) -> str:
    lines = [f"{'stage':12s} {'s':>6s}  result"]
    for name, seconds, found in results:
        text = found if isinstance(found, str) else "; ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in found.items())
        lines.append(f"{name:12s} {seconds:6.1f}  {text}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the stages' files")
    parser.add_argument("--device", choices=("cuda", "cpu"), required=True)
    parser.add_argument("--budget-s", type=float, default=480.0, help="seconds for all stages")
    parser.add_argument("--rehearse", action="store_true", help="tiny sizes (a CPU rehearsal)")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("gpu_campaign: --device cuda: no CUDA device here", file=sys.stderr)
            return 2
    if not 10 <= args.budget_s <= 3600:
        print("gpu_campaign: --budget-s must be seconds in [10, 3600]", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    results = run(args.out, args.device, args.budget_s, args.rehearse)
    text = summary(results)
    (args.out / "summary.txt").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
