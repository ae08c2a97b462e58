"""Every verdict judged: probe, the assertions and race say when they cannot tell."""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from conftest import fake_cpu_meter, retry

import gilx
from gilx import _judgement, _pytest_gil, machine, runner, testing
from gilx._probe import ProbeResult
from gilx.cli import main
from gilx.instrument import Latency, Reading

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
        callable="f()",
        releases_gil=hold < 0.5,
        workers=2,
        speedup=1.0,
        hold_fraction=hold,
        gil_enabled=True,
        calls=1,
        one_thread=timing,
        many_threads=timing,
        other_cpu=0.5 if disturbed else 0.0,
        disturbed=disturbed,
    )


def test_a_probe_that_stays_disturbed_is_inconclusive_not_a_pass_or_a_fail(monkeypatch):
    made: list[bool] = []

    def disturbed_probe(*args: object, **kwargs: object) -> ProbeResult:
        made.append(True)
        return _probe_result(disturbed=True)

    monkeypatch.setattr(testing, "probe", disturbed_probe)
    for check in (testing.assert_releases_gil, testing.assert_holds_gil):
        made.clear()
        with pytest.raises(testing.Inconclusive, match=r"not judged.*other processes") as caught:
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
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
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


# ---------------------------------------------------------------------------
# One judgement: the heartbeat's own reading counts, not only the timing runs.
# ---------------------------------------------------------------------------
def _late_reading(hold: float) -> Reading:
    """A reading whose heartbeat waited for a CPU at 40 % of its instants (an unprivileged
    heartbeat behind the holder): the hold fraction it gives may be far off."""
    return Reading(
        seconds=0.2,
        hold_fraction=hold,
        latency=Latency(0.0, 0.0, 0.0, 0.0),
        gil_enabled=True,
        samples=1000,
        missed=0,
        beats=1000,
        cost_per_beat=1e-6,
        late=400,
        other_cores=0.0,
        steal_cores=0.0,
        others_share=0.0,
        disturbed=True,
    )


def test_a_disturbed_heartbeat_reading_gives_no_verdict_even_when_the_timings_are_quiet(
    monkeypatch,
):
    monkeypatch.setattr(machine, "CpuMeter", fake_cpu_meter(itertools.repeat(0.0)))
    quiet = runner.Timing((0.1,), (0.0,))
    # What an unprivileged heartbeat read for a function truly holding the GIL 25 % of the time.
    monkeypatch.setattr(
        probe_module, "_held", lambda job, total, repeats: (quiet, _late_reading(0.04))
    )
    result = gilx.probe(time.sleep, 0.0001, seconds=0.01, repeats=1)
    assert not result.one_thread.disturbed and not result.many_threads.disturbed
    assert result.disturbed and not result.judged.judged
    assert "the heartbeat waited for a CPU at 40.0% of the instants" in result.judged.reasons
    text = result.render()
    assert "not judged: the heartbeat waited for a CPU" in text and "verdict:" not in text
    assert result.to_dict()["disturbed"] is True
    for check in (
        lambda: testing.assert_releases_gil(time.sleep, 0.0001, max_hold=0.1),
        lambda: testing.assert_holds_gil(time.sleep, 0.0001, min_hold=0.01),
    ):
        with pytest.raises(testing.Inconclusive, match="heartbeat waited for a CPU"):
            check()


def test_the_plugin_gives_no_verdict_on_a_disturbed_reading():
    problem = _pytest_gil._limit_problem(_late_reading(0.04), "test body", 0.1, None)
    assert problem is not None and problem.startswith("gil_watch: no verdict (the heartbeat")


def test_judgements_combine_and_say_every_reason_once():
    busy = _judgement.busy(0.3)
    unstable = _judgement.Judgement(False, ("its speedup varied",), 0.05)
    quiet = _judgement.Judgement(True, (), 0.01)
    both = _judgement.combine(busy, unstable, quiet, _judgement.busy(0.5))
    assert not both.judged and both.disturbed
    assert both.reasons == (
        "other processes took up to 50% of the CPU time it needed",
        "its speedup varied",
    )
    assert _judgement.combine(quiet, quiet).judged
    assert not _judgement.combine(quiet, _judgement.Judgement(metered=False)).metered


def _timing(samples: tuple[float, ...]) -> runner.Timing:
    return runner.Timing(samples, (0.0,) * len(samples))


def test_an_unstable_speedup_is_not_judged():
    # Round by round the speedup went 1.0, 1.5, 1.0: the machine's speed changed.
    baseline = _timing((1.0, 1.5, 1.0))
    two = _timing((1.0, 1.0, 1.0))
    j = _judgement.of_speedup(baseline, two, workers=2, needed=2, capacity=2.0)
    assert not j.judged and "varied by 50% from round to round" in j.why()
    steady = _judgement.of_speedup(
        _timing((1.0, 1.5, 1.2)), _timing((0.5, 0.75, 0.6)), workers=2, needed=2, capacity=1.95
    )
    assert steady.judged, steady.reasons  # slow rounds slow both: the ratio holds


def test_a_speedup_measured_while_the_machine_gave_too_few_cores_is_not_judged():
    j = _judgement.of_speedup(
        _timing((1.0, 1.0)), _timing((0.7, 0.7)), workers=2, needed=2, capacity=1.3
    )
    assert not j.judged and "got only 1.30 cores' worth" in j.why()
    assert j.capacity == 1.3
    # ... nor one whose reference read more cores than there are: its window is inconsistent.
    j = _judgement.of_speedup(
        _timing((1.0, 1.0)), _timing((0.5, 0.5)), workers=2, needed=2, capacity=2.5
    )
    assert not j.judged and "more than there are" in j.why()


def test_scale_interleaves_the_worker_counts_and_re_measures_until_judged(monkeypatch):
    """Rounds alternate 1 and 2 workers; an unstable start is re-measured, then judged."""
    monkeypatch.setattr(machine, "cores", lambda: 2)
    order: list[int] = []
    times = {1: iter([1.0, 1.6, 1.0, 1.0, 1.0, 1.0]), 2: iter([0.5] * 6)}

    class Crew:
        def __init__(self, k: int) -> None:
            self.k = k
            self.startup = None

        def go(self) -> tuple[float, float]:
            order.append(self.k)
            return 0.0, next(times[self.k])

        def pids(self) -> frozenset[int]:
            return frozenset()

    class Reference:
        def measure(self) -> float:
            return 2.0

    monkeypatch.setattr(machine, "CpuMeter", fake_cpu_meter(itertools.repeat(0.0)))
    timings, capacity = runner._rounds({1: Crew(1), 2: Crew(2)}, 3, frozenset, Reference())
    assert order[:6] == [1, 2, 1, 2, 1, 2]  # interleaved, not all of 1 then all of 2
    assert timings[1].samples == (1.0, 1.0, 1.0)  # the window after the unstable round
    assert capacity == 2.0


# ---------------------------------------------------------------------------
# Honest where it cannot see: no /proc.
# ---------------------------------------------------------------------------
@pytest.fixture
def no_proc(monkeypatch, tmp_path):
    monkeypatch.setattr(machine, "PROC", str(tmp_path / "no-proc"))
    meter = machine.CpuMeter()
    meter.start()
    assert meter.stop() is None


def test_without_proc_scale_says_it_cannot_measure_disturbance(no_proc, capsys):
    assert main(["scale", "--workload", "nogil", "--workers", "1,2", "--quick", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["note"] == _judgement.CANNOT_METER
    for point in d["results"]:
        assert point["other_cpu"] is None
        assert point["judgement"]["metered"] is False
        assert point["judgement"]["note"] == _judgement.CANNOT_METER
    assert main(["scale", "--workload", "nogil", "--workers", "1,2", "--quick"]) == 0
    assert "cannot measure disturbance here" in capsys.readouterr().out


def test_without_proc_probe_and_the_assertions_say_so(no_proc, capsys):
    assert main(["probe", "gilx:count_gil", "200000", "--seconds", "0.02", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["other_cpu"] is None and d["note"] == _judgement.CANNOT_METER
    assert main(["probe", "gilx:count_gil", "200000", "--seconds", "0.02"]) == 0
    assert "cannot measure disturbance here" in capsys.readouterr().out
    # A failing assertion (or an inconclusive one) says it could not meter the machine.
    # (time.sleep holds nothing: a failure with a GIL, "no GIL" without one; never a pass.)
    with pytest.raises((AssertionError, testing.Inconclusive), match="cannot measure disturbance"):
        testing.assert_holds_gil(time.sleep, 0.001, min_hold=0.9, seconds=0.05)


def test_without_proc_watch_json_has_null_other_cpu_and_a_note(no_proc, tmp_path, capsys):
    script = tmp_path / "work.py"
    script.write_text("import time\ntime.sleep(0.05)\n")
    assert main(["watch", "--json", str(script)]) == 0
    d = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert d["other_cpu"] is None and d["note"] == _judgement.CANNOT_METER
    assert d["judgement"]["metered"] is False
    assert main(["watch", str(script)]) == 0
    assert "note: cannot measure disturbance here" in capsys.readouterr().err


def test_without_proc_a_race_says_so(no_proc):
    result = gilx.race("atomic", 2, 10_000)
    d = result.to_dict()
    assert d["other_cpu"] is None and d["note"] == _judgement.CANNOT_METER


# ---------------------------------------------------------------------------
# Output never fails on an encoding.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_output_to_a_narrow_encoding_is_replaced_never_an_error(encoding, tmp_path):
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    done = subprocess.run(
        [sys.executable, "-m", "gilx", "timeline", "--workload", "gil", "--threads", "2"],
        capture_output=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr.decode(encoding, "replace")
    out = done.stdout.decode(encoding)
    assert "Thread 0" in out and "#" in out  # the block characters' stand-in
    assert b"UnicodeEncodeError" not in done.stderr


def test_symbols_get_ascii_stand_ins_that_keep_their_meaning(tmp_path):
    code = (
        "import sys; from gilx import _present; _present.safe_streams(sys.stdout);"
        " print('\\u2713 1.80x | \\u2717 0.95x | not judged \\u2014 \\u2603')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        check=True,
    )
    assert done.stdout.decode("ascii").strip() == "yes 1.80x | no 0.95x | not judged - ?"
