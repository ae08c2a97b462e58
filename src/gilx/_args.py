"""Argument checks shared by the pure-Python side of gilx.

They follow the C core's rules (csrc/reference/args.c), so that ``count_py(1.5)`` fails
the same way as ``count_gil(1.5)``.
"""

from __future__ import annotations

import operator
from typing import SupportsIndex

from gilx._core import MAX_COUNT


def as_count(value: SupportsIndex, name: str, *, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """Return ``value`` as an int in ``[minimum, maximum]``.

    TypeError if it has no ``__index__``, ValueError below ``minimum``,
    OverflowError above ``maximum`` (the limit of the C type).
    """
    if not hasattr(type(value), "__index__"):
        raise TypeError(
            f"{name} must be an integer (an object with __index__), not {type(value).__name__}"
        )
    number = operator.index(value)
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    if number > maximum:
        raise OverflowError(f"{name} is too large: got {number}, the limit is {maximum}")
    return number
