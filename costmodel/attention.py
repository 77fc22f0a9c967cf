"""Attention implementations: everything that differs by implementation, one record each.

An implementation (`AttentionImpl`) is registered once by `register_attention` and says:
- `kind`: which models it serves (core models: core-periphery attention; dense models);
- `nodes`: the ops of its attention call in one layer, as registered ops at shapes of the layer's
  `Dims` (costmodel/graph.py places them under `layer/attn/`; the ops' own records then cost,
  count, tile, profile and differentiate them);
- `live_bytes`: what its call keeps live besides q, k, v, its output and the logsumexp
  (costmodel/memory.py: the inference peak): one number for one tensor, or a list of the
  tensors' bytes (an allocator may treat large tensors apart: planners/footprint.py), and
  `saved`: what one layer keeps for backward from the call, by name (the training memory);
- `kernel`: the PyTorch kernel that runs it (reference/attention.py, named "module:function" so
  that costmodel stays torch-free, or a callable): `kernel(q, k, v, *, core_tokens, compiled)` on
  q, k, v of shape (B, H, S, d), returning (B, S, H*d);
- `tracked`: whether the live-tensor tracker can see inside its kernel, and `uncompiled_note`,
  said of a measured row that ran it without torch.compile.

The first implementation registered for a kind is that kind's default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from costmodel.errors import CoreplanError
from costmodel.spec import KINDS


@dataclass(frozen=True)
class AttentionImpl:
    """One registered attention implementation (module docstring)."""

    name: str
    kind: str
    nodes: Callable  # Dims -> [(leaf path, op, shape keyword arguments without elem_bytes)]
    kernel: object  # "module:function" or a callable (module docstring)
    live_bytes: Callable | None = None  # (Config, units) -> bytes, or [bytes of each tensor]
    saved: Callable | None = None  # (Config, units) -> {term: bytes}
    description: str = ""
    tracked: bool = True
    uncompiled_note: str = ""

    def live_tensors(self, config, units: dict) -> list:
        """The bytes of each tensor its call keeps live (module docstring)."""
        if self.live_bytes is None:
            return []
        got = self.live_bytes(config, units)
        return list(got) if isinstance(got, (list, tuple)) else [got]

    def live(self, config, units: dict):
        return sum(self.live_tensors(config, units))

    def saved_terms(self, config, units: dict) -> dict:
        """What one layer keeps for backward from the call: by default its output and the
        logsumexp (fused kernels)."""
        if self.saved is None:
            return {"sdpa_outputs": units["X"] + units["lse"]}
        return self.saved(config, units)


ATTENTION: dict[str, AttentionImpl] = {}


def register_attention(name: str, *, kind: str, nodes: Callable, kernel, **fields) -> AttentionImpl:
    """Register an attention implementation; a second one of the same name is an error."""
    if kind not in KINDS:
        raise ValueError(f"attention {name!r}: kind must be one of {', '.join(KINDS)}")
    if name in ATTENTION:
        raise ValueError(f"attention {name!r} is already registered")
    impl = AttentionImpl(name, kind, nodes, kernel, **fields)
    ATTENTION[name] = impl
    return impl


def unregister_attention(name: str) -> None:
    """Remove a registered implementation (a plug-in or a test done with it)."""
    ATTENTION.pop(name)


def impls(kind: str | None = None) -> tuple[str, ...]:
    """The registered implementations (of one kind), in registration order."""
    return tuple(n for n, a in ATTENTION.items() if kind is None or a.kind == kind)


def default_impl(kind: str) -> str:
    return impls(kind)[0]


def attention_impl(name: str) -> AttentionImpl:
    if name not in ATTENTION:
        raise CoreplanError(f"unknown impl {name!r}; choose one of {', '.join(impls())}")
    return ATTENTION[name]


def _common(d) -> dict:
    return dict(batch=d.batch, heads=d.num_heads, head_dim=d.head_dim)


def _split_saved(c, u) -> dict:
    return {"sdpa_outputs": 2 * u["X"] + u["lse"]}  # two calls: each output kept


def _masks(c, u) -> list:
    """The bytes of the boolean (S, S) mask and of the float mask SDPA derives from it."""
    return [c.seq_len * c.seq_len, c.seq_len * c.seq_len * c.elem_bytes]


register_attention(
    "split", kind="core", kernel="reference.attention:split",
    description="two SDPA calls (cores over [cores; patches], patches over the cores) written "
                "into one preallocated output",
    nodes=lambda d: [
        ("sdpa_cores", "sdpa", dict(q_len=d.core_tokens, kv_len=d.seq_len, **_common(d))),
        ("sdpa_patches", "sdpa", dict(q_len=d.patch_tokens, kv_len=d.core_tokens, **_common(d)))],
    saved=_split_saved)
register_attention(
    "masked", kind="core", kernel="reference.attention:masked",
    description="one SDPA over all S^2 scores with a boolean core-periphery mask (the oracle)",
    nodes=lambda d: [("sdpa_masked", "sdpa",
                      dict(q_len=d.seq_len, kv_len=d.seq_len, masked=True, **_common(d)))],
    live_bytes=_masks,
    saved=lambda c, u: {"sdpa_outputs": u["X"] + u["lse"], "mask": sum(_masks(c, u))})
register_attention(
    "flex", kind="core", kernel="reference.attention:flex",
    description="FlexAttention with a block-sparse core-periphery BlockMask",
    nodes=lambda d: [("flex", "flex_attention",
                      dict(seq_len=d.seq_len, core_len=d.core_tokens, **_common(d)))],
    # NB: a TorchDispatchMode cannot enter the flex_attention operator
    tracked=False, uncompiled_note="flex eager: unfused, materializes the scores "
                                   "(use --compile-flex)")
register_attention(
    "dense", kind="dense", kernel="reference.attention:dense",
    description="one fused SDPA call over all S tokens",
    nodes=lambda d: [("sdpa", "sdpa", dict(q_len=d.seq_len, kv_len=d.seq_len, **_common(d)))])
