"""Encoders built from a costmodel ModelSpec (one source of truth for shapes). Random init only.

- `DenseEncoder`: DINOv2 / DINOv3 shaped (cls, registers, learned or RoPE positions, GELU or SwiGLU MLP,
  LayerScale).
- `CoreEncoder`: VECA shaped (a bank of `max_cores` learned cores of which a prefix of C is active per
  call, core-periphery attention, SwiGLU MLP, 2D RoPE with learned core coordinates and the
  core-coordinate head before layers 1..L-1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from costmodel.spec import ModelSpec
from reference.attention import CorePeripheryAttention, DenseAttention

ROPE_BASE = 100.0


def rope_tables(positions: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of 2D RoPE angles for (B, S, 2) (y, x) positions -> each (B, 1, S, head_dim).

    The first half of each head rotates with y, the second with x; each half has head_dim/4 frequencies.
    """
    quarter = head_dim // 4
    freqs = ROPE_BASE ** (-torch.arange(quarter, device=positions.device, dtype=positions.dtype)
                          / quarter)
    # elementwise broadcast (B,S,2,1) * (quarter,) -> (B,S,2,quarter): no matmul
    angles = (positions[..., None] * freqs).flatten(2)
    angles = torch.cat([angles, angles], dim=-1)[:, None]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin on (B, H, S, d)."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


def patch_grid(rows: int, cols: int, device, dtype) -> torch.Tensor:
    """(rows*cols, 2) patch-centre coordinates in (-1, 1), row-major."""
    ys = (torch.arange(rows, device=device, dtype=dtype) + 0.5) * (2 / rows) - 1
    xs = (torch.arange(cols, device=device, dtype=dtype) + 0.5) * (2 / cols) - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


class Attention(nn.Module):
    """Pre-projected multi-head attention around a pluggable core kernel."""

    def __init__(self, spec: ModelSpec, kernel: nn.Module) -> None:
        super().__init__()
        D = spec.embed_dim
        self.heads, self.fused = spec.num_heads, spec.fused_qkv
        if spec.fused_qkv:
            self.qkv = nn.Linear(D, 3 * D, bias=spec.qkv_bias)
            if spec.qkv_bias and not spec.key_bias:  # DINOv3: key third of the bias masked to 0
                self.register_buffer("bias_mask", torch.ones(3 * D).index_fill_(
                    0, torch.arange(D, 2 * D), 0.0), persistent=False)
        else:
            self.q = nn.Linear(D, D, bias=spec.qkv_bias)
            self.k = nn.Linear(D, D, bias=spec.qkv_bias and spec.key_bias)
            self.v = nn.Linear(D, D, bias=spec.qkv_bias)
        self.kernel = kernel
        self.out = nn.Linear(D, D)

    def _project(self, h: torch.Tensor):
        batch, seq, dim = h.shape
        if self.fused:
            bias = self.qkv.bias
            if bias is not None and hasattr(self, "bias_mask"):
                bias = bias * self.bias_mask
            # h (B,S,D) @ W_qkv^T (D,3D) -> (B,S,3D) -> 3 x (B,H,S,d) views
            qkv = F.linear(h, self.qkv.weight, bias).view(batch, seq, 3, self.heads, -1)
            return qkv.permute(2, 0, 3, 1, 4).unbind(0)
        # h (B,S,D) @ W^T (D,D) -> (B,S,D) -> (B,H,S,d) view, for each of q, k, v
        return tuple(lin(h).view(batch, seq, self.heads, -1).transpose(1, 2)
                     for lin in (self.q, self.k, self.v))

    def forward(self, h: torch.Tensor, rope=None, rope_start: int = 0, **kernel_args) -> torch.Tensor:
        q, k, v = self._project(h)
        del h  # the normalised input is no longer needed: free it before attention
        if rope is not None:
            cos, sin = rope
            if rope_start:  # DINOv3: rotate patch tokens only, not cls/registers
                q = torch.cat([q[:, :, :rope_start], apply_rope(q[:, :, rope_start:], cos, sin)], 2)
                k = torch.cat([k[:, :, :rope_start], apply_rope(k[:, :, rope_start:], cos, sin)], 2)
            else:
                q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # o (B,S,D) @ W_out^T (D,D) -> (B,S,D)
        return self.out(self.kernel(q, k, v, **kernel_args))


class Mlp(nn.Module):
    """GELU MLP (fc1 D->F) or SwiGLU MLP (fc1 D->2F, silu(u)*v); fc2 F->D."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.swiglu = spec.mlp == "swiglu"
        hidden = spec.mlp_hidden_dim
        self.fc1 = nn.Linear(spec.embed_dim, 2 * hidden if self.swiglu else hidden)
        self.fc2 = nn.Linear(hidden, spec.embed_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h (B,S,D) @ W1^T (D,F or 2F) -> (B,S,F or 2F)
        u = self.fc1(h)
        del h
        if self.swiglu:
            gate, value = u.chunk(2, dim=-1)
            u = F.silu(gate) * value
        else:
            u = F.gelu(u)
        # u (B,S,F) @ W2^T (F,D) -> (B,S,D)
        return self.fc2(u)


def output_head(spec: ModelSpec) -> nn.Module:
    """The distillation output projection Linear(D, out) on every token, or an identity."""
    if spec.output_head:
        return nn.Linear(spec.embed_dim, spec.distill_output_dim)
    return nn.Identity()


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + ls(attn(norm(x))); x + ls(mlp(norm(x)))."""

    def __init__(self, spec: ModelSpec, kernel: nn.Module) -> None:
        super().__init__()
        D = spec.embed_dim
        self.norm1, self.norm2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.attn, self.mlp = Attention(spec, kernel), Mlp(spec)
        self.ls1 = LayerScale(D) if spec.layer_scale else nn.Identity()
        self.ls2 = LayerScale(D) if spec.layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor, **attn_args) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), **attn_args))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DenseEncoder(nn.Module):
    """A dense ViT encoder (DINOv2 / DINOv3 shaped). forward(images) -> (B, E + N, D)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        if spec.is_core:
            raise ValueError(f"{spec.name} is a core model: use CoreEncoder")
        self.spec, D = spec, spec.embed_dim
        self.patch_embed = nn.Conv2d(spec.in_chans, D, spec.patch_size, spec.patch_size)
        self.cls_token = nn.Parameter(torch.randn(1, spec.cls_tokens, D) * 0.02)
        self.register_tokens = (nn.Parameter(torch.randn(1, spec.register_tokens, D) * 0.02)
                                if spec.register_tokens else None)
        if spec.pos_embed == "learned":
            rows = spec.pos_embed_grid ** 2 + spec.cls_tokens
            self.pos_embed = nn.Parameter(torch.randn(1, rows, D) * 0.02)
        self.blocks = nn.ModuleList(Block(spec, DenseAttention()) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(D)
        self.head = output_head(spec)

    def _positions(self, rows: int, cols: int) -> torch.Tensor:
        s, table = self.spec, self.pos_embed
        cls_pos, grid = table[:, :s.cls_tokens], table[:, s.cls_tokens:]
        if (rows, cols) != (s.pos_embed_grid,) * 2:
            g = s.pos_embed_grid
            grid = grid.reshape(1, g, g, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(rows, cols), mode="bicubic", align_corners=False)
            grid = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat([cls_pos, grid], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        s = self.spec
        # conv (B,3,H,W) * (D,3,P,P) stride P -> (B,D,H/P,W/P) -> (B,N,D)
        patches = self.patch_embed(images).to(self.cls_token.device)  # see counting_model()
        batch, _, rows, cols = patches.shape
        x = torch.cat([self.cls_token.expand(batch, -1, -1), patches.flatten(2).transpose(1, 2)], 1)
        del patches
        if s.pos_embed == "learned":
            x = x + self._positions(rows, cols)
        if self.register_tokens is not None:
            x = torch.cat([x[:, :s.cls_tokens], self.register_tokens.expand(batch, -1, -1),
                           x[:, s.cls_tokens:]], dim=1)
        attn_args = {}
        if s.pos_embed == "rope":
            grid = patch_grid(rows, cols, x.device, x.dtype).expand(batch, -1, -1)
            attn_args = dict(rope=rope_tables(grid, s.head_dim), rope_start=s.rope_start)
        for block in self.blocks:
            x = block(x, **attn_args)
        return self.head(self.norm(x))


class CoreEncoder(nn.Module):
    """An elastic core-periphery encoder (VECA shaped). forward(images, core_tokens=C) -> (B, C + N, D).

    The output's first token is the class embedding. Only the first C cores (and their coordinates)
    are used, so outputs do not depend on core parameters beyond C.
    """

    def __init__(self, spec: ModelSpec, *, impl: str | None = None,
                 compile_flex: bool = False) -> None:
        super().__init__()
        if not spec.is_core:
            raise ValueError(f"{spec.name} is a dense model: use DenseEncoder")
        self.spec, D = spec, spec.embed_dim
        self.patch_embed = nn.Conv2d(spec.in_chans, D, spec.patch_size, spec.patch_size)
        self.cores = nn.Parameter(torch.randn(spec.max_cores, D) * 0.02)
        # raw (pre-tanh) coordinates of every core; tanh puts them in the patch grid's (-1, 1)
        self.core_coords = nn.Parameter(torch.rand(spec.max_cores, 2) * 2.0 - 1.0)
        kernel = CorePeripheryAttention(impl=impl, compile_flex=compile_flex)
        self.blocks = nn.ModuleList(Block(spec, kernel) for _ in range(spec.depth))
        # the coordinate update before each layer after the first: its own Linear(D, 2) and gate
        self.core_heads = (nn.ModuleList(nn.Linear(D, 2) for _ in range(spec.depth - 1))
                           if spec.core_coord_head else None)
        self.core_gates = (nn.Parameter(torch.full((spec.depth - 1,), 0.01))
                           if spec.core_coord_head else None)
        self.norm = nn.LayerNorm(D)
        self.head = output_head(spec)

    def forward(self, images: torch.Tensor, *, core_tokens: int | None = None) -> torch.Tensor:
        s = self.spec
        c = s.max_cores if core_tokens is None else core_tokens
        if not 0 < c <= s.max_cores or c % s.core_chunk:
            raise ValueError(f"core_tokens {c}: must be a multiple of {s.core_chunk} up to {s.max_cores}")
        # conv (B,3,H,W) * (D,3,P,P) stride P -> (B,D,H/P,W/P) -> (B,N,D)
        patches = self.patch_embed(images).to(self.cores.device)  # see counting_model()
        batch, _, rows, cols = patches.shape
        x = torch.cat([self.cores[:c].expand(batch, -1, -1), patches.flatten(2).transpose(1, 2)], 1)
        del patches
        grid = patch_grid(rows, cols, x.device, x.dtype).expand(batch, -1, -1)
        raw = self.core_coords[:c].expand(batch, -1, -1)
        core_pos = torch.tanh(raw) if self.core_heads is not None else raw
        for index, block in enumerate(self.blocks):
            if index and self.core_heads is not None:
                # cores x (B,C,D) @ W_head^T (D,2) -> (B,C,2), gated into the raw coordinates
                raw = raw + self.core_gates[index - 1] * self.core_heads[index - 1](x[:, :c])
                core_pos = torch.tanh(raw)
            rope = rope_tables(torch.cat([core_pos, grid], dim=1), s.head_dim)
            x = block(x, rope=rope, core_tokens=c)
        return self.head(self.norm(x))


def hf_model(name: str) -> nn.Module:
    """The Hugging Face transformers model of catalog model `name`'s shape (Dinov2Model or
    DINOv3ViTModel from a config, random weights, their default attention): an implementation
    nobody here wrote, for held-out checks. Needs the `transformers` package."""
    from transformers import Dinov2Config, Dinov2Model, DINOv3ViTConfig, DINOv3ViTModel

    from costmodel.spec import get_model

    s = get_model(name)
    if s.family == "dinov2":
        config = Dinov2Config(hidden_size=s.embed_dim, num_hidden_layers=s.depth,
                              num_attention_heads=s.num_heads,
                              mlp_ratio=s.mlp_hidden_dim // s.embed_dim, patch_size=s.patch_size,
                              image_size=s.pos_embed_grid * s.patch_size)
        return Dinov2Model(config).eval()
    config = DINOv3ViTConfig(hidden_size=s.embed_dim, num_hidden_layers=s.depth,
                             num_attention_heads=s.num_heads, intermediate_size=s.mlp_hidden_dim,
                             patch_size=s.patch_size, num_register_tokens=s.register_tokens)
    return DINOv3ViTModel(config).eval()


def build_model(spec: ModelSpec, *, impl: str | None = None, compile_flex: bool = False) -> nn.Module:
    """The encoder for a spec (impl applies to core models)."""
    if spec.is_core:
        return CoreEncoder(spec, impl=impl, compile_flex=compile_flex)
    return DenseEncoder(spec)


def forward_kwargs(spec: ModelSpec, core_tokens: int) -> dict:
    return {"core_tokens": core_tokens} if spec.is_core else {}
