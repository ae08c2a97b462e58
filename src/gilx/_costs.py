"""What a worker costs: a process against a subinterpreter, measured in the same run.

Three costs a user chooses by, each measured for both kinds of worker here:

* **start-up**: from asking for one worker to it being ready to run gilx's
  work (a process: started with this platform's start method, its first
  message back; an interpreter: created, ``gilx.workloads`` imported in it);
* **memory**: what one more worker adds to the memory in use: a process's
  private resident memory (its USS, from ``/proc/PID/smaps_rollup``; what a
  forked child shares with its parent is not counted), an interpreter's share
  of the growth of this process's resident set (``/proc/self/statm``) when
  :data:`MEMORY_WORKERS` of them are made.  None where /proc cannot say;
* **passing data**: one round trip of a bytes payload, out to the worker and
  back, per size in :data:`PAYLOADS`: pickled over a pipe for a process, the
  interpreters' own queues (channels on 3.12) for an interpreter.

Each figure is the median of its repeats.  The ratios are the process's cost
over the interpreter's: above 1, the interpreter is the cheaper.  A leaf of
the measuring side: it returns data; :func:`gilx._present.costs_text` makes
the text.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import textwrap
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gilx.backends.interpreters import BytesQueue, Interpreter, require
from gilx.backends.processes import resolve_start_method
from gilx.timing import clock

#: The payload sizes whose round trips are timed (bytes).
PAYLOADS: tuple[int, ...] = (1024, 64 * 1024, 1024 * 1024)
#: Workers made at once to measure the memory one adds.
MEMORY_WORKERS = 4


@dataclass(frozen=True)
class Passing:
    """One payload size: seconds per round trip, for a process and for an interpreter."""

    size: int
    process: float
    interpreter: float

    @property
    def ratio(self) -> float:
        """The process's round trip over the interpreter's (above 1: the interpreter is faster)."""
        return self.process / self.interpreter


@dataclass(frozen=True)
class Costs:
    """What one worker costs, as a process (``start_method``) and as an interpreter."""

    start_method: str
    startup_process: float  # seconds, median
    startup_interpreter: float
    memory_process: int | None  # bytes, median; None: not measurable here
    memory_interpreter: int | None
    passing: tuple[Passing, ...]

    @property
    def startup_ratio(self) -> float:
        return self.startup_process / self.startup_interpreter

    @property
    def memory_ratio(self) -> float | None:
        if not self.memory_process or not self.memory_interpreter:
            return None
        return self.memory_process / self.memory_interpreter

    def to_dict(self) -> dict[str, object]:
        return {
            "start_method": self.start_method,
            "startup": {
                "processes": self.startup_process,
                "interpreters": self.startup_interpreter,
                "ratio": self.startup_ratio,
            },
            "memory": {
                "processes": self.memory_process,
                "interpreters": self.memory_interpreter,
                "ratio": self.memory_ratio,
            },
            "passing": [
                {
                    "bytes": p.size,
                    "processes": p.process,
                    "interpreters": p.interpreter,
                    "ratio": p.ratio,
                }
                for p in self.passing
            ],
        }


# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------
def _process_echo(conn: Any) -> None:
    """A worker process: ready once gilx's work is importable, then echo what it receives."""
    import gilx.workloads  # noqa: F401  (what a worker of --mode processes imports)

    conn.send("ready")
    while True:
        data = conn.recv()
        if data is None:
            return
        conn.send(data)


class _Process:
    def __init__(self, ctx: Any) -> None:
        self.parent, child = ctx.Pipe()
        self.process = ctx.Process(target=_process_echo, args=(child,), daemon=True)
        self.process.start()
        child.close()
        assert self.parent.recv() == "ready"

    def round_trip(self, data: bytes) -> None:
        self.parent.send(data)  # pickled, written to the pipe, read and unpickled there
        back = self.parent.recv()
        assert len(back) == len(data)

    def close(self) -> None:
        try:
            self.parent.send(None)
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()
        self.parent.close()


# ---------------------------------------------------------------------------
# interpreters
# ---------------------------------------------------------------------------
_ECHO = textwrap.dedent(
    """
    while True:
        data = inbox_get()
        if not data:
            break
        outbox_put(data)
    """
)


class _Interp:
    def __init__(self) -> None:
        self.interp = Interpreter()
        self.interp.run("import gilx.workloads")
        self._echo: threading.Thread | None = None

    def start_echo(self) -> None:
        self.inbox, self.outbox = BytesQueue(), BytesQueue()
        self.inbox.bind(self.interp, "inbox")
        self.outbox.bind(self.interp, "outbox")
        self._echo = threading.Thread(target=self.interp.run, args=(_ECHO,), daemon=True)
        self._echo.start()

    def round_trip(self, data: bytes) -> None:
        self.inbox.put(data)  # copied across, no pickling
        back = self.outbox.get()
        assert len(back) == len(data)

    def close(self) -> None:
        if self._echo is not None:
            self.inbox.put(b"")
            self._echo.join()
            self.inbox.close()
            self.outbox.close()
        self.interp.close()


# ---------------------------------------------------------------------------
# the measurements
# ---------------------------------------------------------------------------
def _median_seconds(make: Callable[[], Any], repeats: int) -> float:
    """The median time ``make()`` takes; each worker it makes is closed untimed."""
    times = []
    for _ in range(repeats):
        start = clock()
        worker = make()
        times.append(clock() - start)
        worker.close()
    return statistics.median(times)


def _private_bytes(pid: int) -> int | None:
    """A process's private resident memory (USS), from /proc; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return None
    try:
        kib = sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty"))
    except (KeyError, ValueError):
        return None
    return kib * 1024


def _resident_bytes() -> int | None:
    """This process's resident set (Linux: /proc/self/statm); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _memory_process(ctx: Any) -> int | None:
    workers = [_Process(ctx) for _ in range(MEMORY_WORKERS)]
    try:
        sizes = [_private_bytes(w.process.pid) for w in workers]
    finally:
        for w in workers:
            w.close()
    known = [s for s in sizes if s is not None]
    return int(statistics.median(known)) if known else None


def _memory_interpreter() -> int | None:
    before = _resident_bytes()
    workers = [_Interp() for _ in range(MEMORY_WORKERS)]
    after = _resident_bytes()
    for w in workers:
        w.close()
    if before is None or after is None:
        return None
    return max(0, after - before) // MEMORY_WORKERS


def _round_trips(worker: Any, size: int, repeats: int) -> float:
    data = os.urandom(size)
    worker.round_trip(data)  # the first one warms up both ends
    times = []
    for _ in range(repeats):
        start = clock()
        worker.round_trip(data)
        times.append(clock() - start)
    return statistics.median(times)


def measure(
    *,
    quick: bool = False,
    start_method: str | None = None,
    sizes: Sequence[int] = PAYLOADS,
) -> Costs:
    """Measure what a process and an interpreter cost here (both in this run).

    ValueError on a Python without per-interpreter GILs (before 3.12);
    :class:`gilx.MissingExtra` on 3.13 without the ``interpreters`` extra.
    """
    require()
    method = resolve_start_method(start_method)
    ctx = multiprocessing.get_context(method)
    repeats = 5 if quick else 15
    startup_process = _median_seconds(lambda: _Process(ctx), repeats)
    startup_interpreter = _median_seconds(_Interp, repeats)
    memory_process = _memory_process(ctx)
    memory_interpreter = _memory_interpreter()
    trips = 20 if quick else 100
    process, interp = _Process(ctx), _Interp()
    try:
        interp.start_echo()
        passing = tuple(
            Passing(size, _round_trips(process, size, trips), _round_trips(interp, size, trips))
            for size in sizes
        )
    finally:
        process.close()
        interp.close()
    return Costs(
        method,
        startup_process,
        startup_interpreter,
        memory_process,
        memory_interpreter,
        passing,
    )
