"""`coreplan profile`: this machine as a calibrated device file, in one call.

Three stages within one time budget (default 300 s with start-up, on 2 cores):
1. op curves (reference/profile.py): every op at the shapes the catalog's models produce, each
   point beside the machine probe, busy points and falling curves measured again;
2. calibration: a small fixed set of whole models spanning the op mix (VECA split and masked,
   DINOv2 with a learned position table, DINOv3 with RoPE; small and base; a few sides and
   batches), timed as `validate` times them in interleaved rounds spread over the profile (one
   before the op curves, one after them, one at the end), so that the machine's drift over the
   profile's minutes reaches them all alike and its size, the spread between a model's rounds,
   widens the latency interval; on a CPU each round also runs each model under the profiler,
   and each op class's efficiency is its ops' profiled seconds over the seconds the models
   spent in them, and the per-op overhead the time between the top-level ops over the graph's
   launches (reference/attribution.py, planners/calibrate.calibrate_attributed); elsewhere the
   efficiencies are fitted as `calibrate` fits them with the overhead held at the profile's
   dispatch cost; held out by resolution;
3. footprint: fresh processes of plain torch and of Hugging Face transformers running forwards
   whose activation peaks span a few MB to over 1 GB, fitted into the footprint terms
   (planners/footprint_fit.py).
The device file records the CPU model, the thread count and the torch version it was measured
with (`measured_on`), the machine's state while profiled, the calibration's held-out error and the
spread of the whole models' repeated forwards (`service_cv`, which `serve` varies service times
by).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field, replace

from costmodel.config import configure
from costmodel.memory import inference_memory
from costmodel.spec import get_model
from planners.footprint_fit import FIT

# (model, side px, batch, C, impl): whole models the calibration times; 4 resolution groups
CALIBRATION = (("veca-small", 224, 1, 64, "split"), ("dinov2-small", 224, 1, None, None),
               ("dinov3-small", 256, 2, None, None), ("veca-base", 256, 1, 64, "split"),
               ("dinov3-base", 256, 1, None, None), ("veca-small", 384, 1, 8, "split"),
               ("dinov2-small", 448, 1, None, None), ("veca-small", 512, 1, 32, "masked"),
               ("dinov3-small", 512, 1, None, None), ("veca-small", 512, 2, 64, "split"))
# (framework, model, side px, batch, C): the fresh processes the footprint terms are fitted on
# (planners.footprint_fit.FIT: activation peaks from 4 MB to about 1 GB)
FOOTPRINT = tuple(("transformers" if source == "hf" else "torch", model, side, batch, cores)
                  for source, model, side, batch, cores in FIT)
# Shares of the budget. On 2026-12-01 (2 cores) the footprint's processes took 154 s with a
# 1022 px, batch 12 transformers process (88 s, most of it dense attention over 5,330 tokens);
# 448 px at batch 56 reaches as many activations with a fifth of the attention work (the nine of
# FIT: 84 s).
SHARES = {"curves": 0.40, "calibration": 0.22, "footprint": 0.38}
STARTUP_S = {"torch": 2.5, "transformers": 6.5}  # a fresh process's start, before any forward
# footprint processes with activations below this are measured twice (three times where the two
# differ by more than REPEAT_AGREE): the small ones, a few seconds each
REPEAT_BELOW_BYTES = 256e6
REPEAT_AGREE = 0.03


@dataclass(frozen=True)
class OwnDevice:
    """The profiled device and what each stage found (for the caller to print)."""

    device: object  # planners.devices.DeviceSpec
    curves: object  # reference.profile.ProfileRun
    calibration: object | None  # planners.calibrate.Calibration, or None where it was not made
    calibration_note: str
    footprint_rows: int
    seconds: float
    stage_seconds: dict = field(default_factory=dict)  # each stage's own wall time
    footprint_note: str = ""  # processes left out to keep to the budget, if any

    def timing(self) -> str:
        """e.g. '298 s in all (curves 121 s, calibration 64 s, footprint 113 s)'."""
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in self.stage_seconds.items())
        return f"{self.seconds:.0f} s in all" + (f" ({parts})" if parts else "")


def measure(name: str, *, device: str = "cpu", dtype: str = "fp32", threads: int | None = None,
            budget_s: float = 300.0, calibrate: bool = True, footprint: bool = True,
            on_stage=None, on_point=None) -> OwnDevice:
    """Profile, calibrate and measure the footprint of this machine within `budget_s`.
    `on_stage(name, detail)` and `on_point(done, total, point)` report progress."""
    from reference.profile import profiled_device, run_profile

    start = time.monotonic()
    say = on_stage or (lambda stage, detail: None)
    stages = [s for s, on in (("curves", True), ("calibration", calibrate),
                              ("footprint", footprint and device == "cpu")) if on]
    share = sum(SHARES[s] for s in stages)
    budget = {s: budget_s * SHARES[s] / share for s in stages}
    took, mark = {}, time.monotonic()

    def done(stage):
        nonlocal mark
        took[stage], mark = time.monotonic() - mark, time.monotonic()

    # the calibration's rounds: one before the op curves, one after them, one at the end (after
    # the footprint), each a third of its share
    rounds, per_round = None, budget.get("calibration", 0.0) / ROUNDS

    def calibration_round(which: str, until: float = math.inf) -> None:
        nonlocal mark
        if rounds is None:
            return
        say("calibration", f"round {which} of {ROUNDS}: {len(CALIBRATION)} whole models, about "
                           f"{per_round:.0f} s")
        begin = time.monotonic()
        rounds.round(min(begin + per_round, until))
        took["calibration"] = took.get("calibration", 0.0) + time.monotonic() - begin
        mark = time.monotonic()

    if "calibration" in stages:
        say("calibration", f"{len(CALIBRATION)} whole models in {ROUNDS} rounds spread over the "
                           f"profile, about {budget['calibration']:.0f} s in all")
        built = time.monotonic()
        rounds = CalibrationRounds(CALIBRATION, device, dtype, threads, attributed=device == "cpu")
        took["calibration"] = time.monotonic() - built
        calibration_round("1")
    say("curves", f"op times, about {budget['curves']:.0f} s")
    run = run_profile(device=device, dtype=dtype, threads=threads, budget_s=budget["curves"],
                      source=_source(device, dtype), on_point=on_point)
    spec = replace(profiled_device(name, device, run), measured_on=_measured_on(device, run))
    done("curves")
    for which in range(2, ROUNDS):
        calibration_round(str(which))
    rows, left, terms = 0, "", None
    if "footprint" in stages:
        say("footprint", f"{len(FOOTPRINT)} fresh processes, about {budget['footprint']:.0f} s")
        last_round = per_round if rounds is not None else 0.0  # kept for the round at the end
        terms, rows, left = footprint_terms(threads, start + budget_s - last_round, device=spec)
        done("footprint")
    # the last round yields what a stage before it overran (a footprint process started before
    # its deadline finishes after it: 2026-12-02's -s15e took 302.6 s of its 300)
    calibration_round(str(ROUNDS), until=start + budget_s)
    calibration, note = None, "not made"
    if rounds is not None:
        calibration, note = _calibrate(spec, rounds)
        if calibration is not None:
            spec = calibration.device
    if terms is not None:
        spec = replace(spec, footprint=terms)
    return OwnDevice(spec, run, calibration, note, rows, time.monotonic() - start, took, left)


def _source(device: str, dtype: str) -> str:
    from reference.machine import machine_name

    return f"coreplan profile on {machine_name(device)}, {dtype}"


def _measured_on(device: str, run) -> str:
    import torch

    from reference.machine import machine_name

    n = run.profile.threads
    return f"{machine_name(device)}, {n} thread{'s' if n != 1 else ''}, torch {torch.__version__}"


# the calibration's models are timed in turn, round after round (the VM's speed drifts). Three
# back-to-back calibrations against one profile's curves (2026-12-01, 2 cores) gave gemm 0.92,
# 0.95, 1.00 as the probe's median went 2.51, 2.43, 2.41 ms: what a calibration measures moves
# with the machine's speed while it runs. Five rounds took the whole profile to 296 s of its 300
# (the calibration 71 s) with no sign of a steadier result, so three it is.
ROUNDS = 3


def _calibrate(spec, rounds: "CalibrationRounds"):
    """Fit the efficiencies and overhead relative to the profile (as `calibrate` does) to the
    CALIBRATION models' rounds (a model's time is the median of its rounds); the latency interval
    of the held-out error widened by the machine's drift between the rounds (`widened`);
    (Calibration or None, a line)."""
    from planners.calibrate import calibrate, calibrate_attributed

    rows, spent = rounds.records()
    timed = [i for i, r in enumerate(rows) if r.timed]
    groups = {round(rows[i].resolution / 64) for i in timed}
    if len(groups) < 2:
        return None, (f"not made: {len(timed)} of {len(CALIBRATION)} models timed quietly within "
                      f"its share of the budget (2 sides at least are needed)")
    # on a CPU each class's efficiency and the per-op overhead (the time between the top-level
    # ops) are measured by attribution; elsewhere ten rows cannot tell an overhead from the
    # efficiencies: it is held at the profile's dispatch cost and the three are fitted
    if rounds.attributed:
        cal = calibrate_attributed([rows[i] for i in timed], [spent[i][:-1] for i in timed],
                                   spec, spec.profile.dispatch_s, [spent[i][-1] for i in timed])
    else:
        cal = calibrate([rows[i] for i in timed], spec, overhead_s=spec.profile.dispatch_s)
    problems = cal.problems()
    if problems:
        return None, f"not used: {problems[0]}"
    # the speed these times stand for: the probe's median reading while they were timed
    readings = [rows[i].probe_ms for i in timed if rows[i].probe_ms]
    device = cal.device
    if readings:
        device = replace(device, profile=replace(device.profile,
                                                 probe_ms=statistics.median(readings)))
    # the models as timed now, for `coreplan recheck` to time again later
    device = replace(device, profile=replace(device.profile, calibration_ms={
        rows[i].label(): round(rows[i].time_ms_median, 4) for i in timed}))
    drift = rounds.drift()
    if drift is not None and device.latency_interval:
        device = replace(device, latency_interval=widened(device.latency_interval, drift))
    cal = replace(cal, device=device)
    h = cal.holdout
    how = "attributed by op class" if rounds.attributed else "fitted"
    eff = ", ".join(f"{k} {v:.2f}" for k, v in cal.fit.efficiency.items())
    lo, hi = device.latency_interval or (None, None)
    spread = (f"; the rounds, {rounds.span_s():.0f} s apart at most, moved x{drift[0]:.3f} to "
              f"x{drift[1]:.3f} (5-95%), so the interval is x{lo:.3f} to x{hi:.3f}"
              if drift is not None and lo else "")
    slowed = rounds.profiler_ratio() if rounds.attributed else None
    under = (f" (their profiled forwards x{slowed:.2f} their timed ones: the profiler's shares "
             f"of the timed times)" if slowed else "")
    return cal, (f"{h.rows} whole models, efficiencies {how}{under} ({eff}), held out by "
                 f"resolution: MAPE {h.mape:.1%}, within ±10% {h.within_10pct:.0%}, max |error| "
                 f"{h.max_abs_error:.1%}{spread}")


def widened(interval: tuple[float, float], drift: tuple[float, float]) -> tuple[float, float]:
    """A latency interval (measured / predicted, 5-95%) widened by the machine's own drift (a
    model's round over its median, 5-95%): on each side of the interval's geometric middle, the
    two log-widths added in quadrature, as for two independent errors (the model's on a
    configuration, the machine's speed when it runs). A drift of (1, 1) leaves it as it is."""
    import math

    middle = math.sqrt(interval[0] * interval[1])
    low = math.hypot(math.log(interval[0] / middle), math.log(min(drift[0], 1.0)))
    high = math.hypot(math.log(interval[1] / middle), math.log(max(drift[1], 1.0)))
    return middle * math.exp(-low), middle * math.exp(high)


class CalibrationRounds:
    """The calibration's whole models, built once and timed a round at a time beside the machine
    probe (reference.timing.interleaved: each round times each model once), so that the rounds
    can be spread over the profile: one before the op curves, one between the stages, one at the
    end. What they measure then stands for the minutes the profile took, and the spread between a
    model's rounds is the machine's drift over them. With `attributed`, each round also runs each
    model once under the profiler (reference/attribution.py)."""

    def __init__(self, cases, device: str, dtype: str, threads, attributed: bool = False):
        import torch

        from reference.counting import make_inputs
        from reference.models import build_model, forward_kwargs
        from reference.timing import Probe

        if threads:
            torch.set_num_threads(threads)
        self.device, self.attributed = device, attributed
        self.probe = Probe(device)
        self.probe.settle()
        self.calls, self.times, self.classes, self.starts = {}, {}, {}, []
        for model, side, batch, cores, impl in cases:
            c = configure(get_model(model), side, cores=cores, batch=batch, impl=impl,
                          dtype=dtype)
            torch.manual_seed(0)
            net = build_model(c.spec, impl=c.impl).eval()
            images, kwargs = make_inputs(c, device), forward_kwargs(c.spec, c.core_tokens)
            self.calls[c] = lambda net=net, images=images, kwargs=kwargs: net(images, **kwargs)

    def round(self, deadline: float) -> int:
        """One round (warm-up calls in the first); nothing more is timed past `deadline`
        (time.monotonic()). Returns how many models it timed."""
        import torch

        from costmodel.registry import OP_CLASSES
        from reference.attribution import attribute
        from reference.timing import interleaved

        first, timed = not self.starts, 0
        self.starts.append(time.monotonic())
        with torch.no_grad():
            for _, c, t in interleaved(self.calls, 1, min_run_time_s=0.15, min_repeats=2,
                                       warmup=1 if first else 0, device=self.device,
                                       probe=self.probe, deadline=deadline):
                self.times.setdefault(c, []).append(t)
                timed += 1
                if self.attributed:
                    found = attribute(self.calls[c])
                    self.classes.setdefault(c, []).append(
                        [found.seconds[k] for k in OP_CLASSES] + [found.unattributed_s])
        return timed

    def span_s(self) -> float:
        """Seconds from the first round's start to the last's."""
        return self.starts[-1] - self.starts[0] if self.starts else 0.0

    def drift(self) -> tuple[float, float] | None:
        """5th and 95th percentile of each model's quiet rounds over that model's median, pooled
        over the models with two quiet rounds or more; None with fewer than four such ratios."""
        import numpy as np

        ratios = []
        for timings in self.times.values():
            quiet = [t.median_ms for t in timings if not t.busy_reason()]
            if len(quiet) >= 2:
                middle = statistics.median(quiet)
                ratios += [q / middle for q in quiet]
        if len(ratios) < 4:
            return None
        low, high = np.percentile(ratios, [5, 95])
        return float(low), float(high)

    def records(self) -> tuple[list, list]:
        """Measurement records of the models timed so far (a model's time the median of its
        quiet rounds) and, per record, its seconds per op class (OP_CLASSES order) followed by
        its unattributed seconds, or None: the record's own time split by the profiler's shares
        (`split`)."""
        import torch

        from costmodel.measurements import Measurement
        from reference.machine import machine_name
        from reference.timing import combine_rounds

        rows, spent = [], []
        for c, timings in self.times.items():
            r = combine_rounds(timings)
            quiet = [t for t in timings if not t.busy_reason()] or timings
            rows.append(Measurement(
                c.spec.name, c.height, c.core_tokens, c.impl, c.batch, c.dtype,
                "busy" if r.busy else "ok", family=c.spec.family,
                patch_tokens=c.patch_tokens, device=self.device,
                device_name=machine_name(self.device), threads=torch.get_num_threads(),
                repeats=r.repeats, time_ms_median=r.median_ms,
                time_ms_iqr=statistics.median(t.iqr_ms for t in quiet),  # the spread within a round
                probe_ms=r.probe_ms, probe_ratio=r.probe_ratio,
                note=f"calibration, {r.quiet} of {r.rounds} rounds quiet"))
            spent.append(split(self.classes.get(c), r.median_ms / 1e3))
        return rows, spent

    def profiler_ratio(self) -> float | None:
        """How much slower the models ran under the profiler than timed plainly: the median over
        the models of their profiled wall time (mean over rounds) over their time; None where
        nothing was attributed."""
        from reference.timing import combine_rounds

        ratios = [statistics.mean(sum(k) for k in self.classes[c]) /
                  (combine_rounds(t).median_ms / 1e3)
                  for c, t in self.times.items() if self.classes.get(c)]
        return statistics.median(ratios) if ratios else None


RECHECK_ROUNDS = 3  # coreplan recheck: the calibration's models timed in up to this many rounds


def recheck(*, device: str = "cpu", dtype: str = "fp32", threads: int | None = None,
            budget_s: float = 60.0, cases=CALIBRATION,
            on_round=None) -> tuple[list, int, tuple | None]:
    """The calibration's whole models (`cases`) timed now, as a profile times them, in up to
    RECHECK_ROUNDS interleaved rounds within `budget_s` (building them included): (their
    measurement records, the rounds timed, how far the rounds moved: CalibrationRounds.drift).
    `on_round(done, total)` reports progress."""
    deadline = time.monotonic() + budget_s
    rounds = CalibrationRounds(cases, device, dtype, threads)
    for done in range(RECHECK_ROUNDS):
        now = time.monotonic()
        if now >= deadline:
            break
        if on_round:
            on_round(done, RECHECK_ROUNDS)
        rounds.round(now + (deadline - now) / (RECHECK_ROUNDS - done))  # an equal share each
    return rounds.records()[0], len(rounds.starts), rounds.drift()


def split(attributed, seconds: float):
    """`seconds` (a model's time, timed without the profiler) split as the profiler split its
    forwards: `attributed` holds one forward's profiled seconds per op class and unattributed
    seconds per round; each round's shares of its own total, averaged over the rounds, times
    `seconds`. The profiler's own cost per op (profiled forwards ran x1.02-1.24 their timed
    time in four profiles of 2026-12-01, 2-core EPYC: CalibrationRounds.profiler_ratio) stays
    out of the efficiencies: the profiler says where the time goes, the timer how much there is.
    None without rounds."""
    rounds = [k for k in attributed or () if sum(k) > 0]
    if not rounds:
        return None
    shares = [statistics.mean(k[i] / sum(k) for k in rounds) for i in range(len(rounds[0]))]
    return [share * seconds for share in shares]


def footprint_terms(threads: int | None = None, deadline: float | None = None,
                    configs=FOOTPRINT, device=None):
    """(the footprint terms fitted on the `configs` processes measured before the deadline, how
    many ran, which were left out and why); the terms are None when fewer than four ran or none
    of them plain torch. With `device` (the profiled device), a process predicted (its start and
    its forward, by the device's own latency model) to end after the deadline is left out
    rather than started."""
    from planners.footprint_fit import Observation, fit_model
    from reference.footprint import measure as measure_process

    left, measured = [], []  # measured: (framework, config, process runner, need, runs)
    for framework, model, side, batch, cores in configs:  # each process once, in order
        c = configure(get_model(model), get_model(model).round_resolution(side), batch=batch,
                      cores=cores)
        need = STARTUP_S[framework] + (_forward_s(c, device) if device is not None else 0.0)
        if deadline is not None and time.monotonic() + need > deadline:
            cores_text = f" C={cores}" if cores else ""
            left.append(f"{framework} {model} {side} px{cores_text} B={batch} (about "
                        f"{need:.0f} s)")
            continue
        run = (lambda model=model, side=side, batch=batch, cores=cores, framework=framework:
               measure_process(model, side, batch=batch, cores=cores, threads=threads or 2,
                               source="hf" if framework == "transformers" else "reference"))
        try:
            measured.append((framework, c, run, need, [run()]))
        except (RuntimeError, OSError):
            continue  # transformers missing, or a process that failed: fit on the others
    # then, as time allows, a small process is measured again (a few seconds), and a third time
    # where the two disagree: its peak RSS now and then lands 8% off (458 against 497-510 MB in
    # seven runs of one), enough to move the fitted factor. Repeats come after every process has
    # run once, so that they never crowd out a large process the budget has room for.
    for framework, c, run, need, runs in measured:
        small = inference_memory(c).activation_peak_bytes < REPEAT_BELOW_BYTES
        try:
            while small and len(runs) < 3 and (len(runs) == 1 or _disagree(runs)) and (
                    deadline is None or time.monotonic() + need < deadline):
                runs.append(run())
        except (RuntimeError, OSError):
            pass  # keep the runs it had
    rows = []
    for framework, c, _, _, runs in measured:
        f = _centre(runs)
        rows.append(Observation(c, framework, f.baseline_bytes, f.built_bytes, f.forward_bytes))
    note = f"left out to keep to the budget: {'; '.join(left)}" if left else ""
    if len(rows) < 4 or not any(r.framework == "torch" for r in rows):
        return None, len(rows), note
    frameworks = " and ".join(sorted({r.framework for r in rows}))
    return fit_model(rows, source=f"measured by `coreplan profile`: peak RSS of {len(rows)} "
                                  f"fresh processes ({frameworks})",
                     mapped_above=mapping_threshold()), len(rows), note


def _disagree(runs) -> bool:
    """Two measurements of one process whose peaks differ by more than REPEAT_AGREE."""
    a, b = runs[0].forward_bytes, runs[1].forward_bytes
    return abs(a - b) > REPEAT_AGREE * min(a, b)


def _centre(runs):
    """One measurement standing for a process's runs: the one, the mean of two that agree, the
    median (by peak) of three."""
    from reference.footprint import Footprint

    if len(runs) == 1:
        return runs[0]
    if len(runs) == 2:
        return Footprint(*(sum(getattr(r, k) for r in runs) / 2
                           for k in ("baseline_bytes", "built_bytes", "forward_bytes")))
    return sorted(runs, key=lambda r: r.forward_bytes)[1]


def mapping_threshold() -> float:
    """The size above which this process's allocator maps a block apart and returns it when it
    is freed: glibc malloc's largest mmap threshold on a 64-bit Linux (planners.footprint), else
    0 (no such split is modelled)."""
    import platform
    import sys

    from planners.footprint import GLIBC_MMAP_THRESHOLD_MAX

    if platform.libc_ver()[0] == "glibc" and sys.maxsize > 2**32:
        return float(GLIBC_MMAP_THRESHOLD_MAX)
    return 0.0


def _forward_s(config, device) -> float:
    """The device's predicted time of one forward (the planner's latency model; in the dtype the
    device was profiled in: the footprint's processes run fp32, a profile may not)."""
    from planners.planner import predicted_seconds

    if device.profile is not None:
        config = replace(config, dtype=device.profile.dtype)
    return float(predicted_seconds([config], device)[0])
