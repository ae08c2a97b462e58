"""The GIL instrument: a heartbeat thread and the hold-fraction estimate, in one place.

**What the heartbeat sees.**  A thread that sleeps (GIL released) and wakes
asks for the GIL back.  If another thread holds it, the waker waits.  The C
helper ``_core.knock`` reads the clock at waking (GIL still released) and again
once the GIL is ours, so ``got - woke`` is the wait for the GIL alone; the
sleep's own lateness (timer slack, a busy scheduler) is not in it.  That wait
is one sample of the *latency* distribution: how late a thread that asks for
the GIL gets it.

**Why counting waited time is biased.**  The old estimate (and gilknocker's)
divides the time spent waiting by the whole time.  But while the heartbeat
sleeps, the GIL may be held too, and that time is counted as "free": a
callable holding the GIL all the time read 0.86, one holding it a quarter of
the time read 0.18.

**The estimate: sampling instants on a fixed grid.**  Time is cut into strata
of ``interval`` seconds from the start; in each stratum one instant is drawn
at random (stratified sampling).  The grid is fixed in advance, so the
instants are independent of whatever the watched code does.  Every instant is
then labelled:

* the heartbeat sleeps until the next instant and knocks: if it had to wait
  (``got - woke`` > :data:`BLOCKED_NS`), the GIL was held at that instant;
* instants that fall *inside* a wait are held too (the heartbeat was asking
  for the GIL and could not get it), so a long wait labels every instant in it;
* instants that passed while the heartbeat was late waking up (the OS let it
  sleep past them) are *missed*: not labelled, and counted apart.

The share of labelled instants that were held estimates the share of the time
the GIL was held, without the bias above: each instant is equally likely to
fall anywhere in the watched code's schedule.  Its known, small error is the
hand-over: after the holder releases, the heartbeat needs a few microseconds to
wake and take the GIL, and instants in that gap count as held.

**Bounded memory.**  Only running totals are kept (instants sampled / held /
missed, beats, the heartbeat's own GIL time) and a fixed-size latency
histogram (:class:`LatencyHistogram`); a :class:`Snapshot` copies them, and the
difference of two snapshots is the reading for the time between them.

**Cost.**  Each beat holds the GIL for the heartbeat's bookkeeping (measured:
``Reading.cost_per_beat``).  A holder that runs Python bytecode is asked to
hand the GIL over when a knock has waited for the switch interval (5 ms), so a
pure-Python holder is interrupted about once per switch interval + interval;
benchmarks/test_instrument.py measures what that costs it.
"""

from __future__ import annotations

import math
import os
import random
import threading
from dataclasses import dataclass

from gilx import _core
from gilx._gilstate import gil_enabled

#: The heartbeat's default period: one sampled instant per millisecond.
DEFAULT_INTERVAL = 0.001

#: The shortest and longest interval accepted (seconds).
MIN_INTERVAL = 1e-5
MAX_INTERVAL = 1.0

#: A knock that waited longer than this for the GIL (ns) found it held.  Taking
#: a free GIL costs well under a microsecond; a preempted heartbeat can take
#: longer, so the threshold leaves room for that.
BLOCKED_NS = 10_000


def check_interval(interval: object) -> float:
    """``interval`` as a float of seconds, or TypeError / ValueError saying what is wrong."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise TypeError(f"interval must be a number of seconds, not {type(interval).__name__}")
    value = float(interval)
    if not value > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise ValueError(
            f"interval must be between {MIN_INTERVAL:g} and {MAX_INTERVAL:g} seconds, "
            f"got {interval!r}"
        )
    return value


class LatencyHistogram:
    """Waits for the GIL, counted in fixed log-spaced buckets (bounded memory).

    Bucket 0 holds waits under 1 microsecond; above that there are
    :data:`PER_OCTAVE` buckets per doubling up to ~67 s (each ~9 % wide), and
    the last bucket takes anything longer.  Percentiles are a bucket's upper
    edge, capped by the exact maximum.
    """

    PER_OCTAVE = 8
    OCTAVES = 26
    SIZE = 1 + PER_OCTAVE * OCTAVES

    @classmethod
    def index(cls, ns: int) -> int:
        if ns < 1000:
            return 0
        return min(cls.SIZE - 1, 1 + int(cls.PER_OCTAVE * math.log2(ns / 1000)))

    @classmethod
    def upper_edge_ns(cls, index: int) -> float:
        return 1000.0 * float(2.0 ** (index / cls.PER_OCTAVE))

    @classmethod
    def percentile_ns(cls, counts: tuple[int, ...], q: float, max_ns: int) -> int:
        """The ``q`` quantile (0..1) of the waits in ``counts``; 0 when empty."""
        total = sum(counts)
        if total == 0:
            return 0
        rank = q * total
        seen = 0
        for i, c in enumerate(counts):
            seen += c
            if c and seen >= rank:
                return min(max_ns, round(cls.upper_edge_ns(i)))
        return max_ns


@dataclass(frozen=True)
class Snapshot:
    """The heartbeat's running totals at one moment (``at``: monotonic_ns)."""

    at: int
    samples: int
    held: int
    missed: int
    beats: int
    busy_ns: int
    max_wait_ns: int
    waits: tuple[int, ...]

    @classmethod
    def empty(cls, at: int) -> Snapshot:
        return cls(at, 0, 0, 0, 0, 0, 0, (0,) * LatencyHistogram.SIZE)

    def since(self, earlier: Snapshot) -> Reading:
        """What happened between ``earlier`` and this snapshot."""
        waits = tuple(a - b for a, b in zip(self.waits, earlier.waits, strict=True))
        if earlier.beats == 0:
            max_ns = self.max_wait_ns
        else:  # the window's maximum is not kept: its top bucket's edge, capped
            top = max((i for i, c in enumerate(waits) if c), default=0)
            max_ns = min(self.max_wait_ns, round(LatencyHistogram.upper_edge_ns(top)))
        samples = self.samples - earlier.samples
        beats = self.beats - earlier.beats
        has_gil = gil_enabled()
        held = (self.held - earlier.held) / samples if samples and has_gil else 0.0

        def pct(q: float) -> float:
            return LatencyHistogram.percentile_ns(waits, q, max_ns) / 1e9

        return Reading(
            seconds=(self.at - earlier.at) / 1e9,
            hold_fraction=held,
            latency=Latency(p50=pct(0.5), p90=pct(0.9), p99=pct(0.99), max=max_ns / 1e9),
            gil_enabled=has_gil,
            samples=samples,
            missed=self.missed - earlier.missed,
            beats=beats,
            cost_per_beat=(self.busy_ns - earlier.busy_ns) / beats / 1e9 if beats else 0.0,
        )


@dataclass(frozen=True)
class Latency:
    """How late a thread that asked for the GIL got it, in seconds."""

    p50: float
    p90: float
    p99: float
    max: float

    def to_dict(self) -> dict[str, float]:
        return {"p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max}


@dataclass(frozen=True)
class Reading:
    """The instrument's reading over a stretch of time.

    ``hold_fraction``: share of the sampled instants at which the GIL was held
    by another thread (0.0 when the GIL is off).  ``samples`` / ``missed``:
    instants labelled / slept through.  ``cost_per_beat``: seconds the
    heartbeat itself held the GIL per beat.
    """

    seconds: float
    hold_fraction: float
    latency: Latency
    gil_enabled: bool
    samples: int
    missed: int
    beats: int
    cost_per_beat: float

    def to_dict(self) -> dict[str, object]:
        return {
            "seconds": self.seconds,
            "hold_fraction": self.hold_fraction,
            "latency": self.latency.to_dict(),
            "gil_enabled": self.gil_enabled,
            "samples": self.samples,
            "missed": self.missed,
            "beats": self.beats,
            "cost_per_beat": self.cost_per_beat,
        }


class Heartbeat:
    """A thread that knocks for the GIL at stratified random instants and keeps running totals.

    ``start()`` / ``stop()`` (or ``with``) may be repeated; the totals go on
    accumulating.  ``snapshot()`` may be called from any thread at any time.
    """

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = check_interval(interval)
        self._lock = threading.Lock()
        self._samples = self._held = self._missed = self._beats = 0
        self._busy_ns = self._max_wait_ns = 0
        self._waits = [0] * LatencyHistogram.SIZE
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the heartbeat is already running")
        self._stop = threading.Event()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop, ready), name="gilx-heartbeat", daemon=True
        )
        self._thread.start()
        # Return only once the heartbeat is about to knock: code that takes
        # the GIL right after start() (a long C call) would otherwise keep it
        # from ever running, and the whole call would go unseen.
        ready.wait()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                at=_core.monotonic_ns(),
                samples=self._samples,
                held=self._held,
                missed=self._missed,
                beats=self._beats,
                busy_ns=self._busy_ns,
                max_wait_ns=self._max_wait_ns,
                waits=tuple(self._waits),
            )

    def _run(self, stop: threading.Event, ready: threading.Event) -> None:
        fd = _open_schedstat()
        try:
            self._beat(stop, ready, fd)
        finally:
            if fd >= 0:
                os.close(fd)

    def _beat(self, stop: threading.Event, ready: threading.Event, fd: int) -> None:
        knock, now, index = _core.knock, _core.monotonic_ns, LatencyHistogram.index
        step = max(1, round(self.interval * 1e9))
        draw = random.Random().random
        origin = now()
        stratum = 0
        target = origin + int(draw() * step)
        got = origin
        ready.set()
        while not stop.is_set():
            entered, woke, last_got, queued, runs = knock(target, fd)
            busy, got = entered - got, last_got
            # The GIL was held from waking until the holder let go; the time
            # the heartbeat then spent waiting for a CPU (the hand-over) it
            # was free.  A long wait wakes up every switch interval, so the
            # hand-over is estimated as the mean run-queue time per wake-up.
            freed = got - (queued // runs if runs > 0 else queued)
            wait = freed - woke
            blocked = wait > BLOCKED_NS
            samples, held, missed = 1, int(blocked), 0
            # Label the instants of the later strata that are already past.
            stratum += 1
            while True:
                base = origin + stratum * step
                if blocked and base >= woke and base + step <= freed:
                    whole = (freed - base) // step  # strata wholly inside the wait
                    samples += whole
                    held += whole
                    stratum += whole
                    continue
                instant = base + int(draw() * step)
                if instant >= got:
                    target = instant
                    break
                # Inside the wait: held until the holder let go.  Before
                # waking (the OS let the heartbeat sleep past it): labelled
                # with the state found on waking, and counted as missed.
                samples += 1
                held += blocked and instant < freed
                missed += instant <= woke
                stratum += 1
            with self._lock:
                self._samples += samples
                self._held += held
                self._missed += missed
                self._beats += 1
                self._busy_ns += busy
                self._waits[index(wait)] += 1
                if wait > self._max_wait_ns:
                    self._max_wait_ns = wait


def _open_schedstat() -> int:
    """This thread's run-queue statistics (Linux), or -1 where there are none."""
    try:
        return os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return -1
