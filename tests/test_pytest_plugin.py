"""The gilx pytest plugin: the gil_watch fixture, alone and with pytest-benchmark."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]


def test_gil_watch_measures_the_test_body(pytester):
    pytester.makepyfile(
        """
        import time

        import gilx

        def test_body(gil_watch):
            time.sleep(0.05)  # releases the GIL: the watch must read it as (mostly) free
            assert gil_watch.seconds >= 0.05
            assert gil_watch.hold_fraction < 0.3 or not gilx.gil_enabled()
            assert set(gil_watch.to_dict()["latency"]) == {"p50", "p90", "p99", "max"}
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_with_benchmark_the_watch_lands_in_extra_info(pytester):
    pytest.importorskip("pytest_benchmark")
    pytester.makepyfile(
        """
        import gilx

        def test_bench(benchmark, gil_watch):
            benchmark.pedantic(gilx.count_gil, args=(100_000,), rounds=5)
        """
    )
    out = pytester.path / "bench.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--benchmark-json={out}")
    result.assert_outcomes(passed=1)
    (bench,) = json.loads(out.read_text())["benchmarks"]
    gil = bench["extra_info"]["gil"]
    assert {"seconds", "hold_fraction", "latency", "gil_enabled"} <= set(gil)
    assert gil["seconds"] > 0


def test_the_plugin_module_imports_nothing_heavy():
    code = (
        "import sys, gilx.pytest_plugin; "
        "print(sorted(m for m in ('numpy', 'gilknocker', 'pytest_benchmark') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
