"""Optional engines (the extras): whether one is installed, and the one-line error when not.

Nothing here imports an engine: ``importlib.util.find_spec`` only looks for it,
so ``import gilx`` stays light and an engine loads only in the code that runs it.
"""

from __future__ import annotations

import importlib.util


class MissingExtra(ImportError):
    """An optional engine is not installed; the message says which extra installs it.

    Raised by :func:`gilx.scale` for a ``numba-*`` workload without Numba
    (``pip install "gilx[numba]"``) or a ``dask`` / ``dask-threads`` mode
    without Dask's ``distributed`` (``pip install "gilx[dask]"``), before
    anything is measured.  An :class:`ImportError`.
    """


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a bad __spec__
        return False


def require(module: str, extra: str, what: str) -> None:
    """Raise :class:`MissingExtra` naming ``pip install "gilx[extra]"`` unless ``module`` exists."""
    if not installed(module):
        raise MissingExtra(
            f'{what} needs {module}, which is not installed: pip install "gilx[{extra}]"'
        )
