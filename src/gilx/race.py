"""The lost-update race: several threads incrementing one shared counter."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import SupportsIndex

from gilx import machine
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

COUNTER_TYPES: dict[str, type[UnsafeCounter] | type[AtomicCounter] | type[LockedCounter]] = {
    "unsafe": UnsafeCounter,
    "atomic": AtomicCounter,
    "locked": LockedCounter,
}
KINDS: tuple[str, ...] = tuple(COUNTER_TYPES)

#: More threads than this is a mistake, not an experiment: refuse it rather
#: than exhaust the process's thread limit.
MAX_THREADS = 1024

#: How often (seconds) race() looks at a caller's CancelToken while it waits
#: for its threads.
_POLL_SECONDS = 0.005


@dataclass(frozen=True)
class RaceResult:
    """What one race produced: ``lost == expected - observed``."""

    kind: str
    threads: int
    expected: int
    observed: int
    lost: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lost", self.expected - self.observed)

    def to_dict(self) -> dict[str, int | str]:
        """The JSON object of a ``race`` result (the README's reference, JSON shapes)."""
        return asdict(self)


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
        raise OverflowError(
            f"threads * increments is too large: {expected} > {MAX_COUNT}"
        )

    counter = COUNTER_TYPES[kind]()
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
    return RaceResult(kind=kind, threads=nthreads, expected=expected, observed=counter.value)


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
