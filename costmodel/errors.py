"""User-facing errors: the CLI prints them as one line and exits 2.

A library error speaks of the Python argument it concerns (`demand_img_per_s`); the CLI, which
alone knows its flags, translates `ArgumentError.argument` into the flag (`--demand`).
"""


class CoreplanError(ValueError):
    """Bad input from the user (unknown name, invalid shape, malformed file)."""


class ArgumentError(CoreplanError):
    """A bad value of one named Python argument: str() is "<argument> <detail>"."""

    def __init__(self, argument: str, detail: str) -> None:
        super().__init__(f"{argument} {detail}")
        self.argument = argument
        self.detail = detail


def lookup(kind: str, name: str, table: dict, cutoff: float = 0.5):
    """table[name], or one clear error listing close names (or all names when none is close)."""
    import difflib

    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, table, n=4, cutoff=cutoff)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(table)}"
    raise CoreplanError(f"unknown {kind} {name!r}{hint}")


def read_text(path, what: str) -> str:
    """A user file's text (UTF-8, a byte-order mark dropped); a missing, directory, binary or
    unreadable file is one error that names `what` it should have been (e.g. "model file")."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:  # a BOM is dropped
            return handle.read()
    except FileNotFoundError:
        raise CoreplanError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise CoreplanError(f"{what} {path}: is a directory") from None
    except UnicodeDecodeError:
        raise CoreplanError(f"{what} {path}: not a text (UTF-8) file") from None
    except OSError as err:
        raise CoreplanError(f"{what} {path}: {err.strerror}") from None


def check_choice(kind: str, value: str, allowed) -> str:
    """`value` if it is one of `allowed`, else one clear error naming the choices."""
    if value not in allowed:
        raise CoreplanError(f"unknown {kind} {value!r}; choose one of {', '.join(allowed)}")
    return value


def script_main(main) -> None:
    """A benchmark script's entry point: exit with main()'s status (None: 0); bad input (a
    CoreplanError) is one line on stderr and exit status 2, an interrupt exit status 130, as in
    the CLI (what the script finished before it is its own to keep)."""
    import sys

    try:
        status = main()
    except CoreplanError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status)
