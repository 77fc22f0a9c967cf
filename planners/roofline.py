"""Roofline latency simulator, per op, from the cost model's FLOPs and bytes moved.

For each op of a configuration:
    roofline_s = max(flops / peak, bytes / bandwidth)            (eta = 1: the pure roofline floor)
    time_s     = roofline_s / efficiency[op class] + launches * kernel_launch_overhead_s
GEMM and attention ops use the device's peak for the dtype (matrix units); elementwise ops use the
fp32 (vector unit) peak. The bound an op hits is whichever term of the max is larger. Everything
broadcasts over numpy arrays of dimensions, so a planner evaluates all candidates in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.config import Config
from costmodel.numeric import config_dims, evaluate
from costmodel.spec import ModelSpec
from planners.devices import OP_CLASSES, DeviceSpec


@dataclass(frozen=True)
class OpTime:
    path: str
    op_class: str
    flops: float
    bytes: float
    launches: float
    intensity_flop_per_byte: float
    roofline_s: float
    time_s: float  # roofline_s / efficiency + launch_s
    launch_s: float
    bound: str  # compute | memory


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


def _peak(device: DeviceSpec, op_class: str, dtype: str) -> float:
    return device.peak("fp32" if op_class == "elementwise" else dtype)


def op_rooflines(spec: ModelSpec, impl: str, device: DeviceSpec, dtype: str, *, entries=None,
                 **dims) -> dict:
    """{path: (op_class, flops (full convention), bytes, launches, compute_s, memory_s)};
    `entries` reuses an `evaluate(spec, impl, "model", **dims)` result."""
    out = {}
    for path, e in (entries or evaluate(spec, impl, "model", **dims)).items():
        # the `full` convention: matmuls as 2 per multiply-add, elementwise ops at their per-element
        # costs (costmodel/conventions.py), so memory-bound ops still carry their arithmetic
        compute = e["full"] / _peak(device, e["op_class"], dtype)
        memory = e["bytes"] / device.memory_bandwidth_bytes_per_s
        out[path] = (e["op_class"], e["full"], e["bytes"], e["launches"], compute, memory)
    return out


def class_terms(spec: ModelSpec, impl: str, device: DeviceSpec, dtype: str, *, entries=None,
                **dims):
    """(per op class: sum of its ops' roofline seconds at eta = 1, total op launches)."""
    terms = {c: 0.0 for c in OP_CLASSES}
    launches = 0.0
    for op_class, _, _, count, compute, memory in op_rooflines(spec, impl, device, dtype,
                                                               entries=entries, **dims).values():
        terms[op_class] = terms[op_class] + np.maximum(compute, memory)
        launches = launches + count
    return terms, launches


def combine(terms: dict, launches, efficiency: dict[str, float], overhead_s: float):
    """Latency in seconds from class terms: sum_c terms[c] / eta_c + launches * overhead."""
    return sum(terms[c] / efficiency[c] for c in OP_CLASSES) + launches * overhead_s


def latency_s(spec: ModelSpec, impl: str, device: DeviceSpec, dtype: str, *, entries=None, **dims):
    """Predicted forward latency (seconds), vectorised over the dims' arrays."""
    terms, launches = class_terms(spec, impl, device, dtype, entries=entries, **dims)
    return combine(terms, launches, device.efficiency, device.kernel_launch_overhead_s)


def floor_s(spec: ModelSpec, impl: str, device: DeviceSpec, dtype: str, **dims):
    """The pure roofline floor: no overhead, every efficiency 1."""
    terms, _ = class_terms(spec, impl, device, dtype, **dims)
    return sum(terms.values())


def simulate(config: Config, device: DeviceSpec) -> Simulation:
    """Per-op roofline of one configuration on one device, saying which bound each op hits."""
    ops = []
    dims = config_dims(config)
    for path, (op_class, flops, nbytes, count, compute, memory) in op_rooflines(
            config.spec, config.impl, device, config.dtype, **dims).items():
        roofline = float(max(compute, memory))
        launch = float(count) * device.kernel_launch_overhead_s
        ops.append(OpTime(path, op_class, float(flops), float(nbytes), float(count),
                          float(flops) / float(nbytes) if nbytes else float("inf"), roofline,
                          roofline / device.efficiency[op_class] + launch, launch,
                          "compute" if compute >= memory else "memory"))
    overhead = sum(op.launches for op in ops) * device.kernel_launch_overhead_s
    return Simulation(device.name, config.spec.name, config.impl, config.dtype,
                      sum(op.time_s for op in ops), sum(op.roofline_s for op in ops), overhead,
                      sum(op.flops for op in ops), sum(op.bytes for op in ops), tuple(ops))
