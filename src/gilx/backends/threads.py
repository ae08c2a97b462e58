"""Threads: ``k`` threads of this process, so they share its interpreter and its GIL.

Each thread prepares its share, then waits at a barrier with the coordinating
thread; every ``go()`` lets them all through at once and collects each
thread's own (start, end).  Between repeats the threads stay alive, waiting
at the barrier again.  A worker's exception is re-raised in the caller.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from gilx import machine
from gilx.backends.base import BARRIER_TIMEOUT, Backend, Crew, Job, Options, Session
from gilx.timing import Span, clock, span_of, split


class ThreadCrew(Crew):
    """One thread per maker: each calls its maker (untimed) to get the call it repeats.

    The runner builds the makers from a job's shares (:meth:`ThreadSession.crew`);
    the benchmarks build them from their own calls.
    """

    def __init__(self, makers: Sequence[Callable[[], Callable[[], object]]]) -> None:
        workers = len(makers)
        self._workers = workers
        self._barrier = threading.Barrier(workers + 1, timeout=BARRIER_TIMEOUT)
        self._results: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, args=(make,), name=f"gilx-worker-{i}", daemon=True)
            for i, make in enumerate(makers)
        ]
        self._closed = False
        self._os_threads_before = machine.os_threads()
        try:
            for t in self._threads:
                t.start()
            for _ in range(workers):  # all prepared: preparing is not timed
                self._take("ready")
        except BaseException:
            self._closed = True
            self._barrier.abort()
            raise

    def _work(self, make: Callable[[], Callable[[], object]]) -> None:
        try:
            run = make()
            self._results.put(("ready", None, None))
            while True:
                self._barrier.wait()
                start = clock()
                run()
                self._results.put(("run", start, clock()))
        except threading.BrokenBarrierError:
            pass  # closed, or another worker failed first: its error is the one reported
        except BaseException as exc:  # re-raised in the caller's thread
            self._results.put(("error", exc, None))

    def _take(self, kind: str) -> tuple[Any, Any]:
        tag, a, b = self._results.get()
        if tag == "error":
            self._barrier.abort()
            raise a
        assert tag == kind, (tag, kind)
        return a, b

    def go(self) -> Span:
        try:
            self._barrier.wait()
            self.stamps = tuple(self._take("run") for _ in range(self._workers))
            return span_of(self.stamps)
        except BaseException:
            # e.g. Ctrl-C: free the workers waiting at the barrier, and do not
            # wait for one still busy with its share (they are daemon threads)
            self._closed = True
            self._barrier.abort()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._barrier.abort()
        for t in self._threads:
            t.join()
        # join() returns when a thread's Python code is done, before its OS thread
        # has exited; a process forked next (the processes backend) must not catch
        # one of them half-way (machine.wait_for_os_threads says why).
        machine.wait_for_os_threads(self._os_threads_before)


class ThreadSession(Session):
    def __init__(self, job: Job, endpoint: str) -> None:
        self._job = job
        self._endpoint = endpoint
        context = getattr(job, "context", None)
        # A workload's per-process setting (NumPy: BLAS on one thread) holds
        # for this whole process while the session is open.
        self._context: AbstractContextManager[object] = context() if context else nullcontext()
        self._context.__enter__()
        self._closed = False

    def crew(self, total: int, workers: int) -> Crew:
        prepare, endpoint = self._job.prepare, self._endpoint
        return ThreadCrew(
            [functools.partial(prepare, share, endpoint) for share in split(total, workers)]
        )

    def describe(self) -> str:
        return "threads"

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._context.__exit__(None, None, None)


class Threads(Backend):
    name = "threads"
    singular = "thread"
    summary = "k threads of this process: one interpreter, one GIL (where there is one)"

    def open(self, work: Job, endpoint: str, options: Options) -> Session:
        return ThreadSession(work, endpoint)
