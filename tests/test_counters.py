"""The three counters: interface, input checks, and the lost-update race."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import needs_two_cores, retry

import gilx

COUNTER_TYPES = [gilx.UnsafeCounter, gilx.AtomicCounter, gilx.LockedCounter]


@pytest.mark.parametrize("cls", COUNTER_TYPES, ids=lambda c: c.__name__)
def test_counts_increments_and_resets(cls):
    c = cls()
    assert c.value == 0
    c.increment(5)
    c.increment(np.int16(3))
    c.increment(True)
    c.increment(0)
    assert c.value == 9
    assert repr(c) == f"gilx.{cls.__name__}(value=9)"
    c.reset()
    assert c.value == 0


@pytest.mark.parametrize("cls", COUNTER_TYPES, ids=lambda c: c.__name__)
def test_large_increment_spans_chunks(cls):
    c = cls()
    n = gilx._core.COUNTER_CHUNK * 2 + 11
    c.increment(n)
    assert c.value == n


@pytest.mark.parametrize("cls", COUNTER_TYPES, ids=lambda c: c.__name__)
def test_bad_input(cls):
    c = cls()
    with pytest.raises(TypeError, match="times must be an integer"):
        c.increment(1.5)
    with pytest.raises(ValueError, match="times must be >= 0"):
        c.increment(-1)
    with pytest.raises(OverflowError, match="times is too large"):
        c.increment(2**64)
    with pytest.raises(TypeError, match="takes no arguments"):
        cls(5)
    with pytest.raises(AttributeError):
        c.value = 3  # type: ignore[misc]
    assert c.value == 0


@pytest.mark.parametrize("cls", COUNTER_TYPES, ids=lambda c: c.__name__)
def test_types_are_final_and_immutable(cls):
    with pytest.raises(TypeError):
        type("Sub", (cls,), {})
    with pytest.raises(TypeError):
        cls.increment = None


@needs_two_cores
def test_unsafe_counter_loses_updates_on_two_cores():
    # Probabilistic: both threads must overlap on two cores.  One run of
    # 2 x 1,000,000 loses updates almost always; 20 tries make a false failure
    # vanishingly unlikely.
    assert retry(20, lambda: gilx.race("unsafe", 2, 1_000_000).lost > 0)


@pytest.mark.parametrize("kind", ["atomic", "locked"])
def test_safe_counters_never_lose_updates(kind):
    for threads in (2, 4):
        for _ in range(5):
            result = gilx.race(kind, threads, 300_000)
            assert result.expected == threads * 300_000
            assert result.observed == result.expected
            assert result.lost == 0


def test_race_result_fields():
    r = gilx.race("atomic", threads=3, increments=1000)
    assert (r.kind, r.threads, r.expected, r.observed, r.lost) == ("atomic", 3, 3000, 3000, 0)
    assert r.to_dict() == {
        "kind": "atomic",
        "threads": 3,
        "expected": 3000,
        "observed": 3000,
        "lost": 0,
        "overlap": r.overlap,
        "overlapped": r.overlapped,
        "other_cpu": r.other_cpu,
        "disturbed": r.disturbed,
        "judgement": r.judgement.to_dict(),
        "note": r.judgement.note,
    }


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": "nope"}, ValueError, "kind must be one of"),
        ({"kind": 3}, ValueError, "kind must be one of"),
        ({"threads": 0}, ValueError, "threads must be >= 1"),
        ({"threads": -2}, ValueError, "threads must be >= 1"),
        ({"threads": 10**6}, ValueError, "threads must be <= 1024"),
        ({"threads": 2.0}, TypeError, "threads must be an integer"),
        ({"increments": -1}, ValueError, "increments must be >= 0"),
        ({"increments": "1"}, TypeError, "increments must be an integer"),
        ({"increments": 2**63}, OverflowError, "increments is too large"),
        ({"threads": 4, "increments": 2**62}, OverflowError, "threads \\* increments"),
    ],
)
def test_race_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        gilx.race(**kwargs)


@pytest.mark.thread_unsafe(reason="counts the main thread's own GIL re-takes beside two threads")
def test_locked_increments_leave_the_gil_to_other_threads():
    # Two threads in long LockedCounter.increment calls.  When they used the
    # GIL as their lock (held per chunk, handed round between chunks), the
    # main thread waited 0.5-10 s for each re-take of the GIL, because the
    # thread that lets it go takes it straight back.  With a lock of their
    # own they never hold the GIL, so 50 re-takes here take milliseconds; 15 s
    # leaves room for any busy machine while the old behaviour used it up.
    counter = gilx.LockedCounter()
    token = gilx.CancelToken()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            counter.increment(gilx._core.MAX_COUNT // 4, cancel=token)
        except gilx.Cancelled:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 15.0
        retakes = 0
        while retakes < 50 and time.monotonic() < deadline:
            time.sleep(0.001)  # releases the GIL, then must take it back
            retakes += 1
        assert counter.value > 0, "the increments never started"
    finally:
        token.cancel()
        for worker in workers:
            worker.join(30)
    assert not any(w.is_alive() for w in workers), "a cancelled increment kept running"
    assert not errors, errors
    assert retakes == 50, f"the main thread got the GIL back only {retakes} times in 15 s"
