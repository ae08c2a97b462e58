"""The interface every backend implements: a session, and crews of k workers inside it.

* :class:`Backend` — one way of running work, by name.  It answers
  ``accepts(work)``, refuses (ValueError, one line) what it cannot run
  (``check``) and options it does not take (``check_options``), starts a
  :class:`Session` (``open``) and adds its own lines to a result's text
  (``notes``).
* :class:`Session` — what is started once, before anything is timed, and
  closed after: a start method, an event loop, a cluster.  Its ``startup`` is
  how long starting it took (None when there was nothing to start).
* :class:`Crew` — ``workers`` workers of one session, each holding its share
  of ``total`` units, prepared (untimed) and waiting.  Every ``go()`` is one
  timed repeat: all workers start together, and ``go()`` returns the span
  from the first one starting to the last one finishing.  The runner calls
  ``go()`` as often as it wants (repeats, re-measurements) and never learns
  how the workers are run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, TypeVar

from gilx.timing import Span

#: More workers than this is a mistake, not an experiment.
MAX_WORKERS = 256

#: How long a worker waits for the others (or for its next repeat) before giving up (seconds).
BARRIER_TIMEOUT = 300.0


class Job(Protocol):
    """The work a crew runs: build the callable that does ``share`` units.

    A :class:`gilx.workloads.Workload` is one (picklable, with its
    capabilities); so is any object with this method (the probe's callable),
    which only backends that run work in this process accept.
    """

    def prepare(self, share: int, endpoint: str, /) -> Callable[[], object]: ...


@dataclass(frozen=True)
class Options:
    """What a user may tell a backend.  A backend reads the fields it knows.

    ``start_method``: how processes start (fork, forkserver, spawn): a
    preference, ignored by backends that start no processes (``preference``
    in its metadata).  ``scheduler``: the address of an existing cluster's
    scheduler, which only the backends that list it in ``options`` take.
    """

    start_method: str | None = field(default=None, metadata={"preference": True})
    scheduler: str | None = None


def check_counts(workers: int, repeats: int = 1, total: int = 0) -> None:
    """ValueError for a worker count, repeat count or total the runners refuse."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")


_C = TypeVar("_C", bound="_Closing")


class _Closing(ABC):
    """``with`` closes it: a crew or a session is stopped however its block ends."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Crew(_Closing):
    """``workers`` prepared workers sharing ``total`` units; each ``go()`` is one repeat."""

    #: Seconds from launching the workers to all of them ready (None: nothing worth timing).
    startup: float | None = None
    #: Each worker's own (start, end) in the last ``go()``, where the backend knows them.
    stamps: tuple[Span, ...] = ()

    @abstractmethod
    def go(self) -> Span:
        """Start every worker on its share at once; return (first start, last end)."""

    @abstractmethod
    def close(self) -> None:
        """Stop the workers (also after an error or Ctrl-C); safe to call twice."""

    def pids(self) -> frozenset[int]:
        """Live processes doing this crew's work, other than this one (their CPU is ours)."""
        return frozenset()


class Session(_Closing):
    """A backend, started: crews are made inside it.  Close it to stop what it started."""

    #: Seconds starting the session took (None: nothing to start).
    startup: float | None = None
    #: How processes are started, where the backend starts processes.
    start_method: str | None = None

    @abstractmethod
    def crew(self, total: int, workers: int) -> Crew:
        """Start and prepare ``workers`` workers sharing ``total`` units (untimed)."""

    def describe(self) -> str:
        """How the work runs, for the text output: e.g. ``processes, start method fork``."""
        return type(self).__name__

    def pids(self) -> frozenset[int]:
        """Live processes this session started whose CPU belongs to the measurement."""
        return frozenset()

    def close(self) -> None:
        """Stop what the session started."""


class Backend(ABC):
    """One way of running work; registered by ``name`` in :mod:`gilx.backends`."""

    #: The registry's key and ``--mode`` value.
    name: str = ""
    #: One worker, in words: "thread", "process", "task".
    singular: str = "worker"
    #: One line for help texts.
    summary: str = ""
    #: The fields of :class:`Options` this backend reads (the CLI refuses the others).
    options: tuple[str, ...] = ()

    def accepts(self, work: Job) -> bool:
        """Whether this backend can run ``work`` (most run anything)."""
        return True

    def refusal(self, work: Job) -> str:
        """Why it cannot run ``work``: one line for the user."""
        return f"--mode {self.name} cannot run {_work_name(work)}"

    def check(self, work: Job) -> None:
        """ValueError (one line: why) when this backend cannot run ``work``."""
        if not self.accepts(work):
            raise ValueError(self.refusal(work))

    def check_options(self, options: Options) -> None:  # noqa: B027  (most take none)
        """ValueError for a value of one of its ``options`` that this backend refuses.

        (An option it does not take at all is refused by the registry,
        :func:`gilx.backends.check_options`, which knows the modes that take it.)
        """

    @abstractmethod
    def open(self, work: Job, endpoint: str, options: Options) -> Session:
        """Start a session running ``work``.

        ``endpoint`` is what the workload's ``server()`` yielded (the io server's
        URL, ``""`` for work without a server); every worker's
        ``work.prepare(share, endpoint)`` receives it.
        """

    def notes(self, session_startup: float | None) -> list[str]:
        """Lines the text output adds about how this backend ran the work (none by default).

        ``session_startup``: what starting the session took (None: nothing to start).
        """
        return []

    def plural(self, count: int) -> str:
        """``1 thread`` / ``2 threads``: this backend's workers, counted."""
        return f"{count} {self.singular if count == 1 else self.name}"


def _work_name(work: Job) -> str:
    name = getattr(work, "name", None)
    return f"the {name} workload" if isinstance(name, str) else "this work"
