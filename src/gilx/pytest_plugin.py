"""The ``gilx`` pytest plugin (entry point ``pytest11``): the GIL, measured in your tests.

What it does is in :mod:`gilx._pytest_gil`: the ``gil_watch`` fixture and marker, the
``--gil-*`` options, a summary line per watched test, and a test whose
:mod:`gilx.testing` assertion could not be judged reported as skipped.

This module is loaded into **every** pytest run of an environment gilx is installed in,
whatever pytest and pluggy that environment has, so it must never break one.  It loads the
hooks only where they can work (pytest 7 or later: ``pytest.StashKey``), and where
loading them fails for any reason it steps aside: no hooks, no fixtures, one warning that
says why, and the run goes on as if gilx were not installed.
"""

from __future__ import annotations

from typing import Any

import pytest

#: Why the plugin stepped aside (None: it is active).
STEPPED_ASIDE: str | None = None


def _step_aside(config: Any) -> None:
    """The one warning of a plugin that stepped aside; never an error, even with -W error."""
    message = f"gilx's pytest plugin is off in this run: {STEPPED_ASIDE}"
    try:
        warn = getattr(config, "issue_config_time_warning", None)
        if warn is not None:
            warn(pytest.PytestConfigWarning(message), stacklevel=2)
        else:  # pytest < 6
            import warnings

            warnings.warn(message, stacklevel=2)
    except Exception:  # an error filter for warnings: this plugin must not fail the run
        pass


if not hasattr(pytest, "StashKey"):
    STEPPED_ASIDE = f"it needs pytest 7 or later, this is pytest {pytest.__version__}"
else:
    try:
        # The hooks and fixtures, found here by name as pytest scans a plugin module.
        from gilx._pytest_gil import (  # noqa: F401
            _gil_watch_marker,
            gil_watch,
            pytest_addoption,
            pytest_configure,
            pytest_pyfunc_call,
            pytest_runtest_makereport,
            pytest_terminal_summary,
        )
    except Exception as exc:  # an incompatible pytest or pluggy, or a broken install
        STEPPED_ASIDE = f"{type(exc).__name__}: {exc}"

if STEPPED_ASIDE is not None:
    pytest_configure = _step_aside
