"""The op registry: everything that differs by op lives in the op's one record (`OpDef`).

An op is registered once, by `register_op` on its cost formula, and the record carries what every
consumer needs to know about it, so that no consumer branches on an op's name:

- the cost formula: a pure function of keyword shapes returning an `OpCost` (plain arithmetic, so
  it runs on Python ints (exact), numpy arrays and sympy symbols alike);
- `shape`: a typed, frozen record of the formula's keyword arguments (generated from its
  signature: a graph node holds one, and a misspelt dimension fails where the node is built);
- `op_class`: the roofline class (gemm, attention, elementwise) and `per_element`, its cost per
  element in the `full` convention (pointwise ops);
- `matmul`: how its matrix work is laid out (`Matmul`: the tiles and waves of planners/gpu_shapes);
- `weights`: the parameters one launch reads (`Weights`: parameter counts, the largest weight
  matrix, autocast's weight casts);
- `backward`: the FLOPs of its gradient in a training step; `backward_traffic`, for a pointwise
  op, its backward's bytes over its forward's (default 1.5: dy and x in, dx out, against x in
  and y out); `backward_reduction`, the elements its backward sums in a kernel of its own (a
  linear layer's bias gradient: its output's gradient summed over the tokens);
- `profile_key` (and `profile_seconds` where one key is not enough): the curve of a device
  profile it is looked up in (planners/profile.py), and `torch_op`, how `coreplan profile` runs it
  alone;
- `eager`, `eager_amp`: the kernels eager PyTorch launches for an op the graph counts as one
  fused formula, with their traffic; `parallel`: fused with its neighbours it still moves its own
  tensor; `unfused`: the ops eager PyTorch runs for it without a fused kernel;
- `autocast`: how torch.autocast runs it (in 16 bits, in fp32, or at its inputs' widest type);
- `aten_ops`, `counted_by_torch`, `unpack`: the framework ops it accounts for, whether the
  counters can see it, and how a counter's input and output shapes become its formula's arguments.

The model graph, the roofline, the profile, the training step and the fvcore handles and
FlopCounterMode mappings all read these records; `register_op` rejects a second registration.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import sympy as sp

OP_CLASSES = ("gemm", "attention", "elementwise")
MATRIX_CLASSES = ("gemm", "attention")  # run on the matrix units (tensor cores)
ELEMENTWISE_BACKWARD_TRAFFIC = 1.5  # a pointwise backward: dy and x in, dx out, against x in, y out
# torch.autocast's treatment of an op: "lower" runs it in 16 bits (matmuls; fp32 weights are cast
# every forward), "fp32" runs it in fp32 (layer norms: inputs cast to fp32), "fp32_out" reads its
# input as it is and writes fp32 (torch's fp32_set_opt_dtype policy: softmax is called with
# dtype=float32, no cast of its input), "promote" writes its inputs' widest type (a graph node says
# which of its tensors are fp32), "keep" changes nothing.
AUTOCAST = ("lower", "fp32", "fp32_out", "promote", "keep")


@dataclass(frozen=True)
class OpCost:
    """Cost of one op. FLOPs under the three conventions; bytes read and written.

    Fields have the type of the shapes: exact Python ints, numpy arrays or sympy expressions.
    """

    flop: sp.Expr
    mac: sp.Expr
    full: sp.Expr
    bytes_read: sp.Expr
    bytes_written: sp.Expr

    def convention(self, name: str) -> sp.Expr:
        return getattr(self, name)

    @property
    def bytes_moved(self) -> sp.Expr:
        return self.bytes_read + self.bytes_written

    def __add__(self, other: "OpCost") -> "OpCost":
        return OpCost(*(getattr(self, f) + getattr(other, f) for f in _FIELDS))


_FIELDS = ("flop", "mac", "full", "bytes_read", "bytes_written")


class Shape:
    """Base of every op's shape record: a frozen dataclass of its formula's keyword arguments."""

    _names: tuple[str, ...] = ()

    def kwargs(self) -> dict:
        """The formula's keyword arguments."""
        return {name: getattr(self, name) for name in self._names}


@dataclass(frozen=True)
class Matmul:
    """How an op's matrix work lands on tiled matrix units (planners/gpu_shapes.py).

    layout "gemm": `batches` independent products (m, k) @ (k, n), 2 FLOPs per multiply-add;
    layout "flash": fused attention, `batches` = B*H query sets of m queries over n keys of head
    dim k: two products per score (q k^T and p v), 4*m*n*k FLOPs per set.
    """

    layout: str
    batches: object
    m: object
    n: object
    k: object


@dataclass(frozen=True)
class Weights:
    """The parameters one launch of an op reads: a weight matrix and a bias vector (elements)."""

    matrix: object
    bias: object = 0

    @property
    def parameters(self):
        return self.matrix + self.bias

    @property
    def tensors(self) -> int:
        return 1 + bool(self.bias)


@dataclass(frozen=True)
class EagerKernels:
    """What eager PyTorch runs for an op the graph counts as one fused formula: `kernels` launches
    moving `traffic` times the fused formula's bytes."""

    kernels: int
    traffic: float


@dataclass(frozen=True)
class Part:
    """One op of an unfused decomposition: a registered op at a shape (per launch of the whole).
    `cost` overrides the part's own formula (bytes it moves besides its formula's); `remainder`:
    its FLOPs are the whole op's less the other parts' (the pointwise work around the matmuls)."""

    suffix: str
    op: str
    shape: dict
    cost: OpCost | None = None
    remainder: bool = False


@dataclass(frozen=True)
class OpDef:
    """A registered op: its formula and every hook its consumers need (module docstring)."""

    name: str
    formula: Callable[..., OpCost]
    op_class: str
    shape: type
    aten_ops: tuple[str, ...] = ()
    counted_by_torch: bool = True  # False: FlopCounterMode / fvcore cannot count it (e.g. flex)
    per_element: int | None = None
    matmul: Callable | None = None  # shape -> Matmul
    weights: Callable | None = None  # shape -> Weights
    backward: Callable | None = None  # (forward flop, shape, launches, attention_backward) -> flop
    backward_traffic: Callable | None = None  # shape -> backward bytes / forward bytes (pointwise)
    backward_reduction: Callable | None = None  # shape -> elements its backward sums in a kernel
    profile_key: Callable | None = None  # shape -> the profile curve's key
    profile_seconds: Callable | None = None  # (lookup(key, work), shape) -> seconds per launch
    eager: EagerKernels | None = None
    eager_amp: EagerKernels | None = None  # under autocast with a 16-bit dtype
    autocast: str = "keep"
    parallel: bool = False
    unfused: Callable | None = None  # shape -> tuple[Part, ...]
    unpack: Callable | None = None  # (input shapes, output shapes) -> formula keyword arguments
    torch_op: object = None  # "module:function" or a callable: (rows, width, device, dtype) -> fn

    def cost(self, shape) -> OpCost:
        """The formula on a shape record (or a dict of its keyword arguments)."""
        return self.formula(**(shape.kwargs() if isinstance(shape, Shape) else shape))

    def make_shape(self, **kwargs) -> Shape:
        """The op's typed shape; an argument its formula does not take is an error here."""
        try:
            return self.shape(**kwargs)
        except TypeError as err:
            raise TypeError(f"op {self.name!r}: {err}") from None

    def gradient_flop(self, forward, shape, launches, attention_backward: str):
        """FLOPs of the op's backward (2x forward unless its record says otherwise: the input
        and the weight gradient each cost a forward)."""
        if self.backward is None:
            return 2 * forward
        return self.backward(forward, shape, launches, attention_backward)

    def backward_bytes_ratio(self, shape) -> float:
        """A pointwise op's backward bytes over its forward's (module docstring)."""
        if self.backward_traffic is None:
            return ELEMENTWISE_BACKWARD_TRAFFIC
        return self.backward_traffic(as_shape(shape))

    def matmul_flops(self, shape):
        """The op's matrix FLOPs (2 per multiply-add) from its layout, or None without one."""
        if self.matmul is None:
            return None
        mm = self.matmul(as_shape(shape))
        return (4 if mm.layout == "flash" else 2) * mm.batches * mm.m * mm.n * mm.k

    def profile_work(self, shape):
        """What a profile curve is indexed by: matrix FLOPs (flop convention) for matrix ops,
        elements for pointwise ones."""
        shape = as_shape(shape)
        if self.op_class in MATRIX_CLASSES:
            flops = self.matmul_flops(shape)
            return self.cost(shape).flop if flops is None else flops
        return shape.numel

    def profiled_seconds(self, lookup, shape):
        """Seconds per launch from a device profile (`lookup(key, work)` -> seconds or None), or
        None where the op has no profile key."""
        shape = as_shape(shape)
        if self.profile_seconds is not None:
            return self.profile_seconds(lookup, shape)
        if self.profile_key is None:
            return None
        return lookup(self.profile_key(shape), self.profile_work(shape))

    def counter_shape(self, inputs, outputs) -> dict:
        """A framework counter's shapes as the formula's arguments (elements counted at 1 byte)."""
        if self.unpack is not None:
            return self.unpack(inputs, outputs)
        return dict(numel=numel(outputs), elem_bytes=1)  # a pointwise op: its output's elements


def as_shape(shape):
    """An op's typed shape as it is, or a dict of (some of) its dimensions as an object whose
    attributes they are (hooks that read only those dimensions accept either)."""
    if isinstance(shape, (Shape, SimpleNamespace)):
        return shape
    return SimpleNamespace(**shape)


def numel(shapes) -> int:
    """Elements of the first of a list of tensor shapes (0 when there is none)."""
    return math.prod(shapes[0]) if shapes and shapes[0] is not None else 0


REGISTRY: dict[str, OpDef] = {}


def _shape_type(name: str, formula: Callable) -> type:
    """A frozen dataclass of the formula's keyword-only arguments (their defaults kept)."""
    fields = []
    for p in inspect.signature(formula).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise ValueError(f"op {name!r}: formula arguments must be keyword-only ({p.name})")
        default = {} if p.default is inspect.Parameter.empty else {
            "default": dataclasses.field(default=p.default)}
        fields.append((p.name, object, *default.values()))
    title = "".join(part.title() for part in name.split("_")) + "Shape"
    # NB: compared field by field (as the dicts of keyword arguments they replace); never hashed
    cls = dataclasses.make_dataclass(title, fields, bases=(Shape,), frozen=True, kw_only=True,
                                     unsafe_hash=False)
    cls.__hash__ = None
    cls._names = tuple(f[0] for f in fields)
    return cls


def register_op(name: str, *, op_class: str, aten_ops: tuple[str, ...] = (), **hooks):
    """Register `formula` under `name` with its hooks (`OpDef`'s fields); a second registration
    of the same name, or a framework op claimed twice, is an error."""
    if op_class not in OP_CLASSES:
        raise ValueError(f"op {name!r}: unknown op class {op_class!r}")
    if hooks.get("autocast", "keep") not in AUTOCAST:
        raise ValueError(f"op {name!r}: autocast must be one of {', '.join(AUTOCAST)}")
    unknown = set(hooks) - {f.name for f in dataclasses.fields(OpDef)}
    if unknown:
        raise ValueError(f"op {name!r}: unknown hook(s) {', '.join(sorted(unknown))}")

    def decorate(formula: Callable[..., OpCost]) -> Callable[..., OpCost]:
        if name in REGISTRY:
            raise ValueError(f"op {name!r} is already registered")
        claimed = {a for op in REGISTRY.values() for a in op.aten_ops}
        dup = claimed.intersection(aten_ops)
        if dup:
            raise ValueError(f"op {name!r}: framework ops {sorted(dup)} already belong to another "
                             f"op")
        REGISTRY[name] = OpDef(name, formula, op_class, _shape_type(name, formula),
                               tuple(aten_ops), **hooks)
        return formula

    return decorate


def unregister_op(name: str) -> None:
    """Remove a registered op (a plug-in or a test that registered one and is done with it)."""
    REGISTRY.pop(name)


def resolve(reference):
    """A callable a record names: itself, or "module:function" imported on first use (so that a
    torch-free record can name a torch function of reference/)."""
    if callable(reference):
        return reference
    import importlib

    module, _, name = str(reference).partition(":")
    return getattr(importlib.import_module(module), name)


def op_cost(name: str, **shape) -> OpCost:
    """Evaluate the registered formula `name` on keyword shapes."""
    return REGISTRY[name].formula(**shape)
