"""Processes: ``k`` worker processes, each with its own interpreter and its own GIL.

They use an explicit start method (the platform's default unless told
otherwise) and a module-level target that names its workload, so fork,
forkserver and spawn all work.  Launching them, until every one has prepared
its share, is timed separately from the work and reported as the crew's
``startup``.  Each ``go()`` hands every worker one permit; the workers then
meet at a barrier of their own and start together, and report their own
(start, end) on the shared monotonic clock.  The parent never waits at the
barrier itself, so it notices a worker that died instead of waiting for it.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from typing import Any

from gilx.backends.base import BARRIER_TIMEOUT, Backend, Crew, Job, Options, Session
from gilx.timing import Span, clock, span_of, split
from gilx.workloads import Workload

#: How often the parent looks for dead workers while it waits for their results (seconds).
_POLL_SECONDS = 0.5


def default_start_method() -> str:
    """The platform's default start method (fork on Linux before 3.14, spawn on macOS/Windows)."""
    return multiprocessing.get_context().get_start_method()


def start_methods() -> list[str]:
    return multiprocessing.get_all_start_methods()


def resolve_start_method(requested: str | None) -> str:
    """``requested``, or the platform's default; ValueError if this platform lacks it."""
    method = requested or default_start_method()
    if method not in start_methods():
        raise ValueError(
            f"start method must be one of {', '.join(start_methods())}; got {method!r}"
        )
    return method


def _process_worker(
    workload: Workload,
    share: int,
    endpoint: str,
    permits: Any,
    stop: Any,
    barrier: Any,
    results: Any,
    index: int,
) -> None:
    """The target of every worker process: module level, so any start method can find it."""
    try:
        with workload.context():
            run = workload.prepare(share, endpoint)
            results.put(("ready", index, clock()))
            while permits.acquire(timeout=BARRIER_TIMEOUT) and not stop.is_set():
                barrier.wait()
                start = clock()
                run()
                results.put(("run", index, start, clock()))
    except threading.BrokenBarrierError:
        pass  # closed, or another worker failed first: its error is the one reported
    except BaseException as exc:
        results.put(("error", index, f"{type(exc).__name__}: {exc}"))
        barrier.abort()


class ProcessCrew(Crew):
    def __init__(
        self, ctx: Any, workload: Workload, endpoint: str, total: int, workers: int
    ) -> None:
        self._workers = workers
        self._permits = ctx.Semaphore(0)
        self._stop = ctx.Event()
        self._barrier = ctx.Barrier(workers, timeout=BARRIER_TIMEOUT)
        self._results = ctx.Queue()
        self._closed = False
        launched = clock()
        self._procs = [
            ctx.Process(
                target=_process_worker,
                args=(
                    workload,
                    share,
                    endpoint,
                    self._permits,
                    self._stop,
                    self._barrier,
                    self._results,
                    i,
                ),
                name=f"gilx-worker-{i}",
                daemon=True,
            )
            for i, share in enumerate(split(total, workers))
        ]
        try:
            for p in self._procs:
                p.start()
            ready = [self._take("ready")[1] for _ in range(workers)]
        except BaseException:
            self.close()
            raise
        self.startup = max(ready) - launched

    def _take(self, kind: str) -> tuple[Any, ...]:
        while True:
            try:
                message = self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                dead = [p for p in self._procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"worker process {dead[0].name} died (exit code {dead[0].exitcode})"
                    ) from None
                continue
            if message[0] == "error":
                raise RuntimeError(f"worker process {message[1]} failed: {message[2]}")
            assert message[0] == kind, (message, kind)
            return tuple(message[1:])

    def go(self) -> Span:
        try:
            for _ in range(self._workers):
                self._permits.release()
            self.stamps = tuple(self._take("run")[1:] for _ in range(self._workers))
            return span_of(self.stamps)
        except BaseException:
            self.close()
            raise

    def pids(self) -> frozenset[int]:
        return frozenset(p.pid for p in self._procs if p.pid is not None and p.is_alive())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for _ in range(self._workers):
            self._permits.release()
        self._barrier.abort()  # frees any worker still waiting, after an error or Ctrl-C
        for p in self._procs:
            if p.pid is None:
                continue  # never started
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
        self._results.close()
        self._results.join_thread()


class ProcessSession(Session):
    def __init__(self, workload: Workload, endpoint: str, start_method: str) -> None:
        self._workload = workload
        self._endpoint = endpoint
        self.start_method = start_method
        # typeshed types a context chosen by a runtime string as BaseContext, without .Process
        self._ctx: Any = multiprocessing.get_context(start_method)
        self._crews: list[ProcessCrew] = []

    def crew(self, total: int, workers: int) -> Crew:
        crew = ProcessCrew(self._ctx, self._workload, self._endpoint, total, workers)
        self._crews.append(crew)
        return crew

    def describe(self) -> str:
        return f"processes, start method {self.start_method}"

    def pids(self) -> frozenset[int]:
        return frozenset().union(*(c.pids() for c in self._crews))

    def close(self) -> None:
        for crew in self._crews:
            crew.close()
        self._crews.clear()


class Processes(Backend):
    name = "processes"
    singular = "process"
    summary = "k processes, each with its own interpreter and GIL (start method: --start-method)"
    options = ("start_method",)

    def accepts(self, work: Job) -> bool:
        """A :class:`Workload` only: it pickles by reference into the child processes."""
        return isinstance(work, Workload)

    def refusal(self, work: Job) -> str:
        return "--mode processes runs only gilx's workloads (a child process must import them)"

    def check_options(self, options: Options) -> None:
        super().check_options(options)
        resolve_start_method(options.start_method)  # refused before anything is measured

    def open(self, work: Job, endpoint: str, options: Options) -> Session:
        self.check(work)
        assert isinstance(work, Workload)
        return ProcessSession(work, endpoint, resolve_start_method(options.start_method))

    def notes(self, session_startup: float | None) -> list[str]:
        return ["start-up: launching the processes and preparing their shares (not in seconds)"]
