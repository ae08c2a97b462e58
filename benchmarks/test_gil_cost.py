"""What the GIL policy costs an extension author, in three micro-benchmarks.

- ``gil-release``: one release + re-acquire of the GIL, uncontended:
  count_nogil(0) releases and re-takes it exactly once around zero work,
  count_gil(0) does everything else the same (argument parsing, one signal
  check, building the result), so the difference of their medians is the
  release + re-acquire alone.
- ``signal-check``: the Ctrl-C check a released loop on the main thread
  does every SIGNAL_CHECK_NS (and a GIL-held loop after every chunk),
  PyErr_CheckSignals(), called through ctypes.pythonapi (which holds the
  GIL), minus a trivial C-API call through the same path (Py_IsInitialized).
- ``chunking``: one released call of a single chunk (COUNT_CHUNK iterations,
  about 1 ms) vs a 64-chunk call, per chunk.  Both release the GIL once; the
  64-chunk call adds 63 chunk boundaries (the token and the clock, read
  detached) and, here on the main thread, a re-take for signals every
  SIGNAL_CHECK_NS.  gilx._core exposes no unchunked variant, so this is the
  honest comparison available: the same work, with and without boundaries.
- ``stream-small-buffer``: the same 800,000 words of stream_sum work as one
  pass over a 6.4 MB buffer and as 100,000 passes over 64 bytes.  stream_sum
  chunks the whole call's work (passes x words), so the small buffer runs
  two chunks, not 100,000 release + re-acquire pairs.  It still costs more
  per word than the large buffer: each 8-word pass is a loop of its own.
  ``small_over_large`` is that ratio (it was ~20x when every pass released).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import pytest

from gilx._core import (
    COUNT_CHUNK,
    SIGNAL_CHECK_NS,
    count_auto,
    count_gil,
    count_nogil,
    stream_sum,
)

CHUNKS = 64


@pytest.mark.benchmark(group="gil-release")
@pytest.mark.parametrize("count", (count_gil, count_nogil, count_auto), ids=lambda f: f.__name__)
def test_release_reacquire(
    benchmark, medians: dict[str, float], count: Callable[[int], int]
) -> None:
    # Fixed calls per round and rounds (not calibration): the same loop
    # around each function, and a JSON file of a few hundred rounds, not 10**5.
    benchmark.pedantic(count, args=(0,), iterations=10_000, rounds=200, warmup_rounds=5)
    benchmark.extra_info.update(n=0)
    if benchmark.stats is None:
        return
    medians[count.__name__] = benchmark.stats.stats.median
    if count is count_nogil and "count_gil" in medians:
        release_ns = (medians["count_nogil"] - medians["count_gil"]) * 1e9
        benchmark.extra_info.update(
            release_reacquire_ns=round(release_ns, 1),
            target="release_reacquire_ns <= 100",
            target_met=release_ns <= 100,
        )


def _c_api(name: str) -> Callable[[], int]:
    function = getattr(ctypes.pythonapi, name)
    function.restype = ctypes.c_int
    function.argtypes = []
    return function  # type: ignore[no-any-return]


@pytest.mark.benchmark(group="signal-check")
@pytest.mark.parametrize("name", ("Py_IsInitialized", "PyErr_CheckSignals"))
def test_signal_check(benchmark, medians: dict[str, float], name: str) -> None:
    # Fixed calls per round: calibration picked one call per round for the
    # cheaper function and measured the clock instead.
    benchmark.pedantic(_c_api(name), iterations=10_000, rounds=200, warmup_rounds=5)
    if benchmark.stats is None:
        return
    medians[name] = benchmark.stats.stats.median
    if name == "PyErr_CheckSignals" and "Py_IsInitialized" in medians:
        check_ns = (medians["PyErr_CheckSignals"] - medians["Py_IsInitialized"]) * 1e9
        benchmark.extra_info.update(signal_check_ns=round(check_ns, 1))


@pytest.mark.benchmark(group="chunking")
@pytest.mark.parametrize("chunks", (1, CHUNKS), ids=lambda c: f"{c}chunk")
def test_chunking(benchmark, medians: dict[str, float], chunks: int) -> None:
    n = chunks * COUNT_CHUNK
    if chunks == 1:
        benchmark.pedantic(count_nogil, args=(n,), iterations=10, rounds=30, warmup_rounds=5)
    else:
        benchmark.pedantic(count_nogil, args=(n,), rounds=7, warmup_rounds=1)
    benchmark.extra_info.update(n=n, chunks=chunks, signal_check_ns=SIGNAL_CHECK_NS)
    if benchmark.stats is None:
        return
    per_chunk = benchmark.stats.stats.median / chunks
    medians[f"chunk{chunks}"] = per_chunk
    benchmark.extra_info["seconds_per_chunk"] = per_chunk
    if chunks > 1 and "chunk1" in medians:
        overhead = per_chunk / medians["chunk1"] - 1
        benchmark.extra_info.update(
            chunking_overhead=round(overhead, 5),
            target="chunking_overhead <= 0.01",
            target_met=overhead <= 0.01,
        )


STREAM_WORDS = 800_000
SMALL = b"x" * 64


@pytest.mark.benchmark(group="stream-small-buffer")
@pytest.mark.parametrize("shape", ("64Bx100000", "6.4MBx1"))
def test_stream_small_buffer(benchmark, medians: dict[str, float], shape: str) -> None:
    if shape == "64Bx100000":
        args: tuple[object, ...] = (SMALL, STREAM_WORDS // 8)
    else:
        args = (bytes(8 * STREAM_WORDS), 1)
    benchmark.pedantic(stream_sum, args=args, iterations=5, rounds=40, warmup_rounds=3)
    benchmark.extra_info.update(words=STREAM_WORDS)
    if benchmark.stats is None:
        return
    ns_per_word = benchmark.stats.stats.median / STREAM_WORDS * 1e9
    medians[shape] = ns_per_word
    benchmark.extra_info["ns_per_word"] = round(ns_per_word, 4)
    if shape == "6.4MBx1" and "64Bx100000" in medians:
        ratio = medians["64Bx100000"] / ns_per_word
        benchmark.extra_info["small_over_large"] = round(ratio, 3)
