"""Planner commands: devices, simulate, calibrate, plan (torch-free)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import typer

from coreplan.app import (app, Batch, check_format, Cores, DeviceFile, Format, HostLaunchUs,
                          Impl, ints, model_resolution, ModelFile, names, number, option,
                          Resolution, Runtime, square, warn_implausible, with_host_launch)
from coreplan.app import NATIVE_HELP
from coreplan.output import emit
from costmodel.errors import CoreplanError
from costmodel.spec import get_model
from planners.limits import MAX_BATCH, MAX_RESOLUTION


@app.command()
def devices(device_file: Optional[str] = DeviceFile(), fmt: str = Format()) -> None:
    """List the device catalog (dense peaks, bandwidth, capacity, efficiencies, sources)."""
    from dataclasses import asdict

    from planners.devices import device_catalog, device_rows, load_devices

    found = dict(device_catalog())
    if device_file:
        found.update(load_devices(device_file))
    rows = device_rows(found.values(), scaled=False)  # CSV: unscaled units, as JSON
    emit(check_format(fmt), document=[asdict(d) for d in found.values()], rows=rows,
         table_rows=device_rows(found.values()),
         title="coreplan device catalog (dense peaks; sources: --format json)",
         caption="TF/s: dense peak, 10^12 FLOP/s; GB/s: memory bandwidth; GB: memory capacity; "
                 "W: board power; $/h: one device's on-demand list price per hour (where and "
                 "when read: price_source in --format json); clock: share of the boost clock "
                 "held under full matrix load; "
                 "efficiency: gpu fit (fitted across devices on public benchmarks), own data "
                 "(calibrated), profile (measured op times) or assumed")


@app.command()
def simulate(model: str, device: str = option("device", ..., help="Device name (`coreplan devices` lists them)."),
             resolution: Optional[str] = Resolution(None, NATIVE_HELP),
             cores: Optional[int] = Cores(), batch: int = Batch(),
             dtype: str = option("dtype", "auto", help="fp32, bf16, fp16, or auto: the "
                                                       "device's best supported (a profiled "
                                                       "device: the dtype it was measured in)."),
             impl: Optional[str] = Impl(), runtime: str = Runtime(),
             host_launch_us: Optional[float] = HostLaunchUs(),
             mode: str = option("mode", "inference", help="inference (a forward) or training "
                                "(forward, backward and the optimizer step)."),
             optimizer: str = option("optimizer", "sgd", help="training: sgd (momentum, "
                                     "Nesterov) or adamw, fp32 master weights."),
             device_file: Optional[str] = DeviceFile(), model_file: Optional[str] = ModelFile(),
             fmt: str = Format()) -> None:
    """Per-op roofline of one configuration: time, intensity and the bound each op hits."""
    from dataclasses import asdict

    from costmodel.config import configure
    from planners.devices import get_device
    from planners.roofline import host_note
    from planners.roofline import simulate as run

    from planners.planner import best_dtype

    fmt = check_format(fmt)
    dev = with_host_launch(get_device(device, device_file), host_launch_us)
    dtype = best_dtype(dev) if dtype == "auto" else dtype
    spec = get_model(model, model_file)
    c = configure(spec, model_resolution(resolution, spec), cores=cores, batch=batch,
                  impl=impl, dtype=dtype)
    warn_implausible(c)
    sim = run(c, dev, runtime, mode, optimizer)
    rows = [{"op": o.path, "class": o.op_class, "GFLOP": o.flops / 1e9, "MB": o.bytes / 1e6,
             "FLOP/B": o.intensity_flop_per_byte, "bound": o.bound, "from": o.source,
             "time_us": o.time_s * 1e6, "share": o.time_s / sim.device_s} for o in sim.ops]
    short = [{"op": _short_path(o.path), "class": o.op_class[:4], "GFLOP": _g(o.flops / 1e9),
              "MB": _g(o.bytes / 1e6), "FLOP/B": _g(o.intensity_flop_per_byte), "bound": o.bound,
              "from": o.source[:4], "us": _g(o.time_s * 1e6), "share": f"{o.time_s / sim.device_s:.1%}"}
             for o in sim.ops]
    share = sim.bound_share()
    emit(fmt, document={**asdict(sim), "bound_share": share}, rows=rows, table_rows=short,
         title=f"{c.spec.name} {c.height}px{f' C={c.core_tokens}' if c.spec.is_core else ''} "
               f"B={c.batch} {dtype} on {dev.name}"
               f"{' training step (' + optimizer + ')' if mode == 'training' else ''}: "
               f"{sim.latency_s * 1e3:.4g} ms (roofline floor {sim.floor_s * 1e3:.4g} ms)",
         caption="".join(f"note: {n}\n" for n in dev.notes())
                 + f"time share: compute-bound {share['compute']:.0%}, memory-bound "
                 f"{share['memory']:.0%}, launch overhead {share['overhead']:.0%}"
                 + (f"\n{host_note(sim, dev)}" if host_note(sim, dev) else "")
                 + (f"\nmatrix peak at {dev.clock_scale():.2f} of the boost clock (the most "
                    f"{dev.board_power_w:g} W sustains)" if dev.clock_scale() < 1 else "")
                 + ("\nfrom: roof = roofline, prof = profiled time; us: microseconds"
                    if fmt == "table" else ""))


def _solve_words(p) -> str:
    """What the plan solved: a dense model has no C to solve for."""
    dense = p.problem is not None and not p.problem.spec.is_core
    return "as given (a dense model has no C)" if dense and p.solve == "cores" else f"solve {p.solve}"


def _g(value: float) -> str:
    """4 significant digits in at most 8 characters (1.408e-05, 0.1667, 1,234)."""
    return f"{value:,.0f}" if value >= 1e4 else f"{value:.4g}"


def _short_path(path: str, width: int = 30) -> str:
    """An op's slash path in at most `width` characters, its end kept (the op's own name)."""
    return path if len(path) <= width else "…" + path[-(width - 1):]


@app.command()
def calibrate(measurements: str = option("measurements", ..., help="validate CSVs or timm benchmark files, "
                                                    "comma list."),
              device: Optional[str] = option("device", None, help="The device measured (default: fit one "
                                                        "set across the devices timm files name)."),
              device_file: Optional[str] = DeviceFile(),
              out: Optional[str] = option("out", None, help="Write a calibrated device file."),
              holdout: Optional[str] = option("holdout", None, help="Held-out groups: resolution, family, "
                                                         "model or device."),
              include_busy: bool = option("include_busy", False, help="Also fit rows timed on a busy machine."),
              max_error: float = option("max_error", 0.25, help="Refuse to write a fit whose held-out MAPE "
                                                   "is above this."),
              force: bool = option("force", False, help="Replace --out if it exists."),
              model_file: Optional[str] = ModelFile(), fmt: str = Format()) -> None:
    """Fit per-op-class efficiencies and launch overhead to measured times; held-out error.

    Exit status 1 (and no --out written) when the fit is implausible: an efficiency outside its
    physical range or a held-out error above --max-error.
    """
    from planners.calibrate import calibrate as run
    from planners.calibrate import device_file as calibrated_file
    from planners.devices import check_output_file, get_device, write_device_file

    fmt = check_format(fmt)
    if not (math.isfinite(max_error) and 0 < max_error <= 1):  # before fitting, not after
        raise CoreplanError(f"--max-error must be a fraction in (0, 1] (0.25 = 25%), got "
                            f"{max_error:g}")
    if out:
        check_output_file(out, force)
    files = names(measurements, "measurements")
    resolved = [Path(f).resolve() for f in files]
    repeated = sorted({f for f, r in zip(files, resolved) if resolved.count(r) > 1})
    if repeated:
        raise CoreplanError(f"--measurements lists {repeated[0]} more than once: its rows would "
                            f"count twice")
    dev = get_device(device, device_file) if device else None
    cal = run(files, dev, include_busy, holdout, device_file, model_file)
    if out and cal.device is None:
        raise CoreplanError(f"--out writes one device, and the measurements name "
                            f"{len(cal.devices)}: give --device, or one device's files")
    problems = cal.problems(max_error)
    if out and not problems:
        write_device_file(out, calibrated_file(cal), force=force)
    emit(fmt, document=cal.to_dict(), rows=_calibration_rows(cal, scaled=False),
         table_rows=_calibration_rows(cal),
         title=f"calibration of {cal.device.name if cal.device else ', '.join(cal.devices)}",
         caption=f"held out by {cal.holdout.by} (leave one group out)"
                 + (f"; wrote {out}" if out and not problems else ""))
    for problem in problems:
        print(f"coreplan: implausible fit: {problem}" + ("; not written" if out else ""),
              file=sys.stderr)
    if problems:
        raise typer.Exit(1)


def _calibration_rows(cal, scaled: bool = True) -> list[dict]:
    """The calibration's quantities; `scaled=False` (CSV): the overhead in seconds."""
    h = cal.holdout
    rows = [{"quantity": f"efficiency {k}", "value": v} for k, v in cal.fit.efficiency.items()]
    if cal.power_coefficient is not None:
        rows.append({"quantity": "power coefficient k (W per TFLOP/s GHz^2)",
                     "value": cal.power_coefficient})
    rows += [{"quantity": f"launch overhead ({'us' if scaled else 's'})"
                          + (" (held)" if cal.device is None else ""),
              "value": cal.fit.overhead_s * (1e6 if scaled else 1)},
             {"quantity": "held-out rows", "value": h.rows},
             {"quantity": "held-out MAPE", "value": f"{h.mape:.1%}"},
             {"quantity": "held-out max |error|", "value": f"{h.max_abs_error:.1%}"},
             {"quantity": "held-out within 10%", "value": f"{h.within_10pct:.1%}"},
             {"quantity": "latency interval (5-95%)",
              "value": f"x{h.interval[0]:.3f} .. x{h.interval[1]:.3f}"}]
    rows += [{"quantity": f"  {h.by} {g}: rows, MAPE, within 10%",
              "value": f"{n}, {e:.1%}, {w:.0%}"
                       + (f", k={cal.holdout_power[g]:.3g}" if cal.holdout_power else "")}
             for g, (n, e, w) in h.by_group().items()]
    return rows


@app.command()
def plan(model: str, device: str = option("device", ..., help="Device name(s), comma list."),
         resolution: Optional[str] = Resolution(None, "Side in px (square images)."),
         batch: int = Batch(),
         dtype: str = option("dtype", "auto", help="fp32, bf16, fp16, or auto: each device's best supported."),
         latency_ms: Optional[str] = option("latency_ms", None, help="Latency budget per batch (ms)."),
         latency_at: str = option("latency_at", "predicted", help="What --latency-ms is checked "
                                  "against: predicted, or p95 (the top of the device's `ms "
                                  "5-95%` interval: the time 95% of the held-out measurements "
                                  "behind it stayed under)."),
         memory_gb: Optional[str] = option("memory_gb", None, help="Decimal GB."),
         throughput: Optional[str] = option("throughput", None, help="Minimum img/s."),
         cores_allowed: Optional[str] = option("cores_allowed", None, help="Core budgets --solve cores may choose, comma list (default: the model's)."),
         solve: str = option("solve", "cores", help="cores, resolution or batch."),
         cores: Optional[int] = option("cores", None, help="C for --solve resolution|batch."),
         demand: Optional[str] = option("demand", None, help="Images/s to serve."),
         versus: Optional[str] = option("versus", None, help="Dense baseline model."),
         max_resolution: Optional[int] = option("max_resolution", None, help=f"Search limit of --solve resolution (px; default {MAX_RESOLUTION})."),
         max_batch: Optional[int] = option("max_batch", None, help=f"Search limit of --solve batch (default {MAX_BATCH})."),
         impl: Optional[str] = Impl(), runtime: str = Runtime(),
         host_launch_us: Optional[float] = HostLaunchUs(),
         mode: str = option("mode", "inference", help="inference (a forward per batch) or "
                            "training (a training step per batch: its time and memory)."),
         optimizer: str = option("optimizer", "sgd", help="training: sgd or adamw."),
         objective: Optional[str] = option("objective", None, help="Rank the devices' answers: "
                                           "cost (USD per million images), energy (J per "
                                           "image) or devices (fewest for --demand)."),
         device_file: Optional[str] = DeviceFile(),
         model_file: Optional[str] = ModelFile(), fmt: str = Format()) -> None:
    """Largest core budget (or resolution, or batch) meeting every budget, per device.

    Exit status 3 if a device has no feasible answer (one line says the smallest violation and the
    nearest feasible alternative).
    """
    from planners.devices import get_device
    from planners.planner import Budgets, infeasible_message
    from planners.planner import plan as make_plan

    fmt = check_format(fmt)
    for given, limit, what in ((max_resolution, "--max-resolution", "resolution"),
                               (max_batch, "--max-batch", "batch")):
        if given is not None and solve != what:  # a limit of a search not made means nothing
            raise CoreplanError(f"{limit} limits --solve {what}'s search; this plan solves "
                                f"{solve}: drop it, or pass --solve {what}")
    max_resolution = MAX_RESOLUTION if max_resolution is None else max_resolution
    max_batch = MAX_BATCH if max_batch is None else max_batch
    spec = get_model(model, model_file)
    budgets = Budgets(number(latency_ms, "latency_ms"), number(memory_gb, "memory_gb"),
                      number(throughput, "throughput"), latency_at)
    if latency_at != "predicted" and latency_ms is None:
        raise CoreplanError(f"--latency-at {latency_at} says how --latency-ms is checked; give "
                            f"--latency-ms")
    devs = [with_host_launch(get_device(d, device_file), host_launch_us)
            for d in names(device, "device")]
    _warn_demand(number(demand, "demand"))
    if objective is not None:
        from planners.economics import check_objective_inputs

        check_objective_inputs(objective, devs)
        if objective == "devices" and demand is None:
            raise CoreplanError("--objective devices ranks by the devices --demand needs; give "
                                "--demand")
    base = get_model(versus, model_file) if versus else None
    plans = [make_plan(spec, d, resolution=square(resolution, "plan") if resolution else None,
                       batch=batch, dtype=dtype, budgets=budgets, solve=solve, cores=cores,
                       demand_img_per_s=number(demand, "demand"), versus=base, impl=impl,
                       runtime=runtime, mode=mode, optimizer=optimizer,
                       max_resolution=max_resolution, max_batch=max_batch,
                       cores_allowed=ints(cores_allowed, "cores_allowed") if cores_allowed
                       else None) for d in devs]
    if objective is not None:  # best first; a device without an answer last
        from planners.economics import rank_key

        order = sorted(range(len(plans)), key=lambda i: rank_key(objective, plans[i].economics))
        plans, devs = [plans[i] for i in order], [devs[i] for i in order]
    if fmt == "json":
        import json

        docs = [{**p.to_dict(), **({"objective": objective, "rank": rank}
                                   if objective and p.economics else {})}
                for rank, p in enumerate(plans, 1)]
        print(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    elif fmt == "csv":
        _plan_csv(plans)
    else:
        for p, d in zip(plans, devs):
            _plan_table(p, d)
        if objective is not None:
            _ranking_table(plans, objective)
    failed = [(p, d) for p, d in zip(plans, devs) if p.chosen is None]
    for p, _ in failed:
        print(f"coreplan: {infeasible_message(p)}", file=sys.stderr)
    if failed:
        raise typer.Exit(3)


def _warn_demand(demand) -> None:
    from planners.limits import PLAUSIBLE_RATE

    if demand is not None and math.isfinite(demand) and demand > PLAUSIBLE_RATE:  # inf: refused
        print(f"coreplan: warning: --demand {demand:g} img/s is far beyond any deployment (up "
              f"to {PLAUSIBLE_RATE:g} is plausible); taken literally", file=sys.stderr)


def _ranking_table(plans, objective: str) -> None:
    """The devices' chosen answers side by side, ranked by the objective."""
    from coreplan.output import emit as show, sig3

    rows = []
    for rank, p in enumerate(plans, 1):
        e, c = p.economics, p.chosen
        rows.append({"rank": rank if e else "", "device": p.device,
                     "C": (c.cores or "") if c else "none feasible",
                     "px": c.resolution if c else "", "batch": c.batch if c else "",
                     "ms": c.latency_ms if c else "", "devices": e.devices if e else "",
                     "img/s/dev": e.img_per_s_per_device if e else "",
                     "$/h": sig3(e.usd_per_hour if e else None),
                     "$/M img": sig3(e.usd_per_million_images if e else None),
                     "J/img": sig3(e.joules_per_image if e else None)})
    demand = plans[0].demand_img_per_s
    show("table", document=None, rows=rows,
         title=f"{plans[0].model}: the devices ranked by {objective}"
               + (f" for {demand:g} img/s" if demand else " (one device kept busy each)"),
         caption="devices: for the demand at the chosen batch, every device busy and no queue "
                 "(`coreplan serve --solve devices --objective` adds the queue and the latency "
                 "objective); $/M img: USD per million images at the list price; J/img: at "
                 "the board power while computing")


def _plan_csv(plans) -> None:
    """Every candidate (and baseline) of every device, one row each, in unscaled units."""
    from coreplan.output import csv_rows

    from planners.economics import at_full_use

    rows = []
    for p in plans:
        device = p.problem.device
        marked = [(c, p.model, "chosen" if c == p.chosen else "") for c in p.candidates]
        marked += [(p.baseline, p.baseline_model, "dense baseline")] if p.baseline else []
        for c, model, role in marked:
            low, high = c.latency_ms_interval or (None, None)
            rates = at_full_use(device, c.throughput_img_per_s)
            rows.append({"device": p.device, "model": model, "dtype": p.dtype, "mode": p.mode,
                         "runtime": p.runtime, "solve": p.solve,
                         "cores": c.cores, "resolution": c.resolution, "batch": c.batch,
                         "flops": int(round(c.flops)), "latency_ms": c.latency_ms, "latency_ms_low": low,
                         "latency_ms_high": high, "memory_bytes": c.memory_bytes,
                         "throughput_img_per_s": c.throughput_img_per_s, "feasible": c.feasible,
                         "tightest": c.tightest, "usage": c.usage[c.tightest],
                         "host_bound": c.host_bound, "role": role,
                         # one device kept busy: energy at board power, the list price's share
                         "joules_per_image": rates.joules_per_image,
                         "usd_per_million_images_full_use": rates.usd_per_million_images})
    csv_rows(rows)


def _plan_table(p, device) -> None:
    from coreplan.output import chosen_line, economics_line, plan_rows
    from planners.roofline import HOST_COST_SOURCE

    rows = plan_rows(p)
    limits = ", ".join(f"{k}={v:g}" for k, v in vars(p.budgets).items()
                       if v is not None and k != "latency_at") or "none"
    if p.budgets.latency_at != "predicted" and p.budgets.latency_ms is not None:
        limits += f" (at {p.budgets.latency_at})"
    caption = chosen_line(p, device)
    if p.devices_needed:
        caption += (f"; devices for {p.demand_img_per_s:g} img/s: {p.devices_needed} (each "
                    f"kept {p.economics.utilisation:.0%} busy at batch {p.chosen.batch}, no "
                    f"queue: `coreplan serve --solve devices` adds arrivals, queueing and the "
                    f"latency objective, and needs at least this many at this batch)")
    if p.economics is not None:
        caption += f"\n{economics_line(p.economics, device)}"
    caption += "\nms: predicted latency per batch; tightest: the limit closest to binding (use)"
    if p.budgets.latency_at == "p95" and p.budgets.latency_ms is not None:
        caption += ("\nlatency budget checked at the top of ms 5-95% (--latency-at p95), not at "
                    "the prediction")
    if device.footprint is not None:
        caption += ("\nGB: the process footprint (runtime, weights, forward peak with the "
                    "allocator's overhead; `coreplan memory --device` lists the terms)")
    else:
        caption += "\nGB: weights + live tensors"
    caption += "".join(f"\nnote: {n}" for n in device.notes())
    if p.solve == "batch" and p.budgets.latency_ms is not None and p.chosen is not None:
        b = p.chosen.batch
        fill = (f"; at the demand's {p.demand_img_per_s:g} img/s filling it takes "
                f"{(b - 1) / p.demand_img_per_s * 1e3:.4g} ms more"
                if p.demand_img_per_s else "")
        caption += (f"\nnote: the latency budget covers a batch's service only: a batch of {b} "
                    f"also waits for its requests to arrive{fill} (`coreplan serve` models "
                    f"the wait and the queue)")
    if p.chosen is not None and p.chosen.host_bound:
        caption += (f"\nnote: host-bound: at batch {p.chosen.batch} the CPU issuing launches "
                    f"takes longer than the GPU's work ({HOST_COST_SOURCE}; `coreplan simulate` "
                    f"shows both; ms 5-95% runs from the GPU's work alone to the host's): a "
                    f"larger batch, torch.compile or CUDA graphs would cut it")
    fixed = []  # a column every row shares goes to the title (80-column tables)
    for key, unit in (("px", " px"), ("batch", "")):
        values = {row[key] for row in rows}
        if len(values) == 1:
            fixed.append(f"{'batch ' if key == 'batch' else ''}{values.pop():,}{unit}")
            for row in rows:
                del row[key]
    at = f" at {', '.join(fixed)}" if fixed else ""
    emit("table", document=None, rows=rows,
         title=f"{p.model} on {device.name}{at}"
               f"{' (training step, ' + p.problem.optimizer + ')' if p.mode == 'training' else ''}"
               f": {_solve_words(p)}, {p.dtype}"
               f"{'' if p.runtime == 'eager' else ' ' + p.runtime}, budgets: {limits}",
         caption=caption)
