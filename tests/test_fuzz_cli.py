"""Fuzzing the CLI in-process: whatever the arguments, a command answers (exit 0, or 3 for an
infeasible plan) or says one line and exits 2 - never a traceback, never a hang."""

import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coreplan.cli import main

MODELS = ["veca-small", "veca-small", "dinov3-small", "dinov2-small-reg", "vit_small_patch16_224",
          "nope", ""]
DEVICES = ["l4", "t4", "cpu-epyc-2core", "h100", "", "l4,t4"]
NUMBERS = ["0", "-1", "1", "8", "64", "224", "256", "1e300", "nan", "inf", "abc", "3.5", "768x512"]
OPTIONS = {
    "flops": ["--resolution", "--cores", "--batch", "--scope", "--convention", "--impl",
              "--output-dim", "--mode", "--teacher", "--format"],
    "memory": ["--resolution", "--cores", "--batch", "--dtype", "--mode", "--teacher",
               "--device", "--framework", "--scope", "--format"],
    "plan": ["--device", "--resolution", "--batch", "--dtype", "--latency-ms", "--memory-gb",
             "--throughput", "--cores-allowed", "--solve", "--cores", "--demand", "--runtime",
             "--objective", "--format"],
    "simulate": ["--device", "--resolution", "--cores", "--batch", "--dtype", "--runtime"],
    "compare": ["--resolutions", "--cores", "--batch", "--scope"],
    "crossover": ["--versus", "--cores", "--scope", "--convention", "--format"],
    "formula": ["--scope", "--kind", "--convention", "--model"],
    "models": ["--format", "--model-file"], "devices": ["--format", "--device-file"],
    "serve": ["--device", "--resolution", "--rate", "--slo-ms", "--policy", "--cores",
              "--cores-allowed", "--max-batch", "--batch-timeout-ms", "--arrivals", "--devices",
              "--dtype", "--versus", "--seed", "--solve", "--runtime", "--objective",
              "--service-cv", "--format"],
}
WORDS = ["model", "layer", "attention-core", "flop", "mac", "full", "split", "masked", "dense",
         "training", "inference", "dinov3-base", "json", "csv", "table", "bf16", "fp16", "fp32",
         "int8", "cores", "resolution", "batch", "eager", "compiled", "transformers", "8,16"]


# each option mostly gets values of its own kind, sometimes anything (so both the answers and the
# refusals are exercised)
POOLS = {"--resolution": ["224", "256", "512", "768x512"] + NUMBERS, "--resolutions": ["224,512"],
         "--device": ["l4", "t4", "cpu-epyc-2core", "l4,t4", "h100-sxm,l4,l4"] + DEVICES,
         "--dtype": ["bf16", "fp16", "fp32", "auto", "int8"], "--solve": ["cores", "resolution",
                                                                          "batch", "width",
                                                                          "devices", "batching"],
         "--scope": ["model", "layer", "attention", "attention-core", "block"],
         "--convention": ["flop", "mac", "full", "gflop"], "--impl": ["split", "masked", "flex",
                                                                     "dense", "fast"],
         "--mode": ["inference", "training", "serve"], "--teacher": ["dinov3-base", "veca-base"],
         "--format": ["table", "json", "csv", "xml"], "--runtime": ["eager", "compiled", "compiled+amp", "jit"],
         "--framework": ["torch", "transformers", "jax"], "--cores-allowed": ["8,16", "12", "64"],
         "--rate": ["0.5", "5", "50"], "--slo-ms": ["100", "1000", "5000"],
         "--policy": ["static", "elastic", "dense", "all", "best"], "--max-batch": ["1", "4", "8", "auto", "1,4", "2,64"],
         "--arrivals": ["poisson", "bursty", "sometimes", "missing.csv"], "--devices": ["1", "3"],
         "--versus": ["dinov3-small", "veca-small", "nope"],
         "--seed": ["0", "7", "-1"], "--kind": ["core", "dense", "sparse"],
         "--model": ["veca-small", "nope"],
         "--objective": ["devices", "cost", "energy", "speed"], "--service-cv": ["0", "0.5", "-1"],
         "--model-file": ["costmodel/catalog.toml", "README.md", "missing.toml", "tests"],
         "--device-file": ["planners/devices.toml", "README.md", "missing.toml", "tests"]}
NO_MODEL = ("formula", "models", "devices")  # commands without a MODEL argument
NO_RESOLUTION = ("compare", "crossover", "formula", "models", "devices")


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    args = [command] if command in NO_MODEL else [command, draw(st.sampled_from(MODELS))]
    if command == "compare":
        args.append(draw(st.sampled_from(MODELS)))
    for option in draw(st.lists(st.sampled_from(OPTIONS[command]), max_size=5, unique=True)):
        own = POOLS.get(option, NUMBERS)
        args += [option, draw(st.one_of(st.sampled_from(own), st.sampled_from(own),
                                        st.sampled_from(NUMBERS + WORDS + DEVICES)))]
    if command == "serve":  # short runs: the fuzz is after answers and refusals, not load
        args += ["--duration-s", draw(st.sampled_from(["20", "0", "nan", "1e-9"]))]
        for flag, value in (("--rate", "5"), ("--slo-ms", "2000")):
            if flag not in args:
                args += [flag, value]
    if command in ("plan", "simulate", "serve") and "--device" not in args:
        args += ["--device", draw(st.sampled_from(["l4", "cpu-epyc-2core"]))]
    if "--resolution" not in args and command not in NO_RESOLUTION:
        args += ["--resolution", draw(st.sampled_from(["224", "256", "512"]))]
    return args


def answers_or_says_one_line(argv, codes) -> None:
    """Run the CLI in-process: no traceback, an exit status in `codes`, and exit 2 with exactly
    one error line."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    text = err.getvalue()
    assert "Traceback" not in text, (argv, text)
    assert code in codes, (argv, code, text)
    if code == 2:
        lines = [line for line in text.strip().splitlines() if line.startswith("coreplan: error")]
        assert len(lines) == 1, (argv, text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_lines())
def test_any_command_line_answers_or_says_one_line(argv):
    answers_or_says_one_line(argv, (0, 2, 3))


# --------------------------------------------------------------------------- input files
FRAGMENTS = ["[models.x]\n", "[devices.x]\n", "family = 'x'\n", "kind = 'core'\n",
             "patch_size = 16\n", "embed_dim = 384\n", "num_heads = 0\n", "depth = -1\n",
             "mlp_ratio = nan\n", "mlp = 'gelu'\n", "pos_embed = 'rope'\n", "source = 'x'\n",
             "peak_flops_per_s = { fp32 = 1e12 }\n", "memory_bandwidth_bytes_per_s = 'fast'\n",
             "memory_capacity_bytes = 1e9\n", "[devices.x.profile]\n", "dispatch_s = 1e-6\n",
             "curves = [1, 2]\n", "footprint = { x = 1 }\n", "= = =\n", "\x00\xff\n",
             "model,resolution,core_tokens,impl,batch,dtype,status\n", "veca-small,256,8,split,1,fp32,ok\n",
             "a,\"b\n", "model,infer_img_size,infer_batch_size,infer_step_time\n",
             "vit_base_patch16_224,224,8,1.5\n", "vit_base_patch16_224,x,8,1.5\n",
             "time_s\n", "0.5\n", "2\n", "1e300\n", "-1\n", "nan\n", "cores,quality\n", "8,70\n",
             "64,\n", "8,1e999\n", "x,y\n"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=10), st.binary(max_size=20),
       st.sampled_from(["model", "device", "measurements", "timm", "trace", "quality"]))
def test_any_input_file_loads_or_is_one_clear_error(tmp_path_factory, fragments, noise, kind):
    from costmodel.errors import CoreplanError
    from costmodel.measurements import read_measurements
    from costmodel.spec import load_models
    from costmodel.timm_results import read_timm
    from planners.devices import load_devices
    from planners.workload import read_quality, read_trace

    folder = tmp_path_factory.mktemp("fuzz")
    name = "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv" if kind == "timm" else "f.txt"
    path = folder / name
    path.write_bytes("".join(fragments).encode("utf-8", "surrogateescape") + noise)
    reader = {"model": load_models, "device": load_devices, "measurements": read_measurements,
              "timm": read_timm, "trace": read_trace, "quality": read_quality}[kind]
    try:
        reader(path)
    except CoreplanError as err:
        assert str(err) and "\n" not in str(err).strip()


# --------------------------------------------------------------------------- commands that read
# or write files: calibrate (measurement files) and chart (an output file)
DATA = "data/measurements/cpu-epyc-2core-2026-11-24.csv"
TIMM = "data/public/timm/benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv"


@st.composite
def file_command_lines(draw, folder):
    if draw(st.booleans()):
        args = ["calibrate", "--measurements",
                draw(st.sampled_from([DATA, TIMM, f"{DATA},{TIMM}", "missing.csv", str(folder),
                                      "README.md", ""]))]
        for option, pool in (("--device", ["cpu-epyc-2core", "rtx-3090", "l4", "nope"]),
                             ("--holdout", ["resolution", "family", "model", "device", "day"]),
                             ("--max-error", ["0.25", "0", "-1", "nan", "abc"]),
                             ("--format", ["table", "json", "csv", "xml"])):
            if draw(st.booleans()):
                args += [option, draw(st.sampled_from(pool))]
        return args
    kind = draw(st.sampled_from(["scaling", "crossover", "roofline", "frontier", "elastic",
                                 "validation", "pie"]))
    out = draw(st.sampled_from(["c.svg", "c.HTML", "c.txt", "nodir/c.svg"]))
    args = ["chart", kind, "--out", str(folder / out), "--force"]
    for option, pool in (("--model", ["veca-small", "dinov3-small", "nope"]),
                         ("--models", ["veca-small", "veca-small,nope", ""]),
                         ("--device", ["l4", "cpu-epyc-2core", "nope"]),
                         ("--devices", ["l4", "l4,t4", "nope"]),
                         ("--resolution", ["224", "0", "768x512", "abc"]),
                         ("--resolutions", ["224,256", "0", "abc"]),
                         ("--cores", ["8", "12", "-8"]), ("--dtype", ["bf16", "fp32", "int8"]),
                         ("--quantity", ["gflops", "memory_gb", "time", "speed"]),
                         ("--measurements", [DATA, "missing.csv", "README.md"])):
        if draw(st.integers(0, 3)) == 0:
            args += [option, draw(st.sampled_from(pool))]
    return args


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_file_commands_answer_or_say_one_line(tmp_path, data):
    argv = data.draw(file_command_lines(tmp_path))
    answers_or_says_one_line(argv, (0, 1, 2))  # 1: calibrate refused an implausible fit


# --------------------------------------------------------------------------- measuring commands
# validate and profile time real forwards for minutes; here the measuring itself is replaced by a
# stand-in, so the fuzz exercises what runs before it: every argument check, the output file rule
# and the resume logic. (The measuring is tested in test_validate.py and test_profile.py.)
@st.composite
def measure_command_lines(draw, folder):
    out = draw(st.sampled_from(["r.csv", "nodir/r.csv", ".", "/dev/full", "p.toml"]))
    out = out if out.startswith(("/", ".")) else str(folder / out)
    if draw(st.booleans()):
        args = ["validate", "--out", out]
        pools = (("--models", ["veca-small", "nope", "veca-small,dinov3-small", ""]),
                 ("--resolutions", ["224", "0", "abc", "768x512"]), ("--cores", ["8", "12", "x"]),
                 ("--impls", ["split", "flex", "dense"]), ("--batch", ["1", "0", "1,4"]),
                 ("--dtype", ["fp32", "bf16,fp16", "int8"]), ("--device", ["cpu", "tpu"]),
                 ("--min-time", ["0.1", "0", "nan", "inf", "-1"]), ("--repeats", ["3", "0"]),
                 ("--warmup", ["0", "-1"]), ("--threads", ["1", "0", "1000"]))
        flags = ["--quick", "--resume", "--retry-busy", "--no-time", "--no-footprint"]
    else:
        args = ["profile", "--name", draw(st.sampled_from(["mine", ""])), "--out", out]
        pools = (("--device", ["cpu", "tpu"]), ("--dtype", ["fp32", "bf16", "tf32", "int8"]),
                 ("--threads", ["1", "0", "-3"]), ("--budget-s", ["60", "0", "nan", "1e9"]))
        flags = ["--force", "--no-footprint"]
    for option, pool in pools:
        if draw(st.integers(0, 2)) == 0:
            args += [option, draw(st.sampled_from(pool))]
    return args + draw(st.lists(st.sampled_from(flags), unique=True, max_size=2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_measuring_commands_check_arguments_before_measuring(tmp_path, monkeypatch, data):
    from coreplan import measure_commands

    def stand_in(*args, **kwargs):
        raise KeyboardInterrupt  # "measured until interrupted": the CLI's own path for it

    monkeypatch.setattr(measure_commands, "_run_sweep", lambda cases, results, *a: results.close())
    monkeypatch.setattr(measure_commands, "_profile_with_progress", stand_in)
    argv = data.draw(measure_command_lines(tmp_path))
    answers_or_says_one_line(argv, (0, 2, 130))


# --------------------------------------------------------------------------- files through commands
# the same fragments, written to a file that a command reads: serve's trace and quality table, a
# device file under plan and simulate, measurements under calibrate (validate CSV, a documents'
# table, a timm file); the readers of the published tables are fuzzed alike.
DOC_FRAGMENTS = ["model,img_size,batch,precision,runtime,gpu,value,unit,notes\n",
                 "google/vit-base-patch16-224,224,1,fp32,pytorch_eager,V100,10.5,ms_per_batch,x\n",
                 "vit_base_patch16_224,224,unstated,fp32,pytorch_eager,V100,300,img_per_s,x\n",
                 "vit_base_patch16_224,224,4,fp32,torch_compile_default,V100,-3,img_per_s,x\n",
                 "vit_base_patch16_224,224,4,fp32,pytorch_eager,A999,3,furlongs,x\n",
                 "model,train_samples_per_sec,train_step_time,train_batch_size,train_img_size\n",
                 "vit_base_patch16_224,390.86,490.391,192,224\n", "vit_base_patch16_224,x,0,0,7\n"]
DEVICE_FRAGMENTS = ["[devices.x]\n", "kind = 'gpu'\n", "source = 'x'\n",
                    "peak_flops_per_s = { fp32 = 1e12, bf16 = 1e14 }\n",
                    "peak_flops_per_s = { fp32 = 67 }\n", "memory_bandwidth_bytes_per_s = 1e12\n",
                    "memory_bandwidth_bytes_per_s = 3.35\n", "memory_capacity_bytes = 8e10\n",
                    "sm_count = 0\n", "board_power_w = 1e-3\n", "boost_clock_hz = nan\n",
                    "host_launch_s = { eager = 1e-5 }\n", "host_launch_s = { jit = 1 }\n",
                    "efficiency = { gemm = 9 }\n"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_files_through_commands_answer_or_say_one_line(tmp_path, data):
    surface = data.draw(st.sampled_from(["trace", "quality", "device", "docs", "timm-train",
                                         "timm"]))
    pool = {"device": DEVICE_FRAGMENTS, "docs": DOC_FRAGMENTS,
            "timm-train": DOC_FRAGMENTS}.get(surface, FRAGMENTS + DOC_FRAGMENTS)
    text = "".join(data.draw(st.lists(st.sampled_from(pool), max_size=8)))
    name = {"timm": "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
            "timm-train": "benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv",
            "device": "d.toml"}.get(surface, "f.csv")
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape") + data.draw(st.binary(max_size=8)))
    serve = ["serve", "veca-small", "--device", "l4", "--resolution", "224", "--slo-ms", "2000",
             "--duration-s", "5"]
    if surface == "trace":
        argv = serve + ["--arrivals", str(path)]
    elif surface == "quality":
        argv = serve + ["--rate", "5", "--quality", str(path)]
    elif surface == "device":
        argv = [data.draw(st.sampled_from(["plan", "simulate"])), "veca-small", "--device", "x",
                "--device-file", str(path), "--resolution", "224"]
    elif surface == "timm-train":
        from costmodel.errors import CoreplanError
        from costmodel.timm_results import read_timm_train

        try:
            read_timm_train(path)
        except CoreplanError as err:
            assert str(err) and "\n" not in str(err).strip()
        return
    else:
        argv = ["calibrate", "--measurements", str(path)]
    answers_or_says_one_line(argv, (0, 1, 2, 3))
