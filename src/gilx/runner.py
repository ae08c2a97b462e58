"""Measure: calibrate the work, repeat it on a backend's workers, and report the statistics.

The runner keeps timing, repeats, statistics and calibration.  How workers
are started (threads, processes, ...) is each backend's business
(:mod:`gilx.backends`); what a run, a timing and a speedup are is defined once
in :mod:`gilx.timing` (re-exported here).

One scaling experiment (:func:`scale`) opens one backend session, makes one
crew per worker count, and times ``repeats`` repeats of each; one worker
doing the whole work is always measured, as the baseline every speedup
divides.

Every timed repeat, in every mode, is also metered (:func:`measure_repeats`):
the CPU the rest of the machine used meanwhile (other processes, and the
hypervisor's steal time) as a share of the CPU time the workers needed
(:meth:`gilx.machine.CpuUse.share_of_needed`).  A repeat above
:data:`DISTURBED_SHARE` is run again, up to :data:`EXTRA_REPEATS` times the
repeats; if the disturbance persists the timing is marked ``disturbed`` and no
verdict is drawn from it.  A quiet machine pays only the meter: two reads of
``/proc`` per repeat.

A scaling curve (:func:`scale`) is measured in **rounds**: each round times
one repeat of every worker count, one after the other, and a reference known
to scale (``count_nogil`` on 1 and k threads, :class:`_Reference`), so a
speedup divides times taken in the same few moments, and the reference says
how many cores the machine really gave then.  Rounds go on (within the same
budget) until the last ``repeats`` of them are quiet, their speedups agree
within :data:`SPREAD_LIMIT` and the reference got its cores; otherwise the
curve's points are not judged (:func:`gilx._judgement.of_speedup`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from gilx import _judgement, _present, backends, machine, workloads
from gilx._judgement import Judgement
from gilx.backends import MAX_WORKERS, Crew, Job, Options
from gilx.backends.base import BARRIER_TIMEOUT
from gilx.backends.processes import default_start_method, start_methods
from gilx.timing import (
    DISTURBED_SHARE,
    SPREAD_LIMIT,
    Span,
    Timing,
    clock,
    efficiency,
    span_of,
    speedup,
    split,
)

__all__ = [
    "BARRIER_TIMEOUT",
    "DISTURBED_SHARE",
    "EXTRA_REPEATS",
    "FULL_REPEATS",
    "FULL_SECONDS",
    "MAX_WORKERS",
    "QUICK_REPEATS",
    "QUICK_SECONDS",
    "SPREAD_LIMIT",
    "Measured",
    "ScalePoint",
    "ScaleResult",
    "Timing",
    "calibrate",
    "clock",
    "default_start_method",
    "efficiency",
    "measure",
    "measure_repeats",
    "scale",
    "span_of",
    "speedup",
    "split",
    "start_methods",
    "time_call",
]

#: One worker doing the whole work should take about this long (seconds).  --quick: enough
#: for a verdict at the gain threshold (two workers of 50 ms are ten switch intervals each;
#: a coarse unit such as one np.dot still goes to every worker, see ``scale``).
QUICK_SECONDS = 0.1
FULL_SECONDS = 0.6
QUICK_REPEATS = 3
FULL_REPEATS = 5


#: Disturbed repeats are re-run at most this many times the number of repeats
#: (so a measurement takes at most twice as long on a busy machine).
EXTRA_REPEATS = 1


def measure_repeats(
    go: Callable[[], Span],
    repeats: int,
    needed: int,
    pids: Callable[[], frozenset[int]] = frozenset,
) -> Timing:
    """Call ``go()`` (one timed repeat) until ``repeats`` undisturbed repeats, within a budget.

    ``needed``: how many cores the workers could use (workers, at most the
    cores); ``pids``: live processes whose CPU is the measurement's own. A
    repeat is disturbed when the rest of the machine took more than
    :data:`DISTURBED_SHARE` of the CPU time those cores give.  When the budget
    (:data:`EXTRA_REPEATS`) runs out first, the least disturbed repeats fill
    the gap and the timing is marked ``disturbed``.  Where the OS cannot say
    (no ``/proc/stat``), every share is None and nothing is re-run.
    """
    meter = machine.CpuMeter(pids)
    quiet: list[tuple[float, float | None]] = []
    noisy: list[tuple[float, float]] = []
    for _ in range(repeats * (1 + EXTRA_REPEATS)):
        meter.start()
        start, end = go()
        use = meter.stop()
        share = use.share_of_needed(needed) if use is not None else None
        if share is None or share <= DISTURBED_SHARE:
            quiet.append((end - start, share))
            if len(quiet) == repeats:
                break
        else:
            noisy.append((end - start, share))
    disturbed = len(quiet) < repeats
    kept = quiet + sorted(noisy, key=lambda sample: sample[1])[: repeats - len(quiet)]
    return Timing(
        tuple(seconds for seconds, _ in kept), tuple(share for _, share in kept), disturbed
    )


def _measure_crew(
    session: backends.Session, total: int, workers: int, repeats: int
) -> tuple[Timing, float | None]:
    """``repeats`` metered repeats of one crew of ``workers`` in ``session``; its start-up."""
    with session.crew(total, workers) as crew:

        def ours() -> frozenset[int]:
            return session.pids() | crew.pids()

        timing = measure_repeats(crew.go, repeats, min(workers, machine.cores()), ours)
        return timing, crew.startup


@dataclass(frozen=True)
class Measured:
    """One crew's metered repeats: ``workers`` workers sharing ``total`` units.

    ``startup``: seconds from launching the workers to all of them ready,
    where starting them is a cost of its own (processes; None for threads).
    """

    workers: int
    total: int
    timing: Timing
    startup: float | None = None

    @property
    def disturbed(self) -> bool:
        return self.timing.disturbed


def measure(
    job: Job,
    total: int,
    workers: int,
    repeats: int = 1,
    *,
    mode: str = "threads",
    endpoint: str = "",
    options: Options | None = None,
) -> Measured:
    """One session, one crew of ``workers`` workers, ``repeats`` metered repeats.

    The same path as every point of :func:`scale` (disturbed repeats re-run,
    a lasting disturbance marked), for a single worker count: what
    :func:`gilx.probe` and the tests measure with.
    """
    backends.check_counts(workers, repeats, total)
    backend = backends.get(mode)
    options = options or Options()
    backend.check(job)
    if isinstance(job, workloads.Workload):
        job.require()  # a missing engine: one line, before any worker starts
    backends.check_options(backend, options)
    with backend.open(job, endpoint, options) as session:
        timing, startup = _measure_crew(session, total, workers, repeats)
    return Measured(workers, total, timing, startup)


def time_call(fn: Callable[[], object], repeats: int) -> Timing:
    """Time ``fn()`` in this thread, ``repeats`` times (disturbed repeats re-run)."""

    def once() -> Span:
        start = clock()
        fn()
        return start, clock()

    return measure_repeats(once, repeats, needed=1)


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


@dataclass(frozen=True)
class ScalePoint:
    """One point of a scaling curve.

    ``judgement`` (:class:`gilx._judgement.Judgement`): whether a verdict may
    be drawn from its speedup, and why not.  ``disturbed`` is its negation
    (the JSON's key): this point's repeats or the one-worker baseline its
    speedup divides stayed disturbed, its speedup was unstable, or the machine
    did not give the cores it needed.  Give either; the other follows.
    """

    workers: int
    timing: Timing
    speedup: float
    startup: float | None = None
    disturbed: bool = False
    judgement: Judgement | None = None

    def __post_init__(self) -> None:
        judgement = self.judgement
        if judgement is None:
            judgement = _judgement.of_timing(self.timing)
            if self.disturbed and judgement.judged:
                judgement = _judgement.busy(judgement.other_cpu, judgement.metered)
            object.__setattr__(self, "judgement", judgement)
        object.__setattr__(self, "disturbed", judgement.disturbed)

    @property
    def judged(self) -> Judgement:
        """The judgement, never None (``judgement`` is set in ``__post_init__``)."""
        assert self.judgement is not None
        return self.judgement

    @property
    def other_cpu(self) -> float | None:
        """The most the rest of the machine took during this point's repeats (None: unknown)."""
        return self.timing.other_cpu

    @property
    def seconds(self) -> float:
        return self.timing.median

    @property
    def efficiency(self) -> float:
        return efficiency(self.speedup, self.workers)

    def to_dict(self) -> dict[str, object]:
        """One result of ``gilx scale --json``: the median, the repeats' range, start-up."""
        return {
            "workers": self.workers,
            "seconds": self.seconds,
            "speedup": self.speedup,
            "efficiency": self.efficiency,
            "min": self.timing.minimum,
            "max": self.timing.maximum,
            "startup": self.startup,
            "other_cpu": self.other_cpu,
            "disturbed": self.disturbed,
            "judgement": self.judged.to_dict(),
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
    session_startup: float | None = None
    how: str = ""  # the backend's words for how the work ran

    @property
    def disturbed(self) -> bool:
        """Some measurement of the curve is not judged (disturbed, unstable, short of cores)."""
        return self.baseline.disturbed or any(p.disturbed for p in self.points)

    @property
    def judgement(self) -> Judgement:
        """The curve's judgement: every point's, and the baseline's."""
        return _judgement.combine(
            _judgement.of_timing(self.baseline), *(p.judged for p in self.points)
        )

    def point(self, workers: int) -> ScalePoint:
        for p in self.points:
            if p.workers == workers:
                return p
        raise KeyError(workers)

    def render(self, load: float | None = None) -> str:
        """The text of ``gilx scale``; ``load``: the 1-minute load average before measuring."""
        work = workloads.get(self.workload)
        notes = backends.get(self.mode).notes(self.session_startup) + work.notes()
        return _present.scale_text(self, work.summary, notes, load)

    def to_dict(self) -> dict[str, object]:
        """The JSON object of ``gilx scale --json`` (less the CLI's schema and machine block)."""
        base = self.baseline
        return {
            "workload": self.workload,
            "mode": self.mode,
            "results": [p.to_dict() for p in self.points],
            "disturbed": self.disturbed,
            "note": self.judgement.note,
            "size": self.size,
            "unit": self.unit,
            "repeats": len(base.samples),
            "start_method": self.start_method,
            "session_startup": self.session_startup,
            "baseline": {
                "seconds": base.median,
                "min": base.minimum,
                "max": base.maximum,
                "other_cpu": base.other_cpu,
                "disturbed": base.disturbed,
            },
        }


#: The capacity reference: one thread of ``count_nogil`` takes about this long per round (s).
#: Why not shorter: threads that wake from a wait are favoured by the scheduler for a few
#: milliseconds, so a short reference gets cores that long-running workers are not given.
#: With two CPU hogs on 2 cores (as an ordinary user), windows of 3 rounds whose median read
#: at least 1.6 cores (believed) were 3 of 10 at 5 ms, 2 of 10 at 15 ms, 0 of 10 at 30 ms.
REFERENCE_SECONDS = 0.03

_reference_units: list[int] = []  # calibrated once per process


class _Reference:
    """``count_nogil`` on 1 and ``needed`` threads, the same work: how many cores' worth the
    machine gives now (one thread's time / ``needed`` threads' time).

    It releases the GIL for all its work and shares nothing, so on ``needed``
    free cores it reaches ``needed``; less means the machine (other processes,
    the host's other tenants, a throttled CPU) did not give them.
    """

    def __init__(self, needed: int) -> None:
        nogil = workloads.get("nogil")
        if not _reference_units:
            _reference_units.append(
                calibrate(lambda n: nogil.prepare(n, ""), nogil.start_size, REFERENCE_SECONDS)
            )
        units = _reference_units[0]
        self._stack = ExitStack()
        with self._stack:
            session = self._stack.enter_context(backends.get("threads").open(nogil, "", Options()))
            self._one = self._stack.enter_context(session.crew(units, 1))
            self._many = self._stack.enter_context(session.crew(units, needed))
            self._stack = self._stack.pop_all()

    def measure(self) -> float:
        start, end = self._one.go()
        many_start, many_end = self._many.go()
        return speedup(end - start, many_end - many_start)

    def __enter__(self) -> _Reference:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


#: One round: per worker count, (seconds, other processes' share or None); the reference.
_Round = tuple[dict[int, tuple[float, float | None]], float | None]


def _window(rounds: Sequence[_Round]) -> tuple[dict[int, Timing], float | None]:
    """The timings of ``rounds`` (one sample per round per worker count), and the median
    capacity the reference measured in them."""
    ks = sorted(rounds[0][0])
    timings = {}
    for k in ks:
        samples = [r[0][k] for r in rounds]
        timings[k] = Timing(
            tuple(sec for sec, _ in samples),
            tuple(share for _, share in samples),
            any(share is not None and share > DISTURBED_SHARE for _, share in samples),
        )
    caps = sorted(c for _, c in rounds if c is not None)
    capacity = caps[len(caps) // 2] if caps else None
    return timings, capacity


def _verdicts(timings: dict[int, Timing], capacity: float | None) -> list[Judgement]:
    cores = machine.cores()
    return [
        _judgement.of_speedup(timings[1], t, workers=k, needed=min(k, cores), capacity=capacity)
        for k, t in timings.items()
    ]


def _rounds(
    crews: dict[int, Crew],
    repeats: int,
    pids: Callable[[], frozenset[int]],
    reference: _Reference | None,
) -> tuple[dict[int, Timing], float | None]:
    """Rounds of one metered repeat per crew (and the reference), until the last ``repeats``
    rounds can be judged, within :data:`EXTRA_REPEATS` times ``repeats`` extra rounds.

    Where no window of ``repeats`` consecutive rounds can be judged, the
    window with the fewest problems is kept (its points then say why they are
    not judged).
    """
    cores = machine.cores()
    meter = machine.CpuMeter(pids)
    rounds: list[_Round] = []
    for _ in range(repeats * (1 + EXTRA_REPEATS)):
        row: dict[int, tuple[float, float | None]] = {}
        for k, crew in crews.items():
            meter.start()
            start, end = crew.go()
            use = meter.stop()
            row[k] = (end - start, use.share_of_needed(min(k, cores)) if use else None)
        # A round the meter already calls disturbed is not judged whatever the reference
        # reads: the reference's time is spent only on rounds that may be judged.
        busy = any(share is not None and share > DISTURBED_SHARE for _, share in row.values())
        capacity = reference.measure() if reference is not None and not busy else None
        rounds.append((row, capacity))
        if len(rounds) >= repeats and all(j.judged for j in _verdicts(*_window(rounds[-repeats:]))):
            return _window(rounds[-repeats:])
    best: tuple[tuple[int, float], int] | None = None
    for i in range(len(rounds) - repeats + 1):
        verdicts = _verdicts(*_window(rounds[i : i + repeats]))
        unjudged = sum(not j.judged for j in verdicts)
        other = max((j.other_cpu or 0.0 for j in verdicts), default=0.0)
        score = (unjudged, other)
        if best is None or score <= best[0]:
            best = (score, i)
    assert best is not None
    return _window(rounds[best[1] : best[1] + repeats])


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
    scheduler: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScaleResult:
    """Measure ``workload`` on each worker count in ``workers``, run the way ``mode`` names.

    ``mode`` is a backend's name (:data:`gilx.backends.NAMES`).  The total
    work is calibrated so one worker takes about :data:`QUICK_SECONDS`
    (``quick``) or :data:`FULL_SECONDS`, unless ``size`` is given; one worker
    doing all of it is always measured, as the baseline every speedup divides.
    The backend's session (its start method, loop or cluster) is started once,
    before anything is timed, and closed at the end.
    """
    job = workloads.get(workload)
    backend = backends.get(mode)
    backend.check(job)  # a mode that never runs this workload says so first
    job.require()  # a missing engine: one line, before any worker starts (in any mode)
    counts = sorted(set(workers))
    if not counts:
        raise ValueError("workers must name at least one worker count")
    for k in counts:
        backends.check_counts(k)
    options = Options(start_method=start_method, scheduler=scheduler)
    backends.check_options(backend, options)  # before calibrating
    nrepeats = repeats if repeats is not None else (QUICK_REPEATS if quick else FULL_REPEATS)
    if nrepeats < 1:
        raise ValueError(f"repeats must be >= 1, got {nrepeats}")
    say = progress or (lambda _message: None)

    with job.server() as endpoint:
        if size is None:
            say(f"calibrating {workload}")
            with job.context():
                total = calibrate(
                    lambda s: job.prepare(s, endpoint),
                    job.start_size,
                    QUICK_SECONDS if quick else FULL_SECONDS,
                )
            multiple = math.lcm(*counts)
            if multiple <= total:
                total = _round_up_to(total, multiple)
            else:  # coarse units (one np.dot): every worker gets at least one
                total = max(total, max(counts))
        else:
            total = size
        backends.check_counts(1, 1, total)

        with backend.open(job, endpoint, options) as session, ExitStack() as crews_open:
            session_startup = session.startup
            crews: dict[int, Crew] = {}
            for k in sorted({1, *counts}):
                say(f"{workload}: {backend.plural(k)}")
                crews[k] = crews_open.enter_context(session.crew(total, k))
            needed = min(max(counts), machine.cores())
            # After the crews: its threads must not be alive while a crew forks.
            reference = crews_open.enter_context(_Reference(needed)) if needed > 1 else None

            def ours() -> frozenset[int]:
                return session.pids().union(*(c.pids() for c in crews.values()))

            timings, capacity = _rounds(crews, nrepeats, ours, reference)
            startups = {k: crew.startup for k, crew in crews.items()}
            how = session.describe()
            method = session.start_method
    baseline = timings[1]
    points = tuple(
        ScalePoint(
            k,
            timing,
            speedup(baseline.median, timing.median),
            startups[k],
            judgement=_judgement.of_speedup(
                baseline, timing, workers=k, needed=min(k, machine.cores()), capacity=capacity
            ),
        )
        for k, timing in sorted(timings.items())
        if k in counts
    )
    return ScaleResult(
        workload, mode, total, job.unit, method, baseline, points, session_startup, how
    )
