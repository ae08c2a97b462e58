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
    "multiprocessing",
    "numpy",
    "threadpoolctl",
    "asyncio",
    "matplotlib",
    "numba",
    "dask",
    "gilx.runner",
    "gilx.workloads",
    "gilx.machine",
    # 20-30 ms between them (-X importtime): dataclasses pulls in inspect, ast, dis ...
    "dataclasses",
    "inspect",
    "typing",
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
        "import sys, json, gilx\ngilx.scale\nprint(json.dumps('gilx.runner' in sys.modules))\n"
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
        "scale",
        "probe",
        "table",
        "record_timeline",
        "WORKLOADS",
        "MissingExtra",
        "SchedulerUnreachable",
        "PlotUnavailable",
    }


def test_functions_stay_functions_whatever_was_imported_first():
    # No module shares a name with a public function, so importing the
    # implementation first cannot shadow one.
    kinds = _fresh(
        "import json, gilx._race, gilx._probe, gilx._table, gilx._watch, gilx\n"
        "print(json.dumps([type(gilx.race).__name__, type(gilx.probe).__name__,"
        " type(gilx.table).__name__, type(gilx.watch).__name__,"
        " gilx.race('atomic', 2, 10).lost]))\n"
    )
    assert kinds == ["function", "function", "function", "function", 0]


def test_an_implementation_module_is_a_module_with_its_constants():
    import gilx._table as table_module

    assert table_module.GAIN_THRESHOLD > 1.0


def test_no_module_shares_a_name_with_a_public_name():
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(gilx.__path__)}
    assert "testing" in modules  # the one public submodule
    assert modules & set(gilx.__all__) == set()


def test_type_checking_is_no_public_name():
    assert not hasattr(gilx, "TYPE_CHECKING")
    assert "TYPE_CHECKING" not in dir(gilx)


def test_the_type_checkers_imports_match_the_one_table():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(gilx))
    bound: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    for alias in stmt.names:
                        bound[alias.asname or alias.name] = (stmt.module, alias.name)
                else:  # public = _private: a public name for an import of another name
                    assert isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Name)
                    bound[stmt.targets[0].id] = bound.pop(stmt.value.id)
    assert bound == gilx._LAZY


def test_the_exceptions_users_receive_are_exported():
    from gilx._extras import MissingExtra
    from gilx.backends.dask_cluster import SchedulerUnreachable
    from gilx.plot import PlotUnavailable

    assert gilx.MissingExtra is MissingExtra and issubclass(MissingExtra, ImportError)
    assert gilx.SchedulerUnreachable is SchedulerUnreachable
    assert issubclass(SchedulerUnreachable, ConnectionError)
    assert gilx.PlotUnavailable is PlotUnavailable
    for exc in (MissingExtra, SchedulerUnreachable, PlotUnavailable):
        assert exc.__doc__ and len(exc.__doc__) > 60  # documented: when, and what to do


def test_dir_lists_every_public_name():
    assert set(gilx.__all__) <= set(dir(gilx))


def test_unknown_name_is_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        gilx.no_such_name  # noqa: B018
