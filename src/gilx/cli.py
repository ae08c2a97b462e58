"""The ``gilx`` command line: parse, run, print.

Bad arguments print one line on stderr and exit 2 (argparse's convention);
``--json`` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from gilx.race import KINDS, MAX_THREADS, race


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line on stderr, not the whole usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _build_parser() -> _Parser:
    parser = _Parser(prog="gilx", description="Make the CPython GIL visible and measurable.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    race_cmd = commands.add_parser("race", help="the lost-update race, expected vs observed")
    race_cmd.add_argument("--kind", choices=[*KINDS, "all"], default="all")
    race_cmd.add_argument("--threads", type=_positive_int, default=2)
    race_cmd.add_argument("--increments", type=_positive_int, default=1_000_000)
    race_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _run_race(args: argparse.Namespace) -> int:
    if args.threads > MAX_THREADS:
        print(f"gilx race: error: --threads must be <= {MAX_THREADS}", file=sys.stderr)
        return 2
    kinds = KINDS if args.kind == "all" else (args.kind,)
    results = [race(kind, args.threads, args.increments) for kind in kinds]
    if args.json:
        print(json.dumps({"results": [r.to_dict() for r in results]}))
        return 0
    print(f"{args.threads} threads x {args.increments:,} increments on one shared counter")
    print(f"{'kind':<8}{'expected':>16}{'observed':>16}{'lost':>14}")
    for r in results:
        print(f"{r.kind:<8}{r.expected:>16,}{r.observed:>16,}{r.lost:>14,}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "race":
            return _run_race(args)
        parser.print_help()
        return 0
    except KeyboardInterrupt:
        print("gilx: interrupted", file=sys.stderr)
        return 130
