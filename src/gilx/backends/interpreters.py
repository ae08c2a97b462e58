"""Interpreters: ``k`` subinterpreters of this process, each with its own GIL, each on a thread.

PEP 684 (CPython 3.12) gave each isolated subinterpreter a GIL of its own, so
``k`` of them run Python bytecode on ``k`` cores at once, inside one process.
Every worker is a thread of this process that creates one isolated
interpreter, unpickles the workload there (a :class:`Workload` pickles by
reference, as for the processes backend), prepares its share, and then waits
at a barrier with the coordinating thread; each ``go()`` lets them all through
at once and every thread runs its share inside its interpreter.  A worker's
(start, end) are stamped on its own thread around the call into its
interpreter (entering it costs microseconds; the shares take milliseconds at
least).  Creating the interpreters and preparing their shares is timed apart
from the work, as the crew's ``startup``.

Which module provides the interpreters:

* 3.14 and later: the standard library's ``concurrent.interpreters`` (PEP 734);
* 3.13: the same API from PyPI, ``interpreters-pep-734`` (the extra
  ``interpreters``), over the standard library's private ``_interpreters``;
* 3.12: the standard library's private ``_xxsubinterpreters`` and
  ``_xxinterpchannels``.  (The PyPI route for 3.12 needs ``interpreters-3-12``,
  a C module compiled against CPython's internal headers; its 0.5.0 crashes on
  import under CPython 3.12.1, so gilx does not use it there.)

Below 3.12 there is no per-interpreter GIL: the backend refuses, in one line.
Work whose extension modules refuse to load in a subinterpreter (NumPy, and
so Numba) says so in :attr:`Workload.no_subinterpreter`, and is refused in one
line before anything starts.

A running interpreter cannot be interrupted from outside (signals reach only
the main interpreter), so Ctrl-C stops the crew at the end of the shares in
flight: at most one share, a fraction of a second at the calibrated sizes.
Every interpreter is closed by the thread that made it.
"""

from __future__ import annotations

import os
import pickle
import queue
import re
import sys
import textwrap
import threading
from types import ModuleType
from typing import Any

from gilx import _extras, machine
from gilx.backends.base import BARRIER_TIMEOUT, Backend, Crew, Job, Options, Session
from gilx.timing import Span, clock, span_of, split
from gilx.workloads import Workload

#: The first CPython with a GIL per interpreter (PEP 684).
MIN_VERSION = (3, 12)


class InterpreterFailed(RuntimeError):
    """Code run in a subinterpreter raised; the message is ``Type: message`` from there."""


def unsupported() -> str | None:
    """Why this Python cannot run interpreters with their own GIL (None: it can)."""
    if sys.implementation.name != "cpython" or sys.version_info < MIN_VERSION:
        here = f"{sys.implementation.name} {sys.version.split()[0]}"
        return (
            "--mode interpreters needs CPython 3.12 or later (a GIL per interpreter, PEP 684);"
            f" this is {here}"
        )
    return None


def require() -> None:
    """ValueError on a Python without per-interpreter GILs; MissingExtra where 3.13 lacks the
    ``interpreters`` extra."""
    problem = unsupported()
    if problem is not None:
        raise ValueError(problem)
    if sys.version_info[:2] == (3, 13):
        _extras.require("interpreters_backport", "interpreters", "--mode interpreters on 3.13")


def _pep734() -> ModuleType | None:
    """The PEP 734 module (3.13+), or None on 3.12 (the private modules serve there)."""
    if sys.version_info >= (3, 14):
        from concurrent import interpreters

        return interpreters
    if sys.version_info >= (3, 13):
        from interpreters_backport import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            interpreters,
        )

        return interpreters  # type: ignore[no-any-return, unused-ignore]
    return None


def _queues_import() -> str:
    """The line that makes a PEP 734 queue usable inside a new interpreter.

    (A queue passed into an interpreter needs its module imported there first.)
    """
    if sys.version_info >= (3, 14):
        return "import concurrent.interpreters"
    return "import interpreters_backport.interpreters.queues"


_CLASS_PREFIX = re.compile(r"^<class '(?:[\w.]*\.)?(\w+)'>: ")


class Interpreter:
    """One isolated subinterpreter (its own GIL and allocator): ``run`` code in it, ``close``.

    Calls come from one thread at a time; ``run`` blocks that thread until the
    code is done, while other threads (and other interpreters) run on.
    """

    def __init__(self) -> None:
        require()
        self._closed = False
        module = _pep734()
        self._pep734 = module is not None
        if module is not None:
            self._module: Any = module
            self._interp: Any = module.create()
        else:
            import _xxsubinterpreters  # type: ignore[import-not-found, unused-ignore]

            self._module = _xxsubinterpreters
            # isolated=True: its own GIL, its own allocator, and it refuses modules
            # that do not support that (the same as PEP 734's create()).
            self._interp = _xxsubinterpreters.create(isolated=True)

    def run(self, code: str, **shared: object) -> None:
        """Run ``code`` in the interpreter's ``__main__``, with ``shared`` (ints, str, bytes,
        queues) bound there first; InterpreterFailed, ``Type: message``, if it raises."""
        if not self._pep734:
            try:
                self._module.run_string(self._interp, code, shared or None)
            except self._module.RunFailedError as exc:
                raise InterpreterFailed(_CLASS_PREFIX.sub(r"\1: ", str(exc))) from None
            return
        if shared:
            self._interp.prepare_main(**shared)
        try:
            self._interp.exec(code)
        except self._module.ExecutionFailed as exc:
            info = exc.excinfo
            raise InterpreterFailed(f"{info.type.__name__}: {info.msg}") from None

    def close(self) -> None:
        """Destroy the interpreter (it must not be running); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._pep734:
            self._interp.close()
        else:
            self._module.destroy(self._interp)


class BytesQueue:
    """bytes, one way between this interpreter and a subinterpreter: the interpreters' own
    queues (PEP 734) or, on 3.12, channels.  No pickling: the bytes are copied across.

    The modules' own blocking ``get`` polls, sleeping 10 ms between looks; here a
    reader blocks on an OS pipe instead, one byte written per item, so a round
    trip wakes its reader the way a process's pipe does and the measurement
    is the passing, not a poll interval.  Close it when done (its pipe's ends).
    """

    def __init__(self) -> None:
        require()
        module = _pep734()
        self._wake_read, self._wake_write = os.pipe()
        if module is not None:
            self._queue: Any = module.create_queue()
            self._channels: Any = None
        else:
            import _xxinterpchannels  # type: ignore[import-not-found, unused-ignore]

            self._channels = _xxinterpchannels
            self._queue = _xxinterpchannels.create()

    def put(self, data: bytes) -> None:
        if self._channels is not None:
            self._channels.send(self._queue, data)
        else:
            self._queue.put_nowait(data)
        os.write(self._wake_write, b"!")

    def get(self) -> bytes:
        os.read(self._wake_read, 1)  # blocks (its GIL released) until an item is there
        data = self._channels.recv(self._queue) if self._channels else self._queue.get_nowait()
        assert isinstance(data, bytes), type(data)
        return data

    def bind(self, interp: Interpreter, name: str) -> None:
        """Define ``{name}_put(data)`` and ``{name}_get()`` in ``interp``'s ``__main__``."""
        shared = {
            f"{name}_q": self._queue,
            f"{name}_r": self._wake_read,
            f"{name}_w": self._wake_write,
        }
        if self._channels is not None:
            take, give = "_ch.recv(_q)", "_ch.send(_q, data)"
            interp.run("import _xxinterpchannels as _ch")
        else:
            take, give = "_q.get_nowait()", "_q.put_nowait(data)"
            interp.run(_queues_import())
        code = f"""
            import os as _os
            def {name}_put(data, _q={name}_q, _w={name}_w):
                {give}
                _os.write(_w, b"!")
            def {name}_get(_q={name}_q, _r={name}_r):
                _os.read(_r, 1)
                return {take}
            """
        interp.run(textwrap.dedent(code), **shared)

    def close(self) -> None:
        os.close(self._wake_read)
        os.close(self._wake_write)


# What a worker's interpreter runs: once to prepare its share, once per repeat, once at the end.
_PREPARE = """
import pickle as _pickle
_work = _pickle.loads(_work_bytes)
_context = _work.context()
_context.__enter__()
_run = _work.prepare(_share, _endpoint)
del _work_bytes
"""
_GO = "_run()"
_FINISH = "_context.__exit__(None, None, None)"


class InterpreterCrew(Crew):
    """One thread per worker, each running its share in an interpreter of its own."""

    def __init__(self, work: Workload, endpoint: str, total: int, workers: int) -> None:
        self._name = work.name
        self._workers = workers
        self._barrier = threading.Barrier(workers + 1, timeout=BARRIER_TIMEOUT)
        self._results: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()
        payload = pickle.dumps(work)
        self._threads = [
            threading.Thread(
                target=self._work,
                args=(i, payload, share, endpoint),
                name=f"gilx-interpreter-{i}",
                daemon=True,
            )
            for i, share in enumerate(split(total, workers))
        ]
        self._closed = False
        self._os_threads_before = machine.os_threads()
        launched = clock()
        try:
            for t in self._threads:
                t.start()
            ready = [self._take("ready")[0] for _ in range(workers)]
        except BaseException:
            self.close()
            raise
        self.startup = max(ready) - launched

    def _work(self, index: int, payload: bytes, share: int, endpoint: str) -> None:
        interp: Interpreter | None = None
        try:
            interp = Interpreter()
            interp.run(_PREPARE, _work_bytes=payload, _share=share, _endpoint=endpoint)
            self._results.put(("ready", clock(), None))
            while True:
                self._barrier.wait()
                start = clock()
                interp.run(_GO)
                self._results.put(("run", start, clock()))
        except threading.BrokenBarrierError:
            pass  # closed, or another worker failed first: its error is the one reported
        except BaseException as exc:
            self._results.put(("error", index, exc))
            self._barrier.abort()
        finally:
            if interp is not None:
                try:
                    interp.run(_FINISH)
                except InterpreterFailed:
                    pass  # it never got as far as entering the context
                interp.close()

    def _take(self, kind: str) -> tuple[Any, Any]:
        tag, a, b = self._results.get()
        if tag == "error":
            self._barrier.abort()
            raise RuntimeError(
                f"the {self._name} workload failed in interpreter worker {a}: {b}"
            ) from None
        assert tag == kind, (tag, kind)
        return a, b

    def go(self) -> Span:
        try:
            self._barrier.wait()
            self.stamps = tuple(self._take("run") for _ in range(self._workers))
            return span_of(self.stamps)
        except BaseException:
            # e.g. Ctrl-C: the run is over, so no process is forked next; the interpreters
            # are closed (by their threads), without waiting for the OS threads to be gone
            self._stop(settle=False)
            raise

    def close(self) -> None:
        """Stop the workers; each closes its interpreter once its share in flight is done."""
        self._stop(settle=True)

    def _stop(self, settle: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._barrier.abort()
        for t in self._threads:
            if t.ident is not None:
                t.join()
        if settle:
            # join() returns when a thread's Python code is done, before its OS thread
            # has exited; a process forked next must not catch one half-way
            # (machine.wait_for_os_threads says why).
            machine.wait_for_os_threads(self._os_threads_before)


class InterpreterSession(Session):
    def __init__(self, work: Workload, endpoint: str) -> None:
        self._work = work
        self._endpoint = endpoint
        self._crews: list[InterpreterCrew] = []

    def crew(self, total: int, workers: int) -> Crew:
        crew = InterpreterCrew(self._work, self._endpoint, total, workers)
        self._crews.append(crew)
        return crew

    def describe(self) -> str:
        return "subinterpreters, each with its own GIL, one thread each"

    def close(self) -> None:
        for crew in self._crews:
            crew.close()
        self._crews.clear()


class Interpreters(Backend):
    name = "interpreters"
    singular = "interpreter"
    summary = "k subinterpreters of this process, each with its own GIL (CPython 3.12+)"

    def accepts(self, work: Job) -> bool:
        """A :class:`Workload` whose modules load in a subinterpreter."""
        return isinstance(work, Workload) and not work.no_subinterpreter

    def refusal(self, work: Job) -> str:
        if isinstance(work, Workload):
            why = work.no_subinterpreter
            return f"--mode interpreters cannot run the {work.name} workload: {why}"
        return "--mode interpreters runs only gilx's workloads (an interpreter must import them)"

    def check(self, work: Job) -> None:
        require()
        super().check(work)

    def open(self, work: Job, endpoint: str, options: Options) -> Session:
        self.check(work)
        assert isinstance(work, Workload)
        return InterpreterSession(work, endpoint)

    def notes(self, session_startup: float | None) -> list[str]:
        return ["start-up: creating the interpreters and preparing their shares (not in seconds)"]
