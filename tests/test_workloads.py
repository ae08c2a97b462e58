"""The six workloads (the README's reference): each runs a share of its work."""

from __future__ import annotations

import pytest

from gilx import workloads


def test_the_contract_names_are_all_there():
    assert set(workloads.NAMES) == {
        *("py", "gil", "nogil", "numpy", "io", "memory"),
        *("numba-nogil", "numba-gil"),
    }


def test_unknown_name_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match="choose from py, gil"):
        workloads.get("gpu")


@pytest.mark.parametrize("name", ["py", "gil", "nogil", "numpy", "memory"])
def test_each_workload_runs_a_small_share(name):
    w = workloads.get(name)
    with w.session() as param, w.context():
        w.prepare(2, param)()


def test_memory_buffer_is_far_larger_than_the_caches():
    size = workloads.buffer_bytes()
    assert size >= workloads.MIN_BUFFER_BYTES
    cache = workloads.last_level_cache_bytes()
    if cache is not None:
        assert size >= 4 * cache


def test_numpy_workload_pins_blas_to_one_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with workloads.get("numpy").context():
        blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
        assert all(p["num_threads"] == 1 for p in blas)
