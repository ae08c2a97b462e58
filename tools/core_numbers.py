"""Measure the C core's headline numbers side by side, in one run.

    python tools/core_numbers.py [--repeats 5]

Prints: ns per iteration of the counting kernel (C, and pure Python for
scale), the 2-thread speedup of count_nogil and of count_gil (gilx.scale:
same total work, started behind a barrier, median of repeats, flagged when
other processes disturbed it), the updates lost by
UnsafeCounter in 10 races of 2 x 1,000,000, and the Ctrl-C latency of long
calls (SIGINT sent from another process; both read the same monotonic clock).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
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


def speedup(workload: str, n: int, repeats: int) -> gilx.ScaleResult:
    """One and two threads on the same total work: gilx's own runner, disturbance included."""
    return gilx.scale(workload, "threads", [2], size=n, repeats=repeats)


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
    print(
        f"kernel: count_gil {ns_c:.3f} ns/iter, count_nogil {ns_nogil:.3f} ns/iter, "
        f"count_py {ns_py:.1f} ns/iter"
    )

    work = int(0.5 / (ns_c * 1e-9))  # about 0.5 s for one thread
    for name, workload in (("count_nogil", "nogil"), ("count_gil", "gil")):
        result = speedup(workload, work, r)
        two = result.point(2)
        busy = f"; DISTURBED, not judged: others took {two.other_cpu:.0%}" if two.disturbed else ""
        print(
            f"{name} on 2 threads: 1 thread {result.baseline.median:.3f} s, 2 threads "
            f"{two.seconds:.3f} s, speedup {two.speedup:.3f}, efficiency {two.efficiency:.3f}"
            f"{busy}"
        )

    lost = [gilx.race("unsafe", 2, 1_000_000).lost for _ in range(10)]
    print(
        f"UnsafeCounter, 10 races of 2 x 1,000,000: lost {lost} "
        f"(median {statistics.median(lost):,.0f}, runs losing: {sum(x > 0 for x in lost)}/10)"
    )
    for call in (
        "gilx.count_gil(2**62)",
        "gilx.count_nogil(2**62)",
        "gilx.UnsafeCounter().increment(2**62)",
    ):
        latencies = sorted(ctrl_c_latency(call) * 1e3 for _ in range(3))
        print(f"Ctrl-C latency of {call}: {', '.join(f'{x:.2f}' for x in latencies)} ms")


if __name__ == "__main__":
    main()
