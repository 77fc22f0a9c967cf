"""The process footprint model: terms by hand, a fake allocator recovered, files, planner, CLI."""

import dataclasses
import json

import pytest

from costmodel.config import configure
from costmodel.errors import CoreplanError
from costmodel.memory import inference_memory
from costmodel.spec import get_model
from planners.devices import get_device, load_devices
from planners.footprint import FootprintModel, footprint
from planners.footprint_fit import Observation, fit_model
from planners.planner import plan

TOY = FootprintModel(baseline_bytes={"torch": 200e6, "transformers": 230e6}, weights_factor=1.1,
                     build_bytes={"torch": 5e6, "transformers": 90e6}, activation_factor=1.7,
                     pack_factor=0.5, workspace_bytes=15e6, source="toy")


def test_footprint_terms_by_hand():
    c = configure(get_model("veca-small"), 256, cores=8, batch=2)
    weights = 87_698_564                     # veca-small's parameter bytes (tests/test_derivations)
    inputs = 2 * 3 * 256 * 256 * 4           # the image batch, fp32
    fc1 = 384 * 2 * 1024 * 4                 # the largest weight: SwiGLU fc1 D -> 2F
    activations = inference_memory(c).activation_peak_bytes
    f = footprint(c, TOY, "torch")
    assert f.terms == {"runtime_baseline": 200_000_000, "weights": round(1.1 * weights),
                       "build": 5_000_000, "inputs": inputs,
                       "activations": round(1.7 * activations), "gemm_packing": round(0.5 * fc1),
                       "workspace": 15_000_000}
    assert f.total_bytes == sum(f.terms.values())
    with pytest.raises(CoreplanError, match="transformers has no veca-small"):
        footprint(c, TOY, "transformers")  # core models run in plain torch
    dense = configure(get_model("dinov3-small"), 256, batch=2)
    hf, plain = footprint(dense, TOY, "transformers"), footprint(dense, TOY, "torch")
    assert hf.total_bytes - plain.total_bytes == 30_000_000 + 85_000_000  # baseline and build


def test_tensors_above_the_mapping_threshold_count_once_by_hand():
    """veca-small, 256 px, C=8, batch 2 (S = 264 tokens, D = 384, F = 1024, 6 heads of 64, RoPE
    on every token, separate q, k, v, SwiGLU), fp32: X = 2*264*384*4 = 811,008 B per residual
    tensor, Fx = 2*264*1024*4 = 2,162,688, the cos and sin tables 2*264*64*4 = 135,168 each.
    With tensors above 2 MB mapped apart: the projections' stage is 9 X and the two tables, all
    kept (7,569,408 B); the MLP's is 3 X and the tables kept (2,703,360) and fc1's 2 Fx, silu's
    Fx and the product's Fx mapped (8,650,752). At x1.7 the MLP's is larger (13,246,464 against
    12,867,994); at x3 the projections' (22,708,224 against 16,760,832)."""
    c = configure(get_model("veca-small"), 256, cores=8, batch=2)
    mapped = dataclasses.replace(TOY, mapped_above_bytes=2e6)
    f = footprint(c, mapped)
    assert f.terms["activations"] == round(1.7 * 2_703_360)
    assert f.terms["activations_mapped"] == 8_650_752
    assert f.total_bytes == sum(f.terms.values())
    plain = footprint(c, TOY).terms
    assert {k: v for k, v in f.terms.items() if not k.startswith("activations")} == {
        k: v for k, v in plain.items() if k != "activations"}
    f = footprint(c, dataclasses.replace(mapped, activation_factor=3.0))
    assert f.terms["activations"] == 22_708_224 and f.terms["activations_mapped"] == 0
    assert "activations_mapped" not in plain  # no threshold: the term is not there


def test_a_fake_allocator_with_known_terms_is_recovered():
    """Measurements made up from known terms (each stage as reference/footprint.py records it):
    the fit returns those terms."""
    rows = []
    for name, res, batch, framework in (("veca-small", 256, 1, "torch"), ("dinov2-base", 448, 4, "torch"),
                                        ("dinov3-small", 512, 2, "torch"), ("veca-base", 384, 8, "torch"),
                                        ("dinov2-small", 224, 1, "transformers")):
        c = configure(get_model(name), res, batch=batch)
        f = footprint(c, TOY, framework).terms
        built = f["runtime_baseline"] + f["weights"] + f["build"] + f["inputs"]
        rows.append(Observation(c, framework, f["runtime_baseline"], built,
                                built + f["activations"] + f["gemm_packing"] + f["workspace"]))
    got = fit_model(rows)
    assert got.baseline_bytes == TOY.baseline_bytes
    assert got.weights_factor == pytest.approx(1.1, rel=1e-6)
    assert got.build_bytes["torch"] == pytest.approx(5e6, rel=1e-4)
    assert got.build_bytes["transformers"] == pytest.approx(90e6, rel=1e-4)
    assert got.activation_factor == pytest.approx(1.7, rel=1e-6)
    assert got.pack_factor == pytest.approx(0.5, rel=1e-4)
    assert got.workspace_bytes == pytest.approx(15e6, rel=1e-4)


def test_a_fake_allocator_that_maps_large_tensors_is_recovered():
    """As above, with tensors above 8 MB mapped apart (processes with none, some and nearly all
    of their activations above it): the fit, given the threshold, returns the terms."""
    known = dataclasses.replace(TOY, mapped_above_bytes=8e6)
    rows = []
    for name, res, batch, cores, framework in (
            ("veca-small", 256, 1, 8, "torch"), ("dinov2-base", 448, 4, None, "torch"),
            ("dinov3-small", 512, 2, None, "torch"), ("veca-base", 384, 8, 64, "torch"),
            ("veca-small", 1024, 8, 64, "torch"), ("dinov2-small", 224, 1, None, "transformers")):
        c = configure(get_model(name), res, batch=batch, cores=cores)
        f = footprint(c, known, framework).terms
        built = f["runtime_baseline"] + f["weights"] + f["build"] + f["inputs"]
        rows.append(Observation(c, framework, f["runtime_baseline"], built,
                                built + f["activations"] + f["activations_mapped"]
                                + f["gemm_packing"] + f["workspace"]))
    assert sum(footprint(o.config, known).terms["activations_mapped"] > 0 for o in rows) >= 3
    got = fit_model(rows, mapped_above=8e6)
    assert got.mapped_above_bytes == 8e6
    assert got.activation_factor == pytest.approx(1.7, rel=1e-5)
    assert got.pack_factor == pytest.approx(0.5, rel=1e-3)
    assert got.workspace_bytes == pytest.approx(15e6, rel=1e-3)


def test_the_mapping_threshold_goes_through_a_device_file(device_file):
    import tomllib

    from planners.footprint import footprint_toml, model_from_table

    model = dataclasses.replace(TOY, mapped_above_bytes=33554432)
    lines = footprint_toml("here", model)
    assert "mapped_above_bytes = 33554432" in lines
    table = tomllib.loads("\n".join(lines))["devices"]["here"]["footprint"]
    assert model_from_table("x", table) == model
    assert not any("mapped_above" in line for line in footprint_toml("here", TOY))
    with pytest.raises(CoreplanError, match="footprint.mapped_above_bytes: expected a number"):
        load_devices(device_file("footprint = { mapped_above_bytes = -1 }\n"))


@pytest.mark.parametrize("body,message", [
    ("footprint = { speed = 1 }\n", "footprint.speed: unknown field"),
    ("footprint = { activation_factor = -1 }\n", "footprint.activation_factor: expected a number"),
    ("footprint = { baseline_bytes = { jax = 1 } }\n", "footprint.baseline_bytes: expected a table"),
])
def test_bad_footprint_tables_are_one_clear_error(device_file, body, message):
    with pytest.raises(CoreplanError, match=message.replace("(", r"\(")):
        load_devices(device_file(body))


def test_the_planner_checks_memory_against_the_footprint():
    device = dataclasses.replace(get_device("cpu-epyc-2core"), footprint=TOY)
    p = plan(get_model("veca-small"), device, resolution=256, batch=2, dtype="fp32",
             cores_allowed=[8])
    (candidate,) = p.candidates
    c = configure(get_model("veca-small"), 256, cores=8, batch=2)
    assert candidate.memory_bytes == footprint(c, TOY).total_bytes
    assert candidate.tensor_memory_bytes == inference_memory(c).total_bytes
    assert candidate.usage["capacity"] == pytest.approx(candidate.memory_bytes / 24e9)


def test_memory_command_reports_the_footprint(cli):
    code, out, err = cli("memory", "dinov2-small", "--resolution", "518", "--batch", "4",
                         "--framework", "transformers", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["footprint_bytes"] == sum(doc["footprint_terms"].values())
    assert doc["footprint_device"] == "cpu-epyc-2core" and doc["footprint_framework"] == "transformers"
    assert doc["total_bytes"] == doc["weights_bytes"] + doc["activation_peak_bytes"]  # unchanged
    assert doc["footprint_bytes"] > 2 * doc["total_bytes"]
    code, _, err = cli("memory", "dinov2-small", "--resolution", "518", "--framework", "jax")
    assert code == 2 and "unknown framework 'jax'" in err
    # the CPU's terms split the activations at glibc's threshold, and the caption says how
    code, out, err = cli("memory", "dinov2-small", "--resolution", "1022", "--batch", "8")
    assert code == 0, err
    assert "footprint/activations_mapped" in out and "up to 32 MiB" in " ".join(out.split())


def test_the_catalog_cpu_footprint_is_the_fit_of_the_committed_data():
    from pathlib import Path

    from planners.footprint_fit import FIT_KEYS, read_observations

    path = Path(__file__).resolve().parents[1] / "data/measurements/footprint-cpu-epyc-2core-2026-12-01b.csv"
    rows = read_observations(path)
    key = lambda row: (row["source"], row["model"], row["resolution"], row["batch"])  # noqa: E731
    fitted = fit_model([o for row, o in rows if key(row) in FIT_KEYS], mapped_above=32 * 2**20)
    shipped = get_device("cpu-epyc-2core").footprint
    assert len(rows) == 39 and sum(key(r) in FIT_KEYS for r, _ in rows) == 9
    assert shipped.mapped_above_bytes == 33_554_432  # glibc: 4 * 1024 * 1024 * sizeof(long)
    for name in ("weights_factor", "activation_factor", "pack_factor", "workspace_bytes"):
        assert getattr(shipped, name) == pytest.approx(getattr(fitted, name), rel=1e-5)
    for name in ("baseline_bytes", "build_bytes"):
        for framework in ("torch", "transformers"):
            assert getattr(shipped, name)[framework] == pytest.approx(
                getattr(fitted, name)[framework], rel=1e-5)


def test_held_out_fits_one_file_and_holds_out_another(tmp_path):
    """The terms fitted on the FIT rows of one day's footprint file predict every other row of
    another file (here validate's: 99 measured footprints, 14 of them FIT configurations); a
    file without all of the FIT rows cannot be fitted on, said in one line."""
    import csv
    from pathlib import Path

    from planners.footprint_fit import FIT_KEYS, held_out

    data = Path(__file__).resolve().parents[1] / "data/measurements"
    footprints, validated = (data / "footprint-cpu-epyc-2core-2026-12-01b.csv",
                             data / "cpu-epyc-2core-2026-11-24.csv")
    model, fitted, rows = held_out(validated, footprints)
    assert fitted == 9 and len(rows) == 85
    assert model == held_out(footprints)[0]  # the same nine rows, the same terms
    with pytest.raises(CoreplanError, match="has 2 of the 9 rows the terms are fitted on"):
        held_out(footprints, data / "footprint-cpu-epyc-2core-2026-11-24.csv")
    with open(footprints, newline="") as f:  # the footprint file without its FIT rows
        table = list(csv.DictReader(f))
    source = lambda r: "hf" if r["framework"] == "transformers" else "reference"  # noqa: E731
    others = [r for r in table if (source(r), r["model"], r["resolution"], r["batch"])
              not in FIT_KEYS]
    assert 0 < len(others) < len(table)
    bare = tmp_path / "no-fit-rows.csv"
    with open(bare, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(others)
    with pytest.raises(CoreplanError, match="has 0 of the 9 rows the terms are fitted on"):
        held_out(footprints, bare)


def test_two_runs_of_the_same_processes_are_compared_measured_with_measured(tmp_path):
    """benchmarks/footprint.py --report B --against A: three processes at 100, 200 and 300 MB,
    then 105, 180 and 360 MB (+5%, -10%, +20%): two within ±10%, mean |change| 11.7%; a file
    sharing none is refused in one line."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with open(root / "data/measurements/footprint-cpu-epyc-2core-2026-12-01b.csv", newline="") as f:
        table = list(csv.DictReader(f))[:4]

    def write(name, peaks, rows):
        path = tmp_path / name
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            for row, peak in zip(rows, peaks):
                writer.writerow({**row, "mem_footprint_bytes_measured": str(int(peak))})
        return path

    first = write("a.csv", (100e6, 200e6, 300e6), table[:3])
    second = write("b.csv", (105e6, 180e6, 360e6), table[:3])
    other = write("c.csv", (100e6,), table[3:])
    run = lambda *a: subprocess.run([sys.executable, "benchmarks/footprint.py", *map(str, a)],  # noqa: E731
                                    cwd=root, capture_output=True, text=True)
    proc = run("--report", second, "--against", first)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == ("measured twice: 3; within ±10% of the first: 2 "
                                            "(67%); mean |change| 11.7%; max 20.0%")
    assert "+5.0%" in proc.stdout and "-10.0%" in proc.stdout and "+20.0%" in proc.stdout
    proc = run("--report", other, "--against", first)
    assert proc.returncode != 0 and "share no configuration" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_footprint_across_profiles_gives_each_process_its_median_and_misses(tmp_path):
    """benchmarks/footprint.py --report F --across P P2: with the same profile's terms twice,
    each held-out process's median is its error under that profile (as --report --device prints
    it) and it misses under both or neither; files without footprint terms are refused in one
    line, and --across without --report too."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    data = root / "data/measurements/footprint-cpu-epyc-2core-2026-12-01b.csv"
    profile = root / "data/profiles/cpu-epyc-2core-2026-12-01-per-c.toml"
    twice = tmp_path / "again.toml"
    shutil.copy(profile, twice)
    run = lambda *a: subprocess.run([sys.executable, "benchmarks/footprint.py", *map(str, a)],  # noqa: E731
                                    cwd=root, capture_output=True, text=True)
    sys.path.insert(0, str(root / "benchmarks"))
    import footprint as bench

    from planners.devices import get_device

    single = bench.report(data, get_device("epyc-2core-2026-12-01-per-c", profile))
    errors = {}
    for line in single.splitlines()[2:-1]:
        source, rest = line.split(None, 1)
        label = rest[:36].strip()
        errors[f"{source} {label}"] = line.split()[-1]
    both = bench.across(data, [str(profile), str(twice)]).splitlines()
    rows = both[2:-1]
    assert len(rows) == len(errors) == 30
    for line in rows:
        label, median, misses = line[:46].strip(), line.split()[-4], line.split()[-3]
        assert median == errors[label]
        assert misses == ("2" if abs(float(median.rstrip("%"))) > 10 else "0")
    assert both[-1].startswith("profiles with 90% or more within ±10%: 0 of 2")
    bare = tmp_path / "bare.toml"
    bare.write_text('[devices.bare]\nkind = "cpu"\npeak_flops_per_s = { fp32 = 1e11 }\n'
                    'memory_bandwidth_bytes_per_s = 2e10\nmemory_capacity_bytes = 1e10\n'
                    'source = "made up"\n')
    proc = run("--report", data, "--across", bare)
    assert proc.returncode == 2 and "none of the 1 file(s) has footprint terms of its own" in proc.stderr
    proc = run("--across", profile)
    assert proc.returncode == 2 and "--across go with --report" in proc.stderr


def test_several_runs_of_the_same_processes_are_held_at_their_median(tmp_path):
    """planners.footprint_fit.read_runs: three files, process A at 100, 120 and 110 MB (median
    110, spread 20%), process B at 200 and 190 MB (only in two files: median 195, spread 5.3%);
    each stage's median apart. The report's lines: predicted A 98 MB and B 200 MB are -10.9% and
    +2.6% of the medians; each run alone: 2 of 2 (A -2%, B 0), 0 of 1 (A's 120: -18.3%), 1 of 2
    (A -10.9%, B +5.3%); A moved by more than 10%. --against takes one --report file, said in
    one line."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    from planners.footprint_fit import HeldOut, read_runs

    root = Path(__file__).resolve().parents[1]
    with open(root / "data/measurements/footprint-cpu-epyc-2core-2026-12-01b.csv", newline="") as f:
        table = list(csv.DictReader(f))[:2]

    def write(name, rows):
        path = tmp_path / name
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            for row, (base, peak) in rows:
                writer.writerow({**row, "mem_baseline_bytes_measured": str(int(base)),
                                 "mem_footprint_bytes_measured": str(int(peak))})
        return path

    a, b = table
    files = [write("1.csv", [(a, (10e6, 100e6)), (b, (20e6, 200e6))]),
             write("2.csv", [(a, (30e6, 120e6))]),
             write("3.csv", [(a, (20e6, 110e6)), (b, (40e6, 190e6))])]
    runs = read_runs(files)
    assert [o.forward_bytes for _, o in runs] == [110e6, 195e6]
    assert [o.baseline_bytes for _, o in runs] == [20e6, 30e6]
    assert [label["peaks"] for label, _ in runs] == [(100e6, 120e6, 110e6), (200e6, None, 190e6)]
    assert [label["model"] for label, _ in runs] == [a["model"], b["model"]]

    sys.path.insert(0, str(root / "benchmarks"))
    import footprint as bench

    rows = [HeldOut(label, o.forward_bytes, predicted, 0)
            for (label, o), predicted in zip(runs, (98e6, 200e6))]
    assert [round(r.error, 4) for r in rows] == [-0.1091, 0.0256]
    assert [round(r.spread, 4) for r in rows] == [0.2, 0.0526]
    lines = bench._runs_lines(files, rows)
    assert lines[0] == "run 1 alone (1.csv): within ±10%: 2 of 2 (100%); MAPE 1.0%"
    assert lines[1] == "run 2 alone (2.csv): within ±10%: 0 of 1 (0%); MAPE 18.3%"
    assert lines[2] == "run 3 alone (3.csv): within ±10%: 1 of 2 (50%); MAPE 8.1%"
    assert lines[3].startswith("processes whose peak moved by more than 10% between runs: 1 of 2: ")
    assert lines[3].endswith(" 20%")
    proc = subprocess.run([sys.executable, "benchmarks/footprint.py", "--report", *map(str, files),
                           "--against", str(files[0])], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 2 and "--against compares two files" in proc.stderr
    assert "Traceback" not in proc.stderr
