"""gilx in an isolated subinterpreter with its own GIL (3.12+)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

try:
    import _interpreters as interpreters  # 3.13+
except ImportError:
    try:
        import _xxsubinterpreters as interpreters  # type: ignore[no-redef]  # 3.12
    except ImportError:
        interpreters = None

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 12) or interpreters is None,
    reason="needs 3.12+ with _interpreters / _xxsubinterpreters (per-interpreter GIL)",
)

# Runs in the child interpreter; a failure raises there and is reported back.
WORK = textwrap.dedent(
    """
    import gilx, threading
    from gilx import _core
    assert gilx.count_nogil(3_000_000) == 3_000_000
    assert gilx.count_gil(1000) == 1000
    c = gilx.AtomicCounter()
    c.increment(10)
    assert c.value == 10
    r = gilx.race("atomic", 2, 10_000)
    assert r.lost == 0, r
    token = gilx.CancelToken()
    token.cancel()
    try:
        gilx.count_nogil(2**62, cancel=token)
    except gilx.Cancelled:
        pass
    else:
        raise AssertionError("not cancelled")
    """
)

# Both children start the same way (the text goes through str.format, hence {{ }}): an isolated
# subinterpreter (its own GIL and allocator) and run(code), raising here what the code raised.
SUBINTERPRETER = textwrap.dedent(
    """
    import sys
    import time
    try:
        import _interpreters as interpreters
        config = interpreters.new_config("isolated")
        assert config.gil == "own" and not config.use_main_obmalloc, config
        interp = interpreters.create(config)
        def run(code):
            err = interpreters.exec(interp, code)
            if err is not None:
                raise RuntimeError(f"in the subinterpreter: {{err.type.__name__}}: {{err.msg}}")
    except ImportError:
        import _xxsubinterpreters as interpreters
        # 3.12: isolated=True is the config with its own GIL and its own
        # allocator, and it refuses modules without per-interpreter support.
        interp = interpreters.create(isolated=True)
        def run(code):
            interpreters.run_string(interp, code)
    """
)

# In a fresh process, so that a crash cannot take pytest down with it.
CHILD = SUBINTERPRETER + textwrap.dedent(
    """
    import gilx  # loaded in the main interpreter too: two module objects at once
    run({work!r})
    run({work!r})  # a second run in the same interpreter
    interpreters.destroy(interp)
    assert gilx.count_nogil(1000) == 1000
    print("ok")
    """
)


def test_gilx_runs_in_an_isolated_subinterpreter():
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(work=WORK)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_single_phase_module_is_refused_by_the_isolated_config():
    """The check above is meaningful: the isolated config does refuse unfit modules."""
    code = textwrap.dedent(
        """
        try:
            import _interpreters as interpreters
            interp = interpreters.create("isolated")
            err = interpreters.exec(interp, "import _testsinglephase")
            print("refused" if err is not None and err.type.__name__ == "ImportError" else err)
        except ImportError:
            import _xxsubinterpreters as interpreters
            interp = interpreters.create(isolated=True)
            try:
                interpreters.run_string(interp, "import _testsinglephase")
                print("imported")
            except interpreters.RunFailedError as exc:
                print("refused" if "ImportError" in str(exc) else exc)
        """
    )
    try:
        import _testsinglephase  # noqa: F401
    except ImportError:
        pytest.skip("no _testsinglephase module in this CPython")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "refused", proc.stdout + proc.stderr


# Ctrl-C reaches only the main thread of the MAIN interpreter: in a subinterpreter,
# PyErr_CheckSignals() runs no handler, even in the OS main thread.  A long call there
# is stopped by its CancelToken, cancelled here from another thread of the same
# subinterpreter, while a SIGINT sent before the call stays pending for the main
# interpreter.
CANCEL_WORK = textwrap.dedent(
    """
    import os, signal, threading, time
    import gilx
    token = gilx.CancelToken()
    def cancel_later():
        time.sleep(0.3)
        token.cancel()
    canceller = threading.Thread(target=cancel_later)
    canceller.start()
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, before the call starts
    start = time.monotonic()
    try:
        gilx.count_nogil(2**62, cancel=token)
    except gilx.Cancelled:
        pass
    else:
        raise AssertionError("count_nogil was not cancelled")
    finally:
        canceller.join()
    # It ran until the token, ~1 ms chunks checking signals all along.
    assert time.monotonic() - start >= 0.25, time.monotonic() - start
    """
)

CANCEL_CHILD = SUBINTERPRETER + textwrap.dedent(
    """
    interrupted = False
    try:
        run({work!r})
        for _ in range(200):  # the main interpreter runs the pending handler
            time.sleep(0.01)
    except KeyboardInterrupt:
        interrupted = True
    interpreters.destroy(interp)
    print("cancelled in the subinterpreter; KeyboardInterrupt in main:", interrupted)
    """
)


def test_cancel_token_stops_a_call_in_a_subinterpreter_where_ctrl_c_cannot():
    proc = subprocess.run(
        [sys.executable, "-c", CANCEL_CHILD.format(work=CANCEL_WORK)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "cancelled in the subinterpreter; KeyboardInterrupt in main: True"
    ), proc.stdout + proc.stderr
