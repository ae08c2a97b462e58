"""What every measurement is made of: one clock, a run's spans, repeats' statistics, speedup.

A leaf module: the backends (which start workers) and the runner (which
repeats and judges) both build on it, and it imports nothing of gilx.

* **Speedup** is defined once, in :func:`speedup`: the time of one worker doing
  the whole work divided by the time of ``k`` workers splitting the same work
  (strong scaling).  **Efficiency** is ``speedup / k`` (:func:`efficiency`).
* One repeat's time runs from the first worker leaving the barrier to the
  last one finishing.  ``time.perf_counter`` is a system-wide monotonic clock
  on Linux, macOS and Windows, so the stamps of different processes compare.
* Repeats are reported as the median with the spread (max - min) / median,
  flagged above :data:`SPREAD_LIMIT`.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

#: A measurement whose repeats spread more than this (relative to the median) is flagged.
SPREAD_LIMIT = 0.10

clock = time.perf_counter

#: One repeat: (first worker left the barrier, last worker finished), on :data:`clock`.
Span = tuple[float, float]


def speedup(one_worker_seconds: float, k_workers_seconds: float) -> float:
    """THE definition: one worker's time for the whole work / k workers' time for the same work."""
    return one_worker_seconds / k_workers_seconds if k_workers_seconds > 0 else math.inf


def efficiency(speedup_: float, workers: int) -> float:
    """Speedup per worker: 1.0 is perfect scaling."""
    return speedup_ / workers


def split(total: int, workers: int) -> list[int]:
    """``total`` units in ``workers`` shares that differ by at most one and add up to ``total``."""
    base, extra = divmod(total, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def span_of(stamps: Sequence[Span]) -> Span:
    """One repeat's span from each worker's own (start, end): first start to last end."""
    return min(start for start, _ in stamps), max(end for _, end in stamps)


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one thing, in seconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def maximum(self) -> float:
        return max(self.samples)

    @property
    def spread(self) -> float:
        """(max - min) / median: 0.05 means the repeats lie within 5 % of the median."""
        median = self.median
        return (self.maximum - self.minimum) / median if median > 0 else 0.0

    @property
    def unstable(self) -> bool:
        return self.spread > SPREAD_LIMIT


@dataclass(frozen=True)
class Run:
    """One measurement: ``workers`` workers sharing ``total`` units, one span per repeat.

    ``spans`` holds each repeat's (start, end) on :data:`clock`; ``startup``
    is the seconds from launching the workers to all being ready, their shares
    prepared, where starting them is a cost of its own (processes; None for
    threads).
    """

    workers: int
    total: int
    spans: tuple[Span, ...]
    startup: float | None = None

    @property
    def timing(self) -> Timing:
        return Timing(tuple(end - start for start, end in self.spans))
