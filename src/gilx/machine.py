"""Facts about this machine and this interpreter, in one place.

Cores (the affinity mask), load, the last-level cache, BLAS, the interpreter
and whether its GIL is on, and :class:`CpuMeter`: how much CPU the rest of the
machine used while something was measured.  The tour and table, race, workloads, the
runner, the benchmarks and the tests all read these; nothing else asks the OS.

``import gilx`` does not import this module (it needs only
:func:`gil_enabled`, which lives in :mod:`gilx._gilstate`).  Where the OS
cannot say (no ``/proc`` off Linux), the answer is None, never a guess.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gilx._gilstate import gil_enabled as gil_enabled  # re-exported: one place for these facts

# ---------------------------------------------------------------------------
# The interpreter
# ---------------------------------------------------------------------------


def free_threaded_build() -> bool:
    """Whether this interpreter was built with --disable-gil (``Py_GIL_DISABLED``).

    The one test of the build: the GIL may still be on in such a build
    (``PYTHON_GIL=1``); :func:`gil_enabled` says whether it is.
    """
    import sysconfig

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def python_description() -> str:
    """e.g. ``CPython 3.13.1 (free-threaded build)``."""
    import platform

    build = " (free-threaded build)" if free_threaded_build() else ""
    return f"{platform.python_implementation()} {platform.python_version()}{build}"


# ---------------------------------------------------------------------------
# CPUs, load, caches, BLAS
# ---------------------------------------------------------------------------


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, where the platform says (Linux); else none."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    return sorted(getaffinity(0)) if getaffinity is not None else []


def cores() -> int:
    """How many CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(usable_cpus()) or os.cpu_count() or 1


def pin_thread(cpu: int) -> bool:
    """Keep the calling thread on ``cpu`` (Linux); False where that cannot be done."""
    setaffinity = getattr(os, "sched_setaffinity", None)
    if setaffinity is None:
        return False
    try:
        setaffinity(0, {cpu})  # 0: the calling thread, on Linux
    except OSError:
        return False  # a CPU set that changed under us
    return True


def load_averages() -> tuple[float, float, float] | None:
    """The 1-, 5- and 15-minute load averages (Unix); None where the OS has none."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def load_1min() -> float | None:
    """The 1-minute load average (Unix); None where the OS has none."""
    load = load_averages()
    return load[0] if load is not None else None


def last_level_cache_bytes() -> int | None:
    """The largest CPU cache of cpu0 as Linux reports it in sysfs; None where unknown."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    sizes: list[int] = []
    try:
        entries = os.listdir(base)
    except OSError:
        return None
    for entry in entries:
        try:
            with open(os.path.join(base, entry, "size"), encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            continue
        factor = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * factor)
    return max(sizes, default=None)


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries NumPy loaded, as threadpoolctl sees them (loads NumPy)."""
    try:
        import numpy  # noqa: F401  (loads the BLAS that threadpoolctl inspects)
        from threadpoolctl import threadpool_info  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return []
    keys = ("internal_api", "version", "num_threads", "architecture")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def describe() -> dict[str, object]:
    """The ``machine`` block of every ``--json`` object: what the numbers were measured on."""
    import platform

    load = load_averages()
    return {
        "cores": cores(),
        "cpu_count": os.cpu_count(),
        "platform": sys.platform,
        "arch": platform.machine(),
        "python": python_description(),
        "free_threaded_build": free_threaded_build(),
        "gil_enabled": gil_enabled(),
        "load_average": [round(x, 2) for x in load] if load is not None else None,
    }


# ---------------------------------------------------------------------------
# CPU used by the rest of the machine while something is measured (Linux).
# ---------------------------------------------------------------------------
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: Where Linux's process information is mounted.  Elsewhere (macOS, Windows) it is missing, and
#: every reading of it is None: "cannot measure disturbance here", never a guess.
PROC = "/proc"

#: Processes started for a measurement outside the backends (the io server):
#: their CPU is the measurement's own, not a disturbance.
_helper_pids: set[int] = set()


def os_threads() -> int | None:
    """How many OS threads this process has now (Linux: /proc), or None where unknown.

    Python's ``threading`` forgets a thread as soon as its Python code is done;
    the OS thread lives on a little longer, freeing what it used.  Counting the
    OS threads sees the end of that too.
    """
    try:
        with open(f"{PROC}/self/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[17])  # num_threads, the 20th field of proc(5)


def wait_for_os_threads(at_most: int | None, timeout: float = 1.0) -> None:
    """Wait (up to ``timeout`` s) until this process has no more than ``at_most`` OS threads.

    Used after joining a crew of threads and before anything forks: a thread
    still exiting may hold a lock of the memory allocator (AddressSanitizer's,
    for one, is not made fork-safe), and a child forked at that instant would
    inherit the lock held, and hang at its first allocation.
    """
    if at_most is None:
        return
    deadline = time.monotonic() + timeout
    while (count := os_threads()) is not None and count > at_most:
        if time.monotonic() >= deadline:
            return  # someone else's thread (the caller's, a library's): not ours to wait for
        time.sleep(0.0005)


def add_helper_process(pid: int) -> None:
    """Count ``pid``'s CPU as the measurement's own (until :func:`remove_helper_process`)."""
    _helper_pids.add(pid)


def remove_helper_process(pid: int) -> None:
    _helper_pids.discard(pid)


def _machine_ticks(cpus: frozenset[int]) -> tuple[int, int] | None:
    """(busy, steal) clock ticks since boot of ``cpus`` (all CPUs if empty), from /proc/stat.

    None off Linux.  Only the CPUs this process may use count: what runs on
    the others cannot take the workers' time.
    """
    try:
        with open(f"{PROC}/stat", encoding="ascii") as stat:
            lines = stat.read().splitlines()
    except OSError:
        return None
    busy = steal = 0
    for line in lines:
        if not line.startswith("cpu"):
            break  # the cpu lines come first
        name, *values = line.split()
        if cpus and (name == "cpu" or int(name[3:]) not in cpus):
            continue
        if not cpus and name != "cpu":
            continue
        numbers = [*map(int, values), *[0] * 8]
        user, nice, system, _idle, _iowait, irq, softirq, stolen = numbers[:8]
        busy += user + nice + system + irq + softirq
        steal += stolen
    return busy, steal


def _process_ticks(pid: int) -> int:
    """utime + stime of a live process, in clock ticks (0 if it is gone)."""
    try:
        with open(f"{PROC}/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return 0


def own_cpu_seconds(pids: Iterable[int] = ()) -> float:
    """CPU seconds of this process, its finished children, ``pids`` and the helper processes."""
    children = os.times()
    total = time.process_time() + children.children_user + children.children_system
    ticks = sum(_process_ticks(pid) for pid in {*pids, *_helper_pids})
    return total + ticks / _TICKS_PER_SECOND


@dataclass(frozen=True)
class CpuUse:
    """What the machine's CPUs did during one measured interval.

    ``other_cores``: how many cores, on average, other processes and the
    hypervisor (steal time) kept busy; ``own_cores``: how many this
    measurement used (this process, its workers, its helpers).
    """

    seconds: float
    cores: int
    other_cores: float
    own_cores: float
    steal_cores: float

    @property
    def machine_share(self) -> float:
        """The share of all the cores that the rest of the machine used (0..1)."""
        return min(1.0, self.other_cores / self.cores)

    def share_of_needed(self, needed: int) -> float:
        """The share of the CPU time ``needed`` cores would give that the rest of the machine took.

        The others first fill the cores the measurement did not need; only what
        is left over came out of the workers' cores.  E.g. on 2 cores a busy
        neighbour on one core takes nothing from 1 worker and half from 2.
        """
        needed = max(1, min(needed, self.cores))
        spare = self.cores - needed
        return min(1.0, max(0.0, (self.other_cores - spare) / needed))


class CpuMeter:
    """Measures what the rest of the machine used between ``start()`` and ``stop()``.

    ``pids`` (called at each reading) names the live processes doing the
    measurement's work besides this one: worker processes.  ``stop()`` returns
    None where the OS does not say (no ``/proc/stat``).
    """

    def __init__(self, pids: Callable[[], Iterable[int]] = frozenset) -> None:
        self._pids = pids
        usable = frozenset(usable_cpus())
        # With every CPU usable, the summary line: /proc/stat rounds each of its
        # fields down to a clock tick once, where per-CPU lines round once per CPU.
        self._cpus = frozenset() if len(usable) == os.cpu_count() else usable
        self._ncores = len(usable) or cores()
        self._start: tuple[float, tuple[int, int] | None, float] | None = None

    def _read(self) -> tuple[float, tuple[int, int] | None, float]:
        return time.perf_counter(), _machine_ticks(self._cpus), own_cpu_seconds(self._pids())

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> CpuUse | None:
        if self._start is None:
            raise RuntimeError("CpuMeter.stop() before start()")
        t0, ticks0, own0 = self._start
        t1, ticks1, own1 = self._read()
        if ticks0 is None or ticks1 is None:
            return None
        seconds = max(t1 - t0, 1e-9)
        busy = (ticks1[0] - ticks0[0]) / _TICKS_PER_SECOND
        steal = (ticks1[1] - ticks0[1]) / _TICKS_PER_SECOND
        own = own1 - own0
        other = max(0.0, busy - own) + steal
        return CpuUse(seconds, self._ncores, other / seconds, own / seconds, steal / seconds)
