"""Workloads for the ThreadSanitizer check (tests/test_tsan.py runs each in a child).

``python tests/tsan_workloads.py NAME``: several threads hammer one gilx
object or function at once.  Under a TSan build every data race that the
threads' accesses make is reported on stderr.
"""

from __future__ import annotations

import sys
import threading

import gilx
from gilx import _core


def hammer(target, threads: int = 4) -> None:  # type: ignore[no-untyped-def]
    """Run ``target`` in ``threads`` threads at once and wait for them."""
    workers = [threading.Thread(target=target) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def counter_workload(cls: type) -> None:
    counter = cls()
    for _ in range(3):
        gate = _core.StartGate(4)
        hammer(lambda gate=gate: counter.increment(200_000, start=gate))
    print(counter.value)


def locked_reads_workload() -> None:
    """Two threads increment one LockedCounter while two read ``value`` and ``reset()`` it:
    the published value is read with no lock, reset takes the ticket lock."""
    counter = gilx.LockedCounter()

    def read_and_reset() -> None:
        for i in range(200):
            _ = counter.value
            if i % 20 == 0:
                counter.reset()

    workers = [threading.Thread(target=counter.increment, args=(2_000_000,)) for _ in range(2)]
    workers += [threading.Thread(target=read_and_reset) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(counter.value)


WORKLOADS = {
    "atomic": lambda: counter_workload(gilx.AtomicCounter),
    "locked": lambda: counter_workload(gilx.LockedCounter),
    "locked_reads": locked_reads_workload,
    "unsafe": lambda: counter_workload(gilx.UnsafeCounter),
    "count_nogil": lambda: hammer(lambda: gilx.count_nogil(20_000_000)),
    "count_gil": lambda: hammer(lambda: gilx.count_gil(20_000_000)),
    "count_auto": lambda: hammer(lambda: _core.count_auto(20_000_000)),
    "stream_sum": lambda: hammer(lambda: _core.stream_sum(bytearray(1 << 20), 20)),
    "race": lambda: [gilx.race(k, 4, 100_000) for k in ("atomic", "locked")],
    "cancel": lambda: _cancel_workload(),
}


def _cancel_workload() -> None:
    token = gilx.CancelToken()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            gilx.count_nogil(2**62, cancel=token)
        except gilx.Cancelled as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(3)]
    for w in workers:
        w.start()
    import time

    time.sleep(0.2)
    token.cancel()
    for w in workers:
        w.join()
    assert len(errors) == 3


if __name__ == "__main__":
    WORKLOADS[sys.argv[1]]()
    print("done", sys.argv[1])
