"""The interface every backend implements: a session, and crews of k workers inside it.

* :class:`Backend` — one way of running work, by name.  ``check(workload)``
  says (ValueError, one line) when it cannot run a workload; ``open()`` starts
  a :class:`Session`.
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
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from gilx.timing import Span

#: More workers than this is a mistake, not an experiment.
MAX_WORKERS = 256

#: How long a worker waits for the others (or for its next repeat) before giving up (seconds).
BARRIER_TIMEOUT = 300.0


class Job(Protocol):
    """The work a crew runs: build the callable that does ``share`` units.

    A :class:`gilx.workloads.Workload` is one; so is any object with this
    method (the probe's callable).  Backends that run work in other processes
    need a workload *name* instead, so they take only registered workloads.
    """

    def prepare(self, share: int, param: str, /) -> Callable[[], object]: ...


@dataclass(frozen=True)
class Options:
    """What a user may tell a backend.  A backend reads the fields it knows.

    ``start_method``: how processes start (fork, forkserver, spawn).
    ``scheduler``: the address of an existing cluster's scheduler.
    """

    start_method: str | None = None
    scheduler: str | None = None


def check_counts(workers: int, repeats: int = 1, total: int = 0) -> None:
    """ValueError for a worker count, repeat count or total the runners refuse."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")


class Crew(ABC):
    """``workers`` prepared workers sharing ``total`` units; each ``go()`` is one repeat."""

    #: Seconds from launching the workers to all of them ready (None: nothing worth timing).
    startup: float | None = None

    @abstractmethod
    def go(self) -> Span:
        """Start every worker on its share at once; return (first start, last end)."""

    @abstractmethod
    def close(self) -> None:
        """Stop the workers (also after an error or Ctrl-C); safe to call twice."""

    def pids(self) -> frozenset[int]:
        """Live processes doing this crew's work, other than this one (their CPU is ours)."""
        return frozenset()

    def __enter__(self) -> Crew:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Session(ABC):
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

    def close(self) -> None:  # noqa: B027  (most sessions have nothing to stop)
        """Stop what the session started."""

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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

    def check(self, workload: str) -> None:  # noqa: B027  (most backends run every workload)
        """ValueError (one line: why) when this backend cannot run ``workload``."""

    @abstractmethod
    def open(self, job: Job, workload: str, param: str, options: Options) -> Session:
        """Start a session running ``job`` (the workload called ``workload``).

        ``param`` is what the workload's own session yielded (the io server's
        URL); every worker's ``job.prepare(share, param)`` receives it.
        """

    def plural(self, count: int) -> str:
        """``1 thread`` / ``2 threads``: this backend's workers, counted."""
        return f"{count} {self.singular if count == 1 else self.name}"

