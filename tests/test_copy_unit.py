"""The copy unit of csrc/README.md stands alone: an extension that is not gilx runs on it.

examples/copy_unit/spin.c is built from exactly the files csrc/README.md names
(tests/copy_unit.py), in a folder of its own, with -Wall -Wextra -Werror.  Then the
policy is checked from Python, on that extension: a cancel flag and a deadline passed
in stop it, Ctrl-C ends it on the main thread, a busy Python thread keeps running
beside it, and on a free-threaded build a stop-the-world pause is not held up.
The timings (its slowdown beside a busy thread, Ctrl-C's latency) are in
benchmarks/test_every_process.py; here the bounds only tell "works" from "broken".
"""

from __future__ import annotations

import gc
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest
from conftest import retry
from copy_unit import ROOT, SPIN_C, build, compiler, unit_files

pytestmark = [
    pytest.mark.skipif(not SPIN_C.is_file(), reason="no examples/ next to tests/"),
    pytest.mark.skipif(compiler() is None, reason="no C compiler for this Python"),
]

HUGE = 2**62


@pytest.fixture(scope="module")
def spin(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return build(tmp_path_factory.mktemp("copy_unit"))


def xorshift(n: int) -> int:
    x = 88172645463325252
    for _ in range(n):
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
    return x


def test_the_unit_is_the_three_files_and_includes_nothing_else_of_gilx():
    assert unit_files() == ["policy.h", "atomics.h", "release.c"]
    for name in unit_files():
        text = (ROOT / "csrc" / "reference" / name).read_text(encoding="utf-8")
        included = set(re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, flags=re.M))
        assert included <= set(unit_files()), (name, included)


@pytest.mark.parametrize("release", [True, False])
def test_it_computes_its_kernel(spin, release):
    assert spin.spin(0, release=release) == xorshift(0)
    assert spin.spin(5000, release=release) == xorshift(5000)
    assert spin.spin(3 * (1 << 20) + 17, release=release) == spin.spin(3 * (1 << 20) + 17)


# Held (release=False) on a worker of a GIL build, the call keeps the GIL: no other
# thread can run to set the flag, only its deadline stops it (as count_gil's).
GIL_ON = getattr(sys, "_is_gil_enabled", lambda: True)()
RELEASES_FOR_THE_FLAG = [True] if GIL_ON else [True, False]


@pytest.mark.thread_unsafe(reason="the cancel flag is the module's, shared by every thread")
@pytest.mark.parametrize("release", RELEASES_FOR_THE_FLAG)
def test_the_cancel_flag_passed_in_stops_it_on_another_thread(spin, release):
    errors: list[BaseException] = []

    def run() -> None:
        try:
            spin.spin(HUGE, release=release, timeout=60)
        except BaseException as e:
            errors.append(e)

    spin.clear()
    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.1)
    assert worker.is_alive()
    spin.stop()
    worker.join(timeout=30)
    spin.clear()
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], TimeoutError), errors


@pytest.mark.parametrize("release", [True, False])
def test_the_deadline_passed_in_stops_it(spin, release):
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match="deadline"):
        spin.spin(HUGE, release=release, timeout=0.05)
    assert time.perf_counter() - start < 30
    # The deadline was this call's: the module's flag is not set by it.
    assert spin.spin(10, release=release) == xorshift(10)


@pytest.mark.thread_unsafe(reason="judges a busy thread beside the call")
def test_a_busy_python_thread_runs_beside_it_and_the_call_completes(spin):
    # Released on a worker, the call never takes the GIL back before it ends, so the
    # busy thread keeps stepping; the call completes.  (How much it slows: benchmarks/.)
    def once() -> bool:
        stop = threading.Event()
        steps = [0]

        def busy() -> None:
            while not stop.is_set():
                steps[0] += 1

        during: list[int] = []

        def work() -> None:
            before = steps[0]
            spin.spin(200 * (1 << 20))
            during.append(steps[0] - before)

        b = threading.Thread(target=busy)
        b.start()
        w = threading.Thread(target=work)
        w.start()
        w.join(timeout=60)
        stop.set()
        b.join()
        return not w.is_alive() and len(during) == 1 and during[0] > 1000

    assert retry(3, once)


INTERRUPTED = """
import signal, sys, time
sys.path.insert(0, TESTS)
from copy_unit import build
from pathlib import Path
spin = build(Path(DEST))
print("ready", flush=True)
start = time.perf_counter()
try:
    spin.spin(2**62, release=RELEASE, timeout=60)
    print("finished")
except KeyboardInterrupt:
    took = time.monotonic() - float(sys.stdin.readline())
    print(f"{took:.4f}")
"""


@pytest.mark.thread_unsafe(reason="starts a child process and sends it a signal")
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via os.kill is POSIX")
@pytest.mark.parametrize("release", [True, False])
def test_ctrl_c_ends_it_on_the_main_thread(tmp_path: Path, release: bool):
    script = (
        textwrap.dedent(INTERRUPTED)
        .replace("TESTS", repr(str(Path(__file__).parent)))
        .replace("DEST", repr(str(tmp_path)))
        .replace("RELEASE", repr(release))
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        proc.stdin.write(f"{time.monotonic()}\n")
        proc.stdin.flush()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert float(out.strip()) < 5.0, out  # generous: it ends; benchmarks/ times it


@pytest.mark.thread_unsafe(reason="gc.collect() beside a call in another thread")
@pytest.mark.skipif(
    GIL_ON,
    reason="a stop-the-world pause exists only on free-threaded builds with the GIL off",
)
def test_a_stop_the_world_pause_is_not_held_up_by_the_held_path(spin):
    # No helper module: the held path runs each chunk detached when there is no GIL.
    done = threading.Event()

    def run() -> None:
        try:
            spin.spin(HUGE, release=False, timeout=10)
        except TimeoutError:
            pass
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.1)
    start = time.perf_counter()
    gc.collect()
    took = time.perf_counter() - start
    still_running = not done.is_set()
    spin.stop()
    worker.join()
    spin.clear()
    assert still_running, f"gc.collect() returned only after the call ended ({took:.2f} s)"


def test_os_is_posix_for_the_signal_tests():
    # The signal tests above need os.kill with SIGINT; say so where they would skip.
    assert sys.platform == "win32" or hasattr(os, "kill")
