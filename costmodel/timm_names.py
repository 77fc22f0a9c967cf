"""ModelSpecs for timm model names, so public timm benchmarks and `coreplan plan vit_base_patch16_224`
speak the same language as the catalog.

Mapped families (each architecture as timm builds it):
- plain ViT `vit_{size}_patch{8,14,16,32}_{img}`: cls token, learned position table over cls +
  patches at img/patch (no resize at the native size), fused qkv with bias, GELU MLP, no LayerScale;
- `deit_{size}_patch16_{img}` (as plain ViT) and `deit_{size}_distilled_patch16_{img}` (cls +
  distillation token); `deit3_{size}_patch{14,16}_{img}` (LayerScale);
- `vit_{size}_patch14_dinov2` and `..._reg4_dinov2` (518 px, LayerScale, 4 registers; giant has a
  SwiGLU MLP of hidden 4096);
- `vit_{size}_patch16_dinov3` and `..._qkvb` (RoPE on patches, 4 registers, LayerScale; the qkvb
  variants carry q/k/v biases; small_plus and huge_plus use a SwiGLU MLP of hidden 4D (ratio 6 x 2/3),
  7b one of hidden 2D, as timm's published GMACs confirm).
NB: deit3 adds its position table to patches only (no cls row); the graph adds one row more, a
difference of D additions in the `full` convention and none in `flop`.
Anything else (CLIP, SigLIP, hybrids, CNNs) is not mapped: `timm_spec` returns None.
"""

from __future__ import annotations

import re
from functools import lru_cache

from costmodel.spec import ModelSpec, spec_from_table

# size -> (embed_dim, heads, depth, mlp hidden for GELU)
SIZES = {
    "tiny": (192, 3, 12, 768), "small": (384, 6, 12, 1536), "medium": (512, 8, 12, 2048),
    "base": (768, 12, 12, 3072), "large": (1024, 16, 24, 4096), "huge": (1280, 16, 32, 5120),
    "giant": (1408, 16, 40, 6144), "gigantic": (1664, 16, 48, 8192),
}
DINOV2 = {"small": (384, 6, 12), "base": (768, 12, 12), "large": (1024, 16, 24),
          "giant": (1536, 24, 40)}
# size -> (embed_dim, heads, depth, mlp kind, hidden)
DINOV3 = {"small": (384, 6, 12, "gelu", 1536), "small_plus": (384, 6, 12, "swiglu", 1536),
          "base": (768, 12, 12, "gelu", 3072), "large": (1024, 16, 24, "gelu", 4096),
          "huge_plus": (1280, 20, 32, "swiglu", 5120), "7b": (4096, 32, 40, "swiglu", 8192)}

_SIZE = "|".join(sorted(SIZES, key=len, reverse=True))
PLAIN = re.compile(rf"^vit_({_SIZE})_patch(8|14|16|32)_(\d+)$")
DEIT = re.compile(r"^deit_(tiny|small|base)(_distilled)?_patch16_(\d+)$")
DEIT3 = re.compile(rf"^deit3_({_SIZE})_patch(14|16)_(\d+)$")
DINO2 = re.compile(r"^vit_(small|base|large|giant)_patch14(_reg4)?_dinov2$")
DINO3 = re.compile(r"^vit_(small_plus|small|base|large|huge_plus|7b)_patch16_dinov3(_qkvb)?$")


def _dense(name: str, family: str, **fields) -> ModelSpec:
    table = dict(family=family, kind="dense", fused_qkv=True, qkv_bias=True, key_bias=True,
                 layer_scale=False, mlp="gelu", pos_embed="learned", cls_tokens=1,
                 register_tokens=0, description=f"timm {name}")
    table.update(fields)
    return spec_from_table(name, table)


def _plain(name, size, patch, img, family="timm-vit", cls_tokens=1, layer_scale=False):
    if img % patch or img > MAX_NAMED_SIDE:  # not a timm name (`vit_base_patch16_2244`)
        return None
    dim, heads, depth, hidden = SIZES[size]
    return _dense(name, family, patch_size=patch, embed_dim=dim, num_heads=heads, depth=depth,
                  mlp_hidden_dim=hidden, pos_embed_grid=img // patch, cls_tokens=cls_tokens,
                  layer_scale=layer_scale)


# the largest input side a timm model name carries (its pretrained size); more is a typo
MAX_NAMED_SIDE = 1024


def timm_spec(name: str) -> ModelSpec | None:
    """The ModelSpec of a timm model name, or None if its family is not mapped. A pretrained
    tag after a dot (`vit_small_patch14_dinov2.lvd142m`) names weights, not an architecture: it
    is read and dropped. A plain ViT's input side must be a whole number of patches (at most
    MAX_NAMED_SIDE px), as in every timm name."""
    return _timm_spec(name.split(".", 1)[0])


@lru_cache(maxsize=512)
def _timm_spec(name: str) -> ModelSpec | None:
    if m := PLAIN.match(name):
        return _plain(name, m[1], int(m[2]), int(m[3]))
    if m := DEIT.match(name):
        return _plain(name, m[1], 16, int(m[3]), "timm-deit", cls_tokens=2 if m[2] else 1)
    if m := DEIT3.match(name):
        return _plain(name, m[1], int(m[2]), int(m[3]), "timm-deit3", layer_scale=True)
    if m := DINO2.match(name):
        dim, heads, depth = DINOV2[m[1]]
        mlp = dict(mlp="swiglu", mlp_hidden_dim=4096) if m[1] == "giant" else dict(
            mlp_hidden_dim=4 * dim)
        return _dense(name, "dinov2", patch_size=14, embed_dim=dim, num_heads=heads, depth=depth,
                      pos_embed_grid=37, register_tokens=4 if m[2] else 0, layer_scale=True, **mlp)
    if m := DINO3.match(name):
        dim, heads, depth, mlp, hidden = DINOV3[m[1]]
        bias = bool(m[2])
        return _dense(name, "dinov3", patch_size=16, embed_dim=dim, num_heads=heads, depth=depth,
                      mlp=mlp, mlp_hidden_dim=hidden, pos_embed="rope", register_tokens=4,
                      layer_scale=True, qkv_bias=bias, key_bias=bias)
    return None

