"""stream_sum, the memory-bound kernel: correct sums, buffers pinned, bad input refused."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest
from conftest import longest_stall, retry

import gilx
from gilx import _core


def test_sums_words():
    words = np.arange(1000, dtype=np.uint64)
    assert _core.stream_sum(words) == int(words.sum())
    assert _core.stream_sum(words, 3) == 3 * int(words.sum())


def test_sums_a_buffer_spanning_chunks():
    n = _core.STREAM_CHUNK_WORDS * 2 + 5
    buf = bytearray(b"\x01") * (8 * n)
    assert _core.stream_sum(buf) == (n * 0x0101010101010101) % 2**64


def test_ignores_trailing_partial_word_and_empty():
    assert _core.stream_sum(b"\x01" * 8 + b"\xff" * 7) == 0x0101010101010101
    assert _core.stream_sum(b"") == 0
    assert _core.stream_sum(b"abc", 0) == 0


def test_wraps_modulo_2_to_64():
    assert _core.stream_sum(b"\xff" * 16) == (2 * (2**64 - 1)) % 2**64


def test_accepts_memoryview_and_unaligned():
    raw = bytearray(b"\x00" + b"\x02" * 16)
    assert _core.stream_sum(memoryview(raw)[1:]) == 2 * 0x0202020202020202


@pytest.mark.parametrize("bad", [None, 3, "text", [1, 2]])
def test_rejects_non_buffers(bad):
    with pytest.raises(TypeError, match="buffer must be a bytes-like object"):
        _core.stream_sum(bad)


def test_rejects_bad_passes_and_arity():
    with pytest.raises(ValueError, match="passes must be >= 0"):
        _core.stream_sum(b"", -1)
    with pytest.raises(TypeError, match="passes must be an integer"):
        _core.stream_sum(b"", 1.0)
    with pytest.raises(TypeError, match="takes 1 or 2 positional arguments"):
        _core.stream_sum()
    with pytest.raises(TypeError, match="takes 1 or 2 positional arguments"):
        _core.stream_sum(b"", 1, 2)
    with pytest.raises(TypeError):
        _core.stream_sum(buffer=b"")


def test_non_contiguous_buffer_is_a_clear_error():
    strided = np.arange(16, dtype=np.uint64)[::2]
    with pytest.raises((TypeError, BufferError, ValueError)):
        _core.stream_sum(strided)


# --- The GIL policy applied to the whole call (gilx.h, GILX_NOGIL_THRESHOLD) ---------


def test_passes_spanning_chunks_sum_exactly():
    # Small buffers run many passes per chunk; check the seams between chunks.
    for nwords in (1, 7, 1000, _core.STREAM_CHUNK_WORDS - 1, _core.STREAM_CHUNK_WORDS + 3):
        words = np.arange(1, nwords + 1, dtype=np.uint64)
        one = int(words.sum(dtype=np.uint64))
        per_chunk = max(1, _core.STREAM_CHUNK_WORDS // nwords)
        for passes in (1, 2, per_chunk, per_chunk + 1, 2 * per_chunk + 3):
            assert _core.stream_sum(words, passes) == (one * passes) % 2**64, (nwords, passes)


@pytest.mark.skipif(not gilx.gil_enabled(), reason="needs the GIL")
def test_small_calls_keep_the_gil():
    """Calls below NOGIL_THRESHOLD words of work never release: a heartbeat stalls.

    deque(map(...)) makes a million calls from C, with no bytecode in between, so the
    eval loop never offers the GIL; only a release inside stream_sum could.  A call
    above the threshold does let the heartbeat in (the control).
    """
    small = b"x" * 64  # 8 words x 10 passes = 80 < NOGIL_THRESHOLD
    assert 8 * 10 < _core.NOGIL_THRESHOLD

    def many_small() -> None:
        collections.deque(
            map(_core.stream_sum, itertools.repeat(small, 10**6), itertools.repeat(10)), maxlen=0
        )

    def stalled() -> bool:
        gap, duration = longest_stall(many_small)
        return duration > 0.05 and gap >= 0.8 * duration

    assert retry(5, stalled)

    big = bytearray(8 * _core.NOGIL_THRESHOLD)  # at the threshold: releases

    def many_big() -> None:
        collections.deque(map(_core.stream_sum, itertools.repeat(big, 20_000)), maxlen=0)

    def kept_beating() -> bool:
        gap, duration = longest_stall(many_big)
        return duration > 0.05 and gap < 0.5 * duration

    assert retry(5, kept_beating)
