"""`coreplan serve`: a simulated server under load, C chosen per batch (torch-free)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import typer

from coreplan.app import (app, check_format, DeviceFile, flag, Format, HostLaunchUs, Impl, ints,
                          ModelFile, number, option, Runtime, square, with_host_launch)
from coreplan.output import check_new, check_out, emit
from costmodel.errors import CoreplanError, check_choice
from costmodel.spec import get_model
from planners.limits import MAX_DEVICES

REQUESTS_BY_DEFAULT = 100_000
SPAN_OBJECTIVES = 10  # a run should span at least this many objectives
SWEEP_LOADS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1, 1.2)
SWEEP_REQUESTS = 20_000


@app.command()
def serve(model: str, device: str = option("device", ..., help="Device name (`coreplan devices` lists them)."),
          resolution: str = option("resolution", ..., help="Side in px (square images)."),
          rate: Optional[str] = option("rate", None, help="Offered load, images/s (with a trace file: "
                                                  "replay it scaled to this mean rate)."),
          slo_ms: str = option("slo_ms", ..., help="Latency objective (queue + service)."),
          policy: str = option("policy", "all", help="static, elastic, dense (the --versus baseline) or all."),
          cores: Optional[int] = option("cores", None, help="C of the static policy "
                                                                     "(default: the largest)."),
          cores_allowed: Optional[str] = option("cores_allowed", None, help="Budgets the elastic policy may use."),
          max_batch: int = option("max_batch", 8, help="Largest batch a device takes."),
          batch_timeout_ms: str = option("batch_timeout_ms", "0", help="Longest the oldest request waits for its "
                                                    "batch to fill."),
          arrivals: str = option("arrivals", "poisson", help="poisson, bursty (MMPP-2: bursts at 4x the rate, "
                                            "1 s long, every 10 s on average) or a trace file."),
          duration_s: Optional[str] = option("duration_s", None, help="Simulated seconds (default: 100,000 "
                                                        "requests' worth)."),
          devices: Optional[int] = option("devices", None, help="Identical devices sharing the queue "
                                                     "(default 1)."),
          dtype: str = option("dtype", "auto", help="fp32, bf16, fp16 or auto."),
          quality: Optional[str] = option("quality", None, help="CSV cores,quality: expected quality per C."),
          versus: Optional[str] = option("versus", None, help="Dense baseline model."),
          seed: int = option("seed", 0, help="Seed of the arrivals (the same seed, the same stream)."),
          solve: Optional[str] = option("solve", None, help="devices: the fewest devices holding p99 "
                                                   "within the objective, per policy."),
          impl: Optional[str] = Impl(), runtime: str = Runtime(),
          host_launch_us: Optional[float] = HostLaunchUs(),
          service_cv: str = option("service_cv", "0", help="Coefficient of variation of a "
                                     "batch's service time around the model's (0: deterministic; "
                                     "gamma-distributed, seeded by --seed)."),
          out: Optional[str] = option("out", None, help="Chart of p99 and mean C against "
                                                                "offered load (.html/.png/.svg)."),
          force: bool = option("force", False, help="Replace --out if it exists."),
          device_file: Optional[str] = DeviceFile(), model_file: Optional[str] = ModelFile(),
          fmt: str = Format()) -> None:
    """Simulate serving a request stream: latency percentiles, objective attainment, C mix.

    Exit status 3 with --solve devices when a policy cannot hold the objective with any number of
    devices up to 4096 (planners.limits.MAX_DEVICES).
    """
    from planners.devices import get_device
    from planners.planner import best_dtype
    from planners.serving import check_objective, devices_needed, make_policies

    fmt = check_format(fmt)
    if solve is not None:
        check_choice("solve", solve, ("devices",))
        if devices is not None:
            raise CoreplanError("--solve devices finds the number of devices; drop --devices")
    devices = 1 if devices is None else devices
    if out:
        check_out(out)
        check_new(out, force)
    slo_s = _positive(slo_ms, "slo_ms") / 1e3
    timeout_s = _at_least_zero(batch_timeout_ms, "batch_timeout_ms") / 1e3
    rate_value = _positive(rate, "rate") if rate is not None else None
    duration = _positive(duration_s, "duration_s") if duration_s is not None else None
    _warn_absurd(devices, timeout_s, slo_s, rate_value)
    dev = with_host_launch(get_device(device, device_file), host_launch_us)
    dtype = best_dtype(dev) if dtype == "auto" else dtype
    spec = get_model(model, model_file)
    side = square(resolution, "serve")
    policies = make_policies(spec, dev, resolution=side, dtype=dtype, policy=policy,
                             max_batch=max_batch, cores=cores,
                             cores_allowed=ints(cores_allowed, "cores_allowed")
                             if cores_allowed else None, impl=impl, runtime=runtime,
                             versus=get_model(versus, model_file) if versus else None)
    check_objective(policies, slo_s, spec.name, dev.name)
    times, offered = _arrivals(arrivals, rate_value, duration, seed)
    span = float(times[-1] - times[0]) if len(times) > 1 else 0.0
    if span < SPAN_OBJECTIVES * slo_s:  # a run shorter than a few objectives sees a transient
        print(f"coreplan: warning: the arrivals span {span:.3g} s, {span / slo_s:.2g}x the "
              f"{slo_s * 1e3:g} ms objective: a queue that grows shows only its start; "
              f"--duration-s {SPAN_OBJECTIVES * slo_s:g} or more runs long enough to see it",
              file=sys.stderr)
    table = _quality(quality, spec)
    kwargs = dict(slo_s=slo_s, max_batch=max_batch, batch_timeout_s=timeout_s,
                  service_cv=_at_least_zero(service_cv, "service_cv"), seed=seed)
    how = dtype if runtime == "eager" else f"{dtype} {runtime}"
    source = arrivals if arrivals in ("poisson", "bursty") else Path(arrivals).name
    title = (f"{spec.name} {side}px {how} on {dev.name}: {_rate(offered)} img/s offered "
             f"({source}), objective {slo_s * 1e3:g} ms")
    setup = {"device": dev.name, "resolution": side, "dtype": dtype, "runtime": runtime,
             "arrivals": source,
             "service_cv": kwargs["service_cv"]}  # what every JSON/CSV row was run under
    if solve:
        found = [(p, *devices_needed(p, times, **kwargs)) for p in policies]
        _emit_fleet(fmt, found, title, slo_s, offered, setup)
        code = 3 if any(k is None for _, k, _, _ in found) else 0
    else:
        from planners.serving import serve as run

        results = [run(p, times, devices=devices, quality=table, **kwargs) for p in policies]
        _emit_results(fmt, results, title + f", {devices} device(s)", slo_s, offered,
                      [p.capacity_img_per_s(devices) for p in policies], table is not None, setup)
        code = 0
    if out:
        _chart(out, policies, arrivals, devices, table, **kwargs)
    if code:
        raise typer.Exit(code)


def _rate(value: float) -> str:
    """Images per second as people read them: 20,000 and 2.423, not 2e+04."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.4g}"


def _positive(text: str, name: str) -> float:
    value = number(text, name)
    if not (math.isfinite(value) and value > 0):
        raise CoreplanError(f"{flag(name)}: must be a positive number, got {text!r}")
    return value


def _at_least_zero(text: str, name: str) -> float:
    value = number(text, name)
    if not (math.isfinite(value) and value >= 0):
        raise CoreplanError(f"{flag(name)}: must be a number >= 0, got {text!r}")
    return value


# Past these a serving question is answered with a warning that it is taken literally.
PLAUSIBLE_RATE = 1e9  # img/s: a million devices at a thousand each
LONGEST_TRACE_S = 1e7  # s: 116 days


def _warn_absurd(devices: int, timeout_s: float, slo_s: float, rate: Optional[float]) -> None:
    said = []
    if devices > MAX_DEVICES:
        said.append(f"--devices {devices:,} is beyond any fleet serve searches "
                    f"(up to {MAX_DEVICES:,})")
    if timeout_s > slo_s:
        said.append(f"--batch-timeout-ms {timeout_s * 1e3:g} is longer than the objective's "
                    f"{slo_s * 1e3:g} ms: a request can wait past it for its batch to fill")
    if rate is not None and rate > PLAUSIBLE_RATE:
        said.append(f"--rate {rate:g} img/s is far beyond any deployment (up to "
                    f"{PLAUSIBLE_RATE:g} is plausible)")
    for line in said:
        print(f"coreplan: warning: {line}; taken literally", file=sys.stderr)


def _arrivals(kind: str, rate_value: Optional[float], duration: Optional[float], seed: int):
    """The arrival times and the offered rate (img/s)."""
    from planners import workload

    if kind in workload.PROCESSES:
        if rate_value is None:
            raise CoreplanError(f"--rate is needed with --arrivals {kind}")
        duration = duration or REQUESTS_BY_DEFAULT / rate_value
        times = workload.PROCESSES[kind](rate_value, duration, seed)
        if len(times) == 0:
            raise CoreplanError(f"no request arrives in {duration:g} s at {rate_value:g}/s; "
                                f"give a longer --duration-s")
        return times, rate_value
    if not Path(kind).exists() and "." not in kind and "/" not in kind:
        raise CoreplanError(f"unknown --arrivals {kind!r}; choose poisson, bursty or a trace file")
    times = workload.read_trace(kind, rate_value, duration)
    span = float(times[-1] - times[0]) or 1.0
    if span > LONGEST_TRACE_S:
        print(f"coreplan: warning: the trace spans {span:.3g} s (its last arrival at "
              f"{float(times[-1]):.3g} s), beyond any recorded workload ({LONGEST_TRACE_S:g} s "
              f"is 116 days); taken literally", file=sys.stderr)
    return times, rate_value or len(times) / span


def _quality(path: Optional[str], spec):
    if path is None:
        return None
    if not spec.is_core:
        raise CoreplanError(f"--quality maps core budgets; {spec.name} is dense")
    from planners.workload import check_quality_budgets, read_quality

    table = read_quality(path)
    check_quality_budgets(table, spec)
    return table


def _emit_results(fmt, results, title, slo_s, offered, capacities, quality_given,
                  setup: dict) -> None:
    rows = [{"policy": r.policy, "p50 ms": r.latency_ms["p50"], "p95 ms": r.latency_ms["p95"],
             "p99 ms": r.latency_ms["p99"], "in SLO": f"{r.slo_attainment:.1%}",
             "img/s": r.throughput_img_per_s,
             "mean C": "" if r.mean_cores is None else round(r.mean_cores, 1),
             "batch": round(r.mean_batch, 2),
             "quality": "" if r.expected_quality is None else round(r.expected_quality, 2)}
            for r in results]
    if not quality_given:
        for row in rows:
            del row["quality"]
    notes = []
    for r in results:
        if r.mean_cores is not None and len(r.cores_histogram) > 1:
            mix = ", ".join(f"C={c} {k / r.requests:.0%}" for c, k in r.cores_histogram.items())
            notes.append(f"{r.policy}: {mix}; {r.overload_batches:,} of {r.batches:,} batches "
                         f"overloaded (smallest C, objective predicted missed)")
        if r.quality_missing:
            notes.append(f"{r.policy}: no quality for C={', '.join(map(str, r.quality_missing))} "
                         f"in the quality file, so no expected quality")
    notes += [f"{r.policy}: {r.missed:,} of {r.requests:,} requests over {slo_s * 1e3:g} ms; "
              f"utilisation {r.utilisation:.0%}" for r in results]
    notes += [f"{r.policy}: overloaded: {_rate(offered)} img/s offered > {_rate(cap)} img/s, the most "
              f"it serves; its queue grows all run, so its latencies grow with --duration-s"
              for r, cap in zip(results, capacities) if offered > cap]
    document = [{**setup, **r.to_dict(), "slo_ms": slo_s * 1e3, "offered_img_per_s": offered,
                 "capacity_img_per_s": cap} for r, cap in zip(results, capacities)]
    emit(fmt, document=document, rows=[_flat(d) for d in document], table_rows=rows, title=title,
         caption="\n".join(notes))


def _flat(result: dict) -> dict:
    """A result for CSV: latency_ms.p99 becomes latency_ms_p99 (unscaled units)."""
    out = {k: v for k, v in result.items() if k != "latency_ms"}
    out.update({f"latency_ms_{k}": v for k, v in result["latency_ms"].items()})
    return out


def _emit_fleet(fmt, found, title, slo_s, offered, setup: dict) -> None:
    from planners.serving import fastest_s

    rows, document = [], []
    for policy, k, at, fewer in found:
        # a fleet below the offered rate is unstable: its finite run's p99 is a transient's
        unstable = k is None and policy.capacity_img_per_s(MAX_DEVICES) <= offered
        rows.append({"policy": policy.name, "devices": k if k else f"none <= {MAX_DEVICES}",
                     "p99 ms": "unstable" if unstable else at.latency_ms["p99"],
                     "in SLO": "" if unstable else f"{at.slo_attainment:.1%}",
                     "p99 ms, one fewer": fewer.latency_ms["p99"] if fewer else ""})
        document.append({**setup, "policy": policy.name, "devices": k, "slo_ms": slo_s * 1e3,
                         "offered_img_per_s": offered, "unstable": unstable,
                         "result": at.to_dict(), "one_fewer": fewer.to_dict() if fewer else None})
    flat = [{**{k: d[k] for k in setup}, "policy": d["policy"], "devices": d["devices"],
             "slo_ms": d["slo_ms"],
             "offered_img_per_s": d["offered_img_per_s"], "unstable": d["unstable"],
             **{f"at_{k}": v for k, v in _flat(d["result"]).items() if k != "policy"},
             "one_fewer_p99_ms": d["one_fewer"]["latency_ms"]["p99"] if d["one_fewer"] else None}
            for d in document]
    emit(fmt, document=document, rows=flat, table_rows=rows,
         title=title + ": fewest devices for p99 within it",
         caption="p99 at that many devices, and with one fewer (which misses the objective)")
    for policy, k, _, _ in found:
        if k is None:
            fastest = fastest_s(policy)
            most = policy.capacity_img_per_s(MAX_DEVICES)
            why = (f"one image alone takes {fastest * 1e3:.4g} ms" if fastest > slo_s else
                   f"{MAX_DEVICES} devices serve at most {_rate(most)} img/s, below the "
                   f"{_rate(offered)} offered: the queue grows without end" if most <= offered
                   else f"p99 stays above it with {MAX_DEVICES} devices")
            print(f"coreplan: no fleet holds p99 within {slo_s * 1e3:g} ms for {policy.name}: "
                  f"{why}", file=sys.stderr)


def _chart(out, policies, arrivals, devices, quality, *, slo_s, seed, **kwargs) -> None:
    """p99 and mean C against offered load, up to 1.2x the static (or first) policy's capacity."""
    from coreplan import charts
    from planners import workload
    from planners.serving import load_sweep

    reference = policies[0]
    capacity = reference.table.capacity_img_per_s(reference.cores, devices)
    if arrivals in workload.PROCESSES:
        def arrivals_at(rate):  # bursty: at least 30 burst cycles per point
            return workload.PROCESSES[arrivals](
                rate, max(SWEEP_REQUESTS / rate, 0 if arrivals == "poisson" else 300.0), seed)
    else:
        def arrivals_at(rate):
            return workload.read_trace(arrivals, rate)

    sweep = load_sweep(policies, arrivals_at, [f * capacity for f in SWEEP_LOADS],
                       devices=devices, quality=quality, slo_s=slo_s, seed=seed, **kwargs)
    frame = charts.serve_frame(sweep, capacity)
    path = charts.save(charts.serve_chart(frame, slo_s * 1e3, reference.name), out)
    print(f"coreplan: wrote {path}", file=sys.stderr)  # stdout keeps the table, JSON or CSV
