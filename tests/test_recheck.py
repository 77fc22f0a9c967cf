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


def test_the_level_is_the_median_error_and_rescaling_divides_every_prediction_by_it():
    """Errors +10%, +20% and +50%: the level is +20% (the machine runs 1 - 1/1.2 = 16.7% faster
    than profiled); the rescaled device predicts each row at its old prediction / 1.2, its
    efficiencies x1.2 and its per-op overhead / 1.2."""
    from planners.recheck import Recheck

    device = get_device("cpu-epyc-2core")
    rows = _rows(device, (1.1, 1.2, 1.5))
    found = Recheck.of(device, rows)
    assert np.allclose(found.errors, [0.1, 0.2, 0.5])
    assert np.isclose(found.level, 0.2) and not found.holds
    verdict = found.verdict()
    assert "median 0.833x" in verdict and "16.7% faster than profiled" in verdict
    assert "pessimistic" in verdict and "--out" in verdict
    again = found.rescaled()
    for c, eta in device.efficiency.items():
        assert np.isclose(again.efficiency[c], 1.2 * eta)
    assert np.isclose(again.kernel_launch_overhead_s, device.kernel_launch_overhead_s / 1.2)
    for row, before in zip(rows, found.predicted_s):
        assert np.isclose(predict_measurement(row, again), before / 1.2, rtol=1e-9)


def test_a_machine_within_five_percent_holds_and_a_slower_one_is_optimistic():
    """Errors -1%, +3%, +4%: level +3%, within ±5%: the profile holds. Errors -10%, -20%, 0%:
    level -10%: the machine runs 0.1 / 0.9 = 11.1% slower, plans on it are optimistic."""
    from planners.recheck import Recheck

    device = get_device("cpu-epyc-2core")
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
    records, rounds = recheck(cases=(("veca-small", 224, 1, 8, "split"),), budget_s=3.0,
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


def test_recheck_refuses_an_existing_out_before_timing(cli, tmp_path):
    existing = tmp_path / "there.toml"
    existing.write_text("# mine\n")
    code, _, err = cli("recheck", "--device", "cpu-epyc-2core", "--out", str(existing))
    assert code == 2 and "exists: pass --force" in err
    assert existing.read_text() == "# mine\n"


def test_recheck_writes_the_device_rescaled_by_the_level_it_printed(cli, tmp_path):
    """A real recheck of the catalog's profiled entry within 10 s: the written file loads under
    the same name, its efficiencies are the entry's times the factor its comment states, and its
    description says it was rechecked."""
    import re

    out = tmp_path / "rechecked.toml"
    code, stdout, err = cli("recheck", "--device", "cpu-epyc-2core", "--budget-s", "10",
                            "--out", str(out))
    assert code == 0, err
    assert "whole models ran at a median" in stdout and f"wrote {out}" in stdout
    factor = float(re.search(r"every efficiency x([0-9.]+)", out.read_text()).group(1))
    before, after = get_device("cpu-epyc-2core"), load_devices(out)["cpu-epyc-2core"]
    for c, eta in before.efficiency.items():
        assert np.isclose(after.efficiency[c], eta * factor, rtol=1e-4)
    assert "rechecked" in after.description and after.profile is not None
