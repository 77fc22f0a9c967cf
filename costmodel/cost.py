"""The one evaluator of the op graph: exact ints, numpy arrays or sympy symbols, one typed result.

`evaluate(spec, impl, dims, scope)` runs every op's registered formula on `dims` (a `Dims` of Python
ints, numpy arrays or sympy symbols) and returns a `GraphCost`: one `OpTotal` per slash path with its
FLOPs in the three conventions, bytes moved, launches and op class. `count`, `bytes_moved` and
`symbolic_total` are views of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from costmodel.config import Config
from costmodel.conventions import CONVENTIONS
from costmodel.dims import Dims, symbolic_dims
from costmodel.errors import check_choice
from costmodel.graph import SCOPES, OpNode, build_graph
from costmodel.spec import ModelSpec

QUANTITIES = CONVENTIONS + ("bytes", "launches")


@dataclass(frozen=True)
class OpTotal:
    """One op path's cost within a scope (repeats applied at model scope).

    Values are ints, numpy arrays or sympy expressions, as the Dims were.

    Args:
        path: slash path, e.g. `layer/mlp/fc1`.
        op: the registered op name (`linear`, `sdpa`, ...).
        op_class: gemm, attention or elementwise (the roofline class).
        flop, mac, full: the three counting conventions (costmodel.conventions).
        bytes: bytes read plus written.
        launches: how many times the op runs (its repeat at model scope, else 1).
        shape: the op's typed shape of one launch (for shape-aware consumers).
        amp: the precisions it streams under autocast (costmodel.graph.OpNode), or None.
    """

    path: str
    op: str
    op_class: str
    flop: object
    mac: object
    full: object
    bytes: object
    launches: object
    shape: object
    amp: tuple | None = None

    def quantity(self, name: str):
        return getattr(self, name)


@dataclass(frozen=True)
class GraphCost:
    """Every op of one scope of a configuration (or of many, as arrays)."""

    spec: ModelSpec
    impl: str
    scope: str
    ops: tuple[OpTotal, ...]

    def total(self, quantity: str = "flop"):
        """Sum over ops of one of flop, mac, full, bytes or launches."""
        check_choice("quantity", quantity, QUANTITIES)
        return sum((op.quantity(quantity) for op in self.ops), 0)

    def by_op(self, quantity: str = "flop") -> dict:
        """{path: value} of one quantity."""
        check_choice("quantity", quantity, QUANTITIES)
        return {op.path: op.quantity(quantity) for op in self.ops}


def _in_scope(nodes: list[OpNode], scope: str):
    check_choice("scope", scope, SCOPES)
    return [(n, n.repeat if scope == "model" else 1) for n in nodes if scope in n.scopes]


def evaluate(spec: ModelSpec, impl: str, dims: Dims, scope: str = "model") -> GraphCost:
    """Evaluate the graph of `spec` with attention `impl` at `dims` over one scope."""
    ops = []
    for node, times in _in_scope(build_graph(spec, dims, impl), scope):
        c = node.cost()
        ops.append(OpTotal(node.path, node.op, node.op_class, times * c.flop, times * c.mac,
                           times * c.full, times * c.bytes_moved, times, node.shape, node.amp))
    return GraphCost(spec, impl, scope, tuple(ops))


def config_cost(config: Config, scope: str = "model") -> GraphCost:
    """The exact (integer) cost of one configuration."""
    return evaluate(config.spec, config.impl, config.dims(), scope)


@dataclass(frozen=True)
class CostResult:
    total: int
    by_op: dict[str, int]


def count(config: Config, scope: str = "model", convention: str = "flop") -> CostResult:
    """Exact integer cost of one configuration, per slash path and in total."""
    check_choice("convention", convention, CONVENTIONS)
    by_op = {path: int(value) for path, value in config_cost(config, scope).by_op(convention).items()}
    return CostResult(sum(by_op.values()), by_op)


def bytes_moved(config: Config, scope: str = "model") -> int:
    """Bytes read + written by every op of the scope (no reuse across ops)."""
    return int(config_cost(config, scope).total("bytes"))


@lru_cache(maxsize=256)
def symbolic_total(spec: ModelSpec, scope: str, convention: str, impl: str):
    """The scope's total of one quantity (a convention or "bytes") as a sympy expression in
    B, N, C, E, D, H, F, L, P, W, G, I."""
    import sympy as sp

    return sp.expand(evaluate(spec, impl, symbolic_dims(spec.kind), scope).total(convention))


def substitutions(config: Config) -> dict:
    """Symbol -> value for one configuration (the inverse view of Config.dims())."""
    import sympy as sp

    from costmodel.dims import symbols

    syms, values = symbols().values(), config.dims().values()
    return {syms[k]: values[k] for k in syms if isinstance(syms[k], sp.Symbol)}


def graph(config: Config) -> list[OpNode]:
    """The op nodes of one configuration (e.g. to ask which ops it uses)."""
    return build_graph(config.spec, config.dims(), config.impl)
