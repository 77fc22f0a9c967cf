"""Evaluate the graph: exact integer costs of one configuration, or symbolic totals."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from costmodel.config import Config, check_choice
from costmodel.conventions import CONVENTIONS
from costmodel.graph import SCOPES, Dims, OpNode, build_graph, symbols
from costmodel.spec import ModelSpec

def graph(config: Config) -> list[OpNode]:
    return build_graph(config.spec, Dims(**config.dim_values()), config.impl)


def in_scope(nodes: list[OpNode], scope: str) -> list[tuple[OpNode, object]]:
    """(node, multiplicity) pairs of a scope: repeats count only at model scope."""
    check_choice("scope", scope, SCOPES)
    return [(n, n.repeat if scope == "model" else 1) for n in nodes if scope in n.scopes]


@dataclass(frozen=True)
class CostResult:
    total: int
    by_op: dict[str, int]


def count(config: Config, scope: str = "model", convention: str = "flop") -> CostResult:
    """Exact integer cost of one configuration, per slash path and in total."""
    check_choice("convention", convention, CONVENTIONS)
    by_op: dict[str, int] = {}
    for node, times in in_scope(graph(config), scope):
        value = int(times * node.cost().convention(convention))
        by_op[node.path] = by_op.get(node.path, 0) + value
    return CostResult(sum(by_op.values()), by_op)


def bytes_moved(config: Config, scope: str = "model") -> int:
    """Bytes read + written by every op of the scope (no reuse across ops)."""
    return int(sum(t * n.cost().bytes_moved for n, t in in_scope(graph(config), scope)))


def symbolic_dims(kind: str) -> Dims:
    """Symbols for a model kind: dense models have no cores, core models no extra tokens."""
    if kind == "core":
        return replace(symbols(), extra_tokens=0, pos_table_rows=0, interpolate=0)
    return replace(symbols(), core_tokens=0)


@lru_cache(maxsize=256)
def symbolic_total(spec: ModelSpec, scope: str, convention: str, impl: str,
                   quantity: str = "flops"):
    """The scope's total as a sympy expression in B, N, C, E, D, H, F, L, P, W, G, I."""
    import sympy as sp

    check_choice("convention", convention, CONVENTIONS)
    nodes = build_graph(spec, symbolic_dims(spec.kind), impl)
    terms = in_scope(nodes, scope)
    if quantity == "bytes":
        return sp.expand(sum(t * n.cost().bytes_moved for n, t in terms))
    return sp.expand(sum(t * n.cost().convention(convention) for n, t in terms))


def substitutions(config: Config) -> dict:
    """Symbol -> value for one configuration (the inverse view of Config.dims())."""
    import sympy as sp

    values, syms = config.dim_values(), symbols()
    return {getattr(syms, f): values[f] for f in Dims.__dataclass_fields__
            if isinstance(getattr(syms, f), sp.Symbol)}
