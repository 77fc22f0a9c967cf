"""The serving simulator: queueing theory, the policies, the fleet search and bad input.

Expected numbers come from queueing theory (Pollaczek-Khinchine) or from schedules worked out by
hand in the test; the service tables are written here, not computed by the latency model, except
where a test says it checks the CLI end to end."""

import json

import numpy as np
import pytest

from coreplan.cli import main
from planners.serving import Policy, ServiceTable, devices_needed, serve
from planners.workload import Bursty, bursty, poisson, read_quality, read_trace

CORES = (8, 16, 24, 32, 40, 48, 56, 64)


def table(seconds_of, max_batch=1, cores=CORES, model="m"):
    """A hand-written service table: seconds_of(b, C)."""
    return ServiceTable(model, cores, np.array([[seconds_of(b, c) for c in cores]
                                                for b in range(1, max_batch + 1)]))


def static(t, cores=64):
    return Policy(f"static C={cores}", "static", t, cores)


def elastic(t):
    return Policy("elastic", "elastic", t)


# ----------------------------------------------------------------------------- M/D/1
@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_mean_wait_is_the_pollaczek_khinchine_value(rho):
    s = 0.010  # 10 ms per image, whatever C
    t = table(lambda b, c: s)
    rate = rho / s
    arrivals = poisson(rate, 400_000 / rate, seed=11)
    r = serve(static(t), arrivals, slo_s=1.0, max_batch=1)
    expected_wait_ms = rho * s / (2 * (1 - rho)) * 1e3  # M/D/1: 5 ms at 0.5, 20 ms at 0.8
    assert r.wait_ms_mean == pytest.approx(expected_wait_ms, rel=0.02)
    assert r.utilisation == pytest.approx(rho, rel=0.01)
    assert r.service_ms_mean == pytest.approx(10.0)
    assert r.latency_ms["mean"] == pytest.approx(expected_wait_ms + 10.0, rel=0.02)


@pytest.mark.parametrize("cv", [0.5, 1.0])
def test_service_time_variation_gives_the_m_g_1_wait(cv):
    """Service times varied with coefficient of variation cv around 10 ms (gamma, mean 1):
    Pollaczek-Khinchine's M/G/1 mean wait rho E[S] (1 + cv^2) / (2 (1 - rho)): at rho 0.7,
    29.17 ms for cv 0.5 and 46.67 ms for cv 1 (M/M/1), against 11.67 ms deterministic."""
    s, rho = 0.010, 0.7
    t = table(lambda b, c: s)
    rate = rho / s
    arrivals = poisson(rate, 600_000 / rate, seed=5)
    r = serve(static(t), arrivals, slo_s=1.0, max_batch=1, service_cv=cv, seed=3)
    expected_wait_ms = rho * s * (1 + cv ** 2) / (2 * (1 - rho)) * 1e3
    assert r.wait_ms_mean == pytest.approx(expected_wait_ms, rel=0.04)
    assert r.service_ms_mean == pytest.approx(10.0, rel=0.01)  # the factors have mean 1
    same = serve(static(t), arrivals, slo_s=1.0, max_batch=1, service_cv=cv, seed=3)
    assert same.wait_ms_mean == r.wait_ms_mean  # seeded: the same run twice


def test_a_bad_service_cv_is_one_clear_error():
    from costmodel.errors import CoreplanError

    t = table(lambda b, c: 0.01)
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(CoreplanError, match="service_cv"):
            serve(static(t), np.array([0.0, 0.1]), slo_s=1.0, max_batch=1, service_cv=bad)


def test_dynamic_batching_by_hand():
    # arrivals 0, 1, 2, 10 ms; batches of up to 3 wait at most 5 ms; 1 ms per batch.
    # device free at 0: head 0 alone, the batch fills at 2 ms (before 0 + 5) -> [0,1,2] at 2,
    # done at 3. Head 10 ms: never fills -> dispatched at 10 + 5 = 15, done at 16.
    t = table(lambda b, c: 0.001, max_batch=3, cores=(None,))
    r = serve(Policy("static", "static", t), np.array([0.0, 0.001, 0.002, 0.010]), slo_s=0.0045,
              max_batch=3, batch_timeout_s=0.005)
    # latencies 3, 2, 1 and 6 ms
    assert r.batches == 2 and r.mean_batch == 2.0
    assert r.latency_ms["mean"] == pytest.approx((3 + 2 + 1 + 6) / 4)
    assert r.missed == 1 and r.slo_attainment == 0.75
    assert r.mean_cores is None


def test_two_devices_share_one_queue_by_hand():
    # 4 requests at 0 ms, 2 devices, batches of 1 taking 10 ms: two start at 0, two at 10 ms.
    t = table(lambda b, c: 0.010, cores=(None,))
    r = serve(Policy("static", "static", t), np.zeros(4), slo_s=1.0, devices=2, max_batch=1)
    assert r.latency_ms["mean"] == pytest.approx((10 + 10 + 20 + 20) / 4)
    assert r.utilisation == pytest.approx(1.0)


# ----------------------------------------------------------------------------- the policies
def c_matters(b, c):
    return b * (0.005 + c * 0.0001)  # 5.8 ms at C=8 .. 11.4 ms at C=64, per image


def test_elastic_beats_static_near_saturation():
    t = table(c_matters)
    rate = 0.9 / c_matters(1, 64)  # utilisation 0.9 at C = 64
    arrivals = poisson(rate, 100_000 / rate, seed=3)
    slo = 5 * c_matters(1, 64)
    fixed = serve(static(t), arrivals, slo_s=slo, max_batch=1)
    flexible = serve(elastic(t), arrivals, slo_s=slo, max_batch=1)
    assert flexible.slo_attainment > fixed.slo_attainment + 0.10
    assert flexible.mean_cores < 64
    assert flexible.latency_ms["p99"] < fixed.latency_ms["p99"]
    assert sum(flexible.cores_histogram.values()) == flexible.requests == len(arrivals)


def test_elastic_runs_the_largest_budget_at_low_load():
    t = table(c_matters)
    rate = 0.1 / c_matters(1, 64)
    arrivals = poisson(rate, 20_000 / rate, seed=4)
    r = serve(elastic(t), arrivals, slo_s=5 * c_matters(1, 64), max_batch=1)
    assert r.cores_histogram.get(64, 0) / r.requests > 0.98
    assert r.mean_cores > 63


def test_elastic_falls_to_the_smallest_budget_under_overload():
    t = table(c_matters)
    rate = 2.0 / c_matters(1, 8)  # twice what even C=8 can serve
    arrivals = poisson(rate, 5_000 / rate, seed=5)
    r = serve(elastic(t), arrivals, slo_s=3 * c_matters(1, 64), max_batch=1)
    assert r.cores_histogram.get(8, 0) / r.requests > 0.99
    assert r.overload_batches > 0.9 * r.batches
    assert r.missed > 0.5 * r.requests


def test_elastic_looks_past_the_head_of_the_queue():
    # 10 requests at once, one device, 1 per batch, s(C) = 5 + 0.1 C ms. The objective (60 ms)
    # lets the first request run at C=64 (11.4 ms), but then the tenth finishes after 60 ms. A
    # head-only policy would choose 64 first; this one needs 10 s <= 60 ms: s <= 6 ms, C = 8
    # (5.8 ms). After k such batches, t = 5.8k and 10 - k wait: s <= (60 - 5.8k) / (10 - k),
    # which first admits C = 16 (6.6 ms) at k = 8 (s <= 6.8); at k = 9, t = 53.0: s <= 7.0,
    # C = 16 again; the last finishes at 59.6 ms.
    t = table(c_matters)
    r = serve(elastic(t), np.zeros(10), slo_s=0.060, max_batch=1)
    assert r.cores_histogram == {8: 8, 16: 2}
    assert r.missed == 0
    # finishes 5.8 k ms for k = 1..8, then 53.0 and 59.6 ms
    assert r.latency_ms["mean"] == pytest.approx((5.8 * 36 + 53.0 + 59.6) / 10)


def test_static_p99_does_not_fall_as_the_load_rises():
    t = table(lambda b, c: 0.010)
    p99 = [serve(static(t), poisson(rho / 0.010, 50_000 * 0.010 / rho, seed=6), slo_s=1.0,
                 max_batch=1).latency_ms["p99"] for rho in (0.3, 0.5, 0.7, 0.85, 0.95)]
    assert p99 == sorted(p99)


def test_same_seed_same_answer():
    t = table(c_matters, max_batch=4)
    a = serve(elastic(t), bursty(200, 100, seed=9), slo_s=0.05, max_batch=4, devices=2)
    b = serve(elastic(t), bursty(200, 100, seed=9), slo_s=0.05, max_batch=4, devices=2)
    c = serve(elastic(t), bursty(200, 100, seed=10), slo_s=0.05, max_batch=4, devices=2)
    assert a == b and a != c


# ----------------------------------------------------------------------------- fleet size
def test_fewest_devices_is_minimal():
    t = table(c_matters, max_batch=4)
    arrivals = bursty(2_000, 30, seed=12)
    for policy in (static(t), elastic(t)):
        k, at, fewer = devices_needed(policy, arrivals, slo_s=0.05, max_batch=4)
        assert k is not None and k > 1
        again = serve(policy, arrivals, slo_s=0.05, devices=k, max_batch=4)
        one_fewer = serve(policy, arrivals, slo_s=0.05, devices=k - 1, max_batch=4)
        assert again.latency_ms["p99"] <= 50 < one_fewer.latency_ms["p99"]
        assert at == again and fewer == one_fewer


# ----------------------------------------------------------------------------- arrivals and files
def test_poisson_and_bursty_keep_the_mean_rate():
    assert len(poisson(100, 2_000, seed=1)) / 2_000 == pytest.approx(100, rel=0.01)
    # MMPP-2: bursts at 4x for 1 s, calm 9 s at (1 - 0.1 * 4) / 0.9 = 2/3 of the rate
    assert Bursty().calm_factor == pytest.approx(2 / 3)
    assert len(bursty(100, 20_000, seed=1)) / 20_000 == pytest.approx(100, rel=0.03)


def test_bursty_arrivals_come_in_bursts():
    # counts per 1 s window: Poisson has variance = mean; the MMPP-2 much more (its bursts)
    counts = np.bincount(bursty(100, 2_000, seed=2).astype(int))
    assert counts.var() > 5 * counts.mean()


def test_trace_file(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("time_s\n# a comment\n10\n11\n12\n13\n")
    assert read_trace(trace).tolist() == [0.0, 1.0, 2.0, 3.0]
    # 4 requests over 3 s: 4/3 per second; replayed at 8/s the times shrink by (4/3)/8 = 1/6
    assert read_trace(trace, rate=8).tolist() == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6])
    assert read_trace(trace, duration_s=2.5).tolist() == [0.0, 1.0, 2.0]


def test_quality_file_and_expected_quality(tmp_path):
    shipped = read_quality("data/quality/veca-base-imagenet1k.csv")
    assert shipped == {64: 81.93}  # only C = 64 is published; nothing invented
    quality = tmp_path / "q.csv"
    quality.write_text("cores,quality\n8,70\n16,72\n64,80\n")
    t = table(c_matters)
    r = serve(elastic(t), np.zeros(10), slo_s=0.060, max_batch=1, quality=read_quality(quality))
    # eight at C = 8 and two at C = 16 (test_elastic_looks_past_the_head_of_the_queue)
    assert r.expected_quality == pytest.approx((8 * 70 + 2 * 72) / 10)
    arrivals = poisson(10, 100, seed=1)
    r = serve(elastic(t), arrivals, slo_s=1.0, max_batch=1, quality=shipped)
    assert r.cores_histogram == {64: len(arrivals)} and r.expected_quality == 81.93
    r = serve(elastic(t), np.zeros(10), slo_s=0.060, max_batch=1, quality=shipped)
    assert r.expected_quality is None and r.quality_missing == (8, 16)


# ----------------------------------------------------------------------------- the CLI
def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


SERVE = ["serve", "veca-small", "--device", "cpu-epyc-2core", "--resolution", "512", "--dtype", "fp32"]


def test_cli_json_one_object_per_policy(capsys):
    code, out, _ = run(capsys, *SERVE, "--rate", "2.5", "--slo-ms", "2000", "--max-batch", "1",
                       "--duration-s", "4000", "--format", "json", "--quality",
                       "data/quality/veca-base-imagenet1k.csv", "--seed", "3")
    assert code == 0
    docs = json.loads(out)
    assert [d["policy"] for d in docs] == ["static C=64", "elastic", "dense dinov3-small"]
    for d in docs:
        assert {"policy", "latency_ms", "slo_attainment", "throughput_img_per_s", "mean_cores",
                "cores_histogram", "expected_quality", "requests", "batches"} <= set(d)
        assert set(d["latency_ms"]) == {"mean", "p50", "p95", "p99"}
    static_doc, elastic_doc, dense_doc = docs
    assert static_doc["expected_quality"] == 81.93 and static_doc["mean_cores"] == 64
    assert dense_doc["mean_cores"] is None and dense_doc["cores_histogram"] == {}
    # on this CPU, C = 8 is ~20% faster than C = 64 at 512 px: elastic holds the objective more
    assert elastic_doc["slo_attainment"] > static_doc["slo_attainment"] + 0.1
    code, again, _ = run(capsys, *SERVE, "--rate", "2.5", "--slo-ms", "2000", "--max-batch", "1",
                         "--duration-s", "4000", "--format", "json", "--quality",
                         "data/quality/veca-base-imagenet1k.csv", "--seed", "3")
    assert again == out


def test_cli_csv_keeps_unscaled_numbers(capsys):
    import csv
    import io

    code, out, _ = run(capsys, *SERVE, "--rate", "2.5", "--slo-ms", "2000", "--max-batch", "1",
                       "--duration-s", "400", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["policy"] for r in rows] == ["static C=64", "elastic",
                                                          "dense dinov3-small"]
    assert 0 <= float(rows[0]["slo_attainment"]) <= 1 and float(rows[0]["latency_ms_p99"]) > 0
    assert json.loads(rows[1]["cores_histogram"])  # the C mix, as JSON in one cell


def test_cli_service_time_is_the_planners_latency(capsys):
    # one request, nothing queued: its latency is the plan's predicted batch-1 latency
    trace_free = run(capsys, "plan", "veca-small", "--device", "cpu-epyc-2core", "--resolution", "512",
                     "--dtype", "fp32", "--cores-allowed", "64", "--format", "json")[1]
    planned = json.loads(trace_free)["chosen"]["latency_ms"]
    # (--service-cv 0: this CPU's measured variation would vary it around the plan's)
    code, out, _ = run(capsys, *SERVE, "--rate", "0.001", "--duration-s", "3000", "--slo-ms",
                       "5000", "--policy", "static", "--format", "json", "--seed", "1",
                       "--service-cv", "0")
    assert code == 0
    assert json.loads(out)[0]["latency_ms"]["p50"] == pytest.approx(planned)


def test_cli_solve_devices_and_chart(capsys, tmp_path):
    chart = tmp_path / "serve.html"
    code, out, _ = run(capsys, *SERVE, "--rate", "20", "--slo-ms", "3000", "--solve", "devices",
                       "--duration-s", "300", "--format", "json", "--out", str(chart))
    assert code == 0
    docs = json.loads(out)
    for d in docs:
        # one fewer misses the objective, or serves less than is offered (then its percentiles
        # are a transient's, whatever they came to in this run)
        assert d["result"]["latency_ms"]["p99"] <= 3000
        assert d["one_fewer_unstable"] or d["one_fewer"]["latency_ms"]["p99"] > 3000
        assert d["result"]["devices"] == d["devices"]
    assert any(d["one_fewer_unstable"] for d in docs)
    assert chart.stat().st_size > 10_000 and "p99 latency" in chart.read_text()


def test_cli_solve_devices_exits_3_when_no_fleet_can(capsys):
    # veca-small at 512 px on this CPU: dense dinov3-small takes longer for one image (plan says
    # 402.2 ms) than the 400 ms objective; VECA at C = 64 (347 ms) can be served
    dense = json.loads(run(capsys, "plan", "dinov3-small", "--device", "cpu-epyc-2core",
                           "--resolution", "512", "--dtype", "fp32", "--format", "json")[1])
    assert dense["chosen"]["latency_ms"] > 400
    code, out, err = run(capsys, *SERVE, "--rate", "1", "--slo-ms", "400", "--solve", "devices",
                         "--duration-s", "200", "--format", "json")
    assert code == 3
    docs = {d["policy"]: d for d in json.loads(out)}
    assert docs["dense dinov3-small"]["devices"] is None
    assert docs["static C=64"]["devices"] >= 1
    assert ("no fleet holds p99 within 400 ms for cpu-epyc-2core dense dinov3-small: one image "
            "alone takes" in err)


@pytest.mark.parametrize("args, message", [
    (["--rate", "0", "--slo-ms", "100"], "--rate: must be a positive number"),
    (["--rate", "-3", "--slo-ms", "100"], "--rate: must be a positive number"),
    (["--rate", "inf", "--slo-ms", "100"], "--rate: must be a positive number"),
    (["--rate", "1", "--slo-ms", "10"], "below the fastest possible service"),
    (["--rate", "1", "--slo-ms", "nan"], "--slo-ms: must be a positive number"),
    (["--rate", "1", "--slo-ms", "900", "--policy", "best"], "unknown policy 'best'"),
    (["--slo-ms", "900"], "--rate is needed"),
    (["--rate", "1", "--slo-ms", "900", "--arrivals", "sometimes"], "unknown --arrivals"),
    (["--rate", "1", "--slo-ms", "900", "--batch-timeout-ms", "-1"], "--batch-timeout-ms"),
    (["--rate", "1", "--slo-ms", "900", "--max-batch", "0"], "--max-batch"),
    (["--rate", "1", "--slo-ms", "900", "--max-batch", "100000"], "--max-batch must be an integer in 1..4096"),
    (["--rate", "1", "--slo-ms", "900", "--devices", "0"], "--devices"),
    (["--rate", "1", "--slo-ms", "900", "--solve", "cores"], "unknown solve 'cores'"),
    (["--rate", "1", "--slo-ms", "900", "--cores", "12"], "--cores 12 invalid"),
    (["--rate", "1e9", "--slo-ms", "900", "--duration-s", "1e3"], "at most"),
    (["--rate", "1", "--slo-ms", "900", "--policy", "elastic", "--cores", "8"], "does not use"),
    (["--rate", "1", "--slo-ms", "900", "--policy", "static", "--cores-allowed", "8"],
     "does not use"),
])
def test_cli_bad_input_is_one_line(capsys, args, message):
    code, _, err = run(capsys, *SERVE, *args)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_bad_files_and_dense_models(capsys, tmp_path):
    bad_trace = tmp_path / "trace.txt"
    bad_trace.write_text("1.0\n2.0\nsoon\n")
    bad_quality = tmp_path / "q.csv"
    bad_quality.write_text("cores,quality\neight,70\n")
    cases = [
        ([*SERVE, "--slo-ms", "900", "--arrivals", str(bad_trace)], f"{bad_trace}:3"),
        ([*SERVE, "--slo-ms", "900", "--arrivals", str(tmp_path)], "is a directory"),
        ([*SERVE, "--rate", "1", "--slo-ms", "900", "--quality", str(bad_quality)], "row 2"),
        ([*SERVE, "--rate", "1", "--slo-ms", "900", "--quality", str(tmp_path / "none.csv")],
         "no such file"),
        (["serve", "dinov3-small", "--device", "cpu-epyc-2core", "--resolution", "512", "--rate", "1",
          "--slo-ms", "900", "--policy", "elastic"], "needs a core model"),
        ([*SERVE, "--rate", "1", "--slo-ms", "900", "--versus", "veca-base"], "takes a dense"),
    ]
    for args, message in cases:
        code, _, err = run(capsys, *args)
        assert code == 2, (args, err)
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_serve_takes_a_service_cv_on_the_command_line(cli):
    """Batch 1, one device, Poisson arrivals: P-K says the mean wait scales by (1 + cv^2), so
    cv 1 doubles the deterministic wait (same arrivals, same seed)."""
    args = ("serve", "veca-small", "--device", "l4", "--resolution", "224", "--rate", "30",
            "--slo-ms", "100", "--policy", "static", "--max-batch", "1", "--duration-s", "4000",
            "--format", "json")
    code, out, err = cli(*args)
    assert code == 0, err
    plain = json.loads(out)[0]["wait_ms_mean"]
    code, out, err = cli(*args, "--service-cv", "1")
    assert code == 0, err
    assert json.loads(out)[0]["wait_ms_mean"] == pytest.approx(2 * plain, rel=0.1)


def test_serve_json_and_csv_say_what_was_run(cli):
    import csv
    import io

    args = ("serve", "veca-small", "--device", "l4", "--resolution", "224", "--rate", "30",
            "--slo-ms", "100", "--dtype", "fp16", "--arrivals", "bursty", "--duration-s", "60")
    want = {"device": "l4", "resolution": 224, "dtype": "fp16", "runtime": "eager",
            "arrivals": "bursty", "service_cv": 0.0}
    for extra in ((), ("--solve", "devices")):
        code, out, err = cli(*args, *extra, "--format", "json")
        assert code == 0, err
        for row in json.loads(out):
            assert {k: row[k] for k in want} == want
        code, out, _ = cli(*args, *extra, "--format", "csv")
        row = next(csv.DictReader(io.StringIO(out)))
        assert (row["device"], row["resolution"], row["dtype"], row["arrivals"]) == \
            ("l4", "224", "fp16", "bursty")
