"""The Typer app and what every command shares: option types, parsers, flag names.

Command modules (`cost_commands`, `measure_commands`, `plan_commands`, `chart_commands`) import
this module and register on `app`; `coreplan.cli` imports them all and runs the app. Nothing here
imports a command module, so the import graph is a tree.
"""

from __future__ import annotations

from typing import Optional

import typer

from costmodel.config import parse_resolution
from costmodel.errors import ArgumentError, CoreplanError, check_choice
from coreplan.output import FORMATS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Cost model, simulator and capacity planner for core-periphery ViTs.")

# The one place a flag is made: a command's option for Python argument `name` is `--name` with '-'
# for '_' (latency_ms: --latency-ms), except where the library's argument is named for its unit
# or meaning and the flag is kept short. Library errors (`ArgumentError`) name Python arguments;
# the CLI says them as these flags.
FLAG_NAMES = {"fmt": "--format", "time_it": "--time", "throughput_img_per_s": "--throughput",
              "demand_img_per_s": "--demand", "distill_output_dim": "--output-dim"}
DECLARED: set[str] = set()  # every argument a command takes as an option (filled as they load)


def flag(name: str) -> str:
    """The flag of Python argument `name`."""
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def option(name: str, default=None, help: str | None = None, *, switch: bool = False):
    """A command's option for Python argument `name` (its flag from `flag`); `switch`: a boolean
    with its --no- form."""
    DECLARED.add(name)
    text = flag(name)
    return typer.Option(default, f"{text}/--no-{text[2:]}" if switch else text, help=help)


def flag_message(err: CoreplanError) -> str:
    """An error's text as the CLI says it: a Python argument a command takes becomes its flag."""
    if isinstance(err, ArgumentError) and (err.argument in DECLARED or err.argument in FLAG_NAMES):
        return f"{flag(err.argument)} {err.detail}"
    return str(err)


# --------------------------------------------------------------------------- shared options
def ModelFile():  # noqa: N802  (an option factory, used like a type)
    return option("model_file", None, help="TOML file with [models.NAME] tables.")


def DeviceFile():  # noqa: N802
    return option("device_file", None, help="TOML file with [devices.NAME] tables.")


def Format(allowed: tuple[str, ...] = FORMATS):  # noqa: N802
    return option("fmt", "table", help=" or ".join(allowed) + ".")


NATIVE_HELP = "Side in px (R) or HxW (default: the model's native size, where it has one)."


def Resolution(default=..., help_text: str = "Side in px (R) or HxW."):  # noqa: N802
    return option("resolution", default, help=help_text)


def Cores():  # noqa: N802
    return option("cores", None, help="Active core tokens C (core models; default: max).")


def Batch():  # noqa: N802
    return option("batch", 1, help="Images per batch B.")


def Impl():  # noqa: N802
    from costmodel.attention import impls

    def either(names):
        return " or ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]

    return option("impl", None, help=f"{either(impls('core'))} (core models); "
                                     f"{either(impls('dense'))} (dense models).")


def Scope():  # noqa: N802
    return option("scope", "model", help="model, layer, attention or attention-core.")


def Runtime():  # noqa: N802
    return option("runtime", "eager",
                  help="eager, compiled (torch.compile fuses elementwise chains) or unfused "
                       "(eager with attention as matmul, softmax, matmul: torch < 2.0); +amp "
                       "after any: under torch.autocast with fp32 weights (eager+amp).")


def OutputDim():  # noqa: N802
    return option("distill_output_dim", None,
                  help="Width of the distillation output head (0: none; default: the "
                       "catalog's, 768 for VECA).")


def with_output_dim(spec, output_dim: Optional[int]):
    """The spec with another distillation head width (None keeps the spec's own)."""
    import dataclasses

    if output_dim is None:
        return spec
    from costmodel.spec import too_wide

    if output_dim < 0:
        raise ArgumentError("distill_output_dim", f"must be 0 (no head) or positive, got {output_dim}")
    if too_wide(output_dim):
        raise ArgumentError("distill_output_dim", too_wide(output_dim))
    return dataclasses.replace(spec, distill_output_dim=output_dim)


def Dtype(default: str = "fp32"):  # noqa: N802
    return option("dtype", default, help="fp32, bf16 or fp16.")


# --------------------------------------------------------------------------- parsers
def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    return check_choice("format", fmt, allowed)


LARGEST_USUAL_PX = 16384  # past this a ViT input is an outlier: say the answer is extrapolated


def resolution(text: str) -> tuple[int, int]:
    """--resolution R or HxW, every command alike: (height, width)."""
    height, width = parse_resolution(text)
    if max(height, width) > LARGEST_USUAL_PX:
        import sys

        print(f"coreplan: warning: --resolution {text}: above {LARGEST_USUAL_PX:,} px per side, "
              f"far beyond the resolutions these models are built and measured for; the numbers "
              f"are the formulas' extrapolation", file=sys.stderr)
    return height, width


def model_resolution(text: str | None, spec) -> tuple[int, int]:
    """--resolution, or where it is not given the model's native input size (its learned position
    grid times the patch size: 224 px for vit_base_patch16_224); a model without one needs it."""
    if text is not None:
        return resolution(text)
    if spec.native_side:
        return spec.native_side, spec.native_side
    raise CoreplanError(f"--resolution: {spec.name} has no native input size ({spec.pos_embed} "
                        f"positions): give one")


def square(text: str, what: str = "this command") -> int:
    """--resolution for commands that plan square images: R (or HxW with H == W)."""
    height, width = resolution(text)
    if height != width:
        raise ArgumentError("resolution", f"{height}x{width}: {what} takes a square image (R)")
    return height


def ints(text: str, name: str) -> list[int]:
    """A comma list of integers given to option `name`, e.g. --batch 1,4."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CoreplanError(f"{flag(name)}: expected comma-separated integers, got "
                            f"{text!r}") from None
    if not values:
        raise CoreplanError(f"{flag(name)}: expected at least one value")
    return _once(values, name)


def _once(values: list, name: str) -> list:
    """A list given to option `name`, refused in one line where it names a value twice (each is
    answered once: a second listing is a typo)."""
    repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if repeated is not None:
        raise CoreplanError(f"{flag(name)} lists {repeated} more than once")
    return values


def sides(text: str, name: str = "resolutions") -> list[int]:
    """A comma list of square resolutions (each checked like --resolution)."""
    return [square(str(v), flag(name)) for v in ints(text, name)]


def names(text: Optional[str], name: str) -> list[str]:
    """A comma list of names given to option `name`, e.g. --models veca-base,dinov3-base."""
    values = [v.strip() for v in (text or "").split(",") if v.strip()]
    if not values:
        raise CoreplanError(f"{flag(name)}: expected a comma-separated list")
    return _once(values, name)


def number(text: Optional[str], name: str) -> float | None:
    """An optional number given as text to option `name` (so that 'inf' or 'abc' get one clear
    line)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise CoreplanError(f"{flag(name)}: expected a number, got {text!r}") from None


def warn_implausible(config) -> None:
    """A configuration far beyond any deployment is answered, with one warning line on stderr
    (costmodel.config.implausible)."""
    import sys

    from costmodel.config import implausible

    said = implausible(config)
    if said:
        print(f"coreplan: warning: {said}", file=sys.stderr)


def HostLaunchUs():  # noqa: N802
    return option("host_launch_us", None,
                  help="GPU: what this host spends issuing one launch (us), for every runtime, "
                       "in place of the device's host_launch_s (the catalog's is one 2023 "
                       "host's).")


def with_host_launch(device, host_launch_us: Optional[float]):
    """The device with the host's cost per launch set for every runtime (--host-launch-us);
    refused off a GPU, or for a value that is not a finite, non-negative number of us."""
    import math
    from dataclasses import replace

    if host_launch_us is None:
        return device
    if device.kind != "gpu":
        raise CoreplanError(f"--host-launch-us applies to a GPU; {device.name} is a "
                            f"{device.kind} (its per-op overhead is in its profile)")
    if not (math.isfinite(host_launch_us) and 0 <= host_launch_us <= 1e6):
        raise CoreplanError(f"--host-launch-us must be microseconds in [0, 1e6], got "
                            f"{host_launch_us:g}")
    from planners.devices import HOST_RUNTIMES

    seconds = host_launch_us * 1e-6
    return replace(device, host_launch_s=dict.fromkeys(HOST_RUNTIMES, seconds))
