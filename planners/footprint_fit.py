"""Fitting the process footprint's terms (planners/footprint.py) to fresh-process measurements.

An `Observation` is one fresh worker's peak RSS by stage (after the imports, after building the
model, after one forward: reference/footprint.py). `fit_model` recovers the terms from such rows;
`read_observations` reads them from a measurement file (its footprint columns); `FIT` lists the
configurations the shipped CPU terms are fitted on, every other row of the footprint benchmark
being held out (`held_out`, which benchmarks/footprint.py prints).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from costmodel.config import Config
from costmodel.errors import CoreplanError
from costmodel.memory import inference_memory
from planners.footprint import FRAMEWORKS, FootprintModel, footprint, largest_weight_matrix_bytes


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
    squares of the forward rise on the activation peak, the largest weight matrix and 1, each
    row weighted by 1 / its footprint: the fit minimises the relative error the footprint is
    judged by, so that a 1.4 GB process does not outweigh ten of 400 MB)."""
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
    weight = 1.0 / np.array([r.forward_bytes for r in rows])
    act, pack, workspace = nonnegative_lstsq(B * weight[:, None], z * weight)
    return FootprintModel(baseline, float(weights), builds, float(act), float(pack),
                          float(workspace), source)


def nonnegative_lstsq(A, y):
    """Least squares with every coefficient >= 0 (a footprint term cannot be negative): solve,
    and while a coefficient is negative, hold the most negative at 0 and solve for the rest."""
    import numpy as np

    free = list(range(A.shape[1]))
    while True:
        solution = np.zeros(A.shape[1])
        if free:
            solution[free], *_ = np.linalg.lstsq(A[:, free], y, rcond=None)
        if not free or solution.min() >= 0:
            return [float(v) for v in solution]
        free.remove(int(np.argmin(solution)))


def read_observations(path: str | Path, model_file=None) -> list[tuple[dict, Observation]]:
    """(label fields, observation) for every row of a measurement file that has the footprint
    stages (benchmarks/footprint.py, or `coreplan validate --footprint`)."""
    from costmodel.measurements import read_measurements

    out = []
    for m in read_measurements(path):
        if m.mem_footprint_bytes_measured is None:
            continue
        c = m.config(model_file)
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


@dataclass(frozen=True)
class HeldOut:
    """A held-out row: what it measured, what the fitted terms predict, and the live tensors."""

    label: dict
    measured_bytes: float
    predicted_bytes: int
    tensor_bytes: int

    @property
    def error(self) -> float:
        return self.predicted_bytes / self.measured_bytes - 1


def held_out(path: str | Path, fitted_on: str | Path | None = None
             ) -> tuple[FootprintModel, int, list[HeldOut]]:
    """The terms fitted on the FIT rows of a footprint file (`fitted_on`, default `path`: another
    day's measurements, or a file without the FIT rows, such as validate's), how many rows that
    was, and every other row of `path` predicted by them."""
    key = lambda row: (row["source"], row["model"], row["resolution"], row["batch"])  # noqa: E731
    fit = [o for row, o in read_observations(fitted_on or path) if key(row) in FIT_KEYS]
    if not fit:
        raise CoreplanError(f"{fitted_on or path}: none of the rows the terms are fitted on "
                            f"(planners.footprint_fit.FIT); give --fitted-on a footprint file")
    model = fit_model(fit)
    rows = read_observations(path)
    out = [HeldOut(row, o.forward_bytes, footprint(o.config, model, o.framework).total_bytes,
                   inference_memory(o.config).total_bytes)
           for row, o in rows if key(row) not in FIT_KEYS]
    return model, len(fit), out
