"""What serving costs: images per second per device, energy per image, price per million images.

A fleet of K devices serves `img_per_s` images per second and is busy a fraction u of its time
(its utilisation). Then
    images per second per device = img_per_s / K
    energy per image (J)         = board power (W) x K x u / img_per_s
    fleet price per hour (USD)   = K x price per hour
    price per million images     = K x price per hour / (3600 x img_per_s) x 1e6
NB: energy is counted at the board power (the device's power limit) for the time it computes, and
nothing for the time it idles: an upper bound of the busy draw, without the idle draw. The price is
paid for every hour the fleet is held, busy or idle, so an idle fleet makes images dearer; the
price is a list price read on a date (`price_source`), not what a contract pays.

`OBJECTIVES` ranks fleets: "devices" (fewest), "cost" (cheapest per million images), "energy"
(least energy per image); each breaks ties by the others.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from costmodel.errors import ArgumentError, check_choice
from planners.devices import DeviceSpec

OBJECTIVES = ("devices", "cost", "energy")
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Economics:
    """One fleet's rates: `devices` devices serving `img_per_s` images/s, busy `utilisation` of
    the time. Energy and price are None where the device has no board power or no price."""

    devices: int
    img_per_s: float
    utilisation: float
    board_power_w: float | None
    price_per_hour_usd: float | None

    @property
    def img_per_s_per_device(self) -> float:
        return self.img_per_s / self.devices

    @property
    def joules_per_image(self) -> float | None:
        if self.board_power_w is None:
            return None
        return self.board_power_w * self.devices * self.utilisation / self.img_per_s

    @property
    def usd_per_hour(self) -> float | None:
        if self.price_per_hour_usd is None:
            return None
        return self.devices * self.price_per_hour_usd

    @property
    def usd_per_million_images(self) -> float | None:
        if self.usd_per_hour is None:
            return None
        return self.usd_per_hour / (SECONDS_PER_HOUR * self.img_per_s) * 1e6

    def to_dict(self) -> dict:
        return {**asdict(self), "img_per_s_per_device": self.img_per_s_per_device,
                "joules_per_image": self.joules_per_image, "usd_per_hour": self.usd_per_hour,
                "usd_per_million_images": self.usd_per_million_images}


def devices_for(img_per_s: float, img_per_s_per_device: float) -> int:
    """The capacity bound: the fewest devices, each busy all the time at `img_per_s_per_device`
    with no queue, that serve `img_per_s` (`plan --demand`'s count and `serve`'s bound)."""
    return max(1, math.ceil(img_per_s / img_per_s_per_device))


def economics(device: DeviceSpec, *, devices: int, img_per_s: float,
              utilisation: float) -> Economics:
    """The fleet's rates on `device` (module docstring)."""
    if not isinstance(devices, int) or devices < 1:
        raise ArgumentError("devices", f"must be a positive integer, got {devices!r}")
    if not (math.isfinite(img_per_s) and img_per_s > 0):
        raise ArgumentError("img_per_s", f"must be a positive number, got {img_per_s!r}")
    if not (math.isfinite(utilisation) and 0 <= utilisation <= 1 + 1e-9):
        raise ArgumentError("utilisation", f"must be in 0..1, got {utilisation!r}")
    return Economics(devices, float(img_per_s), float(min(utilisation, 1.0)),
                     device.board_power_w, device.price_per_hour_usd)


def at_full_use(device: DeviceSpec, img_per_s_per_device: float) -> Economics:
    """One device kept busy: full batches back to back at `img_per_s_per_device`."""
    return economics(device, devices=1, img_per_s=img_per_s_per_device, utilisation=1.0)


def check_objective_inputs(objective: str, devices: list[DeviceSpec]) -> None:
    """"cost" needs every device's price and "energy" every device's board power; a missing one
    is refused, naming the device and the field a device file sets."""
    check_choice("objective", objective, OBJECTIVES)
    field = {"cost": "price_per_hour_usd", "energy": "board_power_w"}.get(objective)
    if field is None:
        return
    missing = [d.name for d in devices if getattr(d, field) is None]
    if missing:
        raise ArgumentError("objective", f"{objective} needs {field} for every device; "
                            f"{', '.join(missing)} has none (set it in a device file)")


def rank_key(objective: str, e: Economics | None) -> tuple:
    """Sort key of a fleet under an objective (smaller first); None (no fleet) sorts last."""
    if e is None:
        return (1, math.inf, math.inf, math.inf)
    cost = e.usd_per_million_images if e.usd_per_million_images is not None else math.inf
    energy = e.joules_per_image if e.joules_per_image is not None else math.inf
    order = {"devices": (e.devices, cost, energy), "cost": (cost, e.devices, energy),
             "energy": (energy, e.devices, cost)}
    return (0, *order[objective])
