"""Heap-type instances take part in garbage collection (gilx.h, gilx_dealloc).

A counter, gate or token holds a strong reference to its type; stored in the
module's own namespace it closes the cycle instance -> type -> module -> module
dict -> instance.  Only a collector that sees the instance -> type edge (the
tp_traverse visiting Py_TYPE(self)) can find that cycle; without it the whole
module copy leaks.
"""

from __future__ import annotations

import gc
import importlib.util
import subprocess
import sys
import textwrap
from types import ModuleType

import pytest

from gilx import _core

MAKERS = {
    "UnsafeCounter": lambda m: m.UnsafeCounter(),
    "AtomicCounter": lambda m: m.AtomicCounter(),
    "LockedCounter": lambda m: m.LockedCounter(),
    "StartGate": lambda m: m.StartGate(2),
    "CancelToken": lambda m: m.CancelToken(),
}

# Run in a fresh interpreter: on the free-threaded 3.13 build, once any second thread
# has run in a process, gc.collect() no longer frees even a pure-Python module <-> class
# cycle (seen with 3.13.5t; not gilx's doing), and the test suite starts many threads.
CHILD = textwrap.dedent(
    """
    import gc, importlib.util, weakref
    from gilx import _core

    def fresh_core():
        # A second, private module object of gilx._core (multi-phase init allows it).
        spec = importlib.util.spec_from_file_location("gilx._core", _core.__file__)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module is not _core
        return module

    gc.collect()
    gc.disable()  # so that the first check below proves the cycle exists
    try:
        module = fresh_core()
        instance = {make}
        module.kept = instance  # instance -> type -> module -> dict -> instance
        module_ref = weakref.ref(module)
        type_ref = weakref.ref(type(instance))
        del module, instance
        assert module_ref() is not None, "no cycle: freed by reference counting alone"
    finally:
        gc.enable()
    gc.collect()
    print("type freed:", type_ref() is None, "module freed:", module_ref() is None)
    """
)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_instance_type_module_cycle_is_collected(name: str) -> None:
    make = {"StartGate": "module.StartGate(2)"}.get(name, f"module.{name}()")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(make=make)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "type freed: True module freed: True", proc.stdout


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_instances_are_tracked(name: str) -> None:
    assert gc.is_tracked(MAKERS[name](_core))


def fresh_core() -> ModuleType:
    """A second, private module object of gilx._core, in this process."""
    spec = importlib.util.spec_from_file_location("gilx._core", _core.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module is not _core
    return module


def test_the_shared_module_is_untouched() -> None:
    # Loading private copies does not disturb the imported module or its types.
    fresh_core()
    gc.collect()
    counter = _core.LockedCounter()
    counter.increment(3)
    assert counter.value == 3
