"""gilx timeline: who ran when, recorded from real runs and drawn to fit."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise

import pytest
from conftest import needs_two_cores, retry

import gilx
from gilx import _core, timeline, timeline_text

gil_build = pytest.mark.skipif(not gilx.gil_enabled(), reason="needs the GIL")


@gil_build
def test_gil_threads_never_run_at_the_same_time():
    # Each chunk's times are read while its thread holds the GIL, so two
    # threads' run intervals cannot overlap at all: no retry needed.
    t = timeline.record("gil", threads=2, seconds=0.05)
    assert {e.thread for e in t.runs()} == {0, 1}
    assert t.overlap_seconds() == 0.0
    assert t.handoffs() >= 1
    wait = t.longest_wait()
    assert wait is not None and wait.end - wait.start > 0.02


@needs_two_cores
def test_nogil_threads_run_together_for_most_of_the_run():
    def together() -> bool:
        t = timeline.record("nogil", threads=2, seconds=0.1)
        shortest = min(sum(e.end - e.start for e in t.runs(i)) for i in range(2))
        return t.overlap_seconds() > 0.6 * shortest

    assert retry(5, together)


def test_events_are_ordered_per_thread_and_start_at_zero():
    t = timeline.record("py", threads=2, seconds=0.03)
    assert min(e.start for e in t.events) == 0.0
    for i in range(2):
        mine = sorted((e for e in t.events if e.thread == i), key=lambda e: e.start)
        assert mine, f"thread {i} recorded nothing"
        for a, b in pairwise(mine):
            assert a.end <= b.start + 1e-9
        assert all(e.end > e.start and e.state in ("run", "wait") for e in mine)


def test_io_threads_mostly_wait():
    t = timeline.record("io", threads=2, seconds=0.05)
    waited = sum(e.end - e.start for e in t.events if e.state == "wait")
    ran = sum(e.end - e.start for e in t.runs())
    assert waited > ran


def test_count_traced_matches_the_kernel():
    count, chunks = _core.count_traced(_core.COUNT_CHUNK * 2 + 5, True)
    assert count == _core.COUNT_CHUNK * 2 + 5
    assert len(chunks) == 3
    for start, end, cpu in chunks:
        assert end >= start and isinstance(cpu, int)
    assert _core.count_traced(0, False)[0] == 0
    with pytest.raises(ValueError, match="too large to trace"):
        _core.count_traced(2**40, True)
    with pytest.raises(TypeError):
        _core.count_traced(5)
    with pytest.raises(ValueError, match="n must be >= 0"):
        _core.count_traced(-1, True)


@pytest.mark.parametrize("width", [24, 40, 80, 157])
def test_drawing_fits_the_width(width):
    t = timeline.record("gil", threads=3, seconds=0.01)
    text = timeline_text.draw(t, width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    assert sum(line.startswith("Thread ") for line in lines) == 3
    with pytest.raises(ValueError):
        timeline_text.draw(t, timeline_text.MIN_WIDTH - 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown workload"):
        timeline.record("bogus")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        timeline.record("py", threads=0)
    with pytest.raises(ValueError, match="threads must be <= 16"):
        timeline.record("py", threads=17)
    with pytest.raises(ValueError, match="seconds must be"):
        timeline.record("py", seconds=0)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gilx", "timeline", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_json_shape():
    out = _cli("--workload", "gil", "--threads", "2", "--seconds", "0.02", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"workload", "threads", "events"} <= set(data)
    assert (data["workload"], data["threads"]) == ("gil", 2)
    for e in data["events"]:
        assert set(e) == {"thread", "start", "end", "state"}
        assert e["state"] in ("run", "wait") and 0 <= e["start"] <= e["end"]


def test_cli_png_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "t.png"
    out = _cli("--workload", "nogil", "--seconds", "0.02", "--width", "60", "--png", str(png))
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(len(line) <= 60 for line in out.stdout.splitlines()[:-1])


@pytest.mark.parametrize(
    "args",
    [
        ["--workload", "bogus"],
        ["--workload", "py", "--threads", "0"],
        ["--workload", "py", "--width", "5"],
        ["--workload", "py", "--png", "/no/such/folder/x.png"],
        ["--workload", "py", "--seconds", "-1"],
        [],
    ],
)
def test_cli_bad_arguments_one_line_exit_2(args):
    out = _cli(*args)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
