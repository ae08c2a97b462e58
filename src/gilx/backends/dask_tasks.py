"""What the Dask backends run inside Dask's workers: module level, so tasks pickle by name.

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

from gilx import workloads
from gilx.timing import clock

#: Workloads whose callable returns the count it was asked for: their results are checked.
COUNTING: frozenset[str] = frozenset({"py", "gil", "nogil", "numba-nogil", "numba-gil"})

#: What one task sends back: (its index, the work's result, start, end on gilx.timing.clock).
TaskResult = tuple[int, object, float, float]

_prepared: dict[tuple[str, int], Callable[[], object]] = {}
_contexts: dict[str, contextlib.ExitStack] = {}
_lock = threading.Lock()  # a dask-threads worker prepares its shares on several threads at once


def prepare_share(run_id: str, name: str, index: int, share: int, param: str) -> int:
    """In a worker: build one share's callable (untimed); enter the workload's context once."""
    workload = workloads.get(name)
    with _lock:
        if run_id not in _contexts:
            stack = contextlib.ExitStack()
            stack.enter_context(workload.context())
            _contexts[run_id] = stack
    _prepared[(run_id, index)] = workload.prepare(share, param)
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


def check(results: Sequence[TaskResult], shares: Sequence[int], workload: str) -> None:
    """Every task came back, in order; a counting loop's result is the count it was given."""
    for i, (index, result, _, _) in enumerate(results):
        if index != i:
            raise RuntimeError(f"Dask task {i} returned the result of task {index}")
        if workload in COUNTING and result != shares[i]:
            raise RuntimeError(
                f"Dask task {i} of {workload} counted {result}, not its share {shares[i]}"
            )
