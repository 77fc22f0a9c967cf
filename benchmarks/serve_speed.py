"""Wall time of `planners.serving.serve` on 1e6 requests (the target: <= 10 s on one core).

Three runs of each scenario, interleaved; prints the median and the range. Scenarios: veca-base at
1024 px on an L4 (bf16), service times from the latency model:
- worst case for the event loop: batch 1, one device, utilisation 0.9 at C = 64 (1e6 batches);
- a fleet: batches up to 8, 8 devices, bursty arrivals at 0.8 of the fleet's capacity.
Run on one core: taskset -c 0 .venv/bin/python benchmarks/serve_speed.py
"""

from __future__ import annotations

import statistics
import time

from costmodel.spec import get_model
from planners.devices import get_device
from planners.serving import Policy, serve, service_table
from planners.workload import bursty, poisson

REQUESTS = 1_000_000


def scenarios():
    spec, device = get_model("veca-base"), get_device("l4")
    one = service_table(spec, device, resolution=1024, dtype="bf16", max_batch=1)
    eight = service_table(spec, device, resolution=1024, dtype="bf16", max_batch=8)
    rate = 0.9 / float(one.seconds[0, -1])
    single = poisson(rate, REQUESTS / rate, seed=1)
    fleet_rate = 0.8 * eight.capacity_img_per_s(64, devices=8)
    fleet = bursty(fleet_rate, REQUESTS / fleet_rate, seed=1)
    slo = 5 * float(one.seconds[0, -1])
    for kind, table_ in (("static", one), ("elastic", one)):
        yield f"{kind}, batch 1, 1 device, Poisson", Policy(kind, kind, table_, 64), single, \
            dict(slo_s=slo, max_batch=1)
    for kind in ("static", "elastic"):
        yield f"{kind}, batch <= 8, 8 devices, bursty", Policy(kind, kind, eight, 64), fleet, \
            dict(slo_s=slo, max_batch=8, devices=8)


def main() -> None:
    cases = list(scenarios())
    times = {name: [] for name, *_ in cases}
    for _ in range(3):
        for name, policy, arrivals, kwargs in cases:
            start = time.perf_counter()
            serve(policy, arrivals, **kwargs)
            times[name].append(time.perf_counter() - start)
    for name, policy, arrivals, _ in cases:
        t = times[name]
        print(f"{name}: {len(arrivals):,} requests, median {statistics.median(t):.2f} s "
              f"(min {min(t):.2f}, max {max(t):.2f})")
    print(f"worst_seconds_per_million={max(statistics.median(t) for t in times.values()) / (len(cases[0][2]) / 1e6):.2f}")


if __name__ == "__main__":
    main()
