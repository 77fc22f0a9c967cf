"""Counting conventions (each named wherever a count is reported):

- ``flop``: 2 per multiply-add, matmul-class ops only (linear, conv, bmm/matmul, SDPA). Exactly what
  ``torch.utils.flop_counter.FlopCounterMode`` reports; bias adds are not counted.
- ``mac``: what fvcore's default handles report: 1 per multiply-add for linear/conv/matmul/bmm,
  5 per element for an affine layer norm (4 without affine), 0 for other pointwise ops; SDPA counted as
  B*H*Sq*Skv*(d_qk + d_v) (fvcore has no SDPA handle; coreplan adds this one).
- ``full``: every op: 2 per multiply-add plus each op's documented per-element cost (its registry
  record's ``per_element``, `costmodel/ops.py`: softmax 5, GELU 8, SiLU 4, RoPE 3, LayerNorm 5 + 2
  affine, bias/add/mul 1, bicubic resize 32, ...).
"""

CONVENTIONS = ("flop", "mac", "full")
