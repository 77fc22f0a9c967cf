"""The measurement record: one row of `coreplan validate`, its columns, units, reader and writer.

Every module that writes or reads measurements uses this one (torch-free): the sweep in
`reference.validate` writes `Measurement` records through `MeasurementWriter`; calibration, charts
and the report read them with `read_measurements`. A malformed file is one error naming the file,
the line and the field.

Schema versions: 1 = without `probe_ms`, `probe_ratio` and `schema_version` (files written before
they existed); 2 = with `schema_version`; 3 = with the machine probe's columns and status `busy`; 4 = with
`runtime` (eager or compiled; empty means eager); 5 = with `framework` and the process footprint
columns (peak RSS of a fresh worker by stage).
A reader accepts every version, and files holding only the required columns (hand-made
measurements).
"""

from __future__ import annotations

import csv
import errno
import math
import os
from dataclasses import dataclass
from pathlib import Path

from costmodel.errors import ArgumentError, CoreplanError, read_text

SCHEMA_VERSION = 5
# A row whose machine probe ran this much slower than its quiet time was timed on a busy machine
# (quiet rows here: 1.00-1.04; a probe 1.05-1.10x slow already came with forwards 10-25% slow).
BUSY_PROBE_RATIO = 1.05


@dataclass(frozen=True)
class Column:
    name: str
    kind: type  # str, int or float
    unit: str
    description: str


COLUMNS = (
    Column("model", str, "", "model name (catalog or --model-file)"),
    Column("family", str, "", "model family"),
    Column("resolution", int, "px", "image side (a multiple of the model's patch size)"),
    Column("patch_tokens", int, "tokens", "patch tokens N"),
    Column("core_tokens", int, "tokens", "active core tokens C (0 for dense models)"),
    Column("impl", str, "", "attention implementation"),
    Column("batch", int, "images", "batch size B"),
    Column("dtype", str, "", "fp32, bf16 or fp16"),
    Column("device", str, "", "cpu or cuda"),
    Column("device_name", str, "", "CPU model x cores, or the CUDA device's name"),
    Column("runtime", str, "", "eager, compiled (torch.compile) or unfused (no fused attention)"),
    Column("framework", str, "", "torch (coreplan's reference models) or transformers (Hugging Face)"),
    Column("torch_version", str, "", "torch.__version__"),
    Column("threads", int, "threads", "CPU intra-op threads while timing"),
    Column("flops_predicted", int, "FLOP", "costmodel, flop convention (2 per multiply-add)"),
    Column("flops_flopcounter", int, "FLOP", "torch FlopCounterMode"),
    Column("macs_predicted", int, "MAC", "costmodel, mac convention"),
    Column("macs_fvcore", int, "MAC", "fvcore FlopCountAnalysis"),
    Column("flops_match", str, "", "exact, MISMATCH or uncountable"),
    Column("time_ms_median", float, "ms", "median forward time"),
    Column("time_ms_iqr", float, "ms", "interquartile range of the forward time"),
    Column("time_ms_min", float, "ms", "fastest forward"),
    Column("repeats", int, "runs", "timed forwards"),
    Column("probe_ms", float, "ms", "median time of the machine probe between the row's forwards"),
    Column("probe_ratio", float, "", "probe_ms / the probe's quiet time then (busy if high)"),
    Column("mem_weights_bytes", int, "B", "parameter bytes"),
    Column("mem_activation_peak_bytes_measured", int, "B", "measured activation peak"),
    Column("mem_activation_peak_bytes_predicted", int, "B", "costmodel activation peak"),
    Column("mem_baseline_bytes_measured", int, "B", "fresh worker's peak RSS after the imports"),
    Column("mem_built_bytes_measured", int, "B", "... after building the model"),
    Column("mem_footprint_bytes_measured", int, "B", "... after one forward: the process footprint"),
    Column("status", str, "", "ok, busy (timed on a busy machine), oom or error: <reason>"),
    Column("note", str, "", "free text"),
    Column("schema_version", int, "", f"record schema version ({SCHEMA_VERSION})"),
)
NAMES = tuple(c.name for c in COLUMNS)
KINDS = {c.name: c.kind for c in COLUMNS}
REQUIRED = ("model", "resolution", "core_tokens", "impl", "batch", "dtype", "status")
KEY = ("model", "resolution", "core_tokens", "impl", "batch", "dtype", "device", "runtime",
       "framework")


@dataclass(frozen=True)
class Measurement:
    """One measured configuration; None where the row leaves a field empty."""

    model: str
    resolution: int
    core_tokens: int
    impl: str
    batch: int
    dtype: str
    status: str
    family: str | None = None
    patch_tokens: int | None = None
    device: str | None = None
    device_name: str | None = None
    runtime: str | None = None
    framework: str | None = None
    torch_version: str | None = None
    threads: int | None = None
    flops_predicted: int | None = None
    flops_flopcounter: int | None = None
    macs_predicted: int | None = None
    macs_fvcore: int | None = None
    flops_match: str | None = None
    time_ms_median: float | None = None
    time_ms_iqr: float | None = None
    time_ms_min: float | None = None
    repeats: int | None = None
    probe_ms: float | None = None
    probe_ratio: float | None = None
    mem_weights_bytes: int | None = None
    mem_activation_peak_bytes_measured: int | None = None
    mem_activation_peak_bytes_predicted: int | None = None
    mem_baseline_bytes_measured: int | None = None
    mem_built_bytes_measured: int | None = None
    mem_footprint_bytes_measured: int | None = None
    note: str | None = None
    schema_version: int = SCHEMA_VERSION
    line: int = 0  # line of the file it was read from (0: not read from a file)

    def key(self) -> tuple[str, ...]:
        """The configuration this record measured (an empty runtime is eager)."""
        defaults = {"runtime": "eager", "framework": "torch"}
        return tuple(defaults[k] if k in defaults and not getattr(self, k) else
                     _text(getattr(self, k)) for k in KEY)

    @property
    def time_s(self) -> float | None:
        return None if self.time_ms_median is None else self.time_ms_median / 1e3

    @property
    def timed(self) -> bool:
        """Status ok with a forward time, on a quiet machine: usable for calibration."""
        return self.status == "ok" and self.time_ms_median is not None and not self.busy

    @property
    def busy(self) -> bool:
        """Timed, but on a busy machine (its status says so, or its probe ran slow by today's
        limit): not used for calibration unless asked."""
        slow = self.probe_ratio is not None and self.probe_ratio > BUSY_PROBE_RATIO
        return self.time_ms_median is not None and (self.status == "busy" or slow)

    def label(self) -> str:
        cores = f" C={self.core_tokens}" if self.core_tokens else ""
        return f"{self.model} {self.resolution}px{cores} {self.impl} B={self.batch} {self.dtype}"

    def to_row(self) -> dict[str, str]:
        return {name: _text(getattr(self, name)) for name in NAMES}


def latest(records: list[Measurement]) -> list[Measurement]:
    """One record per configuration: a later row of the same key supersedes an earlier one (a
    re-measured busy row), in the order the keys first appear."""
    by_key: dict[tuple, Measurement] = {}
    for r in records:
        by_key[r.key()] = r
    return list(by_key.values())


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def _parse(path, line: int, name: str, text: str):
    kind = KINDS[name]
    if text == "" and name not in REQUIRED:
        return None
    try:
        value = kind(text) if kind is not int else int(text, 10)
    except ValueError:
        raise CoreplanError(f"{path}:{line}: field {name}: expected {kind.__name__}, "
                            f"got {text!r}") from None
    if kind is float and not (math.isfinite(value) and value >= 0):
        raise CoreplanError(f"{path}:{line}: field {name}: expected a finite non-negative "
                            f"number, got {text!r}")
    if kind is int and name in ("resolution", "batch") and value <= 0:
        raise CoreplanError(f"{path}:{line}: field {name}: expected a positive integer, "
                            f"got {text!r}")
    return value


def _check_header(path, header: list[str] | None) -> None:
    header = header or []
    missing = [k for k in REQUIRED if k not in header]
    if missing:
        raise CoreplanError(f"{path}:1: not a measurement file: missing column(s) "
                            f"{', '.join(missing)}")
    unknown = [k for k in header if k not in KINDS]
    if unknown:
        raise CoreplanError(f"{path}:1: unknown column {unknown[0]!r}")


def read_measurements(path: str | Path) -> list[Measurement]:
    """Every row of a measurement CSV as a typed record; errors name the file, line and field."""
    path = Path(path)
    return [_record(path, line, row) for line, row in csv_rows(path, _check_header)]


def csv_rows(path: str | Path, check_header) -> list[tuple[int, dict]]:
    """(line, row) of a CSV file read by column name, after `check_header(path, header)`; a
    missing, binary or malformed file, or a row of the wrong length, is one error."""
    import io

    path = Path(path)
    text = read_text(path, "measurements")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        check_header(path, reader.fieldnames)
        rows = list(enumerate(reader, start=2))
    except csv.Error as err:
        raise CoreplanError(f"measurements {path}: malformed CSV ({err})") from None
    for line, row in rows:
        if None in row or any(v is None for v in row.values()):
            raise CoreplanError(f"{path}:{line}: wrong number of fields")
    return rows


def _record(path, line: int, row: dict) -> Measurement:
    values = {name: _parse(path, line, name, text) for name, text in row.items()}
    version = values.pop("schema_version", None) or 1
    if version > SCHEMA_VERSION:
        raise CoreplanError(f"{path}:{line}: schema version {version} is newer than this "
                            f"coreplan's ({SCHEMA_VERSION})")
    return Measurement(**values, schema_version=version, line=line)


class MeasurementWriter:
    """Append-only CSV of records; each row is flushed and fsynced when written.

    Args:
        path: the CSV file.
        resume: continue an existing file (its header must be this version's), else refuse one.
    """

    def __init__(self, path: str | Path, resume: bool) -> None:
        self.path = Path(path)
        self.records: list[Measurement] = []
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if self.path.is_dir():
            raise CoreplanError(f"{self.path} is a directory: choose a file name")
        if exists and not resume:
            raise ArgumentError("resume", f"is needed to continue {self.path}, which exists "
                                f"(or write to another file)")
        self.repaired: str | None = None  # what resuming had to mend in the file, if anything
        if exists:
            self._check_resumable()
            self.repaired = self._mend_tail()
            self.records = read_measurements(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", newline="", encoding="utf-8")
        except OSError as err:
            raise CoreplanError(f"cannot write {self.path}: {err.strerror}") from None
        self._writer = csv.DictWriter(self._handle, fieldnames=NAMES, lineterminator="\n")
        if not exists:
            try:
                self._writer.writeheader()
                self._flush()
            except OSError as err:  # e.g. a full disk
                self._handle = None
                raise CoreplanError(f"cannot write {self.path}: {err.strerror}") from None

    @property
    def done(self) -> set[tuple[str, ...]]:
        return {r.key() for r in self.records}

    def _check_resumable(self) -> None:
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), [])
        except UnicodeDecodeError:
            raise CoreplanError(f"{self.path}: not a text CSV file") from None
        if tuple(header) != NAMES:
            raise CoreplanError(f"{self.path}: its columns differ from this version's; cannot "
                                f"resume into it (choose another file)")

    def _mend_tail(self) -> str | None:
        """A file cut while a row was written (no final newline, or inside a quoted field) would
        glue the next row onto it: keep every complete row, drop the cut one, and end with a
        newline. Returns what was done, or None."""
        text = self.path.read_text(encoding="utf-8")
        if text.endswith("\n"):
            return None  # every row was written whole (the newline is written last)
        keep, done, pending = 0, 0, ""
        for line in text.splitlines(keepends=True):
            pending += line
            if pending.count('"') % 2:
                continue  # still inside a quoted field
            if not pending.endswith("\n"):  # the unterminated last row: complete or cut?
                if len(next(csv.reader([pending]), [])) == len(NAMES):
                    keep = len(text)
                break
            done += len(pending)
            keep, pending = done, ""
        with open(self.path, "r+", encoding="utf-8", newline="") as handle:
            handle.truncate(keep)
            if keep and not text[:keep].endswith("\n"):
                handle.seek(keep)
                handle.write("\n")
        if keep == len(text):
            return f"{self.path}: added the missing newline after the last row"
        return (f"{self.path}: dropped an incomplete last row ({len(text) - keep} bytes, cut while "
                f"it was written); it will be measured again")

    def write(self, record: Measurement) -> None:
        try:
            self._writer.writerow(record.to_row())
            self._flush()
        except OSError as err:
            raise CoreplanError(f"cannot write {self.path}: {err.strerror}") from None
        self.records.append(record)

    def _flush(self) -> None:
        self._handle.flush()
        try:
            os.fsync(self._handle.fileno())
        except OSError as err:
            if err.errno != errno.EINVAL:  # a device that cannot sync (a pipe, /dev/null) is fine
                raise

    def close(self) -> None:
        if self._handle is not None:
            try:
                self._handle.close()
            except OSError:
                pass  # what could be written was flushed row by row; the error was reported

