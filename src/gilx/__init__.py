"""gilx: make the CPython GIL visible and measurable.

The public names of CONTRACT.md, and nothing else.
"""

from gilx._core import AtomicCounter, LockedCounter, UnsafeCounter, count_gil, count_nogil
from gilx._gilstate import gil_enabled
from gilx.pure import count_py
from gilx.race import RaceResult, race

from gilx._version import __version__

__all__ = [
    "AtomicCounter",
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
