"""Memory-bound threads: stream_sum over a buffer far larger than the caches.

stream_sum releases the GIL, so the threads do run on two cores, but every
word comes from DRAM: they share one memory bus, and the speedup is whatever
bandwidth one core leaves unused (the seed's "limited").
"""

from __future__ import annotations

import pytest
from conftest import Scaling, together

from gilx._core import stream_sum

#: 256 MiB: 8x the 32 MiB L3 of the machine this was tuned on.
BUFFER_BYTES = 256 << 20
PASSES = 8
ROUNDS = 7


@pytest.fixture(scope="module")
def buffer() -> memoryview:
    return memoryview(bytearray(b"\x01") * BUFFER_BYTES)


@pytest.mark.benchmark(group="memory")
@pytest.mark.parametrize("workers", (1, 2), ids=lambda k: f"{k}thread")
def test_stream_sum_threads(benchmark, scaling: Scaling, buffer: memoryview, workers: int) -> None:
    # Each worker streams its own contiguous slice (the whole buffer for one
    # worker), PASSES times: the same bytes read in total.
    step = len(buffer) // workers
    shares = [(buffer[i * step : (i + 1) * step], PASSES) for i in range(workers)]
    with together(stream_sum, shares) as crew:
        benchmark.pedantic(crew.go, rounds=ROUNDS, warmup_rounds=1)
    median = benchmark.stats.stats.median if benchmark.stats else None
    gbps = round(BUFFER_BYTES * PASSES / median / 1e9, 2) if median else None
    scaling.record(
        benchmark,
        "stream_sum-threads",
        workers,
        buffer_bytes=BUFFER_BYTES,
        passes=PASSES,
        gb_per_s=gbps,
    )
