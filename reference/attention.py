"""Attention kernels: dense SDPA and core-periphery attention (split, masked, flex).

Every kernel takes q, k, v of shape (B, H, S, d) and returns the attention output already laid out
as (B, S, H*d), ready for the output projection. For core-periphery the sequence is [C cores; N
patches]. Each kernel is named by its implementation's record (costmodel/attention.py), which
the models resolve (`AttentionKernel`): no module here chooses by name.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from costmodel.attention import attention_impl, default_impl, impls
from costmodel.ops import FLEX_BLOCK
from costmodel.registry import resolve


def _merge_heads(o: torch.Tensor) -> torch.Tensor:
    """(B, H, S, d) -> (B, S, H*d): one copy, as the layout changes."""
    batch, heads, seq, head_dim = o.shape
    return o.transpose(1, 2).reshape(batch, seq, heads * head_dim)


def dense(q, k, v, *, core_tokens: int = 0, compiled: bool = False) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v over all S tokens with one fused SDPA call."""
    # q (B,H,S,d) @ k^T (B,H,d,S) -> (B,H,S,S); @ v (B,H,S,d) -> (B,H,S,d)
    return _merge_heads(F.scaled_dot_product_attention(q, k, v))


def core_periphery_mask(seq_len: int, core_tokens: int, device="cpu") -> torch.Tensor:
    """Boolean (S, S) mask, True = may attend: cores see everything, patches see only cores."""
    index = torch.arange(seq_len, device=device)
    return (index[:, None] < core_tokens) | (index[None, :] < core_tokens)


def split(q, k, v, *, core_tokens: int, compiled: bool = False) -> torch.Tensor:
    """Two SDPA calls written into one preallocated (B, S, H, d) output: this replaces both a
    concatenation and the head-merge copy."""
    batch, heads, seq, head_dim = q.shape
    c = core_tokens
    out = q.new_empty(batch, seq, heads, head_dim)
    # cores: q_c (B,H,C,d) @ k^T (B,H,d,S) -> (B,H,C,S); @ v (B,H,S,d) -> (B,H,C,d)
    out[:, :c] = F.scaled_dot_product_attention(q[:, :, :c], k, v).transpose(1, 2)
    # patches: q_p (B,H,N,d) @ k_c^T (B,H,d,C) -> (B,H,N,C); @ v_c (B,H,C,d) -> (B,H,N,d)
    out[:, c:] = F.scaled_dot_product_attention(
        q[:, :, c:], k[:, :, :c], v[:, :, :c]).transpose(1, 2)
    return out.view(batch, seq, heads * head_dim)


def masked(q, k, v, *, core_tokens: int, compiled: bool = False) -> torch.Tensor:
    """One SDPA with a boolean block mask, computing all S^2 scores: the correctness oracle."""
    mask = core_periphery_mask(q.shape[2], core_tokens, q.device)
    # q (B,H,S,d) @ k^T (B,H,d,S) -> (B,H,S,S) masked; @ v (B,H,S,d) -> (B,H,S,d)
    return _merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


@lru_cache(maxsize=32)
def _flex_block_mask(seq_len: int, core_tokens: int, device: str):
    from torch.nn.attention.flex_attention import create_block_mask

    def allowed(batch, head, q_idx, kv_idx):
        return (q_idx < core_tokens) | (kv_idx < core_tokens)

    return create_block_mask(allowed, B=None, H=None, Q_LEN=seq_len, KV_LEN=seq_len, device=device,
                             BLOCK_SIZE=FLEX_BLOCK)


def flex(q, k, v, *, core_tokens: int, compiled: bool = False) -> torch.Tensor:
    """FlexAttention with a block-sparse BlockMask (`compiled`: flex_attention under
    torch.compile)."""
    from torch.nn.attention.flex_attention import flex_attention

    kernel = _compiled_flex() if compiled else flex_attention
    block_mask = _flex_block_mask(q.shape[2], core_tokens, str(q.device))
    # visits only the (128 x 128) tiles that hold an allowed (query, key) pair
    return _merge_heads(kernel(q, k, v, block_mask=block_mask))


@lru_cache(maxsize=1)
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


class AttentionKernel(nn.Module):
    """The attention call of a block: the kernel of a registered implementation.

    Args:
        impl: a registered attention implementation (costmodel/attention.py).
        compiled: run the kernel's torch.compile form where it has one (flex).
    """

    def __init__(self, impl: str, *, compiled: bool = False) -> None:
        super().__init__()
        self.impl, self.compiled = impl, compiled
        self._kernel = resolve(attention_impl(impl).kernel)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                core_tokens: int = 0) -> torch.Tensor:
        return self._kernel(q, k, v, core_tokens=core_tokens, compiled=self.compiled)


class CorePeripheryAttention(AttentionKernel):
    """Core-periphery attention: cores attend to [cores; patches], patches attend to cores only,
    by a registered core implementation (split, masked, flex, ...).

    Args:
        impl: the implementation (costmodel/attention.py).
        compile_flex: run the kernel's torch.compile form (flex).
    """

    def __init__(self, *, impl: str | None = None, compile_flex: bool = False) -> None:
        impl = impl or default_impl("core")
        if impl not in impls("core"):
            raise ValueError(f"unknown core-periphery impl {impl!r}; choose one of "
                             f"{impls('core')}")
        super().__init__(impl, compiled=compile_flex)


class DenseAttention(AttentionKernel):
    """softmax(q k^T / sqrt(d)) v over all S tokens: the dense models' implementation."""

    def __init__(self) -> None:
        super().__init__(default_impl("dense"))


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
    """Plain einsum/softmax attention, the oracle every kernel is tested against; returns (B, S, H*d)."""
    scale = q.shape[-1] ** -0.5
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return _merge_heads(torch.einsum("bhqk,bhkd->bhqd", scores.softmax(dim=-1), v))
