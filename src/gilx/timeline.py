"""Record which thread ran when: the data behind ``gilx timeline``.

Each of ``threads`` threads runs its share of a workload, all started behind
one barrier, and notes what it did on one clock (``_core.monotonic_ns``):

* ``gil`` / ``nogil``: the C kernel records every ~1 ms chunk itself
  (``_core.count_traced``: start, end and the CPU it ran on).  Time between a
  thread's chunks, and before its first one, is time it waited for the GIL.
* ``py``: the worker notes the time every ``PY_STEP`` loop iterations.  A step
  normally takes tens of microseconds; a step that took much longer than the
  usual one (``WAIT_FACTOR`` times the median) is counted as waiting: the
  thread was kept off the GIL (or off a core) for it.
* ``io``: each download is waiting (blocked in a socket read, GIL released);
  what lies between downloads is running.
* ``numpy`` / ``memory``: each ``np.dot`` / ``stream_sum`` pass is running
  (GIL released inside); gaps between them are waiting.

Nothing here patches the interpreter or preloads a library.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

from gilx import _core, workloads
from gilx._args import as_count
from gilx.pure import count_py

State = Literal["run", "wait"]

#: Pure-Python loop iterations between two time notes (~40 us on a 2020s core).
PY_STEP = 2_000
#: A step taking more than this many times the median step was waiting.
WAIT_FACTOR = 4.0
#: At most this many threads in one picture: each gets a row.
MAX_THREADS = 16
#: How long one thread's share runs alone, roughly; the picture spans about
#: ``threads`` times this for GIL-bound work and about this for parallel work.
DEFAULT_SECONDS = 0.25


@dataclass(frozen=True)
class Event:
    """One interval of one thread, in seconds from the common start."""

    thread: int
    start: float
    end: float
    state: State
    cpu: int | None = None  # where the platform says; None otherwise

    def to_dict(self) -> dict[str, float | int | str]:
        """The JSON event object of the README's reference (``cpu`` is not part of it)."""
        return {"thread": self.thread, "start": self.start, "end": self.end, "state": self.state}


@dataclass(frozen=True)
class Timeline:
    """Who ran when, for one run of ``workload`` on ``threads`` threads."""

    workload: str
    threads: int
    events: tuple[Event, ...]
    duration: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "duration", max((e.end for e in self.events), default=0.0))

    def to_dict(self) -> dict[str, object]:
        """The JSON object of ``timeline`` (the README's reference, JSON shapes)."""
        return {
            "workload": self.workload,
            "threads": self.threads,
            "events": [e.to_dict() for e in self.events],
        }

    def runs(self, thread: int | None = None) -> list[Event]:
        return [e for e in self.events if e.state == "run" and thread in (None, e.thread)]

    def overlap_seconds(self) -> float:
        """Seconds during which two or more threads were running at once."""
        edges: list[tuple[float, int]] = []
        for e in self.runs():
            edges += [(e.start, 1), (e.end, -1)]
        edges.sort(key=lambda edge: (edge[0], edge[1]))
        total, running, since = 0.0, 0, 0.0
        for time, step in edges:
            if running >= 2:
                total += time - since
            running += step
            since = time
        return total

    def handoffs(self) -> int:
        """How often one thread started running right after another stopped.

        Runs of one thread closer than ``_MERGE_GAP`` are merged first; a hand-off
        is a thread's run starting after a different thread's run ended, with no
        overlap between them (threads running side by side hand nothing over).
        """
        merged = sorted(_merge_runs(self.runs()), key=lambda e: e.start)
        count = 0
        for before, after in pairwise(merged):
            if after.thread != before.thread and after.start >= before.end:
                count += 1
        return count

    def longest_wait(self) -> Event | None:
        waits = [e for e in self.events if e.state == "wait"]
        return max(waits, key=lambda e: e.end - e.start, default=None)

    def cpus(self) -> list[int]:
        return sorted({e.cpu for e in self.runs() if e.cpu is not None and e.cpu >= 0})


#: Two runs of one thread closer than this are one run (a chunk boundary).
_MERGE_GAP = 50e-6


def _merge_runs(runs: list[Event]) -> list[Event]:
    merged: list[Event] = []
    for e in sorted(runs, key=lambda e: (e.thread, e.start)):
        last = merged[-1] if merged else None
        if last is not None and last.thread == e.thread and e.start - last.end <= _MERGE_GAP:
            merged[-1] = Event(last.thread, last.start, e.end, "run", last.cpu)
        else:
            merged.append(e)
    return merged


# ---------------------------------------------------------------------------
# Recording: one function per kind of work, each returning a thread's raw
# intervals as (start_ns, end_ns, state, cpu).
# ---------------------------------------------------------------------------

Raw = list[tuple[int, int, State, int | None]]
Recorder = Callable[[int], Raw]


def _gaps_as_waits(runs: Raw, start_ns: int) -> Raw:
    """Fill the time before and between ``runs`` with waits."""
    out: Raw = []
    last = start_ns
    for begin, end, state, cpu in sorted(runs):
        if begin > last:
            out.append((last, begin, "wait", None))
        out.append((begin, end, state, cpu))
        last = max(last, end)
    return out


def _c_recorder(release: bool, n: int) -> Recorder:
    def record(start_ns: int) -> Raw:
        _, chunks = _core.count_traced(n, release)
        runs: Raw = [(b, e, "run", cpu if cpu >= 0 else None) for b, e, cpu in chunks]
        return _gaps_as_waits(runs, start_ns)

    return record


def _py_recorder(n: int) -> Recorder:
    def record(start_ns: int) -> Raw:
        now = _core.monotonic_ns
        marks = [start_ns]
        cpus: list[int] = []
        for _ in range(max(1, n // PY_STEP)):
            count_py(PY_STEP)
            marks.append(now())
            cpus.append(_core.cpu_now())
        steps = [b - a for a, b in pairwise(marks)]
        usual = statistics.median(steps[1:] or steps)
        out: Raw = []
        for (a, b), cpu in zip(pairwise(marks), cpus, strict=True):
            waited = b - a > WAIT_FACTOR * usual
            out.append((a, b, "wait" if waited else "run", None if waited or cpu < 0 else cpu))
        return out

    return record


def _calls_recorder(calls: int, call: Callable[[], object], state: State) -> Recorder:
    """Each call is one interval of ``state``; the time between calls is the other state."""

    def record(start_ns: int) -> Raw:
        now = _core.monotonic_ns
        spans: Raw = []
        for _ in range(calls):
            begin = now()
            call()
            cpu = _core.cpu_now()
            spans.append((begin, now(), state, None if cpu < 0 else cpu))
        if state == "run":
            return _gaps_as_waits(spans, start_ns)
        out: Raw = []
        last = start_ns
        for begin, end, _, where in spans:
            if begin > last:
                out.append((last, begin, "run", where))
            out.append((begin, end, "wait", None))
            last = end
        return out

    return record


def _seconds_to_iterations(seconds: float) -> int:
    start = _core.monotonic_ns()
    _core.count_gil(1 << 22)
    per_iter = max(_core.monotonic_ns() - start, 1) / (1 << 22)
    return max(1 << 22, int(seconds * 1e9 / per_iter))


def _py_iterations(seconds: float) -> int:
    start = _core.monotonic_ns()
    count_py(50_000)
    per_iter = max(_core.monotonic_ns() - start, 1) / 50_000
    return max(PY_STEP * 10, int(seconds * 1e9 / per_iter))


def _recorder_factory(
    work: workloads.Workload, seconds: float
) -> tuple[Callable[[str], Recorder], AbstractContextManager[str]]:
    """(make a per-thread recorder given the server's endpoint, the server) for ``work``."""
    if work.trace == "kernel":
        n = _seconds_to_iterations(seconds)
        return (lambda _endpoint: _c_recorder(work.releases_gil, n)), nullcontext("")
    if work.trace == "python":
        n = _py_iterations(seconds)
        return (lambda _endpoint: _py_recorder(n)), nullcontext("")

    def make(endpoint: str) -> Recorder:
        one_call = work.prepare(work.call_unit, endpoint)
        calls = max(1, round(seconds / _time_one(one_call)))
        return _calls_recorder(calls, one_call, "wait" if work.io_bound else "run")

    return make, work.server()


def _time_one(call: Callable[[], object]) -> float:
    call()  # warm-up: first-touch, caches, JIT-free but not cold
    start = _core.monotonic_ns()
    call()
    return max(_core.monotonic_ns() - start, 1) / 1e9


def record(workload: str, threads: int = 2, seconds: float = DEFAULT_SECONDS) -> Timeline:
    """Run ``workload`` on ``threads`` threads, each for about ``seconds`` of work; record it."""
    work = workloads.get(workload)  # ValueError for an unknown name
    nthreads = as_count(threads, "threads", minimum=1)
    if nthreads > MAX_THREADS:
        raise ValueError(f"threads must be <= {MAX_THREADS}, got {nthreads}")
    if not 0 < seconds <= 60:
        raise ValueError(f"seconds must be in (0, 60], got {seconds}")
    make, server = _recorder_factory(work, seconds)
    with server as endpoint, work.context():
        recorders = [make(endpoint) for _ in range(nthreads)]
        raw = _run_together(recorders)
    origin = min((r[0][0] for r in raw if r), default=0)
    events = tuple(
        Event(i, (b - origin) / 1e9, (e - origin) / 1e9, state, cpu)
        for i, intervals in enumerate(raw)
        for b, e, state, cpu in intervals
        if e > b
    )
    return Timeline(workload=work.name, threads=nthreads, events=events)


def _run_together(recorders: list[Recorder]) -> list[Raw]:
    """Run each recorder on a thread of its own, all started at once (one repeat of a crew).

    The common start is taken just before the crew's barrier opens.
    """
    from gilx.backends.threads import ThreadCrew

    results: list[Raw] = [[] for _ in recorders]
    start_ns: list[int] = []

    def maker(i: int, recorder: Recorder) -> Callable[[], Callable[[], object]]:
        def run() -> None:
            results[i] = recorder(start_ns[0])

        return lambda: run

    with ThreadCrew([maker(i, r) for i, r in enumerate(recorders)]) as crew:
        start_ns.append(_core.monotonic_ns())
        crew.go()
    return results
