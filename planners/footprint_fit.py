"""Fitting the process footprint's terms (planners/footprint.py) to fresh-process measurements.

An `Observation` is one fresh worker's peak RSS by stage (after the imports, after building the
model, after one forward: reference/footprint.py). `fit_model` recovers the terms from such rows;
`read_observations` reads them from a measurement file (its footprint columns); `FIT` lists the
configurations the shipped CPU terms are fitted on, every other row of the footprint benchmark
being held out (`held_out`, which benchmarks/footprint.py prints).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from costmodel.config import Config
from costmodel.errors import CoreplanError
from costmodel.memory import inference_memory
from planners.footprint import (FRAMEWORKS, GLIBC_MMAP_THRESHOLD_MAX, FootprintModel,
                                activation_split, footprint, largest_weight_matrix_bytes)


@dataclass(frozen=True)
class Observation:
    """One fresh-process measurement (reference/footprint.py) of one configuration."""

    config: Config
    framework: str
    baseline_bytes: float
    built_bytes: float
    forward_bytes: float


def fit_model(rows: list[Observation], source: str = "",
              mapped_above: float = 0.0) -> FootprintModel:
    """The footprint terms from measurements: baselines per framework (median), the build terms
    (least squares of built - baseline - inputs on the weights), and the forward terms (least
    squares of the forward rise on the activation peak, the largest weight matrix and 1, each
    row weighted by 1 / its footprint: the fit minimises the relative error the footprint is
    judged by, so that a 1.4 GB process does not outweigh ten of 400 MB).

    With `mapped_above` (the allocator's mapping threshold, planners.footprint), the tensors
    above it count once and the activation factor is fitted on the rest; which stage of a
    forward is its peak depends on that factor, so the fit is repeated from the largest stage
    until the stages it picks no longer change."""
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
    weight = 1.0 / np.array([r.forward_bytes for r in rows])
    model = FootprintModel(baseline, float(weights), builds, source=source,
                           mapped_above_bytes=float(mapped_above))
    splits, act = None, 1.0
    for _ in range(20):
        chosen = [activation_split(r.config, model, act) for r in rows]
        if chosen == splits:
            break
        splits = chosen
        B = np.array([[heap, largest_weight_matrix_bytes(r.config), 1.0]
                      for r, (heap, _) in zip(rows, splits)])
        z = np.array([r.forward_bytes - r.built_bytes - mapped
                      for r, (_, mapped) in zip(rows, splits)])
        act, pack, workspace = nonnegative_lstsq(B * weight[:, None], z * weight)
    return replace(model, activation_factor=float(act), pack_factor=float(pack),
                   workspace_bytes=float(workspace))


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


def read_runs(paths, model_file=None) -> list[tuple[dict, Observation]]:
    """The same processes measured in several runs (footprint files measured apart; one path or
    a sequence of them): per configuration, the median of each stage over the runs that measured
    it, in the first file's order. Each label's "peaks" holds every run's forward peak (bytes) in
    file order, None for a file without the process: a process's peak RSS moves between runs (the
    allocator's choices), and its median is what a model is held against (HeldOut.spread says how
    far it moved)."""
    import statistics

    if isinstance(paths, (str, Path)):
        paths = [paths]
    key = lambda row: tuple(row[k] for k in ("source", "model", "resolution", "batch", "cores"))  # noqa: E731
    # a file may hold rows that share a label (validate's, in other layouts or dtypes): the k-th
    # such row of one file goes with the k-th of another
    runs: dict[tuple, dict[int, tuple[dict, Observation]]] = {}
    for i, path in enumerate(paths):
        seen: dict[tuple, int] = {}
        for row, o in read_observations(path, model_file):
            k = seen[key(row)] = seen.get(key(row), -1) + 1
            runs.setdefault((*key(row), k), {})[i] = (row, o)
    out = []
    for by_file in runs.values():
        measured = list(by_file.values())
        row, first = measured[0]
        stages = {name: float(statistics.median(getattr(o, name) for _, o in measured))
                  for name in ("baseline_bytes", "built_bytes", "forward_bytes")}
        peaks = tuple(by_file[i][1].forward_bytes if i in by_file else None
                      for i in range(len(paths)))
        out.append((dict(row, peaks=peaks), replace(first, **stages)))
    return out


# The configurations the footprint terms are fitted on (source, model, side px, batch, C): the
# shipped CPU terms on benchmarks/footprint.py's measurements of them, a fresh `coreplan profile`
# on its own (reference/own_device.py measures these same processes); every other row of the
# footprint benchmark is held out. Each process's activations are either all below the allocator's
# mapping threshold (glibc: 32 MiB; from 4 to 80 MB in all) or nearly all above it (about 1 GB):
# a process with tensors on both sides, or near the threshold, has a peak RSS that moves by up to
# 10% between two runs of it (veca-small 768 px, batch 4: 689 and 762 MB), too loose to fit on.
FIT = (("reference", "dinov2-small", 224, 1, None), ("reference", "veca-small", 256, 4, 64),
       ("reference", "dinov3-base", 256, 1, None), ("reference", "veca-small", 384, 4, 64),
       ("reference", "dinov3-small", 512, 4, None), ("reference", "veca-small", 1024, 12, 64),
       ("hf", "dinov2-small", 224, 1, None), ("hf", "dinov2-small", 378, 4, None),
       ("hf", "dinov2-small", 448, 56, None))
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

    @property
    def peaks(self) -> tuple[float, ...]:
        """Every run's measured peak (one file: the one; several: read_runs)."""
        return tuple(p for p in self.label.get("peaks", (self.measured_bytes,)) if p is not None)

    @property
    def spread(self) -> float:
        """How far the process's peak moved between runs: largest over smallest, less 1."""
        return max(self.peaks) / min(self.peaks) - 1

    def run_errors(self) -> list[float | None]:
        """The prediction's error against each run's peak alone, in file order (None: a run
        without this process)."""
        return [None if peak is None else self.predicted_bytes / peak - 1
                for peak in self.label.get("peaks", (self.measured_bytes,))]


def held_out(path, fitted_on=None, mapped_above: float = GLIBC_MMAP_THRESHOLD_MAX
             ) -> tuple[FootprintModel, int, list[HeldOut]]:
    """The terms fitted on the FIT rows of a footprint file (`fitted_on`, default `path`: another
    day's measurements, or a file without the FIT rows, such as validate's), how many rows that
    was, and every other row of `path` predicted by them. Either may be several runs of the same
    processes (each configuration's median over them: read_runs). The files are this project's
    CPU measurements under glibc malloc: its mapping threshold by default."""
    key = lambda row: (row["source"], row["model"], row["resolution"], row["batch"])  # noqa: E731
    fit = {key(row): o for row, o in read_runs(fitted_on or path) if key(row) in FIT_KEYS}
    if len(fit) < len(FIT_KEYS):
        where = fitted_on or path
        where = where if isinstance(where, (str, Path)) else ", ".join(map(str, where))
        raise CoreplanError(f"{where}: has {len(fit)} of the {len(FIT_KEYS)} rows the "
                            f"terms are fitted on (planners.footprint_fit.FIT); give --fitted-on "
                            f"a footprint file that has them all")
    model = fit_model(list(fit.values()), mapped_above=mapped_above)
    rows = read_runs(path)
    out = [HeldOut(row, o.forward_bytes, footprint(o.config, model, o.framework).total_bytes,
                   inference_memory(o.config).total_bytes)
           for row, o in rows if key(row) not in FIT_KEYS]
    return model, len(fit), out


def repeated(first: str | Path, second: str | Path) -> list[tuple[dict, float, float]]:
    """(label, first peak RSS, second) of every configuration two footprint files both measured:
    how far the same process moves between two runs, the floor under any model's error."""
    out = [(row, *row["peaks"]) for row, _ in read_runs([first, second])
           if None not in row["peaks"]]
    if not out:
        raise CoreplanError(f"{first} and {second} share no configuration")
    return out
