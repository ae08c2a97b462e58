"""The copy unit and the waits of issue 26, timed: targets shown, never asserted.

- ``spin`` (examples/copy_unit/spin.c, built from csrc/README.md's copy unit alone by
  tests/copy_unit.py) on a worker thread beside one busy Python thread: at most 1.10x
  its time alone;
- Ctrl-C (a signal whose handler raises KeyboardInterrupt) on the main thread inside
  ``spin``, released and held: within 100 ms;
- a child forked from a worker thread, ``count_nogil(10**12)`` on its main thread:
  SIGINT ends it within 100 ms (it used to be ignored);
- ``LockedCounter.value`` read in a loop on the main thread beside another thread's long
  ``increment``: Ctrl-C within 100 ms (a read used to wait up to ~0.8 s for the lock).

The tests (tests/test_copy_unit.py, test_main_thread.py, test_locked_waits.py) check the
same behaviour with generous bounds; the numbers live here.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import slowest_worker, together

import gilx
from gilx import workloads
from gilx._convoy import Busy

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))
from copy_unit import build, compiler  # noqa: E402
from test_main_thread import fork_from_a_worker  # noqa: E402

SLOWDOWN_TARGET = 1.10
CTRL_C_TARGET_S = 0.100
#: About 0.3 s of xorshift steps here: the one return to Python a released call makes
#: (a switch interval beside a busy thread) is a few per cent of it.
N_SPIN = 300 * (1 << 20)
ROUNDS = 7

needs_compiler = pytest.mark.skipif(compiler() is None, reason="no C compiler for this Python")
posix = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")


@pytest.fixture(scope="module")
def spin(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return build(tmp_path_factory.mktemp("copy_unit"))


@pytest.mark.benchmark(group="copy_unit")
@needs_compiler
@pytest.mark.parametrize("company", ["alone", "beside"])
def test_copy_unit_on_a_worker_beside_a_busy_thread(
    benchmark: Any, spin: ModuleType, medians: dict[str, float], company: str
) -> None:
    slowest: list[float] = []
    cpu: list[float] = []

    def call() -> None:
        # The worker's own CPU time too: on a loaded machine the wall time beside a busy
        # thread also grows by the CPU share that thread takes, which is not the GIL's doing.
        start = time.thread_time()
        spin.spin(N_SPIN)
        cpu.append(time.thread_time() - start)

    def measure() -> None:
        with together(call, [()]) as crew:

            def run() -> None:
                crew.go()
                slowest.append(slowest_worker(crew))

            benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)

    if company == "beside":
        busy = Busy(workloads.get("py"), "", 1)
        try:
            measure()
        finally:
            busy.stop()
            benchmark.extra_info["busy_steps_per_s"] = round(busy.rate())
    else:
        measure()
    worker_s = statistics.median(slowest[1:] or slowest)
    benchmark.extra_info.update(
        company=company,
        slowest_worker_s=round(worker_s, 5),
        worker_cpu_s=round(statistics.median(cpu[1:] or cpu), 5),
    )
    if company == "alone":
        medians["copy_unit-worker"] = worker_s
    elif "copy_unit-worker" in medians:
        slowdown = worker_s / medians["copy_unit-worker"]
        benchmark.extra_info.update(
            slowdown=round(slowdown, 4),
            target=f"slowdown <= {SLOWDOWN_TARGET}",
            target_met=slowdown <= SLOWDOWN_TARGET,
        )


def _interrupt_main(call: Callable[[], object], latencies: list[float]) -> None:
    """A signal 30 ms into ``call`` on the main thread whose handler raises
    KeyboardInterrupt, as Ctrl-C's does; the latency from the signal to the exception.

    The signal is SIGALRM from setitimer, not SIGINT from another thread: a call that
    holds the GIL leaves no other thread a chance to send one (the tests send SIGINT
    from another process).  The path is the same: a C handler sets a flag, and the
    Python handler runs at the call's next look at signals.
    """

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, handler)
    try:
        fired = time.perf_counter() + 0.03
        signal.setitimer(signal.ITIMER_REAL, 0.03)
        try:
            call()
        except KeyboardInterrupt:
            latencies.append(time.perf_counter() - fired)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _report(benchmark: Any, latencies: list[float]) -> None:
    if latencies:
        worst = max(latencies)
        benchmark.extra_info.update(
            ctrl_c_latency_s=round(statistics.median(latencies), 5),
            ctrl_c_latency_max_s=round(worst, 5),
            target=f"ctrl_c_latency_max_s <= {CTRL_C_TARGET_S}",
            target_met=worst <= CTRL_C_TARGET_S,
        )


def _on_main_thread() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Ctrl-C reaches the main thread only")


@pytest.mark.benchmark(group="every_process")
@needs_compiler
@posix
@pytest.mark.parametrize("release", [True, False], ids=["released", "held"])
def test_copy_unit_ctrl_c_on_the_main_thread(
    benchmark: Any, spin: ModuleType, release: bool
) -> None:
    _on_main_thread()
    latencies: list[float] = []
    benchmark.pedantic(
        _interrupt_main,
        args=(lambda: spin.spin(2**62, release=release, timeout=60), latencies),
        rounds=5,
        warmup_rounds=0,
    )
    _report(benchmark, latencies)


@pytest.mark.benchmark(group="every_process")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigint_in_a_child_forked_from_a_worker(benchmark: Any) -> None:
    latencies: list[float] = []

    def once() -> None:
        outcome = fork_from_a_worker("gilx.count_nogil(10**12)", bound=10.0)
        if outcome.startswith("exit 7 after"):
            latencies.append(float(outcome.split()[3]))

    benchmark.pedantic(once, rounds=5, warmup_rounds=0)
    _report(benchmark, latencies)
    benchmark.extra_info["interrupted_runs"] = len(latencies)


@pytest.mark.benchmark(group="every_process")
@posix
def test_ctrl_c_reading_locked_value_beside_a_long_increment(benchmark: Any) -> None:
    _on_main_thread()
    latencies: list[float] = []
    counter = gilx.LockedCounter()

    def read_forever() -> None:
        while True:
            _ = counter.value

    def once() -> None:
        token = gilx.CancelToken(timeout=60)

        def work() -> None:
            try:
                counter.increment(2**62, cancel=token)
            except gilx.Cancelled:
                pass

        worker = threading.Thread(target=work)
        worker.start()
        try:
            _interrupt_main(read_forever, latencies)
        finally:
            token.cancel()
            worker.join()

    benchmark.pedantic(once, rounds=5, warmup_rounds=0)
    _report(benchmark, latencies)
