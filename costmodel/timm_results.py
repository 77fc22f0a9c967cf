"""timm's published benchmark CSVs (its `benchmark.py` output) read as measurement records.

A file name says the mode, precision, memory layout, torch and CUDA versions, device and runtime,
e.g. `benchmark-infer-amp-nchw-pt291-cu130-5090-dynamo.csv`; columns are read by name (their order
differs between torch versions): `model`, `infer_img_size`, `infer_batch_size`,
`infer_samples_per_sec` and/or `infer_step_time` (ms per batch), and optionally `param_count`,
`infer_gmacs`, `infer_macts`. Rows of models whose names `costmodel.timm_names` maps become
`Measurement` records (impl dense, the batch's step time); the others are listed, never dropped
silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from costmodel.errors import CoreplanError
from costmodel.measurements import Measurement, csv_rows, positive_field
from costmodel.timm_names import timm_spec

PRECISIONS = {"amp": "fp16", "amp_bf16": "bf16", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}
AUTOCAST = ("amp", "amp_bf16")  # precisions that run under torch.autocast with fp32 weights
# file-name device tag -> coreplan device name
DEVICES = {"rtx3090": "rtx-3090", "4090": "rtx-4090", "rtx4090": "rtx-4090", "5090": "rtx-5090",
           "pro6000maxq": "rtx-pro-6000-maxq", "i9_10940x": "i9-10940x", "a100": "a100-sxm-80gb",
           "h100": "h100-sxm", "l4": "l4", "t4": "t4"}
NAME = re.compile(r"^benchmark-infer-(?P<precision>[a-z0-9_]+)-(?P<layout>nchw|nhwc)-"
                  r"pt(?P<torch>\d+)-(?P<backend>cu\d+|cpu)-(?P<device>.+?)(?P<dynamo>-dynamo)?\.csv$")
REQUIRED = ("model", "infer_img_size", "infer_batch_size")


@dataclass(frozen=True)
class TimmFile:
    """What a timm benchmark file says about where and how it was measured."""

    path: Path
    precision: str  # coreplan dtype
    device: str  # coreplan device name (or the file's tag when unknown)
    device_kind: str  # cpu | cuda
    runtime: str  # eager | compiled | unfused (eager before torch 2.0), +amp under autocast
    torch_version: str


@dataclass(frozen=True)
class TimmResults:
    file: TimmFile
    records: tuple[Measurement, ...]
    unmapped: tuple[str, ...]  # model names with no coreplan spec (CNNs, hybrids, CLIP, ...)
    gmacs: dict  # model name -> timm's GMACs per sample (a check of the mapping)


def parse_name(path: str | Path) -> TimmFile:
    path = Path(path)
    m = NAME.match(path.name)
    if not m or m["precision"] not in PRECISIONS:
        raise CoreplanError(f"{path}: not a timm benchmark file name (expected e.g. "
                            f"benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv)")
    torch = m["torch"]
    # pt112 = torch 1.12, pt113 = 1.13; pt210 = 2.1.0, pt291 = 2.9.1
    version = "1." + torch[1:] if torch.startswith("1") else ".".join(torch)
    # timm runs fused SDPA from torch 2.0 on; before it, attention is matmul, softmax, matmul
    runtime = "compiled" if m["dynamo"] else ("unfused" if torch.startswith("1") else "eager")
    if m["precision"] in AUTOCAST:
        runtime += "+amp"  # autocast over fp32 weights (planners.roofline.with_autocast)
    return TimmFile(path, PRECISIONS[m["precision"]], DEVICES.get(m["device"], m["device"]),
                    "cpu" if m["backend"] == "cpu" else "cuda", runtime, version)


def is_timm_file(path: str | Path) -> bool:
    return bool(NAME.match(Path(path).name))


def read_timm(path: str | Path) -> TimmResults:
    """Every row of a timm benchmark CSV; errors name the file, line and field."""
    info = parse_name(path)

    def check(where, header):
        header = header or []
        if [c for c in REQUIRED if c not in header] or not (
                {"infer_step_time", "infer_samples_per_sec"} & set(header)):
            raise CoreplanError(f"{where}:1: not a timm benchmark CSV: needs "
                                f"{', '.join(REQUIRED)} and infer_step_time or "
                                f"infer_samples_per_sec")

    rows = csv_rows(info.path, check)
    records, unmapped, gmacs = [], [], {}
    for line, row in rows:
        spec = timm_spec(row["model"])
        if spec is None:
            unmapped.append(row["model"])
            continue
        record = _record(info, line, row, spec)
        if record is not None:
            records.append(record)
            if row.get("infer_gmacs"):
                gmacs[row["model"]] = positive_field(info.path, line, row, "infer_gmacs")
    return TimmResults(info, tuple(records), tuple(dict.fromkeys(unmapped)), gmacs)


def _record(info: TimmFile, line: int, row: dict, spec) -> Measurement | None:
    side = int(positive_field(info.path, line, row, "infer_img_size"))
    batch = int(positive_field(info.path, line, row, "infer_batch_size"))
    if row.get("infer_step_time"):
        step_ms = positive_field(info.path, line, row, "infer_step_time")
    else:
        step_ms = batch / positive_field(info.path, line, row, "infer_samples_per_sec") * 1e3
    if side % spec.patch_size:
        return None  # NB: timm pads or crops; coreplan's graph needs a whole patch grid
    return Measurement(
        spec.name, side, 0, "dense", batch, info.precision, "ok", family=spec.family,
        patch_tokens=(side // spec.patch_size) ** 2, device=info.device_kind,
        device_name=info.device, runtime=info.runtime, torch_version=info.torch_version,
        time_ms_median=step_ms, note=f"timm benchmark {info.path.name}", line=line)



TRAIN_REQUIRED = ("model", "train_img_size", "train_batch_size", "train_step_time")


def read_timm_train(path: str | Path) -> TimmResults:
    """A timm training benchmark CSV (`benchmark-train-...`: forward, backward and optimizer step
    per batch, `train_step_time` in ms) as records of the step's time; the file name is read as
    an inference file's is (precision, torch version, device, runtime of the forward)."""
    path = Path(path)
    as_infer = path.name.replace("benchmark-train-", "benchmark-infer-", 1)
    if not path.name.startswith("benchmark-train-") or not is_timm_file(as_infer):
        raise CoreplanError(f"{path}: not a timm training benchmark file name (expected e.g. "
                            f"benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv)")
    info = replace(parse_name(as_infer), path=path)  # named as an inference file is

    def check(where, header):
        if [c for c in TRAIN_REQUIRED if c not in (header or [])]:
            raise CoreplanError(f"{where}:1: not a timm training benchmark CSV: needs "
                                f"{', '.join(TRAIN_REQUIRED)}")

    records, unmapped = [], []
    for line, row in csv_rows(path, check):
        spec = timm_spec(row["model"])
        if spec is None:
            unmapped.append(row["model"])
            continue
        side = int(positive_field(path, line, row, "train_img_size"))
        if side % spec.patch_size:
            continue
        records.append(Measurement(
            spec.name, side, 0, "dense", int(positive_field(path, line, row, "train_batch_size")),
            info.precision, "ok", family=spec.family, patch_tokens=(side // spec.patch_size) ** 2,
            device=info.device_kind, device_name=info.device, runtime=info.runtime,
            torch_version=info.torch_version,
            time_ms_median=positive_field(path, line, row, "train_step_time"),
            note=f"timm training benchmark {path.name}", line=line))
    return TimmResults(info, tuple(records), tuple(dict.fromkeys(unmapped)), {})
