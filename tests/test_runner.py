"""The runner: speedup defined once, work split fairly, threads and processes started together."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

import pytest

from gilx import runner, workloads
from gilx.backends import Options


def test_speedup_is_one_worker_time_over_k_worker_time():
    assert runner.speedup(2.0, 1.0) == 2.0
    assert runner.speedup(1.0, 2.0) == 0.5
    assert runner.efficiency(runner.speedup(3.0, 1.0), 4) == 0.75


@pytest.mark.parametrize(("total", "workers"), [(10, 3), (0, 2), (7, 7), (5, 8), (1_000_001, 2)])
def test_split_shares_add_up_and_differ_by_at_most_one(total, workers):
    shares = runner.split(total, workers)
    assert len(shares) == workers
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


def test_timing_reports_median_and_spread():
    t = runner.Timing((1.0, 1.2, 1.1))
    assert t.median == 1.1
    assert (t.minimum, t.maximum) == (1.0, 1.2)
    assert t.spread == pytest.approx(0.2 / 1.1)
    assert t.unstable
    assert not runner.Timing((1.0, 1.05, 1.02)).unstable


class Recorder:
    """A job that records the shares it was given."""

    def __init__(self) -> None:
        self.shares: list[int] = []

    def prepare(self, share: int, endpoint: str, /) -> Callable[[], object]:
        self.shares.append(share)
        return lambda: None


def test_threads_split_the_total_and_repeat():
    job = Recorder()
    run = runner.measure(job, 10, 3, repeats=4)
    assert sorted(job.shares) == [3, 3, 4]
    assert len(run.timing.samples) == 4  # disturbed repeats are replaced, not added
    assert all(seconds >= 0 for seconds in run.timing.samples)
    assert len(run.timing.other_cpu_samples) == len(run.timing.samples)  # every repeat was metered
    assert run.startup is None


class Failing:
    def prepare(self, share: int, endpoint: str, /) -> Callable[[], object]:
        def boom() -> None:
            raise ZeroDivisionError("from a worker")

        return boom


def test_a_failing_worker_thread_raises_in_the_caller():
    with pytest.raises(ZeroDivisionError, match="from a worker"):
        runner.measure(Failing(), 4, 2, repeats=2)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_processes_work_under_each_start_method(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    run = runner.measure(
        workloads.get("nogil"),
        10_000,
        2,
        repeats=2,
        mode="processes",
        options=Options(start_method=method),
    )
    assert len(run.timing.samples) == 2
    assert run.startup is not None and run.startup >= 0


def test_a_failing_worker_process_raises_in_the_parent():
    # The io workload refuses any address but the loopback one, in the child.
    with pytest.raises(RuntimeError, match=r"only talks to 127\.0\.0\.1"):
        runner.measure(
            workloads.get("io"),
            2,
            2,
            mode="processes",
            endpoint="http://example.com/",
        )


def test_scale_measures_one_worker_as_the_baseline():
    result = runner.scale("gil", "threads", [2], size=20_000, repeats=2)
    assert [p.workers for p in result.points] == [2]
    assert result.baseline.samples and len(result.baseline.samples) == 2
    point = result.point(2)
    assert point.speedup == pytest.approx(runner.speedup(result.baseline.median, point.seconds))
    assert point.efficiency == pytest.approx(point.speedup / 2)
    d = result.to_dict()
    assert (d["workload"], d["mode"], d["results"]) == ("gil", "threads", [point.to_dict()])
    assert (d["size"], d["repeats"], d["start_method"]) == (20_000, 2, None)
    assert d["baseline"]["min"] <= d["baseline"]["seconds"] <= d["baseline"]["max"]
    p = point.to_dict()
    assert {"workers", "seconds", "speedup", "efficiency"} <= set(p)
    assert (p["min"], p["max"]) == (point.timing.minimum, point.timing.maximum)


def test_scale_on_one_worker_has_speedup_one():
    result = runner.scale("nogil", "processes", [1], size=10_000, repeats=1)
    assert result.point(1).speedup == 1.0
    assert result.start_method == runner.default_start_method()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workload": "nope"}, "unknown workload"),
        ({"workload": "py", "mode": "fibers"}, "mode must be one of"),
        ({"workload": "py", "workers": [0]}, "workers must be between"),
        ({"workload": "py", "workers": []}, "at least one"),
        ({"workload": "py", "mode": "processes", "start_method": "teleport"}, "start method"),
    ],
)
def test_scale_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        runner.scale(**kwargs, size=10)


def test_calibrate_grows_the_size_towards_the_target():
    calls: list[int] = []

    def make(size: int) -> Callable[[], object]:
        calls.append(size)
        return lambda: sum(range(size))

    size = runner.calibrate(make, 1, 0.01)
    assert size > 1
    assert calls == sorted(calls)


@pytest.mark.thread_unsafe(reason="times the machine: copies in other threads take its cores")
def test_calibration_lands_near_its_target():
    # count_nogil's cost is linear in n: the calibrated size must take about the
    # target.  A busy machine can slow one timing, so the best of three is judged.
    import gilx

    target = 0.05
    size = runner.calibrate(lambda n: lambda: gilx.count_nogil(n), 1000, target)

    def took() -> float:
        start = runner.clock()
        gilx.count_nogil(size)
        return runner.clock() - start

    best = min(took() for _ in range(3))
    assert 0.5 * target <= best <= 2.0 * target, (size, best)
