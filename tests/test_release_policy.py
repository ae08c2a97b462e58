"""The release policy of csrc/reference/policy.h (gilx_loop, release.c), seen from Python.

- On a thread other than the main one, a released call never takes the GIL back before
  it ends: no signal handler can run there, and beside a busy Python thread each re-take
  would wait for that thread's switch interval (the convoy effect).
- On the main thread, it takes the GIL back to run signal handlers, by the clock
  (``SIGNAL_CHECK_NS``), not after every chunk.
- A token is honoured on any thread without the GIL (tests/test_cancel.py).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest
from conftest import retry

import gilx
from gilx import _core

needs_gil = pytest.mark.skipif(
    not gilx.gil_enabled(), reason="with no GIL there is no re-take to observe"
)
needs_itimer = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")


def test_the_interval_is_a_module_constant_between_10_and_50_ms():
    assert 10_000_000 <= _core.SIGNAL_CHECK_NS <= 50_000_000


def _worker_finished_while_held(hold_chunks: int, work_chunks: int) -> bool | None:
    """Run count_traced released on a worker while this thread holds the GIL in C.

    Returns whether every chunk of the worker ended before the GIL-held call did, or
    None when the worker had not yet started its released loop when the hold began
    (then the run says nothing, and the caller tries again).
    """
    records: list[list[tuple[int, int, int]]] = []
    worker = threading.Thread(
        target=lambda: records.append(_core.count_traced(_core.COUNT_CHUNK * work_chunks, True)[1])
    )
    worker.start()
    time.sleep(0.02)  # the worker takes the GIL, enters count_traced and releases it
    began = _core.monotonic_ns()
    _core.count_gil(_core.COUNT_CHUNK * hold_chunks)  # no other Python thread runs now
    ended = _core.monotonic_ns()
    worker.join()
    chunks = records[0]
    if chunks[0][0] > began:
        return None
    return chunks[-1][1] < ended


@pytest.mark.thread_unsafe(reason="holds the GIL in C to watch another thread's loop")
@needs_gil
def test_a_released_call_on_a_worker_never_takes_the_gil_back():
    """Its whole kernel runs while another thread holds the GIL.

    The old policy re-took the GIL after each ~1 ms chunk, so the second chunk waited
    for the holder's whole call.  Here the worker's 40 chunks all end inside a
    GIL-held call four times as long.
    """

    def check() -> bool:
        outcome = _worker_finished_while_held(hold_chunks=160, work_chunks=40)
        assert outcome is not False, "a chunk ran after the GIL-held call: the loop re-took it"
        return outcome is True

    assert retry(5, check), "the worker never started its loop before the hold began"


def _signal_checks(call: Callable[[], object]) -> int:
    """How many times ``call`` ran the pending signal handlers.

    A SIGALRM handler re-arms a 50 µs one-shot timer as its last act, so a signal is
    pending again long before the loop's next look at signals.
    """
    count = 0
    armed = True

    def handler(signum: int, frame: object) -> None:
        nonlocal count
        count += 1
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 50e-6)

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 50e-6)
        time.sleep(0.001)
        before = count
        call()
        after = count
    finally:
        # In this order: a handler still pending runs later and must not re-arm.
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return after - before


@pytest.mark.thread_unsafe(reason="sets a process-wide SIGALRM handler")
@needs_itimer
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: _core.count_nogil(_core.COUNT_CHUNK * 400), id="count_nogil"),
        pytest.param(
            lambda: _core.stream_sum(bytearray(8 * _core.STREAM_CHUNK_WORDS), 400),
            id="stream_sum",
        ),
        pytest.param(
            lambda: gilx.AtomicCounter().increment(_core.ATOMIC_CHUNK * 400),
            id="AtomicCounter",
        ),
    ],
)
def test_on_the_main_thread_signals_run_by_the_clock_not_per_chunk(call):
    """400 chunks (about 0.4 s or more): handlers ran, but far fewer times than chunks.

    By the clock that is one run per SIGNAL_CHECK_NS of the call's wall time; only a
    machine slowing each ~1 ms chunk to over 5 ms would bring it near 400 / 4.
    """

    def check() -> bool:
        seen = _signal_checks(call)
        assert seen >= 2, "a long released call on the main thread never ran the handlers"
        return seen < 100

    assert retry(3, check)


@pytest.mark.thread_unsafe(reason="sets a process-wide SIGALRM handler")
@needs_itimer
def test_a_gil_held_call_on_the_main_thread_checks_every_chunk():
    """The held path hands nothing over, so it looks at signals after every chunk."""
    seen = _signal_checks(lambda: _core.count_gil(_core.COUNT_CHUNK * 40))
    assert seen >= 20
