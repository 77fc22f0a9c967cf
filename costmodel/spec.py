"""ModelSpec: the one description of a model's shape, loaded from TOML (catalog or user file)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

from costmodel.errors import ArgumentError, CoreplanError, lookup

CATALOG_PATH = Path(__file__).with_name("catalog.toml")

KINDS = ("core", "dense")
MLP_KINDS = ("gelu", "swiglu")
POS_EMBEDS = ("learned", "rope")


@dataclass(frozen=True)
class ModelSpec:
    """A ViT encoder's shape. Dimensions are integers; structure is a handful of flags.

    Core models (kind="core") prepend `core_tokens` learned cores (a prefix of a bank of
    `max_cores`) and run core-periphery attention; dense models prepend `cls_tokens` +
    `register_tokens` extra tokens and run dense attention.

    `core_coord_head`: the cores' 2D coordinates are updated before every layer after the first
    by a Linear(D, 2) of that layer and a learned scalar gate (coords += gate * linear(cores)),
    then squashed by tanh. `distill_output_dim`: a Linear(D, distill_output_dim) applied after the
    final norm to every token (0, or equal to D: none).
    """

    name: str
    family: str
    kind: str
    patch_size: int
    embed_dim: int
    num_heads: int
    depth: int
    mlp: str
    mlp_hidden_dim: int
    pos_embed: str
    fused_qkv: bool
    qkv_bias: bool
    key_bias: bool
    layer_scale: bool
    cls_tokens: int = 0
    register_tokens: int = 0
    pos_embed_grid: int = 0
    max_cores: int = 0
    core_chunk: int = 0
    budget_weights: tuple[int, ...] = ()
    core_coord_head: bool = False
    distill_output_dim: int = 0
    in_chans: int = 3
    description: str = ""

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def extra_tokens(self) -> int:
        """Tokens besides patches and cores: cls + registers (0 for core models)."""
        return self.cls_tokens + self.register_tokens

    @property
    def is_core(self) -> bool:
        return self.kind == "core"

    @property
    def output_head(self) -> bool:
        """Whether the distillation output projection is a real layer (not an identity)."""
        return bool(self.distill_output_dim) and self.distill_output_dim != self.embed_dim

    @property
    def budgets(self) -> tuple[int, ...]:
        """Nested core budgets C = chunk, 2*chunk, ..., max_cores (empty for dense models)."""
        if not self.is_core:
            return ()
        return tuple(range(self.core_chunk, self.max_cores + 1, self.core_chunk))

    def round_resolution(self, pixels: int) -> int:
        """The side this model runs at for a requested side: the largest multiple of the patch size
        not above it. 256 px at patch 14 runs at 252; a side below one patch is an error."""
        if pixels < self.patch_size:
            raise ArgumentError("resolution", f"{pixels} px is below one {self.patch_size}-px patch "
                                f"of {self.name}")
        return pixels // self.patch_size * self.patch_size

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patch rows and columns of an image (sides already multiples of the patch size)."""
        return height // self.patch_size, width // self.patch_size

    @property
    def rope_start(self) -> int:
        """Index of the first token RoPE rotates: 0 for core models (cores carry coordinates),
        the extra tokens' count for dense RoPE models (cls and registers are not rotated)."""
        return 0 if self.is_core else self.extra_tokens

    @property
    def native_side(self) -> int | None:
        """The input side (px) the model's learned position table was stored for (224 for
        vit_base_patch16_224); None for RoPE models, which have no stored grid."""
        if self.pos_embed == "learned" and self.pos_embed_grid > 0:
            return self.pos_embed_grid * self.patch_size
        return None

    def rope_tokens(self, patch_tokens, core_tokens=0):
        """Tokens rotated by RoPE in each layer (0 with learned position embeddings)."""
        if self.pos_embed != "rope":
            return 0
        return core_tokens + patch_tokens + self.extra_tokens - self.rope_start

    def dims(self, *, batch, rows, cols, core_tokens=0, elem_bytes):
        """The Dims of this model at a patch grid of rows x cols (ints, or numpy arrays for many
        configurations at once)."""
        from costmodel.dims import Dims

        learned = self.pos_embed == "learned"
        native = self.pos_embed_grid
        # the learned table is resized whenever the grid is not the stored one
        interpolate = 1 - (rows == native) * (cols == native) if learned else 0
        return Dims(batch=batch, patch_tokens=rows * cols, core_tokens=core_tokens,
                    extra_tokens=self.extra_tokens, embed_dim=self.embed_dim,
                    num_heads=self.num_heads, mlp_hidden_dim=self.mlp_hidden_dim, depth=self.depth,
                    patch_size=self.patch_size, elem_bytes=elem_bytes,
                    pos_table_rows=native ** 2 if learned else 0, interpolate=interpolate)


_REQUIRED = ("family", "kind", "patch_size", "embed_dim", "num_heads", "depth", "mlp", "pos_embed",
             "fused_qkv", "qkv_bias", "key_bias", "layer_scale")
_INT_FIELDS = ("patch_size", "embed_dim", "num_heads", "depth", "mlp_hidden_dim", "cls_tokens",
               "register_tokens", "pos_embed_grid", "max_cores", "core_chunk", "in_chans",
               "distill_output_dim")
_BOOL_FIELDS = ("fused_qkv", "qkv_bias", "key_bias", "layer_scale", "core_coord_head")


def _check_types(name: str, table: dict) -> None:
    known = {f.name for f in fields(ModelSpec)} | {"mlp_ratio"}
    for key, value in table.items():
        if key not in known:
            raise CoreplanError(f"model {name!r}: unknown field {key!r}")
        if key in _INT_FIELDS and (not isinstance(value, int) or isinstance(value, bool)):
            raise CoreplanError(f"model {name!r}: field {key!r} must be an integer, got {value!r}")
        if key in _BOOL_FIELDS and not isinstance(value, bool):
            raise CoreplanError(f"model {name!r}: field {key!r} must be true or false, got {value!r}")


def _hidden_dim(name: str, table: dict) -> int:
    if "mlp_hidden_dim" in table:
        return table["mlp_hidden_dim"]
    ratio = table.get("mlp_ratio")
    if "mlp_ratio" not in table:
        raise CoreplanError(f"model {name!r}: missing field 'mlp_hidden_dim' (or 'mlp_ratio')")
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not (
            math.isfinite(ratio) and ratio > 0):
        raise CoreplanError(f"model {name!r}: field 'mlp_ratio' must be a positive number, "
                            f"got {ratio!r}")
    return int(table["embed_dim"] * ratio)


def spec_from_table(name: str, table: dict) -> ModelSpec:
    """Build and validate a ModelSpec from one TOML table; errors name the field."""
    if not isinstance(table, dict):
        raise CoreplanError(f"model {name!r}: expected a table of fields")
    for key in _REQUIRED:
        if key not in table:
            raise CoreplanError(f"model {name!r}: missing field {key!r}")
    _check_types(name, table)
    values = {k: v for k, v in table.items() if k != "mlp_ratio"}
    values["mlp_hidden_dim"] = _hidden_dim(name, table)
    values["budget_weights"] = tuple(table.get("budget_weights", ()))
    spec = ModelSpec(name=name, **values)
    _validate(spec)
    return spec


# Above these a model file's number is a typo or a unit slip, not a model: each is ~10x the
# largest published vision transformer's (ViT-22B: D 6,144, F 24,576, 48 heads, 48 layers).
LARGEST = {"patch_size": 1024, "embed_dim": 65_536, "num_heads": 1024, "depth": 1024,
           "mlp_hidden_dim": 262_144, "in_chans": 1024, "distill_output_dim": 262_144}


def too_wide(head_width: int) -> str | None:
    """Why an output head this wide is no model's (a model file's or --output-dim), or None."""
    if head_width <= LARGEST["distill_output_dim"]:
        return None
    return (f"{head_width:,} is above {LARGEST['distill_output_dim']:,}, wider than any vision "
            f"transformer's widest layer (ViT-22B's MLP: 24,576)")


def _validate(s: ModelSpec) -> None:
    def bad(field: str, why: str) -> CoreplanError:
        return CoreplanError(f"model {s.name!r}: field {field!r} {why}")

    for choice, allowed in (("kind", KINDS), ("mlp", MLP_KINDS), ("pos_embed", POS_EMBEDS)):
        if getattr(s, choice) not in allowed:
            raise bad(choice, f"must be one of {', '.join(allowed)}, got {getattr(s, choice)!r}")
    for f in ("patch_size", "embed_dim", "num_heads", "depth", "mlp_hidden_dim", "in_chans"):
        if getattr(s, f) <= 0:
            raise bad(f, "must be positive")
        if getattr(s, f) > LARGEST[f]:
            raise bad(f, f"is {getattr(s, f):,}, above {LARGEST[f]:,}: larger than any vision "
                         f"transformer (ViT-22B has D = 6,144, 48 heads, 48 layers)")
    if s.distill_output_dim < 0:
        raise bad("distill_output_dim", "must be 0 (no output head) or positive")
    if too_wide(s.distill_output_dim):
        raise bad("distill_output_dim", too_wide(s.distill_output_dim))
    if s.embed_dim % s.num_heads:
        raise bad("num_heads", f"must divide embed_dim {s.embed_dim}")
    if s.pos_embed == "rope" and s.head_dim % 4:
        raise bad("num_heads", "must leave a head dim divisible by 4 for 2D RoPE")
    if s.pos_embed == "learned" and not s.is_core and s.pos_embed_grid <= 0:
        raise bad("pos_embed_grid", "must be positive for learned position embeddings")
    if s.is_core:
        _validate_core(s, bad)
    elif s.max_cores or s.core_coord_head:
        raise bad("max_cores", "is only for core models (kind = \"core\")")


def _validate_core(s: ModelSpec, bad) -> None:
    if s.core_chunk <= 0 or s.max_cores <= 0 or s.max_cores % s.core_chunk:
        raise bad("max_cores", "must be a positive multiple of a positive core_chunk")
    if s.extra_tokens:
        raise bad("cls_tokens", "must be 0 for core models (the first core is the class token)")
    if s.pos_embed != "rope":
        raise bad("pos_embed", "must be 'rope' for core models (cores carry learned coordinates)")
    if s.budget_weights and len(s.budget_weights) != len(s.budgets):
        raise bad("budget_weights", f"needs one weight per budget ({len(s.budgets)})")
    if any(not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0
           for w in s.budget_weights):
        raise bad("budget_weights", "must be finite, non-negative numbers")
    if s.budget_weights and not sum(s.budget_weights) > 0:
        raise bad("budget_weights", "must give some budget a positive weight")


def load_models(path: str | Path) -> dict[str, ModelSpec]:
    """Load every `[models.NAME]` table of a TOML file."""
    from costmodel.tomlfile import load_tables

    _, models = load_tables(path, "model file", "models")
    return {name: spec_from_table(name, table) for name, table in models.items()}


@lru_cache(maxsize=1)
def catalog() -> dict[str, ModelSpec]:
    """The built-in catalog (costmodel/catalog.toml)."""
    return load_models(CATALOG_PATH)


def get_model(name: str, model_file: str | Path | None = None) -> ModelSpec:
    """Look a model up in a user file (first), the catalog, then among timm model names
    (`costmodel.timm_names`); unknown names list close matches."""
    models = dict(catalog())
    if model_file is not None:
        models.update(load_models(model_file))
    if name not in models:
        from costmodel.timm_names import timm_spec

        mapped = timm_spec(name)
        if mapped is not None:
            return mapped
    try:
        return lookup("model", name, models)
    except CoreplanError as err:
        raise CoreplanError(f"{err} (timm names are taken too: vit_*_patch*_SIZE, deit*, "
                            f"*_dinov2, *_dinov3)") from None
