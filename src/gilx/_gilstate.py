"""Is there a GIL in this process?

Its own module, importing only ``sys``: ``import gilx`` needs the answer, and
:mod:`gilx.machine` (which re-exports it with the other facts about the
interpreter) imports more than ``import gilx`` may pay for.
"""

from __future__ import annotations

import sys

__all__ = ["gil_enabled"]


def gil_enabled() -> bool:
    """Whether the GIL is on in this process.

    ``sys._is_gil_enabled()`` where it exists (3.13+): on a free-threaded
    build it is False unless something re-enabled the GIL.  Older Pythons
    always have a GIL.
    """
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_enabled is None:
        return True
    return bool(is_enabled())
