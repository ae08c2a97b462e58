"""gilx: make the CPython GIL visible and measurable.

The public names of CONTRACT.md; ``CancelToken`` / ``Cancelled``, the way to
stop a long call running in a thread that Ctrl-C cannot reach; and the
measuring API: ``scale``, ``probe``, ``table`` and ``record_timeline`` with
their result dataclasses (each has ``to_dict()`` giving the JSON of CONTRACT.md).
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
from gilx.probe import ProbeResult, probe
from gilx.pure import count_py
from gilx.race import RaceResult, race
from gilx.runner import ScalePoint, ScaleResult, Timing, scale
from gilx.table import Table, TableRow, table
from gilx.timeline import Timeline
from gilx.timeline import record as record_timeline
from gilx.watch import Watch, watch
from gilx.workloads import NAMES as WORKLOADS

__all__ = [
    "WORKLOADS",
    "AtomicCounter",
    "CancelToken",
    "Cancelled",
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
