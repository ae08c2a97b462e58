"""The GIL instrument: a heartbeat thread and the hold-fraction estimate, in one place.

**What the heartbeat sees.**  A thread that sleeps (GIL released) and wakes
asks for the GIL back.  If another thread holds it, the waker waits.  The loop
(C, ``_core.heartbeat_run`` in csrc/harness/duty.c) reads the clock on waking, GIL still
released, and again once the GIL is its own, so ``got - woke`` is the wait for
the GIL alone: the sleep's own lateness (timer slack, a busy scheduler) is not
in it.  That wait is one sample of the *latency* distribution: how late a
thread that asks for the GIL gets it.  The loop gives the GIL straight back,
so the heartbeat holds it about a microsecond per beat.

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
  more than 10 us for the GIL, the GIL was held at that instant;
* instants that fall *inside* a wait are held too (the heartbeat was asking
  for the GIL and could not get it), so a long wait labels every instant in it;
* instants the heartbeat slept past (the OS woke it late) get the state it
  found on waking, and are counted as ``missed``.  Dropping them instead would
  bias the estimate: a blocked heartbeat labels every instant of its wait, a
  late one in free time would lose its instants.

The share of held instants estimates the share of the time the GIL was held:
each instant is equally likely to fall anywhere in the watched code's
schedule.  Two things would still bias it upwards, and the loop learns both
from its own sleeps, whose ends have nothing to do with the GIL:

* **Waking late.**  The OS runs a sleeper some tens of microseconds after its
  deadline.  A knock that oversleeps into a hold labels a free instant held,
  while the opposite mistake rarely happens (at the end of a hold the
  heartbeat is usually already waiting).  The loop keeps a running mean of
  its lateness and aims each sleep that much early (and asks Linux for no
  timer slack, which would add up to 50 us).
* **The hand-over.**  After the holder lets go, the waiting heartbeat must be
  woken, often on an idle CPU: on a VM that takes 30-300 us, during which
  the GIL is free.  The part of the sleeps' lateness that is waking up (not
  waiting in a run queue) is the same cost; its running mean is taken off
  the end of every wait, though never before the last time the wait timed
  out (a knock that has waited for the switch interval saw the GIL still
  held then).  The run-queue part of a wait is read per knock and taken off
  too.  Both need Linux's ``/proc/thread-self/schedstat``; elsewhere the
  hand-over stays in the estimate.

Measured against ``_core.duty_cycle`` (a C call holding the GIL for a known
share of each period): without these, the estimate read 0.03-0.09 too high at
2-5 ms periods; with them, within the sampling noise
(benchmarks/test_instrument.py).

**Getting a CPU in time.**  All of this assumes the heartbeat runs at its
instants.  A thread that blocks (sleep, select, a read) leaves its CPU, and
Linux then often runs it and the heartbeat on the same CPU: a heartbeat due
during a hold waits in the run queue until the holder blocks again, just
after it let go of the GIL, and the held instant reads free (1 ms holds
between 3 ms sleeps read 0.03 for a true 0.25).  So the heartbeat's thread
claims its CPU (:func:`_claim_cpu`): real-time scheduling (SCHED_FIFO, lowest
priority) where the process may, else, as any ordinary user may on Linux
6.12+, the scheduler's shortest slice, which makes a waking heartbeat preempt
the holder at once.  The loop counts the instants at which it was waiting for
a CPU anyway (``late``, from the run-queue time).  A reading with too many
late instants, with steal time, or taken while other processes took CPU time
the watched process needed is marked ``disturbed`` (:class:`Reading`).

**Bounded memory.**  Only running totals are kept (instants sampled / held /
missed, beats, the heartbeat's own GIL time) and a fixed-size latency
histogram (:class:`LatencyHistogram`), in one array; a :class:`Snapshot`
copies them, and the difference of two snapshots is the reading for the time
between them.

**Cost.**  ``Reading.cost_per_beat`` is the time the heartbeat held the GIL
per beat.  The larger cost is indirect: a holder running Python bytecode is
asked to hand the GIL over once a knock has waited for the switch interval
(5 ms), and to take it back afterwards; benchmarks/test_instrument.py
measures what that costs the watched code.
"""

from __future__ import annotations

import os
import random
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gilx import _core
from gilx._gilstate import gil_enabled

if TYPE_CHECKING:
    from gilx.machine import CpuUse

#: The heartbeat's default period: one sampled instant per millisecond.
DEFAULT_INTERVAL = 0.001

#: The shortest and longest interval accepted (seconds).
MIN_INTERVAL = 1e-5
MAX_INTERVAL = 1.0

# The layout of the totals array shared with csrc/harness/duty.c (its GILX_HB_* slots).
_SAMPLES, _HELD, _MISSED, _BEATS, _BUSY_NS, _MAX_WAIT_NS, _RUNNING, _WAITS = range(8)


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
    """Waits for the GIL, counted in fixed buckets (bounded memory), as harness/duty.c keeps them.

    Bucket 0 holds waits under 1024 ns; above that there are 8 buckets per
    power of two (the three bits after the leading one: each at most 12.5 %
    wide) up to 2**36 ns (~69 s), and the last bucket takes anything longer.
    Percentiles are a bucket's upper edge, capped by the exact maximum.
    """

    SIZE = 1 + 8 * 26

    @classmethod
    def index(cls, ns: int) -> int:
        if ns < 1024:
            return 0
        e = ns.bit_length() - 1
        return min(cls.SIZE - 1, 1 + (e - 10) * 8 + ((ns >> (e - 3)) & 7))

    @classmethod
    def upper_edge_ns(cls, index: int) -> float:
        if index == 0:
            return 1024.0
        e, sub = 10 + (index - 1) // 8, (index - 1) % 8
        return float(2**e) * (1 + (sub + 1) / 8)

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


_LATE = _WAITS + LatencyHistogram.SIZE  # after the histogram (csrc/duty.c's GILX_HB_LATE)
HEARTBEAT_SLOTS = _LATE + 1  # the totals array's length (csrc/duty.c's GILX_HB_SLOTS)

#: A reading is disturbed when more than this share of its sampled instants was
#: labelled late (the heartbeat was waiting for a CPU at that instant): each
#: such instant may be labelled wrong, so beyond this share the estimate can be
#: off by more than the accuracy the benchmarks hold the instrument to.
LATE_SHARE_DISTURBED = 0.03

#: ... or when the host took more than this many cores away (steal time): a
#: heartbeat whose CPU is stolen wakes late without queueing where Linux
#: sees it (0.1 core of steal made 5 ms duty cycles read +0.05).
STEAL_CORES_DISTURBED = 0.03

#: ... or when other processes took more than this share of the CPU time the watched
#: process needed (:meth:`gilx.machine.CpuUse.share_of_needed`, for the cores it used):
#: its threads then wait for a CPU too.  A holder that lets go of the GIL while the
#: heartbeat waits wakes the heartbeat while it still holds the GIL's mutex; a real-time
#: heartbeat preempts it there and then waits for the mutex until the holder gets a CPU
#: back, after the other processes' turns: milliseconds in which the GIL is free but read
#: held (+0.2..+0.3 with a load average of 9 on 2 cores).  The heartbeat's own lateness
#: does not show that wait, so the machine's does.
OTHERS_SHARE_DISTURBED = 0.03


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
    late: int = 0
    priority: str = "normal"

    @classmethod
    def empty(cls, at: int) -> Snapshot:
        return cls(at, 0, 0, 0, 0, 0, 0, (0,) * LatencyHistogram.SIZE)

    def since(self, earlier: Snapshot) -> Reading:
        """What happened between ``earlier`` and this snapshot."""
        return Tally.between(earlier, self).reading(priority=self.priority)


@dataclass(frozen=True)
class Tally:
    """The heartbeat's counts over one or more stretches of time: the difference of two
    snapshots, or (``+``) the sum of several, e.g. the rounds of a benchmark only."""

    seconds: float
    samples: int
    held: int
    missed: int
    late: int
    beats: int
    busy_ns: int
    max_wait_ns: int
    waits: tuple[int, ...]

    @classmethod
    def between(cls, earlier: Snapshot, later: Snapshot) -> Tally:
        waits = tuple(a - b for a, b in zip(later.waits, earlier.waits, strict=True))
        if earlier.beats == 0:
            max_ns = later.max_wait_ns
        else:  # the window's maximum is not kept: its top bucket's edge, capped
            top = max((i for i, c in enumerate(waits) if c), default=0)
            max_ns = min(later.max_wait_ns, round(LatencyHistogram.upper_edge_ns(top)))
        return cls(
            seconds=(later.at - earlier.at) / 1e9,
            samples=later.samples - earlier.samples,
            held=later.held - earlier.held,
            missed=later.missed - earlier.missed,
            late=later.late - earlier.late,
            beats=later.beats - earlier.beats,
            busy_ns=later.busy_ns - earlier.busy_ns,
            max_wait_ns=max_ns,
            waits=waits,
        )

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            seconds=self.seconds + other.seconds,
            samples=self.samples + other.samples,
            held=self.held + other.held,
            missed=self.missed + other.missed,
            late=self.late + other.late,
            beats=self.beats + other.beats,
            busy_ns=self.busy_ns + other.busy_ns,
            max_wait_ns=max(self.max_wait_ns, other.max_wait_ns),
            waits=tuple(a + b for a, b in zip(self.waits, other.waits, strict=True)),
        )

    def reading(self, cpu: CpuUse | None = None, priority: str = "normal") -> Reading:
        """The reading these counts make; ``cpu``: what the rest of the machine used
        meanwhile (None where unknown), ``priority``: the heartbeat's scheduling."""
        samples, beats, max_ns, waits = self.samples, self.beats, self.max_wait_ns, self.waits
        has_gil = gil_enabled()
        held = self.held / samples if samples and has_gil else 0.0

        def pct(q: float) -> float:
            return LatencyHistogram.percentile_ns(waits, q, max_ns) / 1e9

        late_share = self.late / samples if samples else 0.0
        steal = cpu.steal_cores if cpu is not None else None
        others_share = _others_share(cpu) if cpu is not None else None
        disturbed = has_gil and (
            late_share > LATE_SHARE_DISTURBED
            or (steal is not None and steal > STEAL_CORES_DISTURBED)
            or (others_share is not None and others_share > OTHERS_SHARE_DISTURBED)
        )
        return Reading(
            seconds=self.seconds,
            hold_fraction=held,
            latency=Latency(p50=pct(0.5), p90=pct(0.9), p99=pct(0.99), max=max_ns / 1e9),
            gil_enabled=has_gil,
            samples=samples,
            missed=self.missed,
            beats=beats,
            cost_per_beat=self.busy_ns / beats / 1e9 if beats else 0.0,
            late=self.late,
            other_cores=cpu.other_cores - cpu.steal_cores if cpu is not None else None,
            steal_cores=steal,
            others_share=others_share,
            priority=priority,
            disturbed=disturbed,
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

    What the meter saw: ``late``, the instants at which the heartbeat was
    ready but waiting for a CPU (labelled with what it found afterwards);
    ``other_cores`` and ``steal_cores``, how many cores other processes and
    the host (steal time) used meanwhile (None where the OS does not say);
    ``priority``, the heartbeat's scheduling (``"fifo"``: real-time, where the
    process may ask for it; ``"short-slice"``: the scheduler's shortest slice,
    Linux 6.12+, any user; else ``"normal"``).  ``disturbed``: more than
    ``LATE_SHARE_DISTURBED`` of the instants were late, or steal was above
    ``STEAL_CORES_DISTURBED``, or other processes took more than
    ``OTHERS_SHARE_DISTURBED`` of the CPU time this process needed: the
    heartbeat, or the threads it waits on, could not get a CPU in time, and
    the estimate may be off by more than its usual accuracy.
    """

    seconds: float
    hold_fraction: float
    latency: Latency
    gil_enabled: bool
    samples: int
    missed: int
    beats: int
    cost_per_beat: float
    late: int = 0
    other_cores: float | None = None
    steal_cores: float | None = None
    others_share: float | None = None
    priority: str = "normal"
    disturbed: bool = False

    def disturbances(self) -> list[str]:
        """Why the reading is disturbed, in words (empty when it is not)."""
        if not self.disturbed:
            return []
        why = []
        if self.late_share > LATE_SHARE_DISTURBED:
            why.append(f"the heartbeat waited for a CPU at {self.late_share:.1%} of the instants")
        if self.steal_cores is not None and self.steal_cores > STEAL_CORES_DISTURBED:
            why.append(f"the hypervisor took {self.steal_cores:.2f} cores (steal)")
        if self.others_share is not None and self.others_share > OTHERS_SHARE_DISTURBED:
            why.append(
                f"other processes took {self.others_share:.0%} of the CPU time this one needed"
            )
        return why

    @property
    def missed_share(self) -> float:
        return self.missed / self.samples if self.samples else 0.0

    @property
    def late_share(self) -> float:
        return self.late / self.samples if self.samples else 0.0

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
            "meter": {
                "missed_share": self.missed_share,
                "late_share": self.late_share,
                "other_cores": self.other_cores,
                "steal_cores": self.steal_cores,
                "others_share_of_needed": self.others_share,
                "heartbeat_priority": self.priority,
            },
            "disturbed": self.disturbed,
        }


class Heartbeat:
    """A thread that knocks for the GIL at stratified random instants and keeps running totals.

    The loop itself is C (``_core.heartbeat_run``): it holds the GIL only for
    the instant it takes it back at each knock, and adds to totals kept in a
    fixed-size array.  ``start()`` / ``stop()`` (or ``with``) may be repeated;
    the totals go on accumulating.  ``snapshot()`` may be called from any
    thread at any time.
    """

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        *,
        realtime: bool = True,
        short_slice: bool = True,
        blame: _core.BlameRecorder | None = None,
    ) -> None:
        self.interval = check_interval(interval)
        #: A blame recorder (gilx._blame) the loop hands each beat's GIL moment to, or None.
        self.blame = blame
        #: How the heartbeat's thread claims a CPU at its instants (see _claim_cpu):
        #: real-time scheduling where the process may, else a short scheduler slice
        #: where the OS has one; ``priority`` says what it got.
        self.realtime = realtime
        self.short_slice = short_slice
        self.priority = "normal"
        self._totals = array("Q", bytes(8 * HEARTBEAT_SLOTS))
        self._thread: threading.Thread | None = None
        self._cancel: _core.CancelToken | None = None
        self._error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the heartbeat is already running")
        self._cancel = _core.CancelToken()
        self._thread = threading.Thread(
            target=self._run, args=(self._cancel,), name="gilx-heartbeat", daemon=True
        )
        self._thread.start()
        # Return only once the loop runs with the GIL released: code that
        # takes the GIL right after start() (a long C call) would otherwise
        # keep the heartbeat from ever starting, and go unseen.
        while not _core.heartbeat_read(self._totals)[_RUNNING] and self._thread.is_alive():
            time.sleep(50e-6)
        if not _core.heartbeat_read(self._totals)[_RUNNING] and not self._thread.is_alive():
            # It died before its first beat: a reading would be all zeros, and look judged.
            self._thread.join()
            self._thread = None
            error, self._error = self._error, None
            raise RuntimeError(f"the heartbeat thread failed to start: {error!r}") from error

    def stop(self) -> None:
        if self._thread is None or self._cancel is None:
            return
        self._cancel.cancel()
        self._thread.join()
        self._thread = None

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def snapshot(self) -> Snapshot:
        t = _core.heartbeat_read(self._totals)
        return Snapshot(
            at=_core.monotonic_ns(),
            samples=t[_SAMPLES],
            held=t[_HELD],
            missed=t[_MISSED],
            beats=t[_BEATS],
            busy_ns=t[_BUSY_NS],
            max_wait_ns=t[_MAX_WAIT_NS],
            waits=t[_WAITS:_LATE],
            late=t[_LATE],
            priority=self.priority,
        )

    def _run(self, cancel: _core.CancelToken) -> None:
        fd = _open_schedstat()
        restore: Callable[[], None] | None = None
        try:
            self.priority, restore = _claim_cpu(
                realtime=self.realtime, short_slice=self.short_slice
            )
            seed = random.getrandbits(64)
            _core.heartbeat_run(
                self._totals, round(self.interval * 1e9), cancel, seed, fd, self.blame
            )
        except BaseException as e:  # start() raises it in the caller's thread
            self._error = e
        finally:
            if restore is not None:
                restore()
            if fd >= 0:
                os.close(fd)


def _others_share(cpu: CpuUse) -> float:
    """The share of the CPU time this process needed that the rest of the machine took."""
    return cpu.share_of_needed(max(1, round(cpu.own_cores)))


#: The scheduler slice the heartbeat's thread asks for where it cannot be real-time: the
#: shortest Linux allows (0.1 ms).  The heartbeat runs for microseconds per beat.
SHORT_SLICE_NS = 100_000


def _claim_cpu(*, realtime: bool, short_slice: bool) -> tuple[str, Callable[[], None] | None]:
    """Make the calling (heartbeat) thread run at its instants; return what it got
    (``"fifo"``, ``"short-slice"`` or ``"normal"``) and how to undo it.

    Why: the heartbeat's timer often fires on the CPU that runs the GIL's holder (it last
    ran there, woken by the holder's release).  Linux's fair scheduler (EEVDF) lets the
    running thread finish its slice (~3 ms) before a waking one of the same weight runs,
    so the heartbeat waited until the holder blocked, just after it let go of the GIL, and
    read a held instant free: as an ordinary user, 1 ms holds between 3 ms sleeps read
    0.03 for a true 0.25.  Two cures, the first where the process may:

    * real-time scheduling (:func:`_realtime_priority`): root or CAP_SYS_NICE;
    * a short slice (``_core.thread_slice``, Linux 6.12+): a waking thread with a shorter
      slice than the running one preempts it at once, and any thread may shorten its own.
      The same cells then read within 0.03 as an ordinary user (BENCHMARKS.md).

    Where neither is available (macOS, Windows, older kernels) the heartbeat runs as it
    is, and readings whose heartbeat waited for a CPU at too many instants are
    ``disturbed``, so nothing is judged from them.
    """
    if realtime:
        restore = _realtime_priority()
        if restore is not None:
            return "fifo", restore
    if short_slice:
        try:
            old = _core.thread_slice(SHORT_SLICE_NS)
        except OSError:  # refused: nothing changed
            old = None
        if old is not None:
            previous = old

            def put_back() -> None:
                try:
                    _core.thread_slice(previous if previous >= SHORT_SLICE_NS else 0)
                except (OSError, ValueError):
                    pass  # the thread is about to end anyway

            return "short-slice", put_back
    return "normal", None


def _realtime_priority() -> Callable[[], None] | None:
    """Put the calling thread in the real-time class (SCHED_FIFO, its lowest priority) where
    this process may; return how to put it back, or None where it may not.

    Why: a thread that blocks (sleep, select, a read) leaves its CPU, and Linux then often
    runs the watched thread and the heartbeat on the same CPU.  A heartbeat due during a hold
    waits in the run queue until the holder blocks, so it knocks just after the GIL was let
    go, and a held instant reads free: 1 ms holds between 3 ms sleeps read 0.02 for a true
    0.23.  A real-time heartbeat preempts the holder at once (it holds the CPU only a few
    microseconds per beat, asleep or waiting for the GIL otherwise): the same cells read
    within 0.03, even with other processes using 1.5 of the 2 cores (BENCHMARKS.md).
    Linux needs CAP_SYS_NICE or an RLIMIT_RTPRIO above 0 for it, which an ordinary user
    does not have: there :func:`_claim_cpu` asks for a short slice instead.
    """
    getter = getattr(os, "sched_getscheduler", None)
    fifo = getattr(os, "SCHED_FIFO", None)
    if getter is None or fifo is None:
        return None
    try:
        old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, fifo, os.sched_param(os.sched_get_priority_min(fifo)))
    except OSError:  # EPERM: not allowed here
        return None

    def restore() -> None:
        try:
            os.sched_setscheduler(0, old_policy, old_param)
        except OSError:
            pass  # the thread is about to end anyway

    return restore


def _open_schedstat() -> int:
    """This thread's run-queue statistics (Linux), or -1 where there are none."""
    try:
        return os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return -1
