"""coreplan recheck: a profiled device held against whole models timed now (planners/recheck.py)."""

import dataclasses

import numpy as np
import pytest

from costmodel.errors import CoreplanError
from costmodel.measurements import Measurement
from planners.accuracy import predict_measurement
from planners.devices import get_device, load_devices


def _rows(device, factors):
    """Rows measured at predicted / factor: their errors (predicted / measured - 1) are
    factor - 1 by construction."""
    cases = [("veca-small", 224, 64, "split"), ("dinov2-small", 224, None, None),
             ("veca-small", 384, 8, "split")]
    rows = []
    for (model, side, cores, impl), factor in zip(cases, factors):
        row = Measurement(model, side, cores, impl, 1, "fp32", "ok", time_ms_median=1.0)
        predicted = float(predict_measurement(row, device))
        rows.append(dataclasses.replace(row, time_ms_median=predicted * 1e3 / factor))
    return rows


def test_the_level_is_the_median_error_against_the_predictions_without_profiled_times():
    """A device whose file has no calibration times (files written before them): errors +10%,
    +20% and +50% against its predictions: the level is +20% (the machine runs 1 - 1/1.2 =
    16.7% faster than profiled, its plans pessimistic)."""
    from planners.recheck import Recheck

    base = get_device("cpu-epyc-2core")
    device = dataclasses.replace(base, profile=dataclasses.replace(base.profile,
                                                                   calibration_ms={}))
    found = Recheck.of(device, _rows(device, (1.1, 1.2, 1.5)))
    assert not found.against_profile and found.profiled_ms == (None, None, None)
    assert np.allclose(found.errors, [0.1, 0.2, 0.5])
    assert np.isclose(found.level, 0.2) and not found.holds
    verdict = found.verdict()
    assert "median 0.833x cpu-epyc-2core's predictions" in verdict
    assert "16.7% faster than profiled" in verdict and "pessimistic" in verdict
    assert "coreplan profile" in verdict


def test_a_machine_within_five_percent_holds_and_a_slower_one_is_optimistic():
    """Errors -1%, +3%, +4%: level +3%, within ±5%: the profile holds. Errors -10%, -20%, 0%:
    level -10%: the machine runs 0.1 / 0.9 = 11.1% slower, plans on it are optimistic."""
    from planners.recheck import Recheck

    base = get_device("cpu-epyc-2core")
    device = dataclasses.replace(base, profile=dataclasses.replace(base.profile,
                                                                   calibration_ms={}))
    found = Recheck.of(device, _rows(device, (0.99, 1.03, 1.04)))
    assert np.isclose(found.level, 0.03) and found.holds
    assert found.verdict().endswith("within ±5%, the profile holds")
    found = Recheck.of(device, _rows(device, (0.9, 0.8, 1.0)))
    assert np.isclose(found.level, -0.1) and not found.holds
    assert "11.1% slower than profiled" in found.verdict()
    assert "optimistic" in found.verdict()


def test_a_recheck_with_every_model_busy_says_so():
    from planners.recheck import Recheck

    device = get_device("cpu-epyc-2core")
    busy = [dataclasses.replace(r, status="busy") for r in _rows(device, (1.0, 1.0, 1.0))]
    with pytest.raises(CoreplanError, match="busy throughout"):
        Recheck.of(device, busy)


def test_recheck_times_the_models_it_is_given_within_its_budget():
    """reference/own_device.recheck on one small model with 3 s: one record, timed (ok), at a
    positive time, in one to three rounds, within a few seconds of its budget."""
    import time

    from reference.own_device import RECHECK_ROUNDS, recheck

    start = time.monotonic()
    records, rounds, _ = recheck(cases=(("veca-small", 224, 1, 8, "split"),), budget_s=3.0,
                                 threads=1)
    assert time.monotonic() - start < 3.0 + 5.0  # a round started before the end may finish past it
    assert 1 <= rounds <= RECHECK_ROUNDS
    assert [r.label() for r in records] == ["veca-small 224px C=8 split B=1 fp32"]
    assert records[0].time_ms_median > 0


@pytest.mark.parametrize("argv,said", [
    (("recheck", "--device", "l4"), "l4 has no op profile of a CPU"),
    (("recheck", "--device", "cpu-epyc-2core", "--budget-s", "5"),
     "--budget-s must be seconds in [10, 3600]"),
    (("recheck", "--device", "no-such-device"), "unknown device"),
])
def test_recheck_refuses_in_one_line(cli, argv, said):
    code, _, err = cli(*argv)
    assert code == 2 and said in err and len(err.strip().splitlines()) == 1


def test_recheck_prints_each_model_and_the_verdict(monkeypatch):
    """The command end to end with its timing replaced (a shared test machine is busy, and a
    recheck rightly refuses a busy one): the catalog's profiled entry, its calibration times
    left out, three models measured at its predictions / 1.1, / 1.2 and / 1.5, the rounds
    moving x0.97 to x1.04: each model's row, the level's verdict and the rounds' spread; its
    calibration at 12% (above 10%): the note every command prints for it."""
    from typer.testing import CliRunner

    import reference.own_device
    from coreplan.cli import app

    device = get_device("cpu-epyc-2core")
    rows = _rows(device, (1.1, 1.2, 1.5))
    monkeypatch.setattr(reference.own_device, "recheck",
                        lambda **kwargs: (rows, 3, (0.97, 1.04)))
    bare = dataclasses.replace(device, calibration_mape=0.12, profile=dataclasses.replace(
        device.profile, calibration_ms={}))
    monkeypatch.setattr("planners.devices.get_device", lambda name, path=None: bare)
    result = CliRunner().invoke(app, ["recheck", "--device", "cpu-epyc-2core"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the caption wraps to the terminal's width
    assert "16.7% faster than profiled" in text
    assert "its 3 rounds moved x0.970 to x1.040 (5-95%)" in text
    for row, error in zip(rows, ("+10.0%", "+20.0%", "+50.0%")):
        assert row.label() in text and error in text
    assert "its latencies are unreliable" in text  # the device's notes, as every command says them


def test_the_level_is_read_against_the_profiles_own_times_where_it_has_them():
    """A profile that timed the three models at 100, 200 and 400 ms, timed now at 125, 200 and
    500 ms: drift then / now - 1 = -20%, 0, -20%: level -20% (the machine 25% slower), whatever
    the predictions say; with one of the three times alone (fewer than half) the level is read
    against the predictions again (here +10% on every row)."""
    from planners.recheck import Recheck

    base = get_device("cpu-epyc-2core")
    rows = _rows(base, (1.1, 1.1, 1.1))
    labels = [r.label() for r in rows]
    rows = [dataclasses.replace(r, time_ms_median=ms) for r, ms in zip(rows, (125.0, 200.0, 500.0))]
    then = dict(zip(labels, (100.0, 200.0, 400.0)))
    device = dataclasses.replace(base, profile=dataclasses.replace(base.profile,
                                                                   calibration_ms=then))
    found = Recheck.of(device, rows)
    assert found.against_profile and found.profiled_ms == (100.0, 200.0, 400.0)
    assert np.allclose(found.drift, [-0.2, 0.0, -0.2]) and np.isclose(found.level, -0.2)
    assert "median 1.250x their time when profiled" in found.verdict()
    assert "25.0% slower than profiled" in found.verdict()
    one = dataclasses.replace(base, profile=dataclasses.replace(
        base.profile, calibration_ms={labels[0]: 100.0}))
    rows = _rows(base, (1.1, 1.1, 1.1))
    found = Recheck.of(one, rows)
    assert not found.against_profile and np.isclose(found.level, 0.1)
    assert "predictions" in found.verdict()


def test_a_profiles_calibration_times_travel_through_its_file(tmp_path):
    """calibration_ms written by device_toml reads back equal; a negative time is refused in one
    line naming the field."""
    from planners.devices import device_toml

    base = get_device("cpu-epyc-2core")
    times = {"veca-small 224px C=64 split B=1 fp32": 100.25, "dinov2-small 448px dense B=1 fp32": 480.5}
    device = dataclasses.replace(base, name="mine", profile=dataclasses.replace(
        base.profile, calibration_ms=times))
    path = tmp_path / "mine.toml"
    path.write_text(device_toml(device))
    assert load_devices(path)["mine"].profile.calibration_ms == times
    path.write_text(path.read_text().replace("= 100.25", "= -1"))
    with pytest.raises(CoreplanError, match="profile.calibration_ms: expected a table"):
        load_devices(path)
