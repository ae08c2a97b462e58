"""Run work on k threads or k processes, started together, and time it.

This is the only module that starts workers and reads clocks.  Its rules:

* **Speedup** is defined once, in :func:`speedup`: the time of one worker doing
  the whole work divided by the time of ``k`` workers splitting the same work
  (strong scaling).  **Efficiency** is ``speedup / k`` (:func:`efficiency`).
* Every worker prepares its share first (arrays, buffers: untimed), then all
  wait at a barrier; one repeat's time runs from the first worker leaving the
  barrier to the last one finishing.  ``time.perf_counter`` is a system-wide
  monotonic clock on Linux, macOS and Windows, so the stamps of different
  processes compare.
* Each measurement is repeated inside the same workers; the report is the
  median with the spread (max - min) / median, flagged above :data:`SPREAD_LIMIT`.
* Processes use an explicit start method (the platform's default unless told
  otherwise) and a module-level target that names its workload, so fork,
  forkserver and spawn all work.  Starting them (until every worker is ready
  at the barrier) is timed separately from the work and reported as ``startup``.
"""

from __future__ import annotations

import math
import multiprocessing
import queue
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gilx import workloads

MODES: tuple[str, ...] = ("threads", "processes")
_SINGULAR = {"threads": "thread", "processes": "process"}

#: A measurement whose repeats spread more than this (relative to the median) is flagged.
SPREAD_LIMIT = 0.10

#: One worker doing the whole work should take about this long (seconds).
QUICK_SECONDS = 0.15
FULL_SECONDS = 0.6
QUICK_REPEATS = 3
FULL_REPEATS = 5

#: More workers than this is a mistake, not an experiment.
MAX_WORKERS = 256

#: How long a worker waits at the barrier for the others before giving up (seconds).
BARRIER_TIMEOUT = 300.0

clock = time.perf_counter


def speedup(one_worker_seconds: float, k_workers_seconds: float) -> float:
    """THE definition: one worker's time for the whole work / k workers' time for the same work."""
    return one_worker_seconds / k_workers_seconds if k_workers_seconds > 0 else math.inf


def efficiency(speedup_: float, workers: int) -> float:
    """Speedup per worker: 1.0 is perfect scaling."""
    return speedup_ / workers


def split(total: int, workers: int) -> list[int]:
    """``total`` units in ``workers`` shares that differ by at most one and add up to ``total``."""
    base, extra = divmod(total, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one thing, in seconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def maximum(self) -> float:
        return max(self.samples)

    @property
    def spread(self) -> float:
        """(max - min) / median: 0.05 means the repeats lie within 5 % of the median."""
        median = self.median
        return (self.maximum - self.minimum) / median if median > 0 else 0.0

    @property
    def unstable(self) -> bool:
        return self.spread > SPREAD_LIMIT


@dataclass(frozen=True)
class Run:
    """One measurement: ``workers`` workers sharing ``total`` units, ``repeats`` times.

    ``spans`` holds each repeat's (start, end) on the ``perf_counter`` clock;
    ``startup`` is, for processes, the seconds from launching them to all
    being ready at the barrier, their shares prepared (None for threads).
    """

    workers: int
    total: int
    spans: tuple[tuple[float, float], ...]
    startup: float | None = None

    @property
    def timing(self) -> Timing:
        return Timing(tuple(end - start for start, end in self.spans))


class Job(Protocol):
    """What the thread runner needs: build the callable that does ``share`` units."""

    def prepare(self, share: int, param: str, /) -> Callable[[], object]: ...


def _spans(
    stamps: Sequence[tuple[int, float, float]], repeats: int
) -> tuple[tuple[float, float], ...]:
    spans = []
    for r in range(repeats):
        mine = [(t0, t1) for (rep, t0, t1) in stamps if rep == r]
        spans.append((min(t0 for t0, _ in mine), max(t1 for _, t1 in mine)))
    return tuple(spans)


def _check(workers: int, repeats: int, total: int) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")


def run_threads(job: Job, total: int, workers: int, repeats: int = 1, param: str = "") -> Run:
    """Run ``job`` on ``workers`` threads sharing ``total`` units, ``repeats`` times."""
    _check(workers, repeats, total)
    barrier = threading.Barrier(workers, timeout=BARRIER_TIMEOUT)
    stamps: list[tuple[int, float, float]] = []
    errors: list[BaseException] = []

    def work(share: int) -> None:
        try:
            run = job.prepare(share, param)
            for r in range(repeats):
                barrier.wait()
                start = clock()
                run()
                stamps.append((r, start, clock()))
        except threading.BrokenBarrierError:
            pass  # another worker failed first; its error is the one to report
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=work, args=(share,), name=f"gilx-worker-{i}", daemon=True)
        for i, share in enumerate(split(total, workers))
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except BaseException:
        barrier.abort()  # e.g. Ctrl-C: free the workers waiting at the barrier
        raise
    if errors:
        raise errors[0]
    if not stamps:
        raise RuntimeError("no worker finished (barrier broken)")
    return Run(workers, total, _spans(stamps, repeats))


def _process_worker(
    name: str,
    share: int,
    param: str,
    repeats: int,
    barrier: Any,
    results: Any,
    index: int,
) -> None:
    """The target of every worker process: module level, so any start method can find it."""
    try:
        workload = workloads.get(name)
        with workload.context():
            run = workload.prepare(share, param)
            results.put(("ready", index, clock()))
            for r in range(repeats):
                barrier.wait()
                start = clock()
                run()
                results.put(("run", r, start, clock()))
    except threading.BrokenBarrierError:
        pass
    except BaseException as exc:
        results.put(("error", index, f"{type(exc).__name__}: {exc}"))
        barrier.abort()


def default_start_method() -> str:
    """The platform's default start method (fork on Linux before 3.14, spawn on macOS/Windows)."""
    return multiprocessing.get_context().get_start_method()


def start_methods() -> list[str]:
    return multiprocessing.get_all_start_methods()


def _start_method(requested: str | None) -> str:
    """``requested``, or the platform's default; ValueError if this platform lacks it."""
    method = requested or default_start_method()
    if method not in start_methods():
        raise ValueError(
            f"start method must be one of {', '.join(start_methods())}; got {method!r}"
        )
    return method


def run_processes(
    workload: str,
    total: int,
    workers: int,
    repeats: int = 1,
    param: str = "",
    start_method: str | None = None,
) -> Run:
    """Run the named workload on ``workers`` processes sharing ``total`` units, repeatedly."""
    _check(workers, repeats, total)
    workloads.get(workload)  # fail here, not in a child
    method = _start_method(start_method)
    # typeshed types a context chosen by a runtime string as BaseContext, without .Process
    ctx: Any = multiprocessing.get_context(method)
    barrier = ctx.Barrier(workers, timeout=BARRIER_TIMEOUT)
    results = ctx.Queue()
    launched = clock()
    procs = [
        ctx.Process(
            target=_process_worker,
            args=(workload, share, param, repeats, barrier, results, i),
            name=f"gilx-worker-{i}",
            daemon=True,
        )
        for i, share in enumerate(split(total, workers))
    ]
    ready: list[float] = []
    stamps: list[tuple[int, float, float]] = []
    try:
        for p in procs:
            p.start()
        while len(stamps) < workers * repeats:
            try:
                message = results.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"worker process {dead[0].name} died (exit code {dead[0].exitcode})"
                    ) from None
                continue
            if message[0] == "error":
                raise RuntimeError(f"worker process {message[1]} failed: {message[2]}")
            if message[0] == "ready":
                ready.append(message[2])
            else:
                stamps.append((message[1], message[2], message[3]))
    finally:
        barrier.abort()  # frees any worker still waiting, after an error or Ctrl-C
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
        results.close()
        results.join_thread()
    return Run(workers, total, _spans(stamps, repeats), startup=max(ready) - launched)


def time_call(fn: Callable[[], object], repeats: int) -> Timing:
    """Time ``fn()`` in this thread, ``repeats`` times."""
    samples = []
    for _ in range(repeats):
        start = clock()
        fn()
        samples.append(clock() - start)
    return Timing(tuple(samples))


def calibrate(make: Callable[[int], Callable[[], object]], start_size: int, target: float) -> int:
    """The size at which ``make(size)()`` takes about ``target`` seconds on this machine.

    Grows the size until one run takes at least a quarter of the target, then
    scales linearly (every size here is in units linear in the cost).
    """
    size = max(1, start_size)
    elapsed = 0.0
    for _ in range(60):
        fn = make(size)
        start = clock()
        fn()
        elapsed = clock() - start
        if elapsed >= target / 4:
            break
        grow = min(100.0, (target / 2) / max(elapsed, 1e-6))
        size = max(size + 1, int(size * grow))
    return max(1, round(size * target / max(elapsed, 1e-9)))


class Heartbeat:
    """A thread that asks for the GIL every ``interval`` seconds and records how late it gets it.

    It sleeps between knocks (``time.sleep`` releases the GIL), so it holds the
    GIL only for the few microseconds of one loop step: it measures without
    competing.  A knock that wakes while another thread holds the GIL must wait
    for it; that wait shows up as the knock's *overshoot*, its time past
    ``interval``.  (gilknocker's idea, in pure Python.)
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.beats: list[tuple[float, float]] = []  # (asked at, got it at)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="gilx-heartbeat", daemon=True)

    def _beat(self) -> None:
        interval, beats, stop = self.interval, self.beats, self._stop
        while not stop.is_set():
            asked = clock()
            time.sleep(interval)
            beats.append((asked, clock()))

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def overshoots(self, begin: float = -math.inf, end: float = math.inf) -> list[float]:
        """How late each knock asked between ``begin`` and ``end`` woke up, in seconds."""
        return [got - asked - self.interval for asked, got in self.beats if begin <= asked < end]

    @staticmethod
    def idle_overshoot(beats: int = 40, interval: float = 0.001) -> float:
        """The median overshoot with nothing else running: the sleep's own lateness."""
        with Heartbeat(interval) as heart:
            while len(heart.beats) < beats:
                time.sleep(interval * beats / 4)
        return statistics.median(heart.overshoots())


def held_fraction(heart: Heartbeat, spans: Sequence[tuple[float, float]], idle: float) -> float:
    """The fraction of the ``spans`` during which the heartbeat waited for the GIL.

    Each knock's overshoot beyond the idle overshoot is time the GIL was held
    by someone else.  Capped to [0, 1].
    """
    waited = 0.0
    for begin, end in spans:
        waited += sum(max(0.0, late - idle) for late in heart.overshoots(begin, end))
    length = sum(end - begin for begin, end in spans)
    return min(1.0, waited / length) if length > 0 else 0.0


@dataclass(frozen=True)
class ScalePoint:
    """One point of a scaling curve."""

    workers: int
    timing: Timing
    speedup: float
    startup: float | None = None

    @property
    def seconds(self) -> float:
        return self.timing.median

    @property
    def efficiency(self) -> float:
        return efficiency(self.speedup, self.workers)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "workers": self.workers,
            "seconds": self.seconds,
            "speedup": self.speedup,
            "efficiency": self.efficiency,
        }


@dataclass(frozen=True)
class ScaleResult:
    """A scaling curve: the same total work (``size`` units) on each worker count."""

    workload: str
    mode: str
    size: int
    unit: str
    start_method: str | None
    baseline: Timing
    points: tuple[ScalePoint, ...] = field(default_factory=tuple)

    def point(self, workers: int) -> ScalePoint:
        for p in self.points:
            if p.workers == workers:
                return p
        raise KeyError(workers)

    def to_dict(self) -> dict[str, object]:
        """The JSON object of ``scale`` (the README's reference, JSON shapes)."""
        return {
            "workload": self.workload,
            "mode": self.mode,
            "results": [p.to_dict() for p in self.points],
        }


def _round_up_to(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def scale(
    workload: str,
    mode: str = "threads",
    workers: Sequence[int] = (1, 2),
    *,
    quick: bool = False,
    size: int | None = None,
    repeats: int | None = None,
    start_method: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScaleResult:
    """Measure ``workload`` on each worker count in ``workers`` (threads or processes).

    The total work is calibrated so one worker takes about
    :data:`QUICK_SECONDS` (``quick``) or :data:`FULL_SECONDS`, unless ``size``
    is given; one worker doing all of it is always measured, as the baseline
    every speedup divides.
    """
    job = workloads.get(workload)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    counts = sorted(set(workers))
    if not counts:
        raise ValueError("workers must name at least one worker count")
    for k in counts:
        _check(k, 1, 0)
    method = _start_method(start_method) if mode == "processes" else None
    nrepeats = repeats if repeats is not None else (QUICK_REPEATS if quick else FULL_REPEATS)
    say = progress or (lambda _message: None)

    with job.session() as param, job.context():
        if size is None:
            say(f"calibrating {workload}")
            total = calibrate(
                lambda s: job.prepare(s, param),
                job.start_size,
                QUICK_SECONDS if quick else FULL_SECONDS,
            )
            multiple = math.lcm(*counts)
            if multiple <= total:
                total = _round_up_to(total, multiple)
        else:
            total = size

        def measure(k: int) -> Run:
            say(f"{workload}: {k} {_SINGULAR[mode] if k == 1 else mode}")
            if mode == "threads":
                return run_threads(job, total, k, nrepeats, param)
            return run_processes(workload, total, k, nrepeats, param, method)

        runs = {k: measure(k) for k in sorted({1, *counts})}
    baseline = runs[1].timing
    points = tuple(
        ScalePoint(
            k, runs[k].timing, speedup(baseline.median, runs[k].timing.median), runs[k].startup
        )
        for k in counts
    )
    return ScaleResult(workload, mode, total, job.unit, method, baseline, points)
