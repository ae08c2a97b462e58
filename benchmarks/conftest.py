"""Shared helpers for the gilx benchmark suite (``pytest benchmarks/ --benchmark-only``).

One measurement stack
---------------------
The benchmarks time what ``gilx scale`` times, with the package's own parts:
workers are a crew of :mod:`gilx.backends` (threads, or processes), started
and prepared before any timing, and each round is one ``crew.go()``: the
workers leave a barrier together and the round ends when the last one is done
(:func:`together`).  pytest-benchmark's ``benchmark`` fixture is used once per
test and no worker thread ever touches it.  These benchmarks use
``benchmark.pedantic`` with a fixed number of rounds: calibration would
otherwise run the round many times and re-size the work it is meant to compare.

Speedup has one definition, :func:`gilx.timing.speedup` (one worker's time for
the whole work over k workers' time for the same work); :class:`Scaling`
applies it right after each benchmark, to the baseline benchmark of the same
scenario (which runs first: it is listed first), and stores speedup and
efficiency in ``benchmark.extra_info`` so they land in ``--benchmark-json``.
tools/benchmarks_md.py reads them from there.  Facts about the machine and
the CPU other processes used meanwhile come from :mod:`gilx.machine`.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

import gilx
from gilx import _core, _httpdelay, machine, timing
from gilx.backends.base import Crew
from gilx.backends.threads import ThreadCrew
from gilx.timing import split

#: When the session started, for the suite's wall time in the JSON file.
_SESSION_START = time.perf_counter()


def cores() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    return machine.cores()


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages, where the OS has them: how busy the machine was."""
    load = machine.load_averages()
    return [round(x, 2) for x in load] if load is not None else None


@contextmanager
def together(
    target: Callable[..., object], args_per_worker: Sequence[tuple[Any, ...]]
) -> Iterator[Crew]:
    """One prepared worker thread per tuple, each to run ``target(*args)`` at every ``go()``.

    The threads are started before the block and stopped after it, so a
    round (``crew.go()``) times the work alone; ``crew.stamps`` then holds
    each worker's own (start, end) of that round.
    """
    calls = [functools.partial(target, *args) for args in args_per_worker]
    makers = [functools.partial(_ready, call) for call in calls]
    with ThreadCrew(makers) as crew:
        yield crew


def _ready(call: Callable[[], object]) -> Callable[[], object]:
    """A worker's preparation when its call needs none."""
    return call


def slowest_worker(crew: Crew) -> float:
    """The longest time one worker of the last round took by its own clock."""
    return max(end - start for start, end in crew.stamps)


#: The load before any benchmark ran (machine info is collected at the end).
_LOAD_START = load_average()

#: What the benchmark modules import from here besides the above.
__all__ = ["split"]


def median_seconds(benchmark: Any) -> float | None:
    """The median of a finished benchmark, or None when benchmarks are disabled."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    return float(stats.stats.median)


@dataclass
class Scaling:
    """Baselines of this session, by scenario, and the speedups computed from them."""

    baselines: dict[str, float] = field(default_factory=dict)

    def record(
        self,
        benchmark: Any,
        scenario: str,
        workers: int,
        *,
        target: tuple[str, str, float] | None = None,
        efficiency: bool = True,
        **info: Any,
    ) -> None:
        """Put ``scenario``, ``workers`` and (k > 1) speedup/efficiency into extra_info.

        The first benchmark recorded for a scenario with ``workers == 1`` is its
        baseline.  ``efficiency=False`` where k workers is not what is compared
        (NumPy vs Python: one worker each).  ``target`` is
        ``(metric, ">=" or "<=", value)``: shown in the results, never asserted.
        """
        benchmark.extra_info.update(scenario=scenario, workers=workers, cores=cores(), **info)
        median = median_seconds(benchmark)
        if median is None:
            return
        if workers == 1 and scenario not in self.baselines:
            self.baselines[scenario] = median
        baseline = self.baselines.get(scenario)
        if baseline is None:
            return
        gain = timing.speedup(baseline, median)
        metrics = {"speedup": round(gain, 4)}
        if efficiency:
            metrics["efficiency"] = round(timing.efficiency(gain, workers), 4)
        benchmark.extra_info.update(metrics)
        if target is not None:
            metric, op, value = target
            measured = metrics[metric]
            met = measured >= value if op == ">=" else measured <= value
            benchmark.extra_info["target"] = f"{metric} {op} {value}"
            benchmark.extra_info["target_met"] = met


@pytest.fixture(scope="session")
def scaling() -> Scaling:
    return Scaling()


@pytest.fixture(scope="session")
def medians() -> dict[str, float]:
    """Medians (seconds) that one benchmark leaves for a later one to compare against."""
    return {}


# --------------------------------------------------------------------------
# Noise: how much CPU other processes took while each benchmark ran.  On a
# 2-core machine one busy neighbour halves what two threads can gain, so each
# benchmark records it (Linux only: /proc/stat; gilx.machine.CpuMeter) and
# BENCHMARKS.md shows it.
# --------------------------------------------------------------------------
def _live_children() -> frozenset[int]:
    """Worker processes of this suite still running (their CPU is ours, not noise)."""
    import multiprocessing

    return frozenset(p.pid for p in multiprocessing.active_children() if p.pid is not None)


class CpuMeter:
    """The share of all cores that other processes (and hypervisor steal) used since start()."""

    def __init__(self) -> None:
        self._meter = machine.CpuMeter(_live_children)

    def start(self) -> None:
        self._meter.start()

    def foreign(self) -> float | None:
        use = self._meter.stop()
        return use.machine_share if use is not None else None


#: Before each benchmark, wait (in 0.3 s looks) until other processes use less
#: than QUIET_SHARE of the cores, for at most QUIET_WAIT_S; at most
#: QUIET_BUDGET_S in the whole session, so the suite stays under 5 minutes.
#: GILX_BENCH_QUIET_WAIT=0 turns the waiting off.
QUIET_SHARE = 0.05
QUIET_WAIT_S = float(os.environ.get("GILX_BENCH_QUIET_WAIT", "10"))
QUIET_BUDGET_S = 120.0
_quiet_spent = 0.0


def wait_for_quiet(limit_s: float) -> tuple[float, float | None]:
    """Wait up to ``limit_s`` for a quiet 0.3 s; return (seconds waited, last share seen)."""
    meter = CpuMeter()
    start = time.perf_counter()
    share: float | None = None
    while True:
        meter.start()
        time.sleep(0.3)
        share = meter.foreign()
        waited = time.perf_counter() - start
        if share is None or share < QUIET_SHARE or waited >= limit_s:
            return waited, share


@pytest.fixture(autouse=True)
def foreign_cpu(benchmark: Any, request: pytest.FixtureRequest) -> Iterator[None]:
    """Wait for a quiet machine, then record how busy other processes kept it meanwhile."""
    global _quiet_spent
    if not request.config.getoption("benchmark_disable") and QUIET_WAIT_S > 0:
        limit = min(QUIET_WAIT_S, max(0.0, QUIET_BUDGET_S - _quiet_spent))
        if limit > 0:
            waited, share = wait_for_quiet(limit)
            _quiet_spent += waited
            benchmark.extra_info["quiet_wait_s"] = round(waited, 1)
    meter = CpuMeter()
    meter.start()
    yield
    share = meter.foreign()
    if share is not None:
        benchmark.extra_info["foreign_cpu"] = round(share, 3)


# --------------------------------------------------------------------------
# The loopback HTTP server of the io scenario: the io workload's own server
# (gilx._httpdelay), which answers every GET after a delay from a process of
# its own.  It binds 127.0.0.1 only; nothing here ever reaches another address.
# --------------------------------------------------------------------------
IO_DELAY_S = 0.05
#: The benchmarks' answers are tiny: the wait is the point, not the transfer.
IO_BODY_BYTES = 5


@pytest.fixture(scope="session")
def delay_server_url() -> Iterator[str]:
    """The URL of a local server that answers each GET after IO_DELAY_S seconds."""
    with _httpdelay.serve(delay=IO_DELAY_S, body_bytes=IO_BODY_BYTES) as url:
        yield url


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--instrument-sweep",
        action="store_true",
        default=False,
        help="the instrument's accuracy table over every duty cycle (about 4 minutes with"
        " its peers) instead of the representative cells",
    )


# --------------------------------------------------------------------------
# What BENCHMARKS.md needs to know about the run, stored in the JSON file.
# --------------------------------------------------------------------------
def _python_build() -> str:
    import platform

    return platform.python_build()[0]


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    machine_info["gilx"] = {
        "version": gilx.__version__,
        "gil_enabled": gilx.gil_enabled(),
        "free_threaded_build": machine.free_threaded_build(),
        "cores": cores(),
        "cpu_count": os.cpu_count(),
        "load_average_start": _LOAD_START,
        "python_build": _python_build(),
        "switch_interval_s": sys.getswitchinterval(),
        "COUNT_CHUNK": _core.COUNT_CHUNK,
        "STREAM_CHUNK_WORDS": _core.STREAM_CHUNK_WORDS,
        "NOGIL_THRESHOLD": _core.NOGIL_THRESHOLD,
        "blas": machine.blas_info(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }


def pytest_benchmark_update_json(config: Any, benchmarks: Any, output_json: dict[str, Any]) -> None:
    output_json["gilx_run"] = {
        "suite_seconds": round(time.perf_counter() - _SESSION_START, 1),
        "load_average_end": load_average(),
    }
