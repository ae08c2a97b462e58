"""The seed's first scenario: pure-Python counting on one thread, two threads, processes.

Threads share one GIL, so two of them do no better than one (the seed's
"no gain"); processes each have their own interpreter and GIL, so they scale
with the cores.  Process pools are started outside the timed region (their
start-up is its own group, ``process-pool-start``).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Iterator
from multiprocessing.pool import Pool

import pytest
from conftest import Scaling, run_together, split

from gilx import count_gil, count_py

#: About 0.1 s of pure-Python counting on a current core.
N_PY = 6_000_000
#: About 0.1 s of the C kernel (the control of the process group).
N_C_PROCESSES = 400_000_000
WORKERS = (1, 2)
ROUNDS = 5


def start_method() -> str:
    """The platform's default start method unless GILX_BENCH_START_METHOD names another."""
    return os.environ.get("GILX_BENCH_START_METHOD") or multiprocessing.get_start_method()


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Two warm worker processes: started (and each has run once) before any timing."""
    ctx = multiprocessing.get_context(start_method())
    with ctx.Pool(max(WORKERS)) as workers:
        workers.map(count_py, [1] * max(WORKERS), chunksize=1)
        yield workers


@pytest.mark.benchmark(group="cpu-python")
@pytest.mark.parametrize("workers", WORKERS, ids=lambda k: f"{k}thread")
def test_count_py_threads(benchmark, scaling: Scaling, workers: int) -> None:
    shares = [(share,) for share in split(N_PY, workers)]
    benchmark.pedantic(run_together, args=(count_py, shares), rounds=ROUNDS, warmup_rounds=1)
    scaling.record(benchmark, "count_py-threads", workers, n=N_PY)


def timed_count_py(n: int) -> float:
    """count_py(n) in a worker process; return how long the worker itself took."""
    start = time.perf_counter()
    count_py(n)
    return time.perf_counter() - start


def timed_count_gil(n: int) -> float:
    """count_gil(n) in a worker process; return how long the worker itself took."""
    start = time.perf_counter()
    count_gil(n)
    return time.perf_counter() - start


def run_pool(benchmark, pool: Pool, work: Callable[[int], float], n: int, workers: int) -> float:
    """Time ``pool.map(work, shares)`` in ROUNDS rounds; return the slowest worker's own time.

    That median of the slowest worker's own time tells how much of the wall
    time is the work itself and how much is the pool (dispatch, results, the
    workers not starting at the same instant).
    """
    shares = split(n, workers)
    slowest: list[float] = []

    def run() -> None:
        slowest.append(max(pool.map(work, shares, 1)))

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)
    return statistics.median(slowest[1:] or slowest)  # without the warm-up round


@pytest.mark.benchmark(group="cpu-python")
@pytest.mark.parametrize("workers", WORKERS, ids=lambda k: f"{k}process")
def test_count_py_processes(benchmark, scaling: Scaling, pool: Pool, workers: int) -> None:
    # The baseline is one process of the same pool doing all the work, so
    # both sides pay the same pickling and result passing.
    worker_s = run_pool(benchmark, pool, timed_count_py, N_PY, workers)
    target = ("speedup", ">=", 1.9) if workers > 1 else None
    scaling.record(
        benchmark, "count_py-processes", workers, target=target, n=N_PY,
        start_method=start_method(), slowest_worker_s=round(worker_s, 5),
    )


@pytest.mark.benchmark(group="cpu-python")
@pytest.mark.parametrize("workers", WORKERS, ids=lambda k: f"count_gil-{k}process")
def test_count_gil_processes(benchmark, scaling: Scaling, pool: Pool, workers: int) -> None:
    """The control: the same pool running the C kernel instead of the interpreter loop.

    Where count_py scales worse than this on processes, the pool and the GIL
    are not the reason (neither differs): the two cores run two interpreter
    loops slower than one.
    """
    worker_s = run_pool(benchmark, pool, timed_count_gil, N_C_PROCESSES, workers)
    scaling.record(
        benchmark, "count_gil-processes", workers, n=N_C_PROCESSES,
        start_method=start_method(), slowest_worker_s=round(worker_s, 5),
    )


def _start_pool(workers: int) -> None:
    ctx = multiprocessing.get_context(start_method())
    with ctx.Pool(workers) as started:
        started.map(count_py, [0] * workers, chunksize=1)


@pytest.mark.benchmark(group="process-pool-start")
def test_process_pool_start(benchmark) -> None:
    """What the speedups above leave out: starting the pool, one task each, shutting it down."""
    benchmark.pedantic(_start_pool, args=(max(WORKERS),), rounds=3, warmup_rounds=1)
    benchmark.extra_info.update(workers=max(WORKERS), start_method=start_method())
