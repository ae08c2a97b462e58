"""stream_sum, the memory-bound kernel: correct sums, buffers pinned, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

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
