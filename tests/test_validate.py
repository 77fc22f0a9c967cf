"""`coreplan validate` on a reduced sweep, its CSV contract, resume, and the training pieces."""

import csv
import time

import pytest
import torch

from coreplan.cli import main
from costmodel.spec import get_model
from reference.models import build_model
from reference.timing import Timing, combine_rounds, interleaved, time_call
from reference.training import BudgetSampler, training_step
from costmodel.measurements import NAMES, read_measurements
from reference.validate import memory_error

REDUCED = ["validate", "--quick", "--models", "veca-small,dinov3-small", "--cores", "8",
           "--batch", "1", "--min-time", "0.02"]


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def reduced_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("validate") / "results.csv"
    assert main(REDUCED + ["--out", str(path)]) == 0
    return path


def test_reduced_validate_rows_are_exact_and_within_memory_goal(reduced_csv):
    rows = _rows(reduced_csv)
    assert list(rows[0]) == list(NAMES)
    records = {r.impl: r for r in read_measurements(reduced_csv)}
    by_impl = {r["impl"]: r for r in rows}
    assert set(by_impl) == {"split", "masked", "flex", "dense"}
    for impl in ("split", "masked", "dense"):
        r = by_impl[impl]
        # busy: timed while other tests ran (the probe says so); the row is still complete
        assert r["status"] in ("ok", "busy") and r["flops_match"] == "exact"
        assert r["flops_flopcounter"] == r["flops_predicted"]
        assert r["macs_fvcore"] == r["macs_predicted"]
        assert float(r["time_ms_median"]) > 0 and float(r["time_ms_iqr"]) >= 0
        assert int(r["repeats"]) >= 5 and float(r["probe_ratio"]) > 0
        assert abs(memory_error(records[impl])) <= 0.10
    flex = by_impl["flex"]
    assert flex["flops_match"] == "uncountable" and flex["flops_flopcounter"] == ""
    assert "cannot be counted" in flex["note"] and float(flex["time_ms_median"]) > 0
    # 64 px at patch 16 is a 4x4 grid: N = 16
    assert by_impl["split"]["patch_tokens"] == "16" and by_impl["split"]["resolution"] == "64"


def test_resume_skips_finished_rows_and_refuses_to_overwrite(reduced_csv, capsys):
    before = reduced_csv.read_text()
    assert main(REDUCED + ["--out", str(reduced_csv), "--resume"]) == 0
    assert reduced_csv.read_text() == before
    assert main(REDUCED + ["--out", str(reduced_csv)]) == 2
    assert "--resume is needed to continue" in capsys.readouterr().err


def test_resume_names_the_bad_line_of_a_malformed_csv(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(NAMES) + "\nveca-small,veca,64\n")
    assert main(REDUCED + ["--no-time", "--out", str(bad), "--resume"]) == 2
    assert f"{bad}:2: wrong number of fields" in capsys.readouterr().err


def test_flop_mismatch_exits_1(tmp_path, monkeypatch):
    import reference.counting as counting

    real = counting.count_forward

    def off_by_one(config):
        counted = real(config)
        return {**counted, "flops": counted["flops"] + 2}

    monkeypatch.setattr(counting, "count_forward", off_by_one)
    out = tmp_path / "r.csv"
    assert main(["validate", "--models", "dinov3-small", "--resolutions", "64", "--batch", "1",
                 "--no-time", "--out", str(out)]) == 1
    assert _rows(out)[0]["flops_match"] == "MISMATCH"


def test_time_call_measures_a_known_sleep():
    t = time_call(lambda: time.sleep(0.01), min_run_time_s=0.05, min_repeats=3, threads=1)
    assert t.repeats >= 3 and t.threads == 1 and t.probe_ratio is None
    assert 10.0 <= t.median_ms < 30.0 and t.min_ms >= 10.0 and t.iqr_ms >= 0


def test_budget_sampler_is_seeded_and_follows_the_weights():
    spec = get_model("veca-small")  # budgets 8..64, weights 1,1,2,2,3,3,4,4 (sum 20)
    a, b = BudgetSampler.from_spec(spec, seed=3), BudgetSampler.from_spec(spec, seed=3)
    draws = [a.sample() for _ in range(20000)]
    assert draws[:50] == [b.sample() for _ in range(50)]
    assert set(draws) == {8, 16, 24, 32, 40, 48, 56, 64}
    # p(64) = 4/20; the standard error at n=20000 is sqrt(0.2*0.8/20000) = 0.0028: allow 5 of them
    assert abs(draws.count(64) / 20000 - 0.20) < 0.015
    assert abs(draws.count(8) / 20000 - 0.05) < 0.008


@pytest.mark.parametrize("weights", [(1, 2), (0, 0, 0), (-1, 1, 1)])
def test_budget_sampler_rejects_bad_weights(weights):
    from costmodel.errors import CoreplanError

    with pytest.raises(CoreplanError):
        BudgetSampler((8, 16, 24), weights)


def test_training_step_learns_and_leaves_cores_beyond_the_budget_untouched():
    torch.manual_seed(0)
    model = build_model(get_model("veca-small")).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    images = torch.randn(2, 3, 32, 32)
    frozen = model.cores[16:].detach().clone()
    losses = [training_step(model, images, optimizer, core_tokens=16) for _ in range(4)]
    assert losses[-1] < losses[0]
    assert model.cores.grad[16:].abs().max().item() == 0.0
    assert torch.equal(model.cores[16:].detach(), frozen)


def test_resume_refuses_a_file_with_other_columns(tmp_path, capsys):
    old = tmp_path / "old.csv"
    old.write_text("model,resolution,core_tokens,impl,batch,dtype,device,status\n")
    assert main(REDUCED + ["--no-time", "--out", str(old), "--resume"]) == 2
    assert "columns differ" in capsys.readouterr().err


def test_interleaved_rounds_visit_every_call_once_per_round_and_stop_at_the_deadline():
    order = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    seen = [(r, k) for r, k, _ in interleaved(calls, 3, min_run_time_s=0.0, min_repeats=1,
                                              warmup=1, threads=1)]
    assert seen == [(0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "a"), (2, "b")]
    # one warm-up call each in the first round only, then one timed call per round
    assert order == ["a", "a", "b", "b", "a", "b", "a", "b"]
    assert list(interleaved(calls, 3, min_run_time_s=0.0, deadline=time.monotonic() - 1)) == []


def test_combine_rounds_takes_the_median_of_the_quiet_rounds():
    def t(median, ratio):
        return Timing(median, 0.0, median * 0.9, 2, 1, 2.0 * ratio, ratio)

    # a busy round (probe 2x, above the limit) is left out: the median of 10, 11, 13 is 11
    r = combine_rounds([t(10.0, 1.0), t(30.0, 2.0), t(13.0, 1.1), t(11.0, 1.0)])
    assert (r.median_ms, r.quiet, r.rounds, r.busy, r.repeats) == (11.0, 3, 4, None, 6)
    assert r.min_ms == 9.0 and r.probe_ratio == 1.0
    assert r.spread_ms == 13.0 - 10.0  # quartiles of three values: the outer two (exclusive method)
    everything_busy = combine_rounds([t(30.0, 2.0), t(20.0, 2.0)])
    assert everything_busy.quiet == 0 and everything_busy.median_ms == 25.0
    assert "probe 2.00x" in everything_busy.busy
    with pytest.raises(ValueError):
        combine_rounds([])


def test_holdout_rounds_write_every_configuration_with_a_quiet_round_when_interrupted(
        tmp_path, monkeypatch):
    """benchmarks/latency_holdout.py: interrupted in its third round, the two configurations timed
    so far are written (their two finished rounds), and the interrupt goes on to the caller."""
    import sys
    from argparse import Namespace
    from pathlib import Path

    from costmodel.config import configure
    from costmodel.measurements import MeasurementWriter

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import latency_holdout

    calls = {"n": 0}

    def forward_of(source, name, side, batch, cores, impl):
        def forward():
            calls["n"] += 1
            if calls["n"] > 2 * 2 + 2 * 2:  # 2 warm-up calls each, then 2 rounds of one call
                raise KeyboardInterrupt
            time.sleep(0.002 if name == "dinov2-small" else 0.004)
        return forward

    class QuietProbe:  # the suite's other worker shares the cores: the real probe reads busy
        quiet_s = 1e-3

        def settle(self):
            return self.quiet_s

        def sample(self):
            return self.quiet_s

    monkeypatch.setattr(latency_holdout, "forward_of", forward_of)
    monkeypatch.setattr(latency_holdout, "Probe", lambda device: QuietProbe())
    todo = {("hf", configure(get_model("dinov2-small"), 224)): None,
            ("reference", configure(get_model("veca-small"), 224, cores=16)): None}
    out = tmp_path / "h.csv"
    writer = MeasurementWriter(str(out), False)
    args = Namespace(min_time=0.0, rounds=5, threads=torch.get_num_threads())  # the probe's too
    with pytest.raises(KeyboardInterrupt):
        latency_holdout._time_rounds(todo, args, writer)
    writer.close()
    rows = {r.model: r for r in read_measurements(out)}
    assert set(rows) == {"dinov2-small", "veca-small"}
    assert rows["dinov2-small"].note.startswith("implementation: hf; ")
    assert all(" of 2 rounds quiet" in r.note and r.repeats <= 2 for r in rows.values())
    assert 2.0 <= rows["dinov2-small"].time_ms_median < rows["veca-small"].time_ms_median


def test_holdout_resume_counts_the_quiet_rounds_a_row_says_it_had():
    """--resume keeps a row whose note says at least half of --rounds were quiet; an interrupted
    run's "2 of 2 rounds quiet" is re-timed under --rounds 5; a row timed in one block (no
    rounds in its note) is kept."""
    import sys
    from pathlib import Path

    from costmodel.measurements import Measurement

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import latency_holdout

    def row(note):
        return Measurement("veca-small", 224, 16, "split", 1, "fp32", "ok", note=note)

    assert latency_holdout._rounds_quiet(row("implementation: hf; 2 of 2 rounds quiet"), 5) == 2
    assert latency_holdout._rounds_quiet(row("implementation: reference; 3 of 5 rounds quiet"),
                                         5) == 3
    assert latency_holdout._rounds_quiet(row("implementation: hf"), 5) == 5


def test_holdout_says_when_its_rows_rounds_spread_beyond_the_goal():
    """benchmarks/latency_holdout.py: rows whose rounds spread (IQR over median) by 5%, 12% and
    20% have a median spread of 12%, above the goal's 10%: one line says the run was unsteady.
    5%, 8% and 20%: median 8%, nothing said; nor for rows that say no spread."""
    import sys
    from pathlib import Path

    from costmodel.measurements import Measurement

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import latency_holdout

    def rows(*spreads):
        return [Measurement("veca-small", 224, 16, "split", 1, "fp32", "ok", time_ms_median=100.0,
                            time_ms_iqr=s) for s in spreads]

    line = latency_holdout.unsteady(rows(5.0, 12.0, 20.0))
    assert line.startswith("unsteady: the rows' rounds spread by a median 12.0% of their time "
                           "(above 10%)")
    assert latency_holdout.unsteady(rows(5.0, 8.0, 20.0)) is None
    assert latency_holdout.unsteady(rows(None, None)) is None


def test_holdout_counts_the_rows_inside_the_devices_interval():
    """Errors (predicted / measured - 1) of +25%, 0% and -20%: measured / predicted 0.8, 1.0 and
    1.25; inside x0.9 ... x1.2 only the second: 33% (1 of 3)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import latency_holdout

    line = latency_holdout.inside_interval([0.25, 0.0, -0.2], (0.9, 1.2))
    assert line.endswith("x0.900 ... x1.200): 33% (1 of 3)")


def test_holdout_cores_sweep_times_every_budget_and_reports_the_slope():
    """`--cores-sweep veca-small:640`: the split layout at C = 8, 16, ..., 64 (veca-small's
    budgets), batch 1. The slope line by hand: measured 500 ms at C=8 and 600 at C=64 (x1.200),
    predicted 0.45 and 0.495 s (x1.100); a row at another side, and a dense row, are not in it."""
    import sys
    from pathlib import Path

    from costmodel.measurements import Measurement

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import latency_holdout

    sweep = latency_holdout.cores_sweep("veca-small:640")
    assert [c[4] for c in sweep] == [8, 16, 24, 32, 40, 48, 56, 64]
    assert {(c[1], c[2], c[3], c[5]) for c in sweep} == {("veca-small", 640, 1, "split")}

    def row(c, ms, side=640, model="veca-small"):
        return Measurement(model, side, c, "split" if c else "dense", 1, "fp32", "ok",
                           time_ms_median=ms)

    rows = [(row(8, 500.0), 0.45), (row(64, 600.0), 0.495), (row(16, 700.0, side=224), 0.5),
            (row(0, 300.0, model="dinov2-small"), 0.3)]
    assert latency_holdout.core_slopes(rows) == [
        "veca-small 640px B=1 split: C=64 over C=8: measured x1.200, predicted x1.100"]


def test_holdout_gives_a_configuration_whose_rounds_spread_as_many_rounds_again(
        tmp_path, monkeypatch):
    """benchmarks/latency_holdout.py with the timer faked: dinov2-small's five rounds read 100,
    130, 100, 130, 100 ms (IQR 30 over a median 100: 30%, above 10%), veca-small's 50 ms each
    time. dinov2-small is timed five rounds more (10 in all), veca-small not (5)."""
    import sys
    from argparse import Namespace
    from pathlib import Path

    import reference.timing as rt
    from costmodel.config import configure
    from costmodel.measurements import MeasurementWriter

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import latency_holdout

    def fake(calls, rounds, **_):
        for round_ in range(rounds):
            for key in calls:
                slow = key[1].spec.name == "dinov2-small" and round_ % 2 == 1
                ms = 130.0 if slow else (100.0 if key[1].spec.name == "dinov2-small" else 50.0)
                yield round_, key, rt.Timing(ms, 0.0, ms, 1, 2, 1.0, 1.0)

    class QuietProbe:
        quiet_s = 1e-3

        def settle(self):
            return self.quiet_s

    monkeypatch.setattr(rt, "interleaved", fake)
    monkeypatch.setattr(latency_holdout, "forward_of", lambda *a: (lambda: None))
    monkeypatch.setattr(latency_holdout, "Probe", lambda device: QuietProbe())
    todo = {("hf", configure(get_model("dinov2-small"), 224)): None,
            ("reference", configure(get_model("veca-small"), 224, cores=16)): None}
    out = tmp_path / "h.csv"
    writer = MeasurementWriter(str(out), False)
    latency_holdout._time_rounds(todo, Namespace(min_time=1.0, rounds=5, threads=2), writer)
    writer.close()
    rows = {r.model: r for r in read_measurements(out)}
    assert "10 of 10 rounds quiet" in rows["dinov2-small"].note
    assert "5 of 5 rounds quiet" in rows["veca-small"].note


def test_holdout_report_says_when_the_profile_missed_its_own_check(capsys):
    """benchmarks/latency_holdout.py --report on a run after a profile whose calibration missed
    its own check (the committed -late-c, 11.6%) ends with the note every plan on it carries;
    after one that did not (-night), no such note."""
    import sys
    from pathlib import Path

    from costmodel.measurements import read_measurements
    from planners.devices import get_device

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    import latency_holdout

    for name, said in (("late-c", True), ("night", False)):
        device = get_device(f"epyc-2core-2026-12-01-{name}",
                            root / f"data/profiles/cpu-epyc-2core-2026-12-01-{name}.toml")
        runs = read_measurements(
            root / f"data/measurements/holdout-cpu-epyc-2core-2026-12-01-{name}1.csv")
        latency_holdout._summary(runs, device)
        out = capsys.readouterr().out
        assert ("its own held-out rows with MAPE 11.6% (above 10%)" in out) is said
        assert ("calibration predicted" in out) is said
