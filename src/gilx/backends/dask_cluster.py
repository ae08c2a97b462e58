"""Dask: a workload's shares as tasks on a Dask distributed cluster (the ``dask`` extra).

Two backends:

* ``dask``: ``k`` single-threaded worker processes, one task on each;
* ``dask-threads``: one worker process with ``k`` threads, all ``k`` tasks on
  it: the GIL inside a Dask worker.

By default each crew starts a ``LocalCluster`` on 127.0.0.1 (no dashboard)
in that shape, and closes it with the crew; starting it is timed and
reported as the crew's start-up, apart from the work, like starting
processes.  Given a scheduler address (``Options.scheduler``), the session
connects once to that existing cluster and its workers run the tasks
(``dask``: the tasks go round the workers' threads; ``dask-threads``: all on
the worker with the most threads); that cluster is never started or stopped
here.

Strong scaling, as in the other modes: each share is first prepared on the
worker that will run it (untimed: :mod:`gilx.backends.dask_tasks`), then each
``go()`` submits the ``k`` tasks at once and waits for all of them.  A
repeat's time runs from the first submit to the last result in hand, so it
includes Dask's own cost of sending tasks and collecting results: what a user
of Dask pays.  Every task returns what it did, and the result is checked.

``distributed`` is imported only here, only when a Dask backend opens.  The
cluster's shutdown is quiet: the "connection closed" errors and warnings a
closing cluster logs about connections it is closing itself are not news
for the user, and no worker process outlives the crew.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gilx._extras import require
from gilx.backends import dask_tasks
from gilx.backends.base import Backend, Crew, Job, Options, Session
from gilx.timing import Span, clock, split
from gilx.workloads import Workload


@dataclass(frozen=True)
class Shape:
    """How a cluster holds ``k`` tasks at once: the one thing the two Dask backends differ in."""

    #: True: one worker process with ``k`` threads; False: ``k`` single-threaded processes.
    threaded: bool
    #: In words, for the result's "on ..." line.
    description: str


#: ``dask``: every task in its own single-threaded worker process (its own GIL).
PROCESSES = Shape(False, "single-threaded worker processes, one task each")
#: ``dask-threads``: every task on a thread of one worker process (one GIL for all).
THREADS = Shape(True, "one worker process with k threads")

#: How long connecting to a scheduler may take before it counts as unreachable (seconds).
CONNECT_TIMEOUT = 10.0

#: How long a new local cluster's workers may take to arrive (seconds; a busy machine is slow).
WORKERS_TIMEOUT = 60.0

#: The only address a local cluster listens on.
LOOPBACK = "127.0.0.1"

#: Loggers whose messages around start and shutdown are noise (closed comms, heartbeats).
_NOISY_LOGGERS = ("distributed", "tornado", "asyncio")

_ADDRESS = re.compile(
    r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>[0-9]{1,5})/?$"
)


def parse_scheduler(address: str) -> str:
    """``address`` as ``tcp://HOST:PORT``; ValueError saying what is wrong with it otherwise."""
    if not isinstance(address, str):
        raise TypeError(
            f"scheduler must be a string like tcp://HOST:PORT, not {type(address).__name__}"
        )
    match = _ADDRESS.match(address.strip())
    if match is None:
        raise ValueError(f"malformed scheduler address {address!r}: expected tcp://HOST:PORT")
    scheme = match["scheme"] or "tcp"
    if scheme not in ("tcp", "tls"):
        raise ValueError(f"scheduler address {address!r}: scheme must be tcp or tls, not {scheme}")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise ValueError(f"scheduler address {address!r}: port must be 1..65535, got {port}")
    return f"{scheme}://{match['host']}:{port}"


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answered at the address within :data:`CONNECT_TIMEOUT`.

    Raised by :func:`gilx.scale` with ``mode="dask"`` or ``"dask-threads"`` and
    ``scheduler=ADDRESS`` when nothing answers there within 10 seconds: check
    the address and that the cluster runs.  A :class:`ConnectionError`.
    """


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence distributed's loggers and warnings for the block (this process only).

    Errors that matter still reach the caller as exceptions; what is silenced is
    what a starting or closing cluster logs about its own connections.
    """
    saved = []
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


#: Dask's own GIL monitor: when gilknocker is installed, distributed's
#: SystemMonitor starts a gilknocker thread in the scheduler and in every
#: worker that takes the GIL every millisecond (config
#: ``distributed.admin.system-monitor.gil``).  In a cluster that exists to
#: measure the GIL, that is a second program competing for it.  It also
#: aborted processes at exit: a knocker thread still running when the
#: interpreter finalises is unwound by ``pthread_exit`` through Rust's
#: ``catch_unwind`` ("FATAL: exception not rethrown", SIGABRT; CPython
#: gh-87135): 2 of 46 ``gilx scale --mode dask`` runs here, with the
#: ``peers`` extra installed (0 of 120 with it off).  Off in every cluster
#: gilx starts.
_GIL_MONITOR = "distributed.admin.system-monitor.gil.enabled"


@contextlib.contextmanager
def _local_cluster_settings() -> Iterator[None]:
    """What a local cluster gilx starts runs with: quiet logs, and no GIL monitor of Dask's.

    The scheduler runs in this process and reads Dask's config when it
    starts; the worker processes are new interpreters, which read theirs
    from DASK_* variables in the environment they inherit.  Both are
    restored afterwards.
    """
    import dask.config  # type: ignore[import-not-found, import-untyped, unused-ignore]

    values = {
        "DASK_LOGGING__DISTRIBUTED": "critical",
        "DASK_LOGGING__TORNADO": "critical",
        "DASK_" + _GIL_MONITOR.upper().replace(".", "__").replace("-", "_"): "False",
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        with dask.config.set({_GIL_MONITOR: False}):
            yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _distributed() -> Any:
    require("distributed", "dask", "the Dask modes")
    with quiet():
        import distributed  # type: ignore[import-not-found, import-untyped, unused-ignore]
    return distributed


@dataclass
class Cluster:
    """A connected client, the workers tasks go to, and the local cluster if we started it."""

    client: Any
    slots: tuple[str, ...]  # one worker address per task, in task order
    startup: float  # seconds: starting the cluster (or connecting) until its workers are there
    local: Any = None  # the LocalCluster, or None for an existing cluster

    def close(self) -> None:
        """Disconnect; stop the cluster if it is ours.  Quiet; leaves no process behind."""
        with quiet():
            try:
                self.client.close(timeout=CONNECT_TIMEOUT)
            finally:
                if self.local is not None:
                    self.local.close(timeout=CONNECT_TIMEOUT)


def connect(address: str) -> Any:
    """A Client of the scheduler at ``address``; SchedulerUnreachable after a bounded wait."""
    distributed = _distributed()
    address = parse_scheduler(address)
    try:
        with quiet():
            return distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"no Dask scheduler answered at {address} within {CONNECT_TIMEOUT:g} s"
            f" ({type(exc).__name__})"
        ) from None
    except Exception as exc:  # something answered, but not in Dask's protocol
        raise SchedulerUnreachable(
            f"what answered at {address} is not a Dask scheduler ({type(exc).__name__})"
        ) from None


def slots(client: Any, shape: Shape, workers: int) -> tuple[str, ...]:
    """Which worker each of ``workers`` tasks goes to, in ``shape``."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    if not info:
        raise SchedulerUnreachable(
            f"the Dask scheduler at {client.scheduler.address} has no workers"
        )
    # Sorted, so the same cluster gives the same placement every time.
    available = sorted((addr, int(w.get("nthreads", 1))) for addr, w in info.items())
    if shape.threaded:
        busiest = max(available, key=lambda a: a[1])[0]
        return (busiest,) * workers
    # Round the workers first, then their second threads, and so on.
    order = sorted((i, addr) for addr, nthreads in available for i in range(nthreads))
    return tuple(order[i % len(order)][1] for i in range(workers))


def start(shape: Shape, workers: int, scheduler: str | None = None) -> Cluster:
    """A cluster with room for ``workers`` tasks at once, in ``shape``.

    Without ``scheduler``: a new LocalCluster on 127.0.0.1 (:data:`PROCESSES`:
    ``workers`` single-threaded processes; :data:`THREADS`: one process with
    ``workers`` threads).  With it: the existing cluster's workers.
    """
    begin = clock()
    if scheduler is not None:
        client = connect(scheduler)
        try:
            return Cluster(client, slots(client, shape, workers), clock() - begin)
        except BaseException:
            with quiet():
                client.close()
            raise
    distributed = _distributed()
    processes, threads = (1, workers) if shape.threaded else (workers, 1)
    with quiet(), _local_cluster_settings():
        local = distributed.LocalCluster(
            n_workers=processes,
            threads_per_worker=threads,
            processes=True,
            host=LOOPBACK,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
        try:
            client = distributed.Client(local, timeout=CONNECT_TIMEOUT)
            client.wait_for_workers(processes, timeout=WORKERS_TIMEOUT)
        except BaseException:
            local.close()
            raise
    cluster = Cluster(client, (), clock() - begin, local)
    try:
        cluster.slots = slots(client, shape, workers)
    except BaseException:
        cluster.close()
        raise
    return cluster


class DaskCrew(Crew):
    """One task per share on ``cluster``'s slots, prepared on their workers; go() runs them."""

    def __init__(
        self, cluster: Cluster, workload: Workload, shares: Sequence[int], endpoint: str
    ) -> None:
        if len(shares) > len(cluster.slots):
            raise ValueError(f"{len(shares)} shares but room for {len(cluster.slots)} tasks")
        self._cluster = cluster
        self._workload = workload
        self._shares = tuple(shares)
        self._run_id = f"gilx-{uuid.uuid4().hex}"
        self._closed = False
        #: Worker processes on this machine whose CPU is the measurement's (set by subclasses).
        self._pids: frozenset[int] = frozenset()
        #: Each go()'s tasks' own (first start, last end): the span less Dask's dispatch.
        self.task_spans: list[Span] = []
        begin = clock()
        try:
            prepared = [
                self._submit(dask_tasks.prepare_share, i, workload, i, share, endpoint)
                for i, share in enumerate(self._shares)
            ]
            if cluster.client.gather(prepared) != list(range(len(self._shares))):
                raise RuntimeError("the Dask workers did not prepare every share")
        except BaseException:
            DaskCrew.close(self)  # what was prepared is dropped from the workers
            raise
        self.prepare_seconds = clock() - begin

    def _submit(self, fn: Callable[..., object], index: int, *args: object) -> Any:
        return self._cluster.client.submit(
            fn,
            self._run_id,
            *args,
            pure=False,  # every call is new work: never a cached result
            workers=[self._cluster.slots[index]],
            allow_other_workers=False,
        )

    def go(self) -> Span:
        start = clock()
        futures = [self._submit(dask_tasks.run_share, i, i) for i in range(len(self._shares))]
        results = self._cluster.client.gather(futures)
        end = clock()
        dask_tasks.check(results, self._shares, self._workload)
        self.task_spans.append((min(r[2] for r in results), max(r[3] for r in results)))
        return start, end

    def pids(self) -> frozenset[int]:
        return frozenset() if self._closed else self._pids

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with quiet(), contextlib.suppress(Exception):
            self._cluster.client.run(dask_tasks.forget, self._run_id)


class LocalCrew(DaskCrew):
    """A crew on a LocalCluster of its own: started with it, stopped with it."""

    def __init__(
        self, shape: Shape, workload: Workload, shares: Sequence[int], endpoint: str
    ) -> None:
        cluster = start(shape, len(shares))
        try:
            super().__init__(cluster, workload, shares, endpoint)
            self._pids = frozenset(_worker_pids_here(cluster.client))
        except BaseException:
            cluster.close()
            raise
        self.startup = cluster.startup + self.prepare_seconds

    def close(self) -> None:
        if self._closed:
            return
        try:
            super().close()
        finally:
            self._cluster.close()


class ExistingCrew(DaskCrew):
    """A crew on a cluster someone else started (``--scheduler``): never stopped here.

    The CPU of its workers on this machine is the measurement's own, not a
    neighbour's: they are counted like a LocalCluster's, found by host name.
    """

    def __init__(
        self, cluster: Cluster, workload: Workload, shares: Sequence[int], endpoint: str
    ) -> None:
        super().__init__(cluster, workload, shares, endpoint)
        self._pids = frozenset(_worker_pids_here(cluster.client))
        self.startup = self.prepare_seconds


def _where() -> tuple[str, int, int]:
    """Run on a worker: its host, its process and its parent (the nanny, if any)."""
    return socket.gethostname(), os.getpid(), os.getppid()


def _worker_pids_here(client: Any) -> set[int]:
    """The processes of the cluster's workers that run on this machine, and their nannies."""
    here = socket.gethostname()
    found = set()
    for host, pid, parent in client.run(_where).values():
        if host == here:
            found |= {int(pid), int(parent)}
    return found - {os.getpid(), os.getppid()}


class DaskSession(Session):
    """Local: nothing shared (each crew has its own cluster).  Existing: one client for all."""

    def __init__(
        self, shape: Shape, workload: Workload, endpoint: str, scheduler: str | None
    ) -> None:
        self._shape = shape
        self._workload = workload
        self._endpoint = endpoint
        self._client: Any = None
        self._address = parse_scheduler(scheduler) if scheduler is not None else None
        self._crews: list[DaskCrew] = []
        if self._address is not None:
            begin = clock()
            self._client = connect(self._address)
            self.startup = clock() - begin

    def crew(self, total: int, workers: int) -> Crew:
        shares = split(total, workers)
        crew: DaskCrew
        if self._client is None:
            crew = LocalCrew(self._shape, self._workload, shares, self._endpoint)
        else:
            cluster = Cluster(self._client, slots(self._client, self._shape, workers), 0.0)
            crew = ExistingCrew(cluster, self._workload, shares, self._endpoint)
        self._crews.append(crew)
        return crew

    def describe(self) -> str:
        where = (
            f"the Dask cluster at {self._address}"
            if self._address
            else f"a Dask LocalCluster on {LOOPBACK}"
        )
        return f"{where}: {self._shape.description}"

    def pids(self) -> frozenset[int]:
        return frozenset().union(*(c.pids() for c in self._crews))

    def close(self) -> None:
        try:
            for crew in self._crews:
                crew.close()
            self._crews.clear()
        finally:
            if self._client is not None:
                with quiet():
                    self._client.close(timeout=CONNECT_TIMEOUT)
                self._client = None


class _DaskBackend(Backend):
    options = ("scheduler",)
    shape: Shape

    def accepts(self, work: Job) -> bool:
        """A :class:`Workload` only: Dask's workers must unpickle it."""
        return isinstance(work, Workload)

    def refusal(self, work: Job) -> str:
        return f"--mode {self.name} runs only gilx's workloads (Dask's workers must import them)"

    def check(self, work: Job) -> None:
        super().check(work)
        require("distributed", "dask", f"--mode {self.name}")  # before anything is measured

    def check_options(self, options: Options) -> None:
        super().check_options(options)
        if options.scheduler is not None:
            parse_scheduler(options.scheduler)

    def open(self, work: Job, endpoint: str, options: Options) -> Session:
        self.check(work)
        assert isinstance(work, Workload)
        return DaskSession(self.shape, work, endpoint, options.scheduler)

    def notes(self, session_startup: float | None) -> list[str]:
        if session_startup is not None:
            first = (
                "start-up: preparing the shares on the cluster's workers; connecting to its"
                f" scheduler took {session_startup:.3f} s (neither is in seconds)"
            )
        else:
            first = (
                "start-up: starting a LocalCluster for each worker count and preparing the shares"
                " on its workers (not in seconds)"
            )
        return [
            first,
            "seconds: from submitting the tasks to holding every result: Dask's own cost included",
        ]


class Dask(_DaskBackend):
    name = "dask"
    shape = PROCESSES
    singular = "Dask worker"
    summary = "k single-threaded Dask worker processes (a LocalCluster, or --scheduler ADDRESS)"

    def plural(self, count: int) -> str:
        return f"{count} Dask worker{'' if count == 1 else 's'}"


class DaskThreads(_DaskBackend):
    name = "dask-threads"
    shape = THREADS
    singular = "Dask thread"
    summary = "one Dask worker process with k threads: the GIL inside Dask"

    def plural(self, count: int) -> str:
        return f"1 Dask worker with {count} thread{'' if count == 1 else 's'}"
