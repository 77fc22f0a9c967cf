"""Dims: the one record naming the dimensions a cost depends on.

Each field holds a Python int (exact evaluation of one configuration), a numpy array (many
configurations at once, broadcasting) or a sympy symbol (closed forms). The op graph runs on any of
the three unchanged. `ModelSpec.dims(...)` fills one from a model and a configuration;
`symbols()` gives the symbolic one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache


@dataclass(frozen=True)
class Dims:
    """Sizes of one configuration (or of many, as arrays; or symbolic).

    Args:
        batch: images per forward (B).
        patch_tokens: patch tokens per image (N).
        core_tokens: active core tokens (C; 0 for dense models).
        extra_tokens: cls + register tokens (E; 0 for core models).
        embed_dim: model width (D).
        num_heads: attention heads (H).
        mlp_hidden_dim: MLP hidden width (F).
        depth: transformer blocks (L).
        patch_size: patch side in px (P).
        elem_bytes: bytes per element of activations and weights (W).
        pos_table_rows: rows of a learned position table (G; 0 without one).
        interpolate: 1 if the learned table is resized to the patch grid this forward, else 0 (I).
    """

    batch: object
    patch_tokens: object
    core_tokens: object
    extra_tokens: object
    embed_dim: object
    num_heads: object
    mlp_hidden_dim: object
    depth: object
    patch_size: object
    elem_bytes: object
    pos_table_rows: object = 0
    interpolate: object = 0

    @property
    def seq_len(self):
        """Tokens every layer processes: S = C + N + E."""
        return self.core_tokens + self.patch_tokens + self.extra_tokens

    @property
    def head_dim(self):
        if isinstance(self.embed_dim, int) and isinstance(self.num_heads, int):
            return self.embed_dim // self.num_heads  # heads divide D (checked by ModelSpec)
        return self.embed_dim / self.num_heads

    def values(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


SYMBOL_NAMES = dict(batch="B", patch_tokens="N", core_tokens="C", extra_tokens="E", embed_dim="D",
                    num_heads="H", mlp_hidden_dim="F", depth="L", patch_size="P", elem_bytes="W",
                    pos_table_rows="G", interpolate="I")


@lru_cache(maxsize=1)
def symbols() -> Dims:
    """The sympy symbols of every dimension (imports sympy on first use)."""
    import sympy as sp

    nonneg = {"pos_table_rows", "interpolate"}
    return Dims(**{name: sp.Symbol(letter, integer=True, **({"nonnegative": True} if name in nonneg
                                                               else {"positive": True}))
                   for name, letter in SYMBOL_NAMES.items()})


def symbolic_dims(kind: str) -> Dims:
    """Symbols for a model kind: dense models have no cores, core models no extra tokens and no
    learned position table."""
    from dataclasses import replace

    if kind == "core":
        return replace(symbols(), extra_tokens=0, pos_table_rows=0, interpolate=0)
    return replace(symbols(), core_tokens=0)
