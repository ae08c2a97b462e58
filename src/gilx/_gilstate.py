"""Is there a GIL in this process?  (The answer lives in :mod:`gilx.machine`.)"""

from __future__ import annotations

from gilx.machine import gil_enabled

__all__ = ["gil_enabled"]
