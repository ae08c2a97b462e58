"""I/O-bound threads: blocking HTTP fetches from a loopback server that answers after a delay.

A thread blocked in a socket read has released the GIL, so k threads wait
for their answers at the same time: the seed's "threading works for I/O".
The server (the io workload's own, gilx._httpdelay, in a process of its own)
binds 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import urllib.request

import pytest
from conftest import IO_DELAY_S, Scaling, split, together

#: Fetches per round, split over the workers: 8 x 50 ms = 0.4 s on one thread.
REQUESTS = 8
ROUNDS = 5


def fetch(url: str, count: int) -> None:
    """``count`` sequential GETs of ``url``, read to the end (the seed's download())."""
    for _ in range(count):
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()


@pytest.mark.benchmark(group="io")
@pytest.mark.parametrize("workers", (1, 2, 4), ids=lambda k: f"{k}thread")
def test_io_threads(benchmark, scaling: Scaling, delay_server_url: str, workers: int) -> None:
    shares = [(delay_server_url, share) for share in split(REQUESTS, workers)]
    with together(fetch, shares) as crew:
        benchmark.pedantic(crew.go, rounds=ROUNDS, warmup_rounds=1)
    target = ("efficiency", ">=", 0.95) if workers > 1 else None
    scaling.record(
        benchmark, "io-threads", workers, target=target, requests=REQUESTS, delay_s=IO_DELAY_S
    )
