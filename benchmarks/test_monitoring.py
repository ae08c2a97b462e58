"""What measuring the disturbance costs: one CpuMeter start() + stop() per timed repeat.

The runner reads /proc/stat, this process's CPU time and each worker
process's /proc/PID/stat before and after every repeat.  The target: under
0.5 % of the shortest repeat gilx times by default (one worker doing the whole
work for about runner.QUICK_SECONDS, ``--quick``), with two worker processes
to read as well (the processes mode's case).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gilx import backends, machine, runner, workloads
from gilx.backends import Crew, Options

#: The cost may be at most this share of a --quick repeat.
TARGET_SHARE = 0.005


@pytest.fixture(scope="module")
def two_worker_processes() -> Iterator[Crew]:
    job = workloads.get("nogil")
    with backends.get("processes").open(job, "", Options()) as session:
        with session.crew(1000, 2) as crew:
            yield crew


@pytest.mark.benchmark(group="monitoring")
def test_meter_cost_per_repeat(benchmark, two_worker_processes: Crew) -> None:
    crew = two_worker_processes
    meter = machine.CpuMeter(crew.pids)

    def one_repeats_metering() -> None:
        meter.start()
        meter.stop()

    benchmark.pedantic(one_repeats_metering, rounds=200, iterations=5, warmup_rounds=5)
    benchmark.extra_info.update(
        worker_processes=len(crew.pids()),
        target=f"share of a {runner.QUICK_SECONDS} s repeat <= {TARGET_SHARE}",
    )
    if benchmark.stats is not None:
        share = benchmark.stats.stats.median / runner.QUICK_SECONDS
        benchmark.extra_info["share_of_quick_repeat"] = round(share, 6)
        benchmark.extra_info["target_met"] = share <= TARGET_SHARE
