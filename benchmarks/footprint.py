"""Process footprint: measured peak RSS of fresh processes against the footprint model (CPU, fp32).

    .venv/bin/python benchmarks/footprint.py --out data/measurements/footprint-cpu-....csv
    .venv/bin/python benchmarks/footprint.py --report data/measurements/footprint-cpu-....csv
    .venv/bin/python benchmarks/footprint.py --report B.csv --fitted-on A.csv
    .venv/bin/python benchmarks/footprint.py --report B.csv --against A.csv
    .venv/bin/python benchmarks/footprint.py --report B.csv --across data/profiles/*.toml
    .venv/bin/python benchmarks/footprint.py --report A.csv B.csv C.csv --device D --device-file F

Measures each configuration below in a new worker (`reference/footprint.py`): peak RSS after the
imports, after building the model and after one forward. `--report` fits the footprint model's
allocator terms on the FIT rows and prints every other row's error (held out: other models,
resolutions, batches, C, and the Hugging Face implementations). `--against` compares the
measured peaks of two runs of the same processes: how far a process moves between runs, which
bounds how close any model can come. `--across` holds every held-out row against many fresh
profiles' own terms: a process that misses under all of them is the model's miss. Several files
after `--report` are runs of the same processes measured apart: each process is held against its
median peak over them (the peak RSS of one process moves between runs with the allocator's
choices), and the report adds how far each moved and every run's share alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

# (source, model, side px, batch, C or None): the fit set lives beside the model
# (planners.footprint_fit.FIT); everything below is held out
HELD_OUT = (
    ("hf", "dinov2-small", 518, 4, None),
    ("hf", "dinov2-small", 448, 8, None), ("hf", "dinov2-base", 224, 4, None),
    ("hf", "dinov2-base", 518, 2, None), ("hf", "dinov2-base", 756, 1, None),
    ("hf", "dinov3-small", 224, 1, None), ("hf", "dinov3-small", 512, 8, None),
    ("hf", "dinov3-small", 768, 2, None), ("hf", "dinov3-base", 320, 4, None),
    ("hf", "dinov3-base", 640, 2, None), ("hf", "dinov3-base", 768, 1, None),
    ("reference", "dinov2-base", 336, 8, None), ("reference", "dinov3-small", 640, 4, None),
    ("reference", "dinov3-small", 256, 1, None), ("reference", "veca-small", 320, 8, 16),
    ("reference", "veca-base", 512, 2, 40), ("reference", "veca-base", 768, 1, 64),
    ("reference", "veca-splus", 384, 4, 24), ("reference", "dinov2-small-reg", 448, 2, None),
    # activation-heavy processes (0.3-1.4 GB of activations; added 2026-12-01)
    ("hf", "dinov2-small", 1022, 8, None), ("hf", "dinov3-small", 1024, 4, None),
    ("reference", "dinov2-small", 1022, 8, None), ("reference", "veca-small", 1024, 8, 64),
    ("reference", "dinov3-small", 1024, 4, None), ("reference", "veca-base", 1024, 2, 64),
    # fitted on until 2026-12-01 (each has tensors near the allocator's mapping threshold)
    ("reference", "dinov2-small", 518, 4, None), ("reference", "veca-small", 512, 4, 64),
    ("reference", "dinov3-base", 448, 2, None), ("reference", "veca-base", 224, 1, 8),
    ("reference", "veca-small", 768, 2, 32),
)


def measure_all(out: Path) -> None:
    """Measure every configuration not yet in `out` (a measurement file; resumable)."""
    import torch

    from costmodel.config import configure
    from costmodel.measurements import Measurement, MeasurementWriter
    from costmodel.spec import get_model
    from reference.footprint import measure
    from reference.machine import machine_name

    writer = MeasurementWriter(out, resume=out.exists())
    done = writer.done
    try:
        from planners.footprint_fit import FIT

        for which, rows in (("fit", FIT), ("held out", HELD_OUT)):
            for source, model, side, batch, cores in rows:
                c = configure(get_model(model), side, batch=batch, cores=cores)
                framework = "transformers" if source == "hf" else "torch"
                record = Measurement(model, side, c.core_tokens, c.impl, batch, "fp32", "ok",
                                     family=c.spec.family, patch_tokens=c.patch_tokens,
                                     device="cpu", device_name=machine_name("cpu"),
                                     runtime="eager", framework=framework,
                                     torch_version=torch.__version__, threads=2,
                                     note=f"footprint benchmark ({which})")
                if record.key() in done:
                    continue
                f = measure(model, side, batch=batch, cores=cores, source=source)
                writer.write(dataclasses.replace(
                    record, mem_baseline_bytes_measured=f.baseline_bytes,
                    mem_built_bytes_measured=f.built_bytes,
                    mem_footprint_bytes_measured=f.forward_bytes))
                print(f"{which:8s} {source:9s} {model:16s} {side:4d} B={batch} C={cores}: "
                      f"{f.forward_bytes / 1e6:7.1f} MB", file=sys.stderr)
    finally:
        writer.close()


def timm_fallbacks(directory: Path) -> str:
    """timm's batch fall-backs against the GPU footprint: a row whose batch is below its file's
    usual one says the next larger step did not fit (it should be predicted over capacity); every
    row that ran should be predicted within capacity. AMP keeps fp32 weights: the fp16
    configuration's footprint plus 2 bytes per parameter."""
    from costmodel.config import configure
    from costmodel.params import parameter_count
    from costmodel.spec import get_model
    from costmodel.timm_results import read_timm
    from planners.devices import get_device
    from planners.planner import process_bytes

    lines, agree, total = [], 0, 0
    for path in sorted(directory.glob("benchmark-infer-*.csv")):
        results = read_timm(path)
        if results.file.device_kind != "cuda" or results.file.precision != "fp16":
            continue
        device = get_device(results.file.device)
        usual = max(r.batch for r in results.records)
        steps = [usual]
        while steps[-1] > 1:
            steps.append(int(steps[-1] * 0.75) if len(steps) % 2 else steps[-1] * 2 // 3)
        for r in results.records:
            spec = get_model(r.model)

            def fits(batch):
                c = configure(spec, r.resolution, batch=batch, dtype="fp16")
                need = process_bytes(c, device) + 2 * parameter_count(spec)
                return need <= device.memory_capacity_bytes

            checks = [fits(r.batch)]
            if r.batch < usual:
                bigger = steps[steps.index(r.batch) - 1] if r.batch in steps else None
                if bigger:
                    checks.append(not fits(bigger))
            agree += sum(checks)
            total += len(checks)
            if not all(checks):
                lines.append(f"  disagree: {device.name} {r.model} {r.resolution}px ran at batch "
                             f"{r.batch} (usual {usual})")
    lines.insert(0, f"timm batch fall-backs: {agree} of {total} checks agree with the footprint")
    return "\n".join(lines)


def report(paths, device=None, fitted_on: Path | None = None) -> str:
    """The terms fitted on the FIT rows (planners.footprint_fit), or a device's own (a fresh
    `coreplan profile`: every row it did not measure is held out), then every held-out row's
    error, as text. `paths`: one footprint file, or several runs of the same processes (each
    held against its median over them; the runs' spread and each run alone printed too)."""
    from planners.footprint_fit import held_out

    paths = _paths(paths)
    if device is not None:
        model, fitted, rows = _device_held_out(paths, device)
    else:
        model, fitted, rows = held_out(paths, fitted_on)
    runs = len(paths)
    mb = lambda terms: ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in terms.items())  # noqa: E731
    where = (f"fitted on {fitted} rows" + (f" of {fitted_on.name}" if fitted_on else "")
             if device is None else f"{device.name}'s terms")
    lines = [f"{where}: baseline {mb(model.baseline_bytes)}; weights x "
             f"{model.weights_factor:.3f}; build {mb(model.build_bytes)}; activations x "
             f"{model.activation_factor:.3f}; packing x {model.pack_factor:.3f}; workspace "
             f"{model.workspace_bytes / 1e6:.1f} MB" + (
                 f"; tensors above {model.mapped_above_bytes / 2**20:g} MiB once"
                 if model.mapped_above_bytes else ""),
             f"{'source':10s} {'configuration':36s} {'measured MB':>11s} {'predicted MB':>12s} "
             f"{'tensors MB':>10s} {'error':>7s}" + (f" {'runs':>4s} {'spread':>7s}"
                                                     if runs > 1 else "")]
    for r in rows:
        label = _name(r.label)
        lines.append(f"{r.label['source']:10s} {label:36s} {r.measured_bytes / 1e6:11.1f} "
                     f"{r.predicted_bytes / 1e6:12.1f} {r.tensor_bytes / 1e6:10.1f} "
                     f"{r.error:+7.1%}" + (f" {len(r.peaks):4d} {r.spread:7.1%}"
                                           if runs > 1 else ""))
    errors = [abs(r.error) for r in rows]
    within = sum(e <= 0.10 for e in errors)
    lines.append(f"held-out rows: {len(errors)}; within ±10%: {within} "
                 f"({within / len(errors):.0%}); MAPE {sum(errors) / len(errors):.1%}; max "
                 f"|error| {max(errors):.1%}" + (f" (against each process's median over "
                                                 f"{runs} runs)" if runs > 1 else ""))
    if runs > 1:
        lines.extend(_runs_lines(paths, rows))
    return "\n".join(lines)


def _paths(paths) -> list[Path]:
    """One footprint file or several (runs of the same processes) as a list."""
    return [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]


def _runs_lines(paths: list[Path], rows) -> list[str]:
    """Each run alone (the share within ±10% of its own peaks), and the processes whose peak
    moved by more than a tenth between runs: what no model can be held closer than."""
    lines, by_run = [], [r.run_errors() for r in rows]  # each row's errors, in file order
    for i, path in enumerate(paths):
        errors = [abs(e[i]) for e in by_run if e[i] is not None]
        if errors:
            within = sum(e <= 0.10 for e in errors)
            lines.append(f"run {i + 1} alone ({path.name}): within ±10%: {within} of "
                         f"{len(errors)} ({within / len(errors):.0%}); MAPE "
                         f"{sum(errors) / len(errors):.1%}")
    moved = sorted((r for r in rows if r.spread > 0.10), key=lambda r: -r.spread)
    lines.append(f"processes whose peak moved by more than 10% between runs: {len(moved)} of "
                 f"{len(rows)}" + (": " + ", ".join(
                     f"{r.label['source']} {_name(r.label)} {r.spread:.0%}" for r in moved)
                     if moved else ""))
    return lines


def _name(label: dict) -> str:
    """A footprint row's configuration as the tables print it: model, side, batch and C."""
    return f"{label['model']} {label['resolution']}px B={label['batch']}" + (
        f" C={label['cores']}" if label["cores"] else "")


def agreement(first: Path, second: Path) -> str:
    """The same processes measured in two files, second against first, as text."""
    from planners.footprint_fit import repeated

    rows = repeated(first, second)
    lines = [f"{'source':10s} {'configuration':36s} {'first MB':>9s} {'second MB':>10s} "
             f"{'change':>7s}"]
    changes = []
    for label, a, b in rows:
        changes.append(b / a - 1)
        name = _name(label)
        lines.append(f"{label['source']:10s} {name:36s} {a / 1e6:9.1f} {b / 1e6:10.1f} "
                     f"{changes[-1]:+7.1%}")
    size = [abs(c) for c in changes]
    within = sum(c <= 0.10 for c in size)
    lines.append(f"measured twice: {len(size)}; within ±10% of the first: {within} "
                 f"({within / len(size):.0%}); mean |change| {sum(size) / len(size):.1%}; max "
                 f"{max(size):.1%}")
    return "\n".join(lines)


def across(paths, files: list[str]) -> str:
    """Every held-out process of a footprint file (or of several runs of the same processes, each
    process at its median over them) against the footprint terms of many device files (fresh
    profiles, each its own terms): per process, the median error over them and how many put it
    beyond ±10%, worst first; then each profile's share within ±10%. A process that misses under
    every profile is the model's, not one profile's noise."""
    import statistics

    from costmodel.errors import CoreplanError
    from planners.devices import default_footprint, load_devices

    devices = [d for f in files for d in load_devices(f).values()
               if d.footprint is not None and d.footprint != default_footprint(d.kind)]
    if not devices:
        raise CoreplanError(f"--across: none of the {len(files)} file(s) has footprint terms "
                            f"of its own (a device without them takes the catalog's)")
    paths = _paths(paths)
    errors: dict[str, list[float]] = {}
    shares = []
    for device in devices:
        _, _, rows = _device_held_out(paths, device)
        shares.append((device.name, sum(abs(r.error) <= 0.10 for r in rows) / len(rows)))
        for r in rows:
            errors.setdefault(f"{r.label['source']} {_name(r.label)}", []).append(r.error)
    against = (paths[0].name if len(paths) == 1 else
               f"the median of {len(paths)} runs ({', '.join(p.name for p in paths)})")
    lines = [f"{len(devices)} profiles' terms against {against}: per held-out process, the "
             f"median error and the profiles that miss it beyond ±10%",
             f"{'process':46s} {'median':>7s} {'misses':>9s}"]
    for label, e in sorted(errors.items(), key=lambda kv: statistics.median(kv[1])):
        lines.append(f"{label:46s} {statistics.median(e):+7.1%} "
                     f"{sum(abs(x) > 0.10 for x in e):4d} of {len(e)}")
    met = sum(share >= 0.90 for _, share in shares)
    lines.append(f"profiles with 90% or more within ±10%: {met} of {len(shares)} ("
                 + ", ".join(f"{name} {share:.0%}" for name, share in shares) + ")")
    return "\n".join(lines)


def _device_held_out(paths, device):
    """A device's footprint terms against every row of a footprint file (or several runs of the
    same processes: their medians) that its profile did not measure itself
    (planners.footprint_fit.FIT, the processes `coreplan profile` runs)."""
    from costmodel.memory import inference_memory
    from planners.footprint import footprint
    from planners.footprint_fit import FIT_KEYS, HeldOut, read_runs

    rows = read_runs(paths)
    key = lambda row: (row["source"], row["model"], row["resolution"], row["batch"])  # noqa: E731
    model = device.footprint
    out = [HeldOut(row, o.forward_bytes, footprint(o.config, model, o.framework).total_bytes,
                   inference_memory(o.config).total_bytes)
           for row, o in rows if key(row) not in FIT_KEYS]
    return model, 0, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path, nargs="+", metavar="FILE",
                        help="a footprint file, or several runs of the same processes (each "
                        "process held against its median over them)")
    parser.add_argument("--timm", type=Path, help="timm benchmark folder: check batch fall-backs")
    parser.add_argument("--device", help="with --report: this device's footprint terms")
    parser.add_argument("--device-file", help="the file holding --device (a fresh profile)")
    parser.add_argument("--against", type=Path, help="with --report: an earlier run of the "
                        "same processes; compare measured with measured")
    parser.add_argument("--fitted-on", type=Path, help="with --report: fit the FIT rows of this "
                        "file (another day's measurements) and hold out every row of --report")
    parser.add_argument("--across", nargs="+", metavar="DEVICE_FILE", help="with --report: "
                        "every held-out process against each of these device files' own terms "
                        "(fresh profiles): which processes miss under all of them")
    args = parser.parse_args()
    if args.out:
        measure_all(args.out)
    if args.report:
        device = None
        if args.device:
            from planners.devices import get_device

            device = get_device(args.device, args.device_file)
        if args.across:
            print(across(args.report, args.across))
        elif args.against:
            if len(args.report) != 1:
                parser.error("--against compares two files: give --report one")
            print(agreement(args.against, args.report[0]))
        else:
            print(report(args.report, device, args.fitted_on))
    elif args.against or args.across:
        parser.error("--against and --across go with --report")
    if args.timm:
        print(timm_fallbacks(args.timm))
    return 0


if __name__ == "__main__":
    from costmodel.errors import script_main

    script_main(main)  # a file without the rows asked for: one line, exit 2
