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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gilx import _present, backends, machine, workloads
from gilx.backends import MAX_WORKERS, Job, Options
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
    if isinstance(job, workloads.Workload):
        job.require()  # a missing engine: one line, before any worker starts
    backend.check(job)
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

    ``disturbed``: this point's repeats, or the one-worker baseline its
    speedup divides, stayed disturbed after re-measuring: no verdict may be
    drawn from its speedup.
    """

    workers: int
    timing: Timing
    speedup: float
    startup: float | None = None
    disturbed: bool = False

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

    def to_dict(self) -> dict[str, float | int | None]:
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
        """Some measurement of the curve stayed disturbed after re-measuring."""
        return self.baseline.disturbed or any(p.disturbed for p in self.points)

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
    job.require()  # a missing engine: one line, before any worker starts (in any mode)
    backend.check(job)
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

        with backend.open(job, endpoint, options) as session:
            session_startup = session.startup
            timings: dict[int, tuple[Timing, float | None]] = {}
            for k in sorted({1, *counts}):
                say(f"{workload}: {backend.plural(k)}")
                timings[k] = _measure_crew(session, total, k, nrepeats)
            how = session.describe()
            method = session.start_method
    baseline = timings[1][0]
    points = tuple(
        ScalePoint(
            k,
            timing,
            speedup(baseline.median, timing.median),
            startup,
            disturbed=timing.disturbed or baseline.disturbed,
        )
        for k, (timing, startup) in sorted(timings.items())
        if k in counts
    )
    return ScaleResult(
        workload, mode, total, job.unit, method, baseline, points, session_startup, how
    )
