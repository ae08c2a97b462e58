"""LockedCounter's waits are short and fair beside a long increment (csrc/reference/counters.c).

Its lock used to be a PyThread lock, which is not fair: the incrementing thread let it go
between two chunks and took it straight back, and a reader could wait for many chunks,
deaf to Ctrl-C (ten reads of ``value`` beside one long increment: 0.0 ms seven times and
279, 355 and 432 ms the other three).  Now ``value`` reads a published copy without the
lock, and ``reset()`` queues on a ticket lock behind at most one chunk per thread.

The bounds are generous and retried: they tell "one chunk" (~1-10 ms) from "starved"
(hundreds of ms), not how fast; benchmarks/test_every_process.py measures the latency.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable

import pytest
from conftest import needs_two_cores, retry

import gilx

# A wait far longer than one chunk (even ~10 ms on a busy machine) and far shorter than
# the starved waits above.
STARVED_S = 0.1


def _longest_wait(op: Callable[[gilx.LockedCounter], object], calls: int) -> float:
    """The longest of ``calls`` calls of ``op`` beside a long increment in a worker.

    Stops early at the first call longer than STARVED_S: one is enough to fail.
    """
    counter = gilx.LockedCounter()
    token = gilx.CancelToken(timeout=60)
    worker = threading.Thread(target=_increment_until_cancelled, args=(counter, token))
    worker.start()
    try:
        while counter.value == 0:  # the worker holds the lock for its chunks now
            time.sleep(0.001)
        longest = 0.0
        for _ in range(calls):
            start = time.perf_counter()
            op(counter)
            longest = max(longest, time.perf_counter() - start)
            if longest > STARVED_S:
                break
            time.sleep(0.001)
        return longest
    finally:
        token.cancel()
        worker.join()


def _increment_until_cancelled(counter: gilx.LockedCounter, token: gilx.CancelToken) -> None:
    try:
        counter.increment(2**62, cancel=token)
    except gilx.Cancelled:
        pass


@needs_two_cores
@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda c: c.value, id="value"),
        pytest.param(repr, id="repr"),
        pytest.param(lambda c: c.reset(), id="reset"),
    ],
)
def test_a_wait_beside_a_long_increment_is_not_starved(op):
    assert retry(3, lambda: _longest_wait(op, 300) < STARVED_S)


@needs_two_cores
def test_value_does_not_wait_for_the_chunk_in_progress():
    # Under the lock, a read that finds a chunk in progress waits for its end: the
    # median read took about half a chunk (0.4-0.8 ms here).  The published copy needs
    # no lock: a read is a load, well under a tenth of a chunk even on a busy machine.
    def median_read() -> float:
        counter = gilx.LockedCounter()
        token = gilx.CancelToken(timeout=60)
        worker = threading.Thread(target=_increment_until_cancelled, args=(counter, token))
        worker.start()
        try:
            while counter.value == 0:
                time.sleep(0.001)
            reads = []
            for _ in range(101):
                start = time.perf_counter()
                _ = counter.value
                reads.append(time.perf_counter() - start)
                time.sleep(0.0003)
            return sorted(reads)[50]
        finally:
            token.cancel()
            worker.join()

    assert retry(3, lambda: median_read() < 1e-4)


def test_value_after_joined_increments_is_exact():
    # The published copy is the count after the last chunk: exact once the threads
    # that incremented have been joined.
    counter = gilx.LockedCounter()
    threads = [
        threading.Thread(target=counter.increment, args=(gilx._core.COUNTER_CHUNK + 7,))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.value == 3 * (gilx._core.COUNTER_CHUNK + 7)
    counter.reset()
    assert counter.value == 0


# The main thread reads `value` in a loop beside a worker's long increment; the parent
# sends SIGINT and the child reports how long KeyboardInterrupt took to surface.
CTRL_C_WHILE_READING = """
import os, signal, sys, threading, time
import gilx

c = gilx.LockedCounter()
token = gilx.CancelToken(timeout=120)

def work():
    try:
        c.increment(2**62, cancel=token)
    except gilx.Cancelled:
        pass

t = threading.Thread(target=work)
t.start()
while c.value == 0:
    time.sleep(0.001)
print("ready", flush=True)
try:
    while True:
        c.value
        c.reset()
except KeyboardInterrupt:
    took = time.monotonic() - float(sys.stdin.readline())
    token.cancel()
    t.join()
    print(f"{took:.4f}", flush=True)
"""

ENVIRONMENTS = [pytest.param({}, id="default")]
if gilx._core.FREE_THREADED_BUILD:
    ENVIRONMENTS.append(pytest.param({"PYTHON_GIL": "1"}, id="PYTHON_GIL=1"))


@pytest.mark.thread_unsafe(reason="starts a child process and sends it a signal")
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via os.kill is POSIX")
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ctrl_c_reaches_the_main_thread_reading_beside_a_long_increment(env):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CTRL_C_WHILE_READING)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        # Before the fix, with PYTHON_GIL=1 the worker's increment held the GIL for the
        # whole call and the main thread never got as far as "ready".
        readable, _, _ = select.select([proc.stdout], [], [], 30)
        assert readable, "the main thread never ran beside the increment"
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        proc.stdin.write(f"{time.monotonic()}\n")
        proc.stdin.flush()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    # Generous: that it ends, and not after a starved wait of seconds.
    assert float(out.strip()) < 5.0, out
