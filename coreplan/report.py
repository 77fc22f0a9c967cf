"""A self-contained HTML report: key tables and charts for a deployment question, offline.

The Vega, Vega-Lite and Vega-Embed scripts are inlined once (vl-convert's bundle), so the page
renders with no network; each chart is embedded as its Vega-Lite spec.
"""

from __future__ import annotations

import html
import json
from datetime import date

from coreplan import charts
from coreplan.app import flag
from coreplan.output import chosen_line, html_table, page_rows, plan_rows
from costmodel.spec import ModelSpec
from planners.devices import DeviceSpec
from planners.planner import Budgets, baseline_model, plan

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;
padding:3px 8px;text-align:right}th{background:#f3f3f3}h2{margin-top:1.6em}.note{color:#555}"""


def build_report(specs: list[ModelSpec], devices: list[DeviceSpec], *, resolution: int = 1024,
                 batch: int = 1, dtype: str = "bf16", budgets: Budgets = Budgets(),
                 measurements: str | None = None, runtime: str = "eager") -> str:
    """The report's HTML text."""
    import vl_convert

    sections: list[tuple[str, str, object | None]] = []  # (heading, html, chart)
    scaling = charts.scaling_frame(specs, (224, 256, 384, 512, 768, 1024, 1536, 2048), batch, dtype)
    sections.append(("Cost vs resolution", "", charts.scaling_chart(scaling, "gflops")))
    sections.append(("Memory vs resolution", "", charts.scaling_chart(scaling, "memory_gb")))
    for spec in (s for s in specs if s.is_core):
        dense = next((d for d in specs if not d.is_core), None) or baseline_model(spec)
        if dense is not None:
            sections.append((f"Crossover: {spec.name} vs {dense.name}", "",
                             charts.crossover_chart(charts.crossover_frame(spec, dense))))
        for device in devices:
            p = plan(spec, device, resolution=resolution, batch=batch, dtype=dtype, budgets=budgets,
                     runtime=runtime)
            chosen = chosen_line(p, device)
            for limit in ("max_resolution", "max_batch"):  # a page has no flags: their meaning
                chosen = chosen.replace(flag(limit), limit.replace("_", " "))
            sections.append((f"Plan: {spec.name} on {device.name} ({resolution} px, batch {batch}, "
                             f"{dtype}, {runtime})", f"<p class=note>{html.escape(chosen)}</p>"
                             + html_table(page_rows(plan_rows(p))), None))
            sections.append((f"Elastic curve: {spec.name} on {device.name}", "",
                             charts.elastic_chart(charts.elastic_frame(
                                 spec, device, resolution=resolution, batch=batch, dtype=dtype))))
        sections.append((f"Frontier: {spec.name}", "", charts.frontier_chart(charts.frontier_frame(
            spec, devices, resolution=resolution, batch=batch, dtype=dtype), spec.name)))
    if measurements:
        from planners.devices import get_device

        df = charts.validation_frame(measurements, get_device("cpu-epyc-2core"))
        sections.append(("Validation: predicted vs measured (CPU data)",
                         f"<p class=note>{html.escape(str(measurements))}</p>",
                         charts.validation_chart(df, "time (ms)")))
    from altair.utils._importers import vl_version_for_vl_convert

    return _page(sections, specs, devices,
                 vl_convert.javascript_bundle(vl_version=vl_version_for_vl_convert()))


def _page(sections, specs, devices, bundle: str) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>coreplan report</title>"
             f"<style>{STYLE}</style><script>{bundle}</script></head><body>",
             "<h1>coreplan report</h1>",
             f"<p class=note>models: {html.escape(', '.join(s.name for s in specs))}; devices: "
             f"{html.escape(', '.join(d.name for d in devices))}; generated {date.today()}</p>"]
    for index, (heading, body, chart) in enumerate(sections):
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
        if chart is not None:
            spec = json.dumps(chart.to_dict())
            parts.append(f"<div id='chart{index}'></div><script>vegaEmbed('#chart{index}', {spec}, "
                         f"{{actions: false}}).catch(console.error);</script>")
    parts.append("</body></html>")
    return "\n".join(parts)
