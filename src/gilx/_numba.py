"""The seed's Numba example (needs the ``numba`` extra; imported only when installed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gilx import runner

_SEED_SIZE = 10_000_000


@dataclass(frozen=True)
class NumbaResult:
    size: int
    numpy: runner.Timing  # np.sum(arr**2)
    serial: runner.Timing  # the same Numba loop over range(): one thread, GIL released
    parallel: runner.Timing  # the seed's parallel_sum_squares (prange)


def _compile() -> tuple[Any, Any]:
    from numba import jit, prange  # type: ignore[import-not-found, import-untyped, unused-ignore]

    @jit(nopython=True, parallel=True)  # type: ignore[untyped-decorator, misc, unused-ignore]
    def parallel_sum_squares(arr: Any) -> float:
        """Numba can release the GIL and parallelise (the seed's function)."""
        total = 0.0
        for i in prange(len(arr)):
            total += arr[i] ** 2
        return total

    @jit(nopython=True, nogil=True)  # type: ignore[untyped-decorator, misc, unused-ignore]
    def serial_sum_squares(arr: Any) -> float:
        total = 0.0
        for i in range(len(arr)):
            total += arr[i] ** 2
        return total

    return serial_sum_squares, parallel_sum_squares


def measure(*, quick: bool) -> NumbaResult:
    """The seed's ``prange`` loop, the same loop on one thread, and NumPy, on the same array."""
    import numpy as np

    size = _SEED_SIZE // 10 if quick else _SEED_SIZE
    arr = np.random.default_rng(2).random(size)
    serial, parallel = _compile()
    serial(arr)  # JIT warm-up, not timed
    parallel(arr)
    repeats = runner.QUICK_REPEATS if quick else runner.FULL_REPEATS
    return NumbaResult(
        size,
        runner.time_call(lambda: np.sum(arr**2), repeats),
        runner.time_call(lambda: serial(arr), repeats),
        runner.time_call(lambda: parallel(arr), repeats),
    )
