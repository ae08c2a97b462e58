"""gilx: make the CPython GIL visible and measurable.

The public names of CONTRACT.md, plus ``CancelToken`` / ``Cancelled``: the way
to stop a long call running in a thread that Ctrl-C cannot reach.
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
from gilx.pure import count_py
from gilx.race import RaceResult, race

__all__ = [
    "AtomicCounter",
    "CancelToken",
    "Cancelled",
    "LockedCounter",
    "RaceResult",
    "UnsafeCounter",
    "__version__",
    "count_gil",
    "count_nogil",
    "count_py",
    "gil_enabled",
    "race",
]
