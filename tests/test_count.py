"""count_gil, count_nogil and count_py return what they counted, for every input kind."""

from __future__ import annotations

import numpy as np
import pytest

import gilx
from gilx import _core

COUNTERS = [gilx.count_gil, gilx.count_nogil, gilx.count_py, _core.count_auto]
C_COUNTERS = [gilx.count_gil, gilx.count_nogil, _core.count_auto]


@pytest.mark.parametrize("count", COUNTERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n", [0, 1, 2, 1000, 123_457])
def test_returns_n(count, n):
    assert count(n) == n


@pytest.mark.parametrize("count", C_COUNTERS, ids=lambda f: f.__name__)
def test_counts_across_chunk_boundaries(count):
    chunk = _core.COUNT_CHUNK
    for n in (chunk - 1, chunk, chunk + 1, 2 * chunk + 3):
        assert count(n) == n


@pytest.mark.parametrize("count", C_COUNTERS, ids=lambda f: f.__name__)
def test_auto_threshold_edges(count):
    t = _core.NOGIL_THRESHOLD
    assert [count(t - 1), count(t), count(t + 1)] == [t - 1, t, t + 1]


@pytest.mark.parametrize("count", COUNTERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("value", [True, False, np.int64(7), np.uint8(200), np.int32(0)], ids=repr)
def test_accepts_anything_with_index(count, value):
    assert count(value) == int(value)


class Indexable:
    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


@pytest.mark.parametrize("count", COUNTERS, ids=lambda f: f.__name__)
def test_accepts_user_index_type(count):
    assert count(Indexable(42)) == 42


@pytest.mark.parametrize("count", COUNTERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", [1.0, 1e6, "10", b"10", None, [3], np.float64(3.0), 1 + 0j])
def test_rejects_non_integers_with_type_error(count, bad):
    with pytest.raises(TypeError, match=r"n must be an integer"):
        count(bad)


@pytest.mark.parametrize("count", COUNTERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", [-1, -(2**63), -(2**100), np.int64(-5)])
def test_rejects_negative_with_value_error(count, bad):
    with pytest.raises(ValueError, match=r"n must be >= 0"):
        count(bad)


@pytest.mark.parametrize("count", COUNTERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", [2**63, 2**64, 2**200, np.uint64(2**64 - 1)])
def test_rejects_too_large_with_overflow_error(count, bad):
    with pytest.raises(OverflowError, match=r"n is too large"):
        count(bad)


def test_index_raising_propagates():
    class Broken:
        def __index__(self) -> int:
            raise RuntimeError("boom")

    for count in COUNTERS:
        with pytest.raises(RuntimeError, match="boom"):
            count(Broken())


@pytest.mark.parametrize("count", C_COUNTERS, ids=lambda f: f.__name__)
def test_wrong_number_of_arguments(count):
    with pytest.raises(TypeError):
        count()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        count(1, 2)  # type: ignore[call-arg]


def test_kernel_cost_grows_with_n():
    """The loop is not folded into a closed form: 64x the work takes clearly longer.

    A ratio, not a speed: it holds on a busy machine too (the best of several
    tries is taken, and folding would make both calls take ~the same time).
    """
    import time

    def best(n: int) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            gilx.count_gil(n)
            times.append(time.perf_counter() - start)
        return min(times)

    small, large = best(1 << 20), best(1 << 26)
    assert large > 8 * small
