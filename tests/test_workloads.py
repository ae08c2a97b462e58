"""The six workloads (the README's reference): each runs a share of its work."""

from __future__ import annotations

import time

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


@pytest.mark.parametrize("name", [w.name for w in workloads.WORKLOADS.values() if w.checked])
def test_a_checked_workload_returns_the_units_of_its_share(name):
    w = workloads.get(name)
    if name.startswith("numba-"):
        pytest.importorskip("numba")
    with w.server() as endpoint, w.context():
        assert w.prepare(12_345, endpoint)() == 12_345


def test_the_counting_workloads_are_the_checked_ones():
    checked = {w.name for w in workloads.WORKLOADS.values() if w.checked}
    assert checked == {"py", "gil", "nogil", "numba-nogil", "numba-gil"}


def test_the_memory_workload_sums_every_word_of_its_buffer_each_pass():
    # The buffer is all 0x01 bytes: every 8-byte word is 0x0101010101010101.
    w = workloads.get("memory")
    words = workloads.buffer_bytes() // 8
    expected = 2 * words * 0x0101010101010101 % 2**64
    assert w.prepare(2, "")() == expected


def test_the_numpy_workload_does_share_dot_products(monkeypatch):
    np = pytest.importorskip("numpy")
    calls: list[tuple[int, ...]] = []
    real = np.dot

    def counted(a, b):
        calls.append(a.shape)
        return real(a, b)

    monkeypatch.setattr(np, "dot", counted)
    with workloads.get("numpy").context():
        workloads.get("numpy").prepare(3, "")()
    assert calls == [(workloads.MATRIX_SIZE, workloads.MATRIX_SIZE)] * 3


def test_the_io_workload_downloads_share_answers_from_its_own_server():
    from gilx import _httpdelay

    w = workloads.get("io")
    with w.server() as url:
        assert url.startswith("http://127.0.0.1:")
        start = time.perf_counter()
        w.prepare(3, url)()
        # three downloads one after another, each answered after the server's delay
        assert time.perf_counter() - start >= 3 * _httpdelay.DELAY_SECONDS * 0.9


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
