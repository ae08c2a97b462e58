"""The gilx command: JSON shapes, progress only where asked (bad options: test_cli_options)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gilx import machine, runner
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
    assert {"cpu_count", "gil_enabled", "python", "rows"} <= set(table)
    assert table["workers"] >= 2 and table["gain_threshold"] > 1
    assert isinstance(table["cpu_count"], int) and isinstance(table["gil_enabled"], bool)
    rows = {row["task"]: row for row in table["rows"]}
    assert set(rows) == TASKS
    for row in rows.values():
        assert {"task", "threading", "multiprocessing", "numpy", "asyncio"} <= set(row)
        assert set(row["unstable"]) == {"threading", "multiprocessing", "numpy"}
        assert isinstance(row["threading"], float) and isinstance(row["multiprocessing"], float)
    assert rows["cpu-bound-numpy"]["numpy"] > 0
    assert rows["memory-bound"]["numpy"] > 0
    for task in ("cpu-bound-python", "io-bound", "cpu-bound-c-gil", "cpu-bound-c-nogil"):
        assert rows[task]["numpy"] is None
    assert rows["io-bound"]["asyncio"] > 0  # asyncio: measured for I/O only, N/A elsewhere
    assert all(row["asyncio"] is None for task, row in rows.items() if task != "io-bound")
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
    assert result["size"] == 4 and result["repeats"] == 1 and result["start_method"] is None
    for r in result["results"]:
        assert {"workers", "seconds", "speedup", "efficiency"} <= set(r)
        assert r["efficiency"] == pytest.approx(r["speedup"] / r["workers"])
        assert r["min"] <= r["seconds"] <= r["max"]
        assert r["startup"] is None  # threads: nothing to start


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


@pytest.mark.parametrize(
    "argv",
    [
        ["race", "--increments", "1000"],
        ["scale", "--workload", "nogil", "--workers", "1", "--size", "10", "--repeats", "1"],
        ["probe", "time:sleep", "0.001", "--seconds", "0.01"],
        ["timeline", "--workload", "nogil", "--seconds", "0.01"],
    ],
    ids=lambda argv: argv[0],
)
def test_every_json_object_starts_with_its_schema_and_the_machine(argv, capsys):
    assert main([*argv, "--json"]) == 0
    result = one_json_object(capsys.readouterr().out)
    assert list(result)[:2] == ["schema", "machine"]
    assert result["schema"] == 1
    block = result["machine"]
    assert block["cores"] == machine.cores()
    assert block["gil_enabled"] is machine.gil_enabled()
    assert block["free_threaded_build"] is machine.free_threaded_build()


def test_race_json_shape(capsys):
    assert main(["race", "--threads", "2", "--increments", "1000", "--json"]) == 0
    results = one_json_object(capsys.readouterr().out)["results"]
    assert [r["kind"] for r in results] == ["unsafe", "atomic", "locked"]
    for r in results:
        assert {"kind", "threads", "expected", "observed", "lost", "disturbed"} <= set(r)
        assert (r["threads"], r["expected"]) == (2, 2000)
        assert 0 <= r["observed"] <= r["expected"]


def test_probe_json_shape_and_verdict(capsys):
    assert main(["probe", "time:sleep", "0.002", "--seconds", "0.01", "--json"]) == 0
    result = one_json_object(capsys.readouterr().out)
    keys = ["callable", "releases_gil", "workers", "speedup", "hold_fraction", "disturbed"]
    assert [k for k in result if k in keys] == keys
    assert result["gil_enabled"] is machine.gil_enabled()
    assert result["callable"] == "time:sleep(0.002)"
    assert result["releases_gil"] is True
    assert result["disturbed"] is False or result["other_cpu"] > runner.DISTURBED_SHARE


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
        "The convoy effect",
        "NumPy releases the GIL",
        "C extensions",
        "multiprocessing",
        "an interpreter per core",
        "vectorisation",
        "Numba",
        "The future: free-threaded",  # not the bare words: a 3.13t header says them too
        "GIL and Hardware Utilization",
        "Decision tree",
        "Who holds the GIL",
    ]
    # from the first section on: the machine line above it may say "free-threaded build"
    first = out.index(headings[0])
    positions = [out.index(h, first) for h in headings]
    assert positions == sorted(positions)


def test_tour_json_is_one_object_of_sections_and_the_table(tiny, capsys):
    assert main(["tour", "--quick", "--json"]) == 0
    result = one_json_object(capsys.readouterr().out)
    titles = [s["title"] for s in result["sections"]]
    assert titles[0] == "" and any("refcount race" in t for t in titles)
    assert any("Decision tree" in t for t in titles)
    assert all(s["lines"] for s in result["sections"])  # no heading without its text
    assert {"rows", "disturbed"} <= set(result["table"])


def test_plain_gilx_is_the_tour(tiny, capsys):
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("gilx tour")


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
