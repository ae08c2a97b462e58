"""The crossover: the work size under which releasing the GIL costs more than it gains.

CPython's hashlib releases the GIL only from 2048 bytes up (HASHLIB_GIL_MINSIZE
is 2048) and NumPy only above 500 elements (NPY_BEGIN_THREADS_THRESHOLDED); neither
number was measured.  Ours is, on count_gil vs count_nogil (one kernel, so the
only difference is the release), at the sizes of SIZES:

(a) ``crossover-alone``: one thread, nobody waiting.  Releasing gains that
    thread nothing; what it buys is n iterations' worth of time in which
    another thread *could* run.  The cost is the extra time of the release +
    re-acquire.  Crossover (a): the n at which the work released equals that
    extra cost (below it, releasing costs the caller more than it could ever
    give anyone else).
(b) ``crossover-contended``: two threads, each calling the function on
    CALLS(n) inputs of size n from a Python loop, so each is waiting for the
    GIL whenever the other holds it (the case of an extension called from
    several threads on many small inputs).  Releasing now gains real
    parallelism but costs a GIL hand-off per call.  Crossover (b): the
    smallest n at which the two threads finish sooner with count_nogil than
    with count_gil.

tools/benchmarks_md.py reads both crossovers off the JSON file; the larger is
GILX_NOGIL_THRESHOLD in csrc/reference/gilx.h (used by count_auto).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import together

from gilx._core import count_gil, count_nogil

#: Dense where the contended crossover was found (between 256 and 2048 on the
#: first quiet runs), sparse elsewhere.
SIZES = (0, 64, 256, 512, 768, 1024, 1536, 2048, 4096, 8192, 16384, 65536)
COUNTS = (count_gil, count_nogil)


def calls_for(n: int) -> int:
    """Calls per thread in the contended case: ~20 ms of count_gil calls per thread.

    Long enough that one 5 ms switch interval, or a neighbour process
    taking a core for a moment, is a small part of a round.
    """
    return max(500, int(20e6 / (60 + 0.25 * n)))


def iterations_for(n: int) -> int:
    """Calls per round in the alone case: about 2 ms of calls (~60 ns + 0.25 ns/iteration)."""
    return max(50, int(2e6 / (60 + 0.25 * n)))


def repeat(count: Callable[[int], int], n: int, calls: int) -> None:
    for _ in range(calls):
        count(n)


@pytest.mark.benchmark(group="crossover-alone")
@pytest.mark.parametrize("count", COUNTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"n={n}")
def test_crossover_alone(benchmark, count: Callable[[int], int], n: int) -> None:
    # pedantic with a fixed number of calls per round: the reported time is
    # per call, and both functions get the same loop around them.
    benchmark.pedantic(count, args=(n,), iterations=iterations_for(n), rounds=25, warmup_rounds=2)
    benchmark.extra_info.update(function=count.__name__, n=n, threads=1)


@pytest.mark.benchmark(group="crossover-contended")
@pytest.mark.parametrize("count", COUNTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"n={n}")
# n is the outer loop (the innermost parametrize varies slowest): count_gil
# and count_nogil of one size run back to back, under the same conditions.
def test_crossover_contended(
    benchmark, medians: dict[str, float], count: Callable[[int], int], n: int
) -> None:
    calls = calls_for(n)
    with together(repeat, [(count, n, calls)] * 2) as crew:
        benchmark.pedantic(crew.go, rounds=11, warmup_rounds=1)
    benchmark.extra_info.update(function=count.__name__, n=n, threads=2, calls_per_thread=calls)
    if benchmark.stats is None:
        return
    median = benchmark.stats.stats.median
    medians[f"contended-{count.__name__}-{n}"] = median
    held = medians.get(f"contended-count_gil-{n}")
    if count is count_nogil and held is not None:
        # > 1: releasing made the two threads finish sooner.
        benchmark.extra_info["gain_from_release"] = round(held / median, 4)
