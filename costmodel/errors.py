"""User-facing errors: the CLI prints them as one line and exits 2."""


class CoreplanError(ValueError):
    """Bad input from the user (unknown name, invalid shape, malformed file)."""


def lookup(kind: str, name: str, table: dict, cutoff: float = 0.5):
    """table[name], or one clear error listing close names (or all names when none is close)."""
    import difflib

    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, table, n=4, cutoff=cutoff)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(table)}"
    raise CoreplanError(f"unknown {kind} {name!r}{hint}")
