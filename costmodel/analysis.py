"""Analysis: crossover between a core model and a dense model, savings and their limits, LaTeX."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from costmodel.attention import default_impl
from costmodel.config import check_cores, configure
from costmodel.cost import count, evaluate, symbolic_total
from costmodel.dims import Dims, symbols
from costmodel.spec import ModelSpec

MAX_RESOLUTION = 8192


@dataclass(frozen=True)
class Crossover:
    """Where the core model's scope becomes cheaper than the dense model's.

    `patch_tokens` compares equal token counts N (closed form from sympy, then the smallest integer);
    `resolution` compares the same square image (each model at its own patch size).
    """

    core_model: str
    dense_model: str
    core_tokens: int
    scope: str
    convention: str
    equation: sp.Expr            # core(N) - dense(N), a polynomial in N
    roots: list                  # real positive roots of the equation
    patch_tokens: int | None     # smallest N with core <= dense for all N' >= N
    resolution: int | None       # smallest square resolution with core <= dense from there on
    savings_limit: sp.Expr       # lim_{N->oo} 1 - core/dense


def _concrete(spec: ModelSpec, scope: str, convention: str, impl: str, cores: int) -> sp.Expr:
    """The scope's cost as a polynomial in N alone: every other dimension is the model's own
    (batch 1, fp32, no position-table resize)."""
    fixed = spec.dims(batch=1, rows=1, cols=1, core_tokens=cores, elem_bytes=4).values()
    dims = Dims(**{**fixed, "patch_tokens": symbols().patch_tokens, "interpolate": 0})
    return sp.expand(evaluate(spec, impl, dims, scope).total(convention))


def crossover(core: ModelSpec, dense: ModelSpec, *, cores: int | None = None, scope: str = "model",
              convention: str = "flop") -> Crossover:
    """Closed form and integer crossover; batch cancels (both sides are linear in B)."""
    cores = check_cores(core, cores)
    n = symbols().patch_tokens
    core_expr = _concrete(core, scope, convention, core_impl := default_impl("core"), cores)
    dense_expr = _concrete(dense, scope, convention, default_impl("dense"), 0)
    real_n = sp.Symbol("N", positive=True)  # solve over the reals, then round up
    diff = sp.expand(core_expr - dense_expr).subs(n, real_n)
    roots = sorted(r for r in sp.solve(sp.Eq(diff, 0), real_n) if r.is_real and r > 0)
    return Crossover(core.name, dense.name, cores, scope, convention, diff, roots,
                     _integer_crossover(diff, roots), _resolution_crossover(core, dense, cores, scope,
                                                                             convention, core_impl),
                     sp.limit(1 - (core_expr / dense_expr).subs(n, real_n), real_n, sp.oo))


def _integer_crossover(diff: sp.Expr, roots: list) -> int | None:
    """Smallest integer N from which diff(N) <= 0 holds for good (past the largest root)."""
    (n,) = diff.free_symbols or {sp.Symbol("N")}
    if sp.limit(diff, n, sp.oo) > 0:
        return None  # the core model never gets cheaper
    start = max(int(sp.floor(roots[-1])), 1) if roots else 1
    return next(c for c in range(start, start + 3) if diff.subs(n, c) <= 0)


def _resolution_crossover(core: ModelSpec, dense: ModelSpec, cores: int, scope: str,
                          convention: str, impl: str) -> int | None:
    """Smallest square resolution (multiple of the core patch) from which the core model is cheaper."""
    answer = None
    for res in range(core.patch_size, MAX_RESOLUTION + 1, core.patch_size):
        c = count(configure(core, res, cores=cores, impl=impl), scope, convention).total
        d = count(configure(dense, dense.round_resolution(res)), scope, convention).total
        if c <= d and answer is None:
            answer = res
        elif c > d:
            answer = None
    return answer


def formula(spec: ModelSpec, scope: str, convention: str = "flop", impl: str | None = None) -> sp.Expr:
    """A scope's total as a formula of B, N, C (core) or E (dense), D, H, F, L, P."""
    impl = impl or default_impl(spec.kind)
    expr = symbolic_total(spec, scope, convention, impl)
    return sp.factor_terms(sp.collect(expr, [symbols().batch, symbols().depth]))


def latex(expr: sp.Expr) -> str:
    return sp.latex(expr)


__all__ = ["Crossover", "crossover", "formula", "latex"]
