"""tools/benchmarks_md.py: the free-threaded section beside a GIL build.

tools/ is not a package: the script is loaded by path.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "benchmarks_md.py"
RUN = ROOT / "benchmarks" / "results" / "cpython3.11-2core.json"
SECTION = "## Free-threaded CPython (3.13t) beside a GIL build of the same source"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_md", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("benchmarks_md", module)  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


bmd = load_script()


def bench(
    group: str, name: str, median: float, n: int, scenario: str, workers: int, foreign: float = 0.0
) -> dict[str, Any]:
    return {
        "group": group,
        "name": name,
        "stats": {"median": median, "iqr": 0.0, "min": median, "max": median, "rounds": 5},
        "extra_info": {"n": n, "scenario": scenario, "workers": workers, "foreign_cpu": foreign},
    }


def run(
    version: str,
    gil_enabled: bool,
    times: dict[str, float],
    n_py: int = 1_000_000,
    skip: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A --benchmark-json dict with the six thread benchmarks (median times in seconds)."""
    benches = []
    for key, median in times.items():
        if key in skip:
            continue
        if key.startswith("py"):
            workers = int(key[2])
            name = f"test_count_py_threads[{workers}thread]"
            benches.append(bench("cpu-python", name, median, n_py, "count_py-threads", workers))
        else:
            function, workers = key[:-1], int(key[-1])
            name = f"test_count_c_threads[{function}-{workers}thread]"
            benches.append(
                bench("cpu-c", name, median, 1_000_000_000, f"{function}-threads", workers)
            )
    return {
        "machine_info": {
            "python_implementation": "CPython",
            "python_version": version,
            "gilx": {"gil_enabled": gil_enabled},
        },
        "datetime": f"2026-11-26T00:00:0{int(gil_enabled)}",
        "benchmarks": benches,
    }


GIL_TIMES = {
    "py1": 0.020,
    "py2": 0.021,
    "count_gil1": 0.250,
    "count_gil2": 0.250,
    "count_nogil1": 0.250,
    "count_nogil2": 0.126,
}
FT_TIMES = {
    "py1": 0.025,
    "py2": 0.0125,
    "count_gil1": 0.2525,
    "count_gil2": 0.130,
    "count_nogil1": 0.260,
    "count_nogil2": 0.131,
}


def builds(ft: dict[str, Any], gil: dict[str, Any]) -> tuple[Any, Any]:
    return (bmd.Build.from_json(ft, Path("ft.json")), bmd.Build.from_json(gil, Path("gil.json")))


def section(text: str) -> str:
    start = text.index(SECTION)
    return text[start : text.index("## Every group", start)]


def row(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {label}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_section_only_with_both_runs() -> None:
    data = json.loads(RUN.read_text(encoding="utf-8"))
    plain = bmd.render(data, RUN)
    assert SECTION not in plain
    assert f"from {RUN.as_posix()}; do not edit" in plain
    both = bmd.render(data, RUN, *builds(data, data))
    assert both.index("## Targets") < both.index(SECTION) < both.index("## Every group")
    assert "ft.json (free-threaded) and gil.json (GIL build)" in both.splitlines()[2]
    assert row(section(both), "`test_count_py_threads[2thread]`")[-1] == "1.00"
    with pytest.raises(ValueError):
        bmd.render(data, RUN, builds(data, data)[0])


def test_synthetic_numbers() -> None:
    ft, gil = builds(run("3.13.5", False, FT_TIMES), run("3.13.5", True, GIL_TIMES))
    text = section(bmd.render(run("3.11.7", True, GIL_TIMES), Path("main.json"), ft, gil))
    assert "Free-threaded: CPython 3.13.5, GIL enabled: False (`ft.json`" in text
    assert "GIL build: CPython 3.13.5, GIL enabled: True (`gil.json`" in text
    # 20 ms / 1e6 = 20 ns; 25 ms / 1e6 = 25 ns; ratio 1.25
    assert row(text, "`test_count_py_threads[1thread]`") == [
        "`test_count_py_threads[1thread]`",
        "20.000",
        "1.000",
        "25.000",
        "1.000",
        "1.25",
    ]
    assert row(text, "`test_count_py_threads[2thread]`") == [
        "`test_count_py_threads[2thread]`",
        "21.000",
        "0.952",
        "12.500",
        "2.000",
        "0.60",
    ]
    assert row(text, "`test_count_c_threads[count_nogil-2thread]`")[1:] == [
        "0.126",
        "1.984",
        "0.131",
        "1.985",
        "1.04",
    ]
    assert row(text, "pure-Python threads on 3.13t")[1:3] == ["2.000", "met"]
    assert row(text, "count_gil, one thread")[1:3] == ["+1.0 % per iteration", "met"]
    assert row(text, "count_nogil, one thread")[1:3] == ["+4.0 % per iteration", "**missed**"]
    assert row(text, "single-thread price")[1:3] == ["+25.0 % per iteration", bmd.DASH]
    assert row(text, "2 free-threaded threads vs 1 thread")[1:3] == ["speedup 1.600", bmd.DASH]


def test_different_n_compares_per_iteration() -> None:
    ft, gil = builds(run("3.13.5", False, FT_TIMES, n_py=500_000), run("3.13.5", True, GIL_TIMES))
    text = section(bmd.render(run("3.11.7", True, GIL_TIMES), Path("main.json"), ft, gil))
    # GIL 20 ns per iteration, free-threaded 2 threads 25 ns per iteration
    measured = row(text, "2 free-threaded threads vs 1 thread")[1]
    assert measured.startswith("speedup 0.800 (the files' n differ: 1,000,000 vs 500,000")


def test_missing_benchmark_not_measured() -> None:
    ft, gil = builds(
        run("3.13.5", False, FT_TIMES, skip=("py2", "count_gil1")),
        run("3.13.5", True, GIL_TIMES, skip=("count_nogil1",)),
    )
    text = section(bmd.render(run("3.11.7", True, GIL_TIMES), Path("main.json"), ft, gil))
    assert row(text, "`test_count_py_threads[2thread]`")[3:] == [
        "not measured",
        "not measured",
        bmd.DASH,
    ]
    assert row(text, "`test_count_c_threads[count_nogil-1thread]`")[1:3] == [
        "not measured",
        "not measured",
    ]
    assert row(text, "pure-Python threads on 3.13t")[1:3] == ["not measured", bmd.DASH]
    assert row(text, "count_gil, one thread")[1:3] == ["not measured", bmd.DASH]
    assert row(text, "2 free-threaded threads vs 1 thread")[1] == "not measured"


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "B.md"
    assert (
        bmd.main([str(RUN), "--free-threaded", str(RUN), "--gil-build", str(RUN), "-o", str(out)])
        == 0
    )
    assert SECTION in out.read_text(encoding="utf-8")
    for option in ("--free-threaded", "--gil-build"):
        with pytest.raises(SystemExit) as exit_info:
            bmd.main([str(RUN), option, str(RUN)])
        assert exit_info.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(errors) == 1
        assert errors[0].endswith(
            "error: --free-threaded and --gil-build go together: give both or neither"
        )


def convoy_bench(name: str, median: float, foreign: float = 0.0, **info: Any) -> dict[str, Any]:
    return {
        "group": "convoy",
        "name": name,
        "stats": {"median": median, "iqr": 0.0, "min": median, "max": median, "rounds": 7},
        "extra_info": {"foreign_cpu": foreign, **info},
    }


def convoy_run() -> dict[str, Any]:
    benches = [
        convoy_bench("a", 0.100, call="count_nogil", thread="worker", company="alone"),
        convoy_bench(
            "b",
            0.580,
            0.02,
            call="count_nogil",
            thread="worker",
            company="beside",
            target="slowdown <= 1.1",
        ),
        convoy_bench("c", 0.100, call="stream_sum", thread="main", company="alone"),
        convoy_bench(
            "d", 0.120, call="stream_sum", thread="main", company="beside", target="slowdown <= 1.3"
        ),
        convoy_bench(
            "e",
            0.1,
            ctrl_c_latency_s=0.004,
            ctrl_c_latency_max_s=0.006,
            target="ctrl_c_latency_max_s <= 0.1",
        ),
        convoy_bench(
            "f",
            0.1,
            call="sleep",
            thread="worker",
            company="alone",
            sleep_p50_s=0.00108,
            sleep_p99_s=0.0012,
        ),
        convoy_bench(
            "g",
            0.6,
            call="sleep",
            thread="worker",
            company="beside",
            sleep_p50_s=0.00648,
            sleep_p99_s=0.0098,
        ),
    ]
    data = run("3.11.7", True, GIL_TIMES)
    return {**data, "benchmarks": benches}


def test_convoy_section_only_where_a_file_has_the_group() -> None:
    plain = bmd.render(run("3.11.7", True, GIL_TIMES), Path("main.json"))
    assert bmd.CONVOY_SECTION not in plain
    text = bmd.render(
        run("3.11.7", True, GIL_TIMES),
        Path("main.json"),
        convoy=[bmd.Build.from_json(convoy_run(), Path("convoy.json"))],
    )
    part = text[text.index(bmd.CONVOY_SECTION) : text.index("## Every group")]
    assert "(`convoy.json`" in part
    assert row(part, "`count_nogil`") == [
        "`count_nogil`",
        "worker thread",
        "100.0",
        "580.0",
        "5.80x",
        "<= 1.1",
        "**missed**",
        "2 %",
    ]
    assert row(part, "`stream_sum`")[4:7] == ["1.20x", "<= 1.3", "met"]
    assert row(part, "Ctrl-C in `count_nogil`")[3:7] == [
        "4.0 (max 6.0)",
        bmd.DASH,
        "max <= 100 ms",
        "met",
    ]
    assert row(part, "1 ms `time.sleep`")[2:6] == [
        "1.08 / 1.20",
        "6.48 / 9.80",
        "6.00x (p50)",
        "reported",
    ]


def test_convoy_option(tmp_path: Path) -> None:
    convoy = tmp_path / "convoy.json"
    convoy.write_text(json.dumps(convoy_run()), encoding="utf-8")
    out = tmp_path / "B.md"
    assert (
        bmd.main([str(RUN), "--convoy", str(convoy), "--convoy", str(convoy), "-o", str(out)]) == 0
    )
    assert out.read_text(encoding="utf-8").count("`count_nogil` | worker thread") == 2


def instrument_bench(rows: list[dict[str, Any]], worst: float) -> Any:
    result = {
        "rows": rows,
        "worst_abs_error": {"gilx": worst, "py-spy": 0.2},
        "worst_abs_error_all_cells": {"gilx": 0.3, "py-spy": 0.2},
        "worst_abs_error_by_kind": {"spin": {"gilx": worst}, "sleep": {"gilx": worst}},
        "disturbed_cells": 1,
        "seconds_per_cell": 6.0,
        "heartbeat_priority": "fifo",
        "load_average": [0.1, 0.2, 0.3],
    }
    return bmd.Bench.from_json(
        {
            "group": "instrument",
            "name": "test_hold_fraction_error",
            "stats": {"median": 1.0, "iqr": 0.0, "min": 1.0, "max": 1.0, "rounds": 1},
            "extra_info": {"instrument_error": result, "foreign_cpu": 0.0},
        }
    )


def cell(error: float, disturbed: bool = False) -> dict[str, Any]:
    return {
        "estimate": 0.25 + error,
        "truth": 0.25,
        "error": error,
        "noise": 0.006,
        "late_share": 0.001,
        "other_cores": 0.01,
        "disturbed": disturbed,
    }


def test_the_instrument_table_shows_blocking_releases_and_what_was_not_judged():
    rows = [
        {"kind": "spin", "period_ms": 5.0, "hold": 0.25, "gilx": cell(0.01), "py-spy": cell(0.1)},
        {
            "kind": "sleep",
            "period_ms": 4.0,
            "hold": 0.25,
            "gilx": cell(0.3, disturbed=True),
            "py-spy": cell(-0.2),
        },
    ]
    bench = instrument_bench(rows, worst=0.01)
    text = "\n".join(bmd.instrument_section([bench]))
    assert "| spin | 5 ms | 0.25 | 0.250 | +0.010 | +0.100 |" in text
    assert "| sleep | 4 ms | 0.25 | 0.250 | +0.300 | -0.200 |" in text
    assert "(disturbed: not judged)" in text and "py-spy's estimate" in text
    (target,) = bmd.instrument_target_rows([bench])
    assert "spin and that block: <= 0.03" in target[0] and target[2] == "met"
    (missed,) = bmd.instrument_target_rows([instrument_bench(rows, worst=0.04)])
    assert missed[2] == "**missed**"


def interpreters_run() -> dict[str, Any]:
    """A run of benchmarks/test_interpreters.py (median seconds, extra_info as it records)."""

    def b(group: str, name: str, median: float, **info: Any) -> dict[str, Any]:
        return {
            "group": group,
            "name": name,
            "stats": {"median": median, "iqr": 0.0, "min": median, "max": median, "rounds": 5},
            "extra_info": {"foreign_cpu": 0.01, **info},
        }

    benches = [
        b("interpreters", "test_count_py[1-interpreters]", 0.200),
        b("interpreters", "test_count_py[2-interpreters]", 0.100),
        b("interpreters", "test_count_py[1-processes]", 0.200, start_method="fork"),
        b("interpreters", "test_count_py[2-processes]", 0.105, start_method="fork"),
        b("worker-costs", "test_startup[process]", 0.003, memory_bytes=2 << 20),
        b("worker-costs", "test_startup[interpreter]", 0.030, memory_bytes=6 << 20),
        b("worker-costs", "test_passing[process-64KiB]", 60e-6, bytes=65536),
        b("worker-costs", "test_passing[interpreter-64KiB]", 20e-6, bytes=65536),
    ]
    return {**run("3.13.0", True, GIL_TIMES), "benchmarks": benches}


def test_interpreters_section_shows_both_backends_and_the_cost_ratios(tmp_path: Path) -> None:
    plain = bmd.render(run("3.11.7", True, GIL_TIMES), Path("main.json"))
    assert bmd.INTERPRETERS_SECTION not in plain
    path = tmp_path / "interp.json"
    path.write_text(json.dumps(interpreters_run()), encoding="utf-8")
    out = tmp_path / "B.md"
    assert bmd.main([str(RUN), "--interpreters", str(path), "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    part = text[text.index(bmd.INTERPRETERS_SECTION) : text.index("## Every group")]
    assert "processes start with fork" in part
    assert row(part, "interpreters")[1:4] == ["200.0 ms", "100.0 ms", "2.00x"]
    assert row(part, "processes")[3] == "1.90x"
    assert row(part, "start-up (to ready)") == ["start-up (to ready)", "3.0 ms", "30.0 ms", "0.10x"]
    assert row(part, "memory (one more worker)")[1:] == ["2.0 MiB", "6.0 MiB", "0.33x"]
    assert row(part, "64 KiB round trip")[1:] == ["60.0 µs", "20.0 µs", "3.00x"]


def test_the_blame_section_puts_gilx_beside_the_truth_and_py_spy():
    rows = [
        {
            "thread": "A",
            "function": "spin_python",
            "truth_held": [0.40, 0.45],
            "gilx_held": 0.43,
            "gilx_error": 0.0,
            "pyspy_held": 0.42,
            "truth_share_of_waiting": 0.45,
            "gilx_share_of_waiting": 0.46,
            "gilx_share_error": 0.01,
            "truth_share_range": [0.42, 0.48],
            "gilx_share_range_error": 0.0,
        },
        {
            "thread": "D",
            "function": "burn_released",
            "truth_held": [0.0, 0.1],
            "gilx_held": 0.001,
            "gilx_error": 0.0,
            "pyspy_held": None,
            "truth_share_of_waiting": 0.0,
            "gilx_share_of_waiting": 0.002,
            "gilx_share_error": 0.002,
            "truth_share_range": [0.0, 0.1],
            "gilx_share_range_error": 0.0,
        },
    ]
    accuracy = {
        "rows": rows,
        "on_A_B_C": 0.995,
        "on_D_E": 0.002,
        "judged": False,
        "gilx_vs_pyspy_max_abs": 0.01,
        "euid": 1001,
        "disturbed": True,
        "others_share": 0.2,
        "pyspy_problem": None,
        "seconds": 6.0,
        "python": "3.11.7",
        "load_average": [1.0, 2.0, 3.0],
    }
    cost = {
        "triples": 20,
        "load_average": [1.0, 1.0, 1.0],
        "gil_per_beat_us": {"watch": 1.5, "top": 9.0},
        "sampler_cpu_share": 0.014,
        "watch": {"cost": 0.004, "quartiles": [0.0, 0.01]},
        "top": {"cost": 0.012, "quartiles": [0.0, 0.02]},
        "top_vs_watch": {"cost": 0.008, "quartiles": [0.0, 0.02]},
    }
    benches = [
        bmd.Bench.from_json(
            {
                "group": "blame",
                "name": name,
                "stats": {"median": 1.0, "iqr": 0.0, "min": 1.0, "max": 1.0, "rounds": 1},
                "extra_info": {key: value, "foreign_cpu": 0.0},
            }
        )
        for name, key, value in (
            ("test_blame_accuracy", "blame_accuracy", accuracy),
            ("test_blame_cost", "blame_cost", cost),
        )
    ]
    text = "\n".join(bmd.blame_section(benches))
    assert "| A | `spin_python` | 0.400 .. 0.450 | 0.430 | 0.000 | 0.420 | 0.420 .. 0.480 |" in text
    assert "ordinary user (uid 1001)" in text and "differ by at most 0.010" in text
    assert "| D | `burn_released` | 0.000 .. 0.100 | 0.001 | 0.000 | - |" in text
    assert "99.5% of the waiting on A, B and C" in text and "not judged (disturbed)" in text
    assert "9.0 µs with it" in text and "1.40% of one core" in text
    assert bmd.blame_section([]) == []
