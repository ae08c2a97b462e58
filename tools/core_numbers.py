"""Measure the C core's headline numbers side by side, in one run.

    python tools/core_numbers.py [--repeats 5]

Prints: ns per iteration of the counting kernel (C, and pure Python for
scale), the 2-thread speedup of count_nogil and of count_gil (same total
work, started behind a barrier, median of repeats), the updates lost by
UnsafeCounter in 10 races of 2 x 1,000,000, and the Ctrl-C latency of long
calls (SIGINT sent from another process; both read the same monotonic clock).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import gilx


def best_seconds(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def on_threads(func: Callable[[int], object], n: int, k: int) -> float:
    """Seconds for k threads, started together, each doing n // k."""
    barrier = threading.Barrier(k + 1)
    done: list[float] = []

    def work() -> None:
        barrier.wait()
        func(n // k)

    threads = [threading.Thread(target=work) for _ in range(k)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    done.append(time.perf_counter() - start)
    return done[0]


def speedup(func: Callable[[int], object], n: int, repeats: int) -> tuple[float, float, float]:
    one = statistics.median(on_threads(func, n, 1) for _ in range(repeats))
    two = statistics.median(on_threads(func, n, 2) for _ in range(repeats))
    return one, two, one / two


CHILD = """
import sys, time, gilx
print('ready', flush=True)
try:
    {call}
except KeyboardInterrupt:
    print(time.perf_counter(), flush=True)
"""


def ctrl_c_latency(call: str) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(call=call)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(0.3)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    caught = float(proc.stdout.readline())
    proc.wait(timeout=30)
    return caught - sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    r = args.repeats

    n = 1 << 28
    ns_c = best_seconds(lambda: gilx.count_gil(n), r) / n * 1e9
    ns_nogil = best_seconds(lambda: gilx.count_nogil(n), r) / n * 1e9
    m = 1 << 22
    ns_py = best_seconds(lambda: gilx.count_py(m), r) / m * 1e9
    print(f"kernel: count_gil {ns_c:.3f} ns/iter, count_nogil {ns_nogil:.3f} ns/iter, "
          f"count_py {ns_py:.1f} ns/iter")

    work = int(0.5 / (ns_c * 1e-9))  # about 0.5 s for one thread
    for name, func in (("count_nogil", gilx.count_nogil), ("count_gil", gilx.count_gil)):
        one, two, s = speedup(func, work, r)
        print(f"{name} on 2 threads: 1 thread {one:.3f} s, 2 threads {two:.3f} s, "
              f"speedup {s:.3f}, efficiency {s / 2:.3f}")

    lost = [gilx.race("unsafe", 2, 1_000_000).lost for _ in range(10)]
    print(f"UnsafeCounter, 10 races of 2 x 1,000,000: lost {lost} "
          f"(median {statistics.median(lost):,.0f}, runs losing: {sum(x > 0 for x in lost)}/10)")
    for call in ("gilx.count_gil(2**62)", "gilx.count_nogil(2**62)",
                 "gilx.UnsafeCounter().increment(2**62)"):
        latencies = sorted(ctrl_c_latency(call) * 1e3 for _ in range(3))
        print(f"Ctrl-C latency of {call}: {', '.join(f'{x:.2f}' for x in latencies)} ms")


if __name__ == "__main__":
    main()
