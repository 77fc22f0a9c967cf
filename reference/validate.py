"""The measured-vs-predicted sweep behind `coreplan validate`.

Each configuration becomes one CSV row, appended and flushed as soon as it finishes, so an
interrupted sweep loses nothing finished and `resume=True` skips what is already in the file.
Counting (meta device, shapes only) and timing (real tensors) are separate steps of one row.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from costmodel.attention import attention_impl, impls
from costmodel.config import Config, configure
from reference.machine import free_memory_bytes, machine_name
from reference.timing import BUSY_DISPERSION, BUSY_PROBE_RATIO
from costmodel.measurements import Measurement, MeasurementWriter, key_of
from costmodel.spec import ModelSpec

QUICK = dict(models=("veca-small", "dinov2-small", "dinov2-small-reg", "dinov3-small"),
             resolutions=(64,), cores=(8, 64), impls=impls("core"), batches=(1, 2),
             dtypes=("fp32",))
FULL = dict(models=None, resolutions=(256, 512, 1024), cores=(8, 64), impls=("split", "masked"),
            batches=(1, 4), dtypes=("fp32",))  # models None: the whole catalog


@dataclass(frozen=True)
class Case:
    """One configuration of the sweep (resolution already a multiple of the model's patch)."""

    spec: ModelSpec
    resolution: int
    core_tokens: int
    impl: str
    batch: int
    dtype: str
    device: str

    def key(self) -> tuple[str, ...]:
        """The key of the row it writes (the sweep runs the torch reference models eagerly)."""
        return key_of(model=self.spec.name, resolution=self.resolution,
                      core_tokens=self.core_tokens, impl=self.impl, batch=self.batch,
                      dtype=self.dtype, device=self.device, runtime="eager", framework="torch")

    def config(self) -> Config:
        return configure(self.spec, self.resolution, cores=self.core_tokens or None,
                         batch=self.batch, impl=self.impl, dtype=self.dtype)

    def label(self) -> str:
        cores = f" C={self.core_tokens}" if self.core_tokens else ""
        return f"{self.spec.name} {self.resolution}px{cores} {self.impl} B={self.batch} {self.dtype}"


def plan_cases(specs, resolutions, cores, impl_names, batches, dtypes, device) -> list[Case]:
    """The sweep's cases: dense models take their default impl (`dense`) and no cores; each
    resolution is rounded down to the model's patch multiple (224 stays 224 at patch 14, 256
    becomes 252)."""
    cases = []
    for spec in specs:
        res_list = sorted({spec.round_resolution(r) for r in resolutions})
        for res in res_list:
            pairs = ([(c, i) for c in cores for i in impl_names] if spec.is_core
                     else [(0, i) for i in impls("dense")[:1]])
            for core_tokens, impl in pairs:
                for batch in batches:
                    for dtype in dtypes:
                        cases.append(Case(spec, res, core_tokens, impl, batch, dtype, device))
    for case in cases:
        case.config()  # validate every case before the sweep starts
    return cases


# --------------------------------------------------------------------------- one row
@dataclass(frozen=True)
class Options:
    """How each case is measured.

    Args:
        time_it: run and time real forwards (False: count and predict only).
        min_run_time_s: per-case timing budget (timed forwards keep running until it is spent).
        min_repeats: at least this many timed forwards, each after a probe sample.
        warmup: untimed forwards first.
        threads: CPU intra-op threads (recorded in the row).
        compile_flex: torch.compile the flex kernel.
        memory_headroom: skip a case (status oom) when predicted memory x this exceeds free memory.
        busy_probe_ratio, busy_dispersion: a row whose probe ran slower than its quiet time by
            more than this ratio, or whose IQR exceeds this share of its median, gets status busy.
        footprint: also measure the process footprint (CPU): peak RSS of a fresh worker process
            by stage (reference/footprint.py), so no row sees another's high-water mark.
        graph: also time the forward replayed as a CUDA graph (`time_ms_graph`): the same
            kernels with no launch from Python, so the difference is the launch cost.
        count_on_device: count FLOPs with FlopCounterMode around the device's own forward (the
            kernels its SDPA backend picks) instead of on the meta device; fvcore, which traces
            the same graph on any device, then counts the batch-1 rows only.
        count, memory: count FLOPs, measure the activation peak (False: time only, as a
            calibration does).
    """

    time_it: bool = True
    min_run_time_s: float = 1.0
    min_repeats: int = 5
    warmup: int = 2
    threads: int | None = None
    compile_flex: bool = False
    memory_headroom: float = 1.5
    busy_probe_ratio: float = BUSY_PROBE_RATIO
    busy_dispersion: float = BUSY_DISPERSION
    footprint: bool = False
    graph: bool = False
    count_on_device: bool = False
    count: bool = True
    memory: bool = True


def _base_row(case: Case, c: Config, threads: int, mem) -> dict:
    import torch

    from costmodel.cost import count

    return dict(model=case.spec.name, family=case.spec.family, resolution=case.resolution,
                patch_tokens=c.patch_tokens, core_tokens=c.core_tokens, impl=c.impl,
                batch=c.batch, dtype=c.dtype, device=case.device,
                device_name=machine_name(case.device), runtime="eager", framework="torch",
                torch_version=torch.__version__,
                threads=threads if case.device == "cpu" else None,
                flops_predicted=count(c, "model", "flop").total,
                macs_predicted=count(c, "model", "mac").total,
                mem_activation_peak_bytes_predicted=mem.activation_peak_bytes)


def _count(row: dict, c: Config, notes: list[str], options: Options) -> None:
    from reference.counting import UncountableError, count_forward, count_macs

    try:
        if options.count_on_device and options.time_it:
            # FlopCounterMode runs with the timed forward (_measure); fvcore at batch 1 only
            counted = {"flops": None, "macs": None, "fvcore_unsupported": {}}
            if c.batch == 1:
                counted.update(count_macs(c))
        else:
            counted = count_forward(c)
    except UncountableError as err:
        row["flops_match"] = "uncountable"
        notes.append(str(err))
        return
    except ImportError as err:  # a machine without fvcore: FlopCounterMode alone
        counted = {"flops": None, "macs": None, "fvcore_unsupported": {}}
        notes.append(f"fvcore not counted ({err.name or err} missing)")
    row["flops_flopcounter"], row["macs_fvcore"] = counted["flops"], counted["macs"]
    _match(row, counted["fvcore_unsupported"], notes)


def _match(row: dict, unsupported: dict, notes: list[str]) -> None:
    """exact when every count present equals its prediction (and fvcore left nothing out)."""
    pairs = [(row.get("flops_flopcounter"), row["flops_predicted"]),
             (row.get("macs_fvcore"), row["macs_predicted"])]
    present = [(got, want) for got, want in pairs if got is not None]
    if not present:
        return
    exact = all(got == want for got, want in present) and not unsupported
    row["flops_match"] = "exact" if exact else "MISMATCH"
    if unsupported:
        notes.append("fvcore unsupported: " + ", ".join(unsupported))


class ModelCache:
    """The last few reference models built, by (model, impl, dtype, device, compiled flex)."""

    def __init__(self, keep: int = 2) -> None:
        self.keep, self.models = keep, {}

    def get(self, c: Config, device: str, compile_flex: bool):
        from reference.counting import DTYPES
        from reference.models import build_model

        key = (c.spec, c.impl, c.dtype, device, compile_flex)
        if key not in self.models:
            while len(self.models) >= self.keep:
                self.models.pop(next(iter(self.models)))
            model = build_model(c.spec, impl=c.impl, compile_flex=compile_flex)
            self.models[key] = model.to(device=device, dtype=DTYPES[c.dtype]).eval()
        return self.models[key]


def _measure(row: dict, case: Case, c: Config, options: Options, notes: list[str], probe,
             models: ModelCache | None = None) -> None:
    import torch

    from reference.counting import make_inputs
    from reference.memory import MemoryMeasurement, measure_forward_cpu, measure_forward_cuda, \
        weights_bytes
    from reference.models import forward_kwargs
    from reference.timing import time_call

    torch.manual_seed(0)
    model = (models or ModelCache(keep=1)).get(c, case.device, options.compile_flex)
    images = make_inputs(c, case.device)
    kwargs = forward_kwargs(c.spec, c.core_tokens)
    impl = attention_impl(c.impl)
    if impl.uncompiled_note and not options.compile_flex:
        notes.append(impl.uncompiled_note)
    if not options.memory:
        mem = MemoryMeasurement(weights_bytes(model), None)
    elif case.device == "cuda":
        mem = measure_forward_cuda(model, images, **kwargs)
    elif not impl.tracked:
        mem = MemoryMeasurement(weights_bytes(model), None)
        notes.append(f"CPU live-tensor tracker cannot see inside the {c.impl} kernel: memory not "
                     f"measured")
    else:
        mem = measure_forward_cpu(model, images, **kwargs)
    row["mem_weights_bytes"] = mem.weights_bytes
    row["mem_activation_peak_bytes_measured"] = mem.activation_peak_bytes
    row["mem_reserved_peak_bytes_measured"] = mem.reserved_peak_bytes

    def forward():
        with torch.no_grad():
            model(images, **kwargs)

    if options.count_on_device and row.get("flops_match") != "uncountable":
        _count_on_device(row, forward, notes)
    t = time_call(forward, min_run_time_s=options.min_run_time_s, min_repeats=options.min_repeats,
                  warmup=options.warmup, threads=options.threads, device=case.device, probe=probe)
    row.update(time_ms_median=round(t.median_ms, 4), time_ms_iqr=round(t.iqr_ms, 4),
               time_ms_min=round(t.min_ms, 4), repeats=t.repeats,
               probe_ratio=round(t.probe_ratio, 4) if t.probe_ratio is not None else None,
               probe_ms=round(t.probe_ms, 4) if t.probe_ms is not None else None)
    busy = t.busy_reason(options.busy_probe_ratio, options.busy_dispersion)
    if busy:
        row["status"] = "busy"
        notes.append(f"busy machine: {busy}; rerun this row when the machine is quiet")
    if options.graph:
        _time_graph(row, forward, case.device, options, notes)


def _count_on_device(row: dict, forward, notes: list[str]) -> None:
    """FlopCounterMode around one forward on the row's own device."""
    from reference.counting import flop_counter_mode

    with flop_counter_mode() as counter:
        forward()
    row["flops_flopcounter"] = int(counter.get_total_flops())
    _match(row, {}, notes)


def _time_graph(row: dict, forward, device: str, options: Options, notes: list[str]) -> None:
    """The same forward replayed as a CUDA graph: no launch from Python."""
    from reference.timing import graph_replay, time_call

    replay, why = graph_replay(forward, device)
    if replay is None:
        notes.append(f"no CUDA graph: {why}")
        return
    t = time_call(replay, min_run_time_s=options.min_run_time_s, min_repeats=options.min_repeats,
                  warmup=options.warmup, device=device)
    row["time_ms_graph"] = round(t.median_ms, 4)


def _footprint(row: dict, c: Config, threads: int) -> None:
    from reference.footprint import measure

    f = measure(c.spec.name, c.height, batch=c.batch, cores=c.core_tokens or None, impl=c.impl,
                threads=threads)
    row.update(mem_baseline_bytes_measured=f.baseline_bytes, mem_built_bytes_measured=f.built_bytes,
               mem_footprint_bytes_measured=f.forward_bytes)


def _is_oom(err: BaseException) -> bool:
    text = str(err).lower()
    return type(err).__name__ == "OutOfMemoryError" or "out of memory" in text \
        or "can't allocate memory" in text


def run_case(case: Case, options: Options, probe=None,
             models: ModelCache | None = None) -> Measurement:
    """Predict, count, and (optionally) measure one case; failures become the row's status.

    `probe` (reference.timing.Probe) samples the machine between timed forwards."""
    import torch

    from costmodel.memory import inference_memory

    c = case.config()
    threads = options.threads or torch.get_num_threads()
    mem = inference_memory(c)
    row, notes = _base_row(case, c, threads, mem), []
    try:
        if options.count:
            _count(row, c, notes, options)
        if options.time_it:
            need = mem.total_bytes * options.memory_headroom
            free = free_memory_bytes(case.device)
            if need > free:
                row["status"] = "oom"
                notes.append(f"not run: predicted {need / 2**30:.1f} GiB with headroom > "
                             f"{free / 2**30:.1f} GiB free")
            else:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
                    _measure(row, case, c, options, notes, probe, models)
                if options.footprint and case.device == "cpu":
                    _footprint(row, c, threads)
        row.setdefault("status", "ok")
    except Exception as err:  # a failing case is a row, and the sweep goes on
        row["status"] = "oom" if _is_oom(err) else \
            f"error: {type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    finally:
        if case.device == "cuda":
            torch.cuda.empty_cache()
    row["note"] = "; ".join(notes)
    return Measurement(**row)


# --------------------------------------------------------------------------- the sweep
@dataclass(frozen=True)
class Summary:
    rows: int
    ok: int
    exact: int
    mismatched: int
    uncountable: int
    oom: int
    errors: int
    busy: int
    worst_memory_error: float | None  # (measured - predicted) / predicted, largest in magnitude
    worst_memory_case: str


def memory_error(m: Measurement) -> float | None:
    """(measured - predicted) / predicted activation peak, when the row has both."""
    measured, predicted = m.mem_activation_peak_bytes_measured, m.mem_activation_peak_bytes_predicted
    if measured is None or not predicted:
        return None
    return (measured - predicted) / predicted


def summarize(records: list[Measurement]) -> Summary:
    from costmodel.measurements import latest

    records = latest(records)
    match = [r.flops_match for r in records]
    status = ["busy" if r.busy else r.status for r in records]
    errors = [(memory_error(r), r) for r in records]
    errors = [(e, r) for e, r in errors if e is not None]
    worst = max(errors, key=lambda er: abs(er[0]), default=(None, None))
    label = worst[1].label() if worst[1] else ""
    return Summary(len(records), status.count("ok"), match.count("exact"), match.count("MISMATCH"),
                   match.count("uncountable"), status.count("oom"),
                   sum(s.startswith("error") for s in status), status.count("busy"), worst[0], label)


def sweep(cases: list[Case], results: MeasurementWriter, options: Options,
          on_row=None, retry_busy: bool = False, stop=None,
          models: ModelCache | None = None) -> list[Measurement]:
    """Run every case not already in `results`; each record is written as soon as it is done.

    `on_row(case, record_or_None)` is called after each case (None when it was skipped on resume).
    With `retry_busy`, a case whose latest record is `busy` runs again (the new record supersedes
    it for every reader). `stop()`, asked before each case, ends the sweep early (a time budget);
    `models` keeps built models for the cases that follow (the same model at another batch,
    resolution or C is not built again).
    Returns the records written by this call. KeyboardInterrupt propagates after the file is closed:
    every finished row is already on disk.
    """
    import torch

    from reference.timing import Probe

    if options.threads:
        torch.set_num_threads(options.threads)
    probe = None
    if options.time_it and any(case.key() not in results.done or retry_busy for case in cases):
        probe = Probe(cases[0].device if cases else "cpu")
        probe.settle()
    written = []
    done = results.done
    if retry_busy:
        from costmodel.measurements import latest

        done -= {r.key() for r in latest(results.records) if r.busy}
    try:
        for case in cases:
            if stop is not None and stop():
                break
            if case.key() in done:
                if on_row:
                    on_row(case, None)
                continue
            row = run_case(case, options, probe, models)
            results.write(row)
            written.append(row)
            if on_row:
                on_row(case, row)
    finally:
        results.close()
    return written
