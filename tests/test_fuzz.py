"""Property tests: every public function and constructor, any arguments.

Whatever it is given, a gilx call returns the documented result or raises
one of the documented exceptions: TypeError, ValueError, OverflowError (and,
where a StartGate or CancelToken is involved, TimeoutError / RuntimeError /
gilx.Cancelled).  Never a crash, never a hang.

Examples per test: $GILX_FUZZ_EXAMPLES (default 100, what CI runs);
``tools/fuzz.sh`` runs 10,000 per test.  Valid work sizes are kept small so
that a call returns quickly; invalid ones range over every size.
"""

from __future__ import annotations

import faulthandler
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gilx
from gilx import _core

EXAMPLES = int(os.environ.get("GILX_FUZZ_EXAMPLES", "100"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)

ARGUMENT_ERRORS = (TypeError, ValueError, OverflowError)
GATE_ERRORS = (TimeoutError, RuntimeError)  # gilx.Cancelled is a RuntimeError


@pytest.fixture(autouse=True, scope="module")
def hang_guard() -> Iterator[None]:
    """A hang becomes a failure with every thread's traceback, not a stuck CI job."""
    faulthandler.dump_traceback_later(600, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


class Index:
    """A user type with __index__, returning anything (or raising)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __index__(self) -> Any:
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value

    def __repr__(self) -> str:
        return f"Index({self.value!r})"


class IndexBoom(Exception):
    """Raised by an __index__: must propagate unchanged."""


SMALL = st.integers(min_value=0, max_value=5_000)
INTS = st.one_of(
    SMALL,
    st.integers(max_value=-1),  # ValueError
    st.integers(min_value=2**63, max_value=2**200),  # OverflowError
)
NUMPY_INTS = st.one_of(
    SMALL.map(np.int64),
    st.integers(0, 255).map(np.uint8),
    st.integers(-(2**31), -1).map(np.int32),
    st.integers(2**63, 2**64 - 1).map(np.uint64),
)
SIZES = st.one_of(
    INTS,
    st.booleans(),
    NUMPY_INTS,
    INTS.map(Index),
    st.just(Index(IndexBoom("boom"))),
    st.sampled_from([Index(1.5), Index("3"), Index(None)]),  # __index__ returns a non-int
)
ANYTHING = st.one_of(
    SIZES,
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(),
    st.text(max_size=8),
    st.binary(max_size=64),
    st.builds(bytearray, st.binary(max_size=64)),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([object(), object, int, gilx.CancelToken, np.float64(2.0), np.arange(3)]),
)
TOKENS = st.one_of(
    st.none(),
    st.builds(gilx.CancelToken),
    st.builds(lambda: _cancelled_token()),
    ANYTHING,
)


def _cancelled_token() -> gilx.CancelToken:
    token = gilx.CancelToken()
    token.cancel()
    return token


def _aborted_gate() -> _core.StartGate:
    gate = _core.StartGate(1)
    gate.abort()
    return gate


GATES = st.one_of(
    st.none(),
    st.builds(lambda: _core.StartGate(1)),
    st.builds(_aborted_gate),
    st.builds(lambda: _core.StartGate(2, timeout=0.001)),  # times out at once
    ANYTHING,
)
KWARGS = st.dictionaries(
    st.sampled_from(["cancel", "start", "n", "times", "timeout", "bogus"]),
    st.one_of(ANYTHING, TOKENS, GATES),
    max_size=2,
)


RAISED = object()  # what expect_documented() returns when the call raised


def expect_documented(call: Callable[[], object], *extra: type[BaseException]) -> object:
    """Run ``call``; an exception must be a documented one (or the user's own).

    Anything else (SystemError, MemoryError, a crash) fails the test.
    """
    try:
        return call()
    except IndexBoom:
        return RAISED  # a user's __index__ raised: propagated unchanged, as it must be
    except (*ARGUMENT_ERRORS, *extra):
        return RAISED


def as_size(value: object) -> int | None:
    """The work size a valid argument means, or None if it is not one."""
    try:
        import operator

        number = operator.index(value)  # type: ignore[call-overload]
    except BaseException:
        return None
    return number if 0 <= number < 2**63 else None


COUNTS = {
    "count_gil": gilx.count_gil,
    "count_nogil": gilx.count_nogil,
    "count_auto": _core.count_auto,
    "count_py": gilx.count_py,
}


@pytest.mark.parametrize("name", list(COUNTS))
@fuzz
@given(n=SIZES | ANYTHING, token=TOKENS)
def test_count_functions(name, n, token):
    count = COUNTS[name]
    if name == "count_py":
        result = expect_documented(lambda: count(n))
    else:
        result = expect_documented(lambda: count(n, cancel=token), RuntimeError)
    size = as_size(n)
    if result is not RAISED:
        assert result == size


@pytest.mark.parametrize("name", list(COUNTS))
@fuzz
@given(args=st.lists(ANYTHING, max_size=3), kwargs=KWARGS)
def test_count_functions_any_call_shape(name, args, kwargs):
    expect_documented(lambda: COUNTS[name](*args, **kwargs), RuntimeError)


BUFFERS = st.one_of(
    st.binary(max_size=200),
    st.builds(bytearray, st.binary(max_size=200)),
    st.binary(max_size=200).map(memoryview),
    st.binary(min_size=1, max_size=200).map(lambda b: memoryview(b)[1:]),
    st.binary(max_size=200).map(lambda b: memoryview(b)[::2]),  # not contiguous
    st.lists(st.integers(0, 2**64 - 1), max_size=20).map(lambda x: np.array(x, dtype=np.uint64)),
    st.integers(0, 20).map(lambda n: np.arange(2 * n, dtype=np.uint64)[::2]),
    ANYTHING,
)


@fuzz
@given(
    buffer=BUFFERS,
    passes=st.one_of(st.just(1), SIZES.filter(lambda v: _small(v)), ANYTHING),
    token=TOKENS,
    nargs=st.integers(0, 3),
)
def test_stream_sum(buffer, passes, token, nargs):
    args = [buffer, passes, None][:nargs]
    # BufferError: an exporter that cannot give a contiguous buffer says so itself.
    result = expect_documented(
        lambda: _core.stream_sum(*args, cancel=token), RuntimeError, BufferError
    )
    if result is not RAISED:
        raw = bytes(memoryview(buffer).cast("B"))
        words = np.frombuffer(raw[: len(raw) // 8 * 8], dtype=np.uint64)
        times = as_size(passes) if nargs == 2 else 1
        assert result == (int(words.sum(dtype=np.uint64)) * (times or 0)) % 2**64


def _small(value: object) -> bool:
    size = as_size(value)
    return size is None or size <= 50


COUNTER_TYPES = [gilx.UnsafeCounter, gilx.AtomicCounter, gilx.LockedCounter]


@pytest.mark.parametrize("cls", COUNTER_TYPES, ids=lambda c: c.__name__)
@fuzz
@given(
    ctor_args=st.lists(ANYTHING, max_size=2),
    times=SIZES | ANYTHING,
    gate=GATES,
    token=TOKENS,
    kwargs=KWARGS,
)
def test_counters(cls, ctor_args, times, gate, token, kwargs):
    if ctor_args:
        with pytest.raises(TypeError):
            cls(*ctor_args)
    counter = cls()
    result = expect_documented(
        lambda: counter.increment(times, start=gate, cancel=token), *GATE_ERRORS
    )
    size = as_size(times)
    if result is RAISED and size is not None and gate is None and token is None:
        pytest.fail(f"increment({times!r}) raised")
    value = counter.value
    assert 0 <= value <= (size or 0)
    expect_documented(lambda: counter.increment(*kwargs.values(), **kwargs), *GATE_ERRORS)
    counter.reset()
    assert counter.value == 0
    assert repr(counter) == f"gilx.{cls.__name__}(value=0)"


@fuzz
@given(
    args=st.lists(st.one_of(SIZES, ANYTHING), max_size=3),
    kwargs=st.dictionaries(
        st.sampled_from(["parties", "timeout", "bogus"]), st.one_of(SIZES, ANYTHING), max_size=2
    ),
)
def test_start_gate_constructor(args, kwargs):
    gate = expect_documented(lambda: _core.StartGate(*args, **kwargs))
    if gate is not RAISED:
        assert isinstance(gate, _core.StartGate)
        assert gate.parties >= 1 and gate.arrived == 0
        gate.abort()
        repr(gate)


@fuzz
@given(
    args=st.lists(ANYTHING, max_size=2),
    kwargs=st.dictionaries(st.sampled_from(["timeout", "bogus"]), ANYTHING, max_size=1),
)
def test_cancel_token_constructor(args, kwargs):
    token = expect_documented(lambda: gilx.CancelToken(*args, **kwargs))
    if token is not RAISED:
        assert isinstance(token, gilx.CancelToken)
        assert isinstance(token.cancelled, bool)
        token.cancel()
        assert token.cancelled


@fuzz
@given(
    kind=st.one_of(st.sampled_from(["unsafe", "atomic", "locked"]), ANYTHING),
    threads=st.one_of(st.integers(1, 3), (SIZES | ANYTHING).filter(lambda v: _threads_ok(v))),
    increments=st.one_of(st.integers(0, 2_000), SIZES.filter(lambda v: _small(v)), ANYTHING),
    token=st.one_of(st.none(), st.builds(gilx.CancelToken)),
)
def test_race(kind, threads, increments, token):
    result = expect_documented(lambda: gilx.race(kind, threads, increments, cancel=token))
    if result is not RAISED:
        assert isinstance(result, gilx.RaceResult)
        assert result.expected == result.threads * as_size(increments)
        assert 0 <= result.observed <= result.expected
        if kind != "unsafe":
            assert result.lost == 0


def _threads_ok(value: object) -> bool:
    size = as_size(value)
    return size is None or size <= 4
