"""Where a whole model's time goes, by op class: one forward under torch.profiler, each top-level
framework op charged to the class of the registry record that claims it (its own name, else the
first claimed name in its subtree: aten::conv2d runs aten::convolution), every other op (copies,
views, concatenations the cost graph does not list) to elementwise.

Calibration uses it (reference/own_device.py, planners/calibrate.attributed_efficiencies): a
class's efficiency is its ops' profiled seconds over the seconds the models spent in them, one
measured ratio per class, where a fit of three efficiencies to a few whole-model times cannot
tell the classes apart (on 2026-12-01 such a fit gave attention 1.37, faster in a model than
alone, and elementwise 0.33).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import costmodel.ops  # noqa: F401  (registers the records)
from costmodel.registry import OP_CLASSES, REGISTRY


def class_of_name() -> dict[str, str]:
    """Framework op name -> op class, from the registry records' `aten_ops`."""
    return {name: record.op_class for record in REGISTRY.values() for name in record.aten_ops}


@dataclass(frozen=True)
class Attribution:
    """Seconds per call spent in each op class's top-level ops, the wall time per call under the
    profiler, and the top-level ops per call."""

    seconds: dict[str, float]
    wall_s: float
    ops: float

    @property
    def unattributed_s(self) -> float:
        """Time between the top-level ops (Python, module calls): in no class."""
        return max(self.wall_s - sum(self.seconds.values()), 0.0)


def _classify(event, names: dict[str, str]) -> str:
    pending = [event]
    while pending:  # breadth first: the outermost claimed op decides
        e = pending.pop(0)
        if e.name in names:
            return names[e.name]
        pending.extend(e.cpu_children)
    return "elementwise"


@contextmanager
def _quiet_stderr():
    """The profiler's C++ side writes two lines to file descriptor 2 per session (start and
    stop): sent to /dev/null meanwhile, so a run's own lines stay readable."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def attribute(forward, calls: int = 1) -> Attribution:
    """Run `forward` `calls` times under the profiler (CPU activity only) and charge each
    top-level op's inclusive time to its class; per call."""
    import time

    from torch.profiler import ProfilerActivity, profile

    names = class_of_name()
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(calls):
            forward()
        wall = (time.perf_counter() - start) / calls
    seconds = dict.fromkeys(OP_CLASSES, 0.0)
    tops = [e for e in prof.events() if e.cpu_parent is None]
    for e in tops:
        seconds[_classify(e, names)] += e.cpu_time_total / 1e6 / calls
    return Attribution(seconds, wall, len(tops) / calls)
