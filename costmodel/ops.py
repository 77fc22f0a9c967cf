"""Op formulas, registered once each with every hook their consumers need (costmodel.registry).

Every shape argument is an int, numpy array or sympy expression. Conventions are defined in
`costmodel.conventions`; each op's per-element cost in the `full` convention is its record's
`per_element`. Byte counts assume every tensor is read and written once at `elem_bytes` per
element (NB: caches and fusion can only lower real traffic).
"""

from __future__ import annotations

from costmodel.registry import (ELEMENTWISE_BACKWARD_TRAFFIC, REGISTRY, EagerKernels, Matmul,
                                OpCost, Part, Weights, op_cost, register_op)
from costmodel.registry import numel as elements

ZERO = 0
FLEX_BLOCK = 128  # FlexAttention's default BlockMask tile (q and kv)
SHORT = 64  # an attention side of at most this many tokens is "short" (the split layout's cores)

# NB: per-element costs of the `full` convention are conventional estimates, not counts of machine
# instructions. Each is the number of arithmetic operations of the textbook formula. Parts of an
# op that are not ops of their own:
BIAS_ADD = 1           # one add per output element of a biased linear / conv
SCORE_SCALE = 1        # q * 1/sqrt(d) on every attention score
MASK_ADD = 1           # additive mask on every attention score (masked impl)
LAYER_NORM_AFFINE = 2  # scale and shift after normalising
# fvcore's default layer_norm rule: 5 per element with affine, 4 without (fvcore norm_flop_counter).
FVCORE_LAYER_NORM_MACS = {True: 5, False: 4}


def ceil_div(a, b):
    """Ceiling division, exact for Python ints and numpy arrays (floor division of the negation)
    and for sympy expressions (ceiling)."""
    if type(a).__module__.startswith("sympy") or type(b).__module__.startswith("sympy"):
        import sympy as sp

        return sp.ceiling(sp.Rational(1, 1) * a / b)
    return -(-a // b)


def _per_element(name: str) -> int:
    return REGISTRY[name].per_element


def _by_name(name: str):
    """The profile key of a pointwise op: one curve per op, indexed by elements."""
    return lambda shape: (name,)


def _weight_only_backward(forward, shape, launches, attention_backward):
    """The gradient of the weights only (the input needs none): 1x forward."""
    return forward


# --------------------------------------------------------------------------- matmul-class ops
def _tensors(shapes):
    return [s for s in shapes if s is not None]


@register_op("linear", op_class="gemm", aten_ops=("aten::linear", "aten::addmm", "aten::mm"),
             matmul=lambda s: Matmul("gemm", 1, s.tokens, s.out_features, s.in_features),
             weights=lambda s: Weights(s.in_features * s.out_features,
                                       s.out_features if s.bias else 0),
             profile_key=lambda s: (s.in_features, s.out_features), autocast="lower",
             backward_reduction=lambda s: s.tokens * s.out_features if s.bias else 0)
def linear(*, tokens, in_features, out_features, bias: bool, elem_bytes) -> OpCost:
    """y = x W^T + b over `tokens` rows.

    Args:
        tokens: rows of x (batch * sequence).
        in_features, out_features: weight is (out_features, in_features).
        bias: whether b is added (counted only in `full`).
        elem_bytes: bytes per element of activations and weights.
    """
    # x (tokens, in) @ W^T (in, out) -> (tokens, out)
    macs = tokens * in_features * out_features
    bias_adds = tokens * out_features if bias else ZERO
    reads = tokens * in_features + in_features * out_features + (out_features if bias else 0)
    return OpCost(flop=2 * macs, mac=macs, full=2 * macs + BIAS_ADD * bias_adds,
                  bytes_read=elem_bytes * reads, bytes_written=elem_bytes * tokens * out_features)


def _conv_counted(ins, outs):
    x, w = _tensors(ins)[:2]  # input (B, Cin, H, W), weight (Cout, Cin, k, k), bias (Cout,)
    out = outs[0]
    return dict(batch=x[0], in_chans=w[1], out_chans=w[0], kernel=w[2],
                out_pixels=out[2] * out[3], bias=len(_tensors(ins)) > 2, elem_bytes=1)


@register_op("conv2d", op_class="gemm", aten_ops=("aten::_convolution", "aten::convolution"),
             matmul=lambda s: Matmul("gemm", 1, s.batch * s.out_pixels, s.out_chans,
                                     s.in_chans * s.kernel * s.kernel),
             # NB: a bias vector is read whether or not the shape counts its adds (the patch
             # embedding always has one)
             weights=lambda s: Weights(s.in_chans * s.kernel ** 2 * s.out_chans, s.out_chans),
             # NB: the patch embedding's input, the image, needs no gradient
             backward=_weight_only_backward,
             # and its bias vector's gradient sums the output's over every pixel (always there)
             backward_reduction=lambda s: s.batch * s.out_pixels * s.out_chans,
             profile_key=lambda s: (s.in_chans * s.kernel * s.kernel, s.out_chans),
             autocast="lower", unpack=_conv_counted)
def conv2d(*, batch, in_chans, out_chans, kernel, out_pixels, bias: bool, elem_bytes) -> OpCost:
    """A square-kernel conv2d (the patch embedding, kernel = stride = patch).

    Args:
        batch: images.
        in_chans, out_chans: channels in and out.
        kernel: kernel side.
        out_pixels: output positions per image (h_out * w_out).
        bias: counted only in `full`.
        elem_bytes: bytes per element.
    """
    # per output pixel: (in_chans*k*k) . (in_chans*k*k, out_chans) -> out_chans
    macs = batch * out_pixels * out_chans * in_chans * kernel * kernel
    outputs = batch * out_pixels * out_chans
    reads = batch * out_pixels * in_chans * kernel * kernel + out_chans * in_chans * kernel * kernel
    return OpCost(flop=2 * macs, mac=macs,
                  full=2 * macs + (BIAS_ADD * outputs if bias else 0),
                  bytes_read=elem_bytes * reads, bytes_written=elem_bytes * outputs)


def _bmm_counted(ins, outs):
    import math

    a, b = _tensors(ins)[-2:]  # (..., m, k) @ (..., k, n); baddbmm's added tensor comes first
    return dict(batch=math.prod(a[:-2]), m=a[-2], k=a[-1], n=b[-1], elem_bytes=1)


@register_op("bmm", op_class="gemm", aten_ops=("aten::bmm", "aten::matmul", "aten::baddbmm"),
             matmul=lambda s: Matmul("gemm", s.batch, s.m, s.n, s.k), autocast="lower",
             unpack=_bmm_counted)
def bmm(*, batch, m, k, n, elem_bytes) -> OpCost:
    """Batched matmul: a (batch, m, k) @ b (batch, k, n) -> (batch, m, n).

    Args:
        batch: independent products (e.g. B*H).
        m, k, n: matrix dims.
        elem_bytes: bytes per element.
    """
    macs = batch * m * k * n
    return OpCost(flop=2 * macs, mac=macs, full=2 * macs,
                  bytes_read=elem_bytes * batch * (m * k + k * n),
                  bytes_written=elem_bytes * batch * m * n)


# --------------------------------------------------------------------------- pointwise ops
def _pointwise(name: str, numel, elem_bytes, inputs: int = 1, mac=ZERO) -> OpCost:
    return OpCost(flop=ZERO, mac=mac, full=_per_element(name) * numel,
                  bytes_read=elem_bytes * inputs * numel, bytes_written=elem_bytes * numel)


def _binary(name: str, numel, elem_bytes, other_numel=None) -> OpCost:
    """A two-operand pointwise op writing `numel` elements; the second operand has `other_numel`
    elements (broadcast) or, when None, as many as the output."""
    other = numel if other_numel is None else other_numel
    return OpCost(flop=ZERO, mac=ZERO, full=_per_element(name) * numel,
                  bytes_read=elem_bytes * (numel + other), bytes_written=elem_bytes * numel)


@register_op("softmax", op_class="elementwise", aten_ops=("aten::softmax", "aten::_softmax"),
             per_element=5,  # max, subtract, exp, sum, divide
             profile_key=_by_name("softmax"), autocast="fp32_out")
def softmax(*, numel, elem_bytes) -> OpCost:
    """Softmax over the last dim of a tensor of `numel` elements."""
    return _pointwise("softmax", numel, elem_bytes)


@register_op("layer_norm", op_class="elementwise",
             aten_ops=("aten::layer_norm", "aten::native_layer_norm"),
             per_element=5,  # mean, subtract, variance, normalise; affine adds 2 (scale, shift)
             profile_key=_by_name("layer_norm"), autocast="fp32",
             # backward with weights: one kernel reads dy and x and writes dx, another reads dy
             # and x again for the weights' gradients: 5 tensors against the forward's 2
             backward_traffic=lambda s: 2.5 if s.affine else ELEMENTWISE_BACKWARD_TRAFFIC,
             unpack=lambda ins, outs: dict(numel=elements(outs), affine=True, elem_bytes=1),
             torch_op="reference.op_calls:layer_norm")
def layer_norm(*, numel, affine: bool, elem_bytes) -> OpCost:
    """LayerNorm over the last dim; `mac` follows fvcore's rule (5 per element with affine, else 4)."""
    full = (_per_element("layer_norm") + (LAYER_NORM_AFFINE if affine else 0)) * numel
    return OpCost(flop=ZERO, mac=FVCORE_LAYER_NORM_MACS[affine] * numel, full=full,
                  bytes_read=elem_bytes * numel, bytes_written=elem_bytes * numel)


@register_op("gelu", op_class="elementwise", aten_ops=("aten::gelu",),
             per_element=8,  # erf-based GELU: 0.5*x*(1+erf(x/sqrt 2)); erf counted as 5
             profile_key=_by_name("gelu"), torch_op="reference.op_calls:gelu")
def gelu(*, numel, elem_bytes) -> OpCost:
    """Exact (erf) GELU."""
    return _pointwise("gelu", numel, elem_bytes)


@register_op("silu", op_class="elementwise", aten_ops=("aten::silu",),
             per_element=4,  # x / (1 + exp(-x)): neg, exp, add, divide
             profile_key=_by_name("silu"), torch_op="reference.op_calls:silu")
def silu(*, numel, elem_bytes) -> OpCost:
    """SiLU, the SwiGLU gate activation."""
    return _pointwise("silu", numel, elem_bytes)


@register_op("mul", op_class="elementwise", aten_ops=("aten::mul", "aten::mul_"),
             per_element=1, profile_key=_by_name("mul"), autocast="promote",
             torch_op="reference.op_calls:mul",
             # by a constant (other_numel 0: unfused attention's scale), dx = dy * c: dy in, dx
             # out, as many bytes as the forward's
             backward_traffic=lambda s: 1.0 if s.other_numel == 0 else ELEMENTWISE_BACKWARD_TRAFFIC)
def mul(*, numel, elem_bytes, other_numel=None) -> OpCost:
    """Elementwise product of two tensors (SwiGLU gate), or of a tensor and a smaller one broadcast
    over it (LayerScale's per-channel gamma: `other_numel` = D, read once)."""
    return _binary("mul", numel, elem_bytes, other_numel)


@register_op("add", op_class="elementwise", aten_ops=("aten::add", "aten::add_"),
             per_element=1, profile_key=_by_name("add"), autocast="promote",
             torch_op="reference.op_calls:add",
             # backward: the sum passes dy on to both inputs (no kernel); where the residual
             # stream forks, its two gradients are summed (read 2, write 1: the forward's bytes);
             # a broadcast term's gradient is dy summed over the batch (dy in, the term out)
             backward_traffic=lambda s: 1.0 if s.other_numel is None else
             (s.numel + s.other_numel) / (2 * s.numel + s.other_numel))
def add(*, numel, elem_bytes, other_numel=None) -> OpCost:
    """Elementwise sum of two tensors (residuals), or of a tensor and a smaller one broadcast over
    it (the position table, shared by the batch: `other_numel` = its elements, read once)."""
    return _binary("add", numel, elem_bytes, other_numel)


# RoPE, x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1), as eager PyTorch runs
# it: neg (reads and writes half of x: 1 x-sized unit of traffic), cat (2), mul (2), mul (2), add
# (3) = 5 kernels and 10 units, against 2 (read x, write the result) for the fused op. NB: the cos
# and sin tables are shared by batch and heads and not counted; timm's interleaved form (neg,
# stack, mul, mul, add) is the same count. Under autocast the tables are fp32, so the products and
# their sum are written in fp32 and cast back to 16 bits for attention: neg (1 unit), cat (2), mul
# (read 1, write 2: 3), mul (3), add (read 4, write 2: 6), cast (read 2, write 1: 3) = 6 kernels
# and 18 units, 9 x the fused op's 2.
@register_op("rope", op_class="elementwise",
             aten_ops=("aten::neg", "aten::sin", "aten::cos", "aten::sub", "aten::div", "aten::pow"),
             per_element=3,  # x*cos + rotate_half(x)*sin: 2 multiplies + 1 add
             profile_key=_by_name("rope"), eager=EagerKernels(5, 5.0),
             eager_amp=EagerKernels(6, 9.0), parallel=True, torch_op="reference.op_calls:rope")
def rope(*, numel, elem_bytes) -> OpCost:
    """2D rotary embedding applied to a q or k tensor of `numel` elements.

    NB: the angle tables (sin/cos of coordinates x frequencies) are per token and head dim, shared
    by heads; their cost is below one element op per rotated element and is not counted.
    """
    return _pointwise("rope", numel, elem_bytes)


@register_op("rope_table", op_class="elementwise", aten_ops=("aten::repeat_interleave",),
             per_element=3,  # per (token, head dim) entry: angle = coordinate x frequency, cos, sin
             profile_key=_by_name("rope_table"), torch_op="reference.op_calls:rope_table")
def rope_table(*, numel, elem_bytes) -> OpCost:
    """cos and sin of 2D RoPE angles: `numel` = tokens x head dim entries of each table.

    NB: costed per table entry (angle, cos, sin); the angle is computed for half the entries and
    repeated, which this over-counts by one multiply per entry.
    """
    return OpCost(flop=ZERO, mac=ZERO, full=_per_element("rope_table") * numel,
                  bytes_read=elem_bytes * numel, bytes_written=2 * elem_bytes * numel)


@register_op("tanh", op_class="elementwise", aten_ops=("aten::tanh",),
             per_element=4,  # (e^2x - 1) / (e^2x + 1): exp, subtract, add, divide
             profile_key=_by_name("tanh"), torch_op="reference.op_calls:tanh")
def tanh(*, numel, elem_bytes) -> OpCost:
    """tanh, which squashes the cores' learned coordinates into (-1, 1)."""
    return _pointwise("tanh", numel, elem_bytes)


@register_op("index_setup", op_class="elementwise",
             aten_ops=("aten::meshgrid", "aten::lt", "aten::__or__", "aten::logical_or",
                       "aten::reciprocal"), per_element=0)
def index_setup(*, numel, elem_bytes) -> OpCost:
    """Index and mask bookkeeping (patch-coordinate grids, mask comparisons): no arithmetic on
    activations, so 0 in every convention. NB: registered so that no counted op is ever unknown."""
    return OpCost(flop=ZERO, mac=ZERO, full=ZERO, bytes_read=ZERO, bytes_written=elem_bytes * numel)


@register_op("interp_bicubic", op_class="elementwise", aten_ops=("aten::upsample_bicubic2d",),
             per_element=32,  # 16 taps x (multiply + add) per output element
             unpack=lambda ins, outs: dict(out_numel=elements(outs), in_numel=elements(ins),
                                           elem_bytes=1))
def interp_bicubic(*, out_numel, in_numel, elem_bytes) -> OpCost:
    """Bicubic resize of a learned position table to the patch grid (once per forward, not per image)."""
    return OpCost(flop=ZERO, mac=ZERO, full=_per_element("interp_bicubic") * out_numel,
                  bytes_read=elem_bytes * in_numel, bytes_written=elem_bytes * out_numel)


# --------------------------------------------------------------------------- attention ops
def _sdpa_counted(query, key, value) -> dict:
    batch, heads, q_len, head_dim = query
    if tuple(value)[-1] != head_dim:
        raise ValueError("coreplan's SDPA formula assumes d_qk == d_v")
    return dict(batch=batch, heads=heads, q_len=q_len, kv_len=key[2], head_dim=head_dim,
                elem_bytes=1)


def _sdpa_backward(forward, s, launches, attention_backward):
    """Flash-style backward: the `sdpa_backward` formula (5 bmm, 2.5x forward); the math
    backend's autograd of its two matmuls: 2x forward."""
    if attention_backward == "math":
        return 2 * forward
    return launches * op_cost("sdpa_backward", batch=s.batch, heads=s.heads, q_len=s.q_len,
                              kv_len=s.kv_len, head_dim=s.head_dim, elem_bytes=s.elem_bytes).flop


def sdpa_regime(q_len, kv_len):
    """Which profile curve an SDPA call is read from, per element: "few_queries" (the cores'
    call: at most SHORT queries over more keys), "few_keys" (the patches' call: more queries
    over at most SHORT keys), else "square" (dense and masked attention, or both sides short)."""
    import numpy as np

    q, kv = np.asarray(q_len), np.asarray(kv_len)
    return np.where(q <= SHORT, np.where(kv <= SHORT, "square", "few_queries"),
                    np.where(kv <= SHORT, "few_keys", "square"))


def _sdpa_profiled(lookup, s):
    """Three regimes, chosen per element: few queries (the cores' call), few keys (the patches'
    call), and the rest (square-ish: dense and masked attention). Only the regimes the elements
    fall in are looked up: a masked call is square, and a profile measures masked attention on
    square calls only. The two split regimes' curves are keyed by the short side's length too
    (regime, head dim, masked, C): calls of equal work and different C run differently (C=8
    keys over 4,096 queries is not C=64 over 512), so each C is looked up on its own (a profile
    written before holds one curve over C: the lookup falls back to it)."""
    import numpy as np

    masked = bool(getattr(s, "masked", False))
    q, kv, work = np.broadcast_arrays(np.asarray(s.q_len), np.asarray(s.kv_len),
                                      np.asarray(REGISTRY["sdpa"].profile_work(s), dtype=float))
    regime = sdpa_regime(q, kv)
    out = np.empty(regime.shape)
    for r in np.unique(regime).tolist():
        where = regime == r
        if r == "square":
            groups = [((r, s.head_dim, masked), where)]
        else:
            short = q if r == "few_queries" else kv
            groups = [((r, s.head_dim, masked, int(c)), where & (short == c))
                      for c in np.unique(short[where]).tolist()]
        for key, chosen in groups:
            seconds = lookup(key, work[chosen])
            if seconds is None:
                return None
            out[chosen] = seconds
    return out


def _sdpa_unfused(s) -> tuple[Part, ...]:
    """Attention as eager PyTorch runs it without a fused kernel, in the form the measured
    unfused sources run it (timm before 0.9: `(q @ k.transpose(-2, -1)) * self.scale`; Hugging
    Face's eager ViT and DINOv2: `scores / math.sqrt(head_dim)`): scores = q k^T (a batched GEMM
    writing B*H*q*kv scores), the scale (a kernel reading and writing every score), softmax
    (reads the scores, writes the probabilities; a mask adds one more read; it carries the mask
    and softmax arithmetic), out = probs v."""
    bh, e = s.batch * s.heads, s.elem_bytes
    scores = bh * s.q_len * s.kv_len
    soft = op_cost("softmax", numel=scores, elem_bytes=e)
    mask_read = e * scores if s.masked else 0
    return (
        # q (BH, q, d) @ k^T (BH, d, kv) -> scores (BH, q, kv)
        Part("qk", "bmm", dict(batch=bh, m=s.q_len, k=s.head_dim, n=s.kv_len, elem_bytes=e)),
        Part("scale", "mul", dict(numel=scores, other_numel=0, elem_bytes=e)),  # by a Python scalar
        Part("softmax", "softmax", dict(numel=scores, elem_bytes=e),
             cost=OpCost(ZERO, ZERO, soft.full, soft.bytes_read + mask_read, soft.bytes_written),
             remainder=True),
        # probs (BH, q, kv) @ v (BH, kv, d) -> out (BH, q, d)
        Part("av", "bmm", dict(batch=bh, m=s.q_len, k=s.kv_len, n=s.head_dim, elem_bytes=e)))


@register_op("sdpa", op_class="attention",
             aten_ops=("aten::scaled_dot_product_attention",
                       "aten::_scaled_dot_product_flash_attention_for_cpu",
                       "aten::_scaled_dot_product_flash_attention",
                       "aten::_scaled_dot_product_efficient_attention",
                       "aten::_scaled_dot_product_cudnn_attention"),
             matmul=lambda s: Matmul("flash", s.batch * s.heads, s.q_len, s.kv_len, s.head_dim),
             backward=_sdpa_backward, profile_seconds=_sdpa_profiled, autocast="lower",
             unfused=_sdpa_unfused, unpack=lambda ins, outs: _sdpa_counted(*ins[:3]))
def sdpa(*, batch, heads, q_len, kv_len, head_dim, elem_bytes, masked: bool = False,
         materialized: bool = False) -> OpCost:
    """softmax(q k^T / sqrt(d) [+ mask]) v, composed of two bmm formulas.

    Args:
        batch, heads: B and H.
        q_len, kv_len: query and key/value sequence lengths.
        head_dim: d (same for q, k and v).
        elem_bytes: bytes per element.
        masked: an additive (or boolean) mask of (q_len, kv_len) is applied.
        materialized: scores and probabilities are written to memory (math backend) rather than
            kept on chip (fused kernels); only bytes change.
    """
    # q (B*H, Sq, d) @ k^T (B*H, d, Skv) -> scores (B*H, Sq, Skv)
    qk = op_cost("bmm", batch=batch * heads, m=q_len, k=head_dim, n=kv_len, elem_bytes=elem_bytes)
    # probs (B*H, Sq, Skv) @ v (B*H, Skv, d) -> out (B*H, Sq, d)
    av = op_cost("bmm", batch=batch * heads, m=q_len, k=kv_len, n=head_dim, elem_bytes=elem_bytes)
    scores = batch * heads * q_len * kv_len
    pointwise = SCORE_SCALE + _per_element("softmax") + (MASK_ADD if masked else 0)
    q_bytes = elem_bytes * batch * heads * q_len * head_dim
    kv_bytes = 2 * elem_bytes * batch * heads * kv_len * head_dim
    # NB: a fused kernel reads the mask once per (batch, head); the math backend also writes and
    # re-reads scores and probabilities.
    mask_bytes = elem_bytes * batch * heads * q_len * kv_len if masked else 0
    score_traffic = 2 * elem_bytes * scores if materialized else 0
    return OpCost(flop=qk.flop + av.flop, mac=qk.mac + av.mac, full=qk.full + av.full + pointwise * scores,
                  bytes_read=q_bytes + kv_bytes + mask_bytes + score_traffic,
                  bytes_written=q_bytes + score_traffic)


@register_op("sdpa_backward", op_class="attention",
             aten_ops=("aten::_scaled_dot_product_flash_attention_for_cpu_backward",
                       "aten::_scaled_dot_product_flash_attention_backward",
                       "aten::_scaled_dot_product_efficient_attention_backward",
                       "aten::_scaled_dot_product_cudnn_attention_backward"),
             unpack=lambda ins, outs: _sdpa_counted(*ins[1:4]))
def sdpa_backward(*, batch, heads, q_len, kv_len, head_dim, elem_bytes) -> OpCost:
    """Flash-style SDPA backward: recompute scores, then dP, dV, dQ, dK: five bmm (2.5x forward).

    NB: bytes are those of five separate bmm, an upper bound for a fused backward kernel.

    Args: as `sdpa`.
    """
    bh = batch * heads
    recompute = op_cost("bmm", batch=bh, m=q_len, k=head_dim, n=kv_len, elem_bytes=elem_bytes)
    d_probs = op_cost("bmm", batch=bh, m=q_len, k=head_dim, n=kv_len, elem_bytes=elem_bytes)
    d_v = op_cost("bmm", batch=bh, m=kv_len, k=q_len, n=head_dim, elem_bytes=elem_bytes)
    d_q = op_cost("bmm", batch=bh, m=q_len, k=kv_len, n=head_dim, elem_bytes=elem_bytes)
    d_k = op_cost("bmm", batch=bh, m=head_dim, k=q_len, n=kv_len, elem_bytes=elem_bytes)
    total = recompute + d_probs + d_v + d_q + d_k
    scores = bh * q_len * kv_len
    # NB: softmax backward ~ 3 ops per score (dP*P, row sum, subtract) counted in `full` only.
    return OpCost(flop=total.flop, mac=total.mac, full=total.full + (SCORE_SCALE + 3) * scores,
                  bytes_read=total.bytes_read, bytes_written=total.bytes_written)


def flex_tiles(*, seq_len, core_len, block: int = FLEX_BLOCK):
    """Tiles of a core-periphery BlockMask that FlexAttention visits, for [cores; patches].

    Query blocks holding any core visit every kv block; query blocks of patches only visit the
    kv blocks holding cores: ceil(C/b) * (2*ceil(S/b) - ceil(C/b)).
    """
    core_blocks = ceil_div(core_len, block)
    return core_blocks * (2 * ceil_div(seq_len, block) - core_blocks)


def _flex_backward(forward, shape, launches, attention_backward):
    """As flash SDPA (2.5x forward; NB: FlexAttention's backward is not counted by any counter),
    or 2x under the math rule."""
    return 2 * forward if attention_backward == "math" else 5 * forward // 2


@register_op("flex_attention", op_class="attention", counted_by_torch=False,
             backward=_flex_backward, autocast="lower")
def flex_attention(*, batch, heads, seq_len, core_len, head_dim, elem_bytes,
                   block: int = FLEX_BLOCK) -> OpCost:
    """FlexAttention over [cores; patches] with a block-sparse core-periphery BlockMask.

    Every visited (block x block) tile computes its full score tile (masked entries too).
    NB: edge tiles are counted as full tiles, as the kernel pads them.

    Args:
        batch, heads, head_dim: B, H, d.
        seq_len: S = C + N.
        core_len: C.
        elem_bytes: bytes per element.
        block: tile side of the BlockMask.
    """
    tiles = flex_tiles(seq_len=seq_len, core_len=core_len, block=block)
    per_tile = op_cost("sdpa", batch=batch, heads=heads, q_len=block, kv_len=block,
                       head_dim=head_dim, elem_bytes=elem_bytes, masked=True)
    q_and_out = elem_bytes * batch * heads * seq_len * head_dim
    return OpCost(flop=tiles * per_tile.flop, mac=tiles * per_tile.mac, full=tiles * per_tile.full,
                  bytes_read=q_and_out + 2 * elem_bytes * batch * heads * tiles * block * head_dim,
                  bytes_written=q_and_out)
