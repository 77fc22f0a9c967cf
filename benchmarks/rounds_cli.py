"""The command line the interleaved-rounds benchmarks share (cold_weights.py, split_curves.py).

`--rounds` rounds (2 at least: the two orders alternate) on `--threads` threads, every round's
times written to `--out` (JSON: the machine, the threads, the script's own facts, the rows), the
table printed; or `--report FILE`: the table of a file written before, timing nothing. Bad input
is one line and exit 2 (costmodel.errors.script_main)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rounds_main(doc: str, measure, report, *, rounds: int, facts=dict) -> int:
    """`measure(rounds, threads)` -> rows; `report(rows)` prints them; `facts()` -> what else
    the file records about the machine."""
    from costmodel.errors import CoreplanError

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="write every round's times here (JSON)")
    parser.add_argument("--report", help="only print the table of this file, timing nothing")
    args = parser.parse_args()
    if args.report:
        try:
            rows = json.loads(Path(args.report).read_text())["rows"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CoreplanError(f"{args.report}: not a file this script wrote ({e})") from None
        report(rows)
        return 0
    if args.rounds < 2:
        raise CoreplanError("--rounds must be 2 or more (the two orders alternate)")
    if args.threads < 1:
        raise CoreplanError("--threads must be 1 or more")
    rows = measure(args.rounds, args.threads)
    if args.out:
        from reference.machine import machine_name

        Path(args.out).write_text(json.dumps(
            {"machine": machine_name("cpu"), "threads": args.threads, **facts(), "rows": rows},
            indent=1))
    report(rows)
    return 0
