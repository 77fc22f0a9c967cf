"""User-facing errors: the CLI prints them as one line and exits 2."""


class CoreplanError(ValueError):
    """Bad input from the user (unknown name, invalid shape, malformed file)."""
