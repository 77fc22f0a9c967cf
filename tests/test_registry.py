"""Adding an op or an attention implementation is one registration each.

A toy fused kernel (`toy_cores_attention`: the cores' call of core-periphery attention, C queries
over all S keys, as one custom torch op) and a toy attention implementation that uses it for the
cores and SDPA for the patches are registered below, in one place each, and nothing else is
touched: the existing code costs them, counts them (fvcore and FlopCounterMode, on the reference
model built with the toy kernel), tiles them on a GPU, looks them up in a device profile, keeps
their memory and gives them a backward rule. Every expected value is derived by hand here.
"""

import contextlib
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from costmodel.attention import register_attention, unregister_attention
from costmodel.config import configure
from costmodel.cost import count
from costmodel.memory import inference_stages
from costmodel.ops import SCORE_SCALE
from costmodel.registry import REGISTRY, Matmul, OpCost, op_cost, register_op, unregister_op
from costmodel.spec import get_model
from costmodel.training import training_flops
from planners.devices import get_device
from planners.profile import Curve, Profile
from planners.roofline import simulate


# --------------------------------------------------------------------------- the toy kernel
@torch.library.custom_op("coreplan_test::cores_attention", mutates_args=())
def cores_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q (B,H,C,d) over k, v (B,H,S,d) -> (B,H,C,d), as one opaque kernel."""
    return F.scaled_dot_product_attention(q, k, v)


@cores_attention.register_fake
def _(q, k, v):
    return torch.empty_like(q)


def toy_kernel(q, k, v, *, core_tokens: int, compiled: bool = False):
    """Cores by the toy kernel, patches over the cores by SDPA, written into one output."""
    batch, heads, seq, head_dim = q.shape
    c = core_tokens
    out = q.new_empty(batch, seq, heads, head_dim)
    out[:, :c] = torch.ops.coreplan_test.cores_attention(q[:, :, :c], k, v).transpose(1, 2)
    # q_p (B,H,N,d) @ k_c^T (B,H,d,C) -> (B,H,N,C); @ v_c (B,H,C,d) -> (B,H,N,d)
    out[:, c:] = F.scaled_dot_product_attention(
        q[:, :, c:], k[:, :, :c], v[:, :, :c]).transpose(1, 2)
    return out.view(batch, seq, heads * head_dim)


def toy_formula(*, batch, heads, core_len, seq_len, head_dim, elem_bytes) -> OpCost:
    """The cores' attention: q_c k^T (B*H, C, S) then p v: two bmm formulas and a scale and a
    softmax per score; reads q, k, v, writes the output."""
    # q_c (B*H, C, d) @ k^T (B*H, d, S) -> (B*H, C, S)
    qk = op_cost("bmm", batch=batch * heads, m=core_len, k=head_dim, n=seq_len,
                 elem_bytes=elem_bytes)
    # p (B*H, C, S) @ v (B*H, S, d) -> (B*H, C, d)
    av = op_cost("bmm", batch=batch * heads, m=core_len, k=seq_len, n=head_dim,
                 elem_bytes=elem_bytes)
    scores = batch * heads * core_len * seq_len
    q_bytes = elem_bytes * batch * heads * core_len * head_dim
    kv_bytes = 2 * elem_bytes * batch * heads * seq_len * head_dim
    return OpCost(qk.flop + av.flop, qk.mac + av.mac,
                  qk.full + av.full + (SCORE_SCALE + 5) * scores, q_bytes + kv_bytes, q_bytes)


def _unpack(ins, outs):
    (batch, heads, core_len, head_dim), key = ins[0], ins[1]
    return dict(batch=batch, heads=heads, core_len=core_len, seq_len=key[2], head_dim=head_dim,
                elem_bytes=1)


TOY_OP, TOY_IMPL = "toy_cores_attention", "toy_split"


@contextlib.contextmanager
def toy_registered():
    """The toy op and the toy implementation, registered while the block runs."""
    register_op(
        TOY_OP, op_class="attention", aten_ops=("coreplan_test::cores_attention",),
        matmul=lambda s: Matmul("flash", s.batch * s.heads, s.core_len, s.seq_len, s.head_dim),
        backward=lambda forward, shape, launches, rule: 2 * forward,  # no recomputation
        profile_key=lambda s: ("cores", s.head_dim), autocast="lower", unpack=_unpack,
    )(toy_formula)
    register_attention(
        TOY_IMPL, kind="core", kernel=toy_kernel,
        nodes=lambda d: [
            ("cores", TOY_OP, dict(batch=d.batch, heads=d.num_heads, core_len=d.core_tokens,
                                   seq_len=d.seq_len, head_dim=d.head_dim)),
            ("patches", "sdpa", dict(batch=d.batch, heads=d.num_heads, q_len=d.patch_tokens,
                                     kv_len=d.core_tokens, head_dim=d.head_dim))],
        # the cores' scores, written by the toy kernel while it runs
        live_bytes=lambda c, u: c.batch * c.spec.num_heads * c.core_tokens * c.seq_len
        * c.elem_bytes)
    try:
        yield
    finally:
        unregister_attention(TOY_IMPL)
        unregister_op(TOY_OP)


@pytest.fixture
def toy():
    with toy_registered():
        yield


# veca-small at 64 px, C = 8, B = 2: N = 16 patches, S = 24 tokens, H = 6 heads of d = 64, L = 12
B, N, C, H, d, L = 2, 16, 8, 6, 64, 12
S = C + N


def _config(impl=TOY_IMPL, dtype="fp32"):
    return configure(get_model("veca-small"), 64, cores=C, batch=B, impl=impl, dtype=dtype)


def test_the_toy_is_costed_where_the_graph_places_it(toy):
    by_op = count(_config()).by_op
    # cores: q_c k^T and p v, each B*H*C*S*d multiply-adds at 2 FLOPs, in each of L layers
    assert by_op["layer/attn/cores"] == 2 * 2 * B * H * C * S * d * L == 7_077_888
    # patches over the cores: the same with N queries over C keys
    assert by_op["layer/attn/patches"] == 2 * 2 * B * H * N * C * d * L == 4_718_592
    # everything else is the split implementation's graph
    split = count(_config("split")).by_op
    assert by_op["layer/attn/cores"] == split["layer/attn/sdpa_cores"]
    assert {k: v for k, v in by_op.items() if "/attn/cores" not in k and "/attn/patches" not in k} \
        == {k: v for k, v in split.items() if "/attn/sdpa_" not in k}


def test_the_toy_is_counted_by_fvcore_and_flopcountermode(toy):
    from reference.counting import count_forward

    c = _config()
    counted = count_forward(c)
    assert counted["fvcore_unsupported"] == {}
    assert counted["flops"] == count(c, convention="flop").total
    assert counted["macs"] == count(c, convention="mac").total


def test_the_toy_kernel_computes_core_periphery_attention(toy):
    from reference.attention import AttentionKernel, attention_reference, core_periphery_mask

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 40, 16) for _ in range(3))
    want = attention_reference(q, k, v, core_periphery_mask(40, 8))
    assert (AttentionKernel(TOY_IMPL)(q, k, v, core_tokens=8) - want).abs().max() <= 1e-5


def _compute_bound_gpu(**fields):
    """An H100 whose memory is nearly free and whose clock holds: every op is compute-bound."""
    return dataclasses.replace(get_device("h100-sxm"), name="toy", board_power_w=None,
                               memory_bandwidth_bytes_per_s=1e18, kernel_launch_overhead_s=0.0,
                               efficiency={k: 1.0 for k in ("gemm", "attention", "elementwise")},
                               **fields)


def test_the_toy_is_tiled_on_a_gpu(toy):
    device = _compute_bound_gpu()
    ops = {o.path: o for o in simulate(_config(dtype="bf16"), device).ops}
    # flash tiles: B*H = 12 query sets of ceil(C/128) = 1 tile: one wave of 132 SMs, each tile
    # 128 queries over ceil(S/128)*128 = 128 keys at 4 FLOPs per (query, key, d). 12 tiles leave
    # most SMs idle, so the 64 x 64 tiles are taken (less padding): 64 queries over 64 keys, one
    # wave, no key split (one block). That is the matrix work, plus the scale and softmax (6 per
    # score) at the fp32 vector peak; L layers
    matrix = 132 * 4 * 64 * 64 * d * L
    pointwise = (SCORE_SCALE + 5) * B * H * C * S * L
    assert ops["layer/attn/cores"].time_s == pytest.approx(
        matrix / 989.5e12 + pointwise / 989.5e12, rel=1e-9)


def test_the_toy_is_looked_up_in_a_device_profile(toy):
    rate = 2e10  # FLOP/s the profile measured for the toy kernel at d = 64
    work = (1e6, 1e9)
    profile = Profile("fp32", 2, 0.0, {TOY_OP: (Curve(("cores", 64), work,
                                                      tuple(w / rate for w in work)),)})
    device = dataclasses.replace(get_device("cpu-epyc-2core"), profile=profile,
                                 efficiency={"gemm": 1.0, "attention": 1.0, "elementwise": 1.0},
                                 kernel_launch_overhead_s=0.0)
    ops = {o.path: o for o in simulate(_config(), device).ops}
    # its work is its matrix FLOPs per launch, 4*B*H*C*S*d = 589,824, at the measured rate
    assert ops["layer/attn/cores"].source == "profile"
    assert ops["layer/attn/cores"].time_s == pytest.approx(L * 589_824 / rate, rel=1e-9)
    assert ops["layer/attn/patches"].source == "roofline"  # no sdpa curve in this profile


def test_the_toy_has_its_backward_rule_and_its_memory(toy):
    toy_step, split_step = training_flops(_config()), training_flops(_config("split"))
    cores = 2 * 2 * B * H * C * S * d * L  # the cores' forward FLOPs
    # the toy's rule is 2x forward; split's flash backward of the same call is 5 bmm = 2.5x
    assert split_step["backward"] - toy_step["backward"] == 5 * cores // 2 - 2 * cores
    # while the toy kernel runs it keeps the cores' scores: B*H*C*S fp32 values
    live = inference_stages(_config())["attention/sdpa"]
    assert live - inference_stages(_config("split"))["attention/sdpa"] == B * H * C * S * 4


def test_registration_is_undone_and_a_second_one_refused():
    from costmodel.attention import impls

    with toy_registered():
        assert TOY_OP in REGISTRY and TOY_IMPL in impls("core")
        with pytest.raises(ValueError, match="already registered"):
            register_attention(TOY_IMPL, kind="core", nodes=lambda d: [], kernel=toy_kernel)
    assert TOY_OP not in REGISTRY and TOY_IMPL not in impls()
    with pytest.raises(Exception, match="unknown impl 'toy_split'"):
        _config()
