"""Ground truth for blame (``gilx watch --top``): five threads with known culprits.

* A ``spin_python``: a pure-Python loop (holds the GIL whenever it runs);
* B ``run_count_gil``: ``gilx.count_gil`` calls (a C loop holding the GIL);
* C ``block_holding_gil``: ``usleep`` through ``ctypes.PyDLL``, which keeps the GIL:
  it holds the GIL while *blocked*, using no CPU;
* D ``burn_released``: ``gilx.count_nogil`` (CPU work with the GIL released);
* E ``sleep_often``: 1 ms sleeps.

Each thread times what it holds by itself.  A and B run only while they hold the GIL,
so what they held is their own CPU time (``time.thread_time``).  C holds it while
blocked, using no CPU: its calls times the length of one call (timed alone before the
threads start) plus its CPU time.  D and E hold it only for their Python glue: their CPU
time outside the releasing calls.  (Timing a call with ``perf_counter`` around it would
not do: the thread may be made to drop the GIL right after a call returns, and the
wait would count as held.)  On a busy machine a holder may lose its CPU while it holds
the GIL, and CPU time then undercounts: each thread also reports the time it waited for
a CPU (Linux's run-queue time, ``delay``), so that what it held lies between ``held``
and ``held + delay``; on a quiet machine the two are close.

``python blame_truth.py SECONDS [TRUTH.json]`` runs it as a program (for
``gilx watch --top`` and ``py-spy record --gil``); :func:`run` from Python.
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading
import time
from collections.abc import Callable

import gilx

#: Each thread's Python function: where blame should put its holds.
CULPRITS = {
    "A": "spin_python",
    "B": "run_count_gil",
    "C": "block_holding_gil",
    "D": "burn_released",
    "E": "sleep_often",
}

COUNT_GIL_N = 300_000  # ~0.1-0.3 ms of count_gil per call
COUNT_NOGIL_N = 3_000_000  # ~1-3 ms of count_nogil per call
USLEEP_US = 1500  # C blocks 1.5 ms per call, GIL held


def _run_delay() -> float:
    """This thread's time waiting for a CPU so far (seconds; 0.0 where unknown)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _timed(work: Callable[[threading.Event, dict[str, float]], None]) -> Callable[..., None]:
    def timed(stop: threading.Event, out: dict[str, float]) -> None:
        delay = _run_delay()
        work(stop, out)
        out["delay"] = _run_delay() - delay

    timed.__name__ = work.__name__
    return timed


def spin_python(stop: threading.Event, out: dict[str, float]) -> None:
    cpu = time.thread_time()
    while not stop.is_set():
        total = 0
        for i in range(2000):
            total += i
    out["held"] = time.thread_time() - cpu


def run_count_gil(stop: threading.Event, out: dict[str, float]) -> None:
    cpu = time.thread_time()
    while not stop.is_set():
        gilx.count_gil(COUNT_GIL_N)
    out["held"] = time.thread_time() - cpu


def _usleep() -> ctypes._CFuncPtr:
    usleep = ctypes.PyDLL(None).usleep  # PyDLL: the GIL stays held during the call
    usleep.argtypes = [ctypes.c_uint]
    return usleep


def usleep_seconds(calls: int = 40) -> float:
    """How long one ``usleep(USLEEP_US)`` call lasts here (median, timed alone)."""
    usleep = _usleep()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        usleep(USLEEP_US)
        times.append(time.perf_counter() - t0)
    return sorted(times)[calls // 2]


def block_holding_gil(stop: threading.Event, out: dict[str, float]) -> None:
    usleep = _usleep()
    calls, cpu = 0, time.thread_time()
    while not stop.is_set():
        usleep(USLEEP_US)
        calls += 1
        time.sleep(0.002)  # then let go for a while
    out["calls"] = calls
    out["cpu"] = time.thread_time() - cpu


def burn_released(stop: threading.Event, out: dict[str, float]) -> None:
    cpu0, released = time.thread_time(), 0.0
    while not stop.is_set():
        t0 = time.thread_time()
        gilx.count_nogil(COUNT_NOGIL_N)
        released += time.thread_time() - t0
    out["held"] = max(0.0, time.thread_time() - cpu0 - released)


def sleep_often(stop: threading.Event, out: dict[str, float]) -> None:
    cpu = time.thread_time()
    while not stop.is_set():
        time.sleep(0.001)
    out["held"] = time.thread_time() - cpu


def run(seconds: float) -> dict[str, object]:
    """Run the five threads for ``seconds``; the truth: each thread's name, native id,
    culprit function and seconds held, and the wall time."""
    stop = threading.Event()
    targets = {
        "A": spin_python,
        "B": run_count_gil,
        "C": block_holding_gil,
        "D": burn_released,
        "E": sleep_often,
    }
    outs: dict[str, dict[str, float]] = {k: {} for k in targets}
    threads = {
        k: threading.Thread(target=_timed(f), args=(stop, outs[k]), name=k)
        for k, f in targets.items()
    }
    one_call = usleep_seconds()
    t0 = time.perf_counter()
    for t in threads.values():
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads.values():
        t.join()
    wall = time.perf_counter() - t0
    outs["C"]["held"] = outs["C"]["calls"] * one_call + outs["C"]["cpu"]
    return {
        "wall": wall,
        "threads": {
            k: {
                "function": CULPRITS[k],
                "native_id": threads[k].native_id,
                "held": outs[k]["held"],
                "delay": outs[k]["delay"],
            }
            for k in targets
        },
    }


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    truth = run(seconds)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            json.dump(truth, f)
    else:
        print(json.dumps(truth))


if __name__ == "__main__":
    main()
