"""The process footprint: what a process running a model occupies, not only its live tensors.

    footprint = runtime baseline                      (the framework's own pages; on a GPU the
                                                       CUDA context and library workspaces)
              + weights x weights_factor + build_bytes (parameters, and what building a model leaves:
                                                       per framework, e.g. the modelling code a
                                                       library imports when a model is built)
              + inputs                                 (the image batch)
              + activation_factor x activation peak    (the allocator keeps freed blocks: glibc
                                                       arenas on a CPU, the caching allocator's
                                                       rounding and reservation on a GPU)
              + pack_factor x largest weight matrix    (GEMM packing workspace)
              + workspace_bytes                        (first-forward workspaces, thread pools)

Each term is named in the result. The numbers are a device's `footprint` table (devices.toml):
measured on the CPU this project runs on (benchmarks/footprint.py fits them on a few
configurations; the rest are held out), documented assumptions for GPUs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from costmodel.config import Config
from costmodel.errors import CoreplanError
from costmodel.memory import inference_memory

FRAMEWORKS = ("torch", "transformers")


@dataclass(frozen=True)
class FootprintModel:
    """A device's footprint terms (bytes, or dimensionless factors).

    Args:
        baseline_bytes: the runtime's own resident bytes per framework (torch; torch and
            transformers), before any model exists; on a GPU, device memory of the CUDA context.
        weights_factor: resident bytes per parameter byte once the model is built.
        build_bytes: what building a model leaves besides its parameters, per framework.
        activation_factor: resident bytes per byte of the predicted activation peak.
        pack_factor: resident bytes per byte of the largest weight matrix (packing buffers).
        workspace_bytes: a forward's fixed workspaces.
        source: where the numbers come from.
    """

    baseline_bytes: dict = field(default_factory=dict)
    weights_factor: float = 1.0
    build_bytes: dict = field(default_factory=dict)
    activation_factor: float = 1.0
    pack_factor: float = 0.0
    workspace_bytes: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class Footprint:
    total_bytes: int
    terms: dict[str, int]
    framework: str


def largest_weight_matrix_bytes(c: Config) -> int:
    """Bytes of the model's largest weight matrix (costmodel.params: the qkv or the MLP's first
    matrix in the catalog's models)."""
    from costmodel.params import largest_weight_matrix

    return largest_weight_matrix(c.spec) * c.elem_bytes


def footprint(c: Config, model: FootprintModel, framework: str = "torch") -> Footprint:
    """The footprint of a process running one inference forward of `c`."""
    if framework not in model.baseline_bytes:
        known = ", ".join(model.baseline_bytes) or "none"
        raise CoreplanError(f"no footprint baseline for framework {framework!r} (known: {known})")
    mem = inference_memory(c)
    terms = {
        "runtime_baseline": model.baseline_bytes[framework],
        "weights": mem.weights_bytes * model.weights_factor,
        "build": model.build_bytes.get(framework, 0.0),
        "inputs": c.batch * c.spec.in_chans * c.height * c.width * c.elem_bytes,
        "activations": model.activation_factor * mem.activation_peak_bytes,
        "gemm_packing": model.pack_factor * largest_weight_matrix_bytes(c),
        "workspace": model.workspace_bytes,
    }
    terms = {k: int(round(v)) for k, v in terms.items()}
    return Footprint(sum(terms.values()), terms, framework)


def model_from_table(where: str, table: dict) -> FootprintModel:
    """A FootprintModel from a device file's `footprint` table; errors name the field."""
    def number(key, value, low=0.0):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not (
                math.isfinite(value) and value >= low):
            raise CoreplanError(f"{where}.footprint.{key}: expected a number >= {low:g}, "
                                f"got {value!r}")
        return float(value)

    if not isinstance(table, dict):
        raise CoreplanError(f"{where}.footprint: expected a table")
    unknown = sorted(set(table) - {f for f in FootprintModel.__dataclass_fields__})
    if unknown:
        raise CoreplanError(f"{where}.footprint.{unknown[0]}: unknown field")
    per_framework = {}
    for key in ("baseline_bytes", "build_bytes"):
        value = table.get(key, {})
        if not isinstance(value, dict) or any(k not in FRAMEWORKS for k in value):
            raise CoreplanError(f"{where}.footprint.{key}: expected a table over "
                                f"{', '.join(FRAMEWORKS)}")
        per_framework[key] = {k: number(f"{key}.{k}", v) for k, v in value.items()}
    return FootprintModel(
        per_framework["baseline_bytes"], number("weights_factor", table.get("weights_factor", 1.0)),
        per_framework["build_bytes"],
        number("activation_factor", table.get("activation_factor", 1.0)),
        number("pack_factor", table.get("pack_factor", 0.0)),
        number("workspace_bytes", table.get("workspace_bytes", 0.0)),
        str(table.get("source", "")))


# --------------------------------------------------------------------------- fitting and checking
@dataclass(frozen=True)
class Observation:
    """One fresh-process measurement (reference/footprint.py) of one configuration."""

    config: Config
    framework: str
    baseline_bytes: float
    built_bytes: float
    forward_bytes: float


def fit_model(rows: list[Observation], source: str = "") -> FootprintModel:
    """The footprint terms from measurements: baselines per framework (median), the build terms
    (least squares of built - baseline - inputs on the weights), and the forward terms (least
    squares of the forward rise on the activation peak, the largest weight matrix and 1)."""
    import numpy as np

    if not rows:
        raise CoreplanError("footprint fit needs measurements")
    baseline = {f: float(np.median([r.baseline_bytes for r in rows if r.framework == f]))
                for f in FRAMEWORKS if any(r.framework == f for r in rows)}
    inputs = lambda r: r.config.batch * 3 * r.config.height * r.config.width * r.config.elem_bytes  # noqa: E731
    torch_rows = [r for r in rows if r.framework == "torch"] or rows
    A = np.array([[inference_memory(r.config).weights_bytes, 1.0] for r in torch_rows])
    y = np.array([r.built_bytes - r.baseline_bytes - inputs(r) for r in torch_rows])
    (weights, build), *_ = np.linalg.lstsq(A, y, rcond=None)
    builds = {"torch": float(build)}
    for f in baseline:
        if f != "torch":
            own = [r for r in rows if r.framework == f]
            builds[f] = float(np.median([r.built_bytes - r.baseline_bytes - inputs(r)
                                         - weights * inference_memory(r.config).weights_bytes
                                         for r in own]))
    B = np.array([[inference_memory(r.config).activation_peak_bytes,
                   largest_weight_matrix_bytes(r.config), 1.0] for r in rows])
    z = np.array([r.forward_bytes - r.built_bytes for r in rows])
    (act, pack, workspace), *_ = np.linalg.lstsq(B, z, rcond=None)
    return FootprintModel(baseline, float(weights), builds, float(act), float(pack),
                          float(workspace), source)


def read_observations(path: str | Path) -> list[tuple[dict, Observation]]:
    """(label fields, observation) for every row of a measurement file that has the footprint
    stages (benchmarks/footprint.py, or `coreplan validate --footprint`)."""
    from costmodel.config import configure
    from costmodel.measurements import read_measurements
    from costmodel.spec import get_model

    out = []
    for m in read_measurements(path):
        if m.mem_footprint_bytes_measured is None:
            continue
        c = configure(get_model(m.model), m.resolution, batch=m.batch,
                      cores=m.core_tokens or None, impl=m.impl, dtype=m.dtype)
        framework = m.framework or "torch"
        label = dict(source="hf" if framework == "transformers" else "reference", model=m.model,
                     resolution=str(m.resolution), batch=str(m.batch),
                     cores=str(m.core_tokens) if m.core_tokens else "")
        out.append((label, Observation(c, framework, float(m.mem_baseline_bytes_measured),
                                       float(m.mem_built_bytes_measured),
                                       float(m.mem_footprint_bytes_measured))))
    if not out:
        raise CoreplanError(f"{path}: no rows with footprint measurements")
    return out


# The configurations the shipped CPU terms are fitted on (source, model, side px, batch, C); every
# other row of the footprint benchmark is held out. benchmarks/footprint.py measures these.
FIT = (("reference", "dinov2-small", 518, 4, None), ("reference", "veca-small", 512, 4, 64),
       ("reference", "dinov3-base", 448, 2, None), ("reference", "veca-base", 224, 1, 8),
       ("reference", "dinov2-small", 224, 1, None), ("reference", "veca-small", 768, 2, 32),
       ("hf", "dinov2-small", 224, 1, None))
FIT_KEYS = {(source, model, str(side), str(batch)) for source, model, side, batch, _ in FIT}


def report(path: str | Path) -> str:
    """Fit on the FIT configurations, then every other row's error, as text."""
    rows = read_observations(path)
    key = lambda row: (row["source"], row["model"], row["resolution"], row["batch"])  # noqa: E731
    model = fit_model([o for row, o in rows if key(row) in FIT_KEYS])
    lines = [f"fitted on {sum(key(r) in FIT_KEYS for r, _ in rows)} rows: "
             f"baseline {', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in model.baseline_bytes.items())}"
             f"; weights x {model.weights_factor:.3f}; build "
             f"{', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in model.build_bytes.items())}; "
             f"activations x {model.activation_factor:.3f};"
             f" packing x {model.pack_factor:.3f}; workspace {model.workspace_bytes / 1e6:.1f} MB",
             f"{'source':10s} {'configuration':36s} {'measured MB':>11s} {'predicted MB':>12s} "
             f"{'tensors MB':>10s} {'error':>7s}"]
    errors = []
    for row, o in rows:
        if key(row) in FIT_KEYS:
            continue
        predicted = footprint(o.config, model, o.framework).total_bytes
        tensors = inference_memory(o.config).total_bytes
        error = predicted / o.forward_bytes - 1
        errors.append(error)
        label = f"{row['model']} {row['resolution']}px B={row['batch']}" + (
            f" C={row['cores']}" if row["cores"] else "")
        lines.append(f"{row['source']:10s} {label:36s} {o.forward_bytes / 1e6:11.1f} "
                     f"{predicted / 1e6:12.1f} {tensors / 1e6:10.1f} {error:+7.1%}")
    within = sum(abs(e) <= 0.10 for e in errors)
    lines.append(f"held-out rows: {len(errors)}; within ±10%: {within} ({within / len(errors):.0%}); "
                 f"MAPE {sum(abs(e) for e in errors) / len(errors):.1%}; max |error| "
                 f"{max(abs(e) for e in errors):.1%}")
    return "\n".join(lines)
