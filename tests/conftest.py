"""Shared helpers for the behaviour tests of the installed gilx package."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import pytest

from gilx.machine import cores

_two_cores = pytest.mark.skipif(cores() < 2, reason="needs at least 2 CPU cores")
# A test that judges what two threads do on two cores at once cannot share those
# cores with copies of itself: under pytest-run-parallel it runs in one thread.
_alone = pytest.mark.thread_unsafe(reason="judges two threads on two free cores")


def needs_two_cores(test: Callable[..., object]) -> Callable[..., object]:
    """Skip ``test`` below 2 cores; under pytest-run-parallel, run it in one thread."""
    return _two_cores(_alone(test))


def longest_stall(call: Callable[[], object]) -> tuple[float, float]:
    """Run ``call`` while a pure-Python heartbeat thread spins; return
    (longest heartbeat gap overlapping the call, duration of the call), in seconds.

    The heartbeat needs the GIL for every step, so its longest gap is the longest
    time the GIL was unavailable to it.
    """
    stop = threading.Event()
    started = threading.Event()
    gaps: list[tuple[float, float]] = []  # (end of the gap, its length)

    def beat() -> None:
        last = time.perf_counter()
        started.set()
        while not stop.is_set():
            now = time.perf_counter()
            if now - last > 0.001:
                gaps.append((now, now - last))
            last = now

    heart = threading.Thread(target=beat, daemon=True)
    heart.start()
    started.wait()
    time.sleep(0.02)
    begin = time.perf_counter()
    call()
    end = time.perf_counter()
    stop.set()
    heart.join()
    overlapping = [g for (e, g) in gaps if e >= begin and e - g <= end]
    return max(overlapping, default=0.0), end - begin


def fake_cpu_meter(shares: Iterable[float]) -> type:
    """A stand-in for gilx.machine.CpuMeter whose stop() reports these shares of 1 core in turn."""
    from gilx import machine

    it = iter(shares)

    class Meter:
        def __init__(self, pids: object = frozenset) -> None:
            pass

        def start(self) -> None:
            pass

        def stop(self) -> machine.CpuUse:
            return machine.CpuUse(1.0, 1, next(it), 0.0, 0.0)

    return Meter


def retry(attempts: int, check: Callable[[], bool]) -> bool:
    """True if ``check`` holds in at least one of ``attempts`` tries (for races)."""
    return any(check() for _ in range(attempts))


def asan_loaded() -> bool:
    """AddressSanitizer is in this process (tools/asan.sh preloads it)."""
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


# ASan keeps freed memory in quarantine (to catch use-after-free), so the
# resident size grows with every allocation: RSS says nothing about leaks
# there.  The normal run of the suite does these checks.
rss_meaningful = pytest.mark.skipif(
    asan_loaded(), reason="under ASan, freed memory stays in quarantine: RSS is not a leak measure"
)
