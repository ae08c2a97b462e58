"""The gilx command: JSON shapes, exit codes, one-line errors, progress only where asked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gilx import runner
from gilx.cli import main

TASKS = {
    "cpu-bound-python",
    "cpu-bound-numpy",
    "io-bound",
    "memory-bound",
    "cpu-bound-c-gil",
    "cpu-bound-c-nogil",
}


@pytest.fixture
def tiny(monkeypatch):
    """Shrink every calibrated measurement: these tests check shapes, not numbers."""
    monkeypatch.setattr(runner, "QUICK_SECONDS", 0.01)
    monkeypatch.setattr(runner, "FULL_SECONDS", 0.01)
    monkeypatch.setattr(runner, "QUICK_REPEATS", 1)
    monkeypatch.setattr(runner, "FULL_REPEATS", 1)


def gilx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gilx", *args], capture_output=True, text=True, timeout=120
    )


def one_json_object(text: str) -> dict[str, object]:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    value = json.loads(lines[0])
    assert isinstance(value, dict)
    return value


def test_table_json_has_every_row_and_nulls_where_the_seed_says_na(tiny, capsys):
    assert main(["table", "--quick", "--json"]) == 0
    out, err = capsys.readouterr()
    table = one_json_object(out)
    assert set(table) == {"cpu_count", "gil_enabled", "python", "rows"}
    assert isinstance(table["cpu_count"], int) and isinstance(table["gil_enabled"], bool)
    rows = {row["task"]: row for row in table["rows"]}
    assert set(rows) == TASKS
    for row in rows.values():
        assert set(row) == {"task", "threading", "multiprocessing", "numpy"}
        assert isinstance(row["threading"], float) and isinstance(row["multiprocessing"], float)
    assert rows["cpu-bound-numpy"]["numpy"] > 0
    assert rows["memory-bound"]["numpy"] > 0
    for task in ("cpu-bound-python", "io-bound", "cpu-bound-c-gil", "cpu-bound-c-nogil"):
        assert rows[task]["numpy"] is None
    assert err == ""  # no progress unless on a terminal or asked


def test_table_text_names_the_machine_and_the_threshold(tiny, capsys):
    assert main(["table", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "cores" in out and "GIL" in out
    assert "✓ = at least" in out


@pytest.mark.parametrize("workload", ["py", "gil", "nogil", "numpy", "io", "memory"])
def test_scale_json_shape_for_every_workload(workload, capsys):
    args = ["scale", "--workload", workload, "--workers", "1,2", "--size", "4", "--repeats", "1"]
    assert main([*args, "--json"]) == 0
    result = one_json_object(capsys.readouterr().out)
    assert result["workload"] == workload and result["mode"] == "threads"
    assert [r["workers"] for r in result["results"]] == [1, 2]
    for r in result["results"]:
        assert set(r) == {"workers", "seconds", "speedup", "efficiency"}
        assert r["efficiency"] == pytest.approx(r["speedup"] / r["workers"])


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_scale_processes_under_each_start_method(method, capsys):
    if method not in runner.start_methods():
        pytest.skip(f"{method} is not available here")
    args = ["scale", "--workload", "nogil", "--mode", "processes", "--workers", "2"]
    assert main([*args, "--size", "1000", "--repeats", "1", "--start-method", method]) == 0
    out = capsys.readouterr().out
    assert f"start method {method}" in out
    assert "start-up" in out


def test_scale_quick_calibrates_the_size(tiny, capsys):
    assert main(["scale", "--workload", "py", "--workers", "2", "--quick", "--json"]) == 0
    assert one_json_object(capsys.readouterr().out)["results"][0]["workers"] == 2


def test_race_json_shape(capsys):
    assert main(["race", "--increments", "1000", "--json"]) == 0
    results = one_json_object(capsys.readouterr().out)["results"]
    assert [r["kind"] for r in results] == ["unsafe", "atomic", "locked"]
    for r in results:
        assert r["lost"] == r["expected"] - r["observed"]


def test_probe_json_shape_and_verdict(capsys):
    assert main(["probe", "time:sleep", "0.002", "--seconds", "0.01", "--json"]) == 0
    result = one_json_object(capsys.readouterr().out)
    assert list(result) == ["callable", "releases_gil", "workers", "speedup", "hold_fraction"]
    assert result["callable"] == "time:sleep(0.002)"
    assert result["releases_gil"] is True


def test_probe_text_gives_the_verdict_and_evidence(capsys):
    assert main(["probe", "gilx:count_nogil", "100_000", "--seconds", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "held" in out and "threads" in out


def test_tour_walks_the_seed_sections_in_order(tiny, capsys):
    assert main(["tour", "--quick"]) == 0
    out = capsys.readouterr().out
    headings = [
        "refcount race",
        "threads vs one",
        "I/O",
        "NumPy releases the GIL",
        "C extensions",
        "multiprocessing",
        "vectorisation",
        "Numba",
        "future: free-threaded",
        "GIL and Hardware Utilization",
        "Decision tree",
    ]
    positions = [out.index(h) for h in headings]
    assert positions == sorted(positions)


def test_plain_gilx_is_the_tour(tiny, capsys):
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("gilx tour")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scale", "--workload", "gpu"], "invalid choice"),
        (["scale", "--workload", "py", "--workers", "0"], "must be >= 1"),
        (["scale", "--workload", "py", "--workers", "1,x"], "not an integer"),
        (["scale", "--workload", "py", "--mode", "fibers"], "invalid choice"),
        (["scale"], "required"),
        (["table", "--workers", "-3"], "must be >= 1"),
        (["race", "--threads", "0"], "must be >= 1"),
        (["race", "--threads", "2", "--increments", str(2**62)], "too large"),
        (["probe"], "required"),
        (["probe", "time"], "MODULE:CALLABLE"),
        (["probe", "no_such_module_gilx:f"], "cannot import"),
        (["probe", "time:no_such_function"], "no attribute"),
        (["probe", "sys:version"], "not callable"),
        (["probe", "time:sleep", "'a'"], "raised TypeError"),
        (["teleport"], "invalid choice"),
    ],
)
def test_bad_arguments_are_one_line_on_stderr_and_exit_2(args, message):
    done = gilx(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr


def test_json_with_progress_keeps_stdout_one_object():
    done = gilx(
        "scale", "--workload", "gil", "--workers", "2", "--size", "1000", "--json", "--progress"
    )
    assert done.returncode == 0
    one_json_object(done.stdout)
    assert "gilx:" in done.stderr


def test_python_dash_m_and_the_script_agree_on_help():
    done = gilx("--help")
    assert done.returncode == 0
    for command in ("tour", "table", "race", "scale", "probe"):
        assert command in done.stdout
