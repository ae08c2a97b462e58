"""Type stubs for gilx._core, the C extension (csrc/)."""

from typing import Any, SupportsIndex, final

from typing_extensions import Buffer

COUNT_CHUNK: int
COUNTER_CHUNK: int
ATOMIC_CHUNK: int
STREAM_CHUNK_WORDS: int
NOGIL_THRESHOLD: int
MAX_COUNT: int
SIGNAL_CHECK_NS: int
FREE_THREADED_BUILD: int

class Cancelled(RuntimeError): ...

@final
class CancelToken:
    def __init__(self, timeout: float | None = None) -> None: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

def count_gil(n: SupportsIndex, /, *, cancel: CancelToken | None = None) -> int: ...
def count_nogil(n: SupportsIndex, /, *, cancel: CancelToken | None = None) -> int: ...
def count_auto(n: SupportsIndex, /, *, cancel: CancelToken | None = None) -> int: ...
def stream_sum(
    buffer: Buffer, passes: SupportsIndex = 1, /, *, cancel: CancelToken | None = None
) -> int: ...
def demo_lock_acquire(timeout: float, /, *, hold_gil: bool = False) -> bool: ...
def demo_lock_release() -> None: ...

@final
class StartGate:
    def __init__(self, parties: SupportsIndex, timeout: float = 10.0) -> None: ...
    def abort(self) -> None: ...
    @property
    def parties(self) -> int: ...
    @property
    def arrived(self) -> int: ...

@final
class UnsafeCounter:
    def increment(
        self,
        times: SupportsIndex,
        /,
        *,
        start: StartGate | None = None,
        cancel: CancelToken | None = None,
    ) -> None: ...
    def reset(self) -> None: ...
    @property
    def value(self) -> int: ...

@final
class AtomicCounter:
    def increment(
        self,
        times: SupportsIndex,
        /,
        *,
        start: StartGate | None = None,
        cancel: CancelToken | None = None,
    ) -> None: ...
    def reset(self) -> None: ...
    @property
    def value(self) -> int: ...

@final
class LockedCounter:
    def increment(
        self,
        times: SupportsIndex,
        /,
        *,
        start: StartGate | None = None,
        cancel: CancelToken | None = None,
    ) -> None: ...
    def reset(self) -> None: ...
    @property
    def value(self) -> int: ...

def count_traced(
    n: SupportsIndex, release: object, /
) -> tuple[int, list[tuple[int, int, int]]]: ...
def monotonic_ns() -> int: ...
def cpu_now() -> int: ...
def heartbeat_run(
    totals: Buffer,
    interval_ns: int,
    cancel: CancelToken,
    seed: int,
    schedstat_fd: int,
    blame: BlameRecorder | None = None,
    /,
) -> None: ...

class BlameRecorder:
    """The capsule blame_new() returns (not a real class: a typing name only)."""

def blame_new(interval_ns: int, seed: int, /) -> BlameRecorder: ...
def blame_start(blame: BlameRecorder, /) -> None: ...
def blame_stop(blame: BlameRecorder, /) -> None: ...
def blame_take(blame: BlameRecorder, /) -> dict[str, Any]: ...
def heartbeat_read(totals: Buffer, /) -> tuple[int, ...]: ...
def duty_cycle(seconds: float, hold: float, period: float, /) -> tuple[float, float]: ...
def thread_slice(ns: int, /) -> int | None: ...
def duty_block(
    seconds: float,
    hold: float,
    period: float,
    how: str,
    *,
    cancel: CancelToken | None = None,
) -> tuple[float, float]: ...
