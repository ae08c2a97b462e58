"""Run a workload's shares as tasks on a Dask distributed cluster (the ``dask`` extra).

Two ways to run ``k`` workers (CONTRACT.md, "More ways to run the work"):

* ``dask``: ``k`` single-threaded worker processes, one task on each;
* ``dask-threads``: one worker process with ``k`` threads, all ``k`` tasks on
  it: the GIL inside a Dask worker.

By default a ``LocalCluster`` on 127.0.0.1 (no dashboard) is started for the
measurement and closed after it; its start-up is timed and reported apart
from the work.  Given a scheduler address, an existing cluster's workers run
the tasks and the cluster is never started or stopped here.

A measurement is strong scaling, as in the other modes: the total work is
split into ``k`` shares; each share is first *prepared* on its worker
(untimed: arrays, buffers, compiled kernels), then each repeat submits the
``k`` tasks at once and waits for all of them.  A repeat's time runs from
the first submit to the last result, so it includes Dask's own cost of
sending the tasks and collecting the results: what a user of Dask pays.
Each task returns what it did (its index, its share and its result), and the
client checks it.

``distributed`` is imported only here, only when a Dask mode runs.  Its
shutdown is made quiet: the "connection closed" errors and warnings a
closing cluster logs are not news for the user.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gilx import workloads
from gilx._extras import require

MODES: tuple[str, ...] = ("dask", "dask-threads")

#: How long connecting to a scheduler (or a local cluster's workers arriving) may take, seconds.
CONNECT_TIMEOUT = 10.0

#: The only address a local cluster listens on.
LOOPBACK = "127.0.0.1"

#: Loggers whose messages during shutdown are noise (closed comms, cancelled heartbeats).
_NOISY_LOGGERS = ("distributed", "tornado", "asyncio")

_ADDRESS = re.compile(
    r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>[0-9]{1,5})/?$"
)

#: Workloads whose callable returns the count it was asked for: their results are checked.
COUNTING: frozenset[str] = frozenset({"py", "gil", "nogil", "numba-nogil", "numba-gil"})

clock = time.perf_counter


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"Dask mode must be one of {', '.join(MODES)}; got {mode!r}")


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
    """No Dask scheduler answered at the address within :data:`CONNECT_TIMEOUT`."""


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence distributed's loggers and warnings for the block (this process only).

    Errors that matter still reach the caller as exceptions; what is silenced is
    what a closing cluster logs about connections it is closing itself.
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


def _quiet_worker_processes() -> contextlib.AbstractContextManager[None]:
    """Worker processes of a local cluster read their logging levels from DASK_* variables.

    They are new interpreters (spawned), so the parent's logger levels do not
    reach them; the environment does.  Restored afterwards.
    """
    return _environment(
        {"DASK_LOGGING__DISTRIBUTED": "critical", "DASK_LOGGING__TORNADO": "critical"}
    )


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@dataclass
class Cluster:
    """A connected client, the workers tasks go to, and the local cluster if we started it."""

    client: Any
    slots: tuple[str, ...]  # one worker address per task slot, in the order tasks take them
    startup: float  # seconds: starting the cluster (or connecting) until its workers are there
    local: Any = None  # the LocalCluster, or None for an existing cluster

    def close(self) -> None:
        """Disconnect; stop the cluster if it is ours.  Quiet, and leaves no process behind."""
        with quiet():
            try:
                self.client.close(timeout=CONNECT_TIMEOUT)
            finally:
                if self.local is not None:
                    self.local.close(timeout=CONNECT_TIMEOUT)


def _distributed() -> Any:
    require("distributed", "dask", "Dask modes")
    with quiet():
        import distributed  # type: ignore[import-not-found, import-untyped, unused-ignore]
    return distributed


def start(mode: str, workers: int, scheduler: str | None = None) -> Cluster:
    """A cluster with room for ``workers`` tasks at once, in ``mode``'s shape.

    Without ``scheduler``: a LocalCluster on 127.0.0.1 (``dask``: ``workers``
    single-threaded processes; ``dask-threads``: one process, ``workers``
    threads).  With it: the existing cluster's workers (``dask``: the tasks
    go round the workers; ``dask-threads``: all on the worker with the most
    threads).
    """
    check_mode(mode)
    address = parse_scheduler(scheduler) if scheduler is not None else None
    distributed = _distributed()
    begin = clock()
    if address is not None:
        client = _connect(distributed, address)
        try:
            slots = _slots_of_existing(client, mode, workers)
        except BaseException:
            with quiet():
                client.close()
            raise
        return Cluster(client, slots, clock() - begin)
    processes, threads = (workers, 1) if mode == "dask" else (1, workers)
    with quiet(), _quiet_worker_processes():
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
            client.wait_for_workers(processes, timeout=CONNECT_TIMEOUT * 6)
        except BaseException:
            local.close()
            raise
    cluster = Cluster(client, (), clock() - begin, local)
    try:
        cluster.slots = _slots_of_existing(client, mode, workers)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _connect(distributed: Any, address: str) -> Any:
    """A Client of the scheduler at ``address``; SchedulerUnreachable after a bounded wait."""
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


def _slots_of_existing(client: Any, mode: str, workers: int) -> tuple[str, ...]:
    """Which worker each of the ``workers`` tasks is sent to."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    if not info:
        raise SchedulerUnreachable(
            f"the Dask scheduler at {client.scheduler.address} has no workers"
        )
    # Sorted, so the same cluster gives the same placement every time.
    available = sorted((addr, int(w.get("nthreads", 1))) for addr, w in info.items())
    if mode == "dask-threads":
        busiest = max(available, key=lambda a: a[1])[0]
        return (busiest,) * workers
    slots = [
        addr
        for _, addr in sorted((i, addr) for addr, nthreads in available for i in range(nthreads))
    ]
    return tuple(slots[i % len(slots)] for i in range(workers))


# --- What runs in the workers: module level, so the tasks pickle by name. ---

_prepared: dict[tuple[str, int], Callable[[], object]] = {}
_contexts: dict[str, contextlib.ExitStack] = {}
_worker_lock = threading.Lock()


def _prepare_share(run_id: str, name: str, index: int, share: int, param: str) -> int:
    """In a worker: build one share's callable (untimed); enter the workload's context once."""
    workload = workloads.get(name)
    with _worker_lock:
        if run_id not in _contexts:
            stack = contextlib.ExitStack()
            stack.enter_context(workload.context())
            _contexts[run_id] = stack
    _prepared[(run_id, index)] = workload.prepare(share, param)
    return index


def _run_share(run_id: str, index: int) -> tuple[int, object, float, float]:
    """In a worker: run one prepared share; (index, its result, start, end)."""
    run = _prepared[(run_id, index)]
    start = clock()
    result = run()
    return index, result, start, clock()


def _forget(run_id: str) -> None:
    """In every worker: drop a finished measurement's prepared shares and leave its context."""
    with _worker_lock:
        for key in [k for k in _prepared if k[0] == run_id]:
            del _prepared[key]
        stack = _contexts.pop(run_id, None)
    if stack is not None:
        stack.close()


@dataclass(frozen=True)
class DaskRun:
    """Each repeat's (first submit, last result), and each repeat's tasks' own (start, end)."""

    spans: tuple[tuple[float, float], ...]
    task_spans: tuple[tuple[float, float], ...]


def run(
    cluster: Cluster,
    workload: str,
    shares: Sequence[int],
    repeats: int,
    param: str = "",
) -> DaskRun:
    """Run one task per share on ``cluster``'s slots, ``repeats`` times; check every result."""
    workloads.get(workload)  # an unknown name fails here, not in a worker
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if len(shares) > len(cluster.slots):
        raise ValueError(f"{len(shares)} shares but room for {len(cluster.slots)} tasks")
    client, run_id = cluster.client, f"gilx-{uuid.uuid4().hex}"

    def submit(fn: Callable[..., object], index: int, *args: object) -> Any:
        return client.submit(
            fn, run_id, *args, pure=False, workers=[cluster.slots[index]], allow_other_workers=False
        )

    try:
        prepared = [
            submit(_prepare_share, i, workload, i, share, param) for i, share in enumerate(shares)
        ]
        if client.gather(prepared) != list(range(len(shares))):
            raise RuntimeError("Dask workers did not prepare every share")
        spans, task_spans = [], []
        for _ in range(repeats):
            start = clock()
            futures = [submit(_run_share, i, i) for i in range(len(shares))]
            results = client.gather(futures)
            end = clock()
            _check(results, shares, workload)
            spans.append((start, end))
            task_spans.append((min(r[2] for r in results), max(r[3] for r in results)))
        return DaskRun(tuple(spans), tuple(task_spans))
    finally:
        with quiet(), contextlib.suppress(Exception):
            client.run(_forget, run_id)


def _check(
    results: Sequence[tuple[int, object, float, float]], shares: Sequence[int], workload: str
) -> None:
    """Every task came back, in order; a counting loop's result is the count it was given."""
    for i, (index, result, _, _) in enumerate(results):
        if index != i:
            raise RuntimeError(f"Dask task {i} returned the result of task {index}")
        if workload in COUNTING and result != shares[i]:
            raise RuntimeError(
                f"Dask task {i} of {workload} counted {result}, not its share {shares[i]}"
            )
