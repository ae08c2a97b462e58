"""Mixed work: how long releasing work waits for the GIL beside busy Python threads.

Real programs mix work that releases the GIL (C, NumPy, I/O) with Python code
on other threads.  There, what decides speed is how long a thread that has
finished its released work waits to get the GIL back: with a busy Python
thread holding it, up to the switch interval (``sys.getswitchinterval()``,
5 ms) per re-take.  That is the convoy effect (CPython issue 7946, "Convoy
effect with I/O bound threads and New GIL").

:func:`convoy` times one workload on one worker thread (never the main
thread) twice, with the same prepared worker: alone, then while ``threads``
other threads of this process run workload ``beside`` in a loop for the whole
measurement.  Everything is built from the house's parts: the workloads of
:mod:`gilx.workloads` (plus ``sleep``, 1 ms ``time.sleep`` calls, defined
here), a crew of the threads backend for the worker, the runner's calibration
and its disturbance-metered repeats (:func:`gilx.runner.measure_repeats`:
re-measured once, then marked disturbed and not judged).  ``io`` and
``sleep`` also time each call, for the per-call latency (p50 / p99).
"""

from __future__ import annotations

import math
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field

from gilx import _judgement, _present, backends, machine, runner, workloads
from gilx._judgement import Judgement
from gilx.backends import Options
from gilx.timing import Span, Timing, clock

#: How long each call of the ``sleep`` workload sleeps (seconds).
SLEEP_SECONDS = 0.001


def _prepare_sleep(share: int, endpoint: str) -> Callable[[], object]:
    def sleeps() -> None:
        for _ in range(share):
            time.sleep(SLEEP_SECONDS)

    return sleeps


#: The ``sleep`` workload: a thread that wakes up every millisecond, like a
#: timer, a poller or a GUI's event loop.  Its own here: the scaling commands
#: have nothing to learn from it.
SLEEP = workloads.Workload(
    "sleep",
    f"{SLEEP_SECONDS * 1e3:g} ms time.sleep calls",
    "sleeps",
    1,
    _prepare_sleep,
    per_call=True,
)

#: Every workload convoy can measure or run beside.
NAMES: tuple[str, ...] = (*workloads.NAMES, SLEEP.name)
#: What ``gilx convoy`` measures unless told otherwise: releasing work of every kind.
DEFAULT_WORKLOADS: tuple[str, ...] = ("nogil", "memory", "numpy", "io", "sleep")
#: What the busy threads run unless told otherwise.
DEFAULT_BESIDE = "py"

#: A slowdown at least this large is called a convoy in the text output.
CONVOY_AT = 1.5
#: A slowdown at most this large is called unaffected (the benchmarks' target for
#: gilx's own released loops on a worker thread: benchmarks/test_convoy.py).
UNAFFECTED_AT = 1.10


def get(name: str) -> workloads.Workload:
    """The workload called ``name`` (``sleep`` included); ValueError naming the choices."""
    if name == SLEEP.name:
        return SLEEP
    try:
        return workloads.get(name)
    except ValueError:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(NAMES)}") from None


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, interpolated between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


@dataclass(frozen=True)
class CallTimes:
    """Per-call latency of one measurement: its median, its 99th percentile, over ``calls``."""

    p50: float
    p99: float
    calls: int

    @classmethod
    def of(cls, seconds: list[float]) -> CallTimes:
        return cls(statistics.median(seconds), _percentile(seconds, 0.99), len(seconds))

    def to_dict(self) -> dict[str, float | int]:
        return {"p50": self.p50, "p99": self.p99, "calls": self.calls}


@dataclass(frozen=True)
class Latency:
    """Per-call latency alone and beside the busy threads (seconds)."""

    alone: CallTimes
    beside: CallTimes

    def to_dict(self) -> dict[str, dict[str, float | int]]:
        return {"alone": self.alone.to_dict(), "beside": self.beside.to_dict()}


@dataclass(frozen=True)
class ConvoyResult:
    """One workload on a worker thread, alone and beside ``threads`` threads running ``beside``.

    ``alone`` / ``beside_timing``: the repeats (seconds, metered); ``slowdown``
    is the median beside over the median alone; ``latency`` (``io``,
    ``sleep``; else None) each call's time; ``busy_rate``: units of
    ``beside`` the busy threads did per second, all together, from their start
    (each had done a unit before the worker was timed beside them) to their
    end (``busy_unit``): proof that they ran, and what the worker cost them.
    ``disturbed``: either measurement stayed disturbed after re-measuring;
    then no verdict is drawn from it.
    """

    workload: str
    beside: str
    threads: int
    size: int
    unit: str
    alone: Timing
    beside_timing: Timing
    latency: Latency | None
    busy_rate: float
    busy_unit: str
    switch_interval_s: float
    gil_enabled: bool

    @property
    def alone_s(self) -> float:
        return self.alone.median

    @property
    def beside_s(self) -> float:
        return self.beside_timing.median

    @property
    def slowdown(self) -> float:
        return self.beside_s / self.alone_s if self.alone_s > 0 else math.inf

    @property
    def other_cpu(self) -> float | None:
        """The most the rest of the machine took during either measurement (None: unknown)."""
        known = [t.other_cpu for t in (self.alone, self.beside_timing)]
        shares = [share for share in known if share is not None]
        return max(shares) if shares else None

    @property
    def judgement(self) -> Judgement:
        """Both measurements' judgement (:mod:`gilx._judgement`): no verdict unless judged."""
        return _judgement.combine(
            _judgement.of_timing(self.alone), _judgement.of_timing(self.beside_timing)
        )

    @property
    def disturbed(self) -> bool:
        return self.judgement.disturbed

    def to_dict(self) -> dict[str, object]:
        """One result of ``gilx convoy --json``."""
        return {
            "workload": self.workload,
            "alone_s": self.alone_s,
            "beside_s": self.beside_s,
            "slowdown": self.slowdown,
            "latency": self.latency.to_dict() if self.latency is not None else None,
            "other_cpu": self.other_cpu,
            "disturbed": self.disturbed,
            "judgement": self.judgement.to_dict(),
            "size": self.size,
            "unit": self.unit,
            "repeats": len(self.alone.samples),
            "busy_rate": self.busy_rate,
            "busy_unit": self.busy_unit,
        }


@dataclass(frozen=True)
class ConvoyReport:
    """Several workloads measured beside the same busy threads: ``gilx convoy``'s output."""

    beside: str
    threads: int
    switch_interval_s: float
    gil_enabled: bool
    results: tuple[ConvoyResult, ...] = field(default_factory=tuple)
    load_before: float | None = None

    @property
    def disturbed(self) -> bool:
        return any(r.disturbed for r in self.results)

    def to_dict(self) -> dict[str, object]:
        """The JSON object of ``gilx convoy --json`` (less the CLI's schema and machine block)."""
        return {
            "beside": self.beside,
            "threads": self.threads,
            "switch_interval_s": self.switch_interval_s,
            "gil_enabled": self.gil_enabled,
            "disturbed": self.disturbed,
            "results": [r.to_dict() for r in self.results],
        }

    def render(self) -> str:
        return render(self)


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------
@dataclass
class _TimedCalls:
    """A job doing ``share`` single calls of ``workload``, each timed into ``seconds``.

    The one worker thread appends; the caller reads between repeats.
    """

    workload: workloads.Workload
    seconds: list[float] = field(default_factory=list)

    def prepare(self, share: int, endpoint: str) -> Callable[[], object]:
        one = self.workload.prepare(1, endpoint)
        seconds = self.seconds

        def calls() -> None:
            for _ in range(share):
                start = clock()
                one()
                seconds.append(clock() - start)

        return calls

    def context(self) -> AbstractContextManager[object]:
        return self.workload.context()


class Busy:
    """``threads`` daemon threads running ``workload`` in a loop until ``stop()``.

    Each prepares its work first (untimed); the constructor returns once every
    one of them has finished a first unit of work, so whatever is measured
    next runs beside threads that are really running.  ``units()`` counts
    the units done so far by all of them; after ``stop()``, ``rate()`` is
    their units per second from the start of their work to their end.  An
    error in one is re-raised (by the constructor or ``stop()``).  The
    benchmarks (benchmarks/test_convoy.py) use it too.
    """

    def __init__(self, workload: workloads.Workload, endpoint: str, threads: int) -> None:
        # A hundredth of a calibration step (py: 1,000 loop steps, ~40 µs), so that
        # even a measurement of a millisecond sees the busy threads' progress.
        self._unit = max(1, workload.start_size // 100)
        self._done = [0] * threads
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._ready = threading.Semaphore(0)
        self._go = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._run, args=(i, workload, endpoint), name=f"gilx-busy-{i}", daemon=True
            )
            for i in range(threads)
        ]
        self._start = self._end = 0.0
        for t in self._threads:
            t.start()
        for _ in self._threads:
            self._ready.acquire()  # each prepared (or failed)
        self._start = clock()
        self._go.set()
        while min(self._done) == 0 and not self._errors:  # each did one unit: all running
            time.sleep(0.0005)
        if self._errors:
            self.stop()

    def _run(self, i: int, workload: workloads.Workload, endpoint: str) -> None:
        try:
            work = workload.prepare(self._unit, endpoint)
        except BaseException as exc:
            self._errors.append(exc)
            self._ready.release()
            return
        self._ready.release()
        self._go.wait()
        try:
            while not self._stop.is_set():
                work()
                self._done[i] += self._unit
        except BaseException as exc:
            self._errors.append(exc)

    def units(self) -> int:
        return sum(self._done)

    def rate(self) -> float:
        """Units per second, all threads together, from their start to their end (after stop)."""
        return self.units() / max(self._end - self._start, 1e-9)

    def stop(self) -> None:
        self._stop.set()
        self._go.set()
        for t in self._threads:
            t.join()
        self._end = clock()
        if self._errors:
            raise self._errors[0]


def _check(workload: str, beside: str, threads: int) -> None:
    get(workload)
    get(beside)
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int, not {type(threads).__name__}")
    if not 1 <= threads <= runner.MAX_WORKERS:
        raise ValueError(f"threads must be between 1 and {runner.MAX_WORKERS}, got {threads}")


@contextmanager
def _switch_interval(seconds: float | None) -> Iterator[float]:
    """``sys.setswitchinterval(seconds)`` for the block (unless None); restored after."""
    before = sys.getswitchinterval()
    if seconds is None:
        yield before
        return
    sys.setswitchinterval(seconds)
    try:
        yield sys.getswitchinterval()
    finally:
        sys.setswitchinterval(before)


def convoy(
    workload: str,
    beside: str = DEFAULT_BESIDE,
    threads: int = 1,
    *,
    quick: bool = False,
    size: int | None = None,
    repeats: int | None = None,
    switch_interval: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ConvoyResult:
    """Time ``workload`` on one worker thread alone, then beside ``threads`` threads of ``beside``.

    ``workload`` and ``beside`` name workloads (:data:`NAMES`: gilx's workloads
    and ``sleep``).  The work is calibrated so the worker alone takes about
    :data:`gilx.runner.QUICK_SECONDS` (``quick``) or
    :data:`gilx.runner.FULL_SECONDS`, unless ``size`` is given; both
    measurements run the same prepared worker on the same size.  The busy
    threads start after the alone measurement, prepare their work, and run
    for the whole beside measurement.  ``switch_interval`` (seconds) sets
    ``sys.setswitchinterval`` for the call and restores it afterwards.
    ValueError for an unknown workload, or ``threads`` outside 1..256.
    """
    _check(workload, beside, threads)
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    nrepeats = (
        repeats if repeats is not None else (runner.QUICK_REPEATS if quick else runner.FULL_REPEATS)
    )
    if nrepeats < 1:
        raise ValueError(f"repeats must be >= 1, got {nrepeats}")
    say = progress or (lambda _message: None)
    measured = get(workload)
    busy_work = get(beside)
    timed = _TimedCalls(measured) if measured.per_call else None
    job = timed if timed is not None else measured

    with ExitStack() as stack:
        endpoint = stack.enter_context(measured.server())
        busy_endpoint = endpoint if beside == workload else stack.enter_context(busy_work.server())
        if size is None:
            say(f"convoy: calibrating {workload}")
            with measured.context():
                total = runner.calibrate(
                    lambda s: measured.prepare(s, endpoint),
                    measured.start_size,
                    runner.QUICK_SECONDS if quick else runner.FULL_SECONDS,
                )
        else:
            total = size
        interval = stack.enter_context(_switch_interval(switch_interval))
        session = stack.enter_context(backends.get("threads").open(job, endpoint, Options()))
        crew = stack.enter_context(session.crew(total, 1))
        stack.enter_context(busy_work.context())
        cores = machine.cores()

        def measure(needed: int) -> tuple[Timing, CallTimes | None]:
            per_repeat: list[tuple[float, list[float]]] = []

            def go() -> Span:
                mark = len(timed.seconds) if timed is not None else 0
                start, end = crew.go()
                calls = timed.seconds[mark:] if timed is not None else []
                per_repeat.append((end - start, calls))
                return start, end

            timing = runner.measure_repeats(go, nrepeats, min(needed, cores))
            if timed is None:
                return timing, None
            kept = list(timing.samples)
            seconds: list[float] = []
            for duration, calls in per_repeat:  # the calls of the repeats the timing kept
                if duration in kept:
                    kept.remove(duration)
                    seconds += calls
            return timing, CallTimes.of(seconds)

        say(f"convoy: {workload} alone on a worker thread")
        alone, alone_calls = measure(1)
        say(f"convoy: {workload} beside {threads} thread(s) running {beside}")
        busy = Busy(busy_work, busy_endpoint, threads)
        try:
            beside_timing, beside_calls = measure(1 + threads)
        finally:
            busy.stop()
    latency = (
        Latency(alone_calls, beside_calls)
        if alone_calls is not None and beside_calls is not None
        else None
    )
    return ConvoyResult(
        workload=workload,
        beside=beside,
        threads=threads,
        size=total,
        unit=measured.unit,
        alone=alone,
        beside_timing=beside_timing,
        latency=latency,
        busy_rate=busy.rate(),
        busy_unit=busy_work.unit,
        switch_interval_s=interval,
        gil_enabled=machine.gil_enabled(),
    )


def measure_all(
    names: tuple[str, ...] = DEFAULT_WORKLOADS,
    beside: str = DEFAULT_BESIDE,
    threads: int = 1,
    *,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ConvoyReport:
    """:func:`convoy` for each workload in ``names``: what ``gilx convoy`` prints."""
    for name in names:
        _check(name, beside, threads)
    load = machine.load_1min()
    results = tuple(convoy(name, beside, threads, quick=quick, progress=progress) for name in names)
    return ConvoyReport(
        beside, threads, sys.getswitchinterval(), machine.gil_enabled(), results, load
    )


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------
def verdict(result: ConvoyResult) -> str:
    """``convoy`` / ``slowed`` / ``unaffected``, or not judged when disturbed."""
    if result.disturbed:
        return "?"
    if result.slowdown >= CONVOY_AT:
        return "convoy"
    return "unaffected" if result.slowdown <= UNAFFECTED_AT else "slowed"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def _calls(times: CallTimes) -> str:
    return f"{_ms(times.p50)} / {_ms(times.p99)}"


def _compact(rate: float) -> str:
    """``18.6M``: a rate in three significant figures."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def render(run: ConvoyReport) -> str:
    """The text of ``gilx convoy``."""
    busy = get(run.beside)
    plural = "" if run.threads == 1 else "s"
    lines = [
        f"machine: {_present.machine_line(None, run.load_before)}",
        f"each workload on one worker thread, alone, then beside {run.threads} thread{plural}"
        f" running {run.beside}: {busy.summary}",
        f"switch interval {run.switch_interval_s * 1e3:g} ms (sys.getswitchinterval())",
        "",
        f"{'workload':<10}{'alone s':>9}{'beside s':>10}{'slowdown':>10}"
        f"{'per call: alone':>18}{'beside':>18}{'busy/s':>8}{'others':>8}  verdict",
    ]
    for r in run.results:
        alone = f"{r.alone_s:.3f}{_present.flag(r.alone)}"
        beside = f"{r.beside_s:.3f}{_present.flag(r.beside_timing)}"
        per_call = _calls(r.latency.alone) if r.latency is not None else "-"
        per_call_beside = _calls(r.latency.beside) if r.latency is not None else "-"
        others = _present.percent(r.other_cpu)
        lines.append(
            f"{r.workload:<10}{alone:>9}{beside:>10}{r.slowdown:>9.2f}x"
            f"{per_call:>18}{per_call_beside:>18}{_compact(r.busy_rate):>8}{others:>8}"
            f"  {verdict(r)}"
        )
    lines += [
        "",
        "slowdown = median time beside / median time alone, the same work on the same thread;"
        f" convoy: at least {CONVOY_AT:g}x, unaffected: at most {UNAFFECTED_AT:.2f}x",
        "per call: p50 / p99 of each call's time in ms (io: one download, sleep: one"
        f" {SLEEP_SECONDS * 1e3:g} ms sleep)",
        f"busy/s: {busy.unit} of {run.beside} the busy thread{plural} did per second meanwhile;"
        " others: the most of the CPU time the threads needed that other processes took",
    ]
    if any(r.alone.unstable or r.beside_timing.unstable for r in run.results):
        lines.append(
            f"~ = repeats spread more than {runner.SPREAD_LIMIT:.0%} of the median: a busy machine?"
        )
    if any(r.disturbed for r in run.results):
        lines.append(
            f"? = {_present.NOT_JUDGED}: other processes took more than"
            f" {runner.DISTURBED_SHARE:.0%} of the CPU time the threads needed even after"
            " re-measuring; close other programs and run again"
        )
    if 1 + run.threads > machine.cores():
        lines.append(
            f"{1 + run.threads} threads on {machine.cores()} cores: part of any slowdown is"
            " sharing the cores, not waiting for the GIL"
        )
    if not run.gil_enabled:
        lines.append("no GIL in this process (free-threaded build, GIL off): nothing to wait for")
    return "\n".join(lines)
