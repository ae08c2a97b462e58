"""``import gilx`` is light: a pytest plugin loads it into every test run.

The heavy parts (the runner and with it multiprocessing, NumPy, threadpoolctl)
load on first use of a name that needs them; every public name still imports.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import gilx

#: What ``import gilx`` must not load: the engines of the measuring API and the optional extras.
HEAVY = (
    "multiprocessing", "numpy", "threadpoolctl", "asyncio", "matplotlib", "numba", "dask",
    "gilx.runner", "gilx.workloads", "gilx.machine",
    # 20-30 ms between them (-X importtime): dataclasses pulls in inspect, ast, dis ...
    "dataclasses", "inspect", "typing",
)


def _fresh(code: str) -> object:
    """Run ``code`` in a new interpreter; it prints one JSON value as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_import_gilx_loads_no_heavy_module():
    loaded = _fresh(
        "import sys, json\n"
        "before = set(sys.modules)\n"
        "import gilx\n"
        f"print(json.dumps(sorted((set(sys.modules) - before) & set({HEAVY!r}))))\n"
    )
    assert loaded == []


def test_first_use_loads_the_runner():
    loaded = _fresh(
        "import sys, json, gilx\n"
        "gilx.scale\n"
        "print(json.dumps('gilx.runner' in sys.modules))\n"
    )
    assert loaded is True


def test_every_public_name_imports_in_a_fresh_process():
    names = _fresh(
        "import json, gilx\n"
        "for name in gilx.__all__:\n"
        "    exec(f'from gilx import {name}')\n"
        "print(json.dumps(sorted(gilx.__all__)))\n"
    )
    assert set(names) >= {
        "__version__", "gil_enabled", "count_gil", "count_nogil", "count_py", "UnsafeCounter",
        "AtomicCounter", "LockedCounter", "race", "RaceResult", "scale", "probe", "table",
        "record_timeline", "WORKLOADS",
    }


def test_functions_named_like_their_module_stay_functions():
    # The first ``import gilx.race`` binds the submodule to ``gilx.race``; the function must win.
    kinds = _fresh(
        "import json, gilx.race, gilx.probe, gilx.table, gilx\n"
        "print(json.dumps([type(gilx.race).__name__, type(gilx.probe).__name__,"
        " type(gilx.table).__name__, gilx.race('atomic', 2, 10).lost]))\n"
    )
    assert kinds == ["function", "function", "function", 0]


def test_dir_lists_every_public_name():
    assert set(gilx.__all__) <= set(dir(gilx))


def test_unknown_name_is_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        gilx.no_such_name  # noqa: B018
