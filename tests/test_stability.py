"""No reference or memory leaks over many calls, on success and error paths."""

from __future__ import annotations

import sys

import pytest

import gilx
from gilx import _core


def big(value: int) -> int:
    """A fresh int object that is not one of the interpreter's cached small ints."""
    return int(str(value))


CALLS = [
    gilx.count_gil,
    gilx.count_nogil,
    _core.count_auto,
    gilx.UnsafeCounter().increment,
    gilx.AtomicCounter().increment,
    gilx.LockedCounter().increment,
]


@pytest.mark.parametrize("call", CALLS, ids=lambda f: getattr(f, "__qualname__", repr(f)))
@pytest.mark.parametrize("arg", [1000, -(10**30), 10**30])
def test_argument_refcount_unchanged(call, arg):
    obj = big(arg)
    before = sys.getrefcount(obj)
    for _ in range(10_000):
        try:
            call(obj)
        except (ValueError, OverflowError):
            pass
    assert sys.getrefcount(obj) == before


def test_type_refcount_unchanged_by_instances():
    for cls in (gilx.UnsafeCounter, gilx.AtomicCounter, gilx.LockedCounter):
        before = sys.getrefcount(cls)
        for _ in range(10_000):
            c = cls()
            c.increment(3)
            _ = c.value
            repr(c)
        del c
        assert sys.getrefcount(cls) == before


def test_stream_sum_buffer_released():
    buf = bytearray(1024)
    for _ in range(1000):
        _core.stream_sum(buf)
    buf.extend(b"x")  # would raise BufferError if an export were still held
    assert len(buf) == 1025


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_memory_flat_over_many_calls():
    def churn() -> None:
        for _ in range(50_000):
            gilx.count_nogil(10)
            c = gilx.LockedCounter()
            c.increment(2)
            try:
                gilx.count_gil(-5)
            except ValueError:
                pass
            try:
                c.increment(1.5)
            except TypeError:
                pass

    churn()  # warm up allocator pools
    before = rss_kib()
    churn()
    churn()
    # A leak of even one small object per call would be several MiB here.
    assert rss_kib() - before < 2048
