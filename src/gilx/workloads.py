"""The workloads (the README's reference): what the work is and how a share of it is run.

A workload is a size (in its own ``unit``) that can be split among workers:
``prepare(share, endpoint)`` builds, outside any timing, whatever a worker needs
(arrays, a buffer, an HTTP opener) and returns the callable that does ``share``
units of work.  All functions here live at module level, so a workload can be
named in a child process under any start method (fork, forkserver, spawn).

NumPy, threadpoolctl and urllib are imported only when their workload runs:
``import gilx`` stays light.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

from gilx import _extras, _numba
from gilx._core import count_gil, count_nogil, stream_sum
from gilx.machine import last_level_cache_bytes
from gilx.pure import count_py

#: The seed's matrices: ``np.random.rand(1000, 1000)``.
MATRIX_SIZE = 1000

#: The memory workload's buffer is at least this large, and at least four
#: times the last-level cache, so every pass streams from DRAM.
MIN_BUFFER_BYTES = 64 * 1024 * 1024
CACHE_MULTIPLE = 4


def buffer_bytes() -> int:
    """The memory workload's buffer size on this machine (a multiple of 8 bytes)."""
    cache = last_level_cache_bytes() or 0
    return max(MIN_BUFFER_BYTES, CACHE_MULTIPLE * cache) // 8 * 8


def _no_server() -> AbstractContextManager[str]:
    return nullcontext("")


def _no_notes() -> list[str]:
    return []


@dataclass(frozen=True)
class Workload:
    """One kind of work.

    ``prepare(share, endpoint)`` returns the callable doing ``share`` units;
    ``endpoint`` is what ``server()`` yielded in the parent: the URL of the
    server the work talks to (the io workload's), ``""`` for work without one.
    ``context()`` is entered once per process that runs workers (NumPy: BLAS
    pinned to one thread).  ``start_size`` is where calibration starts.

    What callers branch on is said here, never by the workload's name:

    * ``checked``: the prepared callable returns the units it did, and a
      backend that gets results back (Dask) checks them;
    * ``io_bound``: its work is waiting for the ``server()``, so a
      backend that only overlaps waits (asyncio) can run it;
    * ``per_call``: each call is something a user waits on (a download, a
      sleep), so :mod:`gilx._convoy` also times every call (its latency);
    * ``trace``: how :mod:`gilx.timeline` records it: ``"kernel"`` (the C
      kernel stamps its own chunks; ``releases_gil`` says which way it runs),
      ``"python"`` (a pure-Python loop stamps itself) or ``"calls"`` (each
      call of ``prepare(call_unit, ...)``'s callable is timed; a wait for
      ``io_bound`` work, else a run);
    * ``notes()``: lines for the text output about cost outside the timed
      work (Numba: its JIT compilation);
    * ``extra``: (module, extra) an optional engine it needs: checked before
      anything starts (:meth:`require`), so every backend says the one line
      naming ``pip install "gilx[extra]"`` instead of failing in a worker;
    * ``no_subinterpreter``: why it cannot run in a subinterpreter (its
      extension modules refuse to load there), ``""`` when it can.

    Every field is a module-level function or a constant, so a Workload
    pickles by reference: backends send it to their worker processes as it is.
    """

    name: str
    summary: str
    unit: str
    start_size: int
    prepare: Callable[[int, str], Callable[[], object]]
    context: Callable[[], AbstractContextManager[object]] = nullcontext
    server: Callable[[], AbstractContextManager[str]] = _no_server
    checked: bool = False
    io_bound: bool = False
    per_call: bool = False
    trace: str = "calls"
    releases_gil: bool = False
    call_unit: int = 1
    notes: Callable[[], list[str]] = _no_notes
    extra: tuple[str, str] | None = None
    no_subinterpreter: str = ""

    def require(self) -> None:
        """:class:`gilx.MissingExtra` (one line) when an engine this work needs is missing."""
        if self.extra is not None:
            module, extra = self.extra
            _extras.require(module, extra, f"the {self.name} workload")


def _prepare_py(share: int, endpoint: str) -> Callable[[], object]:
    return functools.partial(count_py, share)


def _prepare_gil(share: int, endpoint: str) -> Callable[[], object]:
    return functools.partial(count_gil, share)


def _prepare_nogil(share: int, endpoint: str) -> Callable[[], object]:
    return functools.partial(count_nogil, share)


def _prepare_numpy(share: int, endpoint: str) -> Callable[[], object]:
    import numpy as np

    matrix = np.random.default_rng(0).random((MATRIX_SIZE, MATRIX_SIZE))

    def dots() -> None:
        for _ in range(share):
            np.dot(matrix, matrix)

    return dots


@contextmanager
def _one_blas_thread() -> Iterator[object]:
    """Pin BLAS to one thread in this process, so threads show the GIL, not OpenBLAS."""
    import numpy  # noqa: F401  (loads BLAS, so threadpoolctl can find it)
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped, unused-ignore]

    with threadpool_limits(limits=1, user_api="blas") as limits:
        yield limits


def _prepare_io(share: int, endpoint: str) -> Callable[[], object]:
    from gilx._httpdelay import download, loopback_opener

    opener = loopback_opener()

    def downloads() -> None:
        for _ in range(share):
            download(opener, endpoint)

    return downloads


def _io_server() -> AbstractContextManager[str]:
    from gilx._httpdelay import serve

    return serve()


def _prepare_memory(share: int, endpoint: str) -> Callable[[], object]:
    # Built by repetition, not bytearray(n): every page is written, so the
    # timed passes read real memory, not the shared zero page.
    buffer = bytearray(b"\x01") * buffer_bytes()
    return functools.partial(stream_sum, buffer, share)


#: Why the NumPy and Numba workloads cannot run in a subinterpreter (tests/test_interpreters.py
#: checks that NumPy still refuses).
_NUMPY_REFUSES = "NumPy's extension modules refuse to load in a subinterpreter"
_NUMBA_REFUSES = "Numba needs NumPy, whose extension modules refuse to load in a subinterpreter"

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "py",
            "pure-Python counting loop (count_py)",
            "loop steps",
            100_000,
            _prepare_py,
            checked=True,
            trace="python",
        ),
        Workload(
            "gil",
            "C counting loop, GIL held (count_gil)",
            "loop steps",
            1_000_000,
            _prepare_gil,
            checked=True,
            trace="kernel",
        ),
        Workload(
            "nogil",
            "C counting loop, GIL released (count_nogil)",
            "loop steps",
            1_000_000,
            _prepare_nogil,
            checked=True,
            trace="kernel",
            releases_gil=True,
        ),
        Workload(
            "numpy",
            f"np.dot of two {MATRIX_SIZE}x{MATRIX_SIZE} matrices, BLAS on one thread per worker",
            "dot products",
            1,
            _prepare_numpy,
            context=_one_blas_thread,
            releases_gil=True,
            no_subinterpreter=_NUMPY_REFUSES,
        ),
        Workload(
            "io",
            "urllib downloads from a local HTTP server (127.0.0.1) that answers after a delay",
            "downloads",
            1,
            _prepare_io,
            server=_io_server,
            io_bound=True,
            per_call=True,
        ),
        Workload(
            "memory",
            "stream_sum over a buffer far larger than the caches, GIL released",
            "passes over the buffer",
            1,
            _prepare_memory,
            releases_gil=True,
        ),
        Workload(
            "numba-nogil",
            "a loop compiled by Numba with @njit(nogil=True): the GIL released",
            "loop steps",
            1_000_000,
            _numba.prepare_nogil,
            checked=True,
            releases_gil=True,
            call_unit=_numba.CHUNK_STEPS,  # a timeline call: one chunk (~1 ms), not one step
            notes=_numba.notes_nogil,
            extra=("numba", "numba"),
            no_subinterpreter=_NUMBA_REFUSES,
        ),
        Workload(
            "numba-gil",
            "the same loop compiled with @njit, without nogil: the GIL held",
            "loop steps",
            1_000_000,
            _numba.prepare_gil,
            checked=True,
            call_unit=_numba.CHUNK_STEPS,
            notes=_numba.notes_gil,
            extra=("numba", "numba"),
            no_subinterpreter=_NUMBA_REFUSES,
        ),
    )
}
NAMES: tuple[str, ...] = tuple(WORKLOADS)


def get(name: str) -> Workload:
    """The workload called ``name``; ValueError naming the choices otherwise."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(NAMES)}") from None
