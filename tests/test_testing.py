"""gilx.testing: assertions that pass and fail for clear-cut callables, with useful messages."""

from __future__ import annotations

import re
import time

import pytest
from conftest import retry

import gilx
from gilx.testing import assert_holds_gil, assert_releases_gil

GIL = gilx.gil_enabled()
ATTEMPTS = 3
needs_gil = pytest.mark.skipif(not GIL, reason="no GIL in this process: nothing holds it")


def passes(check) -> bool:  # type: ignore[no-untyped-def]
    try:
        check()
    except AssertionError:
        return False
    return True


def test_a_releasing_callable_passes_assert_releases_gil():
    assert retry(
        ATTEMPTS, lambda: passes(lambda: assert_releases_gil(time.sleep, 0.002, seconds=0.05))
    )


@needs_gil
def test_a_holding_callable_passes_assert_holds_gil():
    assert retry(
        ATTEMPTS, lambda: passes(lambda: assert_holds_gil(gilx.count_gil, 2_000_000, seconds=0.05))
    )


@needs_gil
def test_a_holding_callable_fails_assert_releases_gil_with_name_share_and_threshold():
    with pytest.raises(AssertionError) as info:
        assert_releases_gil(gilx.count_gil, 2_000_000, max_hold=0.2, seconds=0.05)
    message = str(info.value)
    assert "count_gil(2000000)" in message
    assert re.search(r"held the GIL \d+\.\d% of the time", message)
    assert "max_hold=20.0%" in message


@needs_gil
def test_a_releasing_callable_fails_assert_holds_gil():
    def fails() -> bool:
        expected = r"sleep\(0\.002\) held the GIL only .*min_hold=80\.0%"
        with pytest.raises(AssertionError, match=expected):
            assert_holds_gil(time.sleep, 0.002, seconds=0.05)
        return True

    assert fails()


@pytest.mark.skipif(GIL, reason="this process has a GIL")
def test_without_a_gil_nothing_holds_it():
    assert_releases_gil(gilx.count_gil, 100_000, seconds=0.02)
    with pytest.raises(AssertionError, match="no GIL"):
        assert_holds_gil(gilx.count_gil, 100_000, seconds=0.02)


def test_thresholds_are_checked():
    with pytest.raises(ValueError, match="max_hold"):
        assert_releases_gil(time.sleep, 0.001, max_hold=1.5)
    with pytest.raises(TypeError, match="min_hold"):
        assert_holds_gil(time.sleep, 0.001, min_hold="high")  # type: ignore[arg-type]
