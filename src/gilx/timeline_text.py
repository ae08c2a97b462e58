"""Draw a :class:`~gilx.timeline.Timeline` as text, in the seed's style.

    Thread 0 │██████████████████████████··························│
    Thread 1 │··························██████████████████████████│
    Core 0   │00000000000000000000000000                          │
    Core 1   │                          11111111111111111111111111│

One row per thread over a common time axis (``█`` running, ``·`` waiting),
then, where CPU numbers are known, one row per core saying which thread ran
there (blank: idle).  A summary line follows.
"""

from __future__ import annotations

import textwrap

from gilx.timeline import Event, Timeline

RUN = "█"
WAIT = "·"
IDLE = " "
#: Narrowest drawing that still shows anything: label, borders, 10 columns.
MIN_WIDTH = 24
_LABEL = 9  # "Thread 10" / "Core 15  "
_NO_CPUS = "(no per-core rows: this platform does not say which CPU a thread ran on)"


def _coverage(events: list[Event], lo: float, hi: float) -> float:
    return sum(max(0.0, min(e.end, hi) - max(e.start, lo)) for e in events)


def _thread_row(timeline: Timeline, thread: int, columns: int, step: float) -> str:
    runs = [e for e in timeline.events if e.thread == thread and e.state == "run"]
    waits = [e for e in timeline.events if e.thread == thread and e.state == "wait"]
    cells = []
    for c in range(columns):
        lo, hi = c * step, (c + 1) * step
        ran, waited = _coverage(runs, lo, hi), _coverage(waits, lo, hi)
        if ran == 0 and waited == 0:
            cells.append(IDLE)
        else:
            cells.append(RUN if ran >= waited else WAIT)
    return "".join(cells)


def _core_row(timeline: Timeline, cpu: int, columns: int, step: float) -> str:
    runs = [e for e in timeline.runs() if e.cpu == cpu]
    cells = []
    for c in range(columns):
        lo, hi = c * step, (c + 1) * step
        by_thread: dict[int, float] = {}
        for e in runs:
            share = max(0.0, min(e.end, hi) - max(e.start, lo))
            if share > 0:
                by_thread[e.thread] = by_thread.get(e.thread, 0.0) + share
        if not by_thread or max(by_thread.values()) < step / 2:
            cells.append(IDLE)
        else:
            top = max(by_thread, key=lambda t: by_thread[t])
            cells.append(_thread_mark(top))
    return "".join(cells)


def _thread_mark(thread: int) -> str:
    return "0123456789abcdefghijklmnopqrstuvwxyz"[thread % 36]


def summary(timeline: Timeline) -> str:
    """One line: overlap, GIL hand-offs, the longest wait."""
    wait = timeline.longest_wait()
    longest = (
        f"longest wait {wait.end - wait.start:.3f} s (thread {wait.thread})"
        if wait is not None
        else "no waits"
    )
    return (
        f"overlap {timeline.overlap_seconds():.3f} s (2+ threads running) · "
        f"hand-offs {timeline.handoffs()} · {longest}"
    )


def draw(timeline: Timeline, width: int = 80) -> str:
    """The whole picture, every line at most ``width`` characters wide."""
    if width < MIN_WIDTH:
        raise ValueError(f"width must be >= {MIN_WIDTH}, got {width}")
    columns = width - _LABEL - 3  # label, space, two borders
    duration = timeline.duration or 1e-9
    step = duration / columns
    header = (
        f"{timeline.workload}, {timeline.threads} thread(s), {duration:.3f} s; "
        f"one column = {step * 1e3:.2f} ms; {RUN} running, {WAIT} waiting"
    )
    lines = textwrap.wrap(header, width)
    for t in range(timeline.threads):
        lines.append(f"{f'Thread {t}':<{_LABEL}} │{_thread_row(timeline, t, columns, step)}│")
    cpus = timeline.cpus()
    for cpu in cpus:
        lines.append(f"{f'Core {cpu}':<{_LABEL}} │{_core_row(timeline, cpu, columns, step)}│")
    if not cpus:
        lines += textwrap.wrap(_NO_CPUS, width)
    lines += textwrap.wrap(summary(timeline), width)
    return "\n".join(lines)
