"""Per-op latency from the cost model's FLOPs and bytes moved: one formula, one sum.

For each op of a configuration (`OpRoofline`):
    compute_s   = flops / peak          memory_s = bytes / bandwidth
                  (a GPU's matrix peak at its power-limited clock: DeviceSpec.clock_scale)
    roofline_s  = max(compute_s, memory_s)                 (efficiency 1: the pure roofline floor)
    reference_s = the device profile's measured time of the op at its shape (planners/profile.py)
                  where the device has a profile holding the op's kind, else roofline_s
    time_s      = reference_s / efficiency[op class] + launches * kernel_launch_overhead_s
and a configuration's latency is the sum of its ops' time_s (`latency_s`). GEMM and attention ops
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

from costmodel.config import Config
from costmodel.cost import GraphCost, config_cost
from costmodel.errors import check_choice
from planners.devices import MATRIX_CLASSES, OP_CLASSES, DeviceSpec
from planners.gpu_shapes import matmul_flops, quantized_matmul_flops

# eager: PyTorch op by op with fused SDPA (torch >= 2.0); compiled: torch.compile; unfused: eager
# with attention as explicit matmul, softmax, matmul (torch < 2.0, or a model written that way).
# "+amp": under torch.autocast with fp32 weights (what timm's benchmarks run as "amp"), where
# the plain name is a model whose weights and activations are all in the dtype.
BASE_RUNTIMES = ("eager", "compiled", "unfused")
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
        shape: the op's shape per launch (what a profile is looked up with).
        clock: the share of the boost clock its compute_s assumes (DeviceSpec.clock_scale for
            matrix ops on a power-limited GPU, else 1).
    """

    path: str
    op: str
    op_class: str
    flops: object
    bytes: object
    launches: object
    compute_s: object
    memory_s: object
    shape: dict
    clock: float = 1.0

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


# An op the graph counts as one fused formula that eager PyTorch runs as several kernels:
# op -> (kernels, traffic as a multiple of the fused op's). RoPE, x * cos + rotate_half(x) * sin
# with rotate_half(x) = cat(-x2, x1): neg (reads and writes half of x: 1 x-sized unit of
# traffic), cat (2), mul (2), mul (2), add (3) = 5 kernels and 10 units, against 2 (read x, write
# the result) for the fused op. NB: the cos and sin tables are shared by batch and heads and not
# counted; timm's interleaved form (neg, stack, mul, mul, add) is the same count.
EAGER_KERNELS = {"rope": (5, 5.0)}
# Under autocast the cos and sin tables are fp32, so the products and their sum are written in
# fp32 and cast back to 16 bits for attention: neg (1 unit), cat (2), mul (read 1, write 2: 3),
# mul (3), add (read 4, write 2: 6), cast (read 2, write 1: 3) = 6 kernels and 18 units, 9 x the
# fused op's 2.
AUTOCAST_EAGER_KERNELS = {"rope": (6, 9.0)}


def op_rooflines(cost: GraphCost, device: DeviceSpec, dtype: str,
                 runtime: str = "eager") -> tuple[OpRoofline, ...]:
    """The roofline record of every op of an evaluated graph (model scope). Under the eager
    runtime an op of EAGER_KERNELS is charged its kernels (where no profile measured it: a
    profile times the eager op itself); under the compiled runtime, chains of adjacent
    elementwise ops become one fused kernel each."""
    check_choice("runtime", runtime, RUNTIMES)
    runtime, amp = runtime.removesuffix(AMP), runtime.endswith(AMP)
    clock = device.clock_scale()
    peaks = {c: peak_flops_per_s(device, c, dtype) for c in OP_CLASSES}
    ops = tuple(OpRoofline(op.path, op.op, op.op_class, op.full, op.bytes, op.launches,
                           _work(op, device) / peaks[op.op_class],
                           op.bytes / device.memory_bandwidth_bytes_per_s, op.shape,
                           clock if op.op_class in MATRIX_CLASSES else 1.0)
                for op in cost.ops)
    if amp and dtype in ("fp16", "bf16"):  # NB: autocast to fp32 casts nothing
        ops = with_autocast(ops, device, compiled=runtime == "compiled")
    if runtime == "compiled":
        return fuse_elementwise(ops)
    kernels = AUTOCAST_EAGER_KERNELS if amp and dtype in ("fp16", "bf16") else EAGER_KERNELS
    eager = tuple(_as_eager_kernels(op, device, kernels) for op in ops)
    if runtime == "unfused":
        return tuple(k for op in eager for k in _as_unfused_attention(op, device, dtype))
    return eager


# Autocast with fp32 weights: layer norms run in fp32, and the residual stream becomes fp32 (the
# position table, an fp32 parameter, promotes it), while matmuls run in 16 bits. Bytes relative to
# the graph's all-16-bit count, per op (derived by hand; eager, compiled):
#   layer norm: reads and writes fp32, x2; compiled fuses the cast of its output: reads fp32 and
#       writes 16 bits, x1.5
#   residual add: reads the fp32 stream and a 16-bit branch, writes fp32: (4+2+4)/(2+2+2) = 5/3
#   LayerScale: a 16-bit branch times the fp32 gamma, written fp32: (2+4)/(2+2) = 1.5
#   position-table add: 16-bit patches plus the fp32 table, written fp32: (2+4)/(2+2) = 1.5
# Eager also casts each layer norm's output to 16 bits before the linear it feeds (reads 4 B,
# writes 2 B per element; one kernel), and every forward casts each linear's (and the patch
# convolution's) fp32 weight and bias to 16 bits (6 B per parameter; a kernel per tensor eager,
# fused into one compiled).
AUTOCAST_TRAFFIC = {"layer_norm": (2.0, 1.5), "/residual": (5 / 3, 5 / 3),
                    "/layer_scale": (1.5, 1.5), "pos_embed/add": (1.5, 1.5)}


def _autocast_factor(op: OpRoofline, compiled: bool) -> float:
    for key, factors in AUTOCAST_TRAFFIC.items():
        if op.op == key or op.path.endswith(key):
            return factors[compiled]
    return 1.0


def _weights(op: OpRoofline):
    """(parameters, tensors) of one launch of a matmul op's fp32 weights; (0, 0) for other ops."""
    sh = op.shape
    if op.op == "linear":
        bias = bool(sh.get("bias"))
        return sh["in_features"] * sh["out_features"] + (sh["out_features"] if bias else 0), \
            1 + bias
    if op.op == "conv2d":
        return sh["in_chans"] * sh["kernel"] ** 2 * sh["out_chans"] + sh["out_chans"], 2
    return 0, 0


def with_autocast(ops: tuple[OpRoofline, ...], device: DeviceSpec,
                  compiled: bool) -> tuple[OpRoofline, ...]:
    """The ops as autocast runs them (AUTOCAST_TRAFFIC): fp32 traffic on the residual stream, the
    casts of layer-norm outputs (eager) and of the weights, each forward."""
    bw = device.memory_bandwidth_bytes_per_s
    out: list[OpRoofline] = []
    for i, op in enumerate(ops):
        factor = _autocast_factor(op, compiled) if op.op_class == "elementwise" else 1.0
        out.append(op if factor == 1.0 else replace(op, bytes=op.bytes * factor,
                                                     memory_s=op.memory_s * factor))
        feeds_matmul = i + 1 < len(ops) and ops[i + 1].op in ("linear", "conv2d")
        if op.op == "layer_norm" and feeds_matmul and not compiled:
            moved = 1.5 * op.bytes  # read fp32, write 16 bits: 6 B a value to the norm's 2 + 2
            out.append(OpRoofline(op.path + "/cast", "cast", "elementwise", 0, moved, op.launches,
                                  0.0, moved / bw, {}))
    weights = [(op.launches, *_weights(op)) for op in ops]
    params = sum(n * count for n, count, _ in weights)
    tensors = sum(n * count for n, _, count in weights)
    if tensors:  # listed first: they run before (eager: as) each matmul, never fused with it
        moved = 6 * params
        out.insert(0, OpRoofline("weights/cast", "cast", "elementwise", 0, moved,
                                 1 if compiled else tensors, 0.0, moved / bw, {}))
    return tuple(out)


def _as_unfused_attention(op: OpRoofline, device: DeviceSpec, dtype: str) -> tuple:
    """Attention as eager PyTorch runs it without a fused kernel: scores = q k^T (a batched GEMM
    writing B*H*q*kv scores), softmax (reads the scores, writes the probabilities; a mask adds one
    more read), out = probs v (a batched GEMM reading them). Two GEMMs at the matrix peak and one
    memory-bound elementwise op, each launched once per layer, costed by the op registry's bmm and
    softmax formulas; where a profile timed the fused op, that op is kept."""
    if op.op != "sdpa" or op.profiled_s(device) is not None:
        return (op,)
    from costmodel.registry import op_cost

    sh, n = op.shape, op.launches
    bh, q, kv, d, e = (sh["batch"] * sh["heads"], sh["q_len"], sh["kv_len"], sh["head_dim"],
                       sh["elem_bytes"])
    bw = device.memory_bandwidth_bytes_per_s

    def gemm(name, **shape):  # one of the two batched matmuls, as the op registry costs it
        cost = op_cost("bmm", elem_bytes=e, **shape)
        tiled = _tiled("bmm", shape, device)
        work = n * (cost.full if tiled is None else tiled)
        nbytes = n * (cost.bytes_read + cost.bytes_written)
        return OpRoofline(f"{op.path}/{name}", "bmm", "gemm", n * cost.full, nbytes, n,
                          work / peak_flops_per_s(device, "gemm", dtype), nbytes / bw, shape,
                          op.clock)

    qk = gemm("qk", batch=bh, m=q, k=d, n=kv)  # q (BH, q, d) @ k^T (BH, d, kv) -> scores
    av = gemm("av", batch=bh, m=q, k=kv, n=d)  # probs (BH, q, kv) @ v (BH, kv, d) -> out
    softmax = op_cost("softmax", numel=bh * q * kv, elem_bytes=e)
    # the full convention's pointwise work (scale, softmax, mask) is what is not matmul
    soft_flops = op.flops - qk.flops - av.flops
    soft_bytes = n * (softmax.bytes_read + softmax.bytes_written
                      + (e * bh * q * kv if sh.get("masked") else 0))  # a mask: one more read
    return (qk, OpRoofline(op.path + "/softmax", "softmax", "elementwise", soft_flops, soft_bytes,
                           n, soft_flops / peak_flops_per_s(device, "elementwise", dtype),
                           soft_bytes / bw, {}), av)


def _as_eager_kernels(op: OpRoofline, device: DeviceSpec,
                      table: dict = EAGER_KERNELS) -> OpRoofline:
    if op.op not in table or op.profiled_s(device) is not None:
        return op
    kernels, traffic = table[op.op]
    return replace(op, bytes=op.bytes * traffic, memory_s=op.memory_s * traffic,
                   launches=op.launches * kernels)


# Ops that run side by side on different tensors (RoPE on q and on k): fused, each still reads
# and writes its own tensor, so their traffic adds.
PARALLEL_OPS = ("rope",)


def fuse_elementwise(ops: tuple[OpRoofline, ...]) -> tuple[OpRoofline, ...]:
    """torch.compile's view of the graph: each run of adjacent elementwise ops (same launches)
    is one kernel: one launch, its members' arithmetic, and the traffic of its largest member.
    NB: the tensors between fused ops stay in registers; a chain still reads its inputs and
    writes its outputs, which the largest member's traffic approximates from below."""
    out: list[OpRoofline] = []
    chain: list[OpRoofline] = []

    def close():
        if len(chain) == 1:
            out.append(chain[0])
        elif chain:
            # the largest member per configuration (over arrays, each element on its own)
            parallel = [o for o in chain if o.op in PARALLEL_OPS]
            serial = [o for o in chain if o.op not in PARALLEL_OPS]
            nbytes = sum((o.bytes for o in parallel), 0) + (
                functools.reduce(np.maximum, (o.bytes for o in serial)) if serial else 0)
            memory = sum((o.memory_s for o in parallel), 0) + (
                functools.reduce(np.maximum, (o.memory_s for o in serial)) if serial else 0)
            out.append(OpRoofline("+".join(o.path for o in chain), "fused", "elementwise",
                                  sum(o.flops for o in chain), nbytes, chain[0].launches,
                                  sum(o.compute_s for o in chain), memory, {}))
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
    """Predicted latency in seconds: the sum of the ops' times (vectorised over arrays)."""
    return sum(op.time_s(device) for op in ops)


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

    def bound_share(self) -> dict[str, float]:
        """Share of the latency spent in compute-bound and memory-bound ops (and overhead)."""
        share = {"compute": 0.0, "memory": 0.0, "overhead": self.overhead_s / self.latency_s}
        for op in self.ops:
            share[op.bound] += (op.time_s - op.launch_s) / self.latency_s
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
    return op_rooflines(config_cost(config), device, config.dtype, runtime)


def simulate(config: Config, device: DeviceSpec, runtime: str = "eager") -> Simulation:
    """Per-op roofline of one configuration on one device, saying which bound each op hits."""
    ops = config_rooflines(config, device, runtime)
    times = tuple(_op_time(op, device) for op in ops)
    return Simulation(device.name, config.spec.name, config.impl, config.dtype,
                      float(latency_s(ops, device)), float(floor_s(ops)),
                      sum(t.launch_s for t in times), sum(t.flops for t in times),
                      sum(t.bytes for t in times), times)
