"""Every verdict judged: probe, the assertions and race say when they cannot tell."""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from conftest import retry

import gilx
from gilx import machine, runner, testing
from gilx._probe import ProbeResult
from gilx.cli import main

# The modules, not the functions of the same names that ``gilx`` exports.
race = importlib.import_module("gilx._race")
probe_module = importlib.import_module("gilx._probe")

HOG = "while True: pass\n"

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@contextlib.contextmanager
def hogs(count: int) -> Iterator[None]:
    """``count`` processes of ours keeping a core busy each, for the block."""
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(count)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _probe_result(disturbed: bool, hold: float = 0.9) -> ProbeResult:
    timing = runner.Timing((0.1,), (0.5 if disturbed else 0.0,), disturbed)
    return ProbeResult(
        callable="f()", releases_gil=hold < 0.5, workers=2, speedup=1.0, hold_fraction=hold,
        gil_enabled=True, calls=1, one_thread=timing, many_threads=timing,
        other_cpu=0.5 if disturbed else 0.0, disturbed=disturbed,
    )


def test_a_probe_that_stays_disturbed_is_inconclusive_not_a_pass_or_a_fail(monkeypatch):
    made: list[bool] = []

    def disturbed_probe(*args: object, **kwargs: object) -> ProbeResult:
        made.append(True)
        return _probe_result(disturbed=True)

    monkeypatch.setattr(testing, "probe", disturbed_probe)
    for check in (testing.assert_releases_gil, testing.assert_holds_gil):
        made.clear()
        with pytest.raises(testing.Inconclusive, match="not judged.*other processes") as caught:
            check(len, [])
        assert not isinstance(caught.value, AssertionError)
        assert caught.value.result.disturbed
        assert len(made) == testing.ATTEMPTS  # re-measured before giving up


def test_a_disturbed_probe_is_re_measured_and_then_judged(monkeypatch):
    readings = iter([_probe_result(disturbed=True), _probe_result(disturbed=False, hold=0.9)])
    monkeypatch.setattr(testing, "probe", lambda *a, **k: next(readings))
    with pytest.raises(AssertionError, match="does not release the GIL"):
        testing.assert_releases_gil(len, [])


def test_inconclusive_is_an_exception_users_can_catch_apart_from_failures():
    assert issubclass(testing.Inconclusive, Exception)
    assert not issubclass(testing.Inconclusive, AssertionError)


def test_the_pytest_plugin_skips_an_inconclusive_test_with_its_reason(tmp_path):
    test_file = tmp_path / "test_busy.py"
    test_file.write_text(
        textwrap.dedent(
            """
            from gilx.testing import Inconclusive

            def test_busy():
                raise Inconclusive("the machine was busy", None)

            def test_fails():
                assert False
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert "1 failed, 1 skipped" in done.stdout, done.stdout
    assert "inconclusive: the machine was busy" in done.stdout


def test_probe_json_says_whether_it_was_disturbed(capsys):
    assert main(["probe", "time:sleep", "0.002", "--seconds", "0.01", "--json"]) == 0
    result = __import__("json").loads(capsys.readouterr().out)
    assert isinstance(result["disturbed"], bool)
    assert result["other_cpu"] is None or 0.0 <= result["other_cpu"] <= 1.0


def test_a_disturbed_probe_prints_no_verdict(monkeypatch, capsys):
    monkeypatch.setattr(probe_module, "probe", lambda *a, **k: _probe_result(disturbed=True))
    assert main(["probe", "gilx:count_gil", "1000"]) == 0
    out = capsys.readouterr().out
    assert "not judged" in out
    assert "verdict" not in out


@linux_only
def test_with_cpu_hogs_probe_says_disturbed_not_judged(capsys):
    # Every core kept busy twice over: the probe's thread gets at most half a core,
    # and the meter must see it.
    def seen() -> bool:
        with hogs(2 * machine.cores()):
            assert main(["probe", "gilx:count_nogil", "100_000", "--seconds", "0.05"]) == 0
        out = capsys.readouterr().out
        return "not judged" in out and "verdict" not in out

    assert retry(2, seen)


def test_a_race_whose_threads_never_ran_together_is_not_judged(monkeypatch, capsys):
    # One thread finished a whole second before the other: nothing raced.
    monkeypatch.setattr(race, "_run_threads", lambda c, n, each, cancel: (n * each, [0.0, 1.0]))
    result = race.race("unsafe", 2, 100_000)
    assert result.lost == 0
    assert (result.overlap, result.overlapped, result.judged) == (0.0, False, False)
    assert main(["race", "--kind", "unsafe", "--increments", "100000"]) == 0
    out = capsys.readouterr().out
    assert "threads did not overlap — not judged" in out
    assert " 0 " not in out.splitlines()[2]  # no "lost 0" stated


def test_a_race_that_lost_updates_overlapped_whatever_the_clocks_say(monkeypatch):
    monkeypatch.setattr(race, "_run_threads", lambda counter, n, each, cancel: (each, [0.0, 1.0]))
    result = race.race("unsafe", 2, 100_000)
    assert result.lost == 100_000
    assert result.overlapped and result.judged


def test_a_race_that_stays_unjudged_is_run_again(monkeypatch):
    runs: list[int] = []

    def apart(counter: object, n: int, each: int, cancel: object) -> tuple[int, list[float]]:
        runs.append(1)
        return n * each, [0.0, 1.0]

    monkeypatch.setattr(race, "_run_threads", apart)
    race.race("atomic", 2, 1000)
    assert len(runs) == race.ATTEMPTS


def test_threads_ending_together_overlapped(monkeypatch):
    monkeypatch.setattr(race, "_run_threads", lambda c, n, each, cancel: (n * each, [5.0] * n))
    result = race.race("atomic", 3, 100_000)
    assert result.overlap == 1.0 and result.overlapped


def test_race_json_results_carry_the_judgement(capsys):
    assert main(["race", "--increments", "100000", "--json"]) == 0
    for r in __import__("json").loads(capsys.readouterr().out)["results"]:
        assert isinstance(r["disturbed"], bool) and isinstance(r["overlapped"], bool)
        assert 0.0 <= r["overlap"] <= 1.0
        assert r["overlapped"] == (r["lost"] > 0 or r["overlap"] > 0)


@linux_only
def test_under_cpu_hogs_an_unsafe_race_never_reports_lost_0_as_a_verdict(capsys):
    with hogs(2 * machine.cores()):
        results = [gilx.race("unsafe", 2, 1_000_000) for _ in range(3)]
    for r in results:
        # Either the threads raced and the loss shows it, or the race says it cannot tell.
        assert r.lost > 0 or not r.judged, r
