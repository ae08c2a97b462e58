"""What the Dask backends run inside Dask's workers: module level, so tasks pickle by reference.

A measurement prepares each share once on the worker that will run it
(:func:`prepare_share`, untimed), keeps the prepared callable here under the
measurement's id, runs it once per repeat (:func:`run_share`), and drops it
at the end (:func:`forget`, run on every worker).  A workload's per-process
setting (NumPy: BLAS on one thread) is entered once per worker process and
left in :func:`forget`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence

from gilx.timing import clock
from gilx.workloads import Workload

#: What one task sends back: (its index, the work's result, start, end on gilx.timing.clock).
TaskResult = tuple[int, object, float, float]

_prepared: dict[tuple[str, int], Callable[[], object]] = {}
_contexts: dict[str, contextlib.ExitStack] = {}
_lock = threading.Lock()  # a dask-threads worker prepares its shares on several threads at once


def prepare_share(run_id: str, workload: Workload, index: int, share: int, endpoint: str) -> int:
    """In a worker: build one share's callable (untimed); enter the workload's context once."""
    with _lock:
        if run_id not in _contexts:
            stack = contextlib.ExitStack()
            stack.enter_context(workload.context())
            _contexts[run_id] = stack
    _prepared[(run_id, index)] = workload.prepare(share, endpoint)
    return index


def run_share(run_id: str, index: int) -> TaskResult:
    """In a worker: run one prepared share once."""
    run = _prepared[(run_id, index)]
    start = clock()
    result = run()
    return index, result, start, clock()


def forget(run_id: str) -> None:
    """In every worker: drop a finished measurement's shares and leave its context."""
    with _lock:
        for key in [k for k in _prepared if k[0] == run_id]:
            del _prepared[key]
        stack = _contexts.pop(run_id, None)
    if stack is not None:
        stack.close()


def check(results: Sequence[TaskResult], shares: Sequence[int], workload: Workload) -> None:
    """Every task came back, in order; a checked workload's result is the share it was given."""
    for i, (index, result, _, _) in enumerate(results):
        if index != i:
            raise RuntimeError(f"Dask task {i} returned the result of task {index}")
        if workload.checked and result != shares[i]:
            raise RuntimeError(
                f"Dask task {i} of {workload.name} counted {result}, not its share {shares[i]}"
            )
