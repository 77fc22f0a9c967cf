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
                                                       of the tensors at or below
                                                       mapped_above_bytes, where one is set
              + the peak's tensors above it, once      (glibc malloc maps a block above its
                                                       largest mmap threshold, 32 MiB on 64-bit,
                                                       on its own and unmaps it when it is freed:
                                                       nothing of it is kept)
              + pack_factor x largest weight matrix    (GEMM packing workspace)
              + workspace_bytes                        (first-forward workspaces, thread pools)

The peak is the forward's stage (costmodel.memory.inference_stage_tensors) where the two
activation terms together are largest. Each term is named in the result. The numbers are a
device's `footprint` table (devices.toml; this module reads and writes it): measured on the CPU
this project runs on (planners/footprint_fit.py fits them on a few configurations,
benchmarks/footprint.py holds the rest out), documented assumptions for GPUs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from costmodel.config import Config
from costmodel.tomlfile import toml_string
from costmodel.errors import CoreplanError
from costmodel.memory import inference_memory

FRAMEWORKS = ("torch", "transformers")
# glibc malloc's largest dynamic mmap threshold on a 64-bit system, DEFAULT_MMAP_THRESHOLD_MAX =
# 4 * 1024 * 1024 * sizeof(long) (mallopt(3)): a block above it is always mapped on its own and
# unmapped when freed. Setting MALLOC_MMAP_THRESHOLD_ in the environment changes it.
GLIBC_MMAP_THRESHOLD_MAX = 32 * 2**20


@dataclass(frozen=True)
class FootprintModel:
    """A device's footprint terms (bytes, or dimensionless factors).

    Args:
        baseline_bytes: the runtime's own resident bytes per framework (torch; torch and
            transformers), before any model exists; on a GPU, device memory of the CUDA context.
        weights_factor: resident bytes per parameter byte once the model is built.
        build_bytes: what building a model leaves besides its parameters, per framework.
        activation_factor: resident bytes per byte of the predicted activation peak (of its
            tensors at or below `mapped_above_bytes`, where that is set).
        pack_factor: resident bytes per byte of the largest weight matrix (packing buffers).
        workspace_bytes: a forward's fixed workspaces.
        source: where the numbers come from.
        mapped_above_bytes: tensors above this size are mapped apart by the allocator and
            returned when freed, so count once (glibc malloc: GLIBC_MMAP_THRESHOLD_MAX); 0: every
            tensor at `activation_factor` (a GPU's caching allocator).
    """

    baseline_bytes: dict = field(default_factory=dict)
    weights_factor: float = 1.0
    build_bytes: dict = field(default_factory=dict)
    activation_factor: float = 1.0
    pack_factor: float = 0.0
    workspace_bytes: float = 0.0
    source: str = ""
    mapped_above_bytes: float = 0.0


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


def split_tensors(tensors, mapped_above: float) -> tuple[int, int]:
    """(bytes of the tensors at or below `mapped_above`, bytes of those above it)."""
    above = sum(t for t in tensors if t > mapped_above)
    return sum(tensors) - above, above


def activation_split(c: Config, model: FootprintModel,
                     activation_factor: float | None = None) -> tuple[int, int]:
    """(bytes in the allocator's heap, bytes mapped apart) of the forward's live tensors at the
    stage where activation_factor x the first + the second is largest (the model's factor unless
    one is given); without a mapping threshold, (the activation peak, 0)."""
    from costmodel.memory import inference_stage_tensors

    if not model.mapped_above_bytes:
        return inference_memory(c).activation_peak_bytes, 0
    factor = model.activation_factor if activation_factor is None else activation_factor
    splits = [split_tensors(tensors, model.mapped_above_bytes)
              for tensors in inference_stage_tensors(c).values()]
    return max(splits, key=lambda split: factor * split[0] + split[1])


def footprint(c: Config, model: FootprintModel, framework: str = "torch") -> Footprint:
    """The footprint of a process running one inference forward of `c`."""
    if framework not in model.baseline_bytes:
        known = ", ".join(model.baseline_bytes) or "none"
        raise CoreplanError(f"no footprint baseline for framework {framework!r} (known: {known}): "
                            f"this device's footprint terms measured no {framework} process (a "
                            f"profile within a small --budget-s leaves them out; a larger one "
                            f"measures them)")
    if framework == "transformers" and c.spec.is_core:  # its process would be another's
        raise CoreplanError(f"transformers has no {c.spec.name} (core-periphery models run in "
                            f"plain torch): use --framework torch")
    mem = inference_memory(c)
    heap, mapped = activation_split(c, model)
    terms = {
        "runtime_baseline": model.baseline_bytes[framework],
        "weights": mem.weights_bytes * model.weights_factor,
        "build": model.build_bytes.get(framework, 0.0),
        "inputs": c.batch * c.spec.in_chans * c.height * c.width * c.elem_bytes,
        "activations": model.activation_factor * heap,
        **({"activations_mapped": mapped} if model.mapped_above_bytes else {}),
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
    costmodel.memory.training_memory) at the activations' factor. With a mapping threshold, the
    MLP's temporaries are split as a forward's are, and the saved activations (pieces of at
    least one residual-stream tensor, bar the norms' statistics) count once where that tensor is
    above the threshold: the inference rule carried over, not measured on a training process."""
    from costmodel.memory import inference_stage_tensors, residual_bytes, training_memory

    forward = footprint(c, model, framework)
    mem = training_memory(c, optimizer_states)
    terms = dict(forward.terms)
    terms["weights"] = int(round(model.weights_factor * (2 + optimizer_states)
                                 * mem.weights_bytes))
    if model.mapped_above_bytes:
        heap, mapped = split_tensors(inference_stage_tensors(c)["mlp"], model.mapped_above_bytes)
        saved = mem.terms["saved_activations"]
        if residual_bytes(c) > model.mapped_above_bytes:
            mapped += saved
        else:
            heap += saved
        terms["activations"] = int(round(model.activation_factor * heap))
        terms["activations_mapped"] = int(mapped)
    else:
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
        str(table.get("source", "")),
        number("mapped_above_bytes", table.get("mapped_above_bytes", 0.0)))


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
            *([f"mapped_above_bytes = {model.mapped_above_bytes:.10g}"]
              if model.mapped_above_bytes else []),
            f"source = {toml_string(model.source)}"]
