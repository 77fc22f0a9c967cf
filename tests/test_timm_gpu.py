"""timm names and benchmark files, tile/wave quantization, the compiled runtime, cross-device fits."""

from pathlib import Path

import pytest

from costmodel.config import configure
from costmodel.cost import count
from costmodel.errors import CoreplanError
from costmodel.spec import get_model
from costmodel.timm_names import timm_spec
from costmodel.timm_results import read_timm
from planners.devices import get_device
from planners.gpu_shapes import TILE, quantized_matmul_flops, split_ways
from planners.roofline import config_rooflines, latency_s

TIMM = Path(__file__).resolve().parents[1] / "data/public/timm"
HEADER = "model,infer_img_size,infer_samples_per_sec,infer_step_time,infer_batch_size,param_count," \
         "infer_gmacs,infer_macts"


# --------------------------------------------------------------------------- names
def test_vit_base_patch16_224_is_timms_vit_b16():
    spec = get_model("vit_base_patch16_224")
    assert (spec.embed_dim, spec.num_heads, spec.depth, spec.mlp_hidden_dim, spec.patch_size) == \
        (768, 12, 12, 3072, 16)
    assert spec.cls_tokens == 1 and spec.register_tokens == 0 and spec.pos_embed_grid == 14
    N, S, D, F, L = 196, 197, 768, 3072, 12
    macs = N * D * 3 * 16 * 16 + L * (S * D * 3 * D + S * D * D + 2 * S * D * F + 2 * S * S * D)
    assert count(configure(spec, 224), "model", "flop").total == 2 * macs
    # timm's own published GMACs for this model (its benchmark files) say 17.58
    assert macs / 1e9 == pytest.approx(17.58, abs=0.02)


@pytest.mark.parametrize("name,expected", [
    ("deit_small_distilled_patch16_224", dict(cls_tokens=2, embed_dim=384)),
    ("deit3_large_patch16_384", dict(layer_scale=True, embed_dim=1024, pos_embed_grid=24)),
    ("vit_giant_patch14_reg4_dinov2", dict(mlp="swiglu", mlp_hidden_dim=4096, register_tokens=4)),
    ("vit_small_plus_patch16_dinov3", dict(mlp="swiglu", mlp_hidden_dim=1536, pos_embed="rope",
                                           qkv_bias=False)),
    ("vit_base_patch16_dinov3_qkvb", dict(qkv_bias=True, register_tokens=4, mlp="gelu")),
])
def test_timm_families_map_to_their_architecture(name, expected):
    spec = timm_spec(name)
    assert {k: getattr(spec, k) for k in expected} == expected


@pytest.mark.parametrize("name", ["resnet50", "vit_base_patch16_clip_224", "convnext_tiny",
                                  "vit_base_r50_s16_224"])
def test_other_families_are_not_mapped(name):
    assert timm_spec(name) is None


def test_every_mapped_model_matches_timms_published_gmacs():
    """An independent check of the mapping: timm's own GMACs per sample, every file."""
    checked = 0
    for path in sorted(TIMM.glob("benchmark-infer-*.csv")):
        results = read_timm(path)
        for r in results.records:
            gmacs = results.gmacs[r.model]
            spec = get_model(r.model)
            mine = count(configure(spec, r.resolution), "model", "flop").total / 2e9
            if "-pt210-" in path.name:
                # timm's counter of that release did not see fused attention (F.sdpa): its
                # GMACs lack the two attention matmuls, 2 S^2 D per layer, S tokens in all
                tokens = (r.resolution // spec.patch_size) ** 2 + spec.cls_tokens \
                    + spec.register_tokens
                mine -= spec.depth * 2 * tokens ** 2 * spec.embed_dim / 1e9
            assert mine == pytest.approx(gmacs, rel=0.02), (path.name, r.model)
            checked += 1
    assert checked > 500


# --------------------------------------------------------------------------- files
def test_a_timm_file_reads_by_column_name_and_lists_unmapped_models(tmp_path):
    path = tmp_path / "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv"
    # columns in another order, a samples-per-second-only row, a CNN and a CLIP model
    path.write_text("infer_batch_size,model,infer_img_size,infer_samples_per_sec,infer_step_time\n"
                    "256,vit_small_patch16_224,224,1000.0,\n"
                    "1024,resnet50,224,3000.0,341.3\n"
                    "1024,vit_base_patch16_clip_224,224,900.0,1137.8\n"
                    "1024,vit_base_patch16_224,224,1570.66,651.945\n")
    results = read_timm(path)
    assert results.file.device == "rtx-3090" and results.file.precision == "fp16"
    # "amp": autocast over fp32 weights
    assert results.file.runtime == "eager+amp" and results.file.torch_version == "2.4.0"
    assert results.unmapped == ("resnet50", "vit_base_patch16_clip_224")
    small, base = results.records
    assert small.batch == 256 and small.time_ms_median == pytest.approx(256.0)  # 256 / 1000 /s
    assert base.time_ms_median == 651.945 and base.runtime == "eager+amp" and base.line == 5


@pytest.mark.parametrize("name,body,message", [
    ("results.csv", HEADER + "\n", "not a timm benchmark file name"),
    ("benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv", "model,speed\nvit_base_patch16_224,1\n",
     ":1: not a timm benchmark CSV"),
    ("benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
     HEADER + "\nvit_base_patch16_224,224,1570.66,slow,1024,86.57,17.58,23.9\n",
     ":2: field infer_step_time"),
    ("benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
     HEADER + "\nvit_base_patch16_224,224,1570.66\n", ":2: wrong number of fields"),
])
def test_malformed_timm_files_are_one_clear_error(tmp_path, name, body, message):
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(CoreplanError, match=message.replace("(", r"\(")):
        read_timm(path)


def test_calibrating_a_timm_file_on_another_device_is_refused(cli):
    path = TIMM / "benchmark-infer-amp-nchw-pt291-cu130-5090.csv"
    code, _, err = cli("calibrate", "--measurements", str(path), "--device", "h100-sxm")
    assert code == 2 and "measured on rtx-5090, not on h100-sxm" in err


def test_calibrate_holds_out_by_family_on_timm_data():
    from planners.calibrate import calibrate

    path = TIMM / "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv"
    h = calibrate(path, get_device("rtx-3090")).holdout
    assert h.by == "family" and set(h.groups) == {"dinov2", "timm-deit", "timm-deit3", "timm-vit"}
    assert sum(n for n, _, _ in h.by_group().values()) == h.rows == 44


def test_one_fit_across_devices_holds_out_each_device():
    from planners.calibrate import calibrate

    files = [TIMM / "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
             TIMM / "benchmark-infer-amp-nchw-pt291-cu130-5090.csv"]
    cal = calibrate(files, None)
    assert cal.device is None and cal.devices == ("rtx-3090", "rtx-5090")
    assert cal.holdout.by == "device" and set(cal.holdout.groups) == {"rtx-3090", "rtx-5090"}


# --------------------------------------------------------------------------- tiles and waves
def test_gemm_tiles_round_up_to_whole_waves():
    assert TILE == 128
    shape = dict(tokens=300, in_features=768, out_features=768)
    # ceil(300/128) = 3 row tiles x 768/128 = 6 column tiles = 18 tiles; 4 SMs: 5 waves of 4
    assert quantized_matmul_flops("linear", shape, 4) == 5 * 4 * 2 * 128 * 128 * 768
    # 100 SMs: 18 tiles would leave 82 idle. Split, K = 768 is 6 blocks of 128, min(floor(100 /
    # 18), 6) = 5 ways: 90 pieces in one wave, ceil(6 / 5) = 2 blocks each: 100 x 2 x 128^2 x 256
    # = 838,860,800. With 64 x 64 tiles: ceil(300/64) = 5 x 12 = 60 tiles, split
    # min(floor(100/60), 12) = 1 way, one wave of full K: 100 x 2 x 64^2 x 768 = 629,145,600,
    # the less of the two
    assert quantized_matmul_flops("linear", shape, 100) == 100 * 2 * 64 * 64 * 768
    assert split_ways("linear", shape, 100) == 5 and split_ways("linear", shape, 4) == 1
    # the MLP's second GEMM of ViT-B at batch 1 on an A100 (108 SMs): M = 197, N = 768,
    # K = 3072: 2 x 6 = 12 tiles, split min(9, 24) = 9 ways, ceil(24 / 9) = 3 blocks each:
    # 108 x 2 x 128^2 x 384; 64 x 64: 4 x 12 = 48 tiles, split 2 ways of 24 blocks of 64:
    # 108 x 2 x 64^2 x 1536, the same; unsplit it was 108 x 2 x 128^2 x 3072 (8x)
    mlp = dict(tokens=197, in_features=3072, out_features=768)
    assert quantized_matmul_flops("linear", mlp, 108) == 108 * 2 * 128 * 128 * 384


def test_split_k_lets_time_follow_work_at_small_batch():
    """Unsplit, a GEMM with fewer tiles than SMs costs a whole wave of full-K tiles whatever its
    size; split, its time follows its work (MACs / SMs), to within one block."""
    small = quantized_matmul_flops("linear", dict(tokens=128, in_features=4096,
                                                  out_features=128), 132)
    large = quantized_matmul_flops("linear", dict(tokens=128, in_features=4096,
                                                  out_features=1024), 132)
    # 128 tiles: 1 tile split 32 ways, 32 of 132 SMs busy. 64 tiles: 2 x 2 = 4 tiles split
    # min(33, 64) = 33 ways, ceil(64 / 33) = 2 blocks of 64 each: 132 x 2 x 64^2 x 128
    assert small == 132 * 2 * 64 * 64 * 128
    # 128 tiles: 8 split 16 ways, 2 blocks each: 132 x 2 x 128^2 x 256; 64 tiles: 32 split 4
    # ways, 16 blocks of 64: 132 x 2 x 64^2 x 1024, the same
    assert large == 132 * 2 * 128 * 128 * 256
    # the work itself: 128 x 128 x 4096 and 128 x 1024 x 4096 multiply-adds over 132 SMs
    assert small / (2 * 128 * 128 * 4096) == pytest.approx(1.03, abs=0.01)
    assert large / (2 * 128 * 1024 * 4096) == pytest.approx(1.03, abs=0.01)


def test_attention_tiles_queries_per_head_and_keys_per_block():
    shape = dict(batch=2, heads=3, q_len=200, kv_len=70, head_dim=64)
    # 2 x 3 x ceil(200/128) = 12 query tiles, 3 waves of 4 SMs; keys round up to one 128 block
    assert quantized_matmul_flops("sdpa", shape, 4) == 3 * 4 * 4 * 128 * 128 * 64
    # few query tiles, many keys: 1 query tile over ceil(1000/128) = 8 key blocks on 4 SMs: the
    # keys split 4 ways, 2 blocks each, one wave (4 x 4 x 128 x 256 x 64); with 64 x 64 tiles 16
    # key blocks split 4 ways, 4 blocks of 64 each: 4 x 4 x 64 x 256 x 64, the less
    few = dict(batch=1, heads=1, q_len=64, kv_len=1000, head_dim=64)
    assert quantized_matmul_flops("sdpa", few, 4) == 4 * 4 * 64 * 256 * 64
    assert quantized_matmul_flops("layer_norm", dict(numel=10), 4) is None


def test_quantization_only_slows_a_gpu_down():
    import dataclasses

    c = configure(get_model("dinov3-small"), 256, batch=3, dtype="fp16")
    gpu = dataclasses.replace(get_device("rtx-3090"), host_launch_s=None)  # the GPU's own work
    plain = dataclasses.replace(gpu, sm_count=None)
    assert latency_s(config_rooflines(c, gpu), gpu) > latency_s(config_rooflines(c, plain), plain)


# --------------------------------------------------------------------------- compiled runtime
def test_compiled_fuses_each_run_of_elementwise_ops_into_one_launch():
    c = configure(get_model("veca-small"), 256, cores=8, batch=1, dtype="fp16")
    gpu = get_device("rtx-5090")
    eager, compiled = config_rooflines(c, gpu), config_rooflines(c, gpu, "compiled")
    L = 12
    # eager: patch conv 1; coordinate head, gate, update (L-1 each); tanh, RoPE tables (L each);
    # per layer norm1, q, k, v, rope_q, rope_k, 2 sdpa, out, residual, norm2, fc1, silu, gate,
    # fc2, residual = 16 ops, of which rope_q and rope_k run as 5 kernels each in eager PyTorch
    # (neg, cat, mul, mul, add): 16 + 2 * 4 = 24 launches; final norm 1; distillation head 1
    assert sum(o.launches for o in eager) == 1 + 3 * (L - 1) + 2 * L + 24 * L + 1 + 1 == 348
    # compiled: gate+update fuse (L-1); tanh + RoPE tables + norm1 fuse (L, adjacent and each
    # once a layer); per layer rope_q+rope_k, residual+norm2 and silu+gate fuse: 12 left a layer
    # besides norm1
    assert sum(o.launches for o in compiled) == 1 + 2 * (L - 1) + L + 12 * L + 1 + 1 == 181
    assert {o.path for o in compiled} >= {"layer/attn/rope_q+layer/attn/rope_k",
                                         "layer/mlp/silu+layer/mlp/gate"}
    assert latency_s(compiled, gpu) < latency_s(eager, gpu)
    # a fused chain moves the traffic of its largest member (the tensors in between stay on
    # chip), except that RoPE on q and on k are two tensors side by side: their traffic adds.
    # veca-small at 256 px, batch 1, fp16: S = 8 cores + 256 patches, D = 384; RoPE rotates
    # (8 + 256) x 384 = 101,376 elements of q (and of k), reading and writing them: 2 x 2 x 101,376
    # = 405,504 bytes each, 811,008 for the pair, per layer
    by_path = {o.path: o for o in compiled}
    assert by_path["layer/attn/rope_q+layer/attn/rope_k"].bytes == L * 811_008
    silu, gate = (next(o for o in config_rooflines(c, gpu) if o.path == p)
                  for p in ("layer/mlp/silu", "layer/mlp/gate"))
    assert by_path["layer/mlp/silu+layer/mlp/gate"].bytes == max(silu.bytes, gate.bytes)


def test_plan_takes_a_timm_name_and_a_runtime(cli):
    code, out, err = cli("plan", "vit_base_patch16_224", "--device", "rtx-5090", "--resolution",
                         "224", "--batch", "64", "--dtype", "fp16", "--runtime", "compiled",
                         "--format", "json")
    assert code == 0, err
    assert '"model": "vit_base_patch16_224"' in out
    code, _, err = cli("plan", "vit_base_patch16_224", "--device", "rtx-5090", "--resolution",
                       "224", "--runtime", "jit")
    assert code == 2 and "unknown runtime 'jit'" in err


def test_eager_rope_is_charged_its_five_kernels_where_no_profile_timed_it():
    # dinov3-small at 256 px, batch 2, fp16: 16x16 = 256 patch tokens rotate (not cls and the 4
    # registers), D = 384 -> q has 2 * 256 * 384 = 196,608 rotated elements per layer; the fused
    # op reads and writes them (2 * 2 bytes each); eager runs neg, cat, mul, mul, add: 10 units of
    # traffic instead of 2 and 5 launches instead of 1, in each of the 12 layers.
    import dataclasses

    c = configure(get_model("dinov3-small"), 256, batch=2, dtype="fp16")
    gpu = get_device("rtx-5090")
    eager = {o.path: o for o in config_rooflines(c, gpu)}["layer/attn/rope_q"]
    fused = 2 * 256 * 384 * (2 + 2) * 12
    assert eager.bytes == 5 * fused and eager.launches == 5 * 12
    expected = (5 * fused / gpu.memory_bandwidth_bytes_per_s / gpu.efficiency["elementwise"]
                + 5 * 12 * gpu.kernel_launch_overhead_s)
    assert eager.time_s(gpu) == pytest.approx(expected)
    compiled = {o.path: o for o in config_rooflines(c, gpu, "compiled")}
    assert compiled["layer/attn/rope_q+layer/attn/rope_k"].launches == 12  # one fused kernel
    # the CPU's profile timed our eager RoPE itself: its record keeps one launch per layer
    cpu = get_device("cpu-epyc-2core")
    profiled = {o.path: o for o in config_rooflines(dataclasses.replace(c, dtype="fp32"),
                                                      cpu)}["layer/attn/rope_q"]
    assert profiled.launches == 12 and profiled.profiled_s(cpu) is not None


def test_a_timm_name_defaults_to_its_native_resolution(cli):
    import json

    code, out, err = cli("flops", "vit_base_patch16_224", "--format", "json")
    assert code == 0, err
    # 224 px / 16 = 14 x 14 patches + CLS: timm's published 17.58 GMACs (see above)
    assert json.loads(out)["total"] / 2 / 1e9 == pytest.approx(17.58, abs=0.02)
    code, out, err = cli("simulate", "vit_large_patch14_dinov2", "--device", "rtx-3090",
                         "--format", "json")
    assert code == 0 and err == ""
    explicit = cli("simulate", "vit_large_patch14_dinov2", "--device", "rtx-3090",
                   "--resolution", "518", "--format", "json")[1]
    other = cli("simulate", "vit_large_patch14_dinov2", "--device", "rtx-3090",
                "--resolution", "224", "--format", "json")[1]
    native = json.loads(out)["latency_s"]
    assert native == json.loads(explicit)["latency_s"] != json.loads(other)["latency_s"]
    code, _, err = cli("simulate", "veca-base", "--device", "rtx-3090")
    assert code == 2 and err.count("\n") == 1 and "no native input size" in err


# --------------------------------------------------------------------------- unfused attention
def _vit_b16_ops(runtime: str, dtype: str = "fp16") -> dict:
    """vit_base_patch16_224 at batch 2 on the RTX 3090: its roofline records by path."""
    c = configure(get_model("vit_base_patch16_224"), 224, batch=2, dtype=dtype)
    return {o.path: o for o in config_rooflines(c, get_device("rtx-3090"), runtime)}


def test_unfused_attention_is_two_batched_gemms_a_scale_and_a_softmax_worked_by_hand():
    """As timm before 0.9 (`(q @ k.transpose(-2, -1)) * self.scale`) and Hugging Face's eager
    attention (`scores / math.sqrt(d)`) run it: the scale is a kernel of its own over the
    scores."""
    # vit_base_patch16_224, batch 2, fp16: B*H = 24 heads of S = 197 tokens, d = 64, 12 layers
    ops = _vit_b16_ops("unfused")
    assert "layer/attn/sdpa" not in ops
    qk, scale, soft, av = (ops[f"layer/attn/sdpa/{k}"] for k in ("qk", "scale", "softmax", "av"))
    # scores 24 x 197^2 = 931,416 per layer; each GEMM 2 x 931,416 x 64 = 119,221,248 FLOPs
    assert qk.flops == av.flops == 12 * 119_221_248
    assert qk.op_class == av.op_class == "gemm"
    assert soft.op_class == scale.op_class == "elementwise"
    # q k^T reads q and k (24 x 197 x 64 x 2 B each) and writes the scores (931,416 x 2 B)
    assert qk.bytes == 12 * 2 * (2 * 24 * 197 * 64 + 931_416) == 36_878_400
    # the scale reads the scores and writes them scaled (a Python float: nothing else read),
    # one multiply each; softmax reads the scores and writes the probabilities
    assert scale.bytes == soft.bytes == 12 * 2 * 2 * 931_416 == 44_707_968
    assert scale.flops == 12 * 931_416
    fused = _vit_b16_ops("eager")["layer/attn/sdpa"]
    assert qk.flops + scale.flops + soft.flops + av.flops == fused.flops
    assert qk.launches == scale.launches == soft.launches == av.launches == 12
    assert [p.removeprefix("layer/attn/sdpa/") for p in ops if p.startswith("layer/attn/sdpa/")] \
        == ["qk", "scale", "softmax", "av"]


def test_timm_files_before_torch_2_read_as_unfused(tmp_path):
    path = tmp_path / "benchmark-infer-amp-nchw-pt112-cu113-rtx3090.csv"
    path.write_text(HEADER + "\nvit_base_patch16_384,384,300.0,853.3,256,86.86,55.54,101.56\n")
    results = read_timm(path)
    assert results.file.runtime == "unfused+amp" and results.file.torch_version == "1.12"
    assert results.records[0].runtime == "unfused+amp"
    newer = tmp_path / "benchmark-infer-amp-nchw-pt210-cu121-rtx3090.csv"
    newer.write_text(path.read_text())
    assert read_timm(newer).file.runtime == "eager+amp"
    assert read_timm(newer).file.torch_version == "2.1.0"
    weights = tmp_path / "benchmark-infer-bf16-nchw-pt291-cu130-pro6000maxq-dynamo.csv"
    weights.write_text(path.read_text())
    assert read_timm(weights).file.runtime == "compiled"  # bf16 weights: no autocast
    c = configure(get_model("vit_base_patch16_384"), 384, batch=256, dtype="fp16")
    device = get_device("rtx-3090")
    assert latency_s(config_rooflines(c, device, "unfused"), device) > \
        latency_s(config_rooflines(c, device, "eager"), device)


def test_plan_takes_the_native_resolution_and_says_when_there_is_none(cli):
    import json

    code, out, err = cli("plan", "vit_base_patch14_dinov2", "--device", "rtx-4090", "--format",
                         "json")
    assert code == 0, err
    assert json.loads(out)["resolution"] == 518  # 37 x 37 patches of 14 px
    code, _, err = cli("plan", "veca-base", "--device", "l4")
    assert code == 2 and err.count("\n") == 1 and "has no native input size" in err


# --------------------------------------------------------------------------- autocast
def test_autocast_traffic_worked_by_hand():
    # vit_base_patch16_224, batch 2, fp16: S = 197 tokens, D = 768, 12 layers
    plain, amp = _vit_b16_ops("eager"), _vit_b16_ops("eager+amp")
    numel = 2 * 197 * 768  # 302,592 values of the residual stream
    # layer norm in fp32: reads and writes 4 B a value instead of 2
    assert amp["layer/norm1"].bytes == 2 * plain["layer/norm1"].bytes
    # its output cast to 16 bits before qkv: reads 4 B, writes 2 B a value, one kernel a layer
    assert amp["layer/norm1/cast"].bytes == 12 * 6 * numel
    assert amp["layer/norm1/cast"].launches == 12 and "final_norm/cast" not in amp
    # residual add: fp32 stream (4 B) + 16-bit branch (2 B) -> fp32 (4 B), against 2 + 2 -> 2
    assert amp["layer/mlp/residual"].bytes == 12 * 10 * numel
    # every fp32 weight and bias cast each forward: qkv 768 x 2304 + 2304, proj 768 x 768 + 768,
    # fc1 768 x 3072 + 3072, fc2 3072 x 768 + 768 = 7,084,800 a layer, x 12 = 85,017,600, and
    # the patch convolution 3 x 16 x 16 x 768 + 768 = 590,592: 85,608,192 values at 6 B,
    # one kernel per tensor (4 linears x 2 x 12 + 2)
    assert amp["weights/cast"].bytes == 6 * 85_608_192 and amp["weights/cast"].launches == 98
    compiled = _vit_b16_ops("compiled+amp")
    assert compiled["weights/cast"].launches == 1
    assert not [p for p in compiled if p.endswith("/cast") and p != "weights/cast"]
    # autocast to fp32 casts nothing
    assert _vit_b16_ops("eager+amp", "fp32") == _vit_b16_ops("eager", "fp32")
    device = get_device("rtx-3090")
    assert latency_s(tuple(amp.values()), device) > latency_s(tuple(plain.values()), device)


def test_unfused_softmax_under_autocast_writes_fp32_worked_by_hand():
    """torch's autocast runs softmax with dtype=float32 (its fp32_set_opt_dtype policy): it reads
    the 16-bit scores of q k^T as they are and writes fp32 probabilities (2 + 4 B), which are
    cast down before probs v (4 + 2 B): 12 B per score where 16-bit softmax moves 4, in two
    kernels."""
    plain, amp = _vit_b16_ops("unfused"), _vit_b16_ops("unfused+amp")
    scores = 2 * 12 * 197 * 197  # batch 2 x 12 heads x 197^2, per layer
    assert plain["layer/attn/sdpa/softmax"].bytes == 12 * 4 * scores
    assert amp["layer/attn/sdpa/softmax"].bytes == 12 * 6 * scores
    assert amp["layer/attn/sdpa/softmax/cast_out"].bytes == 12 * 6 * scores
    assert [p.removeprefix("layer/attn/sdpa/") for p in amp if p.startswith("layer/attn/sdpa/")] \
        == ["qk", "scale", "softmax", "softmax/cast_out", "av"]
    # the scale runs in the scores' 16 bits (autocast leaves mul to its inputs' type)
    assert amp["layer/attn/sdpa/scale"].bytes == plain["layer/attn/sdpa/scale"].bytes
    assert amp["layer/attn/sdpa/softmax/cast_out"].launches == 12
    assert amp["layer/attn/sdpa/qk"].bytes == plain["layer/attn/sdpa/qk"].bytes
    # fused attention under autocast has no softmax of its own: nothing changes there
    assert "layer/attn/sdpa/softmax" not in _vit_b16_ops("eager+amp")


def test_autocast_rope_writes_fp32_and_casts_back():
    c = configure(get_model("vit_small_patch16_dinov3"), 256, batch=2, dtype="bf16")
    device = get_device("rtx-5090")
    plain = {o.path: o for o in config_rooflines(c, device, "eager")}["layer/attn/rope_q"]
    amp = {o.path: o for o in config_rooflines(c, device, "eager+amp")}["layer/attn/rope_q"]
    # 10 units in 5 kernels without autocast; 18 units in 6 kernels with fp32 tables
    assert amp.bytes == pytest.approx(plain.bytes * 18 / 10)
    assert amp.launches == plain.launches * 6 / 5
