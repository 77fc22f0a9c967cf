"""Evaluate the graph: exact integer costs of one configuration, or symbolic totals."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

import sympy as sp

from costmodel.conventions import CONVENTIONS
from costmodel.errors import CoreplanError
from costmodel.graph import SCOPES, SYMBOLS, Dims, OpNode, build_graph, check_impl
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

    def dims(self) -> Dims:
        s = self.spec
        table = s.pos_embed_grid ** 2 if s.pos_embed == "learned" else 0
        interpolate = int(s.pos_embed == "learned" and self.grid != (s.pos_embed_grid,) * 2)
        return Dims(batch=self.batch, patch_tokens=self.patch_tokens, core_tokens=self.core_tokens,
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


def graph(config: Config) -> list[OpNode]:
    return build_graph(config.spec, config.dims(), config.impl)


def in_scope(nodes: list[OpNode], scope: str) -> list[tuple[OpNode, object]]:
    """(node, multiplicity) pairs of a scope: repeats count only at model scope."""
    check_choice("scope", scope, SCOPES)
    return [(n, n.repeat if scope == "model" else 1) for n in nodes if scope in n.scopes]


@dataclass(frozen=True)
class CostResult:
    total: int
    by_op: dict[str, int]


def count(config: Config, scope: str = "model", convention: str = "flop") -> CostResult:
    """Exact integer cost of one configuration, per slash path and in total."""
    check_choice("convention", convention, CONVENTIONS)
    by_op: dict[str, int] = {}
    for node, times in in_scope(graph(config), scope):
        value = int(times * node.cost().convention(convention))
        by_op[node.path] = by_op.get(node.path, 0) + value
    return CostResult(sum(by_op.values()), by_op)


def bytes_moved(config: Config, scope: str = "model") -> int:
    """Bytes read + written by every op of the scope (no reuse across ops)."""
    return int(sum(t * n.cost().bytes_moved for n, t in in_scope(graph(config), scope)))


def symbolic_dims(kind: str) -> Dims:
    """Symbols for a model kind: dense models have no cores, core models no extra tokens."""
    if kind == "core":
        return replace(SYMBOLS, extra_tokens=0, pos_table_rows=0, interpolate=0)
    return replace(SYMBOLS, core_tokens=0)


@lru_cache(maxsize=256)
def symbolic_total(spec: ModelSpec, scope: str, convention: str, impl: str,
                   quantity: str = "flops") -> sp.Expr:
    """The scope's total as a sympy expression in B, N, C, E, D, H, F, L, P, W, G, I."""
    check_choice("convention", convention, CONVENTIONS)
    nodes = build_graph(spec, symbolic_dims(spec.kind), impl)
    terms = in_scope(nodes, scope)
    if quantity == "bytes":
        return sp.expand(sum(t * n.cost().bytes_moved for n, t in terms))
    return sp.expand(sum(t * n.cost().convention(convention) for n, t in terms))


def substitutions(config: Config) -> dict:
    """Symbol -> value for one configuration (the inverse view of Config.dims())."""
    values = config.dims()
    return {getattr(SYMBOLS, f): getattr(values, f) for f in Dims.__dataclass_fields__
            if isinstance(getattr(SYMBOLS, f), sp.Symbol)}
