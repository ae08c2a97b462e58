"""``gilx watch [--top] [--json] [--flame FILE] [--interval S] (SCRIPT | -m MODULE) [ARG ...]``.

Runs a program in this process as ``python SCRIPT`` (or ``python -m MODULE``)
would -- its ``sys.argv``, ``__name__ == "__main__"``, stdin and stdout left
alone, its exit status, ``sys.exit``, its traceback if it raises, Ctrl-C --
under :func:`gilx.watch`, then reports on stderr.  No LD_PRELOAD, no ptrace,
no root: the heartbeat is a thread of the program's own process.

Its options are parsed here, not by the main parser: everything after the
script (or module) belongs to the program, including things that look like
options.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType

from gilx._watch import Watch
from gilx.instrument import DEFAULT_INTERVAL, check_interval

USAGE = (
    "usage: gilx watch [--top] [--json] [--flame FILE] [--interval SECONDS]"
    " (SCRIPT | -m MODULE) [ARG ...]"
)

HELP = f"""{USAGE}

Run a Python program in this process, as `python SCRIPT` (or `python -m MODULE`)
would -- its sys.argv, stdin, stdout and exit status untouched -- while the GIL
instrument's heartbeat measures how much of the time the GIL was held and how
long a thread asking for it waited.  The report goes to stderr afterwards.

positional arguments:
  SCRIPT              the program's file; everything after it is the program's
  -m MODULE           run a module as `python -m MODULE` does
  ARG                 the program's arguments (options included: they are not ours)

options:
  -h, --help          show this help and exit
  --json              report as one JSON object, the last line of stderr
  --top               also say who held the GIL while other threads waited: per
                      thread, per Python location (with its stack), and who made
                      whom wait; live on a terminal
  --flame FILE        write the held-while-others-waited samples to FILE as
                      collapsed stacks (flamegraph.pl, inferno, speedscope); implies --top
  --interval SECONDS  the heartbeat's period, > 0 (default: {DEFAULT_INTERVAL:g})
"""

#: How often the live status line is refreshed on a terminal (seconds).
STATUS_PERIOD = 0.5


class _UsageError(Exception):
    """A mistake on the command line: one line, exit 2."""


class _Options:
    def __init__(self) -> None:
        self.json = False
        self.top = False
        self.flame: str | None = None
        self.interval = DEFAULT_INTERVAL
        self.module: str | None = None
        self.script: str | None = None
        self.args: list[str] = []


def _parse(argv: Sequence[str]) -> _Options:
    opts = _Options()
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word in ("-h", "--help"):
            print(HELP, end="")
            raise SystemExit(0)
        if word == "--json":
            opts.json = True
        elif word == "--top":
            opts.top = True
        elif word == "--flame" or word.startswith("--flame="):
            if "=" in word:
                opts.flame = word.split("=", 1)[1]
            elif rest:
                opts.flame = rest.pop(0)
            else:
                raise _UsageError("--flame needs a file name")
            if not opts.flame:
                raise _UsageError("--flame needs a file name")
            opts.top = True
        elif word == "--interval" or word.startswith("--interval="):
            if "=" in word:
                text = word.split("=", 1)[1]
            elif rest:
                text = rest.pop(0)
            else:
                raise _UsageError("--interval needs a number of seconds")
            try:
                seconds = float(text)
            except ValueError:
                raise _UsageError(f"--interval: not a number: {text!r}") from None
            try:
                opts.interval = check_interval(seconds)
            except ValueError as exc:
                raise _UsageError(f"--interval: {exc}") from None
        elif word == "-m":
            if not rest:
                raise _UsageError("-m needs a module name")
            opts.module, opts.args = rest[0], rest[1:]
            return opts
        elif word == "--":
            if not rest:
                break
            opts.script, opts.args = rest[0], rest[1:]
            return opts
        elif word.startswith("-"):
            raise _UsageError(f"unknown option {word} (before the script); {USAGE}")
        else:
            opts.script, opts.args = word, rest
            return opts
    raise _UsageError(f"which program? {USAGE}")


def _check_target(opts: _Options) -> str:
    """The file the program's code is in (to trim our frames from its traceback).

    Also sets ``sys.path[0]`` as ``python`` would: the script's folder, or for
    ``-m`` the current directory (the ``gilx`` launcher's own folder is not the
    program's business).
    """
    if opts.module is not None:
        sys.path[0] = os.getcwd()
        try:
            spec = importlib.util.find_spec(opts.module)
        except (ImportError, ValueError) as exc:
            raise _UsageError(f"cannot find module {opts.module!r}: {exc}") from None
        if spec is None:
            raise _UsageError(f"no module named {opts.module!r}")
        return spec.origin or opts.module
    assert opts.script is not None
    if not os.path.exists(opts.script):
        raise _UsageError(f"no such file: {opts.script}")
    sys.path[0] = os.path.dirname(os.path.abspath(opts.script))
    return os.path.abspath(opts.script)


def _check_flame(path: str) -> None:
    """Fail now, not after the program ran, if ``path`` cannot be written."""
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise _UsageError(f"--flame: cannot write {path}: {exc.strerror or exc}") from None
    if not existed:
        os.unlink(path)


def _run_program(opts: _Options) -> None:
    if opts.module is not None:
        sys.argv = [opts.module, *opts.args]  # runpy puts the module's path in argv[0]
        runpy.run_module(opts.module, run_name="__main__", alter_sys=True)
    else:
        assert opts.script is not None
        sys.argv = [opts.script, *opts.args]
        runpy.run_path(opts.script, run_name="__main__")
    # Like the interpreter at exit: wait for the program's non-daemon threads.
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()


def _program_traceback(tb: TracebackType | None, origin: str) -> TracebackType | None:
    """The traceback from the program's first frame on, as ``python SCRIPT`` would show it."""
    first = tb
    while first is not None and os.path.abspath(first.tb_frame.f_code.co_filename) != origin:
        first = first.tb_next
    return first if first is not None else tb


def _exit_status(exc: SystemExit) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _status_line(w: Watch) -> str:
    r = w.reading()
    return (
        f"gilx watch: {r.seconds:6.1f} s  GIL held {r.hold_fraction:4.0%}"
        f"  wait p99 {r.latency.p99 * 1e3:7.3f} ms"
    )


def _live_status(w: Watch, stop: threading.Event) -> None:
    while not stop.wait(STATUS_PERIOD):
        sys.stderr.write("\r" + _status_line(w))
        sys.stderr.flush()


def _live_top(w: Watch, stop: threading.Event, shown: list[int]) -> None:
    """The ``--top`` live view: a few lines redrawn in place (``shown[0]``: how many
    are on the screen now, for the caller to clear)."""
    from gilx._present import blame_live

    while not stop.wait(STATUS_PERIOD):
        blame = w.blame
        if blame is None:
            continue
        lines = [_status_line(w), *blame_live(blame)]
        up = f"\x1b[{shown[0]}F" if shown[0] else "\r"
        sys.stderr.write(up + "\x1b[J" + "\n".join(lines) + "\n")
        sys.stderr.flush()
        shown[0] = len(lines)


def report_text(w: Watch) -> str:
    r = w.reading()
    lat = r.latency
    lines = [f"gilx watch: {r.seconds:.3f} s"]
    if not r.gil_enabled:
        lines.append("  no GIL in this process (free-threaded build, GIL off): nothing to hold")
    lines.append(
        f"  GIL held {r.hold_fraction:.1%} of the time"
        f" ({r.samples:,} sampled instants, one per {w.interval * 1e3:g} ms)"
    )
    lines.append(
        f"  wait for the GIL: p50 {lat.p50 * 1e3:.3f} ms, p90 {lat.p90 * 1e3:.3f} ms,"
        f" p99 {lat.p99 * 1e3:.3f} ms, max {lat.max * 1e3:.3f} ms"
    )
    if r.gil_enabled:
        others = (
            f"; other processes used {r.other_cores:.2f} cores, steal {r.steal_cores:.2f}"
            if r.other_cores is not None and r.steal_cores is not None
            else ""
        )
        priority = {"fifo": "real-time priority", "short-slice": "short scheduler slice"}.get(
            r.priority, "normal priority"
        )
        lines.append(
            f"  heartbeat: {priority}, {r.late_share:.1%} of the instants late for a"
            f" CPU, {r.missed_share:.1%} slept through{others}"
        )
    judgement = w.judgement
    if not judgement.judged:
        lines.append(f"  not judged: {judgement.why()}: the share held may be off; run again")
    if judgement.note is not None:
        lines.append(f"  note: {judgement.note}")
    if w.top:
        from gilx._present import blame_text

        lines.append(blame_text(w.blame, w.blame_unavailable, lat.max, lat.p99))
    return "\n".join(lines)


def json_report(w: Watch) -> str:
    """The ``--json`` object: the same ``schema`` and ``machine`` block as every other
    command's, then the reading (``disturbed`` included)."""
    from gilx._present import json_text

    return json_text(w.to_dict())


def _watched(opts: _Options, origin: str, w: Watch) -> int:
    """Run the program under the watch ``w``; its exit status."""
    stop = threading.Event()
    live: Callable[[], None] | None = None
    if sys.stderr.isatty() and w.top:
        shown = [0]
        view = threading.Thread(target=_live_top, args=(w, stop, shown), daemon=True)
        view.start()

        def live() -> None:
            stop.set()
            view.join()
            if shown[0]:
                sys.stderr.write(f"\x1b[{shown[0]}F\x1b[J")
    elif sys.stderr.isatty():
        status = threading.Thread(target=_live_status, args=(w, stop), daemon=True)
        status.start()

        def live() -> None:
            stop.set()
            status.join()
            sys.stderr.write("\r" + " " * len(_status_line(w)) + "\r")

    try:
        with w:
            try:
                _run_program(opts)
            finally:
                if live is not None:
                    live()
    except SystemExit as exc:
        return _exit_status(exc)
    except KeyboardInterrupt as exc:
        traceback.print_exception(type(exc), exc, _program_traceback(exc.__traceback__, origin))
        return 130
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, _program_traceback(exc.__traceback__, origin))
        return 1
    return 0


def main(argv: Sequence[str]) -> int:
    try:
        opts = _parse(argv)
        origin = _check_target(opts)
        if opts.flame is not None:
            _check_flame(opts.flame)
    except _UsageError as exc:
        print(f"gilx watch: error: {exc}", file=sys.stderr)
        return 2
    w = Watch(opts.interval, top=opts.top)
    status = _watched(opts, origin, w)
    sys.stdout.flush()
    from gilx._present import safe_streams

    safe_streams(sys.stderr)  # the report's stream, now the program has finished with it
    if opts.flame is not None:
        _write_flame(w, opts.flame)
    if opts.json:
        print(json_report(w), file=sys.stderr)
    else:
        print(report_text(w), file=sys.stderr)
    return status


def _write_flame(w: Watch, path: str) -> None:
    blame = w.blame
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(blame.collapsed() if blame is not None else "")
    except OSError as exc:  # checked before the run; the disk may have filled since
        print(f"gilx watch: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
