"""`coreplan serve`: a simulated server under load, C chosen per batch (torch-free)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import typer

from coreplan.app import (app, check_format, DeviceFile, flag, Format, HostLaunchUs, Impl, ints,
                          ModelFile, names, number, option, Runtime, square, with_host_launch)
from coreplan.output import check_new, check_out
from coreplan.serve_output import emit_fleets, emit_results, rate_text
from costmodel.errors import CoreplanError, check_choice
from costmodel.spec import get_model
from planners.limits import MAX_DEVICES, PLAUSIBLE_OBJECTIVE_S, PLAUSIBLE_RATE

REQUESTS_BY_DEFAULT = 100_000
SPAN_OBJECTIVES = 10  # a run should span at least this many objectives
SWEEP_LOADS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1, 1.2)
SWEEP_REQUESTS = 20_000


@app.command()
def serve(model: str, device: str = option("device", ..., help="Device name, or a comma list "
                                           "(`coreplan devices` lists them)."),
          resolution: str = option("resolution", ..., help="Side in px (square images)."),
          rate: Optional[str] = option("rate", None, help="Offered load, images/s (with a trace file: "
                                                  "replay it scaled to this mean rate)."),
          slo_ms: str = option("slo_ms", ..., help="Latency objective (queue + service)."),
          policy: str = option("policy", "all", help="static, elastic, dense (the --versus baseline) or all."),
          cores: Optional[int] = option("cores", None, help="C of the static policy "
                                                                     "(default: the largest)."),
          cores_allowed: Optional[str] = option("cores_allowed", None, help="Budgets the elastic policy may use."),
          max_batch: Optional[str] = option("max_batch", None, help="Largest batch a device takes "
                                            "(default 8); with --solve, a comma list or auto "
                                            "(1, 2, 4 ... 64 as memory and the objective allow) "
                                            "to search (--solve batching's default: auto)."),
          batch_timeout_ms: Optional[str] = option("batch_timeout_ms", None, help="Longest the "
                                                   "oldest request waits for its batch to fill "
                                                   "(default 0); with --solve batching, a comma "
                                                   "list to search (default: 0 to 50% of the "
                                                   "objective)."),
          arrivals: str = option("arrivals", "poisson", help="poisson, bursty (MMPP-2: bursts at 4x the rate, "
                                            "1 s long, every 10 s on average) or a trace file."),
          duration_s: Optional[str] = option("duration_s", None, help="Simulated seconds "
                                             "(default: 100,000 requests' worth, and at least "
                                             "20 objectives, up to 1,000,000 requests)."),
          devices: Optional[int] = option("devices", None, help="Identical devices sharing the queue "
                                                     "(default 1)."),
          dtype: str = option("dtype", "auto", help="fp32, bf16, fp16 or auto (each device's best)."),
          quality: Optional[str] = option("quality", None, help="CSV cores,quality: expected quality per C."),
          versus: Optional[str] = option("versus", None, help="Dense baseline model."),
          seed: int = option("seed", 0, help="Seed of the arrivals (the same seed, the same stream)."),
          solve: Optional[str] = option("solve", None, help="devices: the fewest devices holding p99 "
                                                   "within the objective, per device type and "
                                                   "policy, ranked by --objective; batching: the "
                                                   "largest batch and batch timeout holding it "
                                                   "on --devices."),
          objective: Optional[str] = option("objective", None, help="How --solve devices ranks "
                                            "fleets: devices (fewest; the default), cost (USD "
                                            "per million images) or energy (J per image)."),
          impl: Optional[str] = Impl(), runtime: str = Runtime(),
          host_launch_us: Optional[float] = HostLaunchUs(),
          service_cv: Optional[str] = option("service_cv", None, help="Coefficient of "
                                             "variation of a batch's service time around the "
                                             "model's (gamma-distributed, seeded by --seed; "
                                             "default: the device's measured service_cv, else "
                                             "0, deterministic)."),
          out: Optional[str] = option("out", None, help="Chart of p99 and mean C against "
                                                                "offered load (.html/.png/.svg)."),
          force: bool = option("force", False, help="Replace --out if it exists."),
          device_file: Optional[str] = DeviceFile(), model_file: Optional[str] = ModelFile(),
          fmt: str = Format()) -> None:
    """Simulate serving a request stream: latency percentiles, objective attainment, C mix,
    energy and price per image.

    Exit status 3 with --solve devices when a device type and policy cannot hold the objective
    with any number of devices up to 4096 (planners.limits.MAX_DEVICES), and with --solve
    batching when no batching holds it on the fleet.
    """
    from planners.devices import get_device
    from planners.economics import check_objective_inputs
    from planners.serving import check_objective, check_service_cv

    fmt = check_format(fmt)
    _check_solve(solve, devices, objective, max_batch, batch_timeout_ms, out, device)
    devices = 1 if devices is None else devices
    if out:
        check_out(out)
        check_new(out, force)
    slo_s = _positive(slo_ms, "slo_ms") / 1e3
    timeouts_s = [t / 1e3 for t in _timeouts(batch_timeout_ms, solve)]
    rate_value = _positive(rate, "rate") if rate is not None else None
    duration = _positive(duration_s, "duration_s") if duration_s is not None else None
    _warn_absurd(devices, max(timeouts_s or [0.0]), slo_s, rate_value)
    devs = [with_host_launch(get_device(d, device_file), host_launch_us)
            for d in names(device, "device")]
    objective = objective or "devices"
    check_objective_inputs(objective, devs)
    spec = get_model(model, model_file)
    side = square(resolution, "serve")
    batches = _batches(max_batch, solve)
    if out and len(batches) > 1:  # a search's batches (a list, auto, --solve batching's default)
        raise CoreplanError("--out charts the load sweep at one --max-batch; give one value")
    explicit = max_batch is not None and max_batch.strip() != "auto"
    setups = [_policies(spec, d, side, dtype, policy, batches, explicit, cores, cores_allowed,
                        impl, runtime, versus, model_file) for d in devs]
    if len(devs) == 1:  # one device: an objective below its fastest service is refused
        check_objective(setups[0][2], slo_s, spec.name, devs[0].name)
    times, offered, length_s = _arrivals(arrivals, rate_value, duration, seed, slo_s)
    _warn_short(length_s, slo_s)
    table = _quality(quality, spec)
    given_cv = (check_service_cv(_at_least_zero(service_cv, "service_cv"))
                if service_cv is not None else None)
    kwargs = dict(slo_s=slo_s, service_cv=given_cv, seed=seed)
    timeout = timeouts_s[0] if timeouts_s else 0.0  # a run's (a search's: --solve batching's)
    cv_note = _cv_note(devs, given_cv) + "".join(  # and each device's caveats, as plan's
        f"\nnote: {n}" for d in devs for n in d.notes())
    source = arrivals if arrivals in ("poisson", "bursty") else Path(arrivals).name
    where = devs[0].name if len(devs) == 1 else f"{len(devs)} device types"
    how = "/".join(dict.fromkeys(s[1] for s in setups))  # each device's dtype, once
    how += "" if runtime == "eager" else f" {runtime}"
    title = (f"{spec.name} {side}px {how} on {where}: {rate_text(offered)} img/s offered "
             f"({source}), objective {slo_s * 1e3:g} ms")
    common = {"resolution": side, "runtime": runtime,
              "arrivals": source}  # what every JSON/CSV row was run under (and its device's CV)
    if solve == "devices":
        from planners.fleet import fleet_search

        options = [(d, policies) for d, _, policies in setups]
        fleets = fleet_search(options, times, objective=objective, batches=batches,
                              batch_timeout_s=timeout, offered_img_per_s=offered, **kwargs)
        dtypes = {d.name: dt for d, dt, _ in setups}
        emit_fleets(fmt, fleets, title, slo_s, offered, common, dtypes, objective, cv_note)
        code = 3 if any(f.devices is None for f in fleets) else 0
    elif solve == "batching":
        code = _solve_batching(fmt, setups, times, devices, batches, timeouts_s, title, offered,
                               common, cv_note, **kwargs)
    else:
        from planners.fleet import device_cv
        from planners.serving import serve as run

        found = [(d, dt, p, run(p, times, devices=devices, quality=table, max_batch=batches[0],
                                batch_timeout_s=timeout, slo_s=slo_s, seed=seed,
                                service_cv=device_cv(d, given_cv)))
                 for d, dt, policies in setups for p in policies]
        emit_results(fmt, found, title + f", {devices} device(s)", slo_s, offered, devices,
                      batches[0], table is not None, common, given_cv, cv_note)
        code = 0
    if out:
        from planners.fleet import device_cv

        dev, _dt, policies = setups[0]
        _chart(out, policies, arrivals, devices, table, max_batch=batches[0],
               batch_timeout_s=timeout, slo_s=slo_s, seed=seed,
               service_cv=device_cv(dev, given_cv))
    if code:
        raise typer.Exit(code)


SOLVES = ("devices", "batching")
DEFAULT_MAX_BATCH = 8
MOST_DEFAULT_REQUESTS = 1_000_000  # the default run's length is capped here (about 1 s of work)
DEFAULT_SPAN_OBJECTIVES = 20  # the default run spans at least this many objectives


def _check_solve(solve, devices, objective, max_batch, batch_timeout_ms, out, device) -> None:
    """The flags that only a search takes, and the search each needs, said before any work."""
    if solve is not None:
        check_choice("solve", solve, SOLVES)
    if solve == "devices" and devices is not None:
        raise CoreplanError("--solve devices finds the number of devices; drop --devices")
    if objective is not None and solve != "devices":
        check_choice("objective", objective, ("devices", "cost", "energy"))
        raise CoreplanError("--objective ranks the fleets of --solve devices; add --solve devices "
                            "(each run here has its --devices)")
    for given, name in ((max_batch, "--max-batch"), (batch_timeout_ms, "--batch-timeout-ms")):
        listed = given is not None and ("," in given or given.strip() == "auto")
        if listed and solve is None:
            raise CoreplanError(f"{name} takes a list or auto only with --solve (a search); "
                                f"without it, one value")
    if batch_timeout_ms is not None and "," in batch_timeout_ms and solve == "devices":
        raise CoreplanError("--solve devices runs at one --batch-timeout-ms; --solve batching "
                            "searches a list")
    if out and "," in device:
        raise CoreplanError("--out charts one device's load sweep; give one --device")


def _batches(text: Optional[str], solve: Optional[str]) -> list[int]:
    """The largest batches to run or search: one, a comma list or auto."""
    from planners.fleet import AUTO_BATCHES
    from planners.limits import MAX_BATCH

    if text is None:
        return list(AUTO_BATCHES) if solve == "batching" else [DEFAULT_MAX_BATCH]
    if text.strip() == "auto":
        return list(AUTO_BATCHES)
    values = sorted(set(ints(text, "max_batch")))
    bad = [v for v in values if not 1 <= v <= MAX_BATCH]
    if bad:
        raise CoreplanError(f"--max-batch must be an integer in 1..{MAX_BATCH}, got {bad[0]}")
    return values


def _timeouts(text: Optional[str], solve: Optional[str]) -> list[float]:
    """Batch timeouts in ms: none given is [0] (or, for --solve batching, the default shares)."""
    if text is None:
        return [] if solve == "batching" else [0.0]
    values = [_at_least_zero(part, "batch_timeout_ms") for part in text.split(",")]
    return sorted(set(values))


def _policies(spec, dev, side, dtype, policy, batches, explicit, cores, cores_allowed, impl,
              runtime, versus, model_file):
    """(device, dtype, policies) with service tables up to the largest batch of `batches` that
    fits the device's memory (every batch, when the list was given; auto: those that fit)."""
    from planners.planner import best_dtype
    from planners.serving import batch_bytes, make_policies

    dtype = best_dtype(dev) if dtype == "auto" else dtype
    fitting = [b for b in batches
               if batch_bytes(spec, dev, resolution=side, dtype=dtype, batch=b, impl=impl)
               <= dev.memory_capacity_bytes]
    # a listed batch must fit (refused, saying why); of auto's, the largest that fits
    largest = max(batches) if explicit else max(fitting or batches[:1])
    policies = make_policies(spec, dev, resolution=side, dtype=dtype, policy=policy,
                             max_batch=largest, cores=cores,
                             cores_allowed=ints(cores_allowed, "cores_allowed")
                             if cores_allowed else None, impl=impl, runtime=runtime,
                             versus=get_model(versus, model_file) if versus else None)
    return dev, dtype, policies


def _cv_note(devs, given) -> str:
    """Which service-time variation each device ran with, and where it comes from."""
    if given is not None:
        return (f"service times varied with CV {given:g} (--service-cv)" if given else
                "service times deterministic (--service-cv 0)")
    measured = [f"{d.name} {d.service_cv:.3g}" for d in devs if d.service_cv]
    bare = [d.name for d in devs if not d.service_cv]
    said = []
    if measured:
        said.append(f"service times varied with the device's measured CV ({', '.join(measured)})")
    if bare:
        said.append(f"deterministic on {', '.join(bare)} (no measured service_cv; "
                    f"--service-cv sets one)")
    return "; ".join(said)


def _warn_short(span: float, slo_s: float) -> None:
    """A run (its simulated seconds, or a trace's span) shorter than a few objectives sees only
    a transient: said in one line, with the duration that would see a growing queue."""
    if span < SPAN_OBJECTIVES * slo_s:
        print(f"coreplan: warning: the arrivals span {span:.3g} s, {span / slo_s:.2g}x the "
              f"{slo_s * 1e3:g} ms objective: a queue that grows shows only its start; "
              f"--duration-s {SPAN_OBJECTIVES * slo_s:g} or more runs long enough to see it",
              file=sys.stderr)


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


LONGEST_TRACE_S = 1e7  # s: 116 days; a longer trace is taken literally, with a warning


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
    if slo_s > PLAUSIBLE_OBJECTIVE_S:
        said.append(f"--slo-ms {slo_s * 1e3:g} is {slo_s / PLAUSIBLE_OBJECTIVE_S:.3g} days, no "
                    f"serving objective (up to a day is plausible)")
    for line in said:
        print(f"coreplan: warning: {line}; taken literally", file=sys.stderr)


def default_duration_s(rate: float, slo_s: float) -> float:
    """The default run: 100,000 requests' worth, and at least 20 objectives (a queue that grows
    shows), up to 1,000,000 requests (then the short-run warning says so)."""
    wanted = max(REQUESTS_BY_DEFAULT / rate, DEFAULT_SPAN_OBJECTIVES * slo_s)
    return min(wanted, MOST_DEFAULT_REQUESTS / rate)


def _arrivals(kind: str, rate_value: Optional[float], duration: Optional[float], seed: int,
              slo_s: float):
    """The arrival times, the offered rate (img/s) and the run's length (s: the simulated
    duration of a generated stream, a trace's span)."""
    from planners import workload

    if kind in workload.PROCESSES:
        if rate_value is None:
            raise CoreplanError(f"--rate is needed with --arrivals {kind}")
        duration = duration or default_duration_s(rate_value, slo_s)
        times = workload.PROCESSES[kind](rate_value, duration, seed)
        if len(times) == 0:
            raise CoreplanError(f"no request arrives in {duration:g} s at {rate_value:g}/s; "
                                f"give a longer --duration-s")
        return times, rate_value, duration
    if not Path(kind).exists() and "." not in kind and "/" not in kind:
        raise CoreplanError(f"unknown --arrivals {kind!r}; choose poisson, bursty or a trace file")
    times = workload.read_trace(kind, rate_value, duration)
    span = float(times[-1] - times[0]) or 1.0
    if span > LONGEST_TRACE_S:
        print(f"coreplan: warning: the trace spans {span:.3g} s (its last arrival at "
              f"{float(times[-1]):.3g} s), beyond any recorded workload ({LONGEST_TRACE_S:g} s "
              f"is 116 days); taken literally", file=sys.stderr)
    return times, rate_value or len(times) / span, float(times[-1] - times[0])


def _quality(path: Optional[str], spec):
    if path is None:
        return None
    if not spec.is_core:
        raise CoreplanError(f"--quality maps core budgets; {spec.name} is dense")
    from planners.workload import check_quality_budgets, read_quality

    table = read_quality(path)
    check_quality_budgets(table, spec)
    return table


def _solve_batching(fmt, setups, times, devices, batches, timeouts_s, title, offered, common,
                    cv_note, *, slo_s, service_cv, seed) -> int:
    """--solve batching: every largest batch and timeout tried on the fleet (planners.fleet)."""
    from coreplan.serve_output import emit_batching
    from planners.fleet import batching_search, device_cv

    found = []
    for dev, dtype, policies in setups:
        cv = device_cv(dev, service_cv)
        for policy in policies:
            best, tried = batching_search(policy, times, devices=devices, slo_s=slo_s,
                                          batches=batches, timeouts_s=timeouts_s or None,
                                          service_cv=cv, seed=seed)
            found.append((dev, dtype, policy, cv, best, tried))
    return emit_batching(fmt, found, devices, title, offered, common, cv_note, slo_s)


def _chart(out, policies, arrivals, devices, quality, *, slo_s, seed, **kwargs) -> None:
    """p99 and mean C against offered load, up to 1.2x the static (or first) policy's capacity."""
    from coreplan import charts
    from planners import workload
    from planners.serving import load_sweep

    reference = policies[0]
    capacity = reference.table.capacity_img_per_s(reference.cores, devices, kwargs["max_batch"])
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
