"""The CLI: outputs and bad input (one line on stderr, exit status 2, no traceback)."""

import json
import subprocess
import sys

import pytest

BAD = [
    (["flops", "veca-base", "--resolution", "1000"], "not a multiple of veca-base's patch size 16"),
    (["flops", "veca-base", "--resolution", "0"], "must be positive"),
    (["flops", "veca-base", "--resolution", "512", "--batch", "-1"], "batch must be positive"),
    (["flops", "veca-base", "--resolution", "512", "--cores", "72"], "multiple of 8 up to 64"),
    (["flops", "veca-base", "--resolution", "512", "--cores", "12"], "multiple of 8 up to 64"),
    (["flops", "dinov3-base", "--resolution", "512", "--cores", "8"], "core models only"),
    (["flops", "vecabase", "--resolution", "512"], "did you mean veca-base"),
    (["flops", "veca-base", "--resolution", "512", "--convention", "gflops"], "unknown convention"),
    (["flops", "veca-base", "--resolution", "512", "--scope", "block"], "unknown scope"),
    (["flops", "veca-base", "--resolution", "512", "--impl", "dense"], "does not apply"),
    (["flops", "veca-base", "--resolution", "512", "--impl", "fast"], "unknown impl"),
    (["flops", "veca-base", "--resolution", "abc"], "expected R or HxW"),
    (["memory", "veca-base", "--resolution", "512", "--dtype", "int4"], "unknown dtype"),
    (["memory", "veca-base", "--resolution", "512", "--mode", "serve"], "unknown mode"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_is_one_line_exit_2(cli, args, message):
    code, out, err = cli(*args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("body,message", [
    ("[models.x]\nfamily = 'x'\n", "missing field 'kind'"),
    ("[models.x\n", "malformed TOML"),
    ("title = 1\n", "no [models.NAME] tables"),
])
def test_bad_model_file(cli, tmp_path, body, message):
    path = tmp_path / "m.toml"
    path.write_text(body)
    code, _, err = cli("flops", "x", "--resolution", "512", "--model-file", str(path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_model_file_field_type_is_named(cli, tmp_path):
    path = tmp_path / "m.toml"
    text = open("costmodel/catalog.toml").read().split("[models.veca-splus]")[0]
    path.write_text(text.replace("[models.veca-small]", "[models.mine]").replace("depth = 12",
                                                                                  'depth = "twelve"'))
    code, _, err = cli("flops", "mine", "--resolution", "512", "--model-file", str(path))
    assert code == 2 and "'depth' must be an integer" in err


def test_custom_model_file_works(cli, tmp_path):
    text = open("costmodel/catalog.toml").read().split("[models.veca-splus]")[0]
    path = tmp_path / "m.toml"
    path.write_text(text.replace("[models.veca-small]", "[models.tiny]").replace("depth = 12", "depth = 2"))
    code, out, _ = cli("flops", "tiny", "--resolution", "256", "--cores", "8", "--model-file", str(path),
                       "--format", "json")
    assert code == 0
    doc = json.loads(out)
    # two layers of veca-small at 256 px, C=8 (see test_models_hand for the per-layer terms)
    N, C, D, F, S = 256, 8, 384, 1024, 264
    per_layer = 8 * S * D * D + 4 * S * D * F + 2 * S * F * D + 4 * D * (2 * N * C + C * C)
    # + the coordinate head (layer 1 only) and the distillation head Linear(D, 768) on all S tokens
    assert doc["total"] == 2 * N * D * 768 + 2 * per_layer + 2 * C * D * 2 * 1 + 2 * S * D * 768


def test_flops_json_document(cli):
    code, out, _ = cli("flops", "veca-base", "--resolution", "768x1024", "--format", "json",
                       "--scope", "attention-core", "--cores", "16", "--batch", "2")
    doc = json.loads(out)
    assert code == 0
    assert doc["resolution"] == [768, 1024] and doc["patch_tokens"] == 48 * 64
    # one layer (scopes below model are one layer), B=2
    assert doc["total"] == sum(doc["by_op"].values()) == 2 * 4 * 768 * (2 * 3072 * 16 + 256)
    assert set(doc) >= {"model", "core_tokens", "extra_tokens", "batch", "scope", "convention", "impl"}


def test_memory_json_and_csv(cli):
    code, out, _ = cli("memory", "veca-base", "--resolution", "512", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["total_bytes"] == doc["weights_bytes"] + doc["activation_peak_bytes"]
    code, out, _ = cli("compare", "veca-base", "dinov3-base", "--resolutions", "256,512", "--format", "csv")
    assert code == 0 and len(out.strip().splitlines()) == 3


def test_other_commands_run(cli):
    assert cli("models")[0] == 0
    code, out, _ = cli("formula", "--scope", "attention-core", "--kind", "core")
    formula, legend = out.strip().splitlines()
    assert code == 0 and formula == "4*B*C*D*(C + 2*N)"
    # every symbol the formula uses is defined, and no other
    assert legend == "# where B = batch, N = patch tokens, C = core tokens, D = embedding width"
    code, out, _ = cli("crossover", "veca-base", "--versus", "dinov3-base", "--format", "json",
                       "--scope", "attention-core")
    assert code == 0 and json.loads(out)["patch_tokens"] == 146


def test_compute_only_paths_do_not_import_torch():
    code = ("import sys, costmodel, costmodel.cost, costmodel.memory, costmodel.analysis, "
            "costmodel.measurements, planners.planner, planners.calibrate, coreplan.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "coreplan.cli", "flops", "veca-base",
                          "--resolution", "512"], capture_output=True, text=True)
    assert out.returncode == 0 and " torch" not in out.stderr
