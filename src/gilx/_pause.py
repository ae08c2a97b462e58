"""A Python function that does nothing, for the C core to call between chunks.

On a free-threaded build, ``csrc/reference/cancel.c`` (``offer_pause``) calls
:func:`point` between the chunks of a long GIL-held loop: entering any Python
function runs the eval loop's check, which parks the thread for a pending
stop-the-world pause (``gc.collect()``, ``sys.settrace``, ``os.fork``).  It
lives in a module, not in source the C core compiles at import, so that
importing the extension compiles nothing: CPython 3.13's compiler crashes
when an allocation fails inside it (found by tests/test_nomemory.py).
"""

from __future__ import annotations


def point() -> None:
    """Nothing: being entered is the point."""
