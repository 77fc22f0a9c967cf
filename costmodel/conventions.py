"""Counting conventions and the per-element costs of the `full` convention, in one place.

Conventions (each named wherever a count is reported):
- ``flop``: 2 per multiply-add, matmul-class ops only (linear, conv, bmm/matmul, SDPA). Exactly what
  ``torch.utils.flop_counter.FlopCounterMode`` reports; bias adds are not counted.
- ``mac``: what fvcore's default handles report: 1 per multiply-add for linear/conv/matmul/bmm,
  5 per element for an affine layer norm (4 without affine), 0 for other pointwise ops; SDPA counted as
  B*H*Sq*Skv*(d_qk + d_v) (fvcore has no SDPA handle; coreplan adds this one).
- ``full``: every op: 2 per multiply-add plus the per-element costs below for everything else.
"""

CONVENTIONS = ("flop", "mac", "full")

# NB: per-element costs of the `full` convention are conventional estimates, not counts of machine
# instructions. Each is the number of arithmetic operations of the textbook formula.
FULL_COST_PER_ELEMENT = {
    "add": 1,             # residual add, position-embedding add
    "mul": 1,             # LayerScale, SwiGLU gate product
    "bias": 1,            # one add per output element of a biased linear / conv
    "scale": 1,           # q * 1/sqrt(d) on every attention score
    "mask": 1,            # additive mask on every attention score (masked impl)
    "softmax": 5,         # max, subtract, exp, sum, divide
    "layer_norm": 5,      # mean, subtract, variance, normalise; affine adds 2 (scale, shift) -> 7
    "layer_norm_affine": 2,
    "gelu": 8,            # erf-based GELU: 0.5*x*(1+erf(x/sqrt 2)); erf counted as 5
    "silu": 4,            # x / (1 + exp(-x)): neg, exp, add, divide
    "rope": 3,            # x*cos + rotate_half(x)*sin: 2 multiplies + 1 add
    "interp_bicubic": 32,  # 16 taps x (multiply + add) per output element
    "rope_table": 3,      # per (token, head dim) entry: angle = coordinate x frequency, cos, sin
    "tanh": 4,            # (e^2x - 1) / (e^2x + 1): exp, subtract, add, divide
}

# fvcore's default layer_norm rule: 5 per element with affine, 4 without (fvcore norm_flop_counter).
FVCORE_LAYER_NORM_MACS = {True: 5, False: 4}
