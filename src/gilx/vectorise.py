"""One computation written twice, in pure Python and with NumPy: the seed's "Solution 2".

Each :class:`Pair` builds its inputs for a size (in units linear in the
pure-Python cost, so the size can be calibrated) and returns both versions.
The ``numpy`` column of the table and the tour's vectorisation section time
them side by side, both on one core (BLAS pinned to one thread).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Fn = Callable[[], object]


@dataclass(frozen=True)
class Pair:
    name: str
    summary: str
    unit: str
    start_size: int
    prepare: Callable[[int], tuple[Fn, Fn]]  # size -> (python, numpy)


def _sum_squares(n: int) -> tuple[Fn, Fn]:
    """The seed's: ``sum(x**2 for x in data)`` against ``np.sum(arr**2)``."""
    import numpy as np

    data = list(range(n))
    arr = np.arange(n)

    def python() -> object:
        return sum(x**2 for x in data)

    def vectorised() -> object:
        return np.sum(arr**2)

    return python, vectorised


def _matmul(steps: int) -> tuple[Fn, Fn]:
    """A square matrix product with about ``steps`` multiply-adds: lists of lists vs ``np.dot``."""
    import numpy as np

    side = max(2, round(steps ** (1 / 3)))
    a = np.random.default_rng(1).random((side, side))
    rows = a.tolist()
    cols = a.T.tolist()

    def python() -> object:
        return [[sum(x * y for x, y in zip(row, col, strict=True)) for col in cols] for row in rows]

    def vectorised() -> object:
        return np.dot(a, a)

    return python, vectorised


def _sum_words(nbytes: int) -> tuple[Fn, Fn]:
    """Add up a large buffer's 8-byte words (stream_sum's computation): memoryview vs NumPy."""
    import numpy as np

    buffer = bytearray(b"\x01") * (max(8, nbytes) // 8 * 8)
    words = memoryview(buffer).cast("Q")
    arr = np.frombuffer(buffer, dtype=np.uint64)

    def python() -> object:
        return sum(words)

    def vectorised() -> object:
        return arr.sum()

    return python, vectorised


SUM_SQUARES = Pair("sum-squares", "sum of squares of 0..n-1", "numbers", 10_000, _sum_squares)
MATMUL = Pair("matmul", "square matrix product", "multiply-adds", 10_000, _matmul)
SUM_WORDS = Pair("sum-words", "sum of a buffer's 8-byte words", "bytes", 80_000, _sum_words)
