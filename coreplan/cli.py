"""The `coreplan` command line: assembles the command modules on the app and runs it.

A thin front door over costmodel, reference and planners: user errors become one line on stderr
and exit status 2; a Python argument named in a library error is translated into its flag.
"""

from __future__ import annotations

import sys

from typer.exceptions import Abort, Exit, TyperException

# the command modules register on `app` when imported; this order is `coreplan --help`'s
from coreplan import cost_commands  # noqa: F401, I001
from coreplan import measure_commands  # noqa: F401
from coreplan import plan_commands  # noqa: F401
from coreplan import serve_commands  # noqa: F401
from coreplan import chart_commands  # noqa: F401
from coreplan.app import app, flag_message
from costmodel.errors import CoreplanError


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit status 2."""
    try:
        result = app(args=argv, standalone_mode=False)
    except CoreplanError as err:
        print(f"coreplan: error: {flag_message(err)}", file=sys.stderr)
        return 2
    except Exit as done:
        return done.exit_code
    except TyperException as err:  # usage errors: unknown option, missing argument, bad type
        if type(err).__name__ == "NoArgsIsHelpError" and getattr(err, "ctx", None):
            print(err.ctx.get_help(), file=sys.stderr)  # bare `coreplan`: the help as it is
            return 2
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        print(f"coreplan: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except (Abort, KeyboardInterrupt):
        print("coreplan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
