"""`coreplan explore`: one self-contained page to ask "what if" by moving controls, offline.

The numbers are the planner's own: `planners.planner.evaluate_configs` over the grid the
controls span (every C of each model, every side and batch of GRID, every dtype a device has a
peak for, every runtime), for each model and its dense baseline on each device, stored exactly
(float64, base64) in the page. The page only looks values up and compares them with the budgets
as the planner does (usage = value / limit; the largest is the tightest limit; it fits when that
is at most 1); its charts are SVG drawn from the same values. Nothing is fetched: it works from a
file:// URL. Opened with `#selftest`, the page moves every control, times each change and writes
what it showed into the page (tests/test_explore.py reads it in headless Chromium).
"""

from __future__ import annotations

import base64
import html
import json
from datetime import date

import numpy as np

RESOLUTIONS = (224, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 2048)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DEFAULT_MODELS = ("veca-base", "veca-small")
DEFAULT_DEVICES = ("h100-sxm", "a100-sxm-80gb", "l4", "t4", "rtx-4090", "jetson-agx-orin",
                   "cpu-epyc-2core")
PAGE_DTYPES = ("fp32", "bf16", "fp16")


def _b64(values) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


def _configs(spec, dtype: str):
    """The grid of one model, C-major, then side, then batch (the page's index order)."""
    from costmodel.config import configure

    cores = spec.budgets or (None,)
    return [configure(spec, spec.round_resolution(r), cores=c, batch=b, dtype=dtype)
            for c in cores for r in RESOLUTIONS for b in BATCHES]


def _dtypes(device) -> list[str]:
    if device.profile is not None:
        return [device.profile.dtype]
    return [d for d in PAGE_DTYPES if d in device.peak_flops_per_s]


def page_data(specs, devices) -> dict:
    """Everything the page shows, computed by the planner (module docstring): each model and
    its dense baseline (the catalog's of the same width and depth) on each device."""
    from costmodel.errors import ArgumentError
    from planners.planner import (Budgets, baseline_model, best_dtype, evaluate_configs,
                                  predicted_seconds, predicted_work_seconds)
    from planners.roofline import RUNTIMES

    for device in devices:
        if not _dtypes(device):
            raise ArgumentError("devices", f"{device.name} has no fp32, bf16 or fp16 peak to plan with")
    models, shown = {}, {}
    for spec in specs:
        base = baseline_model(spec) if spec.is_core else None
        for s in (spec, base):
            if s is not None and s.name not in models:
                shown[s.name] = s
                models[s.name] = dict(kind=s.kind, budgets=list(s.budgets) or [None],
                                      baseline=None)
        if base is not None:
            models[spec.name]["baseline"] = base.name
    series = {}
    for name, spec in shown.items():
        models[name]["sides"] = [spec.round_resolution(r) for r in RESOLUTIONS]
        for device in devices:
            for dtype in _dtypes(device):
                configs = _configs(spec, dtype)
                found = evaluate_configs(configs, device, Budgets())
                if "flops" not in models[name]:
                    models[name]["flops"] = _b64([c.flops for c in found])
                runtimes = [rt for rt in RUNTIMES  # autocast needs a 16-bit dtype to lower to
                            if not rt.endswith("+amp") or dtype in ("fp16", "bf16")]
                seconds = {rt: _b64(predicted_seconds(configs, device, rt)) for rt in runtimes}
                work = {rt: _b64(predicted_work_seconds(configs, device, rt)) for rt in runtimes}
                series[f"{name}|{device.name}|{dtype}"] = dict(
                    memory=_b64([c.memory_bytes for c in found]), seconds=seconds, work=work)
    return dict(
        grid=dict(resolutions=list(RESOLUTIONS), batches=list(BATCHES)), models=models,
        runtimes=list(RUNTIMES), series=series,
        devices={d.name: dict(capacity_bytes=d.memory_capacity_bytes, dtypes=_dtypes(d),
                              best=best_dtype(d),
                              interval=list(d.latency_interval) if d.latency_interval else None,
                              description=d.description,
                              note=" ".join(n for n in (d.measured_elsewhere(),
                                                        d.calibration_warning()) if n),
                              power_w=d.board_power_w,
                              price_per_hour=d.price_per_hour_usd,
                              price_source=d.price_source or "") for d in devices})


def build_page(specs, devices) -> str:
    """The page's HTML text."""
    data = json.dumps(page_data(specs, devices), separators=(",", ":"))
    title = "coreplan planner: " + ", ".join(s.name for s in specs)
    return (_PAGE.replace("__TITLE__", html.escape(title))
            .replace("__DATE__", date.today().isoformat())
            .replace("__DATA__", data.replace("</", "<\\/")))


_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{padding:.8em 1.2em;background:#243447;color:#fff}header h1{font-size:1.2em;margin:0}
header p{margin:.2em 0 0;font-size:.85em;color:#d6dde6}
main{display:flex;flex-wrap:wrap;gap:1em;padding:1em}
form{flex:0 0 250px;display:grid;gap:.55em;background:#fff;padding:.9em;border:1px solid #ddd;
border-radius:6px}
label{display:grid;gap:.15em;font-size:.85em;font-weight:600}
select,input{font-size:.95em;padding:.25em;border:1px solid #999;border-radius:4px;background:#fff}
select:focus,input:focus{outline:3px solid #5b9bd5}
section{flex:1 1 520px;min-width:0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:right}th{background:#eef1f4}
td:first-child,th:first-child{text-align:left}
.yes{color:#1a7f37;font-weight:600}.no{color:#b42318;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:1em;margin-top:1em}
figure{margin:0;flex:1 1 300px;background:#fff;border:1px solid #ddd;border-radius:6px;padding:.4em}
figcaption{font-size:.85em;font-weight:600;margin:.2em .4em}
svg{width:100%;height:auto}.note{font-size:.82em;color:#555}
@media (max-width:700px){form{flex:1 1 100%}}
</style></head>
<body>
<header><h1>__TITLE__</h1>
<p>Predicted by coreplan's planner (generated __DATE__): latency per batch, the process footprint,
throughput, FLOPs, energy and price per image; works offline.</p></header>
<main>
<form id="controls" aria-label="configuration and budgets">
<label>Model<select id="model"></select></label>
<label>Device<select id="device"></select></label>
<label>Data type<select id="dtype"></select></label>
<label>Runtime<select id="runtime"></select></label>
<label>Active cores C (tokens)<select id="cores"></select></label>
<label>Resolution (px per side)<select id="resolution"></select></label>
<label>Batch (images)<select id="batch"></select></label>
<label>Latency budget (ms per batch)<input id="latency" type="number" min="0" step="any"></label>
<label>Memory budget (GB)<input id="memory" type="number" min="0" step="any"></label>
<label>Demand (images/s)<input id="demand" type="number" min="0" step="any"></label>
</form>
<section aria-live="polite">
<table id="results"><thead><tr><th scope="col">quantity</th><th scope="col" id="head-model">model</th>
<th scope="col" id="head-base">dense baseline</th></tr></thead><tbody></tbody></table>
<p class="note" id="device-note"></p>
<div class="charts">
<figure><figcaption id="cap-cores">Latency and memory against C</figcaption>
<svg id="chart-cores" viewBox="0 0 420 320" role="img" aria-label="latency and memory against C"></svg></figure>
<figure><figcaption id="cap-res">Latency and memory against resolution</figcaption>
<svg id="chart-res" viewBox="0 0 420 320" role="img" aria-label="latency and memory against resolution"></svg></figure>
</div>
<pre id="selftest-result" hidden></pre>
</section></main>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const T0 = performance.now();
const D = JSON.parse(document.getElementById("data").textContent);
const cache = new Map();
function arr(b64){ if(cache.has(b64)) return cache.get(b64);
  const s = atob(b64), u = new Uint8Array(s.length);
  for(let i=0;i<s.length;i++) u[i]=s.charCodeAt(i);
  const f = new Float64Array(u.buffer); cache.set(b64,f); return f; }
const $ = id => document.getElementById(id);
const R = D.grid.resolutions, B = D.grid.batches, GB = 1e9;
function fill(sel, values, label, keep){
  const old = keep !== undefined ? keep : sel.value;
  sel.innerHTML = values.map((v,i)=>`<option value="${v}">${label?label(v,i):v}</option>`).join("");
  if(values.map(String).includes(String(old))) sel.value = old; }
function index(model, c, r, b){
  const m = D.models[model], ci = Math.max(0, m.budgets.indexOf(m.kind==="core"?+c:null));
  return (ci*R.length + r)*B.length + b; }
function values(model, device, dtype, runtime, c, r, b){
  const s = D.series[`${model}|${device}|${dtype}`]; if(!s) return null;
  const i = index(model, c, r, b), m = D.models[model];
  const seconds = arr(s.seconds[runtime])[i], memory = arr(s.memory)[i];
  const batch = B[b], dev = D.devices[device], latency = seconds*1e3;
  const v = {model, cores: m.kind==="core" ? +c : null, resolution: m.sides[r], batch,
    latency_ms: latency, memory_bytes: memory, throughput_img_per_s: batch/seconds,
    flops: arr(m.flops)[i]};
  // by regime, as planners.planner: host-bound (the host's time above the device's work), the
  // interval runs from the device's work alone to the host's time
  const work = arr(s.work[runtime])[i];
  v.host_bound = seconds > work;
  v.interval = dev.interval ? [(v.host_bound ? work*dev.interval[0] : seconds*dev.interval[0])*1e3,
                               latency*dev.interval[1]] : null;
  const usage = {capacity: memory/dev.capacity_bytes};
  const lat = parseFloat($("latency").value), mem = parseFloat($("memory").value);
  if(lat > 0) usage.latency = latency/lat;
  if(mem > 0) usage.memory = memory/(mem*GB);
  let tight = "capacity"; for(const k in usage) if(usage[k] > usage[tight]) tight = k;
  v.usage = usage; v.tightest = tight; v.fits = usage[tight] <= 1;
  const demand = parseFloat($("demand").value);
  v.devices = demand > 0 && v.fits ? Math.ceil(demand / v.throughput_img_per_s) : null;
  // rates as planners.economics (the same operations in the same order): with a demand the fleet
  // of v.devices serving it, otherwise one device kept busy
  const k = v.devices !== null ? v.devices : 1, rate = v.devices !== null ? demand : v.throughput_img_per_s;
  const busy = v.devices !== null ? Math.min(demand / (v.devices * v.throughput_img_per_s), 1) : 1;
  v.joules = dev.power_w ? dev.power_w * k * busy / rate : null;
  v.usd_per_million = dev.price_per_hour ? k * dev.price_per_hour / (3600 * rate) * 1e6 : null;
  return v; }
function fmt(x){ if(x===null||x===undefined||Number.isNaN(x)) return "";
  const a = Math.abs(x); return a>=1e3 ? Math.round(x).toLocaleString("en") :
  a>=100 ? x.toFixed(1) : a>=1 ? x.toPrecision(4) : a>0 ? x.toPrecision(3) : "0"; }
function pct(u){ return u>=0.1 ? (100*u).toFixed(0)+"%" : (100*u).toFixed(1)+"%"; }
// Each row: label, shown text, the key the self-test reads, the exact value behind the text.
const ROWS = [["latency (ms per batch)", v=>fmt(v.latency_ms), "latency_ms", v=>v.latency_ms],
  ["latency 5-95% (ms)", v=>v.interval?`${fmt(v.interval[0])} to ${fmt(v.interval[1])}`:"n/a",
   "latency_ms_interval", v=>v.interval ? v.interval.join(" ") : "none"],
  ["memory, process footprint (GB)", v=>fmt(v.memory_bytes/GB), "memory_bytes", v=>v.memory_bytes],
  ["throughput (images/s)", v=>fmt(v.throughput_img_per_s), "throughput_img_per_s", v=>v.throughput_img_per_s],
  ["forward (GFLOP per batch)", v=>fmt(v.flops/1e9), "flops", v=>v.flops],
  ["tightest limit (use)", v=>`${v.tightest} ${pct(v.usage[v.tightest])}`, "tightest", v=>v.tightest],
  ["fits every budget", v=>v.fits?"yes":"no", "feasible", v=>v.fits],
  ["devices for the demand", v=>v.devices!==null ? v.devices.toLocaleString("en") :
    !(parseFloat($("demand").value) > 0) ? "set a demand" : "none: it does not fit", "devices_needed",
   v=>v.devices===null ? "none" : v.devices],
  ["energy (J per image, board power)", v=>v.joules!==null ? fmt(v.joules) : "no board power",
   "joules_per_image", v=>v.joules===null ? "none" : v.joules],
  ["price (USD per million images)", v=>v.usd_per_million!==null ? fmt(v.usd_per_million) : "no price",
   "usd_per_million_images", v=>v.usd_per_million===null ? "none" : v.usd_per_million]];
function cell(v, row){ if(!v) return "<td>n/a</td>";
  const cls = row[2]==="feasible" ? ` class="${v.fits?"yes":"no"}"` : "";
  return `<td data-value="${row[3](v)}"${cls}>${row[1](v)}</td>`; }
function state(){ return {model:$("model").value, device:$("device").value, dtype:$("dtype").value,
  runtime:$("runtime").value, c:$("cores").value, r:+$("resolution").value, b:+$("batch").value}; }
function update(){
  const t = performance.now(), s = state(), m = D.models[s.model];
  const dts = D.devices[s.device].dtypes;
  fill($("dtype"), dts, undefined, dts.includes($("dtype").value) ? $("dtype").value :
       D.devices[s.device].best);
  s.dtype = $("dtype").value;
  // autocast (+amp) lowers to a 16-bit type: with fp32 there is none (plan refuses it alike)
  const rts = s.dtype==="fp16" || s.dtype==="bf16" ? D.runtimes : D.runtimes.filter(r=>!r.endsWith("+amp"));
  const rt = $("runtime").value;
  fill($("runtime"), rts, undefined, rts.includes(rt) ? rt : rt.replace("+amp", ""));
  s.runtime = $("runtime").value;
  fill($("cores"), m.kind==="core" ? m.budgets : ["-"]);
  $("cores").disabled = m.kind !== "core"; s.c = $("cores").value;
  fill($("resolution"), R.map((_,i)=>i), i=>m.sides[i]);
  s.r = +$("resolution").value;
  const v = values(s.model, s.device, s.dtype, s.runtime, s.c, s.r, s.b);
  const base = m.baseline ? values(m.baseline, s.device, s.dtype, s.runtime, null, s.r, s.b) : null;
  $("head-model").textContent = s.model + (m.kind==="core"?` (C=${s.c})`:"");
  $("head-base").textContent = m.baseline ? `dense baseline ${m.baseline}` : "dense baseline (none)";
  $("results").tBodies[0].innerHTML = ROWS.map(row=>
    `<tr data-row="${row[2]}"><th scope="row">${row[0]}</th>${cell(v,row)}${cell(base,row)}</tr>`).join("");
  const dv = D.devices[s.device];
  $("device-note").textContent = dv.description + (dv.note ? " - " + dv.note : "") +
    (dv.price_source ? ` - price ${dv.price_per_hour} USD/h: ${dv.price_source}` : "") +
    " - energy and price: with a demand, the fleet serving it (each device at its board power while computing); otherwise one device kept busy";
  const at = (name, c, r) => name ? values(name, s.device, s.dtype, s.runtime, c, r, s.b) : null;
  const cores = m.kind==="core" ? m.budgets : [];
  chart("chart-cores", cores.map(c=>[c, at(s.model, c, s.r), at(m.baseline, null, s.r)]),
        "active cores C (tokens)", m.kind==="core" ? +s.c : null);
  chart("chart-res", R.map((_,i)=>[m.sides[i], at(s.model, s.c, i), at(m.baseline, null, i)]),
        "resolution (px per side)", m.sides[s.r]);
  const what = m.baseline ? `${s.model} (solid) and dense ${m.baseline} (dashed)` : s.model;
  $("cap-cores").textContent = `Against C: ${what} at ${m.sides[s.r]} px, batch ${B[s.b]}`;
  $("cap-res").textContent = `Against resolution: ${what} at ${m.kind==="core"?"C="+s.c+", ":""}batch ${B[s.b]}`;
  link(s, m);
  return performance.now() - t; }
// The choice lives in the address (#model=...&device=...&resolution=1024...): a link reopens it.
let READY = false;  // the address is read once, before it is written
function link(s, m){
  if(!READY || location.hash === "#selftest") return;
  const q = new URLSearchParams({model:s.model, device:s.device, dtype:s.dtype, runtime:s.runtime,
    cores:s.c, resolution:m.sides[s.r], batch:B[s.b]});
  for(const k of ["latency","memory","demand"]) if($(k).value) q.set(k, $(k).value);
  try { history.replaceState(null, "", "#" + q); } catch(e) {} }
function restore(){
  const q = new URLSearchParams(location.hash.slice(1));
  const pick = (id, v) => { if(v !== null && Array.from($(id).options).some(o=>o.value===v)) $(id).value = v; };
  pick("model", q.get("model")); pick("device", q.get("device")); update();
  const m = D.models[$("model").value];
  pick("dtype", q.get("dtype")); pick("runtime", q.get("runtime")); pick("cores", q.get("cores"));
  const r = m.sides.indexOf(+q.get("resolution")), b = B.indexOf(+q.get("batch"));
  if(r >= 0) $("resolution").value = String(r);
  if(b >= 0) $("batch").value = String(b);
  for(const k of ["latency","memory","demand"]) if(+q.get(k) > 0) $(k).value = q.get(k);
  update(); }
function nice(v){ if(!(v > 0)) return 1; const e = Math.pow(10, Math.floor(Math.log10(v)));
  for(const k of [1,1.2,1.5,2,2.5,3,4,5,6,8,10]) if(k*e >= v*(1-1e-12)) return k*e; return 10*e; }
function chart(id, pts, xlabel, current){
  // Two panels on one x axis: latency (top) and memory (bottom), each from zero; the model
  // solid, its dense baseline dashed, budgets (and the device's capacity) as red lines when
  // they lie within twice the plotted values, the current choice as a ringed dot.
  const svg = $(id), W=420, H=320, L=58, Rm=14, X0=L, X1=W-Rm;
  if(!pts.length){ svg.innerHTML = `<text x="${W/2}" y="${H/2}" text-anchor="middle" font-size="14">a dense model has no C</text>`; return; }
  const xs = pts.map(p=>p[0]), x0=Math.min(...xs), x1=Math.max(...xs);
  const X = x => X0 + (x1===x0?0.5:(x-x0)/(x1-x0))*(X1-X0);
  const lat = parseFloat($("latency").value), mem = parseFloat($("memory").value);
  const dev = D.devices[$("device").value];
  const panels = [
    {name:"latency (ms per batch)", top:22, h:108, col:"#1f67a6", key:"latency",
     get:v=>v.latency_ms, lines: lat > 0 ? [["budget", lat]] : []},
    {name:"memory, process footprint (GB)", top:170, h:108, col:"#b85400", key:"memory",
     get:v=>v.memory_bytes/GB, lines: [["capacity", dev.capacity_bytes/GB]].concat(mem > 0 ? [["budget", mem]] : [])}];
  let g = "";
  for(const P of panels){
    const ys = pts.map(p=>P.get(p[1])), bs = pts.filter(p=>p[2]).map(p=>P.get(p[2]));
    const hi = Math.max(...ys, ...bs), lines = P.lines.filter(l=>l[1] <= 2*hi);
    const top = nice(Math.max(hi, ...lines.map(l=>l[1]))), Y = v => P.top + P.h - v/top*P.h;
    g += `<text x="${X0}" y="${P.top-8}" font-size="13" font-weight="600" fill="${P.col}">${P.name}</text>`;
    for(const f of [0, 0.5, 1]){ const y = Y(f*top).toFixed(1);
      g += `<line x1="${X0}" x2="${X1}" y1="${y}" y2="${y}" stroke="${f?"#e3e3e3":"#888"}"/>` +
           `<text x="${X0-5}" y="${+y+4}" text-anchor="end" font-size="12">${(+(f*top).toPrecision(6)).toLocaleString("en")}</text>`; }
    let names = "";  // drawn last, over the lines
    for(const [name, v] of lines){ const y = Y(v).toFixed(1);
      g += `<line class="limit" data-limit="${name}" x1="${X0}" x2="${X1}" y1="${y}" y2="${y}" stroke="#c62828" stroke-dasharray="${name==="capacity"?"2 3":"6 4"}"/>`;
      names += `<text x="${X1}" y="${+y-3}" text-anchor="end" font-size="11" fill="#c62828" stroke="#fff" stroke-width="3" paint-order="stroke">${name}</text>`; }
    const path = (vals, extra) => `<polyline fill="none" stroke-width="2" ${extra} points="${xs.map((x,i)=>X(x).toFixed(1)+","+Y(vals[i]).toFixed(1)).join(" ")}"/>`;
    if(bs.length === pts.length) g += path(bs, `class="baseline" stroke="#666" stroke-dasharray="5 4"`);
    g += path(ys, `class="model" stroke="${P.col}"`);
    g += xs.map((x,i)=>`<circle cx="${X(x).toFixed(1)}" cy="${Y(ys[i]).toFixed(1)}" r="2.5" fill="${P.col}"/>`).join("");
    g += names;
    const k = xs.indexOf(current);
    if(k >= 0) g += `<circle class="current" data-panel="${P.key}" data-x="${current}" data-value="${P.key==="latency"?pts[k][1].latency_ms:pts[k][1].memory_bytes}" cx="${X(xs[k]).toFixed(1)}" cy="${Y(ys[k]).toFixed(1)}" r="6" fill="#fff" stroke="${P.col}" stroke-width="3"/>`;
  }
  const base = 170+108;
  g += `<line x1="${X0}" x2="${X1}" y1="${base}" y2="${base}" stroke="#888"/>`;
  const ticks = xs.includes(current) ? [current] : [];  // the current value, the ends, then others
  for(const x of [x0, x1, ...xs]) if(ticks.every(t=>Math.abs(X(t)-X(x)) >= 36)) ticks.push(x);
  for(const x of new Set(ticks)){ const px = X(x).toFixed(1);
    g += `<line x1="${px}" x2="${px}" y1="${base}" y2="${base+4}" stroke="#888"/>` +
         `<text x="${px}" y="${base+17}" text-anchor="middle" font-size="12" font-weight="${x===current?700:400}">${x}</text>`; }
  g += `<text x="${(X0+X1)/2}" y="${H-4}" text-anchor="middle" font-size="13">${xlabel}</text>`;
  svg.innerHTML = g; }
function init(){
  fill($("model"), Object.keys(D.models));
  fill($("device"), Object.keys(D.devices));
  fill($("runtime"), D.runtimes, undefined, "eager");
  fill($("batch"), B.map((_,i)=>i), i=>B[i], String(B.indexOf(8)));
  fill($("resolution"), R.map((_,i)=>i), i=>R[i], String(R.indexOf(1024)));
  for(const id of ["model","device","dtype","runtime","cores","resolution","batch"]) $(id).addEventListener("change", update);
  for(const id of ["latency","memory","demand"]) $(id).addEventListener("input", update);
  update();
  if(location.hash.includes("=")) restore();
  READY = true; update(); }
init();
const LOAD_MS = performance.now();
if(location.hash === "#selftest") selftest();
function selftest(){
  const times = [], samples = [], initial = state();
  const set = (id, v) => { $(id).value = v; $(id).dispatchEvent(new Event(id==="latency"||id==="memory"||id==="demand"?"input":"change")); };
  const ids = ["model","device","dtype","runtime","cores","resolution","batch"];
  for(const id of ids) for(const o of Array.from($(id).options)){
    const t = performance.now(); set(id, o.value); times.push(performance.now()-t); }
  for(const [id,v] of [["latency","50"],["memory","10"],["demand","5000"]]){
    const t = performance.now(); set(id, v); times.push(performance.now()-t); }
  const models = Object.keys(D.models), devices = Object.keys(D.devices);
  let n = 0;
  for(const model of models) for(const device of devices){
    set("model", model); set("device", device);
    const dt = $("dtype").options, rt = $("runtime").options;
    set("dtype", dt[n % dt.length].value); set("runtime", rt[n % rt.length].value);
    const c = $("cores").options; set("cores", c[n % c.length].value);
    set("resolution", String((3*n) % R.length)); set("batch", String((2*n) % B.length));
    set("latency", ["", "50", "1000", "20"][n % 4]); set("memory", ["10", "", "2"][n % 3]);
    set("demand", ["5000", "100", ""][n % 3]);
    const s = state(), v = values(s.model, s.device, s.dtype, s.runtime, s.c, s.r, s.b);
    const shown = {}, baseline = {};
    for(const tr of document.querySelectorAll("#results tbody tr")){
      shown[tr.dataset.row] = tr.children[1].dataset.value;
      baseline[tr.dataset.row] = tr.children[2].dataset.value; }
    const charts = {};
    for(const id of ["chart-cores", "chart-res"]) for(const dot of document.querySelectorAll(`#${id} circle.current`))
      charts[`${id}|${dot.dataset.panel}`] = [dot.dataset.x, dot.dataset.value];
    samples.push({model:s.model, device:s.device, dtype:s.dtype, runtime:s.runtime, cores:v.cores,
      resolution:v.resolution, batch:v.batch, latency_budget_ms:$("latency").value,
      memory_budget_gb:$("memory").value, demand:$("demand").value, shown, baseline, charts,
      limits: Array.from(document.querySelectorAll("#chart-res line.limit")).map(l=>l.dataset.limit)});
    n++; }
  const out = $("selftest-result");
  const controls = Array.from(document.querySelectorAll("select, input"));
  out.textContent = JSON.stringify({load_ms: LOAD_MS, parse_ms: LOAD_MS - T0,
    max_update_ms: Math.max(...times), updates: times.length, samples, initial,
    controls: controls.map(e=>({id: e.id, label: e.labels.length ? e.labels[0].firstChild.textContent.trim() : "",
                                keyboard: e.tabIndex >= 0}))});
  out.hidden = false; }
</script></body></html>
"""
