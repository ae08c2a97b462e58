"""Never a wrong verdict on functions that mix Python with blocking calls, for any user.

Two functions hold the GIL part of the time: Python code for 1 ms then a 3 ms sleep (held
25 % of the time), and 2 ms then 1 ms (65 %).  As an ordinary user (no real-time priority
for the heartbeat) such readings can be far off -- the heartbeat waits in the run queue
behind the holder and reads held instants as free -- and must then come out *not judged*:
:class:`gilx.testing.Inconclusive`, or a probe without a verdict.  Either that or the right
verdict is acceptable; a wrong pass, a wrong fail or a wrong verdict never is.  Quiet, and
beside two processes keeping CPUs busy.

CI runs this file as an unprivileged user as well as root (.ci/run).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from gilx import probe
from gilx.testing import Inconclusive, assert_holds_gil, assert_releases_gil

pytestmark = [
    pytest.mark.thread_unsafe(reason="reads the GIL of the whole process; starts CPU hogs"),
    pytest.mark.skipif(
        not __import__("gilx").gil_enabled(), reason="no GIL in this process: nothing to hold"
    ),
]

HOG = "while True: pass\n"


def _hold_then_sleep(hold: float, sleep: float) -> Callable[[], None]:
    def mixed() -> None:
        end = time.perf_counter() + hold
        while time.perf_counter() < end:
            pass
        time.sleep(sleep)

    mixed.__qualname__ = f"hold_{hold * 1e3:g}ms_sleep_{sleep * 1e3:g}ms"
    return mixed


QUARTER = _hold_then_sleep(0.001, 0.003)  # truly held 25 % of the time
MOST = _hold_then_sleep(0.002, 0.001)  # truly held 65 % of the time (a little Python after)


@contextlib.contextmanager
def hogs(count: int) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(count)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.fixture(params=[0, 2], ids=["quiet", "two-hogs"])
def machine_state(request: pytest.FixtureRequest) -> Iterator[int]:
    with hogs(request.param):
        yield request.param


def _outcome(check: Callable[[], object]) -> str:
    """``pass``, ``fail`` or ``inconclusive``."""
    try:
        check()
    except Inconclusive:
        return "inconclusive"
    except AssertionError:
        return "fail"
    return "pass"


#: Seconds each probe's calls take on one thread: short, so the file stays quick.
SECONDS = 0.1


def test_the_assertions_never_pass_or_fail_wrongly(machine_state):
    print(f"uid {os.getuid() if hasattr(os, 'getuid') else '?'}, hogs {machine_state}")
    wrong_passes = {
        "releases(25%, max 0.1)": lambda: assert_releases_gil(
            QUARTER, max_hold=0.1, seconds=SECONDS
        ),
        "releases(65%, max 0.5)": lambda: assert_releases_gil(MOST, max_hold=0.5, seconds=SECONDS),
        "holds(25%, min 0.5)": lambda: assert_holds_gil(QUARTER, min_hold=0.5, seconds=SECONDS),
        "holds(65%, min 0.9)": lambda: assert_holds_gil(MOST, min_hold=0.9, seconds=SECONDS),
    }
    wrong_fails = {
        "releases(25%, max 0.5)": lambda: assert_releases_gil(
            QUARTER, max_hold=0.5, seconds=SECONDS
        ),
        "holds(65%, min 0.4)": lambda: assert_holds_gil(MOST, min_hold=0.4, seconds=SECONDS),
    }
    seen = {name: _outcome(check) for name, check in {**wrong_passes, **wrong_fails}.items()}
    print(seen)
    assert all(seen[name] != "pass" for name in wrong_passes), seen
    assert all(seen[name] != "fail" for name in wrong_fails), seen


def test_probe_never_gives_a_wrong_verdict_on_mixed_functions(machine_state):
    quarter = probe(QUARTER, seconds=SECONDS)
    most = probe(MOST, seconds=SECONDS)
    print(quarter.render(), most.render(), sep="\n")
    if not quarter.disturbed:
        assert quarter.releases_gil, quarter.render()
        assert "verdict: releases" in quarter.render()
    else:
        assert "verdict:" not in quarter.render()
    if not most.disturbed:
        assert not most.releases_gil, most.render()
        assert "verdict: holds" in most.render()
    else:
        assert "verdict:" not in most.render()
