"""probe: clear-cut callables get the right verdict (retried: the machine may be busy)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import retry

import gilx
from gilx._probe import probe

GIL = gilx.gil_enabled()
ATTEMPTS = 3


def pure_python_loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


# Large enough that each call spends most of its time in BLAS with the GIL released,
# even where the Python side of a call is slow (under ASan with PYTHONMALLOC=malloc,
# 300x300 left too little released time: judged holding in 3 attempts of 3).
MATRIX = np.random.default_rng(0).random((600, 600))

RELEASING = [
    pytest.param(time.sleep, (0.005,), id="time.sleep"),
    pytest.param(gilx.count_nogil, (3_000_000,), id="count_nogil"),
    pytest.param(np.dot, (MATRIX, MATRIX), id="numpy.dot"),
]
HOLDING = [
    pytest.param(pure_python_loop, (30_000,), id="pure-python-loop"),
    pytest.param(gilx.count_gil, (3_000_000,), id="count_gil"),
]


@pytest.mark.parametrize(("func", "args"), RELEASING)
def test_callables_that_release_the_gil_are_judged_releasing(func, args):
    assert retry(ATTEMPTS, lambda: probe(func, *args, seconds=0.04, repeats=2).releases_gil)


@pytest.mark.skipif(not GIL, reason="no GIL in this process: nothing holds it")
@pytest.mark.parametrize(("func", "args"), HOLDING)
def test_callables_that_hold_the_gil_are_judged_holding(func, args):
    assert retry(ATTEMPTS, lambda: not probe(func, *args, seconds=0.04, repeats=2).releases_gil)


@pytest.mark.skipif(GIL, reason="this process has a GIL")
def test_without_a_gil_everything_is_releasing():
    result = probe(gilx.count_gil, 100_000, seconds=0.02, repeats=1)
    assert result.releases_gil and not result.gil_enabled


def test_result_json_has_the_contract_keys():
    result = probe(time.sleep, 0.001, seconds=0.01, repeats=1)
    d = result.to_dict()
    assert list(d) == [
        "callable",
        "releases_gil",
        "workers",
        "speedup",
        "hold_fraction",
        "gil_enabled",
        "other_cpu",
        "disturbed",
        "judgement",
        "note",
    ]
    assert d["workers"] == 2
    assert d["hold_fraction"] == result.hold_fraction
    if d["gil_enabled"] and not d["disturbed"]:
        assert d["hold_fraction"] < 0.5  # time.sleep releases the GIL: a held share near 0
    assert "time:sleep(0.001)" == d["callable"]


def test_refuses_bad_arguments():
    with pytest.raises(TypeError, match="needs a callable"):
        probe(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers must be between 2"):
        probe(time.sleep, 0.001, workers=1)
    with pytest.raises(ValueError, match="seconds must be > 0"):
        probe(time.sleep, 0.001, seconds=0)
