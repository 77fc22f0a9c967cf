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

Each term is named in the result. The numbers are a device's `footprint` table (devices.toml;
this module reads and writes it): measured on the CPU this project runs on (planners/
footprint_fit.py fits them on a few configurations, benchmarks/footprint.py holds the rest out),
documented assumptions for GPUs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from costmodel.config import Config
from costmodel.tomlfile import toml_string
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
    if framework == "transformers" and c.spec.is_core:  # its process would be another's
        raise CoreplanError(f"transformers has no {c.spec.name} (core-periphery models run in "
                            f"plain torch): use --framework torch")
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


def training_footprint(c: Config, model: FootprintModel, optimizer_states: int = 2,
                       framework: str = "torch") -> Footprint:
    """The footprint of a process running a training step of `c`: the forward's fixed terms
    (runtime baseline, build, inputs, packing, workspace), the weights with their gradients and
    the optimizer's states (`optimizer_states` tensors the size of the weights) at the weights'
    factor, and the step's activation peak (those saved for backward and one MLP's temporaries,
    costmodel.memory.training_memory) at the activations' factor."""
    from costmodel.memory import training_memory

    forward = footprint(c, model, framework)
    mem = training_memory(c, optimizer_states)
    terms = dict(forward.terms)
    terms["weights"] = int(round(model.weights_factor * (2 + optimizer_states)
                                 * mem.weights_bytes))
    terms["activations"] = int(round(model.activation_factor * mem.activation_peak_bytes))
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


def footprint_toml(device_name: str, model: FootprintModel) -> list[str]:
    """The `[devices.NAME.footprint]` lines of a device file."""
    per = lambda terms: ", ".join(f"{k} = {v:.6g}" for k, v in terms.items())  # noqa: E731
    return [f"[devices.{device_name}.footprint]",
            f"baseline_bytes = {{ {per(model.baseline_bytes)} }}",
            f"weights_factor = {model.weights_factor:.6g}",
            f"build_bytes = {{ {per(model.build_bytes)} }}",
            f"activation_factor = {model.activation_factor:.6g}",
            f"pack_factor = {model.pack_factor:.6g}",
            f"workspace_bytes = {model.workspace_bytes:.6g}",
            f"source = {toml_string(model.source)}"]
