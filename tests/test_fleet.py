"""The cheapest fleet: prices and energy, several device types, the batching search, and `plan`
and `serve` agreeing where they model the same thing.

Expected numbers are worked out by hand in each test (the service tables are written here, not
computed by the latency model), except where a test compares two commands end to end."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from coreplan.cli import main
from costmodel.errors import ArgumentError
from planners.devices import get_device
from planners.economics import economics, rank_key
from planners.fleet import batching_search, fleet_search
from planners.serving import Policy, ServiceTable
from planners.workload import poisson


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fixed_table(seconds_of, max_batch, model="m"):
    """A dense model's table written by hand: seconds_of(b)."""
    return ServiceTable(model, (None,), np.array([[seconds_of(b)] for b in range(1, max_batch + 1)]))


def dense(t):
    return Policy("static", "static", t)


# ----------------------------------------------------------------------------- rates by hand
def test_energy_and_price_by_hand():
    # 4 devices of 300 W at 2 USD/h serve 100 img/s, busy half the time:
    #   energy = 300 W x 4 x 0.5 / 100 img/s = 6 J per image
    #   price  = 4 x 2 = 8 USD/h; 8 / (3600 s x 100 img/s) x 1e6 = 22.22 USD per million images
    device = replace(get_device("l4"), board_power_w=300.0, price_per_hour_usd=2.0)
    e = economics(device, devices=4, img_per_s=100.0, utilisation=0.5)
    assert e.joules_per_image == pytest.approx(6.0)
    assert e.usd_per_hour == pytest.approx(8.0)
    assert e.usd_per_million_images == pytest.approx(22.2222, rel=1e-5)
    assert e.img_per_s_per_device == pytest.approx(25.0)
    bare = economics(replace(device, board_power_w=None, price_per_hour_usd=None), devices=4,
                     img_per_s=100.0, utilisation=0.5)
    assert bare.joules_per_image is None and bare.usd_per_million_images is None
    assert rank_key("cost", bare) > rank_key("cost", e)  # a fleet without a price ranks last


def test_the_catalog_prices_say_where_they_come_from():
    # the H100 SXM's price: AWS p5.48xlarge, 55.04 USD/h for 8 GPUs = 6.88 USD/h per GPU
    h100 = get_device("h100-sxm")
    assert h100.price_per_hour_usd == pytest.approx(55.04 / 8)
    assert "p5.48xlarge" in h100.price_source and "2026-11-09" in h100.price_source
    priced = [n for n in ("h100-sxm", "a100-sxm-80gb", "l4", "t4")
              if get_device(n).price_per_hour_usd]
    assert len(priced) == 4 and all(get_device(n).price_source for n in priced)


@pytest.mark.parametrize("extra, said", [
    ("price_per_hour_usd = 2.5\n", "price_per_hour_usd and price_source go together"),
    ('price_per_hour_usd = 5000\nprice_source = "a month, by mistake"\n', "above 1000"),
    ('price_source = "no price"\n', "price_per_hour_usd and price_source go together"),
])
def test_a_device_file_price_needs_its_source_and_a_plausible_value(capsys, device_file, extra,
                                                                   said):
    code, _, err = run(capsys, "devices", "--device-file", str(device_file(extra)))
    assert code == 2 and said in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- fleets by hand
def two_types():
    """Type a: 10 ms per image, 30 W, 0.3 USD/h; type b: 2 ms per image, 200 W, 2 USD/h."""
    a = replace(get_device("l4"), name="a", board_power_w=30.0, price_per_hour_usd=0.3,
                price_source="test")
    b = replace(get_device("l4"), name="b", board_power_w=200.0, price_per_hour_usd=2.0,
                price_source="test")
    return [(a, [dense(fixed_table(lambda n: 0.010 * n, 1, "m"))]),
            (b, [dense(fixed_table(lambda n: 0.002 * n, 1, "m"))])]


def test_fleets_of_several_types_ranked_by_each_objective():
    # 1,000 img/s at batch 1. Type a serves 100 img/s per device: more than 10 devices (10 are
    # exactly full, an unstable queue); type b 500 per device: more than 2. By hand, whatever
    # the exact counts (a: 11-13, b: 3-4): a costs at most 13 x 0.3 = 3.9 USD/h, b at least
    # 3 x 2 = 6: a is cheaper; b needs fewer devices; energy is service time x board power
    # (idle not counted): a 0.010 s x 30 W = 0.3 J, b 0.002 s x 200 W = 0.4 J: a uses less.
    arrivals = poisson(1000.0, 60.0, seed=4)
    by = {objective: fleet_search(two_types(), arrivals, slo_s=0.05, objective=objective,
                                  batches=(1,))
          for objective in ("cost", "devices", "energy")}
    assert [f.device.name for f in by["cost"]] == ["a", "b"]
    assert [f.device.name for f in by["devices"]] == ["b", "a"]
    assert [f.device.name for f in by["energy"]] == ["a", "b"]
    a, b = by["cost"]
    assert 11 <= a.devices <= 13 and 3 <= b.devices <= 4
    offered = len(arrivals) / (arrivals[-1] - arrivals[0])  # about 1,000 (a Poisson count)
    assert a.capacity_devices == math.ceil(offered / 100) and b.capacity_devices == math.ceil(
        offered / 500)  # every device busy with full batches: 100 and 500 img/s each
    assert a.rates.joules_per_image == pytest.approx(0.3) and b.rates.joules_per_image == pytest.approx(0.4)
    assert a.rates.usd_per_hour == pytest.approx(0.3 * a.devices)


def test_the_batch_that_needs_the_fewest_devices_is_chosen():
    # s(b) = 4 ms + 1 ms x b: full batches of 1 serve 200 img/s per device, of 8 serve 667, of
    # 16 serve 800 (a full batch of 32 takes 36 ms, within the 40 ms objective; of 64, 68 ms:
    # not tried). At 2,000 img/s: batch 1 needs more than 10 devices, batch 16 more than 2.5.
    device = replace(get_device("l4"), name="x")
    policy = dense(fixed_table(lambda n: 0.004 + 0.001 * n, 64))
    (fleet,) = fleet_search([(device, [policy])], poisson(2000.0, 30.0, seed=2), slo_s=0.04,
                            batches=(1, 8, 16, 32, 64))
    assert fleet.max_batch in (16, 32) and fleet.devices <= 4
    with pytest.raises(ArgumentError, match="none within"):  # a batch the table lacks
        fleet_search([(device, [policy])], poisson(10.0, 5.0), slo_s=0.04, batches=(128,))


# ----------------------------------------------------------------------------- batching by hand
def test_batching_search_by_hand():
    # 10 img/s, s(b) = 5 ms + 1 ms x b, objective 25 ms, one device. A full batch of 16 takes
    # 21 ms, of 32 takes 37 ms: 32 and 64 are not tried. Timeouts tried: 0, 5, 10, 20, 30 and 50%
    # of 25 ms; the longest, 12.5 ms, gives p99 about 12.5 + 7 = 19.5 ms, within 25: every one
    # holds, and the longest timeout batches the most (least busy time per image), at the
    # largest batch.
    policy = dense(fixed_table(lambda n: 0.005 + 0.001 * n, 64))
    arrivals = poisson(10.0, 2000.0, seed=5)
    best, tried = batching_search(policy, arrivals, devices=1, slo_s=0.025)
    assert {t.max_batch for t in tried} == {1, 2, 4, 8, 16}
    assert all(t.holds for t in tried)
    assert (best.max_batch, best.batch_timeout_s) == (16, pytest.approx(0.0125))
    # a 30 ms timeout: a lone request waits 30 ms, p99 above 25 ms; it is tried and refused
    best, tried = batching_search(policy, arrivals, devices=1, slo_s=0.025, batches=(4,),
                                  timeouts_s=[0.0, 0.030])
    assert [t.holds for t in tried] == [True, False] and best.batch_timeout_s == 0.0


# ----------------------------------------------------------------------------- the CLI end to end
SMALL = ("veca-small", "--resolution", "224")


def test_plan_and_serve_agree_on_the_capacity_bound(capsys):
    """serve's capacity bound is plan --demand's device count at the same batch and C (both
    from the latency model: every device busy with full batches, no queue), and the fleet serve
    finds under an objective is at least that many."""
    code, out, _ = run(capsys, "serve", *SMALL, "--device", "l4", "--rate", "8000", "--slo-ms",
                       "60", "--solve", "devices", "--max-batch", "4", "--policy", "all",
                       "--format", "json")
    assert code == 0
    fleets = {d["policy"]: d for d in json.loads(out)}
    for policy, cores in (("static C=64", 64), ("elastic", 8)):  # elastic's fastest is C = 8
        code, planned, _ = run(capsys, "plan", *SMALL, "--device", "l4", "--batch", "4",
                               "--cores-allowed", str(cores), "--demand", "8000",
                               "--format", "json")
        devices_needed = json.loads(planned)["devices_needed"]
        assert fleets[policy]["capacity_devices"] == devices_needed > 1
        assert fleets[policy]["devices"] >= devices_needed
    # several types at once: each type's bound is its plan --demand count at the rate asked for
    code, out, _ = run(capsys, "serve", *SMALL, "--device", "h100-sxm,t4", "--rate", "9000",
                       "--slo-ms", "60", "--solve", "devices", "--max-batch", "2", "--policy",
                       "static", "--format", "json")
    code, planned, _ = run(capsys, "plan", *SMALL, "--device", "h100-sxm,t4", "--batch", "2",
                           "--cores-allowed", "64", "--demand", "9000", "--format", "json")
    assert ({d["device"]: d["capacity_devices"] for d in json.loads(out)}
            == {d["device"]: d["devices_needed"] for d in json.loads(planned)})
    code, shown, _ = run(capsys, "plan", *SMALL, "--device", "l4", "--demand", "8000")
    assert "`coreplan serve --solve devices` adds arrivals, queueing" in " ".join(shown.split())


def test_serve_ranks_several_device_types_by_cost(capsys):
    code, out, _ = run(capsys, "serve", *SMALL, "--device", "l4,t4,h100-sxm", "--rate", "3000",
                       "--slo-ms", "80", "--solve", "devices", "--objective", "cost", "--policy",
                       "static", "--format", "json")
    assert code == 0
    docs = json.loads(out)
    assert sorted(d["device"] for d in docs) == ["h100-sxm", "l4", "t4"]
    costs = [d["economics"]["usd_per_million_images"] for d in docs]
    assert costs == sorted(costs) and [d["rank"] for d in docs] == [1, 2, 3]
    for d in docs:  # the fleet's price per hour is its devices at the catalog's price
        price = get_device(d["device"]).price_per_hour_usd
        assert d["economics"]["usd_per_hour"] == pytest.approx(d["devices"] * price)
        assert d["objective"] == "cost" and d["price_source"]
    code, table, _ = run(capsys, "serve", *SMALL, "--device", "l4,t4", "--rate", "3000",
                         "--slo-ms", "80", "--solve", "devices", "--objective", "energy",
                         "--policy", "static", "--format", "csv")
    assert code == 0 and "joules_per_image" in table.splitlines()[0]


@pytest.mark.parametrize("args, said", [
    (("--device", "l4,a100-pcie-40gb", "--solve", "devices", "--objective", "cost"),
     "--objective cost needs price_per_hour_usd for every device; a100-pcie-40gb has none"),
    (("--device", "l4", "--objective", "cost"), "--objective ranks the fleets of --solve devices"),
    (("--device", "l4", "--max-batch", "1,4"), "--max-batch takes a list or auto only with --solve"),
    (("--device", "l4", "--solve", "devices", "--batch-timeout-ms", "0,5"),
     "--solve devices runs at one --batch-timeout-ms"),
    (("--device", "l4,t4", "--out", "x.html"), "--out charts one device's load sweep"),
    (("--device", "l4", "--solve", "devices", "--max-batch", "auto", "--out", "x.html"),
     "--out charts the load sweep at one --max-batch"),
    (("--device", "l4", "--solve", "fleet"), "unknown solve 'fleet'"),
    (("--device", "l4,t4,l4", "--solve", "devices"), "--device lists l4 more than once"),
])
def test_search_flags_refused_in_one_line(capsys, args, said):
    code, _, err = run(capsys, "serve", *SMALL, "--rate", "100", "--slo-ms", "100", *args)
    assert code == 2 and said in err and len(err.strip().splitlines()) == 1


def test_solve_batching_on_the_command_line(capsys):
    code, out, _ = run(capsys, "serve", *SMALL, "--device", "l4", "--rate", "2000", "--slo-ms",
                       "50", "--devices", "2", "--policy", "static", "--solve", "batching",
                       "--format", "json")
    assert code == 0
    docs = json.loads(out)
    chosen = [d for d in docs if d["chosen"]]
    assert len(chosen) == 1 and chosen[0]["holds"]
    assert chosen[0]["result"]["latency_ms"]["p99"] <= 50
    busy = lambda d: d["result"]["utilisation"] * 2 / d["result"]["throughput_img_per_s"]  # noqa: E731
    assert all(busy(chosen[0]) <= busy(d) + 1e-12 for d in docs if d["holds"])


def test_the_default_run_spans_twenty_objectives(capsys):
    """100,000 requests at 10,000 img/s span 10 s; against a 1 s objective the default run is
    stretched to 20 objectives, 20 s: about 200,000 Poisson arrivals (sd ~450)."""
    code, out, err = run(capsys, "serve", *SMALL, "--device", "l4", "--rate", "10000",
                         "--slo-ms", "1000", "--policy", "static", "--format", "json")
    assert code == 0 and "arrivals span" not in err
    assert 198_000 < json.loads(out)[0]["requests"] < 202_000


# ----------------------------------------------------------------------------- service-time CV
def test_service_cv_from_repeated_forwards_by_hand():
    # IQR / 1.349 / median per row: 1.349 / 10 = 0.1, 2.698 / 10 = 0.2, 4.047 / 10 = 0.3; the
    # median over the rows is 0.2; a row without an IQR (a published time) does not count
    from costmodel.measurements import Measurement
    from planners.calibrate import service_cv

    def row(iqr):
        return Measurement(model="m", resolution=224, core_tokens=0, impl="sdpa", batch=1,
                           dtype="fp32", status="ok", time_ms_median=10.0, time_ms_iqr=iqr)

    assert service_cv([row(1.349), row(4.047), row(2.698), row(None)]) == pytest.approx(0.2)
    assert service_cv([row(None)]) is None


def test_the_catalog_cpu_service_cv_is_its_calibration_data():
    from planners.calibrate import calibrate

    cal = calibrate(["data/measurements/cpu-epyc-2core-2026-11-24.csv"],
                    get_device("cpu-epyc-2core"))
    assert get_device("cpu-epyc-2core").service_cv == pytest.approx(cal.device.service_cv,
                                                                    rel=1e-5)


def test_serve_runs_each_device_with_its_own_cv(capsys):
    args = ("serve", *SMALL, "--device", "cpu-epyc-2core,l4", "--dtype", "fp32", "--rate", "3",
            "--slo-ms", "2000", "--policy", "static", "--duration-s", "300", "--format", "json")
    code, out, _ = run(capsys, *args)
    assert code == 0
    cvs = {d["device"]: d["service_cv"] for d in json.loads(out)}
    assert cvs == {"cpu-epyc-2core": get_device("cpu-epyc-2core").service_cv, "l4": 0.0}
    code, out, _ = run(capsys, *args, "--service-cv", "0")
    assert {d["service_cv"] for d in json.loads(out)} == {0.0}
    code, shown, _ = run(capsys, *args[:-2])
    assert "deterministic on l4 (no measured service_cv" in " ".join(shown.split())


def test_plan_ranks_devices_by_the_objective(capsys):
    args = ("plan", *SMALL, "--device", "h100-sxm,l4,t4", "--batch", "8", "--demand", "5000")
    code, out, _ = run(capsys, *args, "--objective", "cost", "--format", "json")
    assert code == 0
    docs = json.loads(out)
    costs = [d["economics"]["usd_per_million_images"] for d in docs]
    assert costs == sorted(costs) and [d["rank"] for d in docs] == [1, 2, 3]
    for d in docs:  # by hand: the fleet's hourly price over the images it serves in an hour
        price = get_device(d["device"]).price_per_hour_usd
        assert d["economics"]["usd_per_million_images"] == pytest.approx(
            d["devices_needed"] * price / (3600 * 5000) * 1e6)
    code, out, _ = run(capsys, *args, "--objective", "devices", "--format", "json")
    needed = [d["devices_needed"] for d in json.loads(out)]
    assert needed == sorted(needed)
    code, shown, _ = run(capsys, *args, "--objective", "energy")
    assert code == 0 and "the devices ranked by energy for 5000 img/s" in shown
    code, _, err = run(capsys, "plan", *SMALL, "--device", "l4", "--objective", "devices")
    assert code == 2 and "--objective devices ranks by the devices --demand needs" in err
    code, _, err = run(capsys, "plan", *SMALL, "--device", "l4,h100-pcie", "--objective", "cost")
    assert code == 2 and "h100-pcie has none" in err


def test_an_unstable_run_prints_no_percentiles(capsys):
    # veca-small at 224 px on an L4: 2,000 img/s at batch 1 is beyond what one device serves
    code, out, _ = run(capsys, "serve", *SMALL, "--device", "l4", "--rate", "2000", "--slo-ms",
                       "50", "--max-batch", "1", "--policy", "static", "--duration-s", "5")
    assert code == 0 and "static C=64 unstable unstable unstable" in out
    code, out, _ = run(capsys, "serve", *SMALL, "--device", "l4", "--rate", "2000", "--slo-ms",
                       "50", "--max-batch", "1", "--policy", "static", "--duration-s", "5",
                       "--format", "json")
    doc = json.loads(out)[0]
    assert doc["unstable"] and doc["capacity_img_per_s"] < 2000


def test_plan_csv_prices_every_candidate_on_one_busy_device(capsys):
    import csv
    import io

    code, out, _ = run(capsys, "plan", *SMALL, "--device", "l4,cpu-epyc-2core", "--dtype", "fp32",
                       "--format", "csv")
    assert code == 0
    for row in csv.DictReader(io.StringIO(out)):
        throughput = float(row["throughput_img_per_s"])
        if row["device"] == "l4":  # 72 W board power; 0.8048 USD/h, an hour serves 3600 x rate
            assert float(row["joules_per_image"]) == pytest.approx(72 / throughput)
            assert float(row["usd_per_million_images_full_use"]) == pytest.approx(
                0.8048 / (3600 * throughput) * 1e6)
        else:  # the CPU entry has neither
            assert row["joules_per_image"] == row["usd_per_million_images_full_use"] == ""
