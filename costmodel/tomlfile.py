"""The one TOML reader and string writer for coreplan's files (model files, device files)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from costmodel.errors import CoreplanError, read_text


def load_tables(path: str | Path, what: str, section: str) -> tuple[dict, dict]:
    """(the whole document, its `[section.NAME]` tables) of a TOML file; a missing, unreadable or
    malformed file, or one without such tables, is one error naming `what` it should be."""
    path = Path(path)
    try:
        data = tomllib.loads(read_text(path, what))
    except tomllib.TOMLDecodeError as err:
        raise CoreplanError(f"{what} {path}: malformed TOML: {' '.join(str(err).split())}") \
            from None
    tables = data.get(section)
    if not isinstance(tables, dict) or not tables:
        raise CoreplanError(f"{what} {path}: no [{section}.NAME] tables")
    return data, tables


def toml_string(text: str) -> str:
    """A TOML basic string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'
