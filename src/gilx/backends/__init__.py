"""Ways of running work ("backends"), chosen by name: the one registry of run modes.

The CLI's ``--mode`` choices, the tour, :func:`gilx.scale` and the benchmarks
all read :data:`NAMES` and :func:`get`; nothing else lists the modes.

Every backend implements :mod:`gilx.backends.base`: a :class:`Backend` opens a
:class:`Session` (started once, before any timing: a start method, an event
loop, a cluster), in which the runner makes a :class:`Crew` of ``k`` prepared
workers and calls ``crew.go()`` once per timed repeat.  The runner does the
timing, the repeats, the statistics and the judging; a backend only starts
workers and reports each repeat's (first start, last end).

Adding a backend
----------------
One new file and its line in ``_BACKENDS`` below; nothing else names the
modes (the CLI's ``--mode``, the tour, :func:`gilx.scale` and the tests read
this registry).  The toy ``serial`` backend on branch ``toy-backend`` is 52
lines.

1. Write ``backends/NAME.py`` with three small classes: a ``Crew`` (start
   ``workers`` workers on ``split(total, workers)`` shares, prepare them
   untimed, set ``startup`` if starting them is a cost of its own; ``go()``
   releases them together and returns ``span_of`` their (start, end) stamps
   taken with ``gilx.timing.clock``; ``close()`` stops them, also after an
   error), a ``Session`` (what is started once; set its ``startup``; close it
   cleanly) and the ``Backend`` (``name``, ``singular``, ``summary``).
2. ``open(work, endpoint, options)`` receives the work itself: a picklable
   :class:`gilx.workloads.Workload` (send it to other processes as it is), or
   for backends in this process any object with ``prepare`` (the probe's).
   Branch on the work's capabilities (``io_bound``, ``checked``, ...), never
   on its name.  A backend that runs only some work overrides ``accepts``
   (and ``refusal``, the one line the CLI prints, exit 2).
3. An option: list its ``Options`` field in ``options`` (add the field if it
   is new) and check its value in ``check_options``; the registry refuses it
   for the other modes.  Lines about how the work ran: ``notes()``.
4. Import optional engines (dask, ...) inside ``open()``, never at module
   level, and say which extra to install when one is missing.
"""

from __future__ import annotations

from dataclasses import fields

from gilx.backends.asyncio_tasks import Asyncio
from gilx.backends.base import (
    MAX_WORKERS,
    Backend,
    Crew,
    Job,
    Options,
    Session,
    check_counts,
)
from gilx.backends.dask_cluster import Dask, DaskThreads
from gilx.backends.interpreters import Interpreters
from gilx.backends.processes import Processes
from gilx.backends.threads import Threads

_BACKENDS: dict[str, Backend] = {
    b.name: b for b in (Threads(), Processes(), Interpreters(), Asyncio(), Dask(), DaskThreads())
}

#: The run modes, in the order help texts list them.
NAMES: tuple[str, ...] = tuple(_BACKENDS)


def check_options(backend: Backend, options: Options) -> None:
    """ValueError, before anything is measured, for an option ``backend`` does not take
    (naming the modes that do) or a value it refuses."""
    for field in fields(options):
        given = getattr(options, field.name) is not None
        if given and field.name not in backend.options and not field.metadata.get("preference"):
            takers = [b.name for b in _BACKENDS.values() if field.name in b.options]
            flag = "--" + field.name.replace("_", "-")
            raise ValueError(
                f"{flag} is for --mode {' or '.join(takers)}, not --mode {backend.name}"
            )
    backend.check_options(options)


def get(name: str) -> Backend:
    """The backend called ``name``; ValueError naming the choices otherwise."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"mode must be one of {', '.join(NAMES)}; got {name!r}") from None


__all__ = [
    "MAX_WORKERS",
    "NAMES",
    "Backend",
    "Crew",
    "Job",
    "Options",
    "Session",
    "check_counts",
    "check_options",
    "get",
]
