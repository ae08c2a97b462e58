"""Release the GIL before waiting on your own C lock (csrc/reference/lockdemo.c).

Thread A holds the module's demonstration C lock and can only let go of it after
running Python code (it waits for an Event that thread C sets, and setting it needs
the GIL).  The main thread then waits for the C lock:

- with the GIL released (the right way) A's release comes and the wait succeeds;
- with the GIL held (hold_gil=True) nobody else can run Python code, so the release
  never comes: a lock-ordering deadlock between the GIL and the C lock, which the
  demonstration's timeout turns into False instead of a hung test.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

import gilx
from gilx import _core

# One lock per module object, shared by every test: they cannot run side by side.
pytestmark = pytest.mark.thread_unsafe(reason="the module's one demonstration lock")


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


def test_the_right_way_times_out_when_the_lock_stays_held():
    # Its wait runs in slices, taking the GIL back between them: the slices must add up
    # to the timeout, no more and no less.
    assert _core.demo_lock_acquire(5) is True
    try:
        start = time.monotonic()
        assert _core.demo_lock_acquire(0.3) is False
        assert 0.29 <= time.monotonic() - start < 2.0
        assert _core.demo_lock_acquire(0) is False
    finally:
        _core.demo_lock_release()


class _Alarm(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_the_right_way_is_interrupted_by_a_signal():
    # Ctrl-C while waiting: the handler runs within the wait, and its exception ends it.
    # (The wait used intr_flag=0 and ran to its timeout, 5 s here, before the handler.)
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")

    def alarm(signum, frame):
        raise _Alarm

    assert _core.demo_lock_acquire(5) is True  # held: the next wait cannot succeed
    old = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        start = time.monotonic()
        with pytest.raises(_Alarm):
            _core.demo_lock_acquire(5)
        assert time.monotonic() - start < 1.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        _core.demo_lock_release()
    # The interrupted wait did not take the lock: it is free, and held by nobody.
    with pytest.raises(RuntimeError, match="not held"):
        _core.demo_lock_release()
    assert _core.demo_lock_acquire(0) is True
    _core.demo_lock_release()


def test_of_simultaneous_releases_exactly_one_succeeds():
    # The release used to read the "held" flag, then clear it: on a free-threaded build
    # two threads could both read 1 and both release the PyThread lock (a semaphore, which
    # then counts 2 and lets two threads "hold" it).  An atomic exchange lets one through.
    # On a GIL build the GIL serialises the two steps, so only a free-threaded build could
    # catch the old code, and even there its window is a few nanoseconds: this checks the
    # contract under stress, it is not a proof (against the old code, on 2 busy cores, it
    # did not catch the race).  The exchange in demo_lock_release is what makes it hold.
    threads, rounds = 2, (50 if gilx.gil_enabled() else 1000)
    go = [0]
    done = threading.Barrier(threads + 1)
    wins: list[int] = []

    def releaser(index: int) -> None:
        for r in range(1, rounds + 1):
            while go[0] < r:  # spin, so that all start within a few hundred ns
                pass
            try:
                _core.demo_lock_release()
                wins.append(r)
            except RuntimeError:
                pass
            done.wait()

    workers = [threading.Thread(target=releaser, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    try:
        for r in range(1, rounds + 1):
            assert _core.demo_lock_acquire(5) is True
            go[0] = r
            done.wait()
            assert wins.count(r) == 1, f"round {r}: {wins.count(r)} releases succeeded"
        # And the lock is still a lock: once taken, a second take fails.
        assert _core.demo_lock_acquire(0) is True
        assert _core.demo_lock_acquire(0) is False
        _core.demo_lock_release()
    finally:
        for w in workers:
            w.join(1)
        if any(w.is_alive() for w in workers):  # a failed round: let them out
            go[0] = rounds + 1
            done.abort()
            for w in workers:
                w.join(10)
