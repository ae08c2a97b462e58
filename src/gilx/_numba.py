"""Numba (the ``numba`` extra): one loop compiled twice, for the two Numba workloads.

A leaf: it knows nothing of the runner or the tour (the tour's ``prange``
measurement lives in :mod:`gilx.tour`).

Workloads ``numba-nogil`` and ``numba-gil`` run the same loop, compiled by
``@njit`` with and without ``nogil=True``: the Numba twin of ``count_nogil``
and ``count_gil``.  Numba is imported only when one of them is prepared, and
each kernel is compiled once per process, eagerly (an explicit signature), so
compilation never lands inside a timed run; :func:`compile_seconds` says how
long it took.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gilx._args import as_count
from gilx._extras import require

#: A compiled kernel runs at most this many loop steps per call (about a
#: millisecond or two): between calls Python code runs, so Ctrl-C is seen,
#: as between the C kernel's chunks.
CHUNK_STEPS = 1 << 18

#: Any nonzero start: xorshift64 maps nonzero states to nonzero states.
_START = 0x9E3779B97F4A7C15


def _xorshift_steps(state: Any, steps: int) -> Any:
    """``steps`` xorshift64 steps from ``state``: the loop both kernels compile.

    A plain ``count += 1`` loop would be folded by LLVM into ``count += n``;
    each xorshift step depends on the last and has no closed form, so the
    cost stays linear in ``steps``.  Compiled with the signature
    ``uint64(uint64, int64)``, the shifts are logical and wrap at 64 bits.
    """
    x = state
    for _ in range(steps):
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
    return x


@dataclass(frozen=True)
class Kernel:
    """One compiled variant of the loop, and how long compiling it took."""

    nogil: bool
    steps: Callable[[Any, int], Any]
    compile_seconds: float


_kernels: dict[bool, Kernel] = {}
_compile_lock = threading.Lock()


def kernel(nogil: bool) -> Kernel:
    """The loop compiled with ``@njit(nogil=nogil)``, compiled on first use in this process."""
    with _compile_lock:  # threads preparing at once compile once
        if nogil not in _kernels:
            require("numba", "numba", f"the numba-{'nogil' if nogil else 'gil'} workload")
            from numba import njit  # type: ignore[import-not-found, import-untyped, unused-ignore]

            start = time.perf_counter()
            compiled = njit("uint64(uint64, int64)", nogil=nogil)(_xorshift_steps)
            _kernels[nogil] = Kernel(nogil, compiled, time.perf_counter() - start)
        return _kernels[nogil]


def compile_seconds(nogil: bool) -> float | None:
    """How long compiling that kernel took in this process; None if it was never compiled."""
    k = _kernels.get(nogil)
    return k.compile_seconds if k else None


def count_numba(n: int, nogil: bool) -> int:
    """``n`` loop steps in the compiled kernel, a chunk per call; returns ``n``.

    The result is checked: xorshift64 never reaches 0 from a nonzero state,
    so 0 would mean the kernel did not run the loop it was given.
    """
    steps = kernel(nogil).steps
    remaining = as_count(n, "n")
    state = _START
    while remaining > 0:
        chunk = min(remaining, CHUNK_STEPS)
        state = steps(state, chunk)
        remaining -= chunk
    if state == 0:
        raise RuntimeError("the Numba kernel returned an impossible state (0)")
    return n


def prepare_nogil(share: int, endpoint: str) -> Callable[[], object]:
    """The ``numba-nogil`` workload: compiled here, untimed; the callable runs ``share`` steps."""
    kernel(True)
    return functools.partial(count_numba, share, True)


def prepare_gil(share: int, endpoint: str) -> Callable[[], object]:
    """The ``numba-gil`` workload: the same loop compiled without ``nogil``."""
    kernel(False)
    return functools.partial(count_numba, share, False)


def _compile_note(nogil: bool) -> list[str]:
    compiled = compile_seconds(nogil)
    if compiled is None:
        return []
    return [f"JIT compilation: {compiled:.3f} s in this process, before timing"]


def notes_nogil() -> list[str]:
    """The ``numba-nogil`` workload's note for the text output: what compiling it took."""
    return _compile_note(True)


def notes_gil() -> list[str]:
    """The ``numba-gil`` workload's note: what compiling it took."""
    return _compile_note(False)
