"""Decide what to measure for the tour and the table, and measure each thing once.

:class:`Measurements` remembers what it measured: the tour's sections and the
table share one scaling run per (workload, mode), and the threads and
processes runs of a workload share one calibrated size, so the two columns
compare the same total work.  (What they print is :mod:`gilx._present`'s.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gilx import _judgement, backends, machine, runner, vectorise, workloads
from gilx._judgement import Judgement

if TYPE_CHECKING:
    from gilx._convoy import ConvoyResult
    from gilx._costs import Costs


def default_workers() -> int:
    """The worker count of the table and tour: every core, at least 2, at most 8."""
    return max(2, min(machine.cores(), 8))


@dataclass(frozen=True)
class Comparison:
    """One computation timed in pure Python and with NumPy, at the same size."""

    pair: vectorise.Pair
    size: int
    python: runner.Timing
    numpy: runner.Timing

    @property
    def judgement(self) -> Judgement:
        """Both timings' judgement (:mod:`gilx._judgement`)."""
        return _judgement.combine(
            _judgement.of_timing(self.python), _judgement.of_timing(self.numpy)
        )

    @property
    def disturbed(self) -> bool:
        """Either timing stayed disturbed after re-measuring: not to be judged."""
        return self.judgement.disturbed

    @property
    def other_cpu(self) -> float | None:
        shares = (self.python.other_cpu, self.numpy.other_cpu)
        known = [x for x in shares if x is not None]
        return max(known) if known else None

    @property
    def numpy_speedup(self) -> float:
        """How many times faster NumPy was than pure Python (medians)."""
        return self.python.median / self.numpy.median if self.numpy.median > 0 else float("inf")


class Measurements:
    """The measurements of one tour or table, each taken at most once."""

    def __init__(
        self,
        *,
        quick: bool = False,
        workers: int | None = None,
        start_method: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.quick = quick
        self.load_before = machine.load_1min()  # before these measurements add their own work
        self.workers = workers or default_workers()
        self.start_method = start_method
        self.progress = progress or (lambda _message: None)
        self._scales: dict[tuple[str, str], runner.ScaleResult] = {}
        self._sizes: dict[str, int] = {}
        self._comparisons: dict[str, Comparison] = {}
        self._convoys: dict[tuple[str, float | None], ConvoyResult] = {}
        self._convoy_sizes: dict[str, int] = {}
        self._costs: Costs | None = None

    def can_run(self, workload: str, mode: str) -> bool:
        """Whether ``mode`` runs ``workload`` here (interpreters: CPython 3.12+, not NumPy)."""
        work = workloads.get(workload)
        try:
            work.require()
            backends.get(mode).check(work)
        except (ValueError, ImportError):
            return False
        return True

    def costs(self) -> Costs:
        """What one worker costs here, a process against an interpreter (needs 3.12+)."""
        if self._costs is None:
            from gilx import _costs  # imported on first use: the tour's interpreters section

            self.progress("what a process and an interpreter cost")
            self._costs = _costs.measure(quick=self.quick, start_method=self.start_method)
        return self._costs

    def scale(self, workload: str, mode: str) -> runner.ScaleResult:
        """1 and ``workers`` workers of ``workload`` in ``mode``."""
        key = (workload, mode)
        if key not in self._scales:
            result = runner.scale(
                workload,
                mode,
                (1, self.workers),
                quick=self.quick,
                size=self._sizes.get(workload),
                start_method=self.start_method,
                progress=self.progress,
            )
            self._sizes.setdefault(workload, result.size)
            self._scales[key] = result
        return self._scales[key]

    def speedup(self, workload: str, mode: str) -> runner.ScalePoint:
        return self.scale(workload, mode).point(self.workers)

    def convoy(self, workload: str, switch_interval: float | None = None) -> ConvoyResult:
        """``workload`` on a worker thread alone and beside one busy pure-Python thread.

        ``switch_interval``: ``sys.setswitchinterval`` during the measurement (restored after).
        """
        key = (workload, switch_interval)
        if key not in self._convoys:
            from gilx import _convoy  # imported on first use: the tour's convoy section

            # Per-call work (a sleep, a download) is judged by its calls' p50 and p99,
            # not by the repeats' total time: in a quick run one repeat of ~100 calls
            # tells them.  The size calibrated for the first interval serves the next.
            per_call = _convoy.get(workload).per_call
            result = _convoy.convoy(
                workload,
                quick=self.quick,
                switch_interval=switch_interval,
                size=self._convoy_sizes.get(workload),
                repeats=1 if self.quick and per_call else None,
                progress=self.progress,
            )
            self._convoy_sizes.setdefault(workload, result.size)
            self._convoys[key] = result
        return self._convoys[key]

    def compare(self, pair: vectorise.Pair) -> Comparison:
        """``pair`` in pure Python and in NumPy, sized so the Python version takes a while.

        Both run on one core: BLAS is pinned to one thread (as in the numpy
        workload), so the ratio is vectorisation alone, not extra cores.
        """
        if pair.name not in self._comparisons:
            self.progress(f"{pair.name}: pure Python vs NumPy")
            target = runner.QUICK_SECONDS if self.quick else runner.FULL_SECONDS
            repeats = runner.QUICK_REPEATS if self.quick else runner.FULL_REPEATS
            with workloads.get("numpy").context():
                size = runner.calibrate(lambda n: pair.prepare(n)[0], pair.start_size, target)
                python, vectorised = pair.prepare(size)
                vectorised()  # warm-up: NumPy's first call pays for allocating its temporaries
                self._comparisons[pair.name] = Comparison(
                    pair,
                    size,
                    runner.time_call(python, repeats),
                    runner.time_call(vectorised, repeats),
                )
        return self._comparisons[pair.name]
