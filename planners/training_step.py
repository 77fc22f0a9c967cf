"""The training step's latency: forward, backward and optimizer step, op by op (torch-free).

The forward is the inference graph under the runtime (planners.roofline.config_rooflines). Each
forward op then has a backward op (`backward_op`):
- a GEMM or attention op does its registry record's gradient FLOPs (`OpDef.gradient_flop`: 2x
  forward for a linear or batched matmul, the input's and the weight's gradient; 1x for the
  patch convolution, whose input needs none; flash attention's backward 2.5x) at the forward's
  tile and wave efficiency, so its compute and its traffic scale by that ratio; one launch per
  gradient (two for 2x, one otherwise);
- an elementwise op y = f(x) moves its record's `backward_traffic` times its forward bytes, by
  default 1.5x: forward reads x and writes y, backward reads dy and x (or y) and writes dx; a
  cast's backward is a cast (1x), and so is a product by a constant's (unfused attention's scale:
  dx = dy * c); LayerNorm with weights 2.5x (dy and x read again by the weights' gradient
  kernel); a residual add 1x (dy passes to both inputs; the forked stream's two gradients are
  summed, read 2 write 1); a broadcast add's term gets dy summed over the batch;
- an op whose record names a `backward_reduction` adds a kernel reading that many elements of its
  gradient (`reduction_ops`: a linear layer's and the patch convolution's bias gradient);
and the optimizer updates every parameter (fp32 master weights), as torch's optimizers run it
(`optimizer_ops`):
- SGD with momentum and Nesterov (timm's benchmark default), single-tensor: buf.mul_ (8 B),
  buf.add_(grad) (12 B), grad.add(buf) (12 B), param.add_ (12 B): 44 B a parameter in 4 kernels
  a tensor;
- AdamW, single-tensor: param.mul_ (8 B), exp_avg.mul_ + add_ (8 + 12 B), exp_avg_sq.mul_ +
  addcmul_ (8 + 12 B), sqrt, div, add_ for the denominator (8 + 8 + 8 B), param.addcdiv_ (16 B):
  88 B a parameter in 9 kernels a tensor;
and before torch 2.0, `zero_grad()` left zeroed gradients that backward then accumulates into
(one add_ a tensor, 12 B a parameter); from 2.0 on it sets them to None and backward's result is
taken as it is. From torch 2.0 the optimizers default to their foreach form on CUDA: the same
bytes, each of those kernels launched once per group of up to FOREACH_TENSORS tensors
(torch's multi_tensor_apply takes 36 tensors a launch over four lists) instead of once a tensor.
Every op is issued by the host like the forward's (planners.roofline: the step is the larger of
the GPU's work and the host's issuing). NB: the loss is left out (a cross-entropy over B x 1000
logits), and the autograd engine issues backward's kernels from C++, likely faster than the
forward's from Python: the host's time is an upper estimate.
"""

from __future__ import annotations

from dataclasses import replace

from costmodel.config import Config
from costmodel.errors import check_choice
from costmodel.params import parameter_count, parameter_tensors
from costmodel.registry import ELEMENTWISE_BACKWARD_TRAFFIC, REGISTRY
from planners.devices import DeviceSpec
from planners.roofline import OpRoofline, config_rooflines, host_per_launch_s

OPTIMIZER_BYTES = {"sgd": 44, "adamw": 88}  # per parameter per step (module docstring)
OPTIMIZER_KERNELS = {"sgd": 4, "adamw": 9}  # per parameter tensor
OPTIMIZER_STATES = {"sgd": 1, "adamw": 2}  # tensors the size of the weights each keeps
OPTIMIZERS = tuple(OPTIMIZER_BYTES)
ACCUMULATE_BYTES = 12  # grad += new grad, fp32: read 4 + 4, write 4
FOREACH_TENSORS = 36  # tensors one foreach launch takes (multi_tensor_apply, four lists)


def _before_2(torch_version: str | None) -> bool:
    return bool(torch_version) and torch_version.split(".")[0] in ("0", "1")


def backward_op(op: OpRoofline, attention_backward: str = "flash") -> OpRoofline:
    """The backward of one forward op (module docstring); host time as the forward's per launch."""
    per_launch_host = op.host_s / op.launches if op.launches else 0.0
    record = REGISTRY.get(op.op)
    if op.op_class == "elementwise" or record is None:
        if record is None:  # a kernel the roofline adds: a cast's backward is a cast
            factor = 1.0 if op.op == "cast" else ELEMENTWISE_BACKWARD_TRAFFIC
        else:
            factor = record.backward_bytes_ratio(op.shape)
        launches = op.launches
        out = replace(op, path=op.path + "/backward", bytes=op.bytes * factor,
                      memory_s=op.memory_s * factor)
    else:
        forward = record.cost(op.shape).flop * op.launches
        ratio = float(record.gradient_flop(forward, op.shape, op.launches, attention_backward)
                      / forward) if forward else 2.0
        launches = op.launches * (2 if ratio >= 2 and op.op_class == "gemm" else 1)
        out = replace(op, path=op.path + "/backward", flops=op.flops * ratio,
                      bytes=op.bytes * ratio, compute_s=op.compute_s * ratio,
                      memory_s=op.memory_s * ratio, launches=launches)
    return replace(out, host_s=per_launch_host * launches)


def reduction_ops(op: OpRoofline, device: DeviceSpec) -> tuple[OpRoofline, ...]:
    """The kernel an op's backward adds to sum a gradient (its record's `backward_reduction`:
    a linear layer's bias gradient reads its output's gradient, tokens x out, and writes out),
    launched as often as the op; none for an op without one."""
    record = REGISTRY.get(op.op)
    if record is None or record.backward_reduction is None or op.shape is None:
        return ()
    elements = record.backward_reduction(op.shape)
    if not elements:
        return ()
    nbytes = op.launches * elements * op.shape.elem_bytes
    per_launch_host = op.host_s / op.launches if op.launches else 0.0
    return (OpRoofline(op.path + "/backward/reduce", "reduce", "elementwise", 0, nbytes,
                       op.launches, 0.0, nbytes / device.memory_bandwidth_bytes_per_s, None,
                       host_s=per_launch_host * op.launches),)


def optimizer_ops(config: Config, device: DeviceSpec, optimizer: str = "sgd",
                  torch_version: str | None = None, host_per_launch: float = 0.0) -> tuple:
    """The optimizer step over every parameter and, before torch 2.0, the accumulation of
    backward's gradients into zeroed ones (module docstring)."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    params, tensors = parameter_count(config.spec), parameter_tensors(config.spec)
    bw = device.memory_bandwidth_bytes_per_s
    old = _before_2(torch_version)
    groups = tensors if old else -(-tensors // FOREACH_TENSORS)  # launches per kernel
    steps = [("optimizer/" + optimizer, OPTIMIZER_BYTES[optimizer],
              OPTIMIZER_KERNELS[optimizer] * groups)]
    if old:
        steps.append(("optimizer/accumulate_grad", ACCUMULATE_BYTES, tensors))
    return tuple(OpRoofline(path, "optimizer", "elementwise", 0, per_param * params,
                            launches, 0.0, per_param * params / bw, None,
                            host_s=launches * host_per_launch)
                 for path, per_param, launches in steps)


def training_rooflines(config: Config, device: DeviceSpec, runtime: str = "eager",
                       optimizer: str = "sgd", torch_version: str | None = None,
                       attention_backward: str = "flash") -> tuple[OpRoofline, ...]:
    """Forward, backward and optimizer ops of one training step (sum them with
    planners.roofline.latency_s)."""
    forward = config_rooflines(config, device, runtime)
    backward = tuple(k for op in reversed(forward)
                     for k in (backward_op(op, attention_backward), *reduction_ops(op, device)))
    return forward + backward + optimizer_ops(config, device, optimizer, torch_version,
                                              host_per_launch_s(device, runtime))
