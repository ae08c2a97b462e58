"""Presentation: the words and tables every command prints, in one place.

The shared words (``NOT_JUDGED``, :func:`busy_note`, :func:`flag`,
:func:`machine_line`), the ``--json`` envelope (:func:`json_text`), and the
text of ``gilx race``, ``gilx scale`` and ``gilx probe``: the results'
``render()`` methods call the functions here, and the CLI only prints what
they return.  (The table and the convoy render themselves with the same words.)

This module imports nothing that measures, only the words it needs from
:mod:`gilx.machine` and :mod:`gilx.timing`, so any result's ``render()`` may
import it without an import circle; the results it renders are types here only.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gilx import machine
from gilx._judgement import CANNOT_METER, Judgement
from gilx.timing import DISTURBED_SHARE, SPREAD_LIMIT, Timing

if TYPE_CHECKING:
    from gilx._blame import Blame
    from gilx._probe import ProbeResult
    from gilx._race import RaceResult
    from gilx.runner import ScaleResult

#: What a measurement that cannot be judged (:class:`gilx._judgement.Judgement`: disturbed,
#: unstable, short of cores, even after re-measuring) says instead of a verdict.
NOT_JUDGED = "not judged"

#: What a race whose threads never ran at the same time says instead of a lost count.
NOT_OVERLAPPED = "threads did not overlap — not judged"

#: A load average at least this high means other work was running: numbers may show it.
BUSY_LOAD = 0.5

#: The version of the ``--json`` objects' shape: raised when a key changes meaning or goes.
JSON_SCHEMA = 1


#: ASCII stand-ins for the symbols gilx prints, where the output's encoding lacks them
#: (a cp1252 or ASCII console, a redirected file on Windows): a ✓ must not become the ``?``
#: that means "not judged".
_ASCII = {
    "\u2713": "yes", "\u2717": "no",  # check mark, ballot x
    "\u2014": "-", "\u2013": "-", "\u2500": "-", "\u2502": "|", "\u251c": "+", "\u2514": "+",
    "\u2026": "...", "\u2264": "<=", "\u2265": ">=", "\u00d7": "x", "\u00b5": "u",
    "\u2588": "#", "\u2592": "+", "\u2591": ".", "\u00b7": ".", "\u2192": "->",
}

#: The codec error handler every output stream of the CLI uses (:func:`safe_streams`).
ENCODE_ERRORS = "gilx-ascii"


def _ascii_stand_in(exc: UnicodeError) -> tuple[str, int]:
    """Replace what the stream cannot encode: a known symbol by its stand-in, the rest by ?."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = exc.object[exc.start : exc.end]
    return "".join(_ASCII.get(ch, "?") for ch in text), exc.end


codecs.register_error(ENCODE_ERRORS, _ascii_stand_in)


def safe_streams(*streams: object) -> None:
    """Make ``streams`` (text streams) replace what their encoding cannot hold, never raise."""
    for stream in streams:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue  # not a TextIOWrapper (a test's capture): it takes any text
        try:
            reconfigure(errors=ENCODE_ERRORS)
        except (ValueError, OSError):  # closed, or a wrapper that refuses
            continue


def json_text(result: dict[str, object]) -> str:
    """One ``--json`` object: its schema version and the machine it was measured on, then it."""
    return json.dumps({"schema": JSON_SCHEMA, "machine": machine.describe(), **result})


def plural(count: int, noun: str) -> str:
    """``1 thread`` / ``2 threads``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def percent(share: float | None) -> str:
    """``12%``, or ``?`` where the share could not be read."""
    return "?" if share is None else f"{share:.0%}"


def machine_line(workers: int | None, load: float | None) -> str:
    """Cores, interpreter, GIL state, workers, and how busy the machine already was."""
    gil = "on" if machine.gil_enabled() else "off"
    line = f"{machine.cores()} cores, {machine.python_description()}, GIL {gil}"
    if workers is not None:
        line += f", {workers} workers per measurement"
    if load is not None:
        line += f"\n1-minute load average {load:.2f} before measuring"
        if load >= BUSY_LOAD:
            line += ": other work may hold cores the workers need"
    return line


def busy_note(other_cpu: float | None) -> str:
    """How much of the workers' CPU time the rest of the machine took, in words."""
    if other_cpu is None:
        return CANNOT_METER
    return f"other processes took {other_cpu:.0%} of the CPU time the workers needed"


def why_not(judgement: Judgement) -> str:
    """Why a measurement is not judged, in words (its reasons, else how busy it was)."""
    return judgement.why() or busy_note(judgement.other_cpu)


def not_judged_line(judgement: Judgement, indent: str = "  ") -> str:
    """``not judged: <why>; ...``: what a result that gives no verdict prints instead."""
    return f"{indent}{NOT_JUDGED}: {why_not(judgement)}; run again on a quieter machine"


def flag(timing: Timing) -> str:
    """``~`` after a number whose repeats spread more than :data:`gilx.timing.SPREAD_LIMIT`."""
    return "~" if timing.unstable else ""


# ---------------------------------------------------------------------------
# gilx race
# ---------------------------------------------------------------------------
def race_not_judged(result: RaceResult) -> str:
    """Why a race that is not judged says nothing about lost updates."""
    return NOT_OVERLAPPED if not result.overlapped else NOT_JUDGED


def race_table(results: Sequence[RaceResult]) -> str:
    """The text of ``gilx race``: one line per counter, then the legend."""
    first = results[0]
    increments = first.expected // first.threads if first.threads else 0
    lines = [
        f"{first.threads} threads x {increments:,} increments on one shared counter",
        f"{'kind':<8}{'expected':>16}{'observed':>16}{'lost':>14}{'overlap':>9}{'others':>8}",
    ]
    for r in results:
        line = f"{r.kind:<8}{r.expected:>16,}{r.observed:>16,}"
        line += f"{r.lost:>14,}" if r.judged else f"{'-':>14}"
        line += f"{r.overlap:>9.0%}{percent(r.other_cpu):>8}"
        if not r.judged:
            line += f"  {race_not_judged(r)}"
        lines.append(line)
    lines.append(
        "overlap = how much the threads' increments ran at the same time, from when each"
        " ended (lost updates prove they overlapped, whatever it says);"
        " others = the share of the CPU the threads needed that other processes took"
    )
    if not all(r.judged for r in results):
        lines.append(
            "not judged: a race whose threads never ran together, or that other processes"
            f" disturbed (more than {DISTURBED_SHARE:.0%}), says nothing about lost"
            " updates; close other programs and run again"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# gilx scale
# ---------------------------------------------------------------------------
def scale_text(
    result: ScaleResult, summary: str, notes: Sequence[str], load: float | None
) -> str:
    """The text of ``gilx scale``: the curve, its legend, and the backend's and workload's
    ``notes``; ``summary``: the workload in words; ``load``: the load average before."""
    how = result.how or result.mode
    startup = any(p.startup is not None for p in result.points)
    lines = [
        f"machine: {machine_line(None, load)}",
        f"{result.workload}: {summary}",
        f"on {how}; {result.size:,} {result.unit} in total, split among the workers;"
        f" {plural(len(result.baseline.samples), 'repeat')}",
        "",
        f"{'workers':>7}  {'seconds: median (min..max)':<30}{'speedup':>8}{'efficiency':>12}"
        f"{'others':>8}" + ("   start-up" if startup else ""),
    ]
    for p in result.points:
        t = p.timing
        timing = f"{t.median:.4f} ({t.minimum:.4f}..{t.maximum:.4f}){' ~' if t.unstable else ''}"
        line = f"{p.workers:>7}  {timing:<30}{p.speedup:>7.2f}x{p.efficiency:>11.0%}"
        line += f"{percent(p.other_cpu):>7}{'!' if p.disturbed else ' '}"
        if p.startup is not None:
            line += f"  {p.startup:.3f} s"
        lines.append(line)
    lines += [
        "",
        "speedup = time of 1 worker doing all the work / time of k workers splitting it;"
        " efficiency = speedup / k",
    ]
    if any(p.timing.unstable for p in result.points) or result.baseline.unstable:
        lines.append(
            f"~ = repeats spread more than {SPREAD_LIMIT:.0%} of the median: a busy machine?"
        )
    lines.append(
        "others = the most of the CPU time the workers needed that other processes took during"
        " a repeat" + ("" if result.points[0].other_cpu is not None else " (? = unknown here)")
    )
    judgement = result.judgement
    if judgement.note is not None:
        lines.append(f"note: {judgement.note}")
    if result.disturbed:
        lines.append(
            f"! = {NOT_JUDGED}, even after re-measuring"
            + (" (the 1-worker baseline was disturbed too)" if result.baseline.disturbed else "")
            + ":"
        )
        for p in result.points:
            if p.disturbed and p.judgement is not None:
                lines.append(f"  {plural(p.workers, 'worker')}: {why_not(p.judgement)}")
    lines += notes
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# gilx probe
# ---------------------------------------------------------------------------
def probe_text(result: ProbeResult, hold_limit: float) -> str:
    """The text of ``gilx probe``: the evidence, then the verdict (held at least
    ``hold_limit`` of the time: holds) unless the probe was disturbed."""
    lines = [f"probe {result.callable}"]
    if not result.gil_enabled:
        lines.append(
            "  no GIL in this process (free-threaded build, GIL off): nothing to hold or release"
        )
    lines += [
        f"  GIL held {result.hold_fraction:.0%} of the time one thread spent making the calls",
        "    (a heartbeat thread asked for the GIL at random instants, one per ms: held or not)",
        f"  {result.workers} threads: {result.speedup:.2f}x the speed of 1 thread making the same"
        f" {result.calls * result.workers:,} calls",
    ]
    judgement = result.judged
    if judgement.metered:
        lines.append(
            f"  others: other processes took at most {percent(result.other_cpu)} of the CPU the"
            " threads needed"
        )
    else:
        lines.append(f"  note: {CANNOT_METER}")
    if result.disturbed:
        lines.append(not_judged_line(judgement))
    elif result.gil_enabled:
        if result.releases_gil:
            lines.append(
                f"  verdict: releases the GIL (held less than {hold_limit:.0%} of the time)"
            )
        else:
            lines.append(f"  verdict: holds the GIL (held at least {hold_limit:.0%} of the time)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# gilx watch --top: blame
# ---------------------------------------------------------------------------
#: How many holders, pairs and frames per stack the text shows (the JSON has all).
TOP_HOLDERS = 10
TOP_PAIRS = 10
TOP_THREADS = 12
STACK_LINES = 3


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms" if seconds >= 0.00095 else f"{seconds * 1e3:.3f} ms"


def _short_path(path: str) -> str:
    """A file as the text shows it: relative to the current folder when inside it, else
    its name (the JSON keeps the full path)."""
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return os.path.basename(path)
    return rel if not rel.startswith("..") else os.path.basename(path)


def _short_frame(frame: str) -> str:
    """``func (/long/path/file.py:12)`` as ``func (file.py:12)``."""
    head, sep, tail = frame.rpartition(" (")
    if not sep or not tail.endswith(")"):
        return frame
    path, colon, line = tail[:-1].rpartition(":")
    return f"{head} ({_short_path(path)}{colon}{line})" if colon else frame


def blame_text(blame: Blame | None, reason: str | None, stw_max: float, stw_p99: float) -> str:
    """The text of ``gilx watch --top`` after the run: per thread, the top holding
    locations with their stacks, and who made whom wait.  Without a blame, ``reason``
    says why in one line, and on a free-threaded build what the heartbeat saw instead
    (``stw_*``: its longest and p99 wait to re-attach, in seconds)."""
    if blame is None:
        line = f"blame: none — {reason or 'not recorded'}"
        if reason is not None and "free-threaded" in reason:
            line += (
                f"\n  instead: the heartbeat waited up to {_ms(stw_max)} (p99 {_ms(stw_p99)})"
                " to re-attach, the stop-the-world pauses (the GC's, ...) it ran into"
            )
        return line
    head = f"blame: who held the GIL ({blame.samples:,} sampled instants, one per"
    head += f" {blame.interval * 1e3:g} ms)"
    lines = [head]
    if not blame.judged:
        lines.append(f"  {NOT_JUDGED}: the heartbeat was disturbed; the shares below may be off")
    lines.append(
        f"  held while another thread waited: {_ms(blame.waiting_s)} of {blame.seconds:.3f} s"
    )
    # Threads that held or waited at least 0.05 % of the run, the rest summed up: a
    # program that starts hundreds of short threads would fill the screen with 0.0 %.
    ranked = sorted(blame.threads, key=lambda t: -(t.held_share + t.waited_share))
    shown = [t for t in ranked if max(t.held_share, t.waited_share) >= 0.0005][:TOP_THREADS]
    rest = [t for t in blame.threads if t not in shown]
    if shown:
        width = max(6, *(len(t.name) for t in shown))
        lines.append(
            f"  {'thread':<{width}}  {'native id':>9}  {'held':>6}  {'waited':>6}"
            f"  {'longest wait':>12}"
        )
        for t in shown:
            waited = f"{t.waited_share:>6.1%}" if t.waits_seen else f"{'?':>6}"
            longest = f"{_ms(t.longest_wait_s):>12}" if t.waits_seen else f"{'?':>12}"
            lines.append(
                f"  {t.name:<{width}}  {t.native_id:>9}  {t.held_share:>6.1%}  {waited}"
                f"  {longest}"
            )
    if rest:
        lines.append(
            f"  ... and {len(rest)} more threads (together: held"
            f" {sum(t.held_share for t in rest):.1%}, waited"
            f" {sum(t.waited_share for t in rest):.1%}; all of them in --json)"
        )
    if blame.holders:
        lines.append("  held the GIL while another thread waited (ms, share of all waiting):")
        for h in blame.holders[:TOP_HOLDERS]:
            where = f"{_short_path(h.file)}:{h.line}" if h.file else "no Python frame"
            lines.append(
                f"    {_ms(h.seconds):>12} {h.share:>4.0%}  {h.function} ({where})"
                f"  [{h.thread}]"
            )
            for frame in h.stack[1:STACK_LINES]:
                lines.append(f"{'':22}<- {_short_frame(frame)}")
    elif blame.waits_seen:
        lines.append("  no thread waited for the GIL while another held it")
    if blame.waits:
        lines.append("  who made whom wait (waiter <- holder):")
        for p in blame.waits[:TOP_PAIRS]:
            lines.append(f"    {p.waiter} <- {p.holder}: {_ms(p.seconds)}")
    if blame.unknown_share >= 0.005:
        lines.append(
            f"  {blame.unknown_share:.1%} of the held instants: a holder that could not be"
            " named (a thread that ended or started right then)"
        )
    lines += [f"  note: {n}" for n in blame.notes]
    return "\n".join(lines)


def blame_live(blame: Blame, rows: int = 5) -> list[str]:
    """The live view's lines (a terminal, about twice a second): the top holders and
    the threads waiting most."""
    lines = [
        f"gilx watch --top: {blame.seconds:6.1f} s, held while others waited"
        f" {_ms(blame.waiting_s)}"
    ]
    for function, thread, _seconds, share in blame.by_function()[:rows]:
        lines.append(f"  {share:>4.0%} {function} [{thread}]")
    waiting = sorted(blame.threads, key=lambda t: -t.waited_share)[:rows]
    if waiting and blame.waits_seen:
        lines.append(
            "  waiting: "
            + ", ".join(f"{t.name} {t.waited_share:.0%}" for t in waiting if t.waited_share)
        )
    return lines
