"""Latency and memory terms derived by hand: each test fails on one specific plausible bug.

- elementwise ops timed at the dtype's matrix peak instead of the fp32 vector peak;
- training memory without the optimizer states;
- `simulate` drifting from the planner's vectorised latency;
- a memory budget read in GiB instead of GB;
- a broadcast operand (LayerScale's gamma, the position table) read as if it were full-sized.
"""

import dataclasses
import json

import pytest

from costmodel.config import configure
from costmodel.memory import memory
from costmodel.spec import get_model
from planners.devices import OP_CLASSES, get_device
from planners.planner import Budgets, evaluate_configs, plan
from planners.roofline import simulate

# veca-small at 64 px, C=8, B=2: N = 4*4 = 16 patches, S = 24 tokens, D = 384, F = 1024
# (int(384 * 2.66667)), H = 6 heads of d = 64, L = 12 layers.
B, N, C, D, F, H, d, L = 2, 16, 8, 384, 1024, 6, 64, 12
S = C + N


def _toy_device(**peaks):
    """A device whose fp32 vector unit is slow and whose memory is nearly free: every op is
    compute-bound, so its time is its FLOPs over the peak that applies to it."""
    base = get_device("h100-sxm")
    return dataclasses.replace(base, name="toy", peak_flops_per_s=peaks, sm_count=None,
                               board_power_w=None,
                               memory_bandwidth_bytes_per_s=1e18,
                               efficiency={k: 1.0 for k in OP_CLASSES}, kernel_launch_overhead_s=0.0)


def test_elementwise_ops_run_at_the_fp32_vector_peak_and_matmuls_at_the_dtype_peak():
    device = _toy_device(fp32=1e9, bf16=1e15)
    c = configure(get_model("veca-small"), 64, cores=C, batch=B, dtype="bf16")
    ops = {o.path: o for o in simulate(c, device).ops}
    # SiLU: 4 FLOPs per element (full convention) on B*S*F elements, in each of L layers
    silu_flops = 4 * B * S * F * L
    assert ops["layer/mlp/silu"].time_s == pytest.approx(silu_flops / 1e9, rel=1e-6)
    # fc2: 2 per multiply-add over (B*S, F) @ (F, D) plus one bias add per output, L layers
    fc2_flops = (2 * B * S * F * D + B * S * D) * L
    assert ops["layer/mlp/fc2"].time_s == pytest.approx(fc2_flops / 1e15, rel=1e-6)


def test_simulate_and_the_planners_vectorised_latency_are_one_number():
    for name, res, cores, batch, dtype, dev in (("veca-base", 512, 32, 8, "bf16", "h100-sxm"),
                                                ("dinov2-small", 224, None, 4, "fp16", "t4"),
                                                ("dinov3-base", 768, None, 1, "fp32", "cpu-epyc-2core"),
                                                ("veca-large", 1024, 64, 2, "bf16", "l4")):
        device = get_device(dev)
        c = configure(get_model(name), res, cores=cores, batch=batch, dtype=dtype)
        sim = simulate(c, device)
        planned = evaluate_configs([c], device, Budgets())[0]
        assert sum(op.time_s for op in sim.ops) == pytest.approx(sim.device_s, rel=1e-12)
        assert sim.latency_s == max(sim.device_s, sim.host_s)  # the host's issuing, on a GPU
        assert planned.latency_ms == pytest.approx(sim.latency_s * 1e3, rel=1e-9)
        # and the per-op formula, written out: reference / efficiency + launches * overhead, where
        # the reference is the roofline unless the device's profile measured the op
        for op in sim.ops:
            if device.profile is None:
                assert op.reference_s == op.roofline_s and op.source == "roofline"
            want = (op.reference_s / device.efficiency[op.op_class]
                    + op.launches * device.kernel_launch_overhead_s)
            assert op.time_s == pytest.approx(want, rel=1e-12)


def test_memory_budget_is_in_decimal_gigabytes():
    spec, device = get_model("veca-base"), get_device("h100-sxm")
    free = plan(spec, device, resolution=512, batch=8, cores_allowed=[64]).candidates[0]
    m = free.memory_bytes  # bytes; a budget of m / 1e9 GB is exactly enough
    just_enough = plan(spec, device, resolution=512, batch=8, cores_allowed=[64],
                       budgets=Budgets(memory_gb=m / 1e9 * (1 + 1e-9))).candidates[0]
    assert just_enough.feasible and just_enough.usage["memory"] == pytest.approx(1.0, rel=1e-8)
    short = plan(spec, device, resolution=512, batch=8, cores_allowed=[64],
                 budgets=Budgets(memory_gb=m / 1e9 * 0.99)).candidates[0]
    # read as GiB the budget would be 7.4% larger and this candidate would fit
    assert not short.feasible and short.tightest == "memory"
    assert short.usage["memory"] == pytest.approx(1 / 0.99, rel=1e-9)


# --------------------------------------------------------------------------- training memory
WEIGHTS = 4 * (3 * 16 * 16 * D + D         # patch embedding conv (+ bias)
               + 64 * D + 64 * 2           # the bank of 64 cores and their (y, x) coordinates
               + (L - 1) * (2 * D + 2 + 1)  # per layer after the first: Linear(D, 2) and a gate
               + D * 768 + 768             # distillation head Linear(D, 768)
               + L * (4 * D                # two affine LayerNorms
                      + 4 * (D * D + D)    # q, k, v, out with biases
                      + D * 2 * F + 2 * F  # fc1 D -> 2F
                      + F * D + D)         # fc2 F -> D
               + 2 * D)                    # final norm
X = B * S * D * 4                          # one residual-stream tensor, fp32
FX = B * S * F * 4                         # one MLP-hidden tensor
TABLES = 2 * B * S * d * 4                 # RoPE cos and sin over all S tokens (cores included)
SAVED_PER_LAYER = (2 * X + 2 * 2 * 4 * B * S     # two norms' inputs + their fp32 mean and rstd
                   + X + X                       # inputs of the q/k/v and the MLP projections
                   + 4 * X + 3 * TABLES // 2     # RoPE on learned positions saves its inputs
                   + 3 * X                       # q, k, v
                   + 2 * X + 4 * B * H * S       # two SDPA outputs (split) + fp32 logsumexp
                   + 4 * FX                      # SwiGLU: fc1 output (2F), silu, product
                   + B * C * D * 4)              # input of the core-coordinate head
TRANSIENT = 3 * X + TABLES + 4 * FX              # one MLP's forward temporaries at the peak
HEAD_INPUT = X                                   # the distillation head keeps its input


def test_training_memory_by_hand():
    assert WEIGHTS == 87_698_564  # the reference model's parameter bytes (validate records them)
    c = configure(get_model("veca-small"), 64, cores=C, batch=B, dtype="fp32")
    m = memory(c, "training")
    assert m.weights_bytes == WEIGHTS
    assert m.terms["gradients"] == WEIGHTS and m.terms["optimizer"] == 2 * WEIGHTS  # AdamW
    assert m.terms["saved_activations"] == L * SAVED_PER_LAYER + HEAD_INPUT
    assert m.activation_peak_bytes == L * SAVED_PER_LAYER + HEAD_INPUT + TRANSIENT
    assert m.total_bytes == 4 * WEIGHTS + L * SAVED_PER_LAYER + HEAD_INPUT + TRANSIENT \
        == 373_599_248


def test_training_memory_from_the_cli(cli):
    code, out, err = cli("memory", "veca-small", "--resolution", "64", "--cores", "8", "--batch",
                         "2", "--mode", "training", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["mode"] == "training"
    assert doc["total_bytes"] == 4 * WEIGHTS + L * SAVED_PER_LAYER + HEAD_INPUT + TRANSIENT
    assert doc["terms"]["optimizer"] == 2 * WEIGHTS


def test_a_broadcast_operand_is_read_once_not_per_element():
    from costmodel.cost import config_cost

    # deit3_small_patch16_224, batch 4, fp16: S = 197 tokens (196 patches + CLS), D = 384,
    # 12 layers. LayerScale x * gamma reads x (4 x 197 x 384 = 302,592 elements) and gamma (384),
    # and writes 302,592: 2 x (302,592 + 384 + 302,592) = 1,211,136 bytes per layer, per block.
    c = configure(get_model("deit3_small_patch16_224"), 224, batch=4, dtype="fp16")
    ops = {o.path: o for o in config_cost(c).ops}
    assert ops["layer/attn/layer_scale"].bytes == 12 * 1_211_136
    # the residual add reads two full tensors: 2 x 3 x 302,592 = 1,815,552 bytes per layer
    assert ops["layer/attn/residual"].bytes == 12 * 1_815_552
    # the position table (197 x 384 = 75,648 elements) is added to each of the 4 images:
    # read x and the table once, write x: 2 x (302,592 + 75,648 + 302,592) = 1,361,664 bytes
    assert ops["pos_embed/add"].bytes == 1_361_664
