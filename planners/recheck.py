"""Does a profile still hold? A few whole models timed now against a profiled device's predictions.

A shared machine's speed wanders: on the developers' 2-core VM the same held-out configurations,
timed twice a few minutes apart, came out up to 16% apart as a whole, and runs after a profile up
to 28% faster than the profile predicted, while each run's shape (its errors with its median taken
out) stayed within 2-7% (README). `coreplan recheck` times the profile's calibration models again
(reference/own_device.recheck) and holds them against the device's predictions: their median error
is the machine's level now relative to the profile. Within LEVEL_HOLDS the profile holds; beyond
it, `rescaled` gives the device with every prediction divided by that level (each op class's
efficiency times 1 + level, the per-op overhead over it: the op curves and the footprint as
profiled), which `coreplan recheck --out` writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from costmodel.errors import CoreplanError
from costmodel.measurements import Measurement
from planners.accuracy import predict_measurement
from planners.devices import DeviceSpec

LEVEL_HOLDS = 0.05  # a profile whose models run within this of its predictions still holds


@dataclass(frozen=True)
class Recheck:
    """Whole models timed now (`rows`, the timed ones) against `device`'s predictions."""

    device: DeviceSpec
    rows: tuple[Measurement, ...]
    predicted_s: tuple[float, ...]

    @classmethod
    def of(cls, device: DeviceSpec, records) -> "Recheck":
        rows = tuple(r for r in records if r.timed)
        if not rows:
            raise CoreplanError("no model was timed on a quiet machine: the machine was busy "
                                "throughout; run it again when it is quiet")
        return cls(device, rows, tuple(float(predict_measurement(r, device)) for r in rows))

    @property
    def errors(self) -> np.ndarray:
        """predicted / measured - 1 per model."""
        return np.array([p / r.time_s - 1 for r, p in zip(self.rows, self.predicted_s)])

    @property
    def level(self) -> float:
        """The median error: > 0 where the machine now runs faster than the device predicts."""
        return float(np.median(self.errors))

    @property
    def holds(self) -> bool:
        return abs(self.level) <= LEVEL_HOLDS

    def verdict(self) -> str:
        """One line: how the machine runs now against the device, and what to do about it."""
        level, name = self.level, self.device.name
        now = (f"{len(self.rows)} whole models ran at a median {1 / (1 + level):.3f}x "
               f"{name}'s predictions")
        if self.holds:
            return f"{now}: within ±{LEVEL_HOLDS:.0%}, the profile holds"
        way = "optimistic" if level < 0 else "pessimistic"
        return (f"{now}: this machine now runs {abs(level) / (1 + level):.1%} "
                f"{'slower' if level < 0 else 'faster'} than profiled, so plans on {name} are "
                f"{way} by that much; `coreplan recheck --out FILE` writes it rescaled, "
                f"`coreplan profile` measures all of it again")

    def rescaled(self) -> DeviceSpec:
        """The device with every prediction divided by 1 + level: each efficiency times it and
        the per-op overhead over it (time = reference / efficiency + launches x overhead)."""
        factor = 1 + self.level
        d = self.device
        return replace(d, efficiency={c: e * factor for c, e in d.efficiency.items()},
                       kernel_launch_overhead_s=d.kernel_launch_overhead_s / factor,
                       description=f"{d.description} (rechecked: predictions x{1 / factor:.3f})")
