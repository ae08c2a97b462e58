"""count_nogil really lets other threads run; count_gil really does not."""

from __future__ import annotations

import threading

import pytest
from conftest import longest_stall, needs_two_cores, retry

import gilx

# About 0.3 s of work, whatever the machine: sized from a timed warm-up.
_N = None


def work_size() -> int:
    global _N
    if _N is None:
        import time

        start = time.perf_counter()
        gilx.count_gil(1 << 24)
        per_iter = (time.perf_counter() - start) / (1 << 24)
        _N = max(1 << 24, int(0.3 / max(per_iter, 1e-12)))
    return _N


gil_build = pytest.mark.skipif(not gilx.gil_enabled(), reason="needs the GIL")


@gil_build
def test_count_gil_stops_other_python_threads():
    # The heartbeat cannot take a single step while count_gil holds the GIL,
    # so its longest gap covers (nearly) the whole call.
    def stalled() -> bool:
        gap, duration = longest_stall(lambda: gilx.count_gil(work_size()))
        return duration > 0.05 and gap >= 0.8 * duration

    assert retry(5, stalled)


def test_count_nogil_lets_other_python_threads_run():
    def kept_beating() -> bool:
        gap, duration = longest_stall(lambda: gilx.count_nogil(work_size()))
        return duration > 0.05 and gap < 0.5 * duration

    assert retry(5, kept_beating)


@needs_two_cores
def test_two_nogil_calls_overlap_in_time():
    """Two threads in count_nogil are inside the kernel at the same time."""
    import time

    def overlapped() -> bool:
        spans: dict[int, tuple[float, float]] = {}
        barrier = threading.Barrier(2)

        def run(i: int) -> None:
            barrier.wait()
            start = time.perf_counter()
            gilx.count_nogil(work_size())
            spans[i] = (start, time.perf_counter())

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (a0, a1), (b0, b1) = spans[0], spans[1]
        overlap = min(a1, b1) - max(a0, b0)
        return overlap > 0.5 * min(a1 - a0, b1 - b0)

    assert retry(5, overlapped)
