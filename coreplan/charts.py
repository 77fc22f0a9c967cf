"""Charts (altair): each `*_frame` builds a tidy DataFrame from the public API of costmodel,
planners and the validate CSV; each `*_chart` turns such a frame into a Vega-Lite chart.

Units are in every axis title. `save(chart, path)` writes .html (self-contained, renders offline),
.png or .svg (vl-convert, offline).
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from coreplan.output import check_out
from costmodel.config import configure
from costmodel.cost import count
from costmodel.errors import CoreplanError
from costmodel.memory import inference_memory
from costmodel.spec import ModelSpec
from planners.devices import DeviceSpec
from planners.planner import Budgets, plan
from planners.roofline import simulate

WIDTH, HEIGHT = 520, 320


# --------------------------------------------------------------------------- cost scaling
def scaling_frame(specs: list[ModelSpec], resolutions, batch: int = 1, dtype: str = "fp32") -> pd.DataFrame:
    """FLOPs and inference memory per model x resolution; core models get one row per budget C."""
    rows = []
    for spec in specs:
        for res in resolutions:
            side = spec.round_resolution(res)
            for cores in (spec.budgets if spec.is_core else (None,)):
                c = configure(spec, side, cores=cores, batch=batch, dtype=dtype)
                label = f"{spec.name} C={cores}" if cores else spec.name
                rows.append({"model": spec.name, "series": label, "kind": spec.kind,
                             "cores": cores or 0, "resolution": side, "batch": batch,
                             "dtype": dtype,
                             "tokens": c.seq_len, "gflops": count(c).total / 1e9,
                             "memory_gb": inference_memory(c).total_bytes / 1e9})
    return pd.DataFrame(rows)


def scaling_chart(df: pd.DataFrame, quantity: str = "gflops", log: bool = True) -> alt.Chart:
    """Cost against resolution per model and C; with a core model, a second panel shows what C
    adds over the smallest budget at each resolution (in %, from zero): on the first panel's log
    axis the budgets' lines lie within a few percent of each other and cannot be told apart."""
    title = {"gflops": "forward GFLOPs (2 per multiply-add)",
             "memory_gb": "inference memory, weights + activation peak (GB)"}[quantity]
    scale = alt.Scale(type="log") if log else alt.Scale(zero=True)
    setup = f"batch {df['batch'].iloc[0]}, {df['dtype'].iloc[0]}" if len(df) else ""
    df = df.assign(label=[f"{s} (dense, dashed)" if k != "core" else s
                          for s, k in zip(df["series"], df["kind"])])
    color = alt.Color("label:N", title="model / active cores", sort=alt.SortField("cores"),
                      scale=alt.Scale(scheme="category20"),
                      legend=alt.Legend(columns=1, symbolLimit=40, symbolType="stroke",
                                        symbolStrokeWidth=3))
    heading = (f"Cost vs resolution: {title.split(' (')[0]} ({setup}; "
               f"{'log y axis' if log else 'y from zero'})")
    added = _added_by_cores(df, quantity)
    main = alt.Chart(df, title=heading if added.empty else "").mark_line(point=True).encode(
        x=alt.X("resolution:Q", title="input resolution (px per side)"),
        y=alt.Y(f"{quantity}:Q", title=title, scale=scale),
        color=color, strokeDash=alt.StrokeDash("kind:N", legend=None),
        tooltip=["series", "resolution", "tokens", alt.Tooltip("gflops:Q", format=",.1f"),
                 alt.Tooltip("memory_gb:Q", format=".3f")],
    ).properties(width=WIDTH, height=HEIGHT)
    if added.empty:
        return main
    what = title.split(" (")[0].split(", ")[0]
    panel = alt.Chart(added, title=f"What C adds: {what} over the smallest C at the same "
                                   f"resolution (y from zero)").mark_line(point=True).encode(
        x=alt.X("resolution:Q", title="input resolution (px per side)"),
        y=alt.Y("added_pct:Q", title=f"{what} over the smallest C (%)",
                scale=alt.Scale(zero=True)),
        color=color,
        tooltip=["series", "resolution", alt.Tooltip("added_pct:Q", format=".2f")],
    ).properties(width=WIDTH, height=HEIGHT // 2)
    return alt.vconcat(main, panel, title=heading)


def _added_by_cores(df: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """For each core model's row: its quantity over the same model's at the smallest C at that
    resolution, in percent (0 for the smallest C itself)."""
    core = df[df["cores"] > 0]
    if core.empty:
        return core.assign(added_pct=[])
    smallest = core.loc[core.groupby(["model", "resolution"])["cores"].idxmin(),
                        ["model", "resolution", quantity]].rename(columns={quantity: "base"})
    merged = core.merge(smallest, on=["model", "resolution"])
    return merged.assign(added_pct=(merged[quantity] / merged["base"] - 1) * 100)


# --------------------------------------------------------------------------- crossover
def crossover_frame(core: ModelSpec, dense: ModelSpec, scope: str = "model") -> pd.DataFrame:
    """For each nested budget C: the smallest resolution from which the core model is cheaper."""
    from costmodel.analysis import crossover

    rows = []
    for cores in core.budgets:
        x = crossover(core, dense, cores=cores, scope=scope)
        rows.append({"cores": cores, "crossover_px": x.resolution, "crossover_tokens": x.patch_tokens,
                     "pair": f"{core.name} vs {dense.name}", "scope": scope})
    return pd.DataFrame(rows)


def crossover_chart(df: pd.DataFrame) -> alt.Chart:
    return alt.Chart(df, title="Where core-periphery attention becomes cheaper").mark_line(
        point=True).encode(
        x=alt.X("cores:Q", title="active core tokens C", scale=alt.Scale(domain=[0, 64])),
        y=alt.Y("crossover_px:Q", title="crossover resolution (px per side; cheaper above)"),
        color=alt.Color("pair:N", title="core vs dense model"),
        tooltip=["pair", "cores", "crossover_px", "crossover_tokens", "scope"],
    ).properties(width=WIDTH, height=HEIGHT)


# --------------------------------------------------------------------------- validation
def validation_frame(measurements: str | Path, device: DeviceSpec,
                     model_file=None) -> pd.DataFrame:
    """Measured vs predicted (time from the device's roofline, memory from costmodel) per CSV row."""
    from costmodel.measurements import read_measurements
    from planners.roofline import config_rooflines, latency_s

    rows = []
    for m in (r for r in read_measurements(measurements) if r.timed):
        c = m.config(model_file)
        label = dict(model=m.model, impl=m.impl, resolution=m.resolution, cores=m.core_tokens,
                     batch=m.batch)
        rows.append({**label, "quantity": "time (ms)", "measured": m.time_s * 1e3,
                     "predicted": float(latency_s(config_rooflines(c, device), device)) * 1e3})
        if m.mem_activation_peak_bytes_measured is not None:
            rows.append({**label, "quantity": "activation peak (MB)",
                         "measured": m.mem_activation_peak_bytes_measured / 1e6,
                         "predicted": inference_memory(c).activation_peak_bytes / 1e6})
    df = pd.DataFrame(rows)
    df["error"] = df["predicted"] / df["measured"] - 1
    return df


def validation_chart(df: pd.DataFrame, quantity: str = "time (ms)") -> alt.Chart:
    part = df[df["quantity"] == quantity]
    if part.empty:
        raise CoreplanError(f"no {quantity} rows to chart")
    lo, hi = float(part[["measured", "predicted"]].min().min()), float(part[["measured", "predicted"]].max().max())
    grid = np.geomspace(lo * 0.8, hi * 1.25, 50)
    bands = pd.DataFrame({"x": grid, "y": grid, "lo": grid * 0.9, "hi": grid * 1.1})
    log = alt.Scale(type="log", domain=[float(grid[0]), float(grid[-1])], nice=False)
    x_title, y_title = f"measured {quantity}", f"predicted {quantity}"
    band = alt.Chart(bands).mark_area(opacity=0.15, color="gray", clip=True).encode(
        x=alt.X("x:Q", scale=log, title=x_title), y=alt.Y("lo:Q", scale=log, title=y_title),
        y2="hi:Q")
    diagonal = alt.Chart(bands).mark_line(color="gray", strokeDash=[4, 3], clip=True).encode(
        x=alt.X("x:Q", title=x_title), y=alt.Y("y:Q", title=y_title))
    points = alt.Chart(part).mark_point(filled=True, size=60, opacity=0.8).encode(
        x=alt.X("measured:Q", scale=log, title=x_title),
        y=alt.Y("predicted:Q", scale=log, title=y_title),
        color=alt.Color("impl:N", title="attention impl"), shape=alt.Shape("model:N", title="model"),
        tooltip=["model", "impl", "resolution", "cores", "batch",
                 alt.Tooltip("measured:Q", format=",.3g"), alt.Tooltip("predicted:Q", format=",.3g"),
                 alt.Tooltip("error:Q", format="+.1%")])
    return alt.layer(band, diagonal, points).properties(
        width=WIDTH, height=HEIGHT, title=f"Predicted vs measured {quantity}: y = x, band ±10%")


# --------------------------------------------------------------------------- roofline
def roofline_frame(config, device: DeviceSpec) -> pd.DataFrame:
    """Each op of one configuration at (arithmetic intensity, attained FLOP/s) on the device.

    Ops without FLOPs (pure data movement) have no intensity and are left out."""
    sim = simulate(config, device)
    rows = [{"op": o.path, "op_class": o.op_class, "bound": o.bound,
             "intensity": o.intensity_flop_per_byte, "attained_tflops": o.flops / o.time_s / 1e12,
             "time_share": o.time_s / sim.device_s, "device": device.name}
            for o in sim.ops if o.flops > 0 and o.bytes > 0]
    return pd.DataFrame(rows)


def roofline_chart(df: pd.DataFrame, device: DeviceSpec, dtype: str) -> alt.Chart:
    lo, hi = df["intensity"].min() / 4, df["intensity"].max() * 4
    grid = np.geomspace(lo, hi, 200)
    lines = pd.concat([pd.DataFrame({"intensity": grid, "roof": label, "tflops": np.minimum(
        device.peak(d), device.memory_bandwidth_bytes_per_s * grid) / 1e12})
        for d, label in {dtype: f"{dtype} matrix peak", "fp32": "fp32 vector peak"}.items()])
    log = alt.Scale(type="log")
    roof = alt.Chart(lines).mark_line(color="black").encode(
        x=alt.X("intensity:Q", scale=log, title="arithmetic intensity (FLOP per byte moved)"),
        y=alt.Y("tflops:Q", scale=log, title="attained TFLOP/s"),
        strokeDash=alt.StrokeDash("roof:N", title="roof"))
    points = alt.Chart(df).mark_point(filled=True, opacity=0.85).encode(
        x=alt.X("intensity:Q", scale=log, title="arithmetic intensity (FLOP per byte moved)"),
        y=alt.Y("attained_tflops:Q", scale=log, title="attained TFLOP/s"),
        color=alt.Color("op_class:N", title="op class"),
        size=alt.Size("time_share:Q", title="share of latency", legend=alt.Legend(format=".0%")),
        tooltip=["op", "op_class", "bound", alt.Tooltip("intensity:Q", format=",.3g"),
                 alt.Tooltip("attained_tflops:Q", format=",.3g"),
                 alt.Tooltip("time_share:Q", format=".1%")])
    return alt.layer(roof, points).properties(
        width=WIDTH, height=HEIGHT, title=f"Roofline on {device.name}: ops placed by intensity")


# --------------------------------------------------------------------------- planner frontier
def frontier_frame(spec: ModelSpec, devices: list[DeviceSpec], *, resolution: int, batch: int = 1,
                   dtype: str = "bf16", budgets_ms=None) -> pd.DataFrame:
    """Largest feasible C per latency budget and device (0 when nothing fits)."""
    budgets_ms = budgets_ms if budgets_ms is not None else np.geomspace(0.5, 2000, 41)
    rows = []
    for device in devices:
        for limit in budgets_ms:
            p = plan(spec, device, resolution=resolution, batch=batch, dtype=dtype,
                     budgets=Budgets(latency_ms=float(limit)))
            rows.append({"device": device.name, "latency_budget_ms": float(limit),
                         "largest_cores": p.chosen.cores if p.chosen else 0,
                         "resolution": resolution, "batch": batch, "dtype": p.dtype})
    return pd.DataFrame(rows)


def frontier_chart(df: pd.DataFrame, model: str = "") -> alt.Chart:
    setup = (f" ({df['resolution'].iloc[0]} px, batch {df['batch'].iloc[0]}, "
             f"{df['dtype'].iloc[0]})" if len(df) and "resolution" in df else "")
    return alt.Chart(df, title=f"Largest feasible core budget vs latency budget {model}".strip()
                     + setup).mark_line(interpolate="step-after", point=True).encode(
        x=alt.X("latency_budget_ms:Q", scale=alt.Scale(type="log", nice=False),
                title="latency budget (ms per batch)"),
        y=alt.Y("largest_cores:Q", title="largest feasible C (0 = none)", scale=alt.Scale(domain=[0, 64])),
        color=alt.Color("device:N", title="device"),
        # a device whose steps coincide with another's stays visible: its own dash
        strokeDash=alt.StrokeDash("device:N", title="device"),
        tooltip=["device", alt.Tooltip("latency_budget_ms:Q", format=",.3g"), "largest_cores"],
    ).properties(width=WIDTH, height=HEIGHT)


# --------------------------------------------------------------------------- elastic curve
def elastic_frame(spec: ModelSpec, device: DeviceSpec, *, resolution: int, batch: int = 1,
                  dtype: str = "bf16") -> pd.DataFrame:
    """Predicted latency and FLOPs for every nested budget C of one model on one device."""
    p = plan(spec, device, resolution=resolution, batch=batch, dtype=dtype)
    return pd.DataFrame([{"cores": c.cores, "latency_ms": c.latency_ms, "gflops": c.flops / 1e9,
                          "device": device.name, "model": spec.name, "resolution": resolution,
                          "batch": batch, "dtype": dtype} for c in p.candidates])


def elastic_chart(df: pd.DataFrame) -> alt.Chart:
    base = alt.Chart(df).encode(x=alt.X("cores:Q", title="active core tokens C"))
    latency = base.mark_line(point=alt.OverlayMarkDef(color="#1f77b4"), color="#1f77b4").encode(
        y=alt.Y("latency_ms:Q", title="predicted latency (ms per batch)", scale=alt.Scale(zero=True),
                axis=alt.Axis(titleColor="#1f77b4")), tooltip=["cores", "latency_ms", "gflops"])
    flops = base.mark_line(point=alt.OverlayMarkDef(color="#d62728"), color="#d62728",
                           strokeDash=[5, 3]).encode(
        y=alt.Y("gflops:Q", title="forward GFLOPs (dashed)", scale=alt.Scale(zero=True),
                axis=alt.Axis(titleColor="#d62728")))
    r = df.iloc[0]
    title = (f"Elastic inference: {r['model']} on {r['device']}, {r['resolution']} px, batch "
             f"{r['batch']}, {r['dtype']} (both axes from zero)")
    return alt.layer(latency, flops).resolve_scale(y="independent").properties(
        width=WIDTH, height=HEIGHT, title=title)


# --------------------------------------------------------------------------- serving under load
def serve_frame(sweep, capacity_img_per_s: float) -> pd.DataFrame:
    """One row per (offered rate, policy) of `planners.serving.load_sweep`."""
    return pd.DataFrame([{"offered_img_per_s": rate, "load": rate / capacity_img_per_s,
                          "policy": r.policy, "p99_ms": r.latency_ms["p99"],
                          "p50_ms": r.latency_ms["p50"], "slo_attainment": r.slo_attainment,
                          "mean_cores": r.mean_cores} for rate, r in sweep])


def serve_chart(df: pd.DataFrame, slo_ms: float, reference: str) -> alt.Chart:
    """p99 latency (log) and mean C against offered load, one line per policy; the objective as a
    dashed rule."""
    capacity = float((df["offered_img_per_s"] / df["load"]).iloc[0])
    x = alt.X("offered_img_per_s:Q",
              title=f"offered load (images/s; {reference} saturates at {capacity:,.4g})")
    color = alt.Color("policy:N", title="policy")
    tooltip = ["policy", alt.Tooltip("offered_img_per_s:Q", format=",.4g"),
               alt.Tooltip("load:Q", format=".2f"), alt.Tooltip("p99_ms:Q", format=",.4g"),
               alt.Tooltip("slo_attainment:Q", format=".1%"), alt.Tooltip("mean_cores:Q", format=".1f")]
    p99 = alt.Chart(df).mark_line(point=True).encode(
        x=x, y=alt.Y("p99_ms:Q", title="p99 latency, queue + service (ms)", scale=alt.Scale(type="log")),
        color=color, tooltip=tooltip)
    rule = alt.Chart(pd.DataFrame({"slo_ms": [slo_ms]})).mark_rule(strokeDash=[6, 4], color="black").encode(
        y=alt.Y("slo_ms:Q", title="p99 latency, queue + service (ms)"))
    top = alt.layer(p99, rule).properties(width=WIDTH, height=HEIGHT // 1.5,
                                          title=f"Serving under load: p99 against offered load "
                                                f"(dashed: the {slo_ms:g} ms objective)")
    cores = df.dropna(subset=["mean_cores"])
    bottom = alt.Chart(cores).mark_line(point=True).encode(
        x=x, y=alt.Y("mean_cores:Q", title="mean active core tokens C", scale=alt.Scale(domain=[0, 64])),
        color=color, tooltip=tooltip).properties(width=WIDTH, height=HEIGHT // 2,
                                                  title="Core budget per request (mean C)")
    return alt.vconcat(top, bottom)


# --------------------------------------------------------------------------- export
def save(chart, path: str | Path) -> Path:
    """Write .html (self-contained, offline), .png (2x scale) or .svg."""
    check_out(path)
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    try:
        if kind == "html":
            chart.save(str(path), format="html", inline=True)
        elif kind == "png":
            chart.save(str(path), format="png", scale_factor=2)
        else:
            chart.save(str(path), format="svg")
    except OSError as err:
        raise CoreplanError(f"--out {path}: cannot write ({err.strerror})") from None
    return path
