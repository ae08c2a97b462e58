"""Workloads numba-nogil / numba-gil: one loop compiled twice, with and without nogil=True."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import threading
import time

import pytest

from gilx import _extras, _numba, workloads

_FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
_WHY = " (Numba has no wheel for free-threaded CPython yet)" if _FREE_THREADED else ""
needs_numba = pytest.mark.skipif(
    not _extras.installed("numba"),
    reason=f'numba is not installed here: pip install "gilx[numba]"{_WHY}',
)

_MASK = (1 << 64) - 1


def xorshift_reference(state: int, steps: int) -> int:
    """The loop of _numba._xorshift_steps, in plain Python integers."""
    for _ in range(steps):
        state ^= (state << 13) & _MASK
        state ^= state >> 7
        state ^= (state << 17) & _MASK
    return state


def test_both_numba_workloads_are_registered():
    assert {"numba-nogil", "numba-gil"} <= set(workloads.NAMES)


@needs_numba
@pytest.mark.parametrize("nogil", [True, False])
def test_the_compiled_loop_is_the_xorshift_loop(nogil):
    steps = _numba.kernel(nogil).steps
    for start, n in [(1, 0), (1, 1), (_numba._START, 1000), (_MASK, 77)]:
        assert steps(start, n) == xorshift_reference(start, n)


@needs_numba
@pytest.mark.parametrize("nogil", [True, False])
def test_count_numba_returns_its_count_across_chunks(nogil):
    n = 2 * _numba.CHUNK_STEPS + 5
    assert _numba.count_numba(n, nogil) == n
    assert _numba.count_numba(0, nogil) == 0


@needs_numba
def test_compilation_is_done_when_prepared_and_timed():
    for name, nogil in (("numba-nogil", True), ("numba-gil", False)):
        run = workloads.get(name).prepare(10, "")
        seconds = _numba.compile_seconds(nogil)
        assert seconds is not None and seconds > 0
        assert run() == 10
        assert _numba.compile_seconds(nogil) == seconds  # not compiled again


@needs_numba
def test_bad_counts_are_rejected_like_the_c_kernels():
    with pytest.raises(TypeError):
        _numba.count_numba(1.5, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _numba.count_numba(-1, True)


def longest_wait_for_the_gil(call: object) -> tuple[float, float]:
    """(longest time a sleeping heartbeat waited for the GIL during ``call()``, call duration).

    The switch interval is made 10 s for the call: a thread holding the GIL is
    then never asked to drop it, so a heartbeat gets the GIL during the call
    only if the call releases it.
    """
    assert callable(call)
    waits: list[tuple[float, float]] = []  # (woke, waited beyond its sleep)
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            asked = time.perf_counter()
            time.sleep(0.001)
            woke = time.perf_counter()
            waits.append((woke, woke - asked - 0.001))

    old = sys.getswitchinterval()
    heart = threading.Thread(target=beat, daemon=True)
    heart.start()
    time.sleep(0.02)
    sys.setswitchinterval(10.0)
    try:
        begin = time.perf_counter()
        call()
        end = time.perf_counter()
    finally:
        sys.setswitchinterval(old)
        stop.set()
        heart.join()
    longest = max((w for woke, w in waits if begin <= woke), default=end - begin)
    return longest, end - begin


@needs_numba
def test_numba_nogil_lets_another_thread_run_and_numba_gil_does_not():
    n = 60 * _numba.CHUNK_STEPS  # tens of milliseconds at least
    _numba.kernel(True)  # compiled before anything is timed
    _numba.kernel(False)

    def released() -> bool:
        longest, duration = longest_wait_for_the_gil(lambda: _numba.count_numba(n, True))
        return longest < 0.5 * duration

    def held() -> bool:
        longest, duration = longest_wait_for_the_gil(lambda: _numba.count_numba(n, False))
        return longest > 0.8 * duration

    # A busy machine can delay the heartbeat too: retried, never asserted on luck.
    assert any(released() for _ in range(5))
    assert any(held() for _ in range(5))


def run_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``gilx ARGS`` in a fresh interpreter in which ``module`` cannot be imported."""
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from gilx.cli import main\n"
        f"raise SystemExit(main({list(args)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("workload", ["numba-nogil", "numba-gil"])
def test_without_numba_scale_says_how_to_install_it_and_exits_2(workload):
    done = run_without("numba", "scale", "--workload", workload, "--workers", "1,2")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert 'pip install "gilx[numba]"' in lines[0]
    assert workload in lines[0]


def test_without_numba_preparing_raises_missing_extra(monkeypatch):
    monkeypatch.setattr(_extras, "installed", lambda module: False)
    monkeypatch.setattr(_numba, "_kernels", {})
    with pytest.raises(_extras.MissingExtra, match=r'pip install "gilx\[numba\]"'):
        workloads.get("numba-nogil").prepare(10, "")


@needs_numba
def test_a_numba_timeline_records_chunks_not_single_steps():
    from gilx import record_timeline

    timeline = record_timeline("numba-nogil", 2, 0.05)
    runs = [e for e in timeline.events if e.state == "run"]
    assert {e.thread for e in runs} == {0, 1}
    # one event per ~1 ms chunk: tens per thread, not one per loop step
    assert len(runs) < 2_000
