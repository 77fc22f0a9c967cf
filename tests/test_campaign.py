"""The GPU campaign rehearsed on a CPU: every stage through the same code at tiny sizes."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_rehearsal_runs_every_stage_and_writes_its_files(tmp_path):
    """About 30 s on 2 idle cores; the budget is a cap (each stage ends when its work does), set
    with room for a busy test machine: at 120 s, validate's share (48 s) ran out once while the
    suite's other worker was busy (validate took 44 s here under load), and profile was skipped."""
    out = tmp_path / "campaign"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_campaign.py", "--out", str(out),
                           "--device", "cpu", "--rehearse", "--budget-s", "240"], cwd=ROOT,
                          capture_output=True, text=True, timeout=400,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = sorted(p.name for p in out.iterdir())
    said = (out / "summary.txt").read_text() if (out / "summary.txt").exists() else proc.stderr
    assert names == ["block.csv", "facts.json", "footprint.json", "profile.toml", "summary.txt",
                     "third_party.csv", "validate.csv"], said
    assert len(names) <= 8 and all(p.stat().st_size < 16 * 2**20 for p in out.iterdir())
    summary = (out / "summary.txt").read_text()
    for line in summary.splitlines()[1:]:  # stage, seconds, result
        assert not line.split(None, 2)[2].startswith(("failed", "skipped", "interrupted")), line
    facts = json.loads((out / "facts.json").read_text())
    assert facts["gemm"]["median_flop_per_s"] > 0 and facts["copy"]["bytes_moved"] > 0

    from costmodel.measurements import read_measurements
    from planners.devices import load_devices

    rows = read_measurements(out / "validate.csv")
    assert rows and all(r.schema_version == 6 for r in rows)
    countable = [r for r in rows if r.flops_match != "uncountable"]
    assert countable and all(r.flops_match == "exact" for r in countable)  # FlopCounterMode
    assert {r.impl for r in rows} == {"split", "masked", "flex", "dense"}
    assert load_devices(out / "profile.toml")["rehearsal-profiled"].profile is not None
    third = read_measurements(out / "third_party.csv")
    assert {r.framework for r in third} == {"timm", "transformers"}
    assert all(r.status == "ok" for r in third if r.framework == "transformers")


def test_the_first_rows_span_every_dimension():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_campaign import GPU, validate_cases

    cases = validate_cases("cuda", GPU.validate)
    first = cases[:24]
    assert {c.spec.name for c in first} >= set(GPU.validate["core"] + GPU.validate["dense"])
    assert {c.batch for c in first} == {1, 8, 64}
    assert {c.core_tokens for c in first if c.core_tokens} == {8, 32, 64}
    assert {c.impl for c in first} == {"split", "masked", "flex", "dense"}
    assert {c.resolution for c in first} >= {224, 512, 768, 1024}
    assert len({c.key() for c in cases}) == len(cases)  # no row measured twice
