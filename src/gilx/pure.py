"""The pure-Python baseline: the seed's ``cpu_bound_task``."""

from __future__ import annotations

from typing import SupportsIndex

from gilx._args import as_count


def count_py(n: SupportsIndex) -> int:
    """Count to ``n`` in pure Python, one bytecode loop step at a time; return ``n``.

    The same loop as the C kernel of ``count_gil`` / ``count_nogil``, written
    the way the seed writes it, so the three can be compared directly.  It
    holds the GIL except when the interpreter hands it to another thread
    (every ``sys.getswitchinterval()`` seconds).
    """
    count = 0
    for _ in range(as_count(n, "n")):
        count += 1
    return count
