"""The table's marks, text and JSON, and the session that measures each thing once."""

from __future__ import annotations

from gilx import _measured, _present, runner
from gilx._table import GAIN_THRESHOLD, Table, TableRow, mark


def test_marks_are_read_from_the_number_at_the_threshold():
    assert mark(GAIN_THRESHOLD) == "✓"
    assert mark(GAIN_THRESHOLD - 0.01) == "✗"
    assert mark(None) == "N/A"


def sample_table() -> Table:
    rows = (
        TableRow("cpu-bound-python", "CPU-bound Python", 0.9, 1.9, None, seed=("✗", "✓", "N/A")),
        TableRow(
            "memory-bound",
            "Memory-bound",
            1.8,
            1.7,
            80.0,
            (True, False, False),
            seed=("✗", "✗", "✓"),
        ),
        TableRow("cpu-bound-c-gil", "CPU-bound C, GIL held", 1.0, 2.0, None),
        TableRow("io-bound", "I/O-bound", 1.9, 2.0, None, asyncio=3.9),
    )
    return Table(4, True, "CPython 3.x", 4, "fork", rows, load_average=0.1)


def test_render_shows_machine_threshold_and_disagreements_with_the_seed():
    text = sample_table().render()
    assert "4 cores, CPython 3.x, GIL on" in text
    assert f"✓ = at least {GAIN_THRESHOLD:.1f}x" in text
    assert "✗ 0.90x" in text and "✓ 1.80x~" in text and "N/A" in text
    assert "Memory-bound, threading: the seed says ✗, measured ✓ 1.80x" in text
    assert "CPU-bound Python, threading" not in text.split("disagrees")[-1]


def test_json_is_the_contract_shape():
    d = sample_table().to_dict()
    assert {"cpu_count", "gil_enabled", "python", "rows"} <= set(d)
    row = d["rows"][0]
    keys = ("task", "threading", "multiprocessing", "numpy", "asyncio")
    assert {k: row[k] for k in keys} == {
        "task": "cpu-bound-python",
        "threading": 0.9,
        "multiprocessing": 1.9,
        "numpy": None,
        "asyncio": None,
    }
    assert row["seed"] == {"threading": "✗", "multiprocessing": "✓", "numpy": "N/A"}
    assert d["rows"][-1]["asyncio"] == 3.9


def test_render_shows_the_asyncio_cell_on_the_io_row_and_na_elsewhere():
    lines = sample_table().render().splitlines()
    header = next(line for line in lines if line.startswith("Task Type"))
    assert header.rstrip().endswith("Asyncio")
    io = next(line for line in lines if line.startswith("I/O-bound"))
    assert io.rstrip().endswith("✓ 3.90x")
    python = next(line for line in lines if line.startswith("CPU-bound Python"))
    assert python.rstrip().endswith("N/A")


def test_session_measures_each_workload_and_mode_once(monkeypatch):
    calls: list[tuple[str, str, int | None]] = []

    def fake_scale(workload, mode, workers, *, size=None, **_):
        calls.append((workload, mode, size))
        timing = runner.Timing((1.0,))
        points = tuple(runner.ScalePoint(k, timing, 1.0) for k in workers)
        return runner.ScaleResult(workload, mode, size or 123, "units", None, timing, points)

    monkeypatch.setattr(runner, "scale", fake_scale)
    session = _measured.Measurements(quick=True, workers=2)
    session.speedup("py", "threads")
    session.speedup("py", "threads")
    session.speedup("py", "processes")
    # the processes run reuses the size calibrated for threads: the same total work
    assert calls == [("py", "threads", None), ("py", "processes", 123)]


def test_the_interpreters_column_sits_beside_multiprocessing_and_is_na_where_refused():
    rows = (
        TableRow("cpu-bound-python", "CPU-bound Python", 0.9, 1.9, None, interpreters=1.95),
        TableRow("cpu-bound-numpy", "CPU-bound NumPy", 1.9, 1.9, 50.0),
        TableRow(
            "io-bound", "I/O-bound", 1.9, 2.0, None, interpreters=1.1, interpreters_disturbed=True
        ),
    )
    table = Table(2, True, "CPython 3.13", 2, "fork", rows)
    lines = table.render().splitlines()
    header = next(line for line in lines if line.startswith("Task Type"))
    assert header.index("Multiprocessing") < header.index("Interpreters") < header.index("NumPy")
    column = header.index("Interpreters")
    python = next(line for line in lines if line.startswith("CPU-bound Python"))
    assert python[column:].startswith("✓ 1.95x")
    numpy = next(line for line in lines if line.startswith("CPU-bound NumPy"))
    assert numpy[column:].startswith("N/A")
    assert f"I/O-bound, interpreters: 1.10x, {_present.NOT_JUDGED}" in table.render()
    assert table.disturbed
    assert [r["interpreters"] for r in table.to_dict()["rows"]] == [1.95, None, 1.1]
    missing = Table(
        2,
        True,
        "CPython 3.11",
        2,
        "fork",
        rows[1:2],
        interpreters_missing="not measured here: needs CPython 3.12",
    )
    assert "[not measured here: needs CPython 3.12]" in missing.render()
