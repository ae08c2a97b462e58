"""The gilx pytest plugin: the gil_watch fixture, alone and with pytest-benchmark."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import gilx

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


def test_with_benchmark_the_reading_covers_the_rounds_only(pytester):
    pytest.importorskip("pytest_benchmark")
    pytester.makepyfile(
        """
        import time
        import gilx

        def test_bench(benchmark, gil_watch):
            gilx.count_gil(50_000_000)   # set-up holding the GIL: not part of the rounds
            time.sleep(0.2)              # more set-up, not part of the rounds either
            benchmark.pedantic(gilx.count_nogil, args=(1_000,), rounds=7, warmup_rounds=2)
        """
    )
    out = pytester.path / "bench.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--benchmark-json={out}")
    result.assert_outcomes(passed=1)
    (bench,) = json.loads(out.read_text())["benchmarks"]
    gil = bench["extra_info"]["gil"]
    assert gil["covers"] == "benchmark rounds"
    assert gil["rounds"] == 7 == bench["stats"]["rounds"]
    # The rounds' own time, not the test's: far less than the set-up's 0.2 s sleep.
    assert gil["seconds"] < 0.1
    assert gil["seconds"] >= bench["stats"]["total"]
    assert {"disturbed", "meter"} <= set(gil)


def test_benchmark_with_calibration_counts_only_its_statistics_rounds(pytester):
    pytest.importorskip("pytest_benchmark")
    pytester.makepyfile(
        """
        import gilx

        def test_bench(benchmark, gil_watch):
            benchmark(gilx.count_nogil, 10_000)
        """
    )
    out = pytester.path / "bench.json"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--benchmark-json={out}", "--benchmark-max-time=0.05"
    )
    result.assert_outcomes(passed=1)
    (bench,) = json.loads(out.read_text())["benchmarks"]
    assert bench["extra_info"]["gil"]["rounds"] == bench["stats"]["rounds"]


def test_a_benchmark_that_is_disabled_stores_the_whole_test_under_its_own_key(pytester):
    pytest.importorskip("pytest_benchmark")
    pytester.makepyfile(
        """
        import gilx

        def test_bench(benchmark, gil_watch):
            benchmark(gilx.count_nogil, 1_000)
            assert "gil" not in benchmark.extra_info

        def test_after(benchmark, gil_watch):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-disable")
    result.assert_outcomes(passed=2)


@pytest.mark.skipif(not gilx.gil_enabled(), reason="no GIL: nothing is held, no limit to pass")
def test_the_marker_watches_without_the_fixture_and_judges_its_limit(pytester):
    pytester.makepyfile(
        """
        import time
        import pytest
        import gilx

        @pytest.mark.gil_watch(max_hold=0.2)
        def test_holds_too_much():
            gilx.count_gil(200_000_000)

        @pytest.mark.gil_watch(max_hold=0.5)
        def test_sleeps():
            time.sleep(0.05)

        @pytest.mark.gil_watch(min_hold=0.5, interval=0.002)
        def test_holds_enough():
            gilx.count_gil(200_000_000)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    # A disturbed reading is a skip (no verdict), never a pass of the failing test.
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("skipped", 0) >= 1
    assert "test_holds_too_much" not in "".join(
        line for line in result.outlines if "PASSED" in line
    )
    result.stdout.fnmatch_lines(["*gilx: the GIL in watched tests*"])
    result.stdout.fnmatch_lines(["*test_sleeps: GIL held *(test body*"])
    if outcomes.get("failed"):
        # The failure names where the GIL was held (issue 27): the test's own function.
        result.stdout.fnmatch_lines(
            [
                "*more than max_hold=20.0%*held most at test_holds_too_much (*.py:*) in thread"
                " MainThread*"
            ]
        )


def test_the_marker_refuses_what_it_does_not_know(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.gil_watch(max_hold=2)
        def test_a():
            pass

        @pytest.mark.gil_watch(hold=0.5)
        def test_b():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*max_hold=...) must be a share between 0 and 1*"])


def test_the_options_have_their_own_group_and_are_checked(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*GIL measurements (gilx*", "*--gil-interval=SECONDS*"])
    pytester.makepyfile("def test_a(gil_watch): pass")
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gil-interval=-1")
    assert bad.ret != 0
    bad.stderr.fnmatch_lines(["*--gil-interval*"])


def test_the_summary_has_one_line_per_watched_test_unless_asked_not_to(pytester):
    pytester.makepyfile(
        """
        def test_a(gil_watch):
            pass

        def test_b(gil_watch):
            pass

        def test_c():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    lines = [line for line in result.outlines if ": GIL held " in line]
    assert len(lines) == 2
    quiet = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gil-no-summary")
    assert not [line for line in quiet.outlines if ": GIL held " in line]
