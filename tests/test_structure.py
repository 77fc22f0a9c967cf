"""The code's structure: the measurement record, the CLI's import tree, library error language."""

import ast
import csv
from pathlib import Path

import pytest

from costmodel.errors import ArgumentError, CoreplanError
from costmodel.measurements import (NAMES, SCHEMA_VERSION, Measurement, MeasurementWriter,
                                    read_measurements)
from costmodel.spec import get_model
from planners.devices import get_device
from planners.planner import Budgets, plan

ROOT = Path(__file__).resolve().parents[1]
CPU_CSV = ROOT / "data/measurements/cpu-epyc-2core-2026-11-24.csv"


# --------------------------------------------------------------------------- measurement record
def test_the_committed_file_reads_as_typed_records():
    from costmodel.measurements import latest

    rows = read_measurements(CPU_CSV)
    assert len(rows) == 99 and all(r.schema_version == 5 for r in rows)
    assert len(latest(rows)) == 60 and all(r.timed for r in latest(rows))  # busy rows re-measured
    first = rows[0]  # line 2 of the file, written out here: timed on a busy machine
    assert (first.model, first.resolution, first.core_tokens, first.impl, first.batch) == \
        ("veca-small", 256, 8, "split", 1)
    assert first.flops_predicted == 11_594_895_360 and first.time_ms_median == 104.6024
    assert first.mem_weights_bytes == 87_698_564  # the reference model's parameters, fp32
    assert first.probe_ratio == 1.1191 and first.busy and not first.timed
    again = [r for r in rows if r.key() == first.key()][-1]  # the quiet re-measurement
    assert again.timed and again.line > first.line


def test_a_version_1_file_still_reads(tmp_path):
    """Files written before schema_version and the probe columns existed."""
    path = tmp_path / "v1.csv"
    path.write_text("model,family,resolution,patch_tokens,core_tokens,impl,batch,dtype,device,"
                    "device_name,torch_version,threads,flops_predicted,flops_flopcounter,"
                    "macs_predicted,macs_fvcore,flops_match,time_ms_median,time_ms_iqr,time_ms_min,"
                    "repeats,mem_weights_bytes,mem_activation_peak_bytes_measured,"
                    "mem_activation_peak_bytes_predicted,status,note\n"
                    "veca-small,veca,256,256,8,split,1,fp32,cpu,AMD EPYC x2,2.13.0+cpu,2,"
                    "11439181824,11439181824,5732262912,5732262912,exact,142.5811,4.3439,129.0106,8,"
                    "86485000,5679168,5677056,ok,\n")
    (row,) = read_measurements(path)
    assert row.schema_version == 1 and row.time_ms_median == 142.5811 and row.probe_ms is None


def test_write_then_read_round_trips_and_resume_appends(tmp_path):
    path = tmp_path / "m.csv"
    one = Measurement("veca-small", 64, 8, "split", 1, "fp32", "ok", device="cpu",
                      time_ms_median=12.5, note="a, quoted \"note\"")
    writer = MeasurementWriter(path, resume=False)
    writer.write(one)
    writer.close()
    with open(path, newline="") as handle:
        assert next(csv.reader(handle)) == list(NAMES) and NAMES[-1] == "schema_version"
    again = MeasurementWriter(path, resume=True)
    assert again.done == {one.key()}
    two = Measurement("dinov3-small", 64, 0, "dense", 2, "fp32", "oom", device="cpu")
    again.write(two)
    again.close()
    back = read_measurements(path)
    assert [r.model for r in back] == ["veca-small", "dinov3-small"]
    assert back[0].note == one.note and back[0].time_ms_median == 12.5
    assert back[1].time_ms_median is None and back[1].schema_version == SCHEMA_VERSION
    with pytest.raises(ArgumentError, match="resume is needed"):
        MeasurementWriter(path, resume=False)


@pytest.mark.parametrize("text,message", [
    ("model,resolution\nx,1\n", ":1: not a measurement file: missing column(s) core_tokens"),
    ("model,resolution,core_tokens,impl,batch,dtype,status,speed\n", ":1: unknown column 'speed'"),
    ("model,resolution,core_tokens,impl,batch,dtype,status\nv,2x6,8,split,1,fp32,ok\n",
     ":2: field resolution: expected int, got '2x6'"),
    ("model,resolution,core_tokens,impl,batch,dtype,status,time_ms_median\n"
     "v,64,8,split,1,fp32,ok,nan\n", ":2: field time_ms_median: expected a finite"),
    ("model,resolution,core_tokens,impl,batch,dtype,status\nv,64,8,split,1\n",
     ":2: wrong number of fields"),
    ("model,resolution,core_tokens,impl,batch,dtype,status,schema_version\n"
     "v,64,8,split,1,fp32,ok,9\n", ":2: schema version 9 is newer"),
])
def test_a_malformed_measurement_file_names_file_line_and_field(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CoreplanError) as err:
        read_measurements(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_binary_and_directory_measurement_files_are_one_error(tmp_path):
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(CoreplanError, match=r"not a text \(UTF-8\) file"):
        read_measurements(binary)
    with pytest.raises(CoreplanError, match="is a directory"):
        read_measurements(tmp_path)


def test_every_reader_uses_the_record_module():
    """Nothing outside costmodel/measurements.py parses the measurement CSV by hand."""
    for path in [*ROOT.glob("planners/*.py"), *ROOT.glob("coreplan/*.py"),
                 *ROOT.glob("reference/*.py")]:
        text = path.read_text()
        assert "DictReader" not in text and "time_ms_median\"]" not in text, path.name


# --------------------------------------------------------------------------- the CLI's imports
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_cli_modules_form_a_tree():
    commands = [p for p in ROOT.glob("coreplan/*_commands.py")]
    # cli.py assembles every command module, and only those
    assert {f"coreplan.{p.stem}" for p in commands} == {
        m for m in _imports(ROOT / "coreplan/cli.py") if m.endswith("_commands")}
    assert len(commands) == 5
    for path in commands:
        assert "coreplan.cli" not in _imports(path), path.name
        assert not {m for m in _imports(path) if m.endswith("_commands")}, path.name
    app = _imports(ROOT / "coreplan/app.py")
    assert not {m for m in app if "commands" in m or m == "coreplan.cli"}


# --------------------------------------------------------------------------- error language
@pytest.mark.parametrize("kwargs,argument", [
    (dict(resolution=512, demand_img_per_s=-1.0), "demand_img_per_s"),
    (dict(resolution=512, cores_allowed=[12]), "cores_allowed"),
    (dict(resolution=512, cores=8), "cores"),
    (dict(resolution=None), "resolution"),
    (dict(resolution=512, batch=0), "batch"),
])
def test_library_errors_name_python_arguments_not_flags(kwargs, argument):
    with pytest.raises(ArgumentError) as err:
        plan(get_model("veca-base"), get_device("l4"), **kwargs)
    assert err.value.argument == argument and "--" not in str(err.value)
    assert str(err.value).startswith(argument)


def test_budget_errors_name_the_budget():
    with pytest.raises(ArgumentError) as err:
        Budgets(latency_ms=-3)
    assert err.value.argument == "latency_ms" and "--" not in str(err.value)


def test_the_cli_translates_arguments_into_flags(cli):
    code, _, err = cli("plan", "veca-base", "--device", "l4", "--resolution", "512",
                       "--demand", "-1")
    assert code == 2 and "--demand must be a positive number" in err
    code, _, err = cli("plan", "veca-base", "--device", "l4", "--resolution", "512",
                       "--cores", "8")
    assert code == 2 and err.startswith("coreplan: error: --cores fixes C")


def test_nearest_feasible_uses_the_plans_own_search_limit():
    # veca-base on l4 at 30 ms: the nearest feasible resolution at C=8 is below 512 px; with a
    # search limit of 256 px the answer must stay within it (no hidden 4096 px cap)
    from planners.planner import nearest_feasible

    p = plan(get_model("veca-base"), get_device("l4"), resolution=1024, batch=8,
             budgets=Budgets(latency_ms=30), max_resolution=256)
    assert p.chosen is None
    assert "256 px at batch 8" in nearest_feasible(p)
    wide = plan(get_model("veca-base"), get_device("l4"), resolution=1024, batch=8,
                budgets=Budgets(latency_ms=30))
    side = int(nearest_feasible(wide).split(": ")[1].split(" px")[0])
    assert 256 < side < 1024 and side % 16 == 0


# --------------------------------------------------------------------------- one declaration
def test_every_flag_the_cli_mentions_is_one_it_declares():
    """A flag is made in one place (coreplan.app.option): every --flag written anywhere in the
    CLI's code, help or messages is a declared option's (or its --no- form), so renaming an option
    cannot leave a stale flag behind."""
    import re

    import coreplan.cli  # noqa: F401  (declares every command's options)
    from coreplan.app import DECLARED, flag

    known = {flag(name) for name in DECLARED} | {"--help"}
    known |= {"--no-" + f[2:] for f in known}
    for path in ROOT.glob("coreplan/*.py"):
        for found in re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z](?![\w{-])", path.read_text()):
            assert found in known, f"{path.name}: {found} is not a declared option"


def test_library_arguments_become_their_flags():
    from coreplan.app import flag_message

    assert flag_message(ArgumentError("throughput_img_per_s", "must be positive")) == \
        "--throughput must be positive"
    assert flag_message(ArgumentError("max_batch", "is 0")) == "--max-batch is 0"
    assert flag_message(ArgumentError("configs", "must share one model")) == \
        "configs must share one model"  # not an option of any command: said as the library says


def test_no_consumer_branches_on_an_op_or_an_attention_name():
    """Op and attention knowledge lives in their registry records (costmodel/ops.py,
    costmodel/attention.py): no other module compares an op or an implementation by name."""
    import re

    import costmodel.ops  # noqa: F401
    from costmodel.attention import ATTENTION
    from costmodel.registry import REGISTRY

    names = "|".join(sorted({*REGISTRY, *ATTENTION}, key=len, reverse=True))
    branch = re.compile(rf"""\b(op|impl)\s*(==|!=|in|not in)\s*\(?["']({names})["']""")
    homes = {"costmodel/ops.py", "costmodel/attention.py"}
    for path in [*ROOT.glob("costmodel/*.py"), *ROOT.glob("planners/*.py"),
                 *ROOT.glob("reference/*.py"), *ROOT.glob("coreplan/*.py")]:
        if str(path.relative_to(ROOT)) in homes:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not branch.search(line), f"{path.name}:{number}: {line.strip()}"
