"""The seed's first scenario: pure-Python counting on one thread, two threads, processes.

Threads share one GIL, so two of them do no better than one (the seed's
"no gain"); processes each have their own interpreter and GIL, so they scale
with the cores.  The processes are a crew of gilx's processes backend, as in
``gilx scale --mode processes``: started, and their shares prepared, outside
the timed region (their start-up is its own group, ``process-start``).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
from collections.abc import Callable, Iterator

import pytest
from conftest import Scaling, slowest_worker, split, together

from gilx import backends, count_py, workloads
from gilx.backends import Crew, Options, Session

#: About 0.1 s of pure-Python counting on a current core.
N_PY = 6_000_000
#: About 0.1 s of the C kernel (the control of the process group).
N_C_PROCESSES = 400_000_000
WORKERS = (1, 2)
ROUNDS = 5


def start_method() -> str:
    """The platform's default start method unless GILX_BENCH_START_METHOD names another."""
    return os.environ.get("GILX_BENCH_START_METHOD") or multiprocessing.get_start_method()


def open_session(workload: str) -> Session:
    options = Options(start_method=start_method())
    return backends.get("processes").open(workloads.get(workload), "", options)


@pytest.fixture(scope="module")
def sessions() -> Iterator[dict[str, Session]]:
    """One processes session per workload of this module, closed at its end."""
    opened = {name: open_session(name) for name in ("py", "gil")}
    try:
        yield opened
    finally:
        for session in opened.values():
            session.close()


@pytest.mark.benchmark(group="cpu-python")
@pytest.mark.parametrize("workers", WORKERS, ids=lambda k: f"{k}thread")
def test_count_py_threads(benchmark, scaling: Scaling, workers: int) -> None:
    shares = [(share,) for share in split(N_PY, workers)]
    with together(count_py, shares) as crew:
        benchmark.pedantic(crew.go, rounds=ROUNDS, warmup_rounds=1)
    scaling.record(benchmark, "count_py-threads", workers, n=N_PY)


def run_crew(benchmark, crew: Crew) -> float:
    """Time ``crew.go()`` in ROUNDS rounds; return the median of the slowest worker's own time.

    That time against the round's tells how much of it is the work itself and
    how much is releasing the workers and collecting their results.
    """
    slowest: list[float] = []

    def run() -> None:
        crew.go()
        slowest.append(slowest_worker(crew))

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)
    return statistics.median(slowest[1:] or slowest)  # without the warm-up round


@pytest.mark.benchmark(group="cpu-python")
@pytest.mark.parametrize("workers", WORKERS, ids=lambda k: f"{k}process")
def test_count_py_processes(
    benchmark, scaling: Scaling, sessions: dict[str, Session], workers: int
) -> None:
    # The baseline is one process of the same backend doing all the work, so
    # both sides pay the same cost of releasing workers and collecting results.
    with sessions["py"].crew(N_PY, workers) as crew:
        worker_s = run_crew(benchmark, crew)
    target = ("speedup", ">=", 1.9) if workers > 1 else None
    scaling.record(
        benchmark,
        "count_py-processes",
        workers,
        target=target,
        n=N_PY,
        start_method=start_method(),
        slowest_worker_s=round(worker_s, 5),
    )


@pytest.mark.benchmark(group="cpu-python")
@pytest.mark.parametrize("workers", WORKERS, ids=lambda k: f"count_gil-{k}process")
def test_count_gil_processes(
    benchmark, scaling: Scaling, sessions: dict[str, Session], workers: int
) -> None:
    """The control: the same backend running the C kernel instead of the interpreter loop.

    Where count_py scales worse than this on processes, the backend and the
    GIL are not the reason (neither differs): the two cores run two
    interpreter loops slower than one.
    """
    with sessions["gil"].crew(N_C_PROCESSES, workers) as crew:
        worker_s = run_crew(benchmark, crew)
    scaling.record(
        benchmark,
        "count_gil-processes",
        workers,
        n=N_C_PROCESSES,
        start_method=start_method(),
        slowest_worker_s=round(worker_s, 5),
    )


def _start_crew(session: Session, workers: int) -> Callable[[], None]:
    def start() -> None:
        with session.crew(workers, workers):
            pass

    return start


@pytest.mark.benchmark(group="process-start")
def test_process_start(benchmark, sessions: dict[str, Session]) -> None:
    """What the speedups above leave out: starting the processes, preparing, stopping them."""
    benchmark.pedantic(_start_crew(sessions["py"], max(WORKERS)), rounds=3, warmup_rounds=1)
    benchmark.extra_info.update(workers=max(WORKERS), start_method=start_method())
