"""The ``gilx`` command line: parse, run, print.

Bad arguments print one line on stderr and exit 2 (argparse's convention);
``--json`` prints exactly one JSON object on stdout; progress goes to stderr,
and only on a terminal or with ``--progress``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from gilx import _measured, _present, backends, machine, runner, timeline_text, workloads
from gilx._core import MAX_COUNT
from gilx._extras import MissingExtra
from gilx._race import KINDS, MAX_THREADS, race
from gilx._version import __version__

#: ``--seconds`` (probe, timeline) above this is a mistake, not an experiment.
MAX_SECONDS = 60.0
#: ``timeline --width`` above this is unreadable, and drawing it takes seconds per thousand.
MAX_WIDTH = 1000


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line on stderr, not the whole usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """A mistake in the command line found after parsing: one line on stderr, exit 2."""


def _int_between(text: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int_between(text, 1)


def _work_size(text: str) -> int:
    """A total of work units: the C kernels count in a signed 64-bit integer."""
    return _int_between(text, 1, MAX_COUNT)


def _worker_count(text: str) -> int:
    return _int_between(text, 1, runner.MAX_WORKERS)


def _two_or_more_workers(text: str) -> int:
    """Worker counts compared with one worker: 1 would compare one worker with itself."""
    return _int_between(text, 2, runner.MAX_WORKERS)


def _race_threads(text: str) -> int:
    return _int_between(text, 1, MAX_THREADS)


def _timeline_threads(text: str) -> int:
    from gilx.timeline import MAX_THREADS as MAX_TIMELINE_THREADS

    return _int_between(text, 1, MAX_TIMELINE_THREADS)


def _convoy_names() -> tuple[str, ...]:
    from gilx._convoy import NAMES

    return NAMES


def _convoy_workloads(text: str) -> tuple[str, ...]:
    from gilx._convoy import get

    names = tuple(p.strip() for p in text.split(",") if p.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected workloads like nogil,sleep, got {text!r}")
    for name in names:
        try:
            get(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def _width(text: str) -> int:
    return _int_between(text, timeline_text.MIN_WIDTH, MAX_WIDTH)


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
    if not 0 < value <= MAX_SECONDS:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds > 0 and <= {MAX_SECONDS:g}, got {text}"
        )
    return value


def _add_workers(
    cmd: argparse.ArgumentParser,
    parse: Callable[[str], object],
    default: object,
    help: str,
    *aliases: str,
    metavar: str = "N",
) -> None:
    """``--workers``: one meaning in every command: how many workers run at once.

    A command that measures one count takes one number; ``scale``, which draws
    a curve, takes several.  ``aliases`` keep older spellings working
    (``--threads`` on race and timeline).
    """
    cmd.add_argument(
        "--workers",
        *aliases,
        dest="workers",
        type=parse,
        default=default,
        metavar=metavar,
        help=f"how many workers run at once: {help}",
    )


def _add_common(cmd: argparse.ArgumentParser, *, json_text: str = "the result") -> None:
    cmd.add_argument(
        "--json", action="store_true", help=f"print {json_text} as one JSON object on stdout"
    )
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


def _command(
    commands: argparse._SubParsersAction[_Parser], name: str, help: str, description: str
) -> _Parser:
    """One subcommand: ``help`` is its line in ``gilx --help``, ``description`` heads its own."""
    return commands.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="gilx",
        description="Make the CPython GIL visible and measurable. "
        "`gilx COMMAND --help` says what each command does.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    tour = _command(
        commands,
        "tour",
        "the seed's tour, every claim measured now (default)",
        "Walk the seed's sections about the GIL in order; each claim is shown with a number\n"
        "measured now on this machine, and judged only when the machine was quiet enough.",
    )
    _add_measuring(tour)
    _add_workers(tour, _two_or_more_workers, None, "workers per measurement (>= 2)")
    _add_common(tour, json_text="the tour's lines, section by section, and its table")

    table = _command(
        commands,
        "table",
        "the seed's GIL and hardware table, measured",
        'Measure every cell of the seed\'s "GIL and Hardware Utilization" table here: each\n'
        "threading / multiprocessing cell is a speedup over one worker, each NumPy cell NumPy's\n"
        "speed over pure Python; a cell measured while disturbed is shown but not judged.",
    )
    _add_measuring(table)
    _add_workers(table, _two_or_more_workers, None, "workers per cell (>= 2)")
    _add_common(table)

    race_cmd = _command(
        commands,
        "race",
        "the lost-update race, expected vs observed",
        "Threads increment one shared counter, started together, with the GIL released:\n"
        "the unsafe counter loses updates when they run on several cores at once.  Each run\n"
        "is judged: a race whose threads did not run together, or that other processes\n"
        "disturbed, gives no lost count.",
    )
    race_cmd.add_argument(
        "--kind", choices=[*KINDS, "all"], default="all", help="which counter (default: all)"
    )
    _add_workers(race_cmd, _race_threads, 2, "threads sharing the counter", "--threads")
    race_cmd.add_argument(
        "--increments",
        type=_work_size,
        default=1_000_000,
        metavar="N",
        help="increments per thread (default: 1,000,000)",
    )
    _add_common(race_cmd)

    scale = _command(
        commands,
        "scale",
        "a scaling curve for one workload",
        "Time the same total work on 1 worker and on each worker count: speedup = time of 1\n"
        "worker / time of k workers splitting it.  Every repeat is metered for other\n"
        "processes' CPU; a disturbed point is re-measured, then shown but not judged.",
    )
    scale.add_argument(
        "--workload",
        required=True,
        choices=workloads.NAMES,
        metavar="W",
        help=f"the work: {', '.join(workloads.NAMES)}",
    )
    scale.add_argument(
        "--mode",
        choices=backends.NAMES,
        default="threads",
        metavar="MODE",
        help=f"how workers run: {', '.join(backends.NAMES)} (default: threads)",
    )
    _add_workers(
        scale,
        _worker_list,
        [1, 2, 4],
        "one count per point of the curve, e.g. 1,2,4",
        metavar="1,2,4",
    )
    scale.add_argument(
        "--size", type=_work_size, default=None, help="total work (default: calibrated)"
    )
    scale.add_argument(
        "--repeats",
        type=_positive_int,
        default=None,
        help="timed repeats per worker count (default: 5, --quick 3)",
    )
    scale.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="--mode dask / dask-threads: use the existing cluster at tcp://HOST:PORT",
    )
    scale.add_argument(
        "--png",
        metavar="FILE",
        default=None,
        help="also draw the curve as a PNG (measures threads and processes both)",
    )
    _add_measuring(scale)
    _add_common(scale)

    probe = _command(
        commands,
        "probe",
        "does a callable release the GIL?",
        "Call MODULE:CALLABLE(ARG ...) on one thread while a heartbeat asks for the GIL at\n"
        'random instants: the share held is the evidence; the verdict is "releases" below 50 %.\n'
        "A probe the rest of the machine disturbed says so and gives no verdict.",
    )
    probe.add_argument("target", metavar="MODULE:CALLABLE", help="what to call, e.g. zlib:compress")
    probe.add_argument("args", metavar="ARG", nargs="*", help="a Python literal, else a string")
    _add_workers(probe, _two_or_more_workers, 2, "threads compared with one (>= 2)")
    probe.add_argument(
        "--seconds",
        type=_positive_float,
        default=0.2,
        help="each thread's share of calls, in seconds",
    )
    _add_common(probe)

    timeline = _command(
        commands,
        "timeline",
        "which thread ran when, drawn as text",
        "Run a workload on several threads and record when each one ran and waited, from\n"
        "the work's own stamps; drawn like the seed's core diagrams.",
    )
    timeline.add_argument(
        "--workload",
        required=True,
        choices=workloads.NAMES,
        metavar="W",
        help=f"the work: {', '.join(workloads.NAMES)}",
    )
    _add_workers(timeline, _timeline_threads, 2, "threads recorded", "--threads")
    timeline.add_argument(
        "--seconds",
        type=_positive_float,
        default=None,
        help="each thread's share of work, in seconds (default 0.25)",
    )
    timeline.add_argument(
        "--width",
        type=_width,
        default=None,
        help="characters per line (default: the terminal's width)",
    )
    timeline.add_argument("--png", metavar="FILE", default=None, help="also draw it as a PNG")
    _add_common(timeline)

    convoy = _command(
        commands,
        "convoy",
        "releasing work beside busy Python threads: the convoy effect",
        "Time each workload's work on one worker thread, alone, then while other threads run\n"
        "pure Python (or --beside) for the whole measurement: how long releasing work waits to\n"
        "get the GIL back (CPython issue 7946); per-call latency for io and sleep.",
    )
    convoy.add_argument(
        "--workload",
        type=_convoy_workloads,
        default=None,
        metavar="W[,W...]",
        help="workloads to time on a worker thread (default: nogil,memory,numpy,io,sleep)",
    )
    convoy.add_argument(
        "--beside",
        choices=_convoy_names(),
        default="py",
        help="what the busy threads run (default: py)",
    )
    _add_workers(convoy, _worker_count, 1, "busy threads running --beside", "--threads")
    convoy.add_argument("--quick", action="store_true", help="shorter, noisier measurements")
    _add_common(convoy)
    # Listed for --help only: main() hands `gilx watch ...` to gilx.watch_cli before parsing.
    commands.add_parser(
        "watch", help="run a program under the GIL instrument (gilx watch -h)", add_help=False
    )
    return parser


def _progress(args: argparse.Namespace) -> Callable[[str], None] | None:
    if getattr(args, "progress", False) or sys.stderr.isatty():
        return lambda message: print(f"gilx: {message} ...", file=sys.stderr, flush=True)
    return None


def _run_race(args: argparse.Namespace) -> int:
    kinds = KINDS if args.kind == "all" else (args.kind,)
    say = _progress(args) or (lambda _message: None)
    results = []
    for kind in kinds:
        say(f"race: {kind} counter, {_present.plural(args.workers, 'thread')}")
        try:
            results.append(race(kind, args.workers, args.increments))
        except OverflowError as exc:  # threads * increments beyond the counter's range
            raise UsageError(str(exc)) from None
    if args.json:
        print(_present.json_text({"results": [r.to_dict() for r in results]}))
    else:
        print(_present.race_table(results))
    return 0


def _run_tour(args: argparse.Namespace) -> int:
    from gilx.tour import run

    measurements = _measured.Measurements(
        quick=args.quick,
        workers=args.workers,
        start_method=args.start_method,
        progress=_progress(args),
    )
    if not args.json:
        run(measurements, _present.Report(lambda line: print(line, flush=True)))
        return 0
    report = _present.Report()
    measured = run(measurements, report)
    print(_present.json_text({"sections": report.sections(), "table": measured.to_dict()}))
    return 0


def _run_table(args: argparse.Namespace) -> int:
    from gilx._table import table

    result = table(
        quick=args.quick,
        workers=args.workers,
        start_method=args.start_method,
        progress=_progress(args),
    )
    print(_present.json_text(result.to_dict()) if args.json else result.render())
    return 0


def _check_scale_mode(args: argparse.Namespace) -> None:
    """Refuse, before measuring, a mode that cannot run the workload or take --scheduler."""
    backend = backends.get(args.mode)
    options = backends.Options(start_method=args.start_method, scheduler=args.scheduler)
    try:
        backends.check_options(backend, options)
        backend.check(workloads.get(args.workload))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # MissingExtra: one line, exit 2, in every mode that could run the workload
    workloads.get(args.workload).require()


def _run_scale(args: argparse.Namespace) -> int:
    from gilx.backends.dask_cluster import SchedulerUnreachable

    _check_scale_mode(args)
    if args.png is not None:
        _check_png_target(args.png)
    load = machine.load_1min()

    def measure(mode: str) -> runner.ScaleResult:
        return runner.scale(
            args.workload,
            mode,
            args.workers,
            quick=args.quick,
            size=args.size,
            repeats=args.repeats,
            start_method=args.start_method,
            scheduler=args.scheduler if mode == args.mode else None,
            progress=_progress(args),
        )

    try:
        result = measure(args.mode)
    except SchedulerUnreachable as exc:
        raise UsageError(str(exc)) from None
    print(_present.json_text(result.to_dict()) if args.json else result.render(load))
    if args.png is not None:
        from gilx.plot import PlotUnavailable, companion_mode, scale_png

        other = measure(companion_mode(args.mode))
        try:
            scale_png([result, other], args.png)
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
    from gilx._probe import probe

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
    print(_present.json_text(result.to_dict()) if args.json else result.render())
    return 0


def _run_timeline(args: argparse.Namespace) -> int:
    import shutil

    from gilx import timeline

    width = args.width or min(shutil.get_terminal_size((100, 24)).columns, MAX_WIDTH)
    if width < timeline_text.MIN_WIDTH:  # a terminal narrower than a drawing can be
        raise UsageError(f"--width must be >= {timeline_text.MIN_WIDTH}, got {width}")
    if args.png is not None:
        _check_png_target(args.png)
    progress = _progress(args)
    if progress:
        progress(f"recording {args.workload} on {_present.plural(args.workers, 'thread')}")
    recorded = timeline.record(
        args.workload, args.workers, args.seconds or timeline.DEFAULT_SECONDS
    )
    if args.png is not None:
        from gilx.plot import PlotUnavailable, timeline_png

        try:
            timeline_png(recorded, args.png)
        except PlotUnavailable as exc:
            raise UsageError(str(exc)) from None
    if args.json:
        print(_present.json_text(recorded.to_dict()))
    else:
        print(timeline_text.draw(recorded, width))
        if args.png is not None:
            print(f"picture: {args.png}")
    return 0


def _check_png_target(path: str) -> None:
    """Fail before measuring, not after, when the picture cannot be written."""
    if os.path.isdir(path):
        raise UsageError(f"--png: {path} is a folder; name the picture's file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--png: no such folder: {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--png: cannot write in {folder}")


def _run_convoy(args: argparse.Namespace) -> int:
    from gilx._convoy import DEFAULT_WORKLOADS, measure_all

    names = args.workload or DEFAULT_WORKLOADS
    result = measure_all(
        names, args.beside, args.workers, quick=args.quick, progress=_progress(args)
    )
    print(_present.json_text(result.to_dict()) if args.json else result.render())
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "convoy": _run_convoy,
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
        # (and the program's stdout is its own: watch makes only its report safe)
        from gilx.watch_cli import main as watch_main

        return watch_main(argv[1:])
    # What an ASCII or cp1252 console cannot show is replaced, never a UnicodeEncodeError.
    _present.safe_streams(sys.stdout, sys.stderr)
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # plain `gilx` is the tour
        args = parser.parse_args(["tour"])
    try:
        return _COMMANDS[args.command](args)
    except (UsageError, MissingExtra) as exc:
        print(f"gilx {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gilx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `gilx tour | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
