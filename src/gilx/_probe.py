"""Does a callable release the GIL?  Measure it, two ways.

(a) **speedup**: the callable's calls done by one thread, then split among
``workers`` threads started together.  A callable that releases the GIL runs
on several cores at once (given the cores); one that holds it does not.

(b) **hold fraction**: while one thread makes the calls, the GIL instrument's
heartbeat (:mod:`gilx.instrument`) asks for the GIL at random instants, one per
millisecond, and notes whether it was held.  The share of those instants at
which it was held estimates the share of the time the GIL was held.  This needs
no second core, so it is the evidence the verdict rests on: ``releases_gil`` is
``hold_fraction <`` :data:`HOLD_LIMIT`.

Both measurements go through the runner's one path (:func:`gilx.runner.measure`):
every repeat is metered, a repeat during which the rest of the machine took
more than :data:`gilx.runner.DISTURBED_SHARE` of the CPU the threads needed
is run again.  The heartbeat's reading judges itself too
(:attr:`gilx.instrument.Reading.disturbed`: its heartbeat waited for a CPU,
or other processes or the host took the CPU the calls needed); a disturbed
reading is taken once more.  The verdict rests on one
:class:`gilx._judgement.Judgement` of all three (the reading, the one-thread
and the many-thread timings): when it is not judged, ``disturbed`` is True
and no verdict is drawn from the result.

Library thread pools (BLAS, OpenMP) are pinned to one thread while probing
(threadpoolctl), so the speedup shows the GIL, not a library's own threads.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gilx import _judgement, _present, machine, runner
from gilx._gilstate import gil_enabled
from gilx._judgement import Judgement
from gilx.instrument import DEFAULT_INTERVAL, Heartbeat, Reading, Tally

#: A callable during which the GIL is held at least this share of the time "holds the GIL".
HOLD_LIMIT = 0.5

#: The heartbeat's period: how often it asks for the GIL (seconds).
HEARTBEAT_INTERVAL = DEFAULT_INTERVAL

#: A reading that is not judged is taken at most this many times in all.
ATTEMPTS = 2


@dataclass(frozen=True)
class ProbeResult:
    """The verdict and its evidence.

    ``speedup``: one thread's time for all the calls / ``workers`` threads'
    time for the same calls.  ``hold_fraction``: share of the single-thread
    run during which the heartbeat could not get the GIL.  ``calls``: calls per
    worker.  On a build without a GIL, ``releases_gil`` is True (there is
    nothing to hold) and ``gil_enabled`` is False.  ``other_cpu``: the most
    of the CPU time the threads needed that the rest of the machine took
    during a repeat (None: unknown here).  ``judgement``: whether a verdict
    may be drawn (the heartbeat's reading and both timings); ``disturbed`` is
    its negation: then ``releases_gil`` is not a verdict to act on.  Give
    either; the other follows.  ``reading``: the heartbeat's reading.
    """

    callable: str
    releases_gil: bool
    workers: int
    speedup: float
    hold_fraction: float
    gil_enabled: bool
    calls: int
    one_thread: runner.Timing
    many_threads: runner.Timing
    other_cpu: float | None = None
    disturbed: bool = False
    judgement: Judgement | None = None
    reading: Reading | None = None

    def __post_init__(self) -> None:
        judgement = self.judgement
        if judgement is None:
            timings = _judgement.combine(
                _judgement.of_timing(self.one_thread), _judgement.of_timing(self.many_threads)
            )
            other = self.other_cpu if self.other_cpu is not None else timings.other_cpu
            metered = timings.metered or self.other_cpu is not None
            judgement = Judgement(timings.judged, timings.causes, other, metered, busy=timings.busy)
            if self.disturbed and judgement.judged:
                judgement = _judgement.busy(other, metered)
            object.__setattr__(self, "judgement", judgement)
        object.__setattr__(self, "disturbed", judgement.disturbed)

    @property
    def judged(self) -> Judgement:
        """The judgement, never None (set in ``__post_init__``)."""
        assert self.judgement is not None
        return self.judgement

    def to_dict(self) -> dict[str, object]:
        """The JSON object of ``probe`` (the README's reference, JSON shapes)."""
        return {
            "callable": self.callable,
            "releases_gil": self.releases_gil,
            "workers": self.workers,
            "speedup": self.speedup,
            "hold_fraction": self.hold_fraction,
            "gil_enabled": self.gil_enabled,
            "other_cpu": self.other_cpu,
            "disturbed": self.disturbed,
            "judgement": self.judged.to_dict(),
            "note": self.judged.note,
        }

    def render(self) -> str:
        """The text of ``gilx probe``: the evidence, then the verdict unless disturbed."""
        return _present.probe_text(self, HOLD_LIMIT)


def describe(func: Callable[..., object], args: tuple[object, ...] = ()) -> str:
    """``module:qualname(args)`` for display; long arguments shortened."""
    module = getattr(func, "__module__", None) or "?"
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    shown = ", ".join(reprlib.repr(a) for a in args)
    return f"{module}:{name}({shown})"


class _Calls:
    """A runner job: ``share`` calls of ``func(*args)``."""

    def __init__(self, func: Callable[..., object], args: tuple[object, ...]) -> None:
        self.func = func
        self.args = args

    def prepare(self, share: int, endpoint: str, /) -> Callable[[], object]:
        func, args = self.func, self.args

        def calls() -> None:
            for _ in range(share):
                func(*args)

        return calls


@contextmanager
def _library_pools_pinned() -> Iterator[None]:
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped, unused-ignore]

    with threadpool_limits(limits=1):
        yield


def probe(
    func: Callable[..., object],
    /,
    *args: object,
    workers: int = 2,
    seconds: float = 0.2,
    repeats: int = 3,
    name: str | None = None,
) -> ProbeResult:
    """Judge whether ``func(*args)`` releases the GIL.

    The number of calls is calibrated so that each of ``workers`` threads
    spends about ``seconds`` on its share.  (To pass keyword arguments, wrap
    the callable in ``functools.partial``.)
    """
    if not callable(func):
        raise TypeError(f"probe needs a callable, not {type(func).__name__}")
    if not 2 <= workers <= runner.MAX_WORKERS:
        raise ValueError(f"workers must be between 2 and {runner.MAX_WORKERS}, got {workers}")
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    job = _Calls(func, args)
    with _library_pools_pinned():
        calls = runner.calibrate(lambda n: job.prepare(n, ""), 1, seconds)
        total = calls * workers
        for _ in range(ATTEMPTS):
            one, reading = _held(job, total, repeats)
            if _judgement.of_reading(reading).judged and not one.disturbed:
                break
        many = runner.measure(job, total, workers, repeats).timing
    hold = reading.hold_fraction
    has_gil = gil_enabled()
    judgement = _judgement.combine(
        _judgement.of_reading(reading),
        _judgement.of_timing(one),
        _judgement.of_timing(many),
    )
    return ProbeResult(
        callable=name or describe(func, args),
        releases_gil=(hold < HOLD_LIMIT) if has_gil else True,
        workers=workers,
        speedup=runner.speedup(one.median, many.median),
        hold_fraction=hold,
        gil_enabled=has_gil,
        calls=calls,
        one_thread=one,
        many_threads=many,
        other_cpu=judgement.other_cpu,
        judgement=judgement,
        reading=reading,
    )


def _held(job: _Calls, total: int, repeats: int) -> tuple[runner.Timing, Reading]:
    """One thread making all the calls, timed, while the heartbeat reads the GIL and the meter
    reads the machine: the timing and the reading (which judges itself)."""
    with Heartbeat(HEARTBEAT_INTERVAL) as heart:
        meter = machine.CpuMeter()
        meter.start()
        before = heart.snapshot()
        one = runner.measure(job, total, 1, repeats).timing
        after = heart.snapshot()
        cpu = meter.stop()
    return one, Tally.between(before, after).reading(cpu, heart.priority)
