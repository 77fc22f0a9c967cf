"""One configuration of one model (sympy-free: the planner's fast path imports only this)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from costmodel.errors import CoreplanError
from costmodel.spec import ModelSpec

DTYPE_BYTES = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2}


def parse_resolution(text: str | int | tuple) -> tuple[int, int]:
    """'512' -> (512, 512); '768x1024' -> (768, 1024)."""
    if isinstance(text, tuple):
        h, w = text
    elif isinstance(text, int):
        h = w = text
    else:
        match = re.fullmatch(r"\s*(-?\d+)\s*(?:[xX]\s*(-?\d+)\s*)?", str(text))
        if not match:
            raise CoreplanError(f"resolution {text!r}: expected R or HxW, e.g. 512 or 768x1024")
        h = int(match.group(1))
        w = int(match.group(2)) if match.group(2) else h
    if h <= 0 or w <= 0:
        raise CoreplanError(f"resolution {h}x{w}: must be positive")
    return h, w


@dataclass(frozen=True)
class Config:
    """One configuration of one model: everything a cost depends on."""

    spec: ModelSpec
    height: int
    width: int
    core_tokens: int
    batch: int
    impl: str
    dtype: str = "fp32"

    @property
    def grid(self) -> tuple[int, int]:
        return self.height // self.spec.patch_size, self.width // self.spec.patch_size

    @property
    def patch_tokens(self) -> int:
        rows, cols = self.grid
        return rows * cols

    @property
    def seq_len(self) -> int:
        return self.core_tokens + self.patch_tokens + self.spec.extra_tokens

    @property
    def elem_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    def dim_values(self) -> dict[str, int]:
        """Integer values of every graph dimension (the fields of costmodel.graph.Dims)."""
        s = self.spec
        table = s.pos_embed_grid ** 2 if s.pos_embed == "learned" else 0
        interpolate = int(s.pos_embed == "learned" and self.grid != (s.pos_embed_grid,) * 2)
        return dict(batch=self.batch, patch_tokens=self.patch_tokens, core_tokens=self.core_tokens,
                    extra_tokens=s.extra_tokens, embed_dim=s.embed_dim, num_heads=s.num_heads,
                    mlp_hidden_dim=s.mlp_hidden_dim, depth=s.depth, patch_size=s.patch_size,
                    elem_bytes=self.elem_bytes, pos_table_rows=table, interpolate=interpolate)


def configure(spec: ModelSpec, resolution, *, cores: int | None = None, batch: int = 1,
              impl: str | None = None, dtype: str = "fp32") -> Config:
    """Validate user input and build a Config; every error is one clear line."""
    height, width = parse_resolution(resolution)
    p = spec.patch_size
    if height % p or width % p:
        raise CoreplanError(f"resolution {height}x{width} is not a multiple of {spec.name}'s "
                            f"patch size {p} (try {max(p, height // p * p)})")
    if batch <= 0:
        raise CoreplanError(f"batch must be positive, got {batch}")
    if dtype not in DTYPE_BYTES:
        raise CoreplanError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}")
    return Config(spec, height, width, check_cores(spec, cores), batch, check_impl(spec, impl), dtype)


def check_cores(spec: ModelSpec, cores: int | None) -> int:
    if not spec.is_core:
        if cores is not None:
            raise CoreplanError(f"--cores applies to core models only; {spec.name} is dense")
        return 0
    if cores is None:
        return spec.max_cores
    if cores <= 0:
        raise CoreplanError(f"cores must be positive, got {cores}")
    if cores > spec.max_cores or cores % spec.core_chunk:
        raise CoreplanError(f"cores {cores} invalid for {spec.name}: must be a multiple of "
                            f"{spec.core_chunk} up to {spec.max_cores}")
    return cores


def check_choice(kind: str, value: str, allowed) -> str:
    if value not in allowed:
        raise CoreplanError(f"unknown {kind} {value!r}; choose one of {', '.join(allowed)}")
    return value




CORE_IMPLS = ("split", "masked", "flex")
DENSE_IMPLS = ("dense",)
IMPLS = CORE_IMPLS + DENSE_IMPLS


def check_impl(spec: ModelSpec, impl: str | None) -> str:
    """Resolve the attention implementation for a model (default: split for core, dense for dense)."""
    allowed = CORE_IMPLS if spec.is_core else DENSE_IMPLS
    if impl is None:
        return allowed[0]
    if impl not in IMPLS:
        raise CoreplanError(f"unknown impl {impl!r}; choose one of {', '.join(IMPLS)}")
    if impl not in allowed:
        raise CoreplanError(f"impl {impl!r} does not apply to {spec.kind} model {spec.name!r}; "
                            f"choose one of {', '.join(allowed)}")
    return impl
