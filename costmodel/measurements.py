"""The measurement record: one row of `coreplan validate`, its columns, units, reader and writer.

Every module that writes or reads measurements uses this one (torch-free): the sweep in
`reference.validate` writes `Measurement` records through `MeasurementWriter`; calibration, charts
and the report read them with `read_measurements`. A malformed file is one error naming the file,
the line and the field.

Schema versions: 1 = without `probe_ms`, `probe_ratio` and `schema_version` (files written before
they existed); 2 = with `schema_version`; 3 = with the machine probe's columns and status `busy`; 4 = with
`runtime` (eager or compiled; empty means eager); 5 = with `framework` and the process footprint
columns (peak RSS of a fresh worker by stage); 6 = with `time_ms_graph` (CUDA graph replay) and
`mem_reserved_peak_bytes_measured` (the CUDA caching allocator).
A reader accepts every version, and files holding only the required columns (hand-made
measurements).
"""

from __future__ import annotations

import csv
import errno
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from costmodel.errors import ArgumentError, CoreplanError, read_text

SCHEMA_VERSION = 6
# A row whose machine probe ran this much slower than its quiet time was timed on a busy machine.
# Measured on this project's 2-core VM (2026-12-01): another process computing on one or both
# cores made the probe 2.9-3.2x slower and a veca-small forward 3-10x slower; with nothing else
# running the probe wandered between 0.8x and 1.3x of its settled time (and the forward by +-20%:
# the VM's own speed), so a limit of 1.05 called a quiet machine busy (15 of 18 rows of
# `validate --quick`). Earlier files used 1.05: their rows say busy in their status.
BUSY_PROBE_RATIO = 1.5


@dataclass(frozen=True)
class Column:
    """One column of the measurement CSV (derived from a `Measurement` field)."""

    name: str
    kind: type  # str, int or float
    unit: str
    description: str
    required: bool = False  # a file without it is not a measurement file
    in_key: bool = False  # part of the configuration a row measured (`Measurement.key`)
    key_default: str | None = None  # what an empty value of a key column means


def column(unit: str = "", description: str = "", *, required: bool = False,
           key: bool = False, key_default: str | None = None):
    """A `Measurement` field that is a CSV column, declared once with its unit and description;
    optional columns default to None (empty in the file) and are keyword-only."""
    metadata = dict(unit=unit, description=description, required=required, key=key,
                    key_default=key_default)
    if required:
        return field(metadata=metadata)
    return field(default=None, kw_only=True, metadata=metadata)


@dataclass(frozen=True)
class Measurement:
    """One measured configuration; None where the row leaves a field empty. The fields, in
    order, are the CSV's columns (with their units and descriptions): the one declaration the
    writer, the readers and the sweep's keys derive from."""

    model: str = column("", "model name (catalog or --model-file)", required=True, key=True)
    family: str | None = column("", "model family")
    resolution: int = column("px", "image side (a multiple of the model's patch size)",
                             required=True, key=True)
    patch_tokens: int | None = column("tokens", "patch tokens N")
    core_tokens: int = column("tokens", "active core tokens C (0 for dense models)",
                              required=True, key=True)
    impl: str = column("", "attention implementation", required=True, key=True)
    batch: int = column("images", "batch size B", required=True, key=True)
    dtype: str = column("", "fp32, bf16 or fp16", required=True, key=True)
    device: str | None = column("", "cpu or cuda", key=True)
    device_name: str | None = column("", "CPU model x cores, or the CUDA device's name")
    runtime: str | None = column("", "eager, compiled (torch.compile) or unfused (no fused "
                                     "attention)", key=True, key_default="eager")
    framework: str | None = column("", "torch (coreplan's reference models) or transformers "
                                       "(Hugging Face)", key=True, key_default="torch")
    torch_version: str | None = column("", "torch.__version__")
    threads: int | None = column("threads", "CPU intra-op threads while timing")
    flops_predicted: int | None = column("FLOP", "costmodel, flop convention (2 per "
                                                 "multiply-add)")
    flops_flopcounter: int | None = column("FLOP", "torch FlopCounterMode")
    macs_predicted: int | None = column("MAC", "costmodel, mac convention")
    macs_fvcore: int | None = column("MAC", "fvcore FlopCountAnalysis")
    flops_match: str | None = column("", "exact, MISMATCH or uncountable")
    time_ms_median: float | None = column("ms", "median forward time")
    time_ms_iqr: float | None = column("ms", "interquartile range of the forward time")
    time_ms_min: float | None = column("ms", "fastest forward")
    time_ms_graph: float | None = column("ms", "median forward replayed as a CUDA graph (the same "
                                               "kernels, none launched from Python)")
    repeats: int | None = column("runs", "timed forwards")
    probe_ms: float | None = column("ms", "median time of the machine probe between the row's "
                                          "forwards")
    probe_ratio: float | None = column("", "probe_ms / the probe's quiet time then (busy if "
                                           "high)")
    mem_weights_bytes: int | None = column("B", "parameter bytes")
    mem_activation_peak_bytes_measured: int | None = column("B", "measured activation peak")
    mem_activation_peak_bytes_predicted: int | None = column("B", "costmodel activation peak")
    mem_reserved_peak_bytes_measured: int | None = column("B", "CUDA: the caching allocator's "
                                                               "reserved bytes at the forward's "
                                                               "peak, above those before it")
    mem_baseline_bytes_measured: int | None = column("B", "fresh worker's peak RSS after the "
                                                          "imports")
    mem_built_bytes_measured: int | None = column("B", "... after building the model")
    mem_footprint_bytes_measured: int | None = column("B", "... after one forward: the process "
                                                           "footprint")
    status: str = column("", "ok, busy (timed on a busy machine), oom or error: <reason>",
                         required=True)
    note: str | None = column("", "free text")
    schema_version: int = field(default=SCHEMA_VERSION, kw_only=True, metadata=dict(
        unit="", description=f"record schema version ({SCHEMA_VERSION})", required=False,
        key=False, key_default=None))
    line: int = field(default=0, kw_only=True)  # line of the file it was read from (0: not read)

    def key(self) -> tuple[str, ...]:
        """The configuration this record measured (an empty runtime is eager)."""
        return key_of(**{name: getattr(self, name) for name in KEY})

    def config(self, model_file=None):
        """The configuration this row measured (a `costmodel.config.Config`), its model from
        `model_file` (first) or the catalog; an error names the row's line."""
        from costmodel.config import configure
        from costmodel.spec import get_model

        try:
            return configure(get_model(self.model, model_file), self.resolution,
                             cores=self.core_tokens or None, batch=self.batch, impl=self.impl,
                             dtype=self.dtype)
        except CoreplanError as err:
            raise CoreplanError(f"measurements line {self.line}: {err}") from None

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


def _kind(annotation: str) -> type:
    """The column's type from its field's annotation ("int | None" -> int)."""
    return {"str": str, "int": int, "float": float}[annotation.split("|")[0].strip()]


COLUMNS = tuple(Column(f.name, _kind(f.type), f.metadata["unit"], f.metadata["description"],
                       f.metadata["required"], f.metadata["key"], f.metadata["key_default"])
                for f in fields(Measurement) if f.metadata)
NAMES = tuple(c.name for c in COLUMNS)
KINDS = {c.name: c.kind for c in COLUMNS}
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
KEY = tuple(c.name for c in COLUMNS if c.in_key)
_KEY_DEFAULTS = {c.name: c.key_default for c in COLUMNS if c.key_default is not None}


def key_of(**values) -> tuple[str, ...]:
    """The key of the configuration a row measures, from its key columns' values (an empty
    runtime is eager, an empty framework torch): what a sweep compares with a file's rows."""
    return tuple(_KEY_DEFAULTS[name] if name in _KEY_DEFAULTS and not values.get(name) else
                 _text(values.get(name)) for name in KEY)


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


def positive_field(path, line: int, row: dict, key: str) -> float:
    """A CSV row's field as a finite positive number, else one error naming file, line and
    field (the published tables: timm's benchmarks, other projects' documents)."""
    text = row.get(key, "")
    try:
        value = float(text)
    except ValueError:
        raise CoreplanError(f"{path}:{line}: field {key}: expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise CoreplanError(f"{path}:{line}: field {key}: expected a positive number, got {text!r}")
    return value


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

