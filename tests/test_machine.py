"""Machine facts: one place for cores, the interpreter, and the CPU the rest of the machine used."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import time

import pytest
from conftest import retry

import gilx
from gilx import machine

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: A process that keeps one core busy for this long (seconds), then exits.
HOG = "import time\nend = time.perf_counter() + {seconds}\nwhile time.perf_counter() < end: pass\n"


def test_gil_state_and_build_have_one_answer_each():
    assert gilx.gil_enabled() == machine.gil_enabled()
    assert machine.free_threaded_build() == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert machine.free_threaded_build() == bool(gilx._core.FREE_THREADED_BUILD)
    assert ("free-threaded" in machine.python_description()) == machine.free_threaded_build()


def test_the_machine_block_says_what_the_numbers_were_measured_on():
    block = machine.describe()
    assert block["cores"] == machine.cores() >= 1
    assert block["gil_enabled"] == gilx.gil_enabled()
    assert isinstance(block["python"], str) and block["python"].startswith("CPython")
    load = block["load_average"]
    assert load is None or (len(load) == 3 and all(x >= 0 for x in load))


def test_share_of_needed_counts_only_what_the_spare_cores_could_not_hold():
    use = machine.CpuUse(seconds=1.0, cores=2, other_cores=1.0, own_cores=1.0, steal_cores=0.0)
    assert use.share_of_needed(1) == 0.0  # the neighbour fits on the other core
    assert use.share_of_needed(2) == 0.5  # it took half of what two workers needed
    assert use.share_of_needed(8) == 0.5  # more workers than cores need only the cores
    assert use.machine_share == 0.5
    busy = machine.CpuUse(1.0, 2, other_cores=3.0, own_cores=0.0, steal_cores=0.0)
    assert busy.share_of_needed(2) == 1.0 and busy.machine_share == 1.0


def _own_share_while(work: object) -> float:
    meter = machine.CpuMeter()
    meter.start()
    if isinstance(work, subprocess.Popen):
        time.sleep(0.3)  # the hog runs longer: measured alive, not reaped (a reaped
        # child's CPU is this process's by the OS's own accounting)
    else:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
    use = meter.stop()
    assert use is not None
    return use.own_cores


@linux_only
def test_the_meter_counts_this_processes_cpu_as_its_own():
    # Spinning here for 0.3 s uses some of a core, even on a busy machine (load 13 on 2
    # cores leaves one runnable thread ~0.15 of a core).
    assert retry(5, lambda: _own_share_while(None) > 0.05)


@linux_only
@pytest.mark.thread_unsafe(reason="the registry of helper processes is the process's")
def test_a_registered_helper_process_is_own_cpu_an_unregistered_one_is_not():
    def helper_counted(register: bool) -> float:
        hog = subprocess.Popen([sys.executable, "-c", HOG.format(seconds=2)])
        if register:
            machine.add_helper_process(hog.pid)
        try:
            return _own_share_while(hog)
        finally:
            machine.remove_helper_process(hog.pid)
            hog.kill()
            hog.wait()

    # The helper's CPU moves into "own" when registered; a stranger's never does.
    assert retry(5, lambda: helper_counted(True) > 0.05)
    assert retry(5, lambda: helper_counted(False) < 0.1)


def test_without_proc_stat_the_meter_says_unknown(monkeypatch):
    monkeypatch.setattr(machine, "_machine_ticks", lambda cpus: None)
    meter = machine.CpuMeter()
    meter.start()
    assert meter.stop() is None
