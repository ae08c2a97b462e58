"""Interpreters beside processes: pure Python on each, and what one worker of each costs.

Group ``interpreters``: ``count_py`` on 1 and 2 subinterpreters (each with its
own GIL) and, in the same run, on 1 and 2 processes: crews of gilx's backends,
as in ``gilx scale --mode interpreters / processes``, started and prepared
outside the timed region.

Group ``worker-costs``: what one worker costs, a process (the platform's
start method) against an interpreter, from :mod:`gilx._costs`: start-up
(``startup-*``), one round trip of a bytes payload (``passing-*``: pickled
over a pipe, or the interpreters' own queues); the memory one worker adds is
in ``extra_info`` (``memory_bytes``), measured once per session.

CPython 3.12+ only (3.13: the ``interpreters`` extra); elsewhere every
benchmark here is skipped, saying why.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Scaling
from test_cpu_python import ROUNDS, WORKERS, run_crew

from gilx import _costs, _extras, backends, workloads
from gilx.backends import Options, Session
from gilx.backends.interpreters import require

#: About 0.1 s of pure-Python counting on a current core (as in test_cpu_python).
N_PY = 6_000_000


def _missing() -> str | None:
    try:
        require()
    except (ValueError, _extras.MissingExtra) as exc:
        return str(exc)
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=f"{_missing()}")


def start_method() -> str:
    return os.environ.get("GILX_BENCH_START_METHOD") or multiprocessing.get_start_method()


@pytest.fixture(scope="module")
def sessions() -> Iterator[dict[str, Session]]:
    options = Options(start_method=start_method())
    work = workloads.get("py")
    opened = {
        mode: backends.get(mode).open(work, "", options) for mode in ("interpreters", "processes")
    }
    try:
        yield opened
    finally:
        for session in opened.values():
            session.close()


@pytest.mark.benchmark(group="interpreters")
@pytest.mark.parametrize("mode", ["interpreters", "processes"])
@pytest.mark.parametrize("workers", WORKERS)
def test_count_py(
    benchmark, scaling: Scaling, sessions: dict[str, Session], mode: str, workers: int
) -> None:
    with sessions[mode].crew(N_PY, workers) as crew:
        worker_s = run_crew(benchmark, crew)
    target = ("speedup", ">=", 1.8) if workers > 1 else None
    scaling.record(
        benchmark,
        f"count_py-{mode}",
        workers,
        target=target,
        n=N_PY,
        start_method=start_method() if mode == "processes" else None,
        slowest_worker_s=round(worker_s, 5),
    )


class _Kinds:
    """The two kinds of worker of gilx._costs, by name."""

    def __init__(self) -> None:
        self.ctx = multiprocessing.get_context(start_method())

    def make(self, kind: str) -> Any:
        return _costs._Process(self.ctx) if kind == "process" else _costs._Interp()


@pytest.fixture(scope="module")
def memory() -> dict[str, int | None]:
    ctx = multiprocessing.get_context(start_method())
    return {"process": _costs._memory_process(ctx), "interpreter": _costs._memory_interpreter()}


@pytest.mark.benchmark(group="worker-costs")
@pytest.mark.parametrize("kind", ["process", "interpreter"])
def test_startup(benchmark, kind: str, memory: dict[str, int | None]) -> None:
    """One worker from nothing to ready to run gilx's work; closing it is not timed."""
    kinds = _Kinds()
    made: list[Any] = []

    def start() -> None:
        made.append(kinds.make(kind))

    def close_last() -> None:
        while made:
            made.pop().close()

    benchmark.pedantic(start, rounds=ROUNDS * 3, warmup_rounds=1, teardown=close_last)
    close_last()
    benchmark.extra_info.update(
        scenario=f"startup-{kind}",
        memory_bytes=memory[kind],
        start_method=start_method() if kind == "process" else None,
    )


@pytest.mark.benchmark(group="worker-costs")
@pytest.mark.parametrize("size", _costs.PAYLOADS, ids=lambda n: f"{n // 1024}KiB")
@pytest.mark.parametrize("kind", ["process", "interpreter"])
def test_passing(benchmark, kind: str, size: int) -> None:
    """One round trip of a ``size``-byte payload: out to the worker and back."""
    worker = _Kinds().make(kind)
    try:
        if kind == "interpreter":
            worker.start_echo()
        data = os.urandom(size)
        benchmark.pedantic(
            worker.round_trip, args=(data,), rounds=50, iterations=1, warmup_rounds=2
        )
    finally:
        worker.close()
    benchmark.extra_info.update(scenario=f"passing-{kind}", bytes=size)
