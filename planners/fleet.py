"""The cheapest fleet that holds a latency objective, and the batching that holds it.

`fleet_search`: for each device type and each policy on it, the fewest devices whose p99 latency
stays within the objective (`planners.serving.devices_needed`), trying each largest batch among
`batches` (the best by the objective is kept: C is chosen per batch by the elastic policy, the
largest batch per type and policy here); the fleets are then ranked by the
objective (`planners.economics.OBJECTIVES`).

`batching_search`: on a fixed fleet, every largest batch among `batches` and every batch timeout
among `timeouts_s`; a choice holds the objective when its p99 is within it. Of those that hold, the
one with the least busy time per image (the least energy; on a fixed fleet the price is fixed) is
chosen, then the largest batch and the shortest timeout.

A largest batch whose full batch alone takes longer than the objective at the fastest C cannot
hold it and is not tried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from costmodel.errors import ArgumentError
from planners.devices import DeviceSpec
from planners.economics import Economics, economics, rank_key
from planners.limits import MAX_DEVICES
from planners.serving import Policy, ServeResult, devices_needed, serve

AUTO_BATCHES = (1, 2, 4, 8, 16, 32, 64)
TIMEOUT_SHARES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)  # batch timeouts tried, as shares of the objective


@dataclass(frozen=True)
class Fleet:
    """One device type and policy's answer: `devices` (None: none up to the limit holds),
    the largest batch it was found with, its run there and with one device fewer, the capacity
    bound (`Policy.capacity_devices`) and its rates (None without a fleet)."""

    device: DeviceSpec
    policy: Policy
    devices: int | None
    max_batch: int
    result: ServeResult
    one_fewer: ServeResult | None
    capacity_devices: int
    rates: Economics | None
    unstable: bool  # no fleet up to the limit serves the offered rate at all
    one_fewer_unstable: bool = False  # one device fewer serves less than is offered
    service_cv: float = 0.0  # the service-time variation it was run with

    def to_dict(self) -> dict:
        return {"device": self.device.name, "policy": self.policy.name, "devices": self.devices,
                "max_batch": self.max_batch, "capacity_devices": self.capacity_devices,
                "unstable": self.unstable, "one_fewer_unstable": self.one_fewer_unstable,
                "service_cv": self.service_cv,
                "result": self.result.to_dict(),
                "one_fewer": self.one_fewer.to_dict() if self.one_fewer else None,
                "economics": self.rates.to_dict() if self.rates else None,
                "price_source": self.device.price_source}


def fits_objective(policy: Policy, max_batch: int, slo_s: float) -> bool:
    """A full batch at the policy's fastest C finishes within the objective."""
    column = policy.table.column(policy.fastest_cores)
    return float(policy.table.seconds[max_batch - 1, column]) <= slo_s


def candidate_batches(policy: Policy, batches, slo_s: float) -> list[int]:
    """The batches of `batches` the policy's table covers and whose full batch fits the objective
    (at least the smallest, so that a search always has one)."""
    covered = [b for b in batches if 1 <= b <= policy.table.max_batch]
    if not covered:
        raise ArgumentError("batches", f"none within the service table's 1..{policy.table.max_batch}")
    fitting = [b for b in covered if fits_objective(policy, b, slo_s)]
    return fitting or covered[:1]


def device_cv(device: DeviceSpec, service_cv: float | None) -> float:
    """The service-time variation to run a device with: the one given, else the device's own
    measured `service_cv`, else none (deterministic, as the latency model predicts)."""
    return service_cv if service_cv is not None else (device.service_cv or 0.0)


def fleet_for(device: DeviceSpec, policy: Policy, arrivals: np.ndarray, *, slo_s: float,
              batches, objective: str = "devices", batch_timeout_s: float = 0.0,
              service_cv: float | None = None, seed: int = 0, limit: int = MAX_DEVICES,
              offered_img_per_s: float | None = None) -> Fleet:
    """The fewest devices of one type and policy holding p99 within `slo_s`, the largest batch
    chosen among `batches` by `objective` (module docstring); `service_cv` None: the device's
    own (`device_cv`). The capacity bound is taken at `offered_img_per_s` (the rate asked for;
    default the arrivals' own mean rate, which a random stream misses by a little)."""
    service_cv = device_cv(device, service_cv)
    span = float(arrivals[-1] - arrivals[0]) or 1.0
    offered = len(arrivals) / span
    asked = offered_img_per_s or offered
    found = []
    for b in candidate_batches(policy, batches, slo_s):
        k, at, fewer = devices_needed(policy, arrivals, slo_s=slo_s, max_batch=b,
                                      batch_timeout_s=batch_timeout_s, limit=limit,
                                      service_cv=service_cv, seed=seed)
        rates = serve_rates(device, at) if k else None
        unstable = k is None and policy.capacity_img_per_s(limit, b) <= offered
        short = bool(k and k > 1 and policy.capacity_img_per_s(k - 1, b) <= offered)
        found.append(Fleet(device, policy, k, b, at, fewer, policy.capacity_devices(asked, b),
                           rates, unstable, short, service_cv))
    return min(found, key=lambda f: rank_key(objective, f.rates))


def serve_rates(device: DeviceSpec, result: ServeResult) -> Economics:
    """A simulated run's rates on `device`: its devices, throughput and utilisation."""
    return economics(device, devices=result.devices, img_per_s=result.throughput_img_per_s,
                     utilisation=result.utilisation)


def fleet_search(options: list[tuple[DeviceSpec, list[Policy]]], arrivals: np.ndarray, *,
                 slo_s: float, objective: str = "devices", batches=(8,),
                 batch_timeout_s: float = 0.0, service_cv: float | None = None, seed: int = 0,
                 limit: int = MAX_DEVICES, offered_img_per_s: float | None = None) -> list[Fleet]:
    """Every device type's and policy's fleet, ranked by `objective` (best first; a type and
    policy that no fleet holds the objective with last)."""
    fleets = [fleet_for(device, policy, arrivals, slo_s=slo_s, batches=batches,
                        objective=objective, batch_timeout_s=batch_timeout_s,
                        service_cv=service_cv, seed=seed, limit=limit,
                        offered_img_per_s=offered_img_per_s)
              for device, policies in options for policy in policies]
    return sorted(fleets, key=lambda f: rank_key(objective, f.rates))


@dataclass(frozen=True)
class Batching:
    """One largest batch and batch timeout on a fixed fleet, and its run."""

    max_batch: int
    batch_timeout_s: float
    result: ServeResult
    holds: bool

    def to_dict(self) -> dict:
        return {"max_batch": self.max_batch, "batch_timeout_ms": self.batch_timeout_s * 1e3,
                "holds": self.holds, "result": self.result.to_dict()}


def batching_search(policy: Policy, arrivals: np.ndarray, *, devices: int, slo_s: float,
                    batches=AUTO_BATCHES, timeouts_s=None, service_cv: float = 0.0,
                    seed: int = 0) -> tuple[Batching | None, list[Batching]]:
    """(the chosen batching or None, every batching tried) on `devices` devices (module
    docstring). `timeouts_s` defaults to `TIMEOUT_SHARES` of the objective."""
    timeouts = sorted(set(timeouts_s if timeouts_s is not None
                          else [share * slo_s for share in TIMEOUT_SHARES]))
    if any(not (math.isfinite(t) and t >= 0) for t in timeouts):
        raise ArgumentError("timeouts_s", "must be numbers >= 0")
    tried = []
    for b in candidate_batches(policy, batches, slo_s):
        for timeout in (timeouts if b > 1 else [0.0]):  # a batch of one never waits to fill
            result = serve(policy, arrivals, slo_s=slo_s, devices=devices, max_batch=b,
                           batch_timeout_s=timeout, service_cv=service_cv, seed=seed)
            tried.append(Batching(b, timeout, result, result.latency_ms["p99"] <= slo_s * 1e3))
    holding = [t for t in tried if t.holds]
    if not holding:
        return None, tried
    busy = {id(t): t.result.utilisation * devices / t.result.throughput_img_per_s for t in holding}
    best = min(holding, key=lambda t: (round(busy[id(t)], 12), -t.max_batch, t.batch_timeout_s))
    return best, tried
