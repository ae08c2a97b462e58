"""Is there a GIL in this process?"""

from __future__ import annotations

import sys


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
