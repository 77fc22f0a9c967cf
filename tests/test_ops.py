"""Every op formula against values derived by hand (arithmetic written out here)."""

import pytest

import costmodel.ops  # noqa: F401
from costmodel.registry import REGISTRY, OpCost, op_cost, register_op


def ints(cost: OpCost) -> tuple:
    return tuple(int(getattr(cost, f)) for f in ("flop", "mac", "full", "bytes_read", "bytes_written"))


# op -> (shape kwargs, (flop, mac, full, bytes_read, bytes_written)) derived by hand
HAND = {
    "linear": (dict(tokens=10, in_features=4, out_features=3, bias=True, elem_bytes=2),
               # 10*4*3 = 120 MACs; bias adds 10*3 = 30; reads (10*4 + 4*3 + 3) * 2; writes 10*3*2
               (240, 120, 240 + 30, (40 + 12 + 3) * 2, 30 * 2)),
    "conv2d": (dict(batch=2, in_chans=3, out_chans=8, kernel=4, out_pixels=9, bias=True, elem_bytes=4),
               # 2 images * 9 pixels * 8 out * (3*4*4=48) = 6912 MACs; bias 2*9*8 = 144
               (13824, 6912, 13824 + 144, (2 * 9 * 48 + 8 * 48) * 4, 144 * 4)),
    "bmm": (dict(batch=3, m=5, k=7, n=2, elem_bytes=4),
            (2 * 210, 210, 420, 3 * (35 + 14) * 4, 3 * 10 * 4)),
    "softmax": (dict(numel=100, elem_bytes=2), (0, 0, 500, 200, 200)),
    "layer_norm": (dict(numel=100, affine=True, elem_bytes=4), (0, 500, 700, 400, 400)),
    "gelu": (dict(numel=10, elem_bytes=4), (0, 0, 80, 40, 40)),
    "silu": (dict(numel=10, elem_bytes=4), (0, 0, 40, 40, 40)),
    "mul": (dict(numel=10, elem_bytes=4), (0, 0, 10, 80, 40)),
    "add": (dict(numel=10, elem_bytes=2), (0, 0, 10, 40, 20)),
    "rope": (dict(numel=10, elem_bytes=4), (0, 0, 30, 40, 40)),
    "index_setup": (dict(numel=10, elem_bytes=1), (0, 0, 0, 0, 10)),
    # 10 table entries: angle, cos, sin (3 each); reads the angles, writes cos and sin
    "rope_table": (dict(numel=10, elem_bytes=4), (0, 0, 30, 40, 80)),
    "tanh": (dict(numel=10, elem_bytes=4), (0, 0, 40, 40, 40)),
    "interp_bicubic": (dict(out_numel=50, in_numel=20, elem_bytes=4), (0, 0, 32 * 50, 80, 200)),
    # B=2, H=3, Sq=4, Skv=5, d=8: qk 2*3*4*8*5 = 960 MACs, av 960 MACs; 120 scores
    # full: 2*1920 + (scale 1 + softmax 5) * 120; fused bytes: q 2*3*4*8*2 + kv 2*(2*3*5*8)*2, out = q
    "sdpa": (dict(batch=2, heads=3, q_len=4, kv_len=5, head_dim=8, elem_bytes=2),
             (3840, 1920, 3840 + 6 * 120, 384 + 960, 384)),
    # backward: 5 bmm of 960 MACs each = 4800 MACs; full adds (1 + 3) per score
    "sdpa_backward": (dict(batch=2, heads=3, q_len=4, kv_len=5, head_dim=8, elem_bytes=1),
                      (9600, 4800, 9600 + 4 * 120, None, None)),
    # S=200, C=64, block 128: core blocks ceil(64/128)=1, all blocks ceil(200/128)=2 -> 1*(2*2-1)=3 tiles
    # each tile: 2 bmm of 128*128*d MACs, B=1 H=2 d=4 -> 2*2*128*128*4 = 262144 MACs per tile
    "flex_attention": (dict(batch=1, heads=2, seq_len=200, core_len=64, head_dim=4, elem_bytes=2),
                       (3 * 2 * 262144, 3 * 262144,
                        3 * (2 * 262144 + (1 + 5 + 1) * 2 * 128 * 128), None, None)),
}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_op_has_a_hand_derived_value(name):
    assert name in HAND, f"op {name} needs a hand-derived test value"
    shape, expected = HAND[name]
    got = ints(op_cost(name, **shape))
    for field, want, have in zip(("flop", "mac", "full", "read", "written"), expected, got):
        if want is not None:
            assert have == want, f"{name}.{field}"


def test_masked_sdpa_adds_mask_work_and_bytes_only():
    plain = op_cost("sdpa", batch=1, heads=1, q_len=4, kv_len=4, head_dim=2, elem_bytes=4)
    masked = op_cost("sdpa", batch=1, heads=1, q_len=4, kv_len=4, head_dim=2, elem_bytes=4, masked=True)
    assert masked.flop == plain.flop and masked.mac == plain.mac
    assert masked.full - plain.full == 16  # one mask add per score
    assert masked.bytes_read - plain.bytes_read == 16 * 4


def test_flex_tiles_when_cores_fill_several_blocks():
    from costmodel.ops import flex_tiles
    # C=200 -> 2 core blocks; S=1000 -> 8 blocks: 2*(16-2) = 28 tiles
    assert int(flex_tiles(seq_len=1000, core_len=200)) == 28
    # exact tile multiple: C=128 -> 1, S=256 -> 2: 1*(4-1) = 3
    assert int(flex_tiles(seq_len=256, core_len=128)) == 3


def test_registry_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_op("linear", op_class="gemm")(lambda **_: None)
    with pytest.raises(ValueError, match="already belong"):
        register_op("my_new_op", op_class="gemm", aten_ops=("aten::bmm",))(lambda **_: None)
    assert "my_new_op" not in REGISTRY
