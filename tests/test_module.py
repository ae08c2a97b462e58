"""The module as a whole: public names, GIL state, free-threaded builds."""

from __future__ import annotations

import subprocess
import sys
import sysconfig

import pytest

import gilx


def test_public_names():
    for name in [
        "__version__",
        "gil_enabled",
        "count_gil",
        "count_nogil",
        "count_py",
        "UnsafeCounter",
        "AtomicCounter",
        "LockedCounter",
        "race",
        "RaceResult",
    ]:
        assert hasattr(gilx, name), name
    assert set(gilx.__all__) >= {"race", "count_gil", "RaceResult"}


def test_version_matches_metadata():
    from importlib.metadata import version

    assert gilx.__version__ == version("gilx")


def test_gil_enabled_follows_sys():
    expected = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    assert gilx.gil_enabled() is expected


def test_build_flag_matches_interpreter():
    assert gilx._core.FREE_THREADED_BUILD == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.mark.skipif(
    not sysconfig.get_config_var("Py_GIL_DISABLED") or not hasattr(sys, "_is_gil_enabled"),
    reason="needs a free-threaded build of CPython",
)
def test_import_keeps_gil_disabled_on_free_threaded_build():
    out = subprocess.run(
        [
            sys.executable,
            "-X",
            "gil=0",
            "-c",
            "import sys, gilx; print(sys._is_gil_enabled(), gilx.gil_enabled())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "False"]
    assert "GIL" not in out.stderr  # no "the GIL has been enabled" warning


def test_module_state_types_per_import():
    # Each module object owns its types: a fresh load builds new ones.
    import importlib.util

    spec = importlib.util.find_spec("gilx._core")
    assert spec is not None
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)  # type: ignore[union-attr]
    assert other.UnsafeCounter is not gilx.UnsafeCounter
    c = other.AtomicCounter()
    c.increment(4)
    assert c.value == 4
