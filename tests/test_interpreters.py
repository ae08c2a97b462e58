"""--mode interpreters: k subinterpreters, each with its own GIL (3.12+), and what it refuses."""

from __future__ import annotations

import _thread
import json
import operator
import signal
import subprocess
import sys
import threading
import time

import pytest

from gilx import _extras, backends, runner, workloads
from gilx.backends import interpreters as interp_backend
from gilx.cli import main
from gilx.workloads import Workload

UNSUPPORTED = interp_backend.unsupported()


def _missing() -> str | None:
    """Why interpreters cannot run here (None: they can)."""
    if UNSUPPORTED is not None:
        return UNSUPPORTED
    try:
        interp_backend.require()
    except _extras.MissingExtra as exc:
        return str(exc)
    return None


needs_interpreters = pytest.mark.skipif(
    _missing() is not None, reason=f"no interpreters here: {_missing()}"
)


def _live_interpreters() -> int:
    """How many interpreters this process has (the main one included)."""
    if sys.version_info >= (3, 13):
        import _interpreters as low
    else:
        import _xxsubinterpreters as low  # type: ignore[no-redef]
    return len(low.list_all())


@pytest.mark.skipif(UNSUPPORTED is None, reason="this Python has per-interpreter GILs")
def test_before_3_12_the_mode_says_it_needs_3_12_in_one_line(capsys):
    assert main(["scale", "--workload", "py", "--mode", "interpreters"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "needs CPython 3.12 or later" in err
    with pytest.raises(ValueError, match=r"needs CPython 3\.12 or later"):
        runner.scale("py", "interpreters", [1], size=1000, repeats=1)


@needs_interpreters
def test_scale_runs_pure_python_in_interpreters(capsys):
    assert (
        main(
            [
                "scale",
                "--workload",
                "py",
                "--mode",
                "interpreters",
                "--workers",
                "1,2",
                "--size",
                "200000",
                "--repeats",
                "2",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "interpreters"
    assert [r["workers"] for r in out["results"]] == [1, 2]
    for r in out["results"]:
        assert r["seconds"] > 0
        assert r["startup"] is not None and r["startup"] > 0
    result = runner.scale("py", "interpreters", [2], size=200_000, repeats=1)
    assert "subinterpreters" in result.how
    assert "interpreters" in result.render()


@needs_interpreters
@pytest.mark.parametrize(
    "name", [w.name for w in workloads.WORKLOADS.values() if not w.no_subinterpreter]
)
def test_every_workload_not_refused_runs_in_interpreters_with_gilx_core(name):
    """Each accepted workload's modules (gilx._core, urllib for io) load in a subinterpreter."""
    work = workloads.get(name)
    size = 2 if work.io_bound or name == "memory" else 10_000
    result = runner.scale(name, "interpreters", [2], size=size, repeats=1)
    assert result.point(2).seconds > 0


@needs_interpreters
def test_numpy_really_refuses_to_load_in_a_subinterpreter():
    """The declaration in workloads.py is checked against NumPy itself, so it cannot go stale."""
    interp = interp_backend.Interpreter()
    try:
        with pytest.raises(interp_backend.InterpreterFailed, match="ImportError"):
            interp.run("import numpy")
        interp.run("import gilx._core")  # while gilx's own extension loads
    finally:
        interp.close()


@pytest.mark.parametrize(
    "name", [w.name for w in workloads.WORKLOADS.values() if w.no_subinterpreter]
)
def test_workloads_that_refuse_subinterpreters_are_refused_in_one_line(name, capsys):
    work = workloads.get(name)
    if work.extra is not None and not _extras.installed(work.extra[0]):
        pytest.skip(f"{work.extra[0]} is not installed: its MissingExtra comes first")
    backend = backends.get("interpreters")
    assert not backend.accepts(work)
    assert main(["scale", "--workload", name, "--mode", "interpreters"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    if UNSUPPORTED is None:
        assert f"cannot run the {name} workload" in err and "subinterpreter" in err


def test_interpreters_take_only_workloads():
    class Closure:
        def prepare(self, share: int, endpoint: str, /) -> object:
            return lambda: None

    assert not backends.get("interpreters").accepts(Closure())


@needs_interpreters
@pytest.mark.thread_unsafe  # counts the process's interpreters
def test_a_worker_exception_is_one_error_naming_the_workload():
    # prepare(share, endpoint) = share / endpoint: a TypeError inside each interpreter
    bad = Workload("bad-one", "fails on purpose", "units", 1, operator.truediv)
    with pytest.raises(RuntimeError) as info:
        runner.measure(bad, 10, 2, mode="interpreters")
    message = str(info.value)
    assert "the bad-one workload failed in interpreter worker" in message
    assert "TypeError" in message
    assert "\n" not in message
    assert _live_interpreters() == 1


@needs_interpreters
@pytest.mark.thread_unsafe  # counts the process's interpreters and threads
def test_nothing_leaks_after_100_runs():
    py = workloads.get("py")
    threads_before = threading.active_count()
    for _ in range(100):
        runner.measure(py, 2000, 2, mode="interpreters")
    assert _live_interpreters() == 1
    assert threading.active_count() == threads_before
    assert not [t for t in threading.enumerate() if t.name.startswith("gilx-interpreter")]


@needs_interpreters
@pytest.mark.thread_unsafe  # interrupts the main thread
def test_ctrl_c_ends_a_run_within_a_second_with_every_interpreter_closed():
    interrupted_at: list[float] = []

    def interrupt() -> None:
        time.sleep(1.5)  # well into the run (calibrated shares, many repeats)
        interrupted_at.append(time.perf_counter())
        _thread.interrupt_main()

    t = threading.Thread(target=interrupt)
    t.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            # ~10 ms shares: a running interpreter cannot be interrupted, so Ctrl-C waits
            # for the shares in flight (at the calibrated sizes, a fraction of a second)
            runner.scale("py", "interpreters", [1, 2], size=400_000, repeats=100_000)
        stopped = time.perf_counter()
    finally:
        t.join()
    assert stopped - interrupted_at[0] < 1.0
    assert _live_interpreters() == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("gilx-interpreter")]


@needs_interpreters
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via os.kill is POSIX")
def test_ctrl_c_on_the_cli_exits_cleanly():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gilx",
            "scale",
            "--workload",
            "py",
            "--mode",
            "interpreters",
            "--workers",
            "1,2",
            "--size",
            "400000",
            "--repeats",
            "100000",
            "--progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        while "interpreter" not in proc.stderr.readline():  # measuring, past calibration
            assert proc.poll() is None
        time.sleep(0.5)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        latency = time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Fatal" not in err and "Traceback" not in err
    # Generous: this checks a clean stop; the 1 s is the in-process test's (a busy machine
    # slows the process's own exit, which is not the interpreters' doing).
    assert latency < 10


def test_a_missing_engine_is_one_line_in_every_mode(capsys):
    """numba-nogil without Numba: MissingExtra, exit 2, whichever backend would have run it;
    a mode that never runs it (interpreters: Numba refuses subinterpreters, or the Python is
    older than 3.12) says that first, in one line too."""
    if _extras.installed("numba"):
        pytest.skip("Numba is installed here")
    for mode in ("threads", "processes", "interpreters", "asyncio"):
        assert main(["scale", "--workload", "numba-nogil", "--mode", mode, "--size", "1000"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        if mode in ("threads", "processes"):
            assert 'pip install "gilx[numba]"' in err
        elif mode == "interpreters":
            assert "subinterpreter" in err or "needs CPython 3.12" in err, err
        else:
            assert "runs only the io workload" in err, err
