"""hypothesis properties of the cost model, and the numeric layer against exact sympy."""

import numpy as np
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.analysis import crossover
from costmodel.config import configure
from costmodel.cost import count, evaluate, substitutions, symbolic_total
from costmodel.spec import catalog, get_model

CORE = [s for s in catalog().values() if s.is_core]
DENSE = [s for s in catalog().values() if not s.is_core]
SCOPES = ("model", "layer", "attention", "attention-core")
CONVENTIONS = ("flop", "mac", "full")

core_specs = st.sampled_from(CORE)
grid = st.integers(1, 96)
chunks = st.integers(1, 8)


@settings(max_examples=40, deadline=None)
@given(core_specs, grid, chunks, st.integers(1, 8), st.sampled_from(SCOPES),
       st.sampled_from(CONVENTIONS), st.sampled_from(("split", "masked", "flex")))
def test_monotone_in_tokens_cores_and_batch(spec, g, k, b, scope, convention, impl):
    def cost(g_, k_, b_):
        return count(configure(spec, g_ * spec.patch_size, cores=8 * k_, batch=b_, impl=impl),
                     scope, convention).total
    base = cost(g, k, b)
    assert cost(g + 1, k, b) >= base
    assert cost(g, min(k + 1, 8), b) >= base
    assert cost(g, k, b + 1) >= base


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(CORE + DENSE), grid, st.integers(1, 16), st.sampled_from(SCOPES),
       st.sampled_from(CONVENTIONS))
def test_by_op_sums_to_total(spec, g, b, scope, convention):
    c = configure(spec, g * spec.patch_size, batch=b)
    r = count(c, scope, convention)
    assert sum(r.by_op.values()) == r.total


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(CORE + DENSE), grid, st.integers(1, 8), st.sampled_from(CONVENTIONS),
       st.sampled_from(("bf16", "fp32")))
def test_ints_arrays_and_symbols_give_the_same_numbers(spec, g, b, convention, dtype):
    """One evaluator, three kinds of Dims: exact ints, numpy arrays and sympy symbols agree."""
    impl = "flex" if spec.is_core and g % 3 == 0 else None
    c = configure(spec, g * spec.patch_size, batch=b, impl=impl, dtype=dtype)
    exact = count(c, "model", convention).total
    assert isinstance(exact, int)
    expr = symbolic_total(spec, "model", convention, c.impl)
    assert int(expr.subs(substitutions(c))) == exact           # symbolic formula, substituted
    # a numpy evaluation of this configuration beside two others, in one call
    rows = np.array([g, g + 1, 2 * g + 3], dtype=np.int64)
    dims = spec.dims(batch=np.full(3, b), rows=rows, cols=rows, core_tokens=np.full(3, c.core_tokens),
                     elem_bytes=np.full(3, c.elem_bytes))
    vector = evaluate(spec, c.impl, dims).total(convention)
    assert int(vector[0]) == exact
    bigger = configure(spec, (2 * g + 3) * spec.patch_size, batch=b, impl=impl, dtype=dtype)
    assert int(vector[2]) == count(bigger, "model", convention).total


def test_numeric_is_vectorised():
    spec = get_model("veca-base")
    rows = np.array([16, 32, 64])  # N = 256, 1024, 4096
    c = np.array([8, 32, 64])
    dims = spec.dims(batch=1, rows=rows, cols=rows, core_tokens=c, elem_bytes=2)
    got = evaluate(spec, "split", dims, "attention-core").total("flop")
    n = rows * rows
    assert list(got) == [4 * 768 * (2 * nn * cc + cc * cc) for nn, cc in zip(n, c)]  # one layer


@settings(max_examples=12, deadline=None)
@given(core_specs, st.sampled_from(DENSE), st.sampled_from(CORE[0].budgets),
       st.sampled_from(("attention-core", "attention", "model")))
def test_core_cheaper_exactly_from_the_crossover(core, dense, cores, scope):
    x = crossover(core, dense, cores=cores, scope=scope)
    if x.patch_tokens is None:
        return
    n_sym = next(iter(x.equation.free_symbols))
    at = lambda n: x.equation.subs(n_sym, n)  # noqa: E731  core(N) - dense(N)
    assert at(x.patch_tokens) <= 0 and at(x.patch_tokens + 1000) <= 0
    if x.patch_tokens > 1:
        assert at(x.patch_tokens - 1) > 0


def test_savings_limit_is_one():
    x = crossover(get_model("veca-base"), get_model("dinov3-base"), cores=64, scope="attention-core")
    assert x.savings_limit == 1
    assert x.patch_tokens == 146        # N^2 - 118 N - 4071 = 0 -> N = 145.9 (by hand)
    assert x.resolution == 208          # 13^2 = 169 >= 146 > 144 = 12^2


def test_attention_core_formula():
    expr = symbolic_total(get_model("veca-small"), "attention-core", "flop", "split")
    B, N, C, D = sp.symbols("B N C D", positive=True, integer=True)
    assert sp.simplify(expr - 4 * B * D * (2 * N * C + C ** 2)) == 0
