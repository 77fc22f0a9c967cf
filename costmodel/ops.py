"""Op formulas, registered once each. Every shape argument is an int, numpy array or sympy expression.

Conventions are defined in `costmodel.conventions`. Byte counts assume every tensor is read and written
once at `elem_bytes` per element (NB: caches and fusion can only lower real traffic).
"""

from __future__ import annotations

from costmodel.conventions import FULL_COST_PER_ELEMENT as PER_ELEMENT
from costmodel.conventions import FVCORE_LAYER_NORM_MACS
from costmodel.registry import OpCost, op_cost, register_op

ZERO = 0
FLEX_BLOCK = 128  # FlexAttention's default BlockMask tile (q and kv)


def ceil_div(a, b):
    """Ceiling division, exact for Python ints and numpy arrays (floor division of the negation)
    and for sympy expressions (ceiling)."""
    if type(a).__module__.startswith("sympy") or type(b).__module__.startswith("sympy"):
        import sympy as sp

        return sp.ceiling(sp.Rational(1, 1) * a / b)
    return -(-a // b)


@register_op("linear", op_class="gemm", aten_ops=("aten::linear", "aten::addmm", "aten::mm"))
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
    return OpCost(flop=2 * macs, mac=macs, full=2 * macs + PER_ELEMENT["bias"] * bias_adds,
                  bytes_read=elem_bytes * reads, bytes_written=elem_bytes * tokens * out_features)


@register_op("conv2d", op_class="gemm", aten_ops=("aten::_convolution", "aten::convolution"))
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
                  full=2 * macs + (PER_ELEMENT["bias"] * outputs if bias else 0),
                  bytes_read=elem_bytes * reads, bytes_written=elem_bytes * outputs)


@register_op("bmm", op_class="gemm", aten_ops=("aten::bmm", "aten::matmul", "aten::baddbmm"))
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


def _pointwise(name: str, numel, elem_bytes, inputs: int = 1, mac=ZERO) -> OpCost:
    return OpCost(flop=ZERO, mac=mac, full=PER_ELEMENT[name] * numel,
                  bytes_read=elem_bytes * inputs * numel, bytes_written=elem_bytes * numel)


def _binary(name: str, numel, elem_bytes, other_numel=None) -> OpCost:
    """A two-operand pointwise op writing `numel` elements; the second operand has `other_numel`
    elements (broadcast) or, when None, as many as the output."""
    other = numel if other_numel is None else other_numel
    return OpCost(flop=ZERO, mac=ZERO, full=PER_ELEMENT[name] * numel,
                  bytes_read=elem_bytes * (numel + other), bytes_written=elem_bytes * numel)


@register_op("softmax", op_class="elementwise", aten_ops=("aten::softmax", "aten::_softmax"))
def softmax(*, numel, elem_bytes) -> OpCost:
    """Softmax over the last dim of a tensor of `numel` elements."""
    return _pointwise("softmax", numel, elem_bytes)


@register_op("layer_norm", op_class="elementwise",
             aten_ops=("aten::layer_norm", "aten::native_layer_norm"))
def layer_norm(*, numel, affine: bool, elem_bytes) -> OpCost:
    """LayerNorm over the last dim; `mac` follows fvcore's rule (5 per element with affine, else 4)."""
    full = (PER_ELEMENT["layer_norm"] + (PER_ELEMENT["layer_norm_affine"] if affine else 0)) * numel
    return OpCost(flop=ZERO, mac=FVCORE_LAYER_NORM_MACS[affine] * numel, full=full,
                  bytes_read=elem_bytes * numel, bytes_written=elem_bytes * numel)


@register_op("gelu", op_class="elementwise", aten_ops=("aten::gelu",))
def gelu(*, numel, elem_bytes) -> OpCost:
    """Exact (erf) GELU."""
    return _pointwise("gelu", numel, elem_bytes)


@register_op("silu", op_class="elementwise", aten_ops=("aten::silu",))
def silu(*, numel, elem_bytes) -> OpCost:
    """SiLU, the SwiGLU gate activation."""
    return _pointwise("silu", numel, elem_bytes)


@register_op("mul", op_class="elementwise", aten_ops=("aten::mul", "aten::mul_"))
def mul(*, numel, elem_bytes, other_numel=None) -> OpCost:
    """Elementwise product of two tensors (SwiGLU gate), or of a tensor and a smaller one broadcast
    over it (LayerScale's per-channel gamma: `other_numel` = D, read once)."""
    return _binary("mul", numel, elem_bytes, other_numel)


@register_op("add", op_class="elementwise", aten_ops=("aten::add", "aten::add_"))
def add(*, numel, elem_bytes, other_numel=None) -> OpCost:
    """Elementwise sum of two tensors (residuals), or of a tensor and a smaller one broadcast over
    it (the position table, shared by the batch: `other_numel` = its elements, read once)."""
    return _binary("add", numel, elem_bytes, other_numel)


@register_op("rope", op_class="elementwise",
             aten_ops=("aten::neg", "aten::sin", "aten::cos", "aten::sub", "aten::div", "aten::pow"))
def rope(*, numel, elem_bytes) -> OpCost:
    """2D rotary embedding applied to a q or k tensor of `numel` elements.

    NB: the angle tables (sin/cos of coordinates x frequencies) are per token and head dim, shared
    by heads; their cost is below one element op per rotated element and is not counted.
    """
    return _pointwise("rope", numel, elem_bytes)


@register_op("rope_table", op_class="elementwise", aten_ops=("aten::repeat_interleave",))
def rope_table(*, numel, elem_bytes) -> OpCost:
    """cos and sin of 2D RoPE angles: `numel` = tokens x head dim entries of each table.

    NB: costed per table entry (angle, cos, sin); the angle is computed for half the entries and
    repeated, which this over-counts by one multiply per entry.
    """
    return OpCost(flop=ZERO, mac=ZERO, full=PER_ELEMENT["rope_table"] * numel,
                  bytes_read=elem_bytes * numel, bytes_written=2 * elem_bytes * numel)


@register_op("tanh", op_class="elementwise", aten_ops=("aten::tanh",))
def tanh(*, numel, elem_bytes) -> OpCost:
    """tanh, which squashes the cores' learned coordinates into (-1, 1)."""
    return _pointwise("tanh", numel, elem_bytes)


@register_op("index_setup", op_class="elementwise",
             aten_ops=("aten::meshgrid", "aten::lt", "aten::__or__", "aten::logical_or",
                       "aten::reciprocal"))
def index_setup(*, numel, elem_bytes) -> OpCost:
    """Index and mask bookkeeping (patch-coordinate grids, mask comparisons): no arithmetic on
    activations, so 0 in every convention. NB: registered so that no counted op is ever unknown."""
    return OpCost(flop=ZERO, mac=ZERO, full=ZERO, bytes_read=ZERO, bytes_written=elem_bytes * numel)


@register_op("interp_bicubic", op_class="elementwise", aten_ops=("aten::upsample_bicubic2d",))
def interp_bicubic(*, out_numel, in_numel, elem_bytes) -> OpCost:
    """Bicubic resize of a learned position table to the patch grid (once per forward, not per image)."""
    return OpCost(flop=ZERO, mac=ZERO, full=PER_ELEMENT["interp_bicubic"] * out_numel,
                  bytes_read=elem_bytes * in_numel, bytes_written=elem_bytes * out_numel)


@register_op("sdpa", op_class="attention",
             aten_ops=("aten::scaled_dot_product_attention",
                       "aten::_scaled_dot_product_flash_attention_for_cpu",
                       "aten::_scaled_dot_product_flash_attention",
                       "aten::_scaled_dot_product_efficient_attention",
                       "aten::_scaled_dot_product_cudnn_attention"))
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
    pointwise = PER_ELEMENT["scale"] + PER_ELEMENT["softmax"] + (PER_ELEMENT["mask"] if masked else 0)
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
                       "aten::_scaled_dot_product_cudnn_attention_backward"))
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
    return OpCost(flop=total.flop, mac=total.mac, full=total.full + (PER_ELEMENT["scale"] + 3) * scores,
                  bytes_read=total.bytes_read, bytes_written=total.bytes_written)


def flex_tiles(*, seq_len, core_len, block: int = FLEX_BLOCK):
    """Tiles of a core-periphery BlockMask that FlexAttention visits, for [cores; patches].

    Query blocks holding any core visit every kv block; query blocks of patches only visit the
    kv blocks holding cores: ceil(C/b) * (2*ceil(S/b) - ceil(C/b)).
    """
    core_blocks = ceil_div(core_len, block)
    return core_blocks * (2 * ceil_div(seq_len, block) - core_blocks)


@register_op("flex_attention", op_class="attention", counted_by_torch=False)
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
