"""Installing gilx never breaks a pytest run, whatever pytest and pluggy the environment has.

The plugin is loaded into every pytest run of an environment gilx is installed in.  The slow
test here installs gilx into a fresh virtual environment with the oldest pytest and pluggy its
hooks must work with (:data:`OLD`) and runs an unrelated test file there, and a watched
one.  It downloads from PyPI and builds gilx, so it runs only where ``GILX_PLUGIN_COMPAT=1``
is set (CI sets it); the quick tests below check the plugin steps aside, with one warning,
where it cannot load.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

UNRELATED = """
def test_unrelated():
    assert sum([1, 2, 3]) == 6
"""

WATCHED = """
import time

import pytest


@pytest.mark.gil_watch
def test_watched(gil_watch):
    time.sleep(0.05)
    assert gil_watch.seconds >= 0


def test_fixture_works(gil_watch):
    time.sleep(0.01)
"""

#: (pytest, pluggy) the plugin's hooks must run with: pytest 7.4.4 with the oldest pluggy
#: releases it allows that users still have (1.0, 0.13), and the oldest pytest gilx's test
#: extra allows (7.0).
OLD = [("7.4.4", "1.0.0"), ("7.4.4", "0.13.1"), ("7.0.1", "1.0.0")]


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.skipif(
    os.environ.get("GILX_PLUGIN_COMPAT") != "1",
    reason="installs old pytest/pluggy from PyPI and builds gilx: set GILX_PLUGIN_COMPAT=1",
)
@pytest.mark.thread_unsafe(reason="builds a virtual environment")
def test_old_pytest_and_pluggy_with_gilx_installed_run_an_unrelated_test(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / ("Scripts" if os.name == "nt" else "bin") / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pytest_version, pluggy_version = OLD[0]
    _run([*pip, str(REPO), f"pytest=={pytest_version}", f"pluggy=={pluggy_version}"])
    (tmp_path / "test_unrelated.py").write_text(UNRELATED)
    (tmp_path / "test_watched.py").write_text(WATCHED)
    for pytest_version, pluggy_version in OLD:
        _run([*pip, f"pytest=={pytest_version}", f"pluggy=={pluggy_version}"])
        versions = _run(
            [python, "-c", "import pytest, pluggy; print(pytest.__version__, pluggy.__version__)"]
        )
        assert versions.split() == [pytest_version, pluggy_version]
        # -W error: the plugin loads without a warning where it works.
        out = _run(
            [
                python,
                "-W",
                "error",
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                "test_unrelated.py",
            ],
            cwd=tmp_path,
        )
        assert "1 passed" in out, out
        out = _run(
            [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_watched.py"],
            cwd=tmp_path,
        )
        assert "2 passed" in out and "gilx: the GIL in watched tests" in out, out


def _plugin_in(code: str) -> str:
    """Run ``code`` (which breaks something), then load the plugin module: what it says."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import gilx.pytest_plugin as plugin
        hooks = sorted(n for n in vars(plugin) if n.startswith("pytest_") or n == "gil_watch")
        print(plugin.STEPPED_ASIDE)
        print(hooks)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_the_plugin_steps_aside_on_a_pytest_without_stashkey():
    out = _plugin_in("import pytest\ndel pytest.StashKey\n")
    why, hooks = out.splitlines()
    assert "needs pytest 7 or later" in why
    assert hooks == "['pytest_configure']"  # only the one warning


def test_the_plugin_steps_aside_where_its_hooks_cannot_load():
    # A pluggy whose hookimpl marker refuses an argument the hooks pass.
    out = _plugin_in(
        """
        import pytest

        real = pytest.hookimpl

        def hookimpl(*args, **kwargs):
            if "hookwrapper" in kwargs:
                raise TypeError("unexpected keyword argument 'hookwrapper'")
            return real(*args, **kwargs)

        pytest.hookimpl = hookimpl
        """
    )
    why, hooks = out.splitlines()
    assert why.startswith("TypeError: unexpected keyword argument")
    assert hooks == "['pytest_configure']"


def test_a_stepped_aside_plugin_warns_once_and_the_run_passes(tmp_path):
    (tmp_path / "test_unrelated.py").write_text(UNRELATED)
    (tmp_path / "conftest.py").write_text("")
    # sitecustomize-like: break pytest before the plugin loads, in the pytest process itself.
    (tmp_path / "breakit.py").write_text("import pytest\ndel pytest.StashKey\n")
    code = "import breakit, sys, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider']))"
    for extra in ([], ["-W", "error"]):
        done = subprocess.run(
            [sys.executable, *extra, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 passed" in done.stdout
        if not extra:
            assert done.stdout.count("gilx's pytest plugin is off in this run") == 1, done.stdout
