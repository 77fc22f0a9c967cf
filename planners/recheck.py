"""Does a profile still hold? A few whole models timed now against a profiled device's predictions.

A shared machine's speed wanders: on the developers' 2-core VM the same held-out configurations,
timed twice a few minutes apart, came out up to 16% apart as a whole, and runs after a profile up
to 28% faster than the profile predicted, while each run's shape (its errors with its median taken
out) stayed within 2-7% (README). `coreplan recheck` times the profile's calibration models again
(reference/own_device.recheck) and holds them against the times the profile measured them at
(`Profile.calibration_ms`; against the device's predictions where the file has none, as files
written before it): their median ratio is the machine's level now relative to the profile, apart
from how well the calibration fitted them. Within LEVEL_HOLDS the profile holds; beyond it the
verdict says how far and which way plans on it are off now. It reads the machine as it is for
the half minute it runs: on the developers' VM its reading did not carry to the minutes after it
(a device rescaled by it predicted five of six held-out runs worse than the profile did, README),
so it offers no rescaled device; a lasting move calls for `coreplan profile`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.errors import CoreplanError
from costmodel.measurements import Measurement
from planners.accuracy import predict_measurement
from planners.devices import DeviceSpec

LEVEL_HOLDS = 0.05  # a profile whose models run within this of their time then still holds


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
    def profiled_ms(self) -> tuple[float | None, ...]:
        """Each model's time when profiled (Profile.calibration_ms), None where not recorded."""
        then = self.device.profile.calibration_ms if self.device.profile is not None else {}
        return tuple(then.get(r.label()) for r in self.rows)

    @property
    def against_profile(self) -> bool:
        """Whether the level is read against the profile's own times (half the models or more
        have one) rather than against the predictions."""
        return 2 * sum(t is not None for t in self.profiled_ms) >= len(self.rows)

    @property
    def drift(self) -> np.ndarray:
        """Per model with a profiled time: then / now - 1 (> 0: faster now), the error the
        device's prediction of it carries from the machine's move alone."""
        return np.array([t / r.time_ms_median - 1 for r, t in zip(self.rows, self.profiled_ms)
                         if t is not None])

    @property
    def level(self) -> float:
        """The machine's move since the profile, as an error of its predictions (> 0: it now runs
        faster than predicted): the median drift against the profile's own times, else the
        median error against the predictions."""
        return float(np.median(self.drift if self.against_profile else self.errors))

    @property
    def holds(self) -> bool:
        return abs(self.level) <= LEVEL_HOLDS

    def verdict(self) -> str:
        """One line: how the machine runs now against the device, and what to do about it."""
        level, name = self.level, self.device.name
        now = (f"{len(self.rows)} whole models ran at a median {1 / (1 + level):.3f}x "
               + ("their time when profiled" if self.against_profile
                  else f"{name}'s predictions"))
        if self.holds:
            return f"{now}: within ±{LEVEL_HOLDS:.0%}, the profile holds"
        way = "optimistic" if level < 0 else "pessimistic"
        return (f"{now}: this machine now runs {abs(level) / (1 + level):.1%} "
                f"{'slower' if level < 0 else 'faster'} than profiled, so plans on {name} are "
                f"{way} by that much while it does; if it lasts (recheck again in a few "
                f"minutes), `coreplan profile` measures it again")
