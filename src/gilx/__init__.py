"""gilx: make the CPython GIL visible and measurable.

The public names: the C core (counters, ``count_gil`` / ``count_nogil``,
``CancelToken`` / ``Cancelled``, the way to stop a long call running in a
thread that Ctrl-C cannot reach), ``gil_enabled``, ``count_py``, ``race``, the
measuring API: ``scale``, ``probe``, ``table``, ``record_timeline``,
``convoy`` and ``watch`` with their result dataclasses (each has ``to_dict()`` giving the JSON
of the README's reference), and the exceptions a caller can receive from them:
``MissingExtra``, ``SchedulerUnreachable``, ``PlotUnavailable``.

The implementation lives in private modules (``gilx._race``, ``gilx._probe``,
...); ``gilx.testing`` is the one public submodule.

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

#: THE table of the lazily loaded public names: name -> (module, its name there).
#: ``__all__`` is built from it; tests/test_import.py checks the type checkers'
#: imports below against it.
_LAZY = {
    "ConvoyResult": ("gilx._convoy", "ConvoyResult"),
    "convoy": ("gilx._convoy", "convoy"),
    "ProbeResult": ("gilx._probe", "ProbeResult"),
    "probe": ("gilx._probe", "probe"),
    "count_py": ("gilx.pure", "count_py"),
    "RaceResult": ("gilx._race", "RaceResult"),
    "race": ("gilx._race", "race"),
    "ScalePoint": ("gilx.runner", "ScalePoint"),
    "ScaleResult": ("gilx.runner", "ScaleResult"),
    "Timing": ("gilx.runner", "Timing"),
    "scale": ("gilx.runner", "scale"),
    "Table": ("gilx._table", "Table"),
    "TableRow": ("gilx._table", "TableRow"),
    "table": ("gilx._table", "table"),
    "Timeline": ("gilx.timeline", "Timeline"),
    "record_timeline": ("gilx.timeline", "record"),
    "Watch": ("gilx._watch", "Watch"),
    "watch": ("gilx._watch", "watch"),
    "WORKLOADS": ("gilx.workloads", "NAMES"),
    "MissingExtra": ("gilx._extras", "MissingExtra"),
    "SchedulerUnreachable": ("gilx.backends.dask_cluster", "SchedulerUnreachable"),
    "PlotUnavailable": ("gilx.plot", "PlotUnavailable"),
}

__all__ = [
    "AtomicCounter",
    "CancelToken",
    "Cancelled",
    "LockedCounter",
    "UnsafeCounter",
    "__version__",
    "count_gil",
    "count_nogil",
    "gil_enabled",
    *_LAZY,
]

# Not ``from typing import TYPE_CHECKING``: importing typing alone costs more
# than the rest of ``import gilx``.  Type checkers treat any name
# TYPE_CHECKING as true; it is deleted below, so it is no public name.  The
# ``X as X`` spelling marks each import as a re-export (mypy --strict, ruff).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from gilx._convoy import ConvoyResult as ConvoyResult
    from gilx._convoy import convoy as convoy
    from gilx._extras import MissingExtra as MissingExtra
    from gilx._probe import ProbeResult as ProbeResult
    from gilx._probe import probe as probe
    from gilx._race import RaceResult as RaceResult
    from gilx._race import race as race
    from gilx._table import Table as Table
    from gilx._table import TableRow as TableRow
    from gilx._table import table as table
    from gilx._watch import Watch as Watch
    from gilx._watch import watch as watch
    from gilx.backends.dask_cluster import SchedulerUnreachable as SchedulerUnreachable
    from gilx.plot import PlotUnavailable as PlotUnavailable
    from gilx.pure import count_py as count_py
    from gilx.runner import ScalePoint as ScalePoint
    from gilx.runner import ScaleResult as ScaleResult
    from gilx.runner import Timing as Timing
    from gilx.runner import scale as scale
    from gilx.timeline import Timeline as Timeline
    from gilx.timeline import record as _record
    from gilx.workloads import NAMES as _NAMES

    record_timeline = _record
    WORKLOADS = _NAMES
else:  # hidden from type checkers: they see the imports above instead

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


del TYPE_CHECKING
