"""Bad input, round two: each kind answered in one line before any work, or with a warning where
the question is absurd but finite; each test failed before its fix."""

import pytest

from costmodel.errors import CoreplanError


def one_line(code, err):
    return code == 2 and err.count("\n") == 1 and "Traceback" not in err


def in_process(capsys, *argv):
    """The CLI run in this process (so that monkeypatched stand-ins apply): (status, err)."""
    from coreplan.cli import main

    code = main(list(argv))
    return code, capsys.readouterr().err


def test_bare_coreplan_prints_its_help_as_help(cli):
    code, out, err = cli()
    assert code == 2
    assert err.startswith("Usage: ") and "COMMAND [ARGS]" in err.splitlines()[0]
    assert len(err.splitlines()) > 10  # the help as it is, not folded onto one error line
    assert "Commands" in err and "coreplan: error" not in err


def test_calibrate_checks_its_arguments_before_fitting(capsys, monkeypatch, tmp_path):
    import planners.calibrate

    def never(*args, **kwargs):
        raise AssertionError("fitted before the arguments were checked")

    monkeypatch.setattr(planners.calibrate, "calibrate", never)
    rows = "data/measurements/cpu-epyc-2core-2026-11-24.csv"
    for extra, said in ((["--max-error", "-1"], "--max-error must be a fraction in (0, 1]"),
                        (["--max-error", "25"], "(0.25 = 25%)"),  # 25% typed as 25
                        (["--out", str(tmp_path)], "is a directory"),
                        (["--out", str(tmp_path / "no" / "x.toml")], "does not exist"),
                        ([], "more than once")):
        listed = f"{rows},./{rows}" if not extra else rows
        code, err = in_process(capsys, "calibrate", "--measurements", listed, "--device",
                               "cpu-epyc-2core", *extra)
        assert one_line(code, err) and said in err, err


def test_a_csv_with_a_byte_order_mark_reads_as_without(tmp_path):
    from costmodel.timm_results import read_timm

    src = "data/public/timm/benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv"
    text = open(src, encoding="utf-8").read()
    path = tmp_path / "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_timm(path).records == read_timm(src).records


def test_profile_refuses_what_it_cannot_use_before_measuring(capsys, monkeypatch, tmp_path):
    from coreplan import measure_commands

    def never(*args, **kwargs):
        raise AssertionError("measured before the arguments were checked")

    monkeypatch.setattr(measure_commands, "_profile_with_progress", never)
    code, err = in_process(capsys, "profile", "--threads", "100000", "--out",
                           str(tmp_path / "p.toml"))
    assert one_line(code, err) and "this machine has" in err
    code, err = in_process(capsys, "profile", "--out", str(tmp_path), "--force")
    assert one_line(code, err) and "is a directory" in err


def test_a_partial_profile_never_replaces_this_machines(capsys, monkeypatch, tmp_path):
    """A budget too short to measure most op points is not this machine's profile: without --out
    nothing is written; with --out only that file (this machine's saved one is kept)."""
    from types import SimpleNamespace

    from coreplan import measure_commands

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    found = SimpleNamespace(curves=SimpleNamespace(measured=1, skipped=295))
    monkeypatch.setattr(measure_commands, "_profile_with_progress", lambda *a, **k: found)
    code, err = in_process(capsys, "profile", "--budget-s", "1")
    assert one_line(code, err) and "measured 1 of 296 op points" in err
    assert not (tmp_path / "cache").exists()


def test_a_configuration_beyond_counting_is_refused_and_an_absurd_one_warned(cli):
    code, _, err = cli("simulate", "veca-base", "--device", "h100-sxm", "--resolution",
                       "1000000", "--batch", "1000000000000")
    # the side's and the batch's warnings, then the refusal: no traceback
    lines = err.splitlines()
    assert code == 2 and "Traceback" not in err
    assert all(line.startswith("coreplan: warning:") for line in lines[:-1])
    assert lines[-1].startswith("coreplan: error:") and "attention scores a layer" in lines[-1]
    code, out, err = cli("flops", "veca-base", "--resolution", "224", "--batch",
                         "1000000000000")
    assert code == 0 and "coreplan: warning: batch 1,000,000,000,000 is far beyond" in err
    code, out, err = cli("flops", "veca-base", "--resolution", "224", "--batch", "64")
    assert code == 0 and "warning" not in err


@pytest.mark.parametrize("command", [
    ("plan", "veca-small", "--device", "h100-sxm", "--resolution", "224"),
    ("simulate", "veca-small", "--device", "h100-sxm", "--resolution", "224"),
    ("serve", "veca-small", "--device", "h100-sxm", "--resolution", "224", "--rate", "100",
     "--slo-ms", "50"),
])
def test_autocast_to_fp32_is_refused_as_meaning_plain_fp32(cli, command):
    code, _, err = cli(*command, "--dtype", "fp32", "--runtime", "eager+amp")
    assert one_line(code, err) and "use --runtime eager for plain fp32" in err


def test_a_search_limit_without_its_search_is_refused(cli):
    code, _, err = cli("plan", "veca-small", "--device", "l4", "--resolution", "224",
                       "--max-resolution", "2048")
    assert one_line(code, err) and "--max-resolution limits --solve resolution" in err
    code, _, err = cli("plan", "veca-small", "--device", "l4", "--resolution", "224",
                       "--max-batch", "64")
    assert one_line(code, err) and "--max-batch limits --solve batch" in err


def test_transformers_has_no_core_model(cli):
    code, _, err = cli("memory", "veca-base", "--device", "cpu-epyc-2core", "--framework",
                       "transformers", "--resolution", "224")
    assert one_line(code, err) and "transformers has no veca-base" in err


def test_timm_names_a_typo_is_not_a_model_and_a_tag_is_dropped():
    from costmodel.spec import get_model

    with pytest.raises(CoreplanError, match="timm names are taken too"):
        get_model("vit_base_patch16_2244")  # 2244 px is no whole number of 16 px patches
    tagged = get_model("vit_small_patch14_dinov2.lvd142m")
    assert tagged == get_model("vit_small_patch14_dinov2")


GPU_FILE = ("[devices.g]\nkind = 'gpu'\nsource = 'test'\n"
            "peak_flops_per_s = {{ fp32 = {fp32}, bf16 = 362e12 }}\n"
            "memory_bandwidth_bytes_per_s = {bw}\nmemory_capacity_bytes = {cap}\n{extra}")


@pytest.mark.parametrize("fields,said", [
    (dict(fp32="91.6"), "the file takes FLOP/s (2 per multiply-add), not TFLOP/s"),
    (dict(bw="864"), "the file takes B/s, not GB/s"),
    (dict(cap="48"), "the file takes bytes, not GB"),
    (dict(extra="board_power_w = 1e-3\n"), "the file takes watts"),
])
def test_a_device_file_in_the_wrong_units_is_refused(cli, tmp_path, fields, said):
    values = dict(fp32="91.6e12", bw="864e9", cap="48e9", extra="")
    values.update(fields)
    path = tmp_path / "g.toml"
    path.write_text(GPU_FILE.format(**values))
    code, _, err = cli("plan", "veca-base", "--device", "g", "--device-file", str(path),
                       "--resolution", "512")
    assert one_line(code, err) and said in err, err


def test_a_gpu_without_its_shape_and_power_numbers_says_what_is_assumed(cli, tmp_path):
    import json

    path = tmp_path / "g.toml"
    path.write_text(GPU_FILE.format(fp32="91.6e12", bw="864e9", cap="48e9", extra=""))
    code, out, err = cli("plan", "veca-base", "--device", "g", "--device-file", str(path),
                         "--resolution", "512", "--format", "json")
    assert code == 0, err
    said = json.loads(out)["assumptions"]
    assert "no sm_count" in said and "boost_clock_hz and board_power_w" in said
    code, out, _ = cli("simulate", "veca-base", "--device", "g", "--device-file", str(path),
                       "--resolution", "512")
    assert code == 0 and "note: g has no sm_count" in out
    code, out, _ = cli("plan", "veca-base", "--device", "h100-sxm", "--resolution", "512",
                       "--format", "json")
    assert json.loads(out)["assumptions"] is None  # the catalog's H100 has all three


@pytest.mark.parametrize("command", [
    ("plan", "veca-small", "--device", "l4"),
    ("serve", "veca-small", "--device", "l4", "--rate", "100", "--slo-ms", "100"),
    ("simulate", "veca-small", "--device", "l4"),
    ("flops", "veca-small"),
])
def test_one_resolution_rule_for_every_command(cli, command):
    """A side that is no whole number of patches is refused alike, naming the side below."""
    code, _, err = cli(*command, "--resolution", "500")
    assert one_line(code, err) and "not a multiple of veca-small's patch size 16 (try 496)" in err


SERVE = ("serve", "veca-small", "--device", "l4", "--resolution", "224", "--slo-ms", "100")


@pytest.mark.parametrize("extra,said", [
    (("--rate", "100", "--batch-timeout-ms", "1e30"), "--batch-timeout-ms 1e+30 is longer"),
    (("--rate", "1e30", "--duration-s", "1e-24"), "--rate 1e+30 img/s is far beyond"),
    (("--rate", "100", "--devices", "100000"), "--devices 100,000 is beyond any fleet"),
])
def test_serve_answers_an_absurd_question_with_a_warning(cli, extra, said):
    code, _, err = cli(*SERVE, *extra)
    assert code == 0 and f"coreplan: warning: {said}" in err, err


def test_a_trace_spanning_ages_is_warned(cli, tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("0\n0.5\n1e300\n")
    code, _, err = cli(*SERVE, "--arrivals", str(trace))
    assert "coreplan: warning: the trace spans 1e+300 s" in err and "Traceback" not in err


@pytest.mark.parametrize("rows,said", [
    ("8,0.7\n16,79.5\n", "mixes fractions (at most 1: 0.7) and percentages (above 1: 79.5)"),
    ("8,-0.2\n16,0.8\n", "C=8: quality -0.2 is negative"),
    ("8,0.7\n12,0.75\n", "C=12 is not a core budget of veca-small"),
    ("8,170\n16,180\n", "above 100, neither a fraction nor a percentage"),
])
def test_a_quality_file_that_means_something_else_is_refused(cli, tmp_path, rows, said):
    quality = tmp_path / "q.csv"
    quality.write_text("cores,quality\n" + rows)
    code, _, err = cli(*SERVE, "--rate", "100", "--quality", str(quality))
    assert one_line(code, err) and said in err, err


def test_memory_and_plan_take_one_default_dtype_and_one_unit(cli):
    import json

    code, out, _ = cli("memory", "veca-base", "--device", "h100-sxm", "--resolution", "512",
                       "--format", "json")
    code2, out2, _ = cli("plan", "veca-base", "--device", "h100-sxm", "--resolution", "512",
                         "--format", "json")
    assert code == code2 == 0
    assert json.loads(out)["dtype"] == json.loads(out2)["dtype"] == "bf16"
    code, out, _ = cli("memory", "veca-base", "--device", "h100-sxm", "--resolution", "512")
    assert " MB" in out and "MiB" not in out.split("footprint on")[0]


def test_every_option_of_every_command_has_help():
    import typer

    from coreplan.cli import app

    group = typer.main.get_command(app)
    missing = [f"{name} --{p.name.replace('_', '-')}"
               for name, command in group.commands.items() for p in command.params
               if p.param_type_name == "option" and not (p.help or "").strip()]
    assert missing == []


def test_csv_keeps_unscaled_units(cli):
    """devices and calibrate as CSV: FLOP/s, B/s, B, W and seconds, as JSON (tables scale)."""
    import csv
    import io

    code, out, _ = cli("devices", "--format", "csv")
    h100 = [r for r in csv.DictReader(io.StringIO(out)) if r["device"] == "h100-sxm"][0]
    # the catalog's H100 SXM: 67e12 FLOP/s fp32, 3.35e12 B/s, 80e9 B, 700 W
    assert float(h100["fp32_flop_per_s"]) == 67e12
    assert float(h100["memory_bandwidth_bytes_per_s"]) == 3.35e12
    assert float(h100["memory_capacity_bytes"]) == 80e9 and float(h100["board_power_w"]) == 700
    code, out, _ = cli("calibrate", "--measurements",
                       "data/measurements/cpu-epyc-2core-2026-11-24.csv", "--device",
                       "cpu-epyc-2core", "--format", "csv")
    rows = {r["quantity"]: r["value"] for r in csv.DictReader(io.StringIO(out))}
    assert "launch overhead (s)" in rows and float(rows["launch overhead (s)"]) < 1e-3


def test_a_table_never_cuts_or_wraps_a_cell(cli):
    """--solve batch's table is wider than 80 columns: every row is printed whole (a model name,
    `latency 25%` and `12,838` intact) and the title and caption keep to the terminal."""
    code, out, err = cli("plan", "veca-small", "--device", "l4", "--resolution", "512",
                         "--solve", "batch", "--latency-ms", "100")
    assert code == 0, err
    lines = out.splitlines()
    rows = [line for line in lines if line.startswith(("veca-small  ", "dinov3-small  "))]
    assert len(rows) >= 10 and any(line.startswith("dinov3-small") for line in rows)
    assert all(line.count("latency ") == 1 and "%" in line.split("latency ")[1] for line in rows)
    assert "…" not in out
    assert all(len(line) <= 80 for line in lines if not line.startswith(("veca", "dinov3", "model", "─")))


MODEL = ("[models.my-vit]\nfamily = 'mine'\nkind = 'core'\npatch_size = 16\nembed_dim = {d}\n"
         "num_heads = 6\ndepth = 12\nmlp = 'gelu'\nmlp_ratio = 4\npos_embed = 'rope'\n"
         "fused_qkv = true\nqkv_bias = true\nkey_bias = true\nlayer_scale = false\n"
         "cls_tokens = 0\nmax_cores = 64\ncore_chunk = 8\nbudget_weights = [{w}, 1, 1, 1, 1, 1, 1, 1]\n")


@pytest.mark.parametrize("d,w,said", [
    ("384", "nan", "'budget_weights' must be finite, non-negative numbers"),
    ("384", "inf", "'budget_weights' must be finite, non-negative numbers"),
    ("38400000000", "1", "'embed_dim' is 38,400,000,000, above 65,536"),
])
def test_a_model_file_with_nan_or_enormous_numbers_is_refused(cli, tmp_path, d, w, said):
    path = tmp_path / "m.toml"
    path.write_text(MODEL.format(d=d, w=w))
    code, _, err = cli("flops", "my-vit", "--model-file", str(path), "--resolution", "224")
    assert one_line(code, err) and said in err, err


def test_memory_of_one_layer(cli):
    """memory --scope layer: ViT-B/16's layer holds qkv 768 x 2304 + 2304, proj 768^2 + 768,
    fc1 768 x 3072 + 3072, fc2 3072 x 768 + 768 and two norms (4 x 768): 7,087,872 parameters,
    14,175,744 B in bf16; its activation peak is the largest of the model's in-layer stages."""
    import json

    args = ("vit_base_patch16_224", "--device", "h100-sxm", "--format", "json")
    code, out, err = cli("memory", *args, "--scope", "layer")
    assert code == 0, err
    layer = json.loads(out)
    assert layer["scope"] == "layer" and layer["weights_bytes"] == 2 * 7_087_872
    code, out, _ = cli("memory", *args)
    whole = json.loads(out)["terms"]
    stages = [whole[f"activation/{k}"] for k in ("attention/projections", "attention/sdpa",
                                                  "mlp")]
    assert layer["activation_peak_bytes"] == max(stages)
    code, out, _ = cli("memory", *args, "--scope", "layer", "--mode", "training")
    assert code == 0 and json.loads(out)["peak_stage"] == "backward"
    code, _, err = cli("memory", *args, "--scope", "block")
    assert one_line(code, err) and "unknown scope 'block'" in err


def test_a_fleet_below_the_offered_rate_never_holds_the_objective(cli):
    """The issue's case: 100,000 requests at a million img/s are 0.1 s of arrivals against a 2 s
    objective; 4,096 two-core CPUs serve about 52,000 img/s, so every fleet's queue grows without
    end however short a run's p99 looks. No fleet is named; each policy says why (exit 3)."""
    import json

    code, out, err = cli("serve", "veca-small", "--device", "cpu-epyc-2core", "--resolution",
                         "224", "--dtype", "fp32", "--rate", "1e6", "--slo-ms", "2000",
                         "--solve", "devices", "--format", "json")
    assert code == 3, err
    for row in json.loads(out):
        assert row["devices"] is None and row["unstable"] is True
    assert err.count("below the 1,000,000 offered: the queue grows without end") == 3


def test_a_fleet_found_serves_more_than_is_offered(cli):
    """A fleet named by --solve devices has capacity above the offered rate (it is stable)."""
    import json

    from costmodel.spec import get_model
    from planners.devices import get_device
    from planners.serving import make_policies

    code, out, err = cli("serve", "veca-small", "--device", "l4", "--resolution", "224",
                         "--rate", "500", "--slo-ms", "200", "--policy", "static",
                         "--max-batch", "4", "--solve", "devices", "--format", "json")
    assert code == 0, err
    row = json.loads(out)[0]
    assert row["devices"] >= 1 and row["unstable"] is False
    policy = make_policies(get_model("veca-small"), get_device("l4"), resolution=224,
                           dtype="bf16", policy="static", max_batch=4)[0]
    assert policy.capacity_img_per_s(row["devices"]) > row["offered_img_per_s"]


def test_a_run_shorter_than_its_objective_says_so(cli):
    """The default run would span 20 objectives (40 s at a 2 s objective), but at a million img/s
    it stops at its cap of 1,000,000 requests (1 s): warned, with the duration that would see a
    growing queue; a run spanning many objectives is not."""
    code, _, err = cli("serve", "veca-small", "--device", "cpu-epyc-2core", "--resolution", "224",
                       "--dtype", "fp32", "--rate", "1e6", "--slo-ms", "2000")
    assert "coreplan: warning: the arrivals span 1 s" in err and "--duration-s 20" in err
    code, _, err = cli("serve", "veca-small", "--device", "l4", "--resolution", "224", "--rate",
                       "500", "--slo-ms", "100")
    assert code == 0 and "arrivals span" not in err


def test_solve_batch_says_its_budget_covers_service_only(cli):
    """A batch of B at D img/s waits (B - 1) / D for its requests: plan says so and gives it."""
    import json

    args = ("plan", "veca-small", "--device", "l4", "--resolution", "512", "--solve", "batch",
            "--latency-ms", "50", "--demand", "300")
    code, out, err = cli(*args)
    assert code == 0, err
    assert "the latency budget covers a batch's service only" in " ".join(out.split())
    code, out, err = cli(*args, "--format", "json")
    doc = json.loads(out)
    batch = doc["chosen"]["batch"]
    assert doc["fill_ms_at_demand"] == pytest.approx((batch - 1) / 300 * 1e3)



def test_an_output_head_wider_than_any_model_is_refused(cli):
    """--output-dim 1e11 (and a model file's head alike) is ten thousand times the widest layer
    of any vision transformer: refused in one line, as a model file's dimensions are."""
    code, _, err = cli("flops", "veca-base", "--resolution", "224", "--output-dim", "100000000000")
    assert one_line(code, err) and "--output-dim 100,000,000,000 is above 262,144" in err
    code, out, _ = cli("flops", "veca-base", "--resolution", "224", "--output-dim", "1024")
    assert code == 0


def test_profile_checks_its_check_file_before_measuring(cli):
    """A missing or unreadable --check file is refused at once (it was found only after the
    minutes of measuring)."""
    import time

    start = time.monotonic()
    code, _, err = cli("profile", "--name", "zz", "--budget-s", "60", "--check", "missing.csv")
    assert one_line(code, err) and "missing.csv: no such file" in err
    code, _, err = cli("profile", "--name", "zz", "--budget-s", "60", "--check", "README.md")
    assert one_line(code, err) and "not a measurement file" in err
    assert time.monotonic() - start < 30  # neither measured for its 60 s budget


def test_the_short_run_warning_counts_the_simulated_duration(cli):
    """A generated stream runs --duration-s: 1 s against a 100 ms objective is ten objectives,
    not warned (its last arrival falls a little before the end); 0.5 s is."""
    base = ("serve", "veca-small", "--device", "l4", "--resolution", "224", "--rate", "10",
            "--slo-ms", "100", "--policy", "static")
    code, _, err = cli(*base, "--duration-s", "1")
    assert code == 0 and "arrivals span" not in err
    code, _, err = cli(*base, "--duration-s", "0.5")
    assert code == 0 and "the arrivals span 0.5 s" in err and "--duration-s 1 or more" in err


@pytest.mark.parametrize("argv, said", [
    (("plan", "veca-base", "--device", "l4", "--resolution", "224", "--demand", "1e30"),
     "warning: --demand 1e+30 img/s is far beyond any deployment"),
    (("serve", "veca-small", "--device", "l4", "--resolution", "224", "--rate", "10",
      "--slo-ms", "1e30", "--policy", "static", "--duration-s", "5"),
     "warning: --slo-ms 1e+30 is 1.16e+22 days, no serving objective"),
])
def test_absurd_demand_and_objective_are_answered_with_a_warning(cli, argv, said):
    code, out, err = cli(*argv)
    assert code == 0 and out and said in err


@pytest.mark.parametrize("argv, said", [
    (("serve", "veca-small", "--device", "l4", "--resolution", "224", "--rate", "10",
      "--slo-ms", "100", "--service-cv", "100"), "--service-cv must be in 0..10"),
    (("plan", "veca-base", "--device", "l4", "--resolution", "224", "--cores-allowed", "8,8,16"),
     "--cores-allowed lists 8 more than once"),
    (("compare", "veca-base", "dinov3-base", "--resolutions", "224,224"),
     "--resolutions lists 224 more than once"),
])
def test_lists_naming_a_value_twice_and_absurd_variation_are_refused(cli, argv, said):
    code, _, err = cli(*argv)
    assert one_line(code, err) and said in err


@pytest.mark.parametrize("script,args,message", [
    ("timm_holdout.py", ("--timm-dir", "no-such-dir"), "two devices at least"),
    ("training_step.py", ("veca-small", "abc"), "RESOLUTION and BATCH are whole numbers"),
    ("latency_holdout.py", ("--device", "h10", "--report", "x.csv"), "unknown device 'h10'"),
    ("curve_rounds.py", ("--report", "no-such.json"), "no-such.json: no such file"),
    ("curve_rounds.py", ("--out", "x.json", "--runs", "1"), "needs 2 or more"),
    ("probe_tracking.py", ("--seconds", "0"), "--seconds must be a positive number"),
    ("cold_weights.py", ("--rounds", "1"), "--rounds must be 2 or more"),
    ("cold_weights.py", ("--report", "no-such.json"), "no-such.json: not a file this script wrote"),
    ("latency_holdout.py", ("--device", "cpu-epyc-2core", "--cores-sweep", "dinov2-small:224",
                            "--out", "never-written.csv"), "dinov2-small has no core tokens"),
    ("latency_holdout.py", ("--device", "cpu-epyc-2core", "--cores-sweep", "veca-small",
                            "--out", "never-written.csv"), "expected MODEL:SIDE"),
    ("repeat_floor.py", ("no-such-1.csv", "no-such-2.csv"), "no-such-1.csv: no such file"),
    ("holdout_record.py", ("runs.csv",), "not a held-out run's name"),
    ("holdout_record.py", ("holdout-cpu-nobody1.csv",), "no profile data/profiles/cpu-nobody.toml"),
    ("split_curves.py", ("--rounds", "1"), "--rounds must be 2 or more"),
    ("split_curves.py", ("--threads", "0"), "--threads must be 1 or more"),
    ("split_curves.py", ("--report", "no-such.json"), "no-such.json: not a file this script wrote"),
])
def test_benchmark_scripts_answer_bad_input_in_one_line(script, args, message):
    """The benchmark scripts a user runs by hand: bad input is one line on stderr and exit 2
    (costmodel.errors.script_main), never a traceback or an empty table."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (root / "never-written.csv").exists()  # refused before any file is opened
