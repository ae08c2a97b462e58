"""NumPy on threads (BLAS pinned to one thread) and NumPy vs pure Python.

np.dot releases the GIL inside BLAS, so two threads each doing their own
products run on two cores.  OpenBLAS would otherwise use every core for one
product by itself and hide the GIL: threadpoolctl pins it to one thread for
the whole module, and the JSON's machine_info records the BLAS found.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Scaling, split, together

np = pytest.importorskip("numpy")
threadpoolctl = pytest.importorskip("threadpoolctl")

#: A 500x500 float64 product is ~0.25 GFLOP, a few ms on one core.
MATRIX = 500
PRODUCTS = 16
#: The seed's "NumPy vs Python" sum of squares, at 1/10 of its size (10M
#: Python ints take a second per round).
SQUARES_N = 1_000_000
ROUNDS = 7


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


def products(matrix: object, count: int) -> None:
    for _ in range(count):
        np.dot(matrix, matrix)


@pytest.mark.benchmark(group="numpy-threads")
@pytest.mark.parametrize("workers", (1, 2), ids=lambda k: f"{k}thread")
def test_numpy_dot_threads(benchmark, scaling: Scaling, workers: int) -> None:
    matrix = np.random.default_rng(0).random((MATRIX, MATRIX))
    shares = [(matrix, share) for share in split(PRODUCTS, workers)]
    with together(products, shares) as crew:
        benchmark.pedantic(crew.go, rounds=ROUNDS, warmup_rounds=1)
    blas_threads = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
    scaling.record(
        benchmark,
        "numpy-dot-threads",
        workers,
        matrix=MATRIX,
        products=PRODUCTS,
        blas_threads=blas_threads,
    )


def squares_python(data: list[int]) -> int:
    return sum(x**2 for x in data)


def squares_numpy(arr: object) -> object:
    return np.sum(arr**2)


@pytest.mark.benchmark(group="numpy-vs-python")
@pytest.mark.parametrize("impl", ("python", "numpy"))
def test_sum_of_squares(benchmark, scaling: Scaling, impl: str) -> None:
    # One worker each: "speedup" here is the Python time over the NumPy time
    # (the `numpy` column of the seed's table), so the Python run is the
    # baseline of the scenario and NumPy is recorded as its one-worker rival.
    if impl == "python":
        benchmark.pedantic(
            squares_python, args=(list(range(SQUARES_N)),), rounds=3, warmup_rounds=1
        )
    else:
        benchmark.pedantic(squares_numpy, args=(np.arange(SQUARES_N),), rounds=100, warmup_rounds=5)
    scaling.record(benchmark, "sum-of-squares", 1, efficiency=False, impl=impl, n=SQUARES_N)
