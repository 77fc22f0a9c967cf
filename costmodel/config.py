"""One configuration of one model (sympy-free: the planner's fast path imports only this)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from costmodel.attention import attention_impl, impls
from costmodel.dims import Dims
from costmodel.errors import ArgumentError, CoreplanError, check_choice
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
            raise ArgumentError("resolution", f"{text!r}: expected R or HxW, e.g. 512 or 768x1024")
        h = int(match.group(1))
        w = int(match.group(2)) if match.group(2) else h
    if h <= 0 or w <= 0:
        raise ArgumentError("resolution", f"{h}x{w}: must be positive")
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
        return self.spec.grid(self.height, self.width)

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

    def dims(self) -> Dims:
        """Integer values of every graph dimension."""
        rows, cols = self.grid
        return self.spec.dims(batch=self.batch, rows=rows, cols=cols, core_tokens=self.core_tokens,
                              elem_bytes=self.elem_bytes)


def check_side(spec: ModelSpec, side: int) -> int:
    """A square input side that is a whole number of the model's patches (every command's one
    rule: computed at the side asked, or refused naming the nearest side below)."""
    if side % spec.patch_size:
        raise ArgumentError("resolution", f"{side}x{side} is not a multiple of {spec.name}'s "
                            f"patch size {spec.patch_size} (try {spec.round_resolution(side)})")
    return side


def configure(spec: ModelSpec, resolution, *, cores: int | None = None, batch: int = 1,
              impl: str | None = None, dtype: str = "fp32") -> Config:
    """Validate user input and build a Config; every error is one clear line."""
    height, width = parse_resolution(resolution)
    p = spec.patch_size
    if height % p or width % p:
        raise ArgumentError("resolution", f"{height}x{width} is not a multiple of {spec.name}'s "
                            f"patch size {p} (try {spec.round_resolution(height)})")
    if batch <= 0:
        raise ArgumentError("batch", f"must be positive, got {batch}")
    check_choice("dtype", dtype, DTYPE_BYTES)
    return Config(spec, height, width, check_cores(spec, cores), batch, check_impl(spec, impl),
                  dtype)


# Where the latency model stops: a layer's attention scores (B x H x N^2) beyond 2^62 cannot be
# evaluated in 64-bit arithmetic (the exact FLOP count, in Python integers, still can), and are
# ~10^6 times more than the largest accelerator holds.
SCORES_LIMIT = 2 ** 62


def check_countable(config: Config) -> Config:
    """`config` if the latency model can evaluate it, else one clear error (SCORES_LIMIT)."""
    s = config.spec
    scores = config.batch * s.num_heads * config.seq_len ** 2
    mlp = 2 * config.batch * config.seq_len * s.embed_dim * s.mlp_hidden_dim  # one MLP GEMM
    if scores >= SCORES_LIMIT or mlp >= SCORES_LIMIT:
        what = (f"{scores:.3g} attention scores a layer" if scores >= SCORES_LIMIT else
                f"{mlp:.3g} FLOPs in one MLP matrix product")
        raise ArgumentError("batch", f"{config.batch:,} at {config.height}x{config.width} px "
                            f"makes {what}, beyond what any device holds or the latency model "
                            f"evaluates (under {SCORES_LIMIT:.3g}); `coreplan flops` still "
                            f"counts it")
    return config

# Beyond this a batch is answered with a warning that it is taken literally (the CLI warns of
# sides above 16,384 px as it reads --resolution).
PLAUSIBLE_BATCH = 65_536


def implausible(config: Config) -> str | None:
    """One line where a configuration's batch is finite but far beyond any deployment (above
    PLAUSIBLE_BATCH), else None: the numbers are still given."""
    if config.batch <= PLAUSIBLE_BATCH:
        return None
    return (f"batch {config.batch:,} is far beyond any deployment (up to {PLAUSIBLE_BATCH:,} is "
            f"plausible): taken literally")


def check_cores(spec: ModelSpec, cores: int | None) -> int:
    if not spec.is_core:
        if cores is not None:
            raise ArgumentError("cores", f"applies to core models only; {spec.name} is dense")
        return 0
    if cores is None:
        return spec.max_cores
    if cores <= 0:
        raise ArgumentError("cores", f"must be positive, got {cores}")
    if cores > spec.max_cores or cores % spec.core_chunk:
        raise ArgumentError("cores", f"{cores} invalid for {spec.name}: must be a multiple of "
                            f"{spec.core_chunk} up to {spec.max_cores}")
    return cores


def check_impl(spec: ModelSpec, impl: str | None) -> str:
    """Resolve the attention implementation for a model (default: the first registered for its
    kind: split for core models, dense for dense ones; costmodel/attention.py)."""
    allowed = impls(spec.kind)
    if impl is None:
        return allowed[0]
    attention_impl(impl)  # an unknown name: one error listing every implementation
    if impl not in allowed:
        raise CoreplanError(f"impl {impl!r} does not apply to {spec.kind} model {spec.name!r}; "
                            f"choose one of {', '.join(allowed)}")
    return impl
