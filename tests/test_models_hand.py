"""Whole models against totals derived by hand (each term written out), in each convention."""

from costmodel.config import configure
from costmodel.cost import count
from costmodel.spec import get_model


def totals(name, res, **kw):
    c = configure(get_model(name), res, **kw)
    return {k: count(c, "model", k).total for k in ("flop", "mac", "full")}


def test_veca_small_256px_8_cores():
    N, C, D, F, L, H, P = 256, 8, 384, 1024, 12, 6, 16
    S = C + N
    per_layer = (4 * 2 * S * D * D          # q, k, v, out projections
                 + 2 * S * D * 2 * F        # fc1 D -> 2F
                 + 2 * S * F * D            # fc2 F -> D
                 + 4 * D * (2 * N * C + C * C))  # cores over all + patches over cores
    patch = 2 * N * D * 3 * P * P
    head = 2 * C * D * 2 * (L - 1)          # core-coordinate heads before layers 1..L-1
    out = 2 * S * D * 768                   # distillation head Linear(D, 768) on every token
    flop = patch + L * per_layer + head + out
    norms = (2 * L + 1) * S * D             # two norms per layer + final norm
    t = totals("veca-small", 256, cores=8)
    assert t["flop"] == flop == 11_439_181_824 + 155_713_536
    assert t["mac"] == flop // 2 + 5 * norms
    full_extra = (N * D                                          # patch-embed bias
                  + L * (2 * 7 * S * D                          # norms (affine)
                         + 4 * S * D                            # q, k, v, out biases
                         + 2 * 3 * S * D                        # RoPE on q and k
                         + 6 * H * (C * S + N * C)              # scale + softmax per score
                         + 2 * S * D                            # residuals
                         + S * 2 * F + 4 * S * F + S * F        # fc1 bias, silu, gate
                         + S * D)                               # fc2 bias
                  + 2 * C * (L - 1)                             # coordinate heads' bias
                  + 7 * S * D                                   # final norm
                  + S * 768                                     # distillation head bias
                  + L * 3 * S * (D // H)                        # RoPE tables every layer
                  + L * 4 * 2 * C                               # tanh of the core coordinates
                  + (L - 1) * 2 * 2 * C)                        # gate multiply and update add
    assert t["full"] == flop + full_extra


def test_dinov2_small_224px_interpolates_positions():
    N, E, D, F, L, H, P = 256, 1, 384, 1536, 12, 6, 14
    S = N + E
    per_layer = 2 * S * D * 3 * D + 2 * S * D * D + 2 * S * D * F + 2 * S * F * D + 4 * D * S * S
    flop = 2 * N * D * 3 * P * P + L * per_layer
    t = totals("dinov2-small", 224, batch=1)
    assert t["flop"] == flop
    assert t["mac"] == flop // 2 + 5 * (2 * L + 1) * S * D
    full_extra = (N * D + 32 * N * D + (N + 1) * D               # bias, bicubic resize, position add
                  + L * (2 * 7 * S * D + 3 * S * D + S * D      # norms, qkv + out biases
                         + 6 * H * S * S                        # scale + softmax
                         + 2 * S * D + 2 * S * D                # LayerScale x2, residual x2
                         + S * F + 8 * S * F + S * D)           # fc1 bias, gelu, fc2 bias
                  + 7 * S * D)
    assert t["full"] == flop + full_extra


def test_dinov2_small_at_its_native_grid_skips_interpolation():
    # 518 px / 14 = 37 = the stored grid: no resize
    with_resize = count(configure(get_model("dinov2-small"), 504), "model", "full").by_op
    native = count(configure(get_model("dinov2-small"), 518), "model", "full").by_op
    assert with_resize["pos_embed/interp"] == 32 * 36 * 36 * 384
    assert native["pos_embed/interp"] == 0


def test_dinov3_base_batch_4():
    B, N, E, D, F, L, P = 4, 1024, 5, 768, 3072, 12, 16
    S = N + E
    per_layer = 2 * S * D * 3 * D + 2 * S * D * D + 4 * S * D * F + 4 * D * S * S
    flop = B * (2 * N * D * 3 * P * P + L * per_layer)
    t = totals("dinov3-base", 512, batch=4)
    assert t["flop"] == flop
    assert t["mac"] == flop // 2 + B * 5 * (2 * L + 1) * S * D


def test_dinov2_giant_swiglu():
    N, E, D, F, L, P = 73 * 73, 1, 1536, 4096, 40, 14
    S = N + E
    per_layer = 2 * S * D * 3 * D + 2 * S * D * D + 2 * S * D * 2 * F + 2 * S * F * D + 4 * D * S * S
    t = totals("dinov2-giant", 1022)
    assert t["flop"] == 2 * N * D * 3 * P * P + L * per_layer


def test_veca_large_masked_computes_all_scores():
    N, C, D, L = 1024, 64, 1024, 24
    S = N + C
    split = totals("veca-large", 512, cores=64, impl="split")["flop"]
    masked = totals("veca-large", 512, cores=64, impl="masked")["flop"]
    assert masked - split == L * 4 * D * (S * S - (2 * N * C + C * C))
    assert count(configure(get_model("veca-large"), 512, cores=64), "attention-core").total == \
        4 * D * (2 * N * C + C * C)


def test_scopes_nest():
    c = configure(get_model("veca-base"), 512, cores=32, batch=2)
    model, layer = count(c, "model").total, count(c, "layer").total
    attention, core = count(c, "attention").total, count(c, "attention-core").total
    D, S = 768, 32 + 1024
    assert attention == core + 2 * 2 * S * D * D * 4       # 4 projections, B=2
    assert layer > attention > core > 0 and model > 12 * layer


def test_dinov3_base_full_convention():
    B, N, E, D, F, L, H = 4, 1024, 5, 768, 3072, 12, 12
    S = N + E
    flop = totals("dinov3-base", 512, batch=4)
    extra = B * (N * D                                   # patch-embed bias
                 + L * (2 * 7 * S * D                    # norms
                        + 3 * S * D + S * D              # qkv bias (key third masked to 0) + out bias
                        + 2 * 3 * N * D                  # RoPE on patch tokens of q and k
                        + 6 * H * S * S                  # scale + softmax
                        + 2 * S * D + 2 * S * D          # LayerScale x2, residual x2
                        + S * F + 8 * S * F + S * D)     # fc1 bias, gelu, fc2 bias
                 + 7 * S * D                             # final norm
                 + 3 * N * (D // H))                     # RoPE tables, once per forward
    assert flop["full"] == flop["flop"] + extra


def test_training_flops_and_expected_step():
    from costmodel.training import expected_training_flops, training_flops
    c = configure(get_model("veca-small"), 64, cores=8, batch=2)
    # by hand for this config (see tests/test_reference.py for the counter check):
    # conv K = 2*2*16*384*768, attention A = 4*2*384*(2*16*8 + 64)*12, rest G = forward - K - A
    K, A = 2 * 2 * 16 * 384 * 768, 4 * 2 * 384 * (2 * 16 * 8 + 64) * 12
    forward = count(c, "model", "flop").total
    G = forward - K - A
    # (6_195_142_656 and 6_189_244_416 before the distillation head: + 3 x 2*2*24*384*768)
    assert training_flops(c)["total"] == 3 * G + 2 * K + 7 * A // 2 == 6_280_077_312
    assert training_flops(c, "math")["total"] == 3 * G + 2 * K + 3 * A == 6_274_179_072
    steps = [training_flops(configure(get_model("veca-small"), 64, cores=k, batch=2))["total"]
             for k in range(8, 65, 8)]
    weights = [1, 1, 2, 2, 3, 3, 4, 4]
    assert expected_training_flops(c) == sum(w * s for w, s in zip(weights, steps)) / 20
