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


#: The capacity reference may cost at most this share of a --quick round (1 worker + 2
#: workers, about 1.5 x QUICK_SECONDS): the tour and table measure a dozen curves.
REFERENCE_TARGET_SHARE = 0.05


@pytest.mark.benchmark(group="monitoring")
def test_capacity_reference_cost_per_round(benchmark) -> None:
    """The reference each round of a scaling curve times (count_nogil on 1 and 2 threads):
    what it adds to a round, and the capacity it reads on this machine now."""
    capacities: list[float] = []
    with runner._Reference(min(2, machine.cores())) as reference:
        benchmark.pedantic(
            lambda: capacities.append(reference.measure()), rounds=30, warmup_rounds=2
        )
    round_seconds = 1.5 * runner.QUICK_SECONDS
    benchmark.extra_info.update(
        target=f"share of a --quick round ({round_seconds:.3f} s) <= {REFERENCE_TARGET_SHARE}",
        capacity_median=round(sorted(capacities)[len(capacities) // 2], 3),
        capacity_min=round(min(capacities), 3),
    )
    if benchmark.stats is not None:
        share = benchmark.stats.stats.median / round_seconds
        benchmark.extra_info["share_of_quick_round"] = round(share, 4)
        benchmark.extra_info["target_met"] = share <= REFERENCE_TARGET_SHARE
