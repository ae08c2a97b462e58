"""count_gil vs count_nogil on one and two threads: the same C kernel, GIL held or released.

count_gil keeps the GIL for its whole call (checking for signals between
~1 ms chunks), so two threads take turns: speedup ~1.  count_nogil releases
it for its whole call, so two threads run on two cores.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import pytest
from conftest import Scaling, slowest_worker, split, together

from gilx import count_gil, count_nogil

#: 2**29 iterations: about 0.13 s at one iteration per cycle on a 4 GHz core.
N_C = 1 << 29
ROUNDS = 7

TARGETS: dict[str, tuple[str, str, float]] = {
    "count_gil": ("speedup", "<=", 1.02),
    "count_nogil": ("efficiency", ">=", 0.97),
}


@pytest.mark.benchmark(group="cpu-c")
@pytest.mark.parametrize("workers", (1, 2), ids=lambda k: f"{k}thread")
@pytest.mark.parametrize("count", (count_gil, count_nogil), ids=lambda f: f.__name__)
def test_count_c_threads(
    benchmark, scaling: Scaling, count: Callable[[int], int], workers: int
) -> None:
    shares = [(share,) for share in split(N_C, workers)]
    # Each thread also times its own call: with the GIL released, the slowest
    # thread's own time against the wall time separates what the cores did
    # (e.g. each running slower when both are busy) from the cost of
    # releasing them together and collecting their results.
    slowest: list[float] = []
    with together(count, shares) as crew:

        def run() -> None:
            crew.go()
            slowest.append(slowest_worker(crew))

        benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)
    target = TARGETS[count.__name__] if workers > 1 else None
    worker_s = statistics.median(slowest[1:] or slowest)  # without the warm-up round
    scaling.record(
        benchmark,
        f"{count.__name__}-threads",
        workers,
        target=target,
        n=N_C,
        slowest_worker_s=round(worker_s, 5),
    )
