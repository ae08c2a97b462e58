"""The ``gilx`` command line: parse, run, print.

Bad arguments print one line on stderr and exit 2 (argparse's convention);
``--json`` prints exactly one JSON object on stdout; progress goes to stderr,
and only on a terminal or with ``--progress``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from gilx import report, runner, workloads
from gilx.race import KINDS, MAX_THREADS, race


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line on stderr, not the whole usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """A mistake in the command line found after parsing: one line on stderr, exit 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _worker_count(text: str) -> int:
    value = _positive_int(text)
    if value > runner.MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be <= {runner.MAX_WORKERS}, got {value}")
    return value


def _worker_list(text: str) -> list[int]:
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected worker counts like 1,2,4, got {text!r}")
    return [_worker_count(p.strip()) for p in parts]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _add_common(cmd: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    if json_flag:
        cmd.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    cmd.add_argument(
        "--progress", action="store_true", help="show progress on stderr even when not a terminal"
    )


def _add_measuring(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--quick", action="store_true", help="shorter, noisier measurements")
    cmd.add_argument(
        "--start-method",
        choices=runner.start_methods(),
        default=None,
        help=f"how processes start (default: {runner.default_start_method()})",
    )


def _build_parser() -> _Parser:
    parser = _Parser(prog="gilx", description="Make the CPython GIL visible and measurable.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    tour = commands.add_parser("tour", help="the seed's tour, every claim measured now (default)")
    _add_measuring(tour)
    tour.add_argument("--workers", type=_worker_count, default=None, help="workers per measurement")
    _add_common(tour, json_flag=False)

    table = commands.add_parser("table", help="the seed's GIL and hardware table, measured")
    _add_measuring(table)
    table.add_argument("--workers", type=_worker_count, default=None, help="workers per cell")
    _add_common(table)

    race_cmd = commands.add_parser("race", help="the lost-update race, expected vs observed")
    race_cmd.add_argument("--kind", choices=[*KINDS, "all"], default="all")
    race_cmd.add_argument("--threads", type=_positive_int, default=2)
    race_cmd.add_argument("--increments", type=_positive_int, default=1_000_000)
    race_cmd.add_argument("--json", action="store_true", help="print one JSON object")

    scale = commands.add_parser("scale", help="a scaling curve for one workload")
    scale.add_argument("--workload", required=True, choices=workloads.NAMES)
    scale.add_argument("--mode", choices=runner.MODES, default="threads")
    scale.add_argument(
        "--workers", type=_worker_list, default=[1, 2, 4], help="worker counts, e.g. 1,2,4"
    )
    scale.add_argument(
        "--size", type=_positive_int, default=None, help="total work (default: calibrated)"
    )
    scale.add_argument("--repeats", type=_positive_int, default=None)
    scale.add_argument(
        "--png", metavar="FILE", default=None,
        help="also draw the curve as a PNG (measures threads and processes both)",
    )
    _add_measuring(scale)
    _add_common(scale)

    probe = commands.add_parser("probe", help="does a callable release the GIL?")
    probe.add_argument("target", metavar="MODULE:CALLABLE")
    probe.add_argument("args", metavar="ARG", nargs="*", help="a Python literal, else a string")
    probe.add_argument("--workers", type=_worker_count, default=2, help="threads (>= 2)")
    probe.add_argument(
        "--seconds",
        type=_positive_float,
        default=0.2,
        help="each thread's share of calls, in seconds",
    )
    _add_common(probe)

    timeline = commands.add_parser("timeline", help="which thread ran when, drawn as text")
    timeline.add_argument("--workload", required=True, choices=workloads.NAMES)
    timeline.add_argument("--threads", type=_timeline_threads, default=2)
    timeline.add_argument(
        "--seconds", type=_positive_float, default=None,
        help="each thread's share of work, in seconds (default 0.25)",
    )
    timeline.add_argument(
        "--width", type=_positive_int, default=None,
        help="characters per line (default: the terminal's width)",
    )
    timeline.add_argument("--png", metavar="FILE", default=None, help="also draw it as a PNG")
    _add_common(timeline)
    # Listed for --help only: main() hands `gilx watch ...` to gilx.watch_cli before parsing.
    commands.add_parser("watch", help="run a program under the GIL instrument (gilx watch -h)")
    return parser


def _timeline_threads(text: str) -> int:
    from gilx.timeline import MAX_THREADS

    value = _positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_THREADS}, got {value}")
    return value


def _progress(args: argparse.Namespace) -> Callable[[str], None] | None:
    if getattr(args, "progress", False) or sys.stderr.isatty():
        return lambda message: print(f"gilx: {message} ...", file=sys.stderr, flush=True)
    return None


def _run_race(args: argparse.Namespace) -> int:
    if args.threads > MAX_THREADS:
        raise UsageError(f"--threads must be <= {MAX_THREADS}")
    kinds = KINDS if args.kind == "all" else (args.kind,)
    try:
        results = [race(kind, args.threads, args.increments) for kind in kinds]
    except OverflowError as exc:  # threads * increments beyond the counter's range
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"results": [r.to_dict() for r in results]}))
        return 0
    print(f"{args.threads} threads x {args.increments:,} increments on one shared counter")
    print(f"{'kind':<8}{'expected':>16}{'observed':>16}{'lost':>14}")
    for r in results:
        print(f"{r.kind:<8}{r.expected:>16,}{r.observed:>16,}{r.lost:>14,}")
    return 0


def _run_tour(args: argparse.Namespace) -> int:
    from gilx.tour import run

    session = report.Session(
        quick=args.quick,
        workers=args.workers,
        start_method=args.start_method,
        progress=_progress(args),
    )
    run(session, lambda line: print(line, flush=True))
    return 0


def _run_table(args: argparse.Namespace) -> int:
    from gilx.table import table

    result = table(
        quick=args.quick,
        workers=args.workers,
        start_method=args.start_method,
        progress=_progress(args),
    )
    print(json.dumps(result.to_dict()) if args.json else result.render())
    return 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _format_scale(result: runner.ScaleResult, load: float | None) -> str:
    how = (
        f"processes, start method {result.start_method}"
        if result.mode == "processes"
        else "threads"
    )
    lines = [
        f"machine: {report.machine_line(None, load)}",
        f"{result.workload}: {workloads.get(result.workload).summary}",
        f"on {how}; {result.size:,} {result.unit} in total, split among the workers;"
        f" {_plural(len(result.baseline.samples), 'repeat')}",
        "",
        f"{'workers':>7}  {'seconds: median (min..max)':<30}{'speedup':>8}{'efficiency':>12}"
        + ("   start-up" if result.mode == "processes" else ""),
    ]
    for p in result.points:
        t = p.timing
        timing = f"{t.median:.4f} ({t.minimum:.4f}..{t.maximum:.4f}){' ~' if t.unstable else ''}"
        line = f"{p.workers:>7}  {timing:<30}{p.speedup:>7.2f}x{p.efficiency:>11.0%}"
        if p.startup is not None:
            line += f"   {p.startup:.3f} s"
        lines.append(line)
    lines += [
        "",
        "speedup = time of 1 worker doing all the work / time of k workers splitting it;"
        " efficiency = speedup / k",
    ]
    if any(p.timing.unstable for p in result.points) or result.baseline.unstable:
        lines.append(
            f"~ = repeats spread more than {runner.SPREAD_LIMIT:.0%} of the median: a busy machine?"
        )
    if result.mode == "processes":
        lines.append(
            "start-up: launching the processes and preparing their shares (not in seconds)"
        )
    return "\n".join(lines)


def _run_scale(args: argparse.Namespace) -> int:
    if args.png is not None:
        _check_png_target(args.png)
    load = report.load_average()

    def measure(mode: str) -> runner.ScaleResult:
        return runner.scale(
            args.workload,
            mode,
            args.workers,
            quick=args.quick,
            size=args.size,
            repeats=args.repeats,
            start_method=args.start_method,
            progress=_progress(args),
        )

    result = measure(args.mode)
    print(json.dumps(result.to_dict()) if args.json else _format_scale(result, load))
    if args.png is not None:
        from gilx.plot import PlotUnavailable, scale_png

        other = measure("processes" if args.mode == "threads" else "threads")
        curves = sorted([result, other], key=lambda r: r.mode != "threads")
        try:
            scale_png(curves, args.png)
        except PlotUnavailable as exc:
            raise UsageError(str(exc)) from None
        print(f"picture: {args.png}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _literal(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _resolve(target: str) -> Callable[..., Any]:
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise UsageError(f"expected MODULE:CALLABLE, e.g. time:sleep; got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise UsageError(f"{target} is not callable (it is a {type(obj).__name__})")
    return obj  # type: ignore[no-any-return]


def _run_probe(args: argparse.Namespace) -> int:
    from gilx.probe import HOLD_LIMIT, probe

    func = _resolve(args.target)
    call_args = tuple(_literal(a) for a in args.args)
    shown = f"{args.target}({', '.join(repr(a) for a in call_args)})"
    try:
        func(*call_args)  # one trial call: a wrong argument is the user's mistake
    except Exception as exc:
        raise UsageError(f"calling {shown} raised {type(exc).__name__}: {exc}") from None
    say = _progress(args)
    if say:
        say(f"probing {shown}")
    result = probe(func, *call_args, workers=args.workers, seconds=args.seconds, name=shown)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"probe {shown}")
    if not result.gil_enabled:
        print(
            "  no GIL in this process (free-threaded build, GIL off): nothing to hold or release"
        )
    print(f"  GIL held {result.hold_fraction:.0%} of the time one thread spent making the calls")
    print("    (a heartbeat thread asked for the GIL at random instants, one per ms: held or not)")
    print(
        f"  {result.workers} threads: {result.speedup:.2f}x the speed of 1 thread making the same"
        f" {result.calls * result.workers:,} calls"
    )
    if result.gil_enabled:
        if result.releases_gil:
            print(f"  verdict: releases the GIL (held less than {HOLD_LIMIT:.0%} of the time)")
        else:
            print(f"  verdict: holds the GIL (held at least {HOLD_LIMIT:.0%} of the time)")
    return 0


def _run_timeline(args: argparse.Namespace) -> int:
    import shutil

    from gilx import timeline, timeline_text

    width = args.width or shutil.get_terminal_size((100, 24)).columns
    if width < timeline_text.MIN_WIDTH:
        raise UsageError(f"--width must be >= {timeline_text.MIN_WIDTH}, got {width}")
    if args.seconds is not None and args.seconds > 60:
        raise UsageError(f"--seconds must be <= 60, got {args.seconds}")
    if args.png is not None:
        _check_png_target(args.png)
    progress = _progress(args)
    if progress:
        progress(f"recording {args.workload} on {args.threads} thread(s)")
    recorded = timeline.record(
        args.workload, args.threads, args.seconds or timeline.DEFAULT_SECONDS
    )
    if args.png is not None:
        from gilx.plot import PlotUnavailable, timeline_png

        try:
            timeline_png(recorded, args.png)
        except PlotUnavailable as exc:
            raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(recorded.to_dict()))
    else:
        print(timeline_text.draw(recorded, width))
        if args.png is not None:
            print(f"picture: {args.png}")
    return 0


def _check_png_target(path: str) -> None:
    """Fail before measuring, not after, when the picture cannot be written."""
    import os

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--png: no such folder: {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--png: cannot write in {folder}")


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "timeline": _run_timeline,
    "tour": _run_tour,
    "table": _run_table,
    "race": _run_race,
    "scale": _run_scale,
    "probe": _run_probe,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["watch"]:  # its own parser: the program's arguments are not ours
        from gilx.watch_cli import main as watch_main

        return watch_main(argv[1:])
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # plain `gilx` is the tour
        args = parser.parse_args(["tour"])
    try:
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"gilx {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gilx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `gilx tour | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
