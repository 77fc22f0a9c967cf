"""What `coreplan serve` prints: its runs, fleets and batchings as tables, JSON and CSV, with
the notes that say what each column means and where a number could not be given."""

from __future__ import annotations

import sys

from coreplan.output import emit, sig3
from planners.limits import MAX_DEVICES


def rate_text(value: float) -> str:
    """Images per second as people read them: 20,000 and 2.423, not 2e+04."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.4g}"


def emit_results(fmt, found, title, slo_s, offered, devices, max_batch, quality_given,
                 common: dict, given_cv, cv_note: str) -> None:
    """A plain run's answer: one row per device and policy (`found`: device, dtype, policy,
    result), latency percentiles or "unstable", attainment, C mix, energy and price."""
    from planners.fleet import device_cv

    several = len({d.name for d, _, _, _ in found}) > 1
    rows, notes, document = [], [], []
    for dev, dtype, policy, r in found:
        rates = serve_rates(dev, r)
        cap = policy.capacity_img_per_s(devices, max_batch)
        unstable = offered > cap  # its percentiles are a transient's: they grow with the run
        row = {"device": dev.name} if several else {}
        row.update({"policy": r.policy,
                    **{f"{q} ms": "unstable" if unstable else r.latency_ms[q]
                       for q in ("p50", "p95", "p99")},
                    "in SLO": f"{r.slo_attainment:.1%}",
                    "img/s": r.throughput_img_per_s,
                    "mean C": "" if r.mean_cores is None else round(r.mean_cores, 1),
                    "batch": round(r.mean_batch, 2),
                    "J/img": sig3(rates.joules_per_image),
                    "$/M img": sig3(rates.usd_per_million_images)})
        if quality_given:
            row["quality"] = "" if r.expected_quality is None else round(r.expected_quality, 2)
        rows.append(row)
        name = f"{dev.name} {r.policy}" if several else r.policy
        if r.mean_cores is not None and len(r.cores_histogram) > 1:
            mix = ", ".join(f"C={c} {k / r.requests:.0%}" for c, k in r.cores_histogram.items())
            notes.append(f"{name}: {mix}; {r.overload_batches:,} of {r.batches:,} batches "
                         f"overloaded (smallest C, objective predicted missed)")
        if r.quality_missing:
            notes.append(f"{name}: no quality for C={', '.join(map(str, r.quality_missing))} "
                         f"in the quality file, so no expected quality")
        notes.append(f"{name}: {r.missed:,} of {r.requests:,} requests over {slo_s * 1e3:g} ms; "
                     f"utilisation {r.utilisation:.0%}")
        if unstable:
            notes.append(f"{name}: unstable: {rate_text(offered)} img/s offered > {rate_text(cap)} "
                         f"img/s, the most it serves; its queue grows all run, so its latencies "
                         f"(in --format json) grow with --duration-s")
        document.append({"device": dev.name, "dtype": dtype, **common,
                         "service_cv": device_cv(dev, given_cv), **r.to_dict(),
                         "max_batch": max_batch, "slo_ms": slo_s * 1e3,
                         "offered_img_per_s": offered, "capacity_img_per_s": cap,
                         "unstable": unstable,
                         "economics": rates.to_dict(), "price_source": dev.price_source})
    notes += [cv_note, rates_note(rows, ENERGY_NOTE)]
    emit(fmt, document=document, rows=[_flat(d) for d in document],
         table_rows=without_empty(rows), title=title,
         caption="\n".join(notes))


J_NOTE = ("J/img: energy per image at the board power while computing (idle draw not "
          "counted)")
ENERGY_NOTE = (J_NOTE + "; $/M img: USD per million images at the device's list price per hour "
               "(price_source in --format json); blank where the device has no such number")


def without_empty(rows: list[dict], columns=("J/img", "$/M img", "$/h")) -> list[dict]:
    """Table rows without the rate columns no row has a number in (a CPU has no board power
    or price): the caption says why they are blank where some are."""
    empty = [c for c in columns if rows and all(row.get(c, "") == "" for row in rows)]
    return [{k: v for k, v in row.items() if k not in empty} for row in rows]


def rates_note(rows: list[dict], note: str) -> str:
    """The rate columns' note, or what takes their place where no device had the numbers."""
    if without_empty(rows) == rows:
        return note
    if any(row.get("J/img", "") != "" for row in rows):
        return J_NOTE + "; no price per image: no device here has price_per_hour_usd (a device file sets it)"
    return ("no energy or price per image: the device has no board_power_w or price_per_hour_usd "
            "(a device file sets them)")


def serve_rates(dev, result):
    """planners.fleet.serve_rates, imported when a result is printed (the CLI starts without
    numpy)."""
    from planners.fleet import serve_rates as rates

    return rates(dev, result)


RATE_COLUMNS = ("img_per_s_per_device", "board_power_w", "joules_per_image",
                "price_per_hour_usd", "usd_per_hour", "usd_per_million_images")


def _flat(result: dict) -> dict:
    """A result for CSV: latency_ms.p99 becomes latency_ms_p99, the economics' rates their own
    columns (unscaled units)."""
    out = {k: v for k, v in result.items() if k not in ("latency_ms", "economics")}
    out.update({f"latency_ms_{k}": v for k, v in result["latency_ms"].items()})
    rates = result.get("economics") or {}
    out.update({k: rates.get(k) for k in RATE_COLUMNS} if "economics" in result else {})
    return out


def emit_fleets(fmt, fleets, title, slo_s, offered, common: dict, dtypes: dict,
                 objective: str, cv_note: str) -> None:
    """--solve devices' answer: one row per device type and policy, ranked by the objective,
    with the capacity bound and the fleet's rates; a line on stderr for each without a fleet."""
    rows, document = [], []
    several = len({f.device.name for f in fleets}) > 1
    for rank, f in enumerate(fleets, 1):
        at, rates = f.result, f.rates
        row = {"rank": rank if f.devices else ""}
        if several:
            row["device"] = f.device.name
        row.update({"policy": f.policy.name, "batch": f.max_batch,
                    "devices": f.devices if f.devices else f"none <= {MAX_DEVICES:,}",
                    "img/s/dev": sig3(f.policy.capacity_img_per_s(1, f.max_batch), 4),
                    "bound": f.capacity_devices,
                    "p99 ms": "unstable" if f.unstable else at.latency_ms["p99"],
                    "in SLO": "" if f.unstable else f"{at.slo_attainment:.1%}",
                    "one fewer": ("unstable" if f.one_fewer_unstable else
                                  f.one_fewer.latency_ms["p99"] if f.one_fewer else ""),
                    "$/h": sig3(rates.usd_per_hour if rates else None),
                    "$/M img": sig3(rates.usd_per_million_images if rates else None),
                    "J/img": sig3(rates.joules_per_image if rates else None)})
        rows.append(row)
        document.append({**f.to_dict(), "rank": rank if f.devices else None,
                         "objective": objective, "dtype": dtypes[f.device.name], **common,
                         "slo_ms": slo_s * 1e3, "offered_img_per_s": offered})
    flat = []
    for d in document:
        head = {k: v for k, v in d.items() if k not in ("result", "one_fewer", "economics")}
        rates = d["economics"] or {}
        flat.append({**head, **{k: rates.get(k) for k in RATE_COLUMNS},
                     **{f"at_{k}": v for k, v in _flat(d["result"]).items()
                        if k not in ("policy", "devices")},
                     "one_fewer_p99_ms": (d["one_fewer"]["latency_ms"]["p99"]
                                          if d["one_fewer"] else None)})
    emit(fmt, document=document, rows=flat, table_rows=without_empty(rows),
         title=title + f": fewest devices for p99 within it, ranked by {objective}",
         caption="\n".join((FLEET_NOTE, cv_note, rates_note(rows, ENERGY_NOTE))))
    for f in fleets:
        if f.devices is None:
            print(f"coreplan: no fleet holds p99 within {slo_s * 1e3:g} ms for "
                  f"{f.device.name} {f.policy.name}: {_why_none(f, slo_s, offered)}",
                  file=sys.stderr)


FLEET_NOTE = ("batch: the largest batch a device takes (searched with --max-batch LIST|auto); "
              "img/s/dev: the most one device serves, full batches back to back at the fastest "
              "C; bound: the capacity bound, devices kept busy with full batches and no queue "
              "(`coreplan plan --demand` at that batch); p99 ms: at that many devices; one "
              "fewer: p99 with one device fewer (which misses the objective), or unstable where one fewer "
              "serves less than is offered (its queue grows without end, whatever a finite run's "
              "p99)")


def _why_none(f, slo_s: float, offered: float) -> str:
    from planners.serving import fastest_s

    fastest = fastest_s(f.policy)
    most = f.policy.capacity_img_per_s(MAX_DEVICES, f.max_batch)
    if fastest > slo_s:
        return f"one image alone takes {fastest * 1e3:.4g} ms"
    if most <= offered:
        return (f"{MAX_DEVICES} devices serve at most {rate_text(most)} img/s, below the "
                f"{rate_text(offered)} offered: the queue grows without end")
    return f"p99 stays above it with {MAX_DEVICES} devices"


BATCHING_NOTE = ("holds: p99 within the objective; chosen: of those that hold, the least busy "
                 "time per image (the least energy; on a fixed fleet the price is fixed), then the "
                 "largest batch and the shortest timeout; batch: largest batch, mean batch: what "
                 "was served; a full batch longer than the objective is not tried; overloaded: "
                 "full batches back to back serve less than is offered")


def emit_batching(fmt, found, devices, title, offered, common, cv_note, slo_s) -> int:
    """--solve batching's answer: every largest batch and timeout tried on the fleet, the chosen
    marked; `found`: (device, dtype, policy, service CV, best or None, tried) per device and
    policy. Exit status 3 where no batching holds the objective."""
    rows, document, failed = [], [], []
    several = len({dev.name for dev, *_ in found}) > 1
    for dev, dtype, policy, cv, best, tried in found:
        if best is None:
            failed.append(f"{dev.name} {policy.name}" if several else policy.name)
        for t in tried:
            r, rates = t.result, serve_rates(dev, t.result)
            row = {"device": dev.name} if several else {}
            row.update({"policy": policy.name, "batch": t.max_batch,
                        "timeout ms": t.batch_timeout_s * 1e3, "p99 ms": r.latency_ms["p99"],
                        "in SLO": f"{r.slo_attainment:.1%}", "mean batch": round(r.mean_batch, 2),
                        "busy": f"{r.utilisation:.0%}", "J/img": sig3(rates.joules_per_image),
                        "": "<- chosen" if t is best else "holds" if t.holds else
                        "overloaded" if policy.capacity_img_per_s(devices, t.max_batch)
                        <= offered else ""})
            rows.append(row)
            document.append({"device": dev.name, "dtype": dtype, **common, "service_cv": cv,
                             "policy": policy.name, "devices": devices, **t.to_dict(),
                             "chosen": t is best, "economics": rates.to_dict(),
                             "slo_ms": slo_s * 1e3, "offered_img_per_s": offered})
    flat = [{**{k: v for k, v in d.items() if k not in ("result", "economics")},
             **{k: (d["economics"] or {}).get(k) for k in RATE_COLUMNS},
             **{f"at_{k}": v for k, v in _flat(d["result"]).items()
                if k not in ("policy", "devices")}} for d in document]
    emit(fmt, document=document, rows=flat, table_rows=without_empty(rows),
         title=title + f", {devices} device(s): largest batch and batch timeout holding p99",
         caption="\n".join((BATCHING_NOTE, cv_note, rates_note(rows, J_NOTE))))
    for name in failed:
        print(f"coreplan: no batching holds p99 within {slo_s * 1e3:g} ms for {name} on "
              f"{devices} device(s): add devices (--solve devices finds how many)", file=sys.stderr)
    return 3 if failed else 0
