"""Presentation: the words and tables every command prints, in one place.

The shared words (``NOT_JUDGED``, :func:`busy_note`, :func:`flag`,
:func:`machine_line`), the ``--json`` envelope (:func:`json_text`), and the
text of ``gilx race``, ``gilx scale``, ``gilx probe`` and ``gilx table``, the
tour's words for its results (:class:`Report` keeps its sections) and what a
worker costs: the results' ``render()`` methods call the functions here, and
the CLI only prints what they return.  (The convoy still renders itself with
the same words.)

This module imports nothing that measures, only the words it needs from
:mod:`gilx.machine` and :mod:`gilx.timing`, so any result's ``render()`` may
import it without an import circle; the results it renders are types here only.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gilx import machine
from gilx._judgement import CANNOT_METER, Judgement
from gilx.timing import DISTURBED_SHARE, SPREAD_LIMIT, Timing

if TYPE_CHECKING:
    from gilx._blame import Blame
    from gilx._convoy import ConvoyResult
    from gilx._costs import Costs
    from gilx._probe import ProbeResult
    from gilx._race import RaceResult
    from gilx._table import Table
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
    "\u2713": "yes",
    "\u2717": "no",  # check mark, ballot x
    "\u2014": "-",
    "\u2013": "-",
    "\u2500": "-",
    "\u2502": "|",
    "\u251c": "+",
    "\u2514": "+",
    "\u2026": "...",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u00d7": "x",
    "\u00b5": "u",
    "\u2588": "#",
    "\u2592": "+",
    "\u2591": ".",
    "\u00b7": ".",
    "\u2192": "->",
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


#: What underlines a section's title in the tour.
RULE = "─"


class Report:
    """Text made as it is measured: lines under section titles (the tour's).

    Call it with a line; :meth:`heading` starts a section.  With ``echo`` each
    line is also passed on as it comes (printed), headings as the title over its
    rule; :meth:`sections` is what ``--json`` shows, recorded as it was made,
    never parsed back from the printed text.
    """

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self._echo = echo or (lambda _line: None)
        self._sections: list[tuple[str, list[str]]] = [("", [])]

    def __call__(self, line: str) -> None:
        self._sections[-1][1].append(line)
        self._echo(line)

    def heading(self, title: str) -> None:
        self._sections.append((title, []))
        for line in ("", title, RULE * len(title)):
            self._echo(line)

    def sections(self) -> list[dict[str, object]]:
        """``[{"title", "lines"}]``; the lines before the first heading are titled ``""``."""
        found: list[dict[str, object]] = []
        for title, lines in self._sections:
            body = list(lines)
            while body and body[-1] == "":
                body.pop()
            found.append({"title": title, "lines": body})
        return found

    def text(self) -> str:
        """Everything so far, as it was echoed."""
        parts = []
        for title, lines in self._sections:
            if title:
                parts += ["", title, RULE * len(title)]
            parts += lines
        return "\n".join(parts)


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


def times(value: float) -> str:
    """A speedup or a ratio: ``1.95x``."""
    return f"{value:.2f}x"


def ms(seconds: float) -> str:
    """``6.23 ms``."""
    return f"{seconds * 1e3:.2f} ms"


def median_text(timing: Timing) -> str:
    """A timing's median, ``0.152 s`` or ``9.841 ms``, with ``~`` when its repeats spread."""
    median = timing.median
    shown = f"{median:.3f} s" if median >= 0.01 else f"{median * 1000:.3f} ms"
    return f"{shown}{flag(timing)}"


def scaling_lines(result: ScaleResult, workers: int, one: str, many: str) -> list[str]:
    """The tour's two lines of a scaling run: 1 worker (``one``: "1 thread:"), then
    ``workers`` (``many``) with the speedup, or why it is not judged."""
    point = result.point(workers)
    width = max(14, len(many) + 1)
    total = f"({result.size:,} {result.unit} in total)"
    busy = f"  [{NOT_JUDGED}]" if point.disturbed else ""
    return [
        f"  {one:<{width}}{median_text(result.baseline):<10}  {total}",
        f"  {many:<{width}}{median_text(point.timing):<10}  speedup {times(point.speedup)}{busy}",
    ]


def per_call_line(label: str, result: ConvoyResult) -> str:
    """A convoy of per-call work: its calls' p50 and p99, alone and beside the busy thread."""
    assert result.latency is not None
    a, b = result.latency.alone, result.latency.beside
    return (
        f"  {label:<8}per call p50 {ms(a.p50)} alone, {ms(b.p50)} beside"
        f" (p99 {ms(a.p99)} -> {ms(b.p99)}){flag(result.beside_timing)}"
    )


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
def scale_text(result: ScaleResult, summary: str, notes: Sequence[str], load: float | None) -> str:
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
# what a worker costs: a process against an interpreter (the tour, gilx._costs)
# ---------------------------------------------------------------------------
def seconds_short(seconds: float) -> str:
    """``2.81 ms``, ``48 µs``, ``0.312 s``: a short time in the unit that reads best."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def size_text(size: int) -> str:
    """``1 KiB``, ``64 KiB``, ``1 MiB``, ``5.6 MiB``."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


def ratio_text(ratio: float | None) -> str:
    return "?" if ratio is None else f"{ratio:.2f}x"


def costs_table(costs: Costs) -> list[str]:
    """What one worker costs, a process beside an interpreter, with the ratio process/interp."""

    def memory(value: int | None) -> str:
        return "? (no /proc here)" if value is None else size_text(value)

    rows = [
        (
            "start-up",
            seconds_short(costs.startup_process),
            seconds_short(costs.startup_interpreter),
            ratio_text(costs.startup_ratio),
        ),
        (
            "memory",
            memory(costs.memory_process),
            memory(costs.memory_interpreter),
            ratio_text(costs.memory_ratio),
        ),
    ]
    rows += [
        (
            f"{size_text(p.size)} round trip",
            seconds_short(p.process),
            seconds_short(p.interpreter),
            ratio_text(p.ratio),
        )
        for p in costs.passing
    ]
    lines = [f"  {'one worker':<20}{'process':>12}{'interpreter':>14}{'ratio':>9}"]
    lines += [f"  {a:<20}{b:>12}{c:>14}{d:>9}" for a, b, c, d in rows]
    lines += [
        f"  (process: start method {costs.start_method}; ratio = process / interpreter, above 1"
        " the interpreter is cheaper)",
        "  start-up: to ready to run gilx's work; memory: what one more worker adds (a"
        " process's private",
        "  resident memory, an interpreter's share of this process's growth); round trip: a"
        " bytes payload",
        "  out and back, pickled over a pipe for a process, copied through the interpreters'"
        " own queues.",
    ]
    return lines


# ---------------------------------------------------------------------------
# the table (gilx table, the tour's section 12)
# ---------------------------------------------------------------------------
def gain_mark(value: float | None, threshold: float) -> str:
    """✓ for a gain (at least ``threshold``), ✗ for none, N/A for a cell not measured."""
    if value is None:
        return "N/A"
    return "✓" if value >= threshold else "✗"


def table_cell(value: float | None, disturbed: bool, unstable: bool, threshold: float) -> str:
    """``✓ 1.80x``, ``? 1.09x`` (disturbed: not judged), ``N/A``; ``~`` when unsteady."""
    if value is None:
        return "N/A"
    sign = "?" if disturbed else gain_mark(value, threshold)
    return f"{sign} {value:.2f}x{'~' if unstable else ''}"


def table_text(table: Table, threshold: float) -> str:
    """The table as text: header, legend, the cells, where it disagrees with the seed, and
    the cells not judged with why; ``threshold``: the speedup that counts as a gain."""
    gil = "on" if table.gil_enabled else "off"
    k = table.workers
    lines = [
        "GIL and Hardware Utilization (measured now)",
        f"machine: {table.cpu_count} cores, {table.python}, GIL {gil}"
        + (
            f"; 1-minute load average {table.load_average:.2f} before measuring"
            if table.load_average is not None
            else ""
        ),
        f"threading / multiprocessing: speedup of {k} workers over 1 worker"
        " doing the same total work",
        f"  (processes: start method {table.start_method}; start-up not counted)",
        f"interpreters: {k} subinterpreters (each with its own GIL) over 1, in one process"
        + (
            f" [{table.interpreters_missing}]"
            if table.interpreters_missing
            else " (N/A: NumPy refuses to load in one)"
        ),
        "numpy: times faster than pure Python for the same computation, both on one core",
        "  (a matrix product; the sum of a large buffer's words)",
        f"asyncio: {k} tasks on one event loop over 1 task, the same downloads (I/O only)",
        f"✓ = at least {threshold:.1f}x, ✗ = less; ~ = repeats spread more than 10 %",
        f"? = {NOT_JUDGED}, even after re-measuring: other processes used the cores"
        " the workers needed, the speedup was unstable, or the machine did not give the"
        " cores (reasons below)",
        *([f"note: {table.note}"] if table.note else []),
        "",
    ]
    header = (
        f"{'Task Type':<28}{'Threading':<14}{'Multiprocessing':<18}{'Interpreters':<15}"
        f"{'NumPy':<12}{'Asyncio':<10}"
    )
    lines += [header, "─" * len(header)]
    disagreements: list[str] = []
    not_judged: list[str] = []
    judged_seed_cells = 0
    names = ("threading", "multiprocessing", "numpy")
    for r in table.rows:
        texts = [r.cell_text(i) for i in range(3)] + [r.asyncio_text()]
        lines.append(
            f"{r.label:<28}{texts[0]:<14}{texts[1]:<18}{r.interpreters_text():<15}"
            f"{texts[2]:<12}{texts[3]:<10}".rstrip()
        )
        for i, name in enumerate(names):
            value = r.cells[i]
            if value is None:
                continue
            if r.disturbed[i]:
                not_judged.append(
                    f"  {r.label}, {name}: {value:.2f}x, {NOT_JUDGED}"
                    f" ({r.reasons[i] or busy_note(r.other_cpu[i])})"
                )
                continue
            if r.seed is not None:
                judged_seed_cells += 1
            if r.seed is not None and r.seed[i] != gain_mark(value, threshold):
                disagreements.append(
                    f"  {r.label}, {name}: the seed says {r.seed[i]}, measured"
                    f" {gain_mark(value, threshold)} {value:.2f}x"
                )
        if r.interpreters is not None and r.interpreters_disturbed:
            not_judged.append(
                f"  {r.label}, interpreters: {r.interpreters:.2f}x, {NOT_JUDGED}"
                f" ({r.interpreters_reason or busy_note(r.interpreters_other_cpu)})"
            )
        if r.asyncio is not None and r.asyncio_disturbed:
            not_judged.append(
                f"  {r.label}, asyncio: {r.asyncio:.2f}x, {NOT_JUDGED}"
                f" ({r.reasons[3] or busy_note(r.asyncio_other_cpu)})"
            )
    lines.append("")
    if disagreements:
        lines.append("Where this machine disagrees with the seed:")
        lines += disagreements
    elif not_judged and judged_seed_cells == 0:
        lines.append("No seed cell could be judged: every one was measured while disturbed.")
    elif not_judged:
        lines.append("Every seed cell judged here agrees with this machine's measurements.")
    else:
        lines.append("Every seed cell agrees with this machine's measurements.")
    if not_judged:
        lines.append("Not judged (run again on a quieter machine):")
        lines += not_judged
    return "\n".join(lines)


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
                f"  {t.name:<{width}}  {t.native_id:>9}  {t.held_share:>6.1%}  {waited}  {longest}"
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
                f"    {_ms(h.seconds):>12} {h.share:>4.0%}  {h.function} ({where})  [{h.thread}]"
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
        f"gilx watch --top: {blame.seconds:6.1f} s, held while others waited {_ms(blame.waiting_s)}"
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
