"""Shared helpers for the gilx benchmark suite (``pytest benchmarks/ --benchmark-only``).

How threads are timed
---------------------
pytest-benchmark's ``benchmark`` fixture may be used once per test and is not
thread-safe, so no worker thread ever touches it.  Each multi-worker
benchmark instead times a function that *starts* its worker threads, lets
them all go at once from a ``threading.Barrier``, and joins them
(:func:`run_together`).  Thread start and join are therefore inside the
timed region; they cost tens of microseconds against rounds of 50 ms or
more, and the one-worker baseline starts one thread the same way, so the
comparison stays fair.  These benchmarks use ``benchmark.pedantic`` with a
fixed number of rounds: calibration would otherwise run the threaded
function many times per round and re-size the work it is meant to compare.

Speedup has one definition (the README's "How it is measured"): the median time of one worker doing
the whole work, divided by the median time of k workers splitting the same
work; efficiency = speedup / k.  :class:`Scaling` computes both right after
each benchmark, from the baseline benchmark of the same scenario (which runs
first: it is listed first), and stores them in ``benchmark.extra_info`` so
they land in ``--benchmark-json``.  tools/benchmarks_md.py recomputes them
from the JSON file for BENCHMARKS.md.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import gilx
from gilx import _core

#: When the session started, for the suite's wall time in the JSON file.
_SESSION_START = time.perf_counter()


def cores() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages, where the OS has them: how busy the machine was."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def run_together(
    target: Callable[..., object], args_per_worker: Sequence[tuple[Any, ...]]
) -> list[float]:
    """Run ``target(*args)`` on one new thread per tuple, all released at once; wait for all.

    The threads wait at a barrier of their own, so the last one to be created
    is not a thread-start behind the first.  The first exception of any
    worker is re-raised here.  Returns how long each worker's call took,
    measured by the worker itself.
    """
    barrier = threading.Barrier(len(args_per_worker))
    errors: list[BaseException] = []
    seconds = [0.0] * len(args_per_worker)

    def work(index: int, args: tuple[Any, ...]) -> None:
        try:
            barrier.wait()
            start = time.perf_counter()
            target(*args)
            seconds[index] = time.perf_counter() - start
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=work, args=(i, args), name=f"gilx-bench-{i}", daemon=True)
        for i, args in enumerate(args_per_worker)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return seconds


#: The load before any benchmark ran (machine info is collected at the end).
_LOAD_START = load_average()


def split(total: int, workers: int) -> list[int]:
    """``total`` split into ``workers`` near-equal integer shares that add up to it."""
    share, rest = divmod(total, workers)
    return [share + (1 if i < rest else 0) for i in range(workers)]


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
        speedup = baseline / median
        metrics = {"speedup": round(speedup, 4)}
        if efficiency:
            metrics["efficiency"] = round(speedup / workers, 4)
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
# benchmark records it (Linux only: /proc/stat) and BENCHMARKS.md shows it.
# --------------------------------------------------------------------------
def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, steal) jiffies of all CPUs since boot, or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal


_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: Processes this suite started outside multiprocessing (their CPU is ours).
_HELPER_PIDS: set[int] = set()


def _own_cpu_seconds() -> float:
    """CPU seconds of this process, its finished children, and its live worker processes."""
    times = os.times()
    total = times.user + times.system + times.children_user + times.children_system
    pids = {child.pid for child in multiprocessing.active_children()} | _HELPER_PIDS
    for pid in pids:  # a process pool's workers, the io group's server
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _HZ  # utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return total


class CpuMeter:
    """The share of all cores that other processes (and hypervisor steal) used since start()."""

    def start(self) -> None:
        self._jiffies = _cpu_jiffies()
        self._own = _own_cpu_seconds()
        self._time = time.perf_counter()

    def foreign(self) -> float | None:
        now = _cpu_jiffies()
        if now is None or self._jiffies is None:
            return None
        elapsed = time.perf_counter() - self._time
        busy = (now[0] - self._jiffies[0]) / _HZ
        steal = (now[1] - self._jiffies[1]) / _HZ
        foreign = max(0.0, busy - (_own_cpu_seconds() - self._own)) + steal
        return foreign / (max(elapsed, 1e-9) * cores())


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
# The loopback HTTP server of the io scenario (benchmarks/delay_server.py):
# answers every GET after a delay, from a process of its own.  It binds
# 127.0.0.1 only; nothing here ever reaches another address.
# --------------------------------------------------------------------------
IO_DELAY_S = 0.05


@pytest.fixture(scope="session")
def delay_server_url() -> Iterator[str]:
    """The URL of a local server that answers each GET after IO_DELAY_S seconds."""
    script = Path(__file__).with_name("delay_server.py")
    server = subprocess.Popen(
        [sys.executable, str(script), "--delay", str(IO_DELAY_S)],
        stdout=subprocess.PIPE,
        text=True,
    )
    _HELPER_PIDS.add(server.pid)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise RuntimeError(f"delay_server.py did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line[1])}/"
    finally:
        server.terminate()
        server.wait(timeout=10)
        _HELPER_PIDS.discard(server.pid)


# --------------------------------------------------------------------------
# What BENCHMARKS.md needs to know about the run, stored in the JSON file.
# --------------------------------------------------------------------------
def _blas_info() -> list[dict[str, Any]]:
    try:
        import numpy  # noqa: F401  (loads the BLAS that threadpoolctl inspects)
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("internal_api", "version", "num_threads", "architecture")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    machine_info["gilx"] = {
        "version": gilx.__version__,
        "gil_enabled": gilx.gil_enabled(),
        "free_threaded_build": bool(_core.FREE_THREADED_BUILD),
        "cores": cores(),
        "cpu_count": os.cpu_count(),
        "load_average_start": _LOAD_START,
        "python_build": platform.python_build()[0],
        "switch_interval_s": sys.getswitchinterval(),
        "COUNT_CHUNK": _core.COUNT_CHUNK,
        "STREAM_CHUNK_WORDS": _core.STREAM_CHUNK_WORDS,
        "NOGIL_THRESHOLD": _core.NOGIL_THRESHOLD,
        "blas": _blas_info(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }


def pytest_benchmark_update_json(config: Any, benchmarks: Any, output_json: dict[str, Any]) -> None:
    output_json["gilx_run"] = {
        "suite_seconds": round(time.perf_counter() - _SESSION_START, 1),
        "load_average_end": load_average(),
    }
