"""The lost-update race: several threads incrementing one shared counter.

A race judges its own run.  "lost 0" means something only if the threads
really ran at the same time: on a busy machine one thread may do all its
increments while another waits for a CPU, and nothing races.  So each run also
measures

* **overlap**: each thread notes when its ``increment`` call returned; one
  thread's increments alone take about ``solo`` seconds on this machine
  (measured just before, on a counter of the same kind).  Threads that ran
  together end within that time of one another; ``overlap`` is
  ``1 - spread / window`` (0 when they never ran at once).  A counter that
  serialises its increments (``locked``) lets the threads take turns, so its
  window is ``threads * solo``.  An unsafe counter that lost updates
  overlapped, whatever the clocks say;
* **others**: a :class:`gilx.machine.CpuMeter` over the race (and at least
  :data:`METER_SECONDS`): the share of the CPU the threads needed that other
  processes took; above :data:`gilx.runner.DISTURBED_SHARE` the run is
  ``disturbed``.

A run that is not judged is made once more (:data:`ATTEMPTS` in all).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import SupportsIndex

from gilx import _judgement, _present, machine
from gilx._args import as_count
from gilx._core import (
    MAX_COUNT,
    AtomicCounter,
    Cancelled,
    CancelToken,
    LockedCounter,
    StartGate,
    UnsafeCounter,
)
from gilx._judgement import Judgement
from gilx.timing import DISTURBED_SHARE

COUNTER_TYPES: dict[str, type[UnsafeCounter | AtomicCounter | LockedCounter]] = {
    "unsafe": UnsafeCounter,
    "atomic": AtomicCounter,
    "locked": LockedCounter,
}
KINDS: tuple[str, ...] = tuple(COUNTER_TYPES)
Counter = UnsafeCounter | AtomicCounter | LockedCounter

#: Counters whose increments never run at the same time as another thread's
#: (LockedCounter's own lock): their threads take turns.
SERIALISED: frozenset[type[object]] = frozenset({LockedCounter})

#: The CPU meter reads clock ticks (10 ms): it watches at least this long (seconds).
METER_SECONDS = 0.1

#: A race that is not judged (no overlap, or disturbed) is run at most this many times.
ATTEMPTS = 2

#: One thread's solo time is timed on at most this many increments, then scaled.
_SOLO_SAMPLE = 1 << 18

#: More threads than this is a mistake, not an experiment: refuse it rather
#: than exhaust the process's thread limit.
MAX_THREADS = 1024

#: How often (seconds) race() looks at a caller's CancelToken while it waits
#: for its threads.
_POLL_SECONDS = 0.005


@dataclass(frozen=True)
class RaceResult:
    """What one race produced: ``lost == expected - observed``, and whether it can be judged.

    ``overlap`` (0..1): how much the threads' increments ran at the same time
    (the module's docstring says how it is measured; 1.0 for one thread, or no
    work).  ``other_cpu``: the share of the CPU the threads needed that other
    processes took (None: unknown here); ``disturbed``: above
    :data:`gilx.runner.DISTURBED_SHARE`.
    """

    kind: str
    threads: int
    expected: int
    observed: int
    lost: int = field(init=False)
    overlap: float = 1.0
    other_cpu: float | None = None
    disturbed: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lost", self.expected - self.observed)

    @property
    def overlapped(self) -> bool:
        """The threads ran at the same time (lost updates prove it)."""
        return self.lost > 0 or self.overlap > 0.0

    @property
    def judgement(self) -> Judgement:
        """Whether a verdict may be drawn (:func:`gilx._judgement.of_race`): the threads
        overlapped, and the machine was quiet or a loss was seen anyway (a loss needs no quiet
        machine to be real)."""
        return _judgement.of_race(
            overlapped=self.overlapped,
            lost=self.lost,
            disturbed=self.disturbed,
            other_cpu=self.other_cpu,
            metered=self.other_cpu is not None,
        )

    @property
    def judged(self) -> bool:
        """A verdict may be drawn (:attr:`judgement`)."""
        return self.judgement.judged

    def to_dict(self) -> dict[str, object]:
        """The JSON object of a ``race`` result (the README's reference, JSON shapes)."""
        return {
            **asdict(self),
            "overlapped": self.overlapped,
            "judgement": self.judgement.to_dict(),
            "note": self.judgement.note,
        }

    def render(self) -> str:
        """This race as ``gilx race`` prints it (:func:`gilx._present.race_table`)."""
        return _present.race_table([self])


def race(
    kind: str = "unsafe",
    threads: SupportsIndex = 2,
    increments: SupportsIndex = 1_000_000,
    *,
    cancel: CancelToken | None = None,
) -> RaceResult:
    """Run ``threads`` threads, each calling ``increment(increments)`` on one shared counter.

    ``kind`` picks the counter: ``"unsafe"`` (non-atomic, GIL released: loses
    updates when threads run on several cores), ``"atomic"`` or ``"locked"``
    (never lose one).

    The threads start together: each one releases the GIL and waits at a
    :class:`StartGate` inside ``increment`` until all have arrived.  (Behind a
    Python barrier the second thread often starts only after the first has
    finished 1,000,000 increments, a quarter of a millisecond, and nothing
    races.)

    No thread outlives the call.  If waiting for them is interrupted (Ctrl-C)
    or one of them fails, the others are stopped through a :class:`CancelToken`
    of race()'s own, then joined, then the exception propagates.  Pass
    ``cancel=`` to stop a race running in another thread: ``cancel.cancel()``
    makes it raise :class:`gilx.Cancelled` within a few milliseconds.
    """
    if not isinstance(kind, str) or kind not in COUNTER_TYPES:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    nthreads = as_count(threads, "threads", minimum=1)
    if nthreads > MAX_THREADS:
        raise ValueError(f"threads must be <= {MAX_THREADS}, got {nthreads}")
    each = as_count(increments, "increments")
    expected = nthreads * each
    if expected > MAX_COUNT:
        raise OverflowError(f"threads * increments is too large: {expected} > {MAX_COUNT}")
    counter_type = COUNTER_TYPES[kind]
    solo = _solo_seconds(counter_type, each)
    window = solo * (nthreads if counter_type in SERIALISED else 1)
    result = None
    for _ in range(ATTEMPTS):
        meter = machine.CpuMeter()
        meter.start()
        began = time.perf_counter()
        observed, ends = _run_threads(counter_type(), nthreads, each, cancel)
        time.sleep(max(0.0, METER_SECONDS - (time.perf_counter() - began)))
        use = meter.stop()
        other = use.share_of_needed(min(nthreads, machine.cores())) if use is not None else None
        spread = max(ends) - min(ends)
        overlap = 1.0 if nthreads == 1 or window <= 0 else max(0.0, 1.0 - spread / window)
        result = RaceResult(
            kind=kind,
            threads=nthreads,
            expected=expected,
            observed=observed,
            overlap=overlap,
            other_cpu=other,
            disturbed=other is not None and other > DISTURBED_SHARE,
        )
        if result.judged:
            break
    assert result is not None
    return result


def _solo_seconds(counter_type: type[Counter], each: int) -> float:
    """About how long one thread alone takes for ``each`` increments of this kind (best of 3)."""
    sample = min(each, _SOLO_SAMPLE)
    if sample == 0:
        return 0.0
    counter = counter_type()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        counter.increment(sample)
        best = min(best, time.perf_counter() - start)
    return best * each / sample


def _run_threads(
    counter: Counter, nthreads: int, each: int, cancel: CancelToken | None
) -> tuple[int, list[float]]:
    """One race on ``counter``: its final value, and when each thread's increments ended."""
    ends = [0.0] * nthreads
    gate = StartGate(nthreads)
    # Our own token, not the caller's: stopping our threads must not mark the
    # caller's token as cancelled, and a Ctrl-C must stop them even when the
    # caller passed none.
    stop = CancelToken()
    errors: list[BaseException] = []
    # Each thread says it has finished through an Event rather than through
    # join(): on CPython <= 3.12, a Ctrl-C that interrupts Thread.join() can
    # leave the Thread marked as stopped while it still runs (the bpo-45274
    # clean-up cannot tell), and every later join() returns at once.  An
    # interrupted Event.wait() leaves nothing behind.
    finished = [threading.Event() for _ in range(nthreads)]

    cpus = machine.usable_cpus()

    def work(index: int, done: threading.Event) -> None:
        try:
            _pin_to(cpus, index)
            counter.increment(each, start=gate, cancel=stop)
            ends[index] = time.perf_counter()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
            stop.cancel()  # one failed: the rest stop too
            gate.abort()
        finally:
            done.set()

    # Not daemon threads: race() never returns while one runs (see the
    # except clause), and isolated subinterpreters refuse daemon threads.
    workers = [
        threading.Thread(target=work, args=(i, done), name=f"gilx-race-{i}")
        for i, done in enumerate(finished)
    ]
    try:
        for worker in workers:
            worker.start()
        for worker, done in zip(workers, finished, strict=True):
            _wait(done, cancel, stop)
            worker.join()  # it has finished: this returns at once
    except BaseException:
        # e.g. Ctrl-C: stop the threads in their kernels, release the ones
        # still waiting at the gate, and wait for all of them to end.
        stop.cancel()
        gate.abort()
        for worker, done in zip(workers, finished, strict=True):
            if worker.ident is not None:  # started
                done.wait()
                worker.join()
        raise
    if cancel is not None and cancel.cancelled:
        raise Cancelled("the race was cancelled through its CancelToken")
    if errors:
        raise errors[0]
    return counter.value, ends


def _pin_to(cpus: list[int], index: int) -> None:
    """Keep the calling thread on its own CPU (round-robin), where there are several.

    The race shows what happens when threads *really* run at the same time.
    Left to the scheduler, a new thread often starts on its creator's CPU
    and waits there, behind the other, until the load balancer moves it: on
    an otherwise idle machine (a halted virtual CPU wakes slowly) that took
    longer than the first thread's 1,000,000 increments, and nothing raced.
    Only race()'s own threads are pinned; they end with the call.
    """
    if len(cpus) >= 2:
        machine.pin_thread(cpus[index % len(cpus)])  # if it fails: raced unpinned


def _wait(done: threading.Event, cancel: CancelToken | None, stop: CancelToken) -> None:
    """Wait for ``done``; pass a cancellation of ``cancel`` on to ``stop``."""
    if cancel is None:
        done.wait()
        return
    while not done.wait(_POLL_SECONDS):
        if cancel.cancelled:
            stop.cancel()
