"""Release the GIL before waiting on your own C lock (csrc/lockdemo.c).

Thread A holds the module's demonstration C lock and can only let go of it after
running Python code (it waits for an Event that thread C sets, and setting it needs
the GIL).  The main thread then waits for the C lock:

- with the GIL released (the right way) A's release comes and the wait succeeds;
- with the GIL held (hold_gil=True) nobody else can run Python code, so the release
  never comes: a lock-ordering deadlock between the GIL and the C lock, which the
  demonstration's timeout turns into False instead of a hung test.
"""

from __future__ import annotations

import threading
import time

import pytest

import gilx
from gilx import _core


def holder_needing_the_gil(
    stamps: dict[str, float] | None = None,
) -> tuple[threading.Thread, threading.Thread, threading.Event]:
    """Start A (holds the C lock until `go`) and C (sets `go`, which needs the GIL)."""
    held = threading.Event()
    go = threading.Event()
    stamps = {} if stamps is None else stamps

    def a() -> None:
        assert _core.demo_lock_acquire(10)
        held.set()
        go.wait()  # Python code: A needs the GIL to get past this and release
        _core.demo_lock_release()

    def c() -> None:
        held.wait()
        time.sleep(0.05)  # coming back from the sleep needs the GIL
        stamps["go"] = time.monotonic()
        go.set()

    threads = (threading.Thread(target=a), threading.Thread(target=c))
    for t in threads:
        t.start()
    held.wait()
    return threads[0], threads[1], go


def test_waiting_with_the_gil_released_gets_the_lock():
    a, c, go = holder_needing_the_gil()
    try:
        assert _core.demo_lock_acquire(30) is True
        assert go.is_set()  # it got the lock because A could finish
        _core.demo_lock_release()
    finally:
        go.set()
        a.join()
        c.join()


@pytest.mark.skipif(not gilx.gil_enabled(), reason="a GIL to deadlock on")
def test_waiting_with_the_gil_held_deadlocks_until_the_timeout():
    stamps: dict[str, float] = {}
    a, c, go = holder_needing_the_gil(stamps)
    try:
        start = time.monotonic()
        got = _core.demo_lock_acquire(0.5, hold_gil=True)
        waited = time.monotonic() - start
        go.wait()
        # The whole timeout passed, and C, due 0.05 s after A took the lock, ran only
        # after it: no Python code anywhere while this thread held the GIL, so A could
        # not release.
        assert got is False
        assert waited >= 0.45
        assert stamps["go"] - start >= 0.45
    finally:
        go.set()
        a.join()
        c.join()
    # Afterwards the lock is free again.
    assert _core.demo_lock_acquire(5) is True
    _core.demo_lock_release()


def test_bad_arguments_and_release_without_holding():
    with pytest.raises(RuntimeError, match="not held"):
        _core.demo_lock_release()
    with pytest.raises(ValueError, match="timeout"):
        _core.demo_lock_acquire(-1)
    with pytest.raises(ValueError, match="timeout"):
        _core.demo_lock_acquire(float("nan"))
    with pytest.raises(TypeError):
        _core.demo_lock_acquire("1")
    with pytest.raises(TypeError):
        _core.demo_lock_acquire(1, True)  # hold_gil is keyword-only
