"""``gilx.watch()``: the GIL instrument around a block of your own code.

::

    with gilx.watch() as w:
        run_my_threads()
    print(w.hold_fraction, w.latency.p99)

While the block runs, a heartbeat thread (:mod:`gilx.instrument`) asks for the
GIL at random instants and notes whether it was held and how long it waited.
It measures the whole process, whatever thread holds the GIL.  The readings
are live inside the block and fixed once it ends; the final one also says
what the rest of the machine used meanwhile, and whether the heartbeat was
kept from its CPU (``disturbed``).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from gilx._judgement import Judgement, of_reading
from gilx.instrument import DEFAULT_INTERVAL, Heartbeat, Latency, Reading, Snapshot, Tally
from gilx.machine import CpuMeter, CpuUse

if TYPE_CHECKING:
    from gilx._blame import Blame, BlameRecorder


class Watch:
    """A running (or finished) watch; see :func:`watch`."""

    def __init__(self, interval: float = DEFAULT_INTERVAL, *, top: bool = False) -> None:
        self._heart = Heartbeat(interval)
        #: Whether this watch also says who held the GIL (``top=True``; see :attr:`blame`).
        self.top = top
        self._recorder: BlameRecorder | None = None
        self._blame: Blame | None = None
        #: Why there is no blame although ``top`` was asked for (a free-threaded build...).
        self.blame_unavailable: str | None = None
        self._start: Snapshot | None = None
        self._final: Reading | None = None
        self._meter = CpuMeter()
        self._cpu: CpuUse | None = None

    @property
    def interval(self) -> float:
        return self._heart.interval

    def __enter__(self) -> Watch:
        self._final = None
        self._blame = None
        if self.top:
            self._start_blame()
        self._meter.start()
        self._start = self._heart.snapshot()
        self._heart.start()
        return self

    def _start_blame(self) -> None:
        from gilx._blame import BlameRecorder, unavailable_reason

        self.blame_unavailable = unavailable_reason()
        if self.blame_unavailable is None:
            self._recorder = BlameRecorder(self.interval)
            self._heart.blame = self._recorder.capsule
            self._recorder.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._heart.stop()
        end = self._heart.snapshot()
        self._cpu = self._meter.stop()
        assert self._start is not None
        self._final = Tally.between(self._start, end).reading(self._cpu, self._heart.priority)
        if self._recorder is not None:
            self._recorder.stop()
            self._blame = self._recorder.blame(
                self._final.seconds, judged=of_reading(self._final).judged
            )
            self._recorder = None
            self._heart.blame = None

    @property
    def blame(self) -> Blame | None:
        """Who held the GIL while other threads waited (:class:`gilx._blame.Blame`): with
        ``top=True``, live inside the block and fixed after it; None without ``top``, or
        where there is no GIL to blame (then :attr:`blame_unavailable` says why).  Its
        ``judged`` is the watch's own :attr:`judgement` (one judgement for both)."""
        if self._blame is not None or self._recorder is None:
            return self._blame
        r = self.reading()
        return self._recorder.blame(r.seconds, judged=of_reading(r).judged)

    def reading(self) -> Reading:
        """The reading so far (inside the block) or of the whole block (after it)."""
        if self._final is not None:
            return self._final
        if self._start is None:
            raise RuntimeError("this watch has not been started: use it in a `with` block")
        return self._heart.snapshot().since(self._start)

    def snapshot(self) -> Snapshot:
        """The heartbeat's running totals now (for readings of parts of the block)."""
        return self._heart.snapshot()

    def cpu_use(self) -> CpuUse | None:
        """What the rest of the machine used since the block began (until it ended)."""
        if self._final is not None or self._start is None:
            return self._cpu
        return self._meter.stop()

    @property
    def priority(self) -> str:
        """The heartbeat's scheduling: ``"fifo"`` (real-time) where allowed, else
        ``"short-slice"`` (Linux 6.12+, any user), else ``"normal"``."""
        return self._heart.priority

    @property
    def seconds(self) -> float:
        return self.reading().seconds

    @property
    def hold_fraction(self) -> float:
        return self.reading().hold_fraction

    @property
    def latency(self) -> Latency:
        return self.reading().latency

    @property
    def gil_enabled(self) -> bool:
        return self.reading().gil_enabled

    @property
    def disturbed(self) -> bool:
        """Whether the heartbeat could not get a CPU in time (see :class:`Reading`)."""
        return self.reading().disturbed

    @property
    def judgement(self) -> Judgement:
        """Whether the reading may be judged, why not, and whether the machine was metered."""
        return of_reading(self.reading())

    def to_dict(self) -> dict[str, object]:
        """``seconds``, ``hold_fraction``, ``latency`` (p50/p90/p99/max), ``gil_enabled``, the
        instrument's own counts (``samples``, ``missed``, ``beats``, ``cost_per_beat``), what
        the meter saw (``meter``: missed and late shares, other processes' and steal cores,
        the heartbeat's priority), ``disturbed``, ``other_cpu`` (the share of the CPU time this
        process needed that other processes took; None where it cannot be read), and the
        ``judgement`` with its ``note`` (where the machine cannot be metered); with
        ``top=True`` also ``blame`` (None where there is no GIL to blame, and then
        ``blame_unavailable`` says why)."""
        judgement = self.judgement
        result: dict[str, object] = {
            **self.reading().to_dict(),
            "other_cpu": judgement.other_cpu,
            "judgement": judgement.to_dict(),
            "note": judgement.note,
        }
        if self.top:
            blame = self.blame
            result["blame"] = blame.to_dict() if blame is not None else None
            if blame is None:
                result["blame_unavailable"] = self.blame_unavailable
        return result


def watch(interval: float = DEFAULT_INTERVAL, *, top: bool = False) -> Watch:
    """Measure the GIL while a ``with`` block runs: hold fraction and how late threads get it.

    ``interval``: seconds between the heartbeat's sampled instants (a
    positive number; TypeError / ValueError otherwise).  On a build without a
    GIL, ``gil_enabled`` is False and ``hold_fraction`` 0.0.  ``top=True``:
    also who held the GIL while other threads waited, per thread and per
    Python location (``.blame``, ``to_dict()["blame"]``).
    """
    if not isinstance(top, bool):
        raise TypeError(f"top must be True or False, not {type(top).__name__}")
    return Watch(interval, top=top)
