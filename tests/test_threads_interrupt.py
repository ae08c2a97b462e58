"""Ctrl-C during gilx.race() leaves no gilx worker thread running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via os.kill is POSIX")

# The threads would run for decades if nothing stopped them.  After the
# KeyboardInterrupt the script lists the gilx threads still alive, then keeps
# the process up a little so that a thread left running would be seen.
SCRIPT = """
import sys, threading, gilx
print("ready", flush=True)
try:
    gilx.race({kind!r}, threads=2, increments=2**60)
except KeyboardInterrupt:
    alive = [t.name for t in threading.enumerate() if t.name.startswith("gilx-")]
    print("interrupted", alive, flush=True)
"""


@pytest.mark.thread_unsafe(reason="waits a fixed 2 s for a race to start: 4 at once outlast it")
@pytest.mark.parametrize("kind", ["unsafe", "atomic", "locked"])
def test_ctrl_c_during_race_stops_its_threads(kind):
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(kind=kind)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        # The threads are deep in their increments by then, even where
        # starting a thread takes a few hundred ms (3.13t on a busy machine).
        time.sleep(2.0)
        assert proc.poll() is None, "the race ended by itself"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == "interrupted []", (out, err)
    assert proc.returncode == 0, err


@pytest.mark.thread_unsafe(reason="waits a fixed 3 s for a CLI to start: 4 at once outlast it")
def test_cli_race_ctrl_c_exits_130():
    proc = subprocess.Popen(
        [sys.executable, "-m", "gilx", "race", "--increments", str(2**60)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3.0)  # past start-up and imports, even on a busy machine
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
