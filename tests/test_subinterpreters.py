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

# In a fresh process, so that a crash cannot take pytest down with it.
CHILD = textwrap.dedent(
    """
    import sys
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
        capture_output=True, text=True, timeout=120,
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
