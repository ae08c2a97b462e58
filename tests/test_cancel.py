"""A long call in a worker thread (where Ctrl-C never arrives) stops through a CancelToken."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

import gilx
from gilx import _core

HUGE = 2**62  # decades of work: only a cancellation can end these calls

LONG_CALLS: dict[str, Callable[[gilx.CancelToken], object]] = {
    "count_nogil": lambda t: gilx.count_nogil(HUGE, cancel=t),
    "count_auto": lambda t: _core.count_auto(HUGE, cancel=t),
    "stream_sum": lambda t: _core.stream_sum(bytearray(1 << 16), HUGE, cancel=t),
    "unsafe": lambda t: gilx.UnsafeCounter().increment(HUGE, cancel=t),
    "atomic": lambda t: gilx.AtomicCounter().increment(HUGE, cancel=t),
    "locked": lambda t: gilx.LockedCounter().increment(HUGE, cancel=t),
    "waiting at a gate": lambda t: gilx.AtomicCounter().increment(
        1, start=_core.StartGate(2, timeout=3600), cancel=t
    ),
}


if not gilx.gil_enabled():
    # With a GIL, count_gil in a worker shuts out every other thread, so no
    # one could call cancel(): see test_deadline_bounds_count_gil_in_a_worker.
    LONG_CALLS["count_gil"] = lambda t: gilx.count_gil(HUGE, cancel=t)


def run_in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


@pytest.mark.parametrize("call", LONG_CALLS.values(), ids=list(LONG_CALLS))
def test_cancel_stops_a_long_call_in_a_worker_thread(call):
    token = gilx.CancelToken()
    thread, errors = run_in_thread(lambda: call(token))
    time.sleep(0.2)
    assert thread.is_alive(), f"the call ended by itself: {errors}"
    token.cancel()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], gilx.Cancelled), errors
    assert "was cancelled" in str(errors[0])


def test_cancel_latency_is_about_a_chunk():
    token = gilx.CancelToken()
    thread, _ = run_in_thread(lambda: gilx.count_nogil(HUGE, cancel=token))
    time.sleep(0.1)
    sent = time.perf_counter()
    token.cancel()
    thread.join(timeout=10)
    # A chunk is ~1 ms; allow a loaded CI machine plenty of slack.
    assert time.perf_counter() - sent < 0.5


def test_deadline_bounds_count_gil_in_a_worker():
    # The clock starts before the token's: under pytest-run-parallel on 3.13t, 51 ms passed
    # between the two statements once, and the deadline looked early.
    start = time.perf_counter()
    token = gilx.CancelToken(timeout=0.3)
    thread, errors = run_in_thread(lambda: gilx.count_gil(HUGE, cancel=token))
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], gilx.Cancelled), errors
    assert 0.25 < time.perf_counter() - start < 10
    assert token.cancelled


def test_deadline_token_does_not_cancel_early():
    token = gilx.CancelToken(timeout=3600)
    assert not token.cancelled
    assert gilx.count_gil(10_000, cancel=token) == 10_000
    assert gilx.CancelToken(timeout=0).cancelled


@pytest.mark.parametrize(
    ("timeout", "error"),
    [(-1, ValueError), (float("nan"), ValueError), (1e12, ValueError), ("1", TypeError)],
)
def test_bad_timeout(timeout, error):
    with pytest.raises(error):
        gilx.CancelToken(timeout=timeout)


def test_already_cancelled_token_stops_after_one_chunk():
    token = gilx.CancelToken()
    token.cancel()
    with pytest.raises(gilx.Cancelled):
        gilx.count_nogil(HUGE, cancel=token)
    counter = gilx.LockedCounter()
    with pytest.raises(gilx.Cancelled):
        counter.increment(HUGE, cancel=token)
    # The work done before the check stays done: exactly one chunk.
    assert counter.value == _core.COUNTER_CHUNK


def test_uncancelled_token_changes_nothing():
    token = gilx.CancelToken()
    assert gilx.count_gil(1000, cancel=token) == 1000
    assert gilx.count_nogil(1000, cancel=None) == 1000
    assert _core.stream_sum(b"\x01" * 8, 2, cancel=token) == 2 * 0x0101010101010101
    c = gilx.AtomicCounter()
    c.increment(5, cancel=token, start=None)
    assert c.value == 5


def test_token_state_and_repr():
    token = gilx.CancelToken()
    assert token.cancelled is False
    assert repr(token) == "gilx.CancelToken(cancelled=False)"
    token.cancel()
    token.cancel()  # idempotent
    assert token.cancelled is True
    assert repr(token) == "gilx.CancelToken(cancelled=True)"
    with pytest.raises(AttributeError):
        token.cancelled = False  # type: ignore[misc]


def test_cancelled_is_a_runtime_error():
    assert issubclass(gilx.Cancelled, RuntimeError)
    assert gilx.Cancelled.__module__ == "gilx"


@pytest.mark.parametrize(
    "call",
    [
        lambda: gilx.count_gil(1, cancel=3),
        lambda: gilx.count_nogil(1, cancel="x"),
        lambda: _core.stream_sum(b"", cancel=object()),
        lambda: gilx.UnsafeCounter().increment(1, cancel=_core.StartGate(1)),
    ],
)
def test_cancel_must_be_a_token(call):
    with pytest.raises(TypeError, match="cancel must be a CancelToken or None"):
        call()


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="count_nogil\\(\\) got an unexpected keyword argument 'n'"):
        gilx.count_nogil(3, n=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'timeout'"):
        _core.stream_sum(b"", timeout=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        gilx.CancelToken(1, 2)  # type: ignore[call-arg]


def test_token_type_is_final_and_immutable():
    with pytest.raises(TypeError):
        type("Sub", (gilx.CancelToken,), {})
    with pytest.raises(TypeError):
        gilx.CancelToken.cancel = None  # type: ignore[method-assign]


@pytest.mark.thread_unsafe(reason="counts the process's gilx-race threads")
@pytest.mark.parametrize("kind", ["unsafe", "atomic", "locked"])
def test_race_in_a_worker_thread_can_be_cancelled_and_leaves_no_thread(kind):
    token = gilx.CancelToken()
    thread, errors = run_in_thread(lambda: gilx.race(kind, 2, 2**60, cancel=token))
    time.sleep(0.3)
    assert thread.is_alive()
    token.cancel()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], gilx.Cancelled), errors
    assert not [t for t in threading.enumerate() if t.name.startswith("gilx-race-")]
