"""Per-op latency from the cost model's FLOPs and bytes moved: one formula, one sum.

For each op of a configuration (`OpRoofline`):
    compute_s   = flops / peak          memory_s = bytes / bandwidth
                  (a GPU's matrix peak at its power-limited clock: DeviceSpec.clock_scale)
    roofline_s  = max(compute_s, memory_s)                 (efficiency 1: the pure roofline floor)
    reference_s = the device profile's measured time of the op at its shape (planners/profile.py)
                  where the device has a profile holding the op's kind, else roofline_s
    time_s      = reference_s / efficiency[op class] + launches * kernel_launch_overhead_s
and a configuration's latency is the sum of its ops' time_s (`latency_s`); on a GPU, where the host
CPU issues the launches while the GPU runs earlier ones, it is the larger of that sum and the
host's: launches x host_launch_s[runtime] (eager PyTorch issues every op from Python; compiled
code issues fewer, faster). A prediction where the host's is the larger is host-bound: the GPU
waits on the CPU, and a faster GPU would not help (`Simulation.host_bound`). GEMM and attention ops
use the device's peak for the dtype (matrix units); elementwise ops use the fp32 (vector unit) peak.
For a profiled device, efficiency and overhead are what a model achieves relative to the isolated
ops of the profile (1 and 0 until calibrated).
Values broadcast over numpy arrays of dimensions, so a planner evaluates all candidates in one call;
`simulate` is the same records for one configuration, with the bound each op hits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from costmodel.config import Config, check_countable
from costmodel.cost import GraphCost, config_cost
from costmodel.errors import CoreplanError, check_choice
from costmodel.registry import MATRIX_CLASSES, OP_CLASSES, REGISTRY
from planners.devices import HOST_RUNTIMES, DeviceSpec
from planners.gpu_shapes import matmul_flops, quantized_matmul_flops

# eager: PyTorch op by op with fused SDPA (torch >= 2.0); compiled: torch.compile; unfused: eager
# with attention as explicit matmul, softmax, matmul (torch < 2.0, or a model written that way).
# "+amp": under torch.autocast with fp32 weights (what timm's benchmarks run as "amp"), where
# the plain name is a model whose weights and activations are all in the dtype.
BASE_RUNTIMES = HOST_RUNTIMES  # eager, compiled, unfused
AMP = "+amp"
RUNTIMES = BASE_RUNTIMES + tuple(r + AMP for r in BASE_RUNTIMES)


@dataclass(frozen=True)
class OpRoofline:
    """One op's roofline terms (floats, or arrays over many configurations).

    Args:
        path: slash path of the op.
        op: the registered op (`linear`, `sdpa`, ...).
        op_class: gemm, attention or elementwise.
        flops: FLOPs in the `full` convention (elementwise ops keep their arithmetic).
        bytes: bytes read + written.
        launches: executions of the op.
        compute_s: flops at the peak that applies to its class and dtype.
        memory_s: bytes at the device's memory bandwidth.
        shape: the op's typed shape per launch (what a profile is looked up with); None for the
            kernels the roofline adds (casts, fused chains), which have no registry record.
        clock: the share of the boost clock its compute_s assumes (DeviceSpec.clock_scale for
            matrix ops on a power-limited GPU, else 1).
        amp: the precisions it streams under autocast (costmodel.graph.OpNode), or None.
        host_s: what the host CPU spends issuing its launches (GPU; 0 elsewhere).
    """

    path: str
    op: str
    op_class: str
    flops: object
    bytes: object
    launches: object
    compute_s: object
    memory_s: object
    shape: object
    clock: float = 1.0
    amp: tuple | None = None
    host_s: object = 0.0

    @property
    def roofline_s(self):
        return np.maximum(self.compute_s, self.memory_s)

    @property
    def rated_s(self):
        """The datasheet roofline: compute at the peak of the rated boost clock."""
        return np.maximum(self.compute_s * self.clock, self.memory_s)

    def profiled_s(self, device: DeviceSpec):
        """The device profile's time for this op, or None (no profile, or not its kind)."""
        if device.profile is None:
            return None
        return device.profile.seconds(self.op, self.shape, self.launches)

    def reference_s(self, device: DeviceSpec):
        """What the efficiency divides: the profiled time where there is one, else the roofline."""
        profiled = self.profiled_s(device)
        return self.roofline_s if profiled is None else profiled

    def time_s(self, device: DeviceSpec):
        """The latency formula: reference / efficiency of the op's class + launch overhead."""
        return (self.reference_s(device) / device.efficiency[self.op_class]
                + self.launches * device.kernel_launch_overhead_s)


def check_runtime_dtype(runtime: str, dtype: str) -> None:
    """A runtime under autocast (`+amp`) lowers fp32 weights to a 16-bit type: with dtype fp32
    there is nothing to lower, and the request means plain fp32 (or a 16-bit dtype): one line
    says so rather than answering a question nobody asked."""
    check_choice("runtime", runtime, RUNTIMES)
    if runtime.endswith(AMP) and dtype not in ("fp16", "bf16"):
        raise CoreplanError(f"runtime {runtime} autocasts to a 16-bit type, and dtype {dtype} "
                            f"has none to autocast to: use --runtime {runtime.removesuffix(AMP)} "
                            f"for plain {dtype}, or --dtype fp16 or bf16 under autocast")


def peak_flops_per_s(device: DeviceSpec, op_class: str, dtype: str) -> float:
    """Matrix-unit peak of the dtype for gemm and attention, at the clock the GPU sustains under
    that load (`DeviceSpec.clock_scale`); the fp32 vector peak for elementwise."""
    if op_class == "elementwise":
        return device.peak("fp32")
    return device.peak(dtype) * device.clock_scale()


def _tiled(op: str, shape: dict, device: DeviceSpec):
    """One launch's matmul FLOPs in whole tiles and waves on a GPU with a known SM count
    (planners/gpu_shapes.py); None elsewhere, or for an op without a tiled matmul."""
    if device.kind != "gpu" or not device.sm_count:
        return None
    return quantized_matmul_flops(op, shape, device.sm_count)


def _work(op, device: DeviceSpec):
    """FLOPs the device spends: the op's, with the matmul part of a GEMM or attention op rounded
    up to whole tiles and waves where the device has them."""
    quantized = None if op.op_class == "elementwise" else _tiled(op.op, op.shape, device)
    if quantized is None:
        return op.full
    return op.full + op.launches * (quantized - matmul_flops(op.op, op.shape))


def op_rooflines(cost: GraphCost, device: DeviceSpec, dtype: str,
                 runtime: str = "eager") -> tuple[OpRoofline, ...]:
    """The roofline record of every op of an evaluated graph (model scope). Under the eager
    runtime an op whose record lists eager kernels is charged them (where no profile measured
    it: a profile times the eager op itself); under the compiled runtime, chains of adjacent
    elementwise ops become one fused kernel each; under the unfused runtime an op with an unfused
    decomposition (attention) runs as its parts."""
    check_choice("runtime", runtime, RUNTIMES)
    device.check_dtype(dtype)
    runtime, amp = runtime.removesuffix(AMP), runtime.endswith(AMP)
    clock = device.clock_scale()
    peaks = {c: peak_flops_per_s(device, c, dtype) for c in OP_CLASSES}
    ops = tuple(OpRoofline(op.path, op.op, op.op_class, op.full, op.bytes, op.launches,
                           _work(op, device) / peaks[op.op_class],
                           op.bytes / device.memory_bandwidth_bytes_per_s, op.shape,
                           clock if op.op_class in MATRIX_CLASSES else 1.0, op.amp)
                for op in cost.ops)
    amp16 = amp and dtype in ("fp16", "bf16")  # NB: autocast to fp32 casts nothing
    if amp16:
        ops = with_autocast(ops, device, compiled=runtime == "compiled")
    if runtime == "compiled":
        return _with_host(fuse_elementwise(ops), device, runtime)
    eager = tuple(_as_eager_kernels(op, device, amp16) for op in ops)
    if runtime == "unfused":
        eager = tuple(k for op in eager for k in _as_unfused(op, device, dtype, amp16))
    return _with_host(eager, device, runtime)


def host_per_launch_s(device: DeviceSpec, runtime: str) -> float:
    """What the host spends issuing one launch under the runtime (`+amp` or not): the device's
    host_launch_s on a GPU; 0 off a GPU (a CPU's per-op cost is in its own overhead)."""
    if device.kind != "gpu":
        return 0.0
    return (device.host_launch_s or {}).get(runtime.removesuffix(AMP), 0.0)


def _with_host(ops: tuple[OpRoofline, ...], device: DeviceSpec, runtime: str) -> tuple:
    """Each op's host time: its launches x the host's cost per launch under the runtime."""
    per_launch = host_per_launch_s(device, runtime)
    if not per_launch:
        return ops
    return tuple(replace(op, host_s=op.launches * per_launch) for op in ops)


# Autocast with fp32 weights: ops of autocast class "fp32" (layer norms) read and write fp32 (a
# compiled graph fuses the cast of their output: they write 16 bits), a "promote" op writes the
# widest type it reads (its graph node names the precisions it streams: the fp32 residual stream,
# and the results promoted by an fp32 parameter), and matmuls run in 16 bits. An op's bytes scale
# by the mean bytes of the tensors it streams over the graph's 2 (derived by hand, eager and
# compiled): layer norm (4+4)/(2+2) = 2 and (4+2)/(2+2) = 1.5; residual add (4+2+4)/(2+2+2) = 5/3;
# LayerScale and the position-table add (2+4)/(2+2) = 1.5. Eager also casts each fp32 op's output
# to 16 bits before the matmul it feeds (reads 4 B, writes 2 B per element: 1.5 x the op's 16-bit
# bytes; one kernel), and every forward casts each 16-bit op's fp32 weights and biases (6 B per
# parameter; a kernel per tensor eager, fused into one compiled).
AMP_BYTES = {"fp32": 4, "16": 2}
CAST_TRAFFIC = (AMP_BYTES["fp32"] + AMP_BYTES["16"]) / (2 * AMP_BYTES["16"])


def _autocast_factor(op: OpRoofline, compiled: bool) -> float:
    record = REGISTRY.get(op.op)
    streams = op.amp
    if record is not None and record.autocast == "fp32":
        streams = ("fp32", "16" if compiled else "fp32")
    if streams is None:
        return 1.0
    return sum(AMP_BYTES[p] for p in streams) / (AMP_BYTES["16"] * len(streams))


def _autocast(op: OpRoofline) -> str:
    record = REGISTRY.get(op.op)
    return "keep" if record is None else record.autocast


def _cast_weights(ops: tuple[OpRoofline, ...]):
    """(parameters, tensors) the 16-bit ops read as fp32 weights, over their launches."""
    params = tensors = 0
    for op in ops:
        record = REGISTRY.get(op.op)
        if record is not None and record.weights is not None and record.autocast == "lower":
            w = record.weights(op.shape)
            params += op.launches * w.parameters
            tensors += op.launches * w.tensors
    return params, tensors


def with_autocast(ops: tuple[OpRoofline, ...], device: DeviceSpec,
                  compiled: bool) -> tuple[OpRoofline, ...]:
    """The ops as autocast runs them (see AMP_BYTES): fp32 traffic on the residual stream, the
    casts of fp32 ops' outputs (eager) and of the weights, each forward."""
    bw = device.memory_bandwidth_bytes_per_s
    out: list[OpRoofline] = []
    for i, op in enumerate(ops):
        factor = _autocast_factor(op, compiled)
        out.append(op if factor == 1.0 else replace(op, bytes=op.bytes * factor,
                                                     memory_s=op.memory_s * factor))
        feeds_matmul = i + 1 < len(ops) and _autocast(ops[i + 1]) == "lower"
        if _autocast(op) == "fp32" and feeds_matmul and not compiled:
            moved = CAST_TRAFFIC * op.bytes
            out.append(OpRoofline(op.path + "/cast", "cast", "elementwise", 0, moved, op.launches,
                                  0.0, moved / bw, None))
    params, tensors = _cast_weights(ops)
    if tensors:  # listed first: they run before (eager: as) each matmul, never fused with it
        moved = 6 * params
        out.insert(0, OpRoofline("weights/cast", "cast", "elementwise", 0, moved,
                                 1 if compiled else tensors, 0.0, moved / bw, None))
    return tuple(out)


def _as_unfused(op: OpRoofline, device: DeviceSpec, dtype: str, amp16: bool = False) -> tuple:
    """An op as eager PyTorch runs it without a fused kernel: the parts its record's `unfused`
    lists (attention: a batched GEMM writing the scores, softmax, a batched GEMM reading them),
    each costed by its own registry formula and launched as often as the op; where a profile
    timed the fused op, that op is kept. Under autocast (`amp16`) the parts run as autocast runs
    them (`_autocast_parts`)."""
    record = REGISTRY.get(op.op)
    if record is None or record.unfused is None or op.profiled_s(device) is not None:
        return (op,)
    n, bw = op.launches, device.memory_bandwidth_bytes_per_s
    parts = record.unfused(op.shape)
    made: dict[int, OpRoofline] = {}
    for index, part in sorted(enumerate(parts), key=lambda p: p[1].remainder):
        own = REGISTRY[part.op]
        shape = own.make_shape(**part.shape)
        cost = part.cost or own.cost(shape)
        nbytes = n * (cost.bytes_read + cost.bytes_written)
        if part.remainder:  # the whole op's arithmetic less its other parts'
            flops = op.flops
            for other in made.values():
                flops = flops - other.flops
            work = flops
        else:
            tiled = None if own.op_class == "elementwise" else _tiled(part.op, shape, device)
            flops, work = n * cost.full, n * (cost.full if tiled is None else tiled)
        made[index] = OpRoofline(f"{op.path}/{part.suffix}", part.op, own.op_class, flops, nbytes,
                                 n, work / peak_flops_per_s(device, own.op_class, dtype),
                                 nbytes / bw, shape,
                                 op.clock if own.op_class in MATRIX_CLASSES else 1.0)
    parts = tuple(made[i] for i in range(len(parts)))
    return _autocast_parts(parts, device) if amp16 else parts


def _autocast_parts(parts: tuple[OpRoofline, ...], device: DeviceSpec) -> tuple:
    """A chain of eager kernels under autocast, as torch's autocast lists (costmodel.registry
    AUTOCAST) run them. A part run in fp32 ("fp32") reads and writes fp32, (4 + 4) / (2 + 2) = 2x
    its 16-bit traffic, and fed by a 16-bit part its input is cast up first (a kernel reading 2 B
    and writing 4 B per element: 1.5x its 16-bit traffic). A part that writes fp32 from its input
    as it is ("fp32_out": softmax, torch's fp32_set_opt_dtype policy, from 1.10 through 2.x)
    moves (2 + 4) / (2 + 2) = 1.5x. Either, feeding a 16-bit part, has its output cast down
    after (4 B read, 2 B written: 1.5x again). Attention as matmul, softmax, matmul thus moves
    its scores 12 B per element where 16-bit moves 4, in one more kernel."""
    bw = device.memory_bandwidth_bytes_per_s
    out: list[OpRoofline] = []
    for i, part in enumerate(parts):
        policy = _autocast(part)
        if policy not in ("fp32", "fp32_out"):
            out.append(part)
            continue
        cast = CAST_TRAFFIC * part.bytes
        if policy == "fp32" and i > 0 and _autocast(parts[i - 1]) == "lower":
            out.append(OpRoofline(part.path + "/cast_in", "cast", "elementwise", 0, cast,
                                  part.launches, 0.0, cast / bw, None))
        factor = (AMP_BYTES["fp32"] + (AMP_BYTES["fp32"] if policy == "fp32" else AMP_BYTES["16"])
                  ) / (2 * AMP_BYTES["16"])
        out.append(replace(part, bytes=part.bytes * factor, memory_s=part.memory_s * factor))
        if i + 1 < len(parts) and _autocast(parts[i + 1]) == "lower":
            out.append(OpRoofline(part.path + "/cast_out", "cast", "elementwise", 0, cast,
                                  part.launches, 0.0, cast / bw, None))
    return tuple(out)


def _as_eager_kernels(op: OpRoofline, device: DeviceSpec, amp16: bool) -> OpRoofline:
    """An op the graph counts as one fused formula, as the eager kernels its record lists."""
    record = REGISTRY.get(op.op)
    kernels = None if record is None else (record.eager_amp if amp16 else record.eager)
    if kernels is None or op.profiled_s(device) is not None:
        return op
    return replace(op, bytes=op.bytes * kernels.traffic, memory_s=op.memory_s * kernels.traffic,
                   launches=op.launches * kernels.kernels)


def _parallel(op: OpRoofline) -> bool:
    """Fused with its neighbours, the op still moves its own tensor (RoPE on q and on k)."""
    record = REGISTRY.get(op.op)
    return record is not None and record.parallel


def fuse_elementwise(ops: tuple[OpRoofline, ...]) -> tuple[OpRoofline, ...]:
    """torch.compile's view of the graph: each run of adjacent elementwise ops (same launches)
    is one kernel: one launch, its members' arithmetic, and the traffic of its largest member
    (ops that run side by side on different tensors, `parallel` in their record: their traffic
    adds). NB: the tensors between fused ops stay in registers; a chain still reads its inputs
    and writes its outputs, which the largest member's traffic approximates from below."""
    out: list[OpRoofline] = []
    chain: list[OpRoofline] = []

    def close():
        if len(chain) == 1:
            out.append(chain[0])
        elif chain:
            # the largest member per configuration (over arrays, each element on its own)
            parallel = [o for o in chain if _parallel(o)]
            serial = [o for o in chain if not _parallel(o)]
            nbytes = sum((o.bytes for o in parallel), 0) + (
                functools.reduce(np.maximum, (o.bytes for o in serial)) if serial else 0)
            memory = sum((o.memory_s for o in parallel), 0) + (
                functools.reduce(np.maximum, (o.memory_s for o in serial)) if serial else 0)
            out.append(OpRoofline("+".join(o.path for o in chain), "fused", "elementwise",
                                  sum(o.flops for o in chain), nbytes, chain[0].launches,
                                  sum(o.compute_s for o in chain), memory, None))
        chain.clear()

    for op in ops:
        joins = (op.op_class == "elementwise" and chain
                 and np.all(np.asarray(op.launches) == np.asarray(chain[0].launches)))
        if not joins:
            close()
        if op.op_class == "elementwise":
            chain.append(op)
        else:
            out.append(op)
    close()
    return tuple(out)


def latency_s(ops: tuple[OpRoofline, ...], device: DeviceSpec):
    """Predicted latency in seconds: the sum of the ops' times or, where larger, the host's time
    issuing them (vectorised over arrays)."""
    return latency_and_work_s(ops, device)[0]


def work_s(ops: tuple[OpRoofline, ...], device: DeviceSpec):
    """The device's own work: the sum of the ops' times, launches included."""
    return sum(op.time_s(device) for op in ops)


def latency_and_work_s(ops: tuple[OpRoofline, ...], device: DeviceSpec):
    """(latency, the device's work): the latency is the work or, where larger, the host's time."""
    work = work_s(ops, device)
    return np.maximum(work, host_s(ops)), work


def host_s(ops: tuple[OpRoofline, ...]):
    """The host CPU's time issuing the ops' launches (0 off a GPU, or without a host cost)."""
    return sum((op.host_s for op in ops), 0.0)


def floor_s(ops: tuple[OpRoofline, ...]):
    """The pure roofline floor: no overhead, every efficiency 1, the datasheet peaks (rated clock).
    NB: a GPU running above its rated boost clock can beat it (efficiency up to 1.25)."""
    return sum(op.rated_s for op in ops)


@dataclass(frozen=True)
class ClassTerms:
    """The latency formula's inputs grouped by op class: sum of reference seconds per class and
    the total launches, so latency = sum_c reference_s[c] / eta_c + launches * overhead (linear in
    1/eta and the overhead: what calibration fits)."""

    reference_s: dict
    launches: object

    @classmethod
    def of(cls, ops: tuple[OpRoofline, ...], device: DeviceSpec) -> "ClassTerms":
        terms = {c: sum((op.reference_s(device) for op in ops if op.op_class == c), 0.0)
                 for c in OP_CLASSES}
        return cls(terms, sum((op.launches for op in ops), 0.0))


@dataclass(frozen=True)
class OpTime:
    """One op of `simulate`: its roofline record evaluated on one configuration."""

    path: str
    op_class: str
    flops: float
    bytes: float
    launches: float
    intensity_flop_per_byte: float
    roofline_s: float
    reference_s: float  # the profiled time, else roofline_s
    time_s: float  # reference_s / efficiency + launch_s
    launch_s: float
    bound: str  # compute | memory
    source: str  # profile | roofline: where reference_s came from


@dataclass(frozen=True)
class Simulation:
    device: str
    model: str
    impl: str
    dtype: str
    latency_s: float
    floor_s: float  # pure roofline: sum of max(flops/peak, bytes/bandwidth), no overhead, eta = 1
    overhead_s: float
    flops: float
    bytes: float
    ops: tuple[OpTime, ...]
    device_s: float = 0.0  # the sum of the ops' times (the GPU's work, launches included)
    host_s: float = 0.0  # the host's time issuing the launches (GPU)
    launches: float = 0.0
    runtime: str = "eager"

    @property
    def host_bound(self) -> bool:
        """The host issuing launches takes longer than the device's work: the device waits."""
        return self.host_s > self.device_s

    def bound_share(self) -> dict[str, float]:
        """Share of the latency spent in compute-bound and memory-bound ops (and overhead)."""
        share = {"compute": 0.0, "memory": 0.0, "overhead": self.overhead_s / self.device_s}
        for op in self.ops:
            share[op.bound] += (op.time_s - op.launch_s) / self.device_s
        return share


def _op_time(op: OpRoofline, device: DeviceSpec) -> OpTime:
    flops, nbytes = float(op.flops), float(op.bytes)
    return OpTime(op.path, op.op_class, flops, nbytes, float(op.launches),
                  flops / nbytes if nbytes else float("inf"), float(op.roofline_s),
                  float(op.reference_s(device)), float(op.time_s(device)), float(op.launches) * device.kernel_launch_overhead_s,
                  "compute" if op.compute_s >= op.memory_s else "memory",
                  "roofline" if op.profiled_s(device) is None else "profile")


def config_rooflines(config: Config, device: DeviceSpec,
                     runtime: str = "eager") -> tuple[OpRoofline, ...]:
    return op_rooflines(config_cost(check_countable(config)), device, config.dtype, runtime)


MODES = ("inference", "training")


def simulate(config: Config, device: DeviceSpec, runtime: str = "eager",
             mode: str = "inference", optimizer: str = "sgd",
             torch_version: str | None = None) -> Simulation:
    """Per-op roofline of one configuration on one device, saying which bound each op hits: a
    forward (inference), or a training step's forward, backward and optimizer step
    (planners/training_step.py; `torch_version` before 2.0 accumulates gradients into zeroed
    ones)."""
    check_choice("mode", mode, MODES)
    check_runtime_dtype(runtime, config.dtype)
    if mode == "training":
        from planners.training_step import training_rooflines

        ops = training_rooflines(config, device, runtime, optimizer, torch_version)
    else:
        ops = config_rooflines(config, device, runtime)
    times = tuple(_op_time(op, device) for op in ops)
    return Simulation(device.name, config.spec.name, config.impl, config.dtype,
                      float(latency_s(ops, device)), float(floor_s(ops)),
                      sum(t.launch_s for t in times), sum(t.flops for t in times),
                      sum(t.bytes for t in times), times, sum(t.time_s for t in times),
                      float(host_s(ops)), sum(t.launches for t in times), runtime)


# The host's issuing time is worth a line once it is this share of the device's work (host-bound
# from 1 on: the device waits).
HOST_NOTE_SHARE = 0.5


def host_note(sim: Simulation, device: DeviceSpec) -> str | None:
    """One line where the host's time issuing launches decides (or nearly decides) a GPU
    prediction: how much, from what, and what would remove it; None elsewhere."""
    if not sim.host_s or sim.host_s < HOST_NOTE_SHARE * sim.device_s:
        return None
    per = sim.host_s / sim.launches * 1e6
    runtime = sim.runtime.removesuffix(AMP)
    head = (f"host-bound: the CPU issuing {sim.launches:,.0f} launches at {per:.3g} us each "
            f"({runtime}) takes {sim.host_s * 1e3:.4g} ms, longer than the GPU's "
            f"{sim.device_s * 1e3:.4g} ms of work: the GPU waits"
            if sim.host_bound else
            f"near host-bound: the CPU issuing {sim.launches:,.0f} launches at {per:.3g} us each "
            f"({runtime}) takes {sim.host_s / sim.device_s:.0%} of the GPU's work")
    remedy = ("a larger batch, torch.compile (fewer launches) or CUDA graphs (one launch a "
              "forward) would remove most of it" if runtime != "compiled" else
              "a larger batch or CUDA graphs (one launch a forward) would remove most of it")
    return (f"{head}; {remedy}. The cost per launch is the host CPU's, not the GPU's: "
            f"{HOST_COST_SOURCE}")


# Where a GPU's host cost per launch comes from (plan's and simulate's host-bound notes).
HOST_COST_SOURCE = ("host_launch_s, the catalog's default unless a device file or "
                    "--host-launch-us sets it")
