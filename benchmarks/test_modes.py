"""More ways to run the work: asyncio vs threads on I/O, Dask's cost per task, Numba with nogil.

* **io-asyncio vs io-threads**: the same downloads from the same loopback
  server (conftest's ``delay_server_url``), as k asyncio tasks on one event
  loop in one thread, and as k threads doing blocking urllib reads (the io
  workload's own client), both run by the package's backends.  Asyncio
  overlaps the waits without threads.
* **dask-task**: what one task costs on a ``LocalCluster`` (one worker process,
  one thread) for a task that does nothing (``count_py(0)``): one at a time
  (submit, wait, repeat: the round trip) and 100 at once (submit all, gather).
* **numba**: one xorshift loop compiled by Numba with ``nogil=True`` and
  without, on 1 and 2 threads: the Numba twin of count_nogil / count_gil.
  Compilation happens before timing (``compile_s`` in extra_info).

Benchmarks needing an extra skip with the reason when it is missing; CI
installs the ``numba`` and ``dask`` extras so they run there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import IO_DELAY_S, Scaling

from gilx import _extras, _numba, backends, count_py, workloads
from gilx.backends.base import Crew

#: Downloads per round, split over the workers: 8 x 50 ms = 0.4 s for one worker.
REQUESTS = 8
ROUNDS = 5

needs_numba = pytest.mark.skipif(
    not _extras.installed("numba"), reason='needs numba: pip install "gilx[numba]"'
)
needs_dask = pytest.mark.skipif(
    not _extras.installed("distributed"), reason='needs Dask: pip install "gilx[dask]"'
)


@contextmanager
def crew(mode: str, workload: str, total: int, workers: int, endpoint: str = "") -> Iterator[Crew]:
    """``workers`` prepared workers of the package's ``mode`` backend: each go() is one round."""
    job = workloads.get(workload)
    backend = backends.get(mode)
    with (
        backend.open(job, endpoint, backends.Options()) as session,
        session.crew(total, workers) as workers_crew,
    ):
        yield workers_crew


@pytest.mark.benchmark(group="modes-io")
@pytest.mark.parametrize("workers", (1, 2, 4), ids=lambda k: f"{k}thread")
def test_io_threads_same_downloads(
    benchmark: Any, scaling: Scaling, delay_server_url: str, workers: int
) -> None:
    with crew("threads", "io", REQUESTS, workers, delay_server_url) as threads:
        benchmark.pedantic(threads.go, rounds=ROUNDS, warmup_rounds=1)
    scaling.record(benchmark, "modes-io-threads", workers, requests=REQUESTS, delay_s=IO_DELAY_S)


@pytest.mark.benchmark(group="modes-io")
@pytest.mark.parametrize("workers", (1, 2, 4), ids=lambda k: f"{k}task")
def test_io_asyncio(benchmark: Any, scaling: Scaling, delay_server_url: str, workers: int) -> None:
    with crew("asyncio", "io", REQUESTS, workers, delay_server_url) as tasks:
        benchmark.pedantic(tasks.go, rounds=ROUNDS, warmup_rounds=1)
    target = ("efficiency", ">=", 0.95) if workers == 4 else None
    scaling.record(
        benchmark,
        "modes-io-asyncio",
        workers,
        target=target,
        requests=REQUESTS,
        delay_s=IO_DELAY_S,
    )


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A LocalCluster of one single-threaded worker process, started (untimed) once."""
    from gilx.backends import dask_cluster

    cluster = dask_cluster.start(dask_cluster.PROCESSES, 1)
    try:
        yield cluster.client
    finally:
        cluster.close()


TASKS = 100


def one_at_a_time(client: Any) -> None:
    for _ in range(TASKS):
        assert client.submit(count_py, 0, pure=False).result() == 0


def all_at_once(client: Any) -> None:
    futures = [client.submit(count_py, 0, pure=False) for _ in range(TASKS)]
    assert client.gather(futures) == [0] * TASKS


@needs_dask
@pytest.mark.benchmark(group="dask-task")
@pytest.mark.parametrize("how", (one_at_a_time, all_at_once), ids=lambda f: f.__name__)
def test_dask_cost_per_task(benchmark: Any, dask_client: Any, how: Any) -> None:
    benchmark.pedantic(how, args=(dask_client,), rounds=ROUNDS, warmup_rounds=1)
    benchmark.extra_info.update(scenario=f"dask-task-{how.__name__}", tasks=TASKS)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["ms_per_task"] = round(stats.stats.median / TASKS * 1000, 3)


#: Loop steps per round, split over the threads (a few hundred ms for one thread).
N_NUMBA = 1 << 27


@needs_numba
@pytest.mark.benchmark(group="numba")
@pytest.mark.parametrize("workers", (1, 2), ids=lambda k: f"{k}thread")
@pytest.mark.parametrize("nogil", (True, False), ids=("numba-nogil", "numba-gil"))
def test_numba_threads(benchmark: Any, scaling: Scaling, nogil: bool, workers: int) -> None:
    name = "numba-nogil" if nogil else "numba-gil"
    with crew("threads", name, N_NUMBA, workers) as threads:  # compiled here, untimed
        benchmark.pedantic(threads.go, rounds=ROUNDS, warmup_rounds=1)
    target = None
    if workers > 1:
        target = ("efficiency", ">=", 0.95) if nogil else ("speedup", "<=", 1.05)
    compiled = _numba.compile_seconds(nogil)
    scaling.record(
        benchmark,
        f"{name}-threads",
        workers,
        target=target,
        n=N_NUMBA,
        compile_s=round(compiled, 3) if compiled is not None else None,
    )
