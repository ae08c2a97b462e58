"""gilx: make the CPython GIL visible and measurable.

The public names: the C core (counters, ``count_gil`` / ``count_nogil``,
``CancelToken`` / ``Cancelled``, the way to stop a long call running in a
thread that Ctrl-C cannot reach), ``gil_enabled``, ``count_py``, ``race``, and
the measuring API: ``scale``, ``probe``, ``table``, ``record_timeline`` and ``convoy`` with
their result dataclasses (each has ``to_dict()`` giving the JSON of the
README's reference).

``import gilx`` loads only the C core: a pytest plugin imports it into every
test run.  Everything else (the runner, and with it ``multiprocessing``, NumPy,
threadpoolctl) loads on first use of a name that needs it (PEP 562).
"""

from gilx._core import (
    AtomicCounter,
    Cancelled,
    CancelToken,
    LockedCounter,
    UnsafeCounter,
    count_gil,
    count_nogil,
)
from gilx._gilstate import gil_enabled
from gilx._version import __version__

# Not ``from typing import TYPE_CHECKING``: importing typing alone costs more
# than the rest of ``import gilx``.  Type checkers treat any name
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from gilx.convoy import ConvoyResult, convoy
    from gilx.probe import ProbeResult, probe
    from gilx.pure import count_py
    from gilx.race import RaceResult, race
    from gilx.runner import ScalePoint, ScaleResult, Timing, scale
    from gilx.table import Table, TableRow, table
    from gilx.timeline import Timeline
    from gilx.timeline import record as record_timeline
    from gilx.watch import Watch, watch
    from gilx.workloads import NAMES as WORKLOADS

#: Public name -> (submodule, its name there), loaded on first use.
_LAZY = {
    "ConvoyResult": ("gilx.convoy", "ConvoyResult"),
    "convoy": ("gilx.convoy", "convoy"),
    "ProbeResult": ("gilx.probe", "ProbeResult"),
    "probe": ("gilx.probe", "probe"),
    "count_py": ("gilx.pure", "count_py"),
    "RaceResult": ("gilx.race", "RaceResult"),
    "race": ("gilx.race", "race"),
    "ScalePoint": ("gilx.runner", "ScalePoint"),
    "ScaleResult": ("gilx.runner", "ScaleResult"),
    "Timing": ("gilx.runner", "Timing"),
    "scale": ("gilx.runner", "scale"),
    "Table": ("gilx.table", "Table"),
    "TableRow": ("gilx.table", "TableRow"),
    "table": ("gilx.table", "table"),
    "Timeline": ("gilx.timeline", "Timeline"),
    "record_timeline": ("gilx.timeline", "record"),
    "Watch": ("gilx.watch", "Watch"),
    "watch": ("gilx.watch", "watch"),
    "WORKLOADS": ("gilx.workloads", "NAMES"),
}

__all__ = [
    "WORKLOADS",
    "AtomicCounter",
    "CancelToken",
    "Cancelled",
    "ConvoyResult",
    "LockedCounter",
    "ProbeResult",
    "RaceResult",
    "ScalePoint",
    "ScaleResult",
    "Table",
    "TableRow",
    "Timeline",
    "Timing",
    "UnsafeCounter",
    "Watch",
    "__version__",
    "convoy",
    "count_gil",
    "count_nogil",
    "count_py",
    "gil_enabled",
    "probe",
    "race",
    "record_timeline",
    "scale",
    "table",
    "watch",
]

if not TYPE_CHECKING:  # hidden from type checkers: they see the imports above instead

    def __getattr__(name: str) -> object:
        try:
            module_name, attr = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module 'gilx' has no attribute {name!r}") from None
        import importlib

        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))

    def _keep_functions_over_submodules() -> None:
        """Keep ``gilx.probe``, ``gilx.race``, ``gilx.table``, ``gilx.convoy`` the functions.

        The first ``import gilx.race`` (by gilx itself or by a user) binds the
        submodule to the package's attribute of the same name; eager imports
        used to rebind the function right after, lazy ones cannot.  The
        package's module type therefore swaps such a submodule for the public
        object it defines, so ``gilx.race(...)`` works whatever was imported first.
        """
        import sys

        module_type = type(sys)

        class Package(module_type):
            def __setattr__(self, name: str, value: object) -> None:
                if (
                    name in _LAZY
                    and isinstance(value, module_type)
                    and value.__name__ == f"gilx.{name}"
                ):
                    value = getattr(value, _LAZY[name][1])
                super().__setattr__(name, value)

        sys.modules[__name__].__class__ = Package

    _keep_functions_over_submodules()
    del _keep_functions_over_submodules
