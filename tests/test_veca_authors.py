"""VECA as its authors build and train it: per-layer coordinate heads, the distillation output
head, RoPE tables and the teacher's cost. Expected values are written out by hand."""

import dataclasses
import json

import pytest

from costmodel.config import configure
from costmodel.cost import count
from costmodel.memory import inference_memory, training_memory
from costmodel.params import parameter_count
from costmodel.spec import get_model
from costmodel.training import teacher_config, training_flops


def _linear(i, o):
    return i * o + o


@pytest.mark.parametrize("name,D,F,L,swiglu_out", [
    ("veca-small", 384, 1024, 12, 768), ("veca-splus", 384, 1536, 12, 768),
    ("veca-base", 768, 2048, 12, None), ("veca-large", 1024, 2730, 24, 768)])
def test_parameters_by_hand(name, D, F, L, swiglu_out):
    block = (4 * D                                  # two LayerNorms
             + 4 * _linear(D, D)                    # q, k, v, out
             + _linear(D, 2 * F) + _linear(F, D))   # SwiGLU fc1 (D -> 2F) and fc2
    coords = (L - 1) * (_linear(D, 2) + 1)          # pos_linears + pos_alpha, layers 1..L-1
    head = _linear(D, swiglu_out) if swiglu_out else 0  # Linear(D, 768); identity when D = 768
    want = (_linear(3 * 16 * 16, D)                 # patch embedding
            + 64 * D + 64 * 2                       # cores and their raw coordinates
            + L * block + coords + 2 * D + head)    # final norm
    assert parameter_count(get_model(name)) == want
    # before: one shared Linear(D, 2) head, no output head
    assert want - head - (coords - _linear(D, 2)) == {
        "veca-small": 21_621_250, "veca-splus": 28_711_426, "veca-base": 85_709_698,
        "veca-large": 303_150_178}[name]


def test_output_head_costs_by_hand():
    spec = get_model("veca-small")
    c = configure(spec, 256, cores=16, batch=2, dtype="bf16")
    bare = configure(dataclasses.replace(spec, distill_output_dim=0), 256, cores=16, batch=2,
                     dtype="bf16")
    S, D, O, B = 256 + 16, 384, 768, 2
    by_op = {k: count(c, "model", k).by_op["output_head"] for k in ("flop", "mac", "full")}
    assert by_op == {"flop": 2 * B * S * D * O, "mac": B * S * D * O,
                     "full": 2 * B * S * D * O + B * S * O}          # + one bias add per output
    assert "output_head" not in count(bare).by_op
    # bytes: read x (B*S*D) + W (D*O) + b (O), write B*S*O, at 2 bytes each
    from costmodel.cost import config_cost

    head = next(o for o in config_cost(c).ops if o.path == "output_head")
    assert head.bytes == 2 * (B * S * D + D * O + O + B * S * O)
    # memory: weights grow by the head; the last stage holds x and the head's output
    assert inference_memory(c).weights_bytes - inference_memory(bare).weights_bytes == 2 * (D * O + O)
    assert inference_memory(c).terms["activation/output_head"] == 2 * B * S * D + 2 * B * S * O


def test_rope_tables_and_coordinate_updates_in_the_full_convention():
    c = configure(get_model("veca-base"), 512, cores=8, batch=1)
    N, C, L, d = 1024, 8, 12, 64
    by_op = count(c, "model", "full").by_op
    assert by_op["rope_tables"] == L * 3 * (N + C) * d         # every layer: angle, cos, sin
    assert by_op["core_coords/tanh"] == L * 4 * C * 2          # once, then after each update
    assert by_op["core_coords/gate"] == by_op["core_coords/update"] == (L - 1) * C * 2
    assert count(c, "model", "flop").by_op["rope_tables"] == 0  # no matmul: not in `flop`


def test_teacher_adds_its_forward_to_training_flops():
    c = configure(get_model("veca-small"), 256, cores=64, batch=4)
    t = teacher_config(c, get_model("dinov3-base"))
    assert (t.height, t.batch) == (256, 4)
    plain, taught = training_flops(c), training_flops(c, teacher=t)
    N, E, D, F, L = 256, 5, 768, 3072, 12
    S = N + E
    teacher = 4 * (2 * N * D * 768                       # patch conv
                   + L * (2 * S * D * 4 * D + 4 * S * D * F + 4 * D * S * S))
    assert taught["teacher"] == teacher and plain["teacher"] == 0
    assert taught["total"] - plain["total"] == teacher


def test_training_memory_with_the_teacher():
    c = configure(get_model("veca-small"), 256, cores=64, batch=8)
    t = teacher_config(c, get_model("dinov3-base"))
    plain, taught = training_memory(c), training_memory(c, teacher=t)
    tw = parameter_count(get_model("dinov3-base")) * 4
    outputs = 8 * (256 + 5) * 768 * 4                    # the teacher's last hidden state, fp32
    peak = max(plain.activation_peak_bytes, inference_memory(t).activation_peak_bytes)
    assert taught.terms["teacher/weights"] == tw and taught.terms["teacher/outputs"] == outputs
    assert taught.total_bytes == 4 * plain.weights_bytes + tw + peak + outputs
    assert plain.total_bytes == 4 * plain.weights_bytes + plain.activation_peak_bytes


@pytest.mark.parametrize("args,message", [
    (("flops", "veca-small", "--resolution", "256", "--mode", "training", "--teacher", "veca-base"),
     "--teacher must be a dense model"),
    (("flops", "veca-small", "--resolution", "256", "--mode", "training", "--teacher", "dinov9"),
     "unknown model 'dinov9'"),
    (("memory", "veca-small", "--resolution", "256", "--teacher", "dinov3-base"),
     "--teacher applies to --mode training"),
    (("flops", "veca-small", "--resolution", "256", "--output-dim", "-5"),
     "--output-dim must be 0 (no head) or positive"),
])
def test_bad_teacher_or_output_dim_is_one_line(cli, args, message):
    code, _, err = cli(*args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_training_flops_command_reports_with_and_without_the_teacher(cli):
    code, out, err = cli("flops", "veca-small", "--resolution", "256", "--mode", "training",
                         "--teacher", "dinov3-base", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["with_teacher"]["total"] - doc["without_teacher"]["total"] == \
        doc["with_teacher"]["teacher"] > 0
    code, out, _ = cli("flops", "veca-small", "--resolution", "256", "--output-dim", "0",
                       "--format", "json")
    assert code == 0 and "output_head" not in json.loads(out)["by_op"]
