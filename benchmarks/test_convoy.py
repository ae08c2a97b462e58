"""The convoy effect: gilx's released calls beside a busy Python thread (CPython issue 7946).

A call that releases the GIL must take it back to return to Python, and a
loop that takes it back between chunks (to check for Ctrl-C) takes it back
many times per call.  Beside a thread running Python nonstop, each re-take
can wait for that thread's switch interval (5 ms).  Each benchmark here runs
the same call alone and then while one busy thread runs ``count_py`` in a loop
(``gilx._convoy.Busy``, the busy threads of ``gilx convoy``), on a worker thread
and on the main thread (where Ctrl-C is handled).

Targets, shown in BENCHMARKS.md and never asserted (the suite never fails on
a number; the machine may be busy):

- ``count_nogil`` and ``stream_sum`` on a worker thread beside one busy thread:
  at most 1.10x their time alone;
- the same on the main thread: at most 1.30x;
- Ctrl-C beside a busy thread, on the main thread inside ``count_nogil``:
  ``KeyboardInterrupt`` within 100 ms;
- 1 ms ``time.sleep`` calls on a worker thread: per-call p50 / p99 alone and
  beside, reported (no target: the GIL hand-over is CPython's);
- the uncontended cost of chunking stays at most 1 % (group ``chunking``,
  benchmarks/test_gil_cost.py).
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import slowest_worker, together

from gilx import workloads
from gilx._convoy import Busy
from gilx._core import count_nogil, stream_sum

#: About 0.26 s of count_nogil here (about 250 chunks of COUNT_CHUNK): long enough that the
#: one return to Python every released call makes (a switch interval beside a busy thread)
#: is a few per cent of it, as it is of any call worth releasing the GIL for.
N_COUNT = 1 << 30
#: stream_sum over a 4 MiB buffer (cache-resident: its chunks are short), about 0.1 s.
STREAM_BYTES = 4 << 20
STREAM_PASSES = 800
ROUNDS = 7

#: The slowdown target beside one busy thread, by the thread the call runs on.
TARGETS: dict[str, float] = {"worker": 1.10, "main": 1.30}
CTRL_C_TARGET_S = 0.100
SLEEP_S = 0.001
SLEEPS = 100


@contextmanager
def busy_python(benchmark: Any, threads: int = 1) -> Iterator[Busy]:
    """``threads`` threads running count_py in a loop for the block; their rate in extra_info."""
    busy = Busy(workloads.get("py"), "", threads)
    try:
        yield busy
    finally:
        busy.stop()
        benchmark.extra_info["busy_steps_per_s"] = round(busy.rate())
        benchmark.extra_info["busy_threads"] = threads


def _calls() -> dict[str, Callable[[], object]]:
    buffer = bytearray(b"\x01") * STREAM_BYTES
    return {
        "count_nogil": lambda: count_nogil(N_COUNT),
        "stream_sum": lambda: stream_sum(buffer, STREAM_PASSES),
    }


CASES = [
    (call, thread, company)
    for call in ("count_nogil", "stream_sum")
    for thread in ("worker", "main")
    for company in ("alone", "beside")
]


@pytest.mark.benchmark(group="convoy")
@pytest.mark.parametrize(
    ("call", "thread", "company"), CASES, ids=["-".join(case) for case in CASES]
)
def test_released_call_beside_a_busy_thread(
    benchmark, medians: dict[str, float], call: str, thread: str, company: str
) -> None:
    fn = _calls()[call]

    def measure() -> None:
        if thread == "main":
            benchmark.pedantic(fn, rounds=ROUNDS, warmup_rounds=1)
            return
        slowest: list[float] = []
        with together(fn, [()]) as crew:

            def run() -> None:
                crew.go()
                slowest.append(slowest_worker(crew))

            benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)
        worker_s = statistics.median(slowest[1:] or slowest)  # without the warm-up round
        benchmark.extra_info["slowest_worker_s"] = round(worker_s, 5)

    if company == "beside":
        with busy_python(benchmark):
            measure()
    else:
        measure()
    benchmark.extra_info.update(call=call, thread=thread, company=company)
    if benchmark.stats is None:
        return
    key = f"{call}-{thread}"
    if company == "alone":
        medians[key] = benchmark.stats.stats.median
    elif key in medians:
        slowdown = benchmark.stats.stats.median / medians[key]
        benchmark.extra_info.update(
            slowdown=round(slowdown, 4),
            target=f"slowdown <= {TARGETS[thread]}",
            target_met=slowdown <= TARGETS[thread],
        )


def _one_interrupt(latencies: list[float]) -> None:
    """Ctrl-C (SIGINT to this process) 20 ms into a count_nogil call on the main thread."""
    armed = threading.Event()
    sent: list[float] = []

    def interrupt() -> None:
        armed.wait()
        time.sleep(0.02)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt, daemon=True)
    timer.start()
    try:
        armed.set()
        count_nogil(2**62)  # years: only Ctrl-C ends it
    except KeyboardInterrupt:
        latencies.append(time.perf_counter() - sent[0])
    timer.join()


@pytest.mark.benchmark(group="convoy")
@pytest.mark.skipif(os.name != "posix", reason="sends itself SIGINT")
def test_ctrl_c_beside_a_busy_thread(benchmark) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Ctrl-C reaches the main thread only")
    latencies: list[float] = []
    with busy_python(benchmark):
        benchmark.pedantic(_one_interrupt, args=(latencies,), rounds=5, warmup_rounds=0)
    if latencies:
        worst = max(latencies)
        benchmark.extra_info.update(
            ctrl_c_latency_s=round(statistics.median(latencies), 5),
            ctrl_c_latency_max_s=round(worst, 5),
            target=f"ctrl_c_latency_max_s <= {CTRL_C_TARGET_S}",
            target_met=worst <= CTRL_C_TARGET_S,
        )


def _sleeps(seconds: list[float]) -> None:
    for _ in range(SLEEPS):
        start = time.perf_counter()
        time.sleep(SLEEP_S)
        seconds.append(time.perf_counter() - start)


@pytest.mark.benchmark(group="convoy")
@pytest.mark.parametrize("company", ("alone", "beside"))
def test_sleep_latency_on_a_worker_thread(benchmark, company: str) -> None:
    seconds: list[float] = []
    with together(_sleeps, [(seconds,)]) as crew:
        if company == "beside":
            with busy_python(benchmark):
                benchmark.pedantic(crew.go, rounds=3, warmup_rounds=1)
        else:
            benchmark.pedantic(crew.go, rounds=3, warmup_rounds=1)
    kept = seconds[SLEEPS:] or seconds  # without the warm-up round (if there was one)
    q = statistics.quantiles(kept, n=100, method="inclusive")
    benchmark.extra_info.update(
        call="sleep",
        thread="worker",
        company=company,
        calls=len(kept),
        sleep_p50_s=round(statistics.median(kept), 6),
        sleep_p99_s=round(q[98], 6),
    )
