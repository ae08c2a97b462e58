"""Judged or not: the one place that decides whether a measurement may give a verdict.

Every verdict gilx gives (a table cell's ✓ / ✗, a scaling point, a race's lost
count, a probe's "releases" / "holds", an assertion's pass or fail, the pytest
plugin's limits, a convoy's slowdown) rests on a :class:`Judgement`.  A
measurement that is not judged gives no verdict: the commands print why
(``reasons``, in words), the JSON says ``"disturbed": true``, the assertions
raise :class:`gilx.testing.Inconclusive`.

What can make a measurement not judged, each built here and nowhere else:

* **other processes** (and the hypervisor's steal time) took more than
  :data:`gilx.timing.DISTURBED_SHARE` of the CPU time the workers needed, even
  after re-measuring (:func:`of_timing`);
* **the GIL instrument's own reading** is disturbed: its heartbeat waited for a
  CPU at too many of its instants, or the host or other processes took CPU
  time the watched process needed (:func:`of_reading`);
* **an unstable speedup**: the ratio of one worker's time to k workers' time,
  taken in rounds that alternate between them, varied by more than
  :data:`gilx.timing.SPREAD_LIMIT` from round to round, even after
  re-measuring.  This sees what no meter here can (other tenants of the host,
  a CPU whose clock changes);
* **missing capacity**: a reference known to use k cores fully (``count_nogil``
  on k threads, timed in the same rounds) did not get
  :data:`CAPACITY_SHARE` of them: the machine did not give k cores' worth at
  that time, so no speedup measured then is believed (:func:`of_speedup`).

pyperf, the anchor here, warns when a benchmark's standard deviation is above
10 % of its mean and leaves the number standing; gilx re-measures, and where
that does not help it gives no verdict.

Where the machine cannot be metered (no ``/proc``: macOS, Windows),
``metered`` is False and ``other_cpu`` None, and the judgement says so
(:data:`CANNOT_METER`) rather than looking judged on evidence it never had;
the checks that need no meter (stability, capacity) still apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gilx.timing import DISTURBED_SHARE, SPREAD_LIMIT, Timing

if TYPE_CHECKING:
    from gilx.instrument import Reading

#: What a measurement says where the machine's CPU use cannot be read.
CANNOT_METER = "cannot measure disturbance here (no /proc): other processes' CPU use is unknown"

#: A speedup is believed only where a reference that scales perfectly (``count_nogil`` on
#: k threads) reached at least this share of the cores the workers could use, in the same
#: rounds.  Why 0.8: on 2 cores a speedup is judged against 1.2x (a gain) and, for
#: processes of pure Python, expected near 2x; with less than 1.6 cores' worth available a
#: 2-worker speedup can lose more than the gap between those.
CAPACITY_SHARE = 0.8


@dataclass(frozen=True)
class Judgement:
    """Whether a measurement may give a verdict, and why not.

    ``judged``: a verdict may be drawn.  ``busy``: other processes (or the
    host) took too much of the CPU time the measurement needed; ``causes``: the
    other reasons it is not judged, in words.  ``other_cpu``: the most of the
    CPU time the measurement needed that the rest of the machine took (None:
    unknown).  ``metered``: whether that could be read at all.  ``capacity``:
    how many cores' worth the reference got, where it was measured.
    """

    judged: bool = True
    causes: tuple[str, ...] = ()
    other_cpu: float | None = None
    metered: bool = True
    capacity: float | None = None
    busy: bool = False

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why it is not judged, in words (empty when judged): one line per cause."""
        busy = (busy_reason(self.other_cpu),) if self.busy else ()
        return busy + self.causes

    @property
    def disturbed(self) -> bool:
        """Not judged: the JSON's ``"disturbed"``."""
        return not self.judged

    @property
    def note(self) -> str | None:
        """What the reader should know even of a judged result (the machine was not metered)."""
        return None if self.metered else CANNOT_METER

    def why(self) -> str:
        """The reasons in one phrase ("" when judged)."""
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, object]:
        return {
            "judged": self.judged,
            "reasons": list(self.reasons),
            "other_cpu": self.other_cpu,
            "metered": self.metered,
            "capacity": self.capacity,
            "note": self.note,
        }


def _max_known(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def combine(*judgements: Judgement) -> Judgement:
    """One judgement of several measurements a verdict rests on: judged if all are."""
    causes: list[str] = []
    for j in judgements:
        causes += [c for c in j.causes if c not in causes]
    return Judgement(
        judged=all(j.judged for j in judgements),
        causes=tuple(causes),
        other_cpu=_max_known(j.other_cpu for j in judgements),
        metered=all(j.metered for j in judgements),
        capacity=_max_known(j.capacity for j in judgements),
        busy=any(j.busy for j in judgements),
    )


def busy_reason(other_cpu: float | None) -> str:
    """Other processes took too much, in words."""
    return (
        f"other processes took up to {other_cpu:.0%} of the CPU time it needed"
        if other_cpu is not None
        else "other processes took the CPU time it needed"
    )


def busy(other_cpu: float | None, metered: bool = True) -> Judgement:
    """Not judged: other processes (or the host) took the CPU time it needed."""
    return Judgement(False, (), other_cpu, metered, busy=True)


def of_timing(timing: Timing) -> Judgement:
    """The meter's judgement of metered repeats: disturbed if they stayed so after re-measuring."""
    other = timing.other_cpu
    metered = bool(timing.other_cpu_samples) and other is not None
    if timing.disturbed:
        return busy(other, metered)
    return Judgement(True, (), other, metered)


def of_reading(reading: Reading) -> Judgement:
    """The GIL instrument's judgement of its own reading (:attr:`Reading.disturbed`)."""
    metered = reading.other_cores is not None
    if not reading.disturbed:
        return Judgement(True, (), reading.others_share, metered)
    # The reading's own words, but "other processes took ..." once, as every judgement says it.
    words = reading.disturbances()
    causes = tuple(w for w in words if not w.startswith("other processes"))
    others = len(causes) < len(words)
    if not words:
        causes = ("the instrument's reading was disturbed",)
    return Judgement(False, causes, reading.others_share, metered, busy=others)


def spread(values: Sequence[float]) -> float:
    """(max - min) / median of ``values`` (0.0 for fewer than two)."""
    if len(values) < 2:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return (ordered[-1] - ordered[0]) / median if median > 0 else 0.0


def ratios(baseline: Sequence[float], timing: Sequence[float]) -> list[float]:
    """Round by round: one worker's time / k workers' time (the speedup of each round)."""
    return [b / t for b, t in zip(baseline, timing, strict=True) if t > 0]


def of_speedup(
    baseline: Timing,
    timing: Timing,
    *,
    workers: int,
    needed: int,
    capacity: float | None,
) -> Judgement:
    """The judgement of one speedup: ``workers`` workers' ``timing`` over the 1-worker ``baseline``.

    Both were measured in the same rounds (sample i of each in round i);
    ``needed``: the cores the workers could use; ``capacity``: how many cores'
    worth the reference got in those rounds (None: not measured).
    """
    other = _max_known((baseline.other_cpu, timing.other_cpu))
    metered = of_timing(baseline).metered and of_timing(timing).metered
    if baseline.disturbed or timing.disturbed:
        meter = busy(other, metered)
    else:
        meter = Judgement(True, (), other, metered)
    if workers == 1:
        return meter
    reasons: list[str] = []
    per_round = ratios(baseline.samples, timing.samples)
    varied = spread(per_round)
    if varied > SPREAD_LIMIT:
        reasons.append(
            f"its speedup varied by {varied:.0%} from round to round (more than"
            f" {SPREAD_LIMIT:.0%}): the machine's speed changed while measuring"
        )
    if capacity is not None and needed > 1 and capacity < CAPACITY_SHARE * needed:
        reasons.append(
            f"a reference that uses {needed} cores fully got only {capacity:.2f} cores' worth:"
            f" this machine did not give {needed} cores at the time"
        )
    elif capacity is not None and needed > 1 and capacity > needed * (1 + SPREAD_LIMIT):
        # More than the cores there are: its one-thread run was slowed, not its k-thread one.
        reasons.append(
            f"a reference that uses {needed} cores read {capacity:.2f} cores' worth, more than"
            " there are: the machine's speed changed while measuring"
        )
    own = Judgement(not reasons, tuple(reasons), None, True, capacity)
    return combine(meter, own)


def of_race(
    *, overlapped: bool, lost: int, disturbed: bool, other_cpu: float | None, metered: bool
) -> Judgement:
    """A race's judgement: its threads ran together, and the machine was quiet or a loss was
    seen anyway (a loss needs no quiet machine to be real)."""
    if not overlapped:
        return Judgement(False, ("its threads never ran at the same time",), other_cpu, metered)
    if disturbed and lost == 0:
        return busy(other_cpu, metered)
    return Judgement(True, (), other_cpu, metered)


__all__ = [
    "CANNOT_METER",
    "CAPACITY_SHARE",
    "DISTURBED_SHARE",
    "Judgement",
    "busy",
    "busy_reason",
    "combine",
    "of_race",
    "of_reading",
    "of_speedup",
    "of_timing",
    "ratios",
    "spread",
]
