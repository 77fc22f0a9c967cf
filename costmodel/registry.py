"""The op registry: one formula per op, registered once (see docs/ARCHITECTURE.md).

A formula is a pure function of shapes returning an `OpCost`; it uses plain arithmetic only, so
it runs on Python ints (exact), numpy arrays and sympy symbols alike. The model graph, the fvcore
handles and the FlopCounterMode mappings are all built from this registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import sympy as sp

OP_CLASSES = ("gemm", "attention", "elementwise")


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


@dataclass(frozen=True)
class OpDef:
    """A registered op: its formula, roofline class and the framework op names it accounts for."""

    name: str
    formula: Callable[..., OpCost]
    op_class: str
    aten_ops: tuple[str, ...]
    counted_by_torch: bool  # False: FlopCounterMode / fvcore cannot count it at all (e.g. flex)


REGISTRY: dict[str, OpDef] = {}


def register_op(name: str, *, op_class: str, aten_ops: tuple[str, ...] = (),
                counted_by_torch: bool = True):
    """Register `formula` under `name`; a second registration of the same name is an error."""
    if op_class not in OP_CLASSES:
        raise ValueError(f"op {name!r}: unknown op class {op_class!r}")

    def decorate(formula: Callable[..., OpCost]) -> Callable[..., OpCost]:
        if name in REGISTRY:
            raise ValueError(f"op {name!r} is already registered")
        claimed = {a for op in REGISTRY.values() for a in op.aten_ops}
        dup = claimed.intersection(aten_ops)
        if dup:
            raise ValueError(f"op {name!r}: framework ops {sorted(dup)} already belong to another op")
        REGISTRY[name] = OpDef(name, formula, op_class, tuple(aten_ops), counted_by_torch)
        return formula

    return decorate


def op_cost(name: str, **shape) -> OpCost:
    """Evaluate the registered formula `name` on keyword shapes."""
    return REGISTRY[name].formula(**shape)
