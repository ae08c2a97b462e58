"""gilx.convoy() and ``gilx convoy``: releasing work timed alone and beside busy Python threads.

What is checked is behaviour, never a timing threshold: the result's shape, that the
work ran on a worker thread while the busy threads ran, that per-call latency is really
measured, the errors, the disturbance rule, and the command's output.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import sys
import threading
import time

import pytest
from conftest import fake_cpu_meter

import gilx
from gilx import _present, machine, runner, workloads
from gilx._convoy import CallTimes, ConvoyReport, ConvoyResult, Latency, convoy
from gilx.cli import main
from gilx.timing import Timing

RESULT_KEYS = {
    "workload",
    "alone_s",
    "beside_s",
    "slowdown",
    "latency",
    "other_cpu",
    "disturbed",
}
#: The module (``gilx._convoy``; ``gilx.convoy`` is the function).
convoy_module = importlib.import_module("gilx._convoy")
TOP_KEYS = {"beside", "threads", "switch_interval_s", "gil_enabled", "disturbed", "results"}

# Process-wide state: the switch interval (set and restored by convoy(switch_interval=...),
# read back by the tests) and the busy threads, which the tests find by name among all of
# the process's threads.  pytest-run-parallel runs these once, not in 4 threads at once.
pytestmark = pytest.mark.thread_unsafe(
    reason="sets the process's switch interval, counts its threads"
)


def test_exported_from_gilx():
    assert gilx.convoy is convoy
    assert gilx.ConvoyResult is ConvoyResult
    assert {"convoy", "ConvoyResult"} <= set(gilx.__all__)


def test_a_released_c_loop_alone_and_beside_a_busy_thread():
    # ~30 ms a call: long enough for the busy thread to be seen running beside it
    # (a 1 ms call can end before a starved busy thread first gets a CPU).
    r = convoy("nogil", size=100_000_000, repeats=2)
    assert isinstance(r, ConvoyResult)
    assert (r.workload, r.beside, r.threads, r.size) == ("nogil", "py", 1, 100_000_000)
    assert len(r.alone.samples) == len(r.beside_timing.samples) == 2
    assert r.alone_s > 0 and r.beside_s > 0
    assert r.slowdown == pytest.approx(r.beside_s / r.alone_s)
    assert r.latency is None  # one long call: no per-call latency
    assert r.busy_rate > 0 and r.busy_unit == "loop steps"  # the busy thread really ran
    assert r.switch_interval_s == sys.getswitchinterval()
    assert r.gil_enabled is gilx.gil_enabled()
    d = r.to_dict()
    assert RESULT_KEYS <= set(d)
    assert d["latency"] is None and d["disturbed"] is r.disturbed
    json.dumps(d)


def test_sleep_latency_is_measured_per_call():
    r = convoy("sleep", size=20, repeats=2)
    assert r.latency is not None
    for times in (r.latency.alone, r.latency.beside):
        assert times.calls == 20 * 2  # every call of the kept repeats
        # time.sleep(0.001) never returns early; p99 is at or above the median
        assert convoy_module.SLEEP_SECONDS <= times.p50 <= times.p99
    assert r.alone_s >= 20 * convoy_module.SLEEP_SECONDS
    d = r.to_dict()["latency"]
    assert set(d) == {"alone", "beside"}
    assert {"p50", "p99"} <= set(d["alone"]) and {"p50", "p99"} <= set(d["beside"])


def test_io_latency_includes_the_servers_delay():
    from gilx._httpdelay import DELAY_SECONDS

    r = convoy("io", size=3, repeats=1)
    assert r.latency is not None and r.latency.alone.calls == 3
    assert r.latency.alone.p50 >= DELAY_SECONDS and r.latency.beside.p50 >= DELAY_SECONDS


def _recording(name: str, calls: list[tuple[str, float, float]]) -> workloads.Workload:
    """A workload whose every call notes (thread name, start, end)."""

    def prepare(share: int, endpoint: str):
        def run() -> None:
            start = time.perf_counter()
            for _ in range(share):
                sum(range(200))
            calls.append((threading.current_thread().name, start, time.perf_counter()))

        return run

    return workloads.Workload(name, "recorded", "units", 1_000, prepare)


def test_measured_on_a_worker_thread_while_the_busy_threads_run(monkeypatch):
    measured: list[tuple[str, float, float]] = []
    busy: list[tuple[str, float, float]] = []
    monkeypatch.setitem(workloads.WORKLOADS, "nogil", _recording("nogil", measured))
    monkeypatch.setitem(workloads.WORKLOADS, "gil", _recording("gil", busy))
    r = convoy("nogil", beside="gil", threads=2, size=50_000, repeats=3)
    assert measured and all(name != threading.main_thread().name for name, _, _ in measured)
    assert len({name for name, _, _ in measured}) == 1  # one worker thread, alone and beside
    assert {name for name, _, _ in busy} == {"gilx-busy-0", "gilx-busy-1"}
    # No busy thread ran before the alone repeats were done; every beside repeat ran while
    # the busy threads did.
    first_busy = min(start for _, start, _ in busy)
    alone_runs = [call for call in measured if call[2] <= first_busy]
    beside_runs = [call for call in measured if call[2] > first_busy]
    assert len(alone_runs) >= 3 and len(beside_runs) >= 3
    for _, start, end in beside_runs:
        assert any(b_start < end and start < b_end for _, b_start, b_end in busy)
    assert r.busy_rate > 0
    assert not any(t.name.startswith("gilx-busy") for t in threading.enumerate())  # joined


def test_per_call_latency_follows_the_workloads_capability_not_its_name(monkeypatch):
    calls: list[tuple[str, float, float]] = []
    timed = dataclasses.replace(_recording("nogil", calls), per_call=True)
    monkeypatch.setitem(workloads.WORKLOADS, "nogil", timed)
    r = convoy("nogil", size=1_000, repeats=2)
    assert r.latency is not None and r.latency.alone.calls == 1_000 * 2
    untimed = dataclasses.replace(workloads.get("io"), per_call=False)
    monkeypatch.setitem(workloads.WORKLOADS, "io", untimed)
    assert convoy("io", size=2, repeats=1).latency is None


def test_switch_interval_is_set_for_the_call_and_restored():
    before = sys.getswitchinterval()
    r = convoy("sleep", size=5, repeats=1, switch_interval=0.0005)
    assert r.switch_interval_s == pytest.approx(0.0005)
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"workload": "gpu"}, ValueError, "unknown workload 'gpu'"),
        ({"workload": "nogil", "beside": "gpu"}, ValueError, "unknown workload 'gpu'"),
        ({"workload": "nogil", "threads": 0}, ValueError, "threads must be between 1"),
        ({"workload": "nogil", "threads": 257}, ValueError, "threads must be between 1"),
        ({"workload": "nogil", "threads": "2"}, TypeError, "threads must be an int"),
        ({"workload": "nogil", "size": 0}, ValueError, "size must be >= 1"),
        ({"workload": "nogil", "repeats": 0}, ValueError, "repeats must be >= 1"),
    ],
)
def test_bad_arguments_raise_before_measuring(kwargs, error, text):
    with pytest.raises(error, match=text):
        convoy(**kwargs)


def test_a_lasting_disturbance_is_re_measured_then_not_judged(monkeypatch):
    monkeypatch.setattr(machine, "CpuMeter", fake_cpu_meter(itertools.repeat(0.9)))
    r = convoy("sleep", size=3, repeats=2)
    # each measurement ran its repeats and as many again, then gave up: disturbed
    assert r.disturbed and r.alone.disturbed and r.beside_timing.disturbed
    assert r.other_cpu == pytest.approx(0.9)
    assert r.latency is not None and r.latency.alone.calls == 3 * 2
    text = ConvoyReport("py", 1, r.switch_interval_s, r.gil_enabled, (r,)).render()
    line = next(line for line in text.splitlines() if line.startswith("sleep "))
    assert line.endswith("  ?")
    assert _present.NOT_JUDGED in text
    for word in ("  convoy", "unaffected", "slowed"):
        assert not line.endswith(word)


def _result(alone: float, beside: float, disturbed: bool = False) -> ConvoyResult:
    return ConvoyResult(
        "nogil",
        "py",
        1,
        10,
        "loop steps",
        Timing((alone,), (0.0,)),
        Timing((beside,), (0.0,), disturbed),
        None,
        1000.0,
        "loop steps",
        0.005,
        True,
    )


def test_verdicts_follow_the_slowdown_and_never_a_disturbed_one():
    assert convoy_module.verdict(_result(1.0, 6.0)) == "convoy"
    assert convoy_module.verdict(_result(1.0, 1.05)) == "unaffected"
    assert convoy_module.verdict(_result(1.0, 1.3)) == "slowed"
    assert convoy_module.verdict(_result(1.0, 6.0, disturbed=True)) == "?"


def test_report_json_shape():
    latency = Latency(CallTimes(0.001, 0.002, 4), CallTimes(0.006, 0.008, 4))
    r = _result(1.0, 2.0)
    with_latency = ConvoyResult(**{**r.__dict__, "workload": "sleep", "latency": latency})
    d = ConvoyReport("py", 1, 0.005, True, (r, with_latency)).to_dict()
    assert set(d) == TOP_KEYS
    assert d["disturbed"] is False and d["beside"] == "py" and d["threads"] == 1
    assert [x["workload"] for x in d["results"]] == ["nogil", "sleep"]
    assert d["results"][1]["latency"]["beside"]["p50"] == 0.006
    assert d["results"][0]["slowdown"] == 2.0


def _one_line_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        status = main(args)
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--workload", "gpu"], "unknown workload 'gpu'"),
        (["--workload", "nogil,gpu"], "unknown workload 'gpu'"),
        (["--workload", ","], "expected workloads"),
        (["--beside", "gpu"], "invalid choice"),
        (["--threads", "0"], "must be >= 1"),
        (["--workers", "0"], "must be >= 1"),
        (["--threads", "257"], "must be <= 256"),
        (["--threads", "x"], "not an integer"),
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(args, text, capsys):
    assert text in _one_line_exit_2(["convoy", *args], capsys)


def test_cli_json(capsys, monkeypatch):
    monkeypatch.setattr(runner, "QUICK_SECONDS", 0.02)  # a short calibration target
    assert main(["convoy", "--workload", "sleep,nogil", "--quick", "--json"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    d = json.loads(out)
    assert TOP_KEYS <= set(d) and d["schema"] == 1 and "machine" in d
    assert (d["beside"], d["threads"]) == ("py", 1)
    assert d["switch_interval_s"] == sys.getswitchinterval()
    assert d["gil_enabled"] is gilx.gil_enabled()
    assert [r["workload"] for r in d["results"]] == ["sleep", "nogil"]
    for r in d["results"]:
        assert RESULT_KEYS <= set(r) and r["busy_rate"] > 0
    assert d["results"][0]["latency"]["alone"]["p50"] >= 0.001
    assert d["results"][1]["latency"] is None


def test_cli_text(capsys, monkeypatch):
    monkeypatch.setattr(runner, "QUICK_SECONDS", 0.02)
    assert (
        main(["convoy", "--workload", "sleep", "--beside", "gil", "--threads", "2", "--quick"]) == 0
    )
    out = capsys.readouterr().out
    assert "beside 2 threads running gil: C counting loop, GIL held" in out
    assert "busy/s: loop steps of gil" in out
    assert f"switch interval {sys.getswitchinterval() * 1e3:g} ms" in out
    row = next(line for line in out.splitlines() if line.startswith("sleep "))
    assert row.split()[-1] in {"convoy", "slowed", "unaffected", "?"}


def test_the_tour_section_and_the_decision_branch(monkeypatch):
    from gilx import _measured, _present, tour

    monkeypatch.setattr(runner, "QUICK_SECONDS", 0.01)  # tiny measurements: what is said
    monkeypatch.setattr(runner, "QUICK_REPEATS", 1)
    session = _measured.Measurements(quick=True, workers=2)
    before = sys.getswitchinterval()
    report = _present.Report()
    tour._convoy(report, session)
    text = report.text()
    assert sys.getswitchinterval() == before  # the knob was put back
    assert "The convoy effect" in text
    sleep = session.convoy("sleep")
    assert sleep.latency is not None
    assert f"sleep   per call p50 {sleep.latency.alone.p50 * 1e3:.2f} ms alone" in text
    assert "io      per call p50" in text
    assert ("sys.setswitchinterval(0.0005)" in text) is gilx.gil_enabled()
    if gilx.gil_enabled():
        knob = session.convoy("sleep", 0.0005)
        assert knob.switch_interval_s == pytest.approx(0.0005)
        assert f"{sleep.busy_rate:,.0f} at" in text and f"{knob.busy_rate:,.0f} at" in text
    assert "count_nogil" in text and "np.dot" in text
    assert any(w in text for w in ("Measured here", "Not shown", "Not judged"))
    branch = tour._convoy_line(session)
    assert branch.startswith("I/O or C work beside CPU-bound Python threads")
    assert f"{session.convoy('nogil').slowdown:.2f}x" in branch
