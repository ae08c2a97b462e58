"""The heartbeat without privileges: each way it may claim a CPU, on the cells of issue 25.

A cell holds the GIL for ``hold`` ms (``_core.duty_block``: C spinning with the GIL held),
then sleeps ``rest`` ms with it released, as a server loop does; plus pure spin and pure
sleep.  The call measures its own truth.  For each way of claiming a CPU the heartbeat's
reading is compared with it, and the instrument's own verdict (``disturbed``) is kept:

* ``normal``: nothing asked (what every ordinary user got before issue 25);
* ``pinned``: the heartbeat's thread bound to the last CPU (placement; no privilege);
* ``short-slice``: the scheduler's shortest slice (``_core.thread_slice``, Linux 6.12+, no
  privilege): what gilx now does where it may not be real-time;
* ``fifo``: real-time scheduling, where the process may (root here, not an ordinary user).

Run it as an ordinary user and as root to fill both tables in BENCHMARKS.md::

    runuser -u USER -- python -m pytest benchmarks/test_heartbeat_claims.py --benchmark-only \\
        --benchmark-json=benchmarks/results/claims-user.json -s
    GILX_CLAIMS_HOGS=2 ... (the same beside two CPU hogs)

The default is short (one round, 1 s a cell, the claim gilx makes in this process, ~10 s);
``GILX_CLAIMS_SWEEP=1`` measures every claim, 3 rounds of 2 s a cell (~3 min).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import gilx
from gilx import _core, instrument
from gilx.instrument import DEFAULT_INTERVAL, Heartbeat, Tally
from gilx.machine import CpuMeter

#: (hold ms, rest ms); "spin" holds all the time, "sleep" never.
CELLS: tuple[tuple[str, float, float], ...] = (
    ("sleep", 0.5, 2.0),
    ("sleep", 1.0, 3.0),
    ("sleep", 2.0, 1.0),
    ("sleep", 1.0, 1.0),
    ("sleep", 3.0, 3.0),
    ("sleep", 5.0, 5.0),
    ("sleep", 10.0, 10.0),
    ("spin", 5.0, 0.0),
    ("idle", 0.0, 5.0),
)
SWEEP = os.environ.get("GILX_CLAIMS_SWEEP") == "1"
HOGS = int(os.environ.get("GILX_CLAIMS_HOGS", "0"))

needs_gil = pytest.mark.skipif(not gilx.gil_enabled(), reason="no GIL: nothing to estimate")


#: gilx's own claim, kept before measure() stands in for it.
_CLAIM_CPU = instrument._claim_cpu


def _claim(mode: str) -> Callable[..., tuple[str, Callable[[], None] | None]]:
    """A stand-in for instrument._claim_cpu that makes the heartbeat claim its CPU as
    ``mode`` says, or reports that this process may not."""

    def claim(**_: bool) -> tuple[str, Callable[[], None] | None]:
        if mode == "pinned":
            os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
            return "pinned", None
        got, restore = _CLAIM_CPU(realtime=mode == "fifo", short_slice=mode == "short-slice")
        return got, restore

    return claim


def available_modes() -> list[str]:
    """The claims this process can make (fifo needs root or CAP_SYS_NICE)."""
    modes = ["normal"]
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        modes.append("pinned")
    out: list[object] = []
    import threading

    def probe() -> None:
        out.append(_core.thread_slice(instrument.SHORT_SLICE_NS))
        restore = instrument._realtime_priority()
        out.append(restore is not None)
        if restore is not None:
            restore()

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    if out[0] is not None:
        modes.append("short-slice")
    if out[1]:
        modes.append("fifo")
    return modes


def truth_run(kind: str, hold_ms: float, rest_ms: float, seconds: float) -> tuple[float, float]:
    if kind == "spin":
        return _core.duty_cycle(seconds, 1.0, hold_ms / 1e3)
    if kind == "idle":
        start = time.perf_counter()
        time.sleep(seconds)
        return 0.0, time.perf_counter() - start
    period = (hold_ms + rest_ms) / 1e3
    return _core.duty_block(seconds, hold_ms / (hold_ms + rest_ms), period, "sleep")


def measure(mode: str, cell: tuple[str, float, float], seconds: float) -> dict[str, Any]:
    kind, hold_ms, rest_ms = cell
    saved = instrument._claim_cpu
    instrument._claim_cpu = _claim(mode)  # type: ignore[assignment]
    try:
        meter = CpuMeter()
        with Heartbeat(DEFAULT_INTERVAL) as heart:
            meter.start()
            before = heart.snapshot()
            held, total = truth_run(kind, hold_ms, rest_ms, seconds)
            tally = Tally.between(before, heart.snapshot())
            use = meter.stop()
        reading = tally.reading(use, heart.priority)
    finally:
        instrument._claim_cpu = saved  # type: ignore[assignment]
    truth = held / total if total else 0.0
    return {
        "mode": mode,
        "cell": f"{hold_ms:g}/{rest_ms:g} ms" if kind == "sleep" else kind,
        "truth": round(truth, 4),
        "read": round(reading.hold_fraction, 4),
        "error": round(reading.hold_fraction - truth, 4),
        "late_share": round(reading.late_share, 4),
        "disturbed": reading.disturbed,
        "reasons": reading.disturbances(),
    }


@contextmanager
def hogs(n: int) -> Iterator[None]:
    """``n`` processes that spin for the whole block: a busy machine."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.2 if n else 0.0)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def sweep(seconds: float, rounds: int, modes: list[str]) -> dict[str, Any]:
    rows = []
    with hogs(HOGS):
        for _ in range(rounds):
            for mode in modes:
                for cell in CELLS:
                    rows.append(measure(mode, cell, seconds))
    return {
        "user": "root" if os.geteuid() == 0 else "ordinary",
        "hogs": HOGS,
        "seconds_per_cell": seconds,
        "rounds": rounds,
        "rows": rows,
    }


def print_rows(result: dict[str, Any]) -> None:
    print(f"\nheartbeat claims: {result['user']} user, {result['hogs']} hogs")
    for r in result["rows"]:
        flag = "not judged" if r["disturbed"] else "judged"
        print(
            f"  {r['mode']:<12} {r['cell']:<12} truth {r['truth']:.3f} read {r['read']:.3f}"
            f" error {r['error']:+.3f} late {r['late_share']:.1%} {flag}"
        )


@needs_gil
@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux scheduling only")
def test_heartbeat_claims(benchmark):
    if benchmark.disabled:
        modes, seconds, rounds = [available_modes()[-1]], 0.05, 1
    elif SWEEP:
        modes, seconds, rounds = available_modes(), 2.0, 3
    else:
        modes, seconds, rounds = [available_modes()[-1]], 1.0, 1
    result = benchmark.pedantic(sweep, args=(seconds, rounds, modes), rounds=1, iterations=1)
    print_rows(result)
    assert {r["mode"] for r in result["rows"]} == set(modes)
    benchmark.extra_info["heartbeat_claims"] = result
