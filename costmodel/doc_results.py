"""Numbers read from other projects' documentation (data/public/papers-and-docs) as measurement
records.

Every file has the columns `model,img_size,batch,precision,runtime,gpu,value,unit,notes`:
`unit` is `ms_per_batch` or `img_per_s`; `notes` names the source and, where it says one, the
torch version ("torch 2.0.1", "PyTorch nightly 2.1.0dev"). A row becomes a `Measurement` when its
model maps to a coreplan spec (`costmodel.timm_names`: a Hugging Face name `org/vit-base-patch16-224`
is timm's `vit_base_patch16_224`; a name followed by a remark in parentheses is read without it),
its GPU is a catalog device, and its batch and precision are stated. The others are listed with
the reason, never dropped silently.

Runtimes: `torch_compile_default` is `compiled`; `pytorch_eager` of a Hugging Face model (an
`org/name` model) is `unfused`, because the transformers ViT these tables measured wrote
attention as matmul, softmax, matmul (scaled_dot_product_attention came to its ViT later); other
eager rows are `eager`. Precision `fp32` is fp32 weights, no autocast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from costmodel.errors import CoreplanError
from costmodel.measurements import Measurement, csv_rows, positive_field
from costmodel.timm_names import timm_spec

COLUMNS = ("model", "img_size", "batch", "precision", "runtime", "gpu", "value", "unit", "notes")
# the GPU a document names -> the catalog device taken for it (and why, where it is a choice)
GPUS = {"V100": ("v100-sxm2-16gb", "the document does not say which V100; the SXM2 16 GB, the "
                                   "cloud's common one, is taken (the PCIe card's peaks are 11% "
                                   "lower)")}
RUNTIMES = {"torch_compile_default": "compiled", "pytorch_eager": "eager"}
DTYPES = ("fp32", "fp16", "bf16")
TORCH = re.compile(r"(?:torch|PyTorch nightly) (\d+\.\d+\.\d+)")


@dataclass(frozen=True)
class DocResults:
    path: Path
    records: tuple[Measurement, ...]
    skipped: tuple[tuple[int, str], ...]  # (line, why) of rows that are not records


def is_doc_file(path: str | Path) -> bool:
    """A CSV with the documents' columns (read from its first line)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig") as f:
            return tuple(f.readline().strip().split(",")) == COLUMNS
    except (OSError, UnicodeDecodeError):
        return False


def read_docs(path: str | Path) -> DocResults:
    """Every row of a documents CSV; errors name the file, line and field."""
    path = Path(path)

    def check(where, header):
        if tuple(header or ()) != COLUMNS:
            raise CoreplanError(f"{where}:1: not a documents CSV: needs the columns "
                                f"{','.join(COLUMNS)}")

    records, skipped = [], []
    for line, row in csv_rows(path, check):
        made = _record(path, line, row)
        if isinstance(made, str):
            skipped.append((line, made))
        else:
            records.append(made)
    return DocResults(path, tuple(records), tuple(skipped))


def _model_name(text: str) -> tuple[str, bool]:
    """(timm-style name, from Hugging Face) of a document's model column."""
    name = text.split(" (")[0].strip()
    if "/" in name:
        return name.split("/", 1)[1].replace("-", "_"), True
    return name, False


def _record(path: Path, line: int, row: dict) -> Measurement | str:
    name, from_hf = _model_name(row["model"])
    spec = timm_spec(name)
    if spec is None:
        return f"{row['model']}: no coreplan model"
    if row["gpu"] not in GPUS:
        return f"GPU {row['gpu']!r} is not in the catalog"
    if not row["batch"].isdigit() or row["precision"] not in DTYPES:
        return f"{row['model']}: batch or precision not stated"
    if row["runtime"] not in RUNTIMES:
        return f"runtime {row['runtime']!r} unknown"
    side = int(positive_field(path, line, row, "img_size"))
    batch = int(row["batch"])
    value = positive_field(path, line, row, "value")
    if row["unit"] == "ms_per_batch":
        ms = value
    elif row["unit"] == "img_per_s":
        ms = batch / value * 1e3
    else:
        raise CoreplanError(f"{path}:{line}: field unit: expected ms_per_batch or img_per_s, "
                            f"got {row['unit']!r}")
    if side % spec.patch_size:
        return f"{row['model']}: {side} px is not a whole number of patches"
    runtime = RUNTIMES[row["runtime"]]
    if runtime == "eager" and from_hf:
        runtime = "unfused"
    torch = TORCH.search(row["notes"])
    device, why = GPUS[row["gpu"]]
    return Measurement(
        spec.name, side, 0, "dense", batch, row["precision"], "ok", family=spec.family,
        patch_tokens=(side // spec.patch_size) ** 2, device="cuda", device_name=device,
        runtime=runtime, torch_version=torch.group(1) if torch else None, time_ms_median=ms,
        note=f"published: {path.name}, {row['model']} ({why})", line=line)
