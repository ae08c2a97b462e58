#!/usr/bin/env python3
"""Write BENCHMARKS.md from a pytest-benchmark ``--benchmark-json`` file of benchmarks/.

    python tools/benchmarks_md.py benchmarks/results/RUN.json -o BENCHMARKS.md

With a free-threaded run and a GIL run of the same CPython source (the
cpu-python and cpu-c files of the suite), the page also shows the two side
by side:

    python tools/benchmarks_md.py benchmarks/results/RUN.json \
        --free-threaded benchmarks/results/cpython3.13t-2core.json \
        --gil-build benchmarks/results/cpython3.13-gil-2core.json -o BENCHMARKS.md

Nothing in BENCHMARKS.md is typed by hand: every number comes from the JSON
file, and the speedups, targets and crossovers are recomputed from its
medians here (the suite's extra_info carries the same values, for anyone
reading the JSON directly), with gilx's own definition of speedup
(``gilx.timing``): run it where gilx is installed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gilx.timing import efficiency, speedup

RESULTS = Path("benchmarks/results")

#: Groups in the order BENCHMARKS.md shows them, with what each one shows.
GROUPS: dict[str, str] = {
    "cpu-python": "Pure-Python counting (`count_py`, the seed's `cpu_bound_task`): threads share "
    "one GIL, processes each have their own. Starting the processes is excluded (see "
    "`process-start`). `count_gil-*process`: the control, the C kernel on the same backend.",
    "process-start": "Starting 2 worker processes of gilx's processes backend, preparing their "
    "shares, stopping them: what the process speedups above leave out.",
    # the name of that group in runs before the benchmarks used gilx's backends
    "process-pool-start": "Starting a 2-process pool, one tiny task each, shutting it down: what "
    "the process speedups above leave out.",
    "cpu-c": "The same C counting kernel with the GIL held (`count_gil`) and released "
    "(`count_nogil`), on one thread and on two threads splitting the work.",
    "io": "Blocking HTTP GETs (urllib), 8 per round split over the threads, against a server on "
    "127.0.0.1 (the io workload's server, `gilx._httpdelay`, a process of its own) that answers "
    "after 50 ms.",
    "numpy-threads": "`np.dot` of 500x500 matrices, BLAS pinned to one thread (threadpoolctl), "
    "the products split over the threads.",
    "numpy-vs-python": "The seed's sum of squares: `sum(x**2 for x in data)` vs "
    "`np.sum(arr**2)`, one thread each; speedup = Python time / NumPy time.",
    "memory": "`stream_sum` (GIL released) over a buffer far larger than the caches, split into "
    "one contiguous slice per thread.",
    "gil-release": "One call with zero work: `count_nogil(0)` releases and re-takes the GIL once, "
    "`count_gil(0)` does everything else the same.",
    "signal-check": "`PyErr_CheckSignals()` (the Ctrl-C check: after each chunk of a GIL-held "
    "loop, every `SIGNAL_CHECK_NS` of a released one on the main thread) through "
    "`ctypes.pythonapi`, against a trivial C-API call through the same path.",
    "chunking": "`count_nogil` over one chunk (`COUNT_CHUNK` iterations) and over 64 chunks, both "
    "one release; the 64 chunks add 63 detached boundaries and, on the main thread, a re-take "
    "for signals every `SIGNAL_CHECK_NS`; time per chunk.",
    "monitoring": "What measuring the disturbance costs the runner per timed repeat: one "
    "`CpuMeter` start + stop (/proc/stat, this process's CPU time, two worker processes' "
    "/proc/PID/stat); target: under 0.5 % of a `--quick` repeat (0.15 s).",
    "convoy": "gilx's released calls on a worker thread and on the main thread, alone and beside "
    "one thread running `count_py` nonstop (the convoy effect); Ctrl-C beside it; 1 ms "
    '`time.sleep` calls on a worker thread. See "The convoy effect" above.',
    "crossover-alone": "Crossover (a): one thread, `count_gil(n)` vs `count_nogil(n)`, time per "
    "call.",
    "crossover-contended": "Crossover (b): two threads, each calling the function on many inputs "
    "of size n from a Python loop; time for both to finish.",
}


@dataclass(frozen=True)
class Bench:
    """One benchmark of the JSON file, with the numbers BENCHMARKS.md uses."""

    group: str
    name: str
    median: float
    iqr: float
    min: float
    max: float
    rounds: int
    info: dict[str, Any]

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Bench:
        stats = raw["stats"]
        return cls(
            group=raw["group"] or "",
            name=raw["name"],
            median=stats["median"],
            iqr=stats["iqr"],
            min=stats["min"],
            max=stats["max"],
            rounds=stats["rounds"],
            info=raw.get("extra_info", {}),
        )

    @property
    def spread(self) -> float:
        """IQR / median: how noisy the rounds were."""
        return self.iqr / self.median if self.median else math.nan


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------
#: What an empty cell shows.
DASH = "\u2013"
UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def unit_for(seconds: Iterable[float]) -> tuple[float, str]:
    smallest = min(seconds, default=1.0)
    for scale, name in UNITS:
        if smallest >= scale:
            return scale, name
    return UNITS[-1]


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:,.{digits}f}"


def pct(value: float | None, digits: int = 1) -> str:
    return DASH if value is None or math.isnan(value) else f"{100 * value:.{digits}f} %"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# --------------------------------------------------------------------------
# Derived numbers
# --------------------------------------------------------------------------
def speedups(benches: list[Bench]) -> dict[str, tuple[float, float | None]]:
    """name -> (speedup, efficiency), from the first one-worker run of each scenario."""
    baselines: dict[str, float] = {}
    out: dict[str, tuple[float, float | None]] = {}
    for b in benches:
        scenario, workers = b.info.get("scenario"), b.info.get("workers")
        if scenario is None or workers is None:
            continue
        if workers == 1 and scenario not in baselines:
            baselines[scenario] = b.median
        if scenario in baselines:
            gain = speedup(baselines[scenario], b.median)
            per_worker = scenario != "sum-of-squares"  # one worker each: no efficiency
            out[b.name] = (gain, efficiency(gain, workers) if per_worker else None)
    return out


def find(benches: list[Bench], group: str, **info: Any) -> Bench | None:
    for b in benches:
        if b.group == group and all(b.info.get(k) == v for k, v in info.items()):
            return b
    return None


@dataclass(frozen=True)
class Crossover:
    sizes: list[int]
    alone: dict[int, tuple[float, float]]  # n -> (gil, nogil) seconds per call
    contended: dict[int, tuple[float, float]]  # n -> (gil, nogil) seconds, both threads
    release_cost: float  # seconds: median over n of nogil - gil, one thread
    seconds_per_iteration: float
    n_alone: float
    n_contended: float | None
    bracket: tuple[int, int] | None  # last size that lost, first size that won for good
    handoff: float | None  # seconds per call that releasing adds at n = 0 with a waiter
    excluded: list[int]  # contended sizes left out: another process took > NOISY of the cores
    nogil_spread: dict[int, float]  # IQR / median of the contended count_nogil runs, by n

    @property
    def recommended(self) -> int:
        """The next power of two at or above the larger crossover."""
        worst = max(self.n_alone, self.n_contended or 0.0, 1.0)
        return 1 << math.ceil(math.log2(worst))


#: A two-thread run during which other processes took more than this share of
#: the cores measured the neighbour, not the GIL: crossover (b) leaves it out.
NOISY = 0.10
#: A spread (IQR / median) above this marks a contended size as unsteady.
WIDE = 0.15
#: The largest n whose calls are short enough to read the release cost from.
SHORT_CALL = 2048


def crossover(benches: list[Bench]) -> Crossover | None:
    excluded: list[int] = []

    def pairs(group: str) -> dict[int, tuple[float, float]]:
        found: dict[int, dict[str, float]] = {}
        for b in benches:
            if b.group != group:
                continue
            if group == "crossover-contended" and b.info.get("foreign_cpu", 0.0) > NOISY:
                excluded.append(b.info["n"])
                continue
            found.setdefault(b.info["n"], {})[b.info["function"]] = b.median
        return {
            n: (v["count_gil"], v["count_nogil"])
            for n, v in sorted(found.items())
            if {"count_gil", "count_nogil"} <= v.keys()
        }

    alone, contended = pairs("crossover-alone"), pairs("crossover-contended")
    if len(alone) < 2:
        return None
    sizes = sorted(alone)
    # The extra cost of a release is a few tens of ns: read it where a call
    # is short enough for that to show (up to ~0.5 µs of work), not where
    # the noise of a long call is larger than the cost itself.
    short = [n for n in sizes if n <= SHORT_CALL] or sizes[:1]
    cost = statistics.median(alone[n][1] - alone[n][0] for n in short)
    # Slope of count_gil's time in n: a least-squares line through all sizes.
    slope = statistics.linear_regression(sizes, [alone[n][0] for n in sizes]).slope
    n_alone = cost / slope
    n_contended: float | None = None
    bracket: tuple[int, int] | None = None
    csizes = sorted(contended)
    gains = {n: gil / nogil for n, (gil, nogil) in contended.items()}
    losses = [n for n in csizes if gains[n] < 1.0]
    if not csizes:
        pass  # every contended run was disturbed: no crossover (b) from this file
    elif not losses:
        n_contended, bracket = 0.0, None
    elif losses[-1] != csizes[-1]:
        lo = losses[-1]
        hi = csizes[csizes.index(lo) + 1]
        # Linear interpolation of the gain between the two sizes: where it is 1.
        g_lo, g_hi = gains[lo], gains[hi]
        n_contended = lo + (1.0 - g_lo) / (g_hi - g_lo) * (hi - lo)
        bracket = (lo, hi)
    handoff = None
    zero = next(
        (
            b
            for b in benches
            if b.group == "crossover-contended"
            and b.info.get("n") == 0
            and "calls_per_thread" in b.info
        ),
        None,
    )
    if 0 in contended and zero is not None:
        gil, nogil = contended[0]
        handoff = (nogil - gil) / (2 * zero.info["calls_per_thread"])
    spread = {
        b.info["n"]: b.spread
        for b in benches
        if b.group == "crossover-contended"
        and b.info.get("function") == "count_nogil"
        and b.info["n"] in contended
    }
    return Crossover(
        sizes,
        alone,
        contended,
        cost,
        slope,
        n_alone,
        n_contended,
        bracket,
        handoff,
        sorted(set(excluded)),
        spread,
    )


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------
def machine_section(data: dict[str, Any], source: Path) -> list[str]:
    m = data.get("machine_info", {})
    g = m.get("gilx", {})
    run = data.get("gilx_run", {})
    commit = data.get("commit_info", {})
    cpu = m.get("cpu", {})
    blas = ", ".join(
        f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')})"
        for b in g.get("blas", [])
    )
    rows = [
        (
            "CPU",
            f"{cpu.get('brand_raw', m.get('processor', '?'))}, {g.get('cores', '?')} cores "
            f"usable ({g.get('cpu_count', '?')} online), {m.get('machine', '?')}",
        ),
        (
            "Python",
            f"{m.get('python_implementation', '?')} {m.get('python_version', '?')} "
            f"({m.get('python_compiler', '')}); GIL enabled: {g.get('gil_enabled')}; "
            f"switch interval {fmt(1e3 * g.get('switch_interval_s', math.nan), 1)} ms",
        ),
        ("OS", f"{m.get('system', '?')} {m.get('release', '')}"),
        (
            "gilx",
            f"{g.get('version', '?')}, commit {commit.get('id', '?')[:12]}"
            f"{' (dirty)' if commit.get('dirty') else ''} on {commit.get('branch', '?')}",
        ),
        (
            "GIL policy (gilx.h)",
            f"COUNT_CHUNK = {g.get('COUNT_CHUNK')}, NOGIL_THRESHOLD = {g.get('NOGIL_THRESHOLD')}",
        ),
        ("BLAS", f"{blas or DASH}; pinned to 1 thread in the numpy groups"),
        (
            "Run",
            f"{data.get('datetime', '?')}, suite wall time {run.get('suite_seconds', '?')} s, "
            f"load average {g.get('load_average_start')} before, "
            f"{run.get('load_average_end')} after",
        ),
        ("Source", f"`{source.as_posix()}`"),
    ]
    return ["## The machine", "", *table(("", ""), rows), ""]


def named(benches: list[Bench], group: str, suffix: str) -> Bench | None:
    """The benchmark of ``group`` whose name ends with ``[suffix]``."""
    return next((b for b in benches if b.group == group and b.name.endswith(f"[{suffix}]")), None)


def interference(involved: Iterable[Bench | None]) -> str:
    """The largest share of the cores other processes took during any of ``involved``."""
    shares = [b.info["foreign_cpu"] for b in involved if b and "foreign_cpu" in b.info]
    return pct(max(shares), 0) if shares else DASH


def own_times(involved: Sequence[Bench | None], what: str) -> str:
    """Where the time went, from the slowest worker's own time (when the suite recorded it).

    The ratio of the one-worker and k-worker slowest-worker times is the
    speedup of the work itself; the wall time minus the slowest worker's time
    is what starting, dispatching and joining cost.
    """
    one, many = involved
    if not (one and many and "slowest_worker_s" in one.info and "slowest_worker_s" in many.info):
        return ""
    work = speedup(one.info["slowest_worker_s"], many.info["slowest_worker_s"])
    rest_ms = (many.median - many.info["slowest_worker_s"]) * 1e3
    return (
        f" (from the workers' own times: {work:.3f}; outside the work ({what}): "
        f"{rest_ms:.1f} ms a round)"
    )


def targets_section(
    benches: list[Bench], sp: dict[str, tuple[float, float | None]], xo: Crossover | None
) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []

    def add(
        label: str, value: float | None, ok: bool, shown: str, involved: Sequence[Bench | None]
    ) -> None:
        verdict = DASH if value is None else ("met" if ok else "**missed**")
        rows.append(
            (label, shown if value is not None else "not measured", verdict, interference(involved))
        )

    def scaling(
        group: str, base: str, other: str
    ) -> tuple[float | None, float | None, list[Bench | None]]:
        one, many = named(benches, group, base), named(benches, group, other)
        speedup, efficiency = sp.get(many.name, (None, None)) if many else (None, None)
        return speedup, efficiency, [one, many]

    _, eff, involved = scaling("cpu-c", "count_nogil-1thread", "count_nogil-2thread")
    add(
        "count_nogil, 2 threads: efficiency >= 0.97",
        eff,
        eff is not None and eff >= 0.97,
        fmt(eff, 3) + own_times(involved, "threads"),
        involved,
    )
    speedup, _, involved = scaling("cpu-c", "count_gil-1thread", "count_gil-2thread")
    add(
        "count_gil, 2 threads: speedup <= 1.02",
        speedup,
        speedup is not None and speedup <= 1.02,
        fmt(speedup, 3),
        involved,
    )
    gil0, nogil0 = (
        named(benches, "gil-release", "count_gil"),
        named(benches, "gil-release", "count_nogil"),
    )
    release = (nogil0.median - gil0.median) * 1e9 if gil0 and nogil0 else None
    add(
        "one release + re-acquire (uncontended) <= 100 ns",
        release,
        release is not None and release <= 100,
        f"{fmt(release, 1)} ns",
        [gil0, nogil0],
    )
    one, many = named(benches, "chunking", "1chunk"), named(benches, "chunking", "64chunk")
    if one and many:
        chunks = many.info["chunks"]
        direct = (many.median / chunks) / one.median - 1
        direct_min = (many.min / chunks) / one.min - 1
        add(
            f"chunking overhead <= 1 % (measured: {chunks} chunks vs 1, time per chunk)",
            direct,
            direct <= 0.01,
            f"{pct(direct, 2)} (from the mins: {pct(direct_min, 2)})",
            [one, many],
        )
        signal = signal_check_seconds(benches) or 0.0
        interval = many.info.get("signal_check_ns")
        if release is not None and interval:
            derived = (release * 1e-9 + signal) / (interval * 1e-9)
            add(
                "chunking overhead <= 1 % (derived: (release + signal check) / SIGNAL_CHECK_NS)",
                derived,
                derived <= 0.01,
                pct(derived, 4),
                [gil0, nogil0],
            )
    speedup, _, involved = scaling("cpu-python", "1process", "2process")
    shown = fmt(speedup, 3) + own_times(involved, "pool")
    control, _, control_involved = scaling("cpu-python", "count_gil-1process", "count_gil-2process")
    if control is not None:
        shown += f"; the C kernel in the same pool: {control:.3f}"
    add(
        "processes, 2 workers: speedup >= 1.9 (pool start excluded)",
        speedup,
        speedup is not None and speedup >= 1.9,
        shown,
        [*involved, *control_involved],
    )
    for workers in (2, 4):
        _, eff, involved = scaling("io", "1thread", f"{workers}thread")
        add(
            f"io, {workers} threads: efficiency >= 0.95",
            eff,
            eff is not None and eff >= 0.95,
            fmt(eff, 3),
            involved,
        )
    rows += mode_target_rows(benches, sp)
    rows += instrument_target_rows(benches)
    if xo is not None:
        alone = [b for b in benches if b.group == "crossover-alone"]
        contended = [b for b in benches if b.group == "crossover-contended"]
        rows.append(
            ("crossover (a), one thread alone", f"n ≈ {xo.n_alone:,.0f}", DASH, interference(alone))
        )
        shown = (
            "never lost"
            if xo.n_contended == 0
            else (f"n ≈ {xo.n_contended:,.0f}" if xo.n_contended is not None else "not reached")
        )
        if not xo.contended:
            shown = "no undisturbed run"
        rows.append(("crossover (b), another thread waiting", shown, DASH, interference(contended)))
    lines = [
        "## Targets",
        "",
        "Shown, not asserted: the suite never fails on a number. Each figure is recomputed "
        "from the medians of the JSON file. The last column is the largest share of the "
        "cores that other processes took while the benchmarks behind a figure ran: a "
        "2-worker figure measured with a neighbour busy says little about the GIL.",
        "",
    ]
    header = ("target", "measured", "", "other processes' CPU")
    return [*lines, *table(header, rows), ""]


#: Groups whose benchmarks carry their own target in extra_info (benchmarks/test_modes.py).
MODE_GROUPS = ("modes-io", "numba")
_COMPARE = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


def mode_target_rows(
    benches: list[Bench], sp: dict[str, tuple[float, float | None]]
) -> list[tuple[str, str, str, str]]:
    """The asyncio and Numba targets, recomputed from the medians; Dask's cost per task."""
    rows: list[tuple[str, str, str, str]] = []
    for b in benches:
        if b.group not in MODE_GROUPS or "target" not in b.info or b.name not in sp:
            continue
        metric, op, limit = b.info["target"].split()
        gain, eff = sp[b.name]
        value = gain if metric == "speedup" else eff
        label = f"{b.group} `{b.name.split('[', 1)[-1].rstrip(']')}`: {metric} {op} {limit}"
        ok = value is not None and _COMPARE[op](value, float(limit))
        one = next(
            (
                o
                for o in benches
                if o.info.get("scenario") == b.info.get("scenario") and o.info.get("workers") == 1
            ),
            None,
        )
        rows.append((label, fmt(value, 3), "met" if ok else "**missed**", interference([one, b])))
    for b in benches:
        if b.group == "dask-task" and b.info.get("tasks"):
            per_task = b.median / b.info["tasks"] * 1e3
            rows.append(
                (
                    f"Dask, cost per task (`{b.name.split('[', 1)[-1].rstrip(']')}`, "
                    f"{b.info['tasks']} tasks a round, LocalCluster)",
                    f"{per_task:.3f} ms",
                    DASH,
                    interference([b]),
                )
            )
    return rows


def _instrument(benches: list[Bench], key: str) -> tuple[Bench, dict[str, Any]] | None:
    found = next((b for b in benches if b.group == "instrument" and key in b.info), None)
    return (found, found.info[key]) if found else None


def instrument_target_rows(benches: list[Bench]) -> list[tuple[str, str, str, str]]:
    """The instrument's targets: hold-fraction error <= 0.02, cost to the watched code <= 1 %."""
    rows: list[tuple[str, str, str, str]] = []
    error = _instrument(benches, "instrument_error")
    if error is not None:
        bench, result = error
        worst = result["worst_abs_error"]
        peers = "; ".join(f"{name}: {value:.3f}" for name, value in worst.items() if name != "gilx")
        disturbed = result.get("disturbed_cells", 0)
        every = result.get("worst_abs_error_all_cells", {}).get("gilx")
        note = (
            f"; {disturbed} cells the instrument flagged disturbed not judged, all cells: "
            f"{every:.3f}"
            if disturbed and every is not None
            else ""
        )
        by_kind = result.get("worst_abs_error_by_kind")
        if by_kind is None:  # a run before blocking releases were measured: spinning only
            rows.append(
                (
                    "hold fraction, worst abs error over every duty cycle: <= 0.02 (gilx)",
                    f"{worst['gilx']:.3f}"
                    + (f" (same run, {peers}{note})" if peers or note else ""),
                    "met" if worst["gilx"] <= 0.02 else "**missed**",
                    interference([bench]),
                )
            )
        else:
            kinds = ", ".join(f"{kind} {v['gilx']:.3f}" for kind, v in by_kind.items())
            rows.append(
                (
                    "hold fraction, worst abs error over every duty cycle, releases that "
                    "spin and that block: <= 0.03 (gilx)",
                    f"{worst['gilx']:.3f} ({kinds}; same run, {peers}{note})",
                    "met" if worst["gilx"] <= 0.03 else "**missed**",
                    interference([bench]),
                )
            )
    cost = _instrument(benches, "instrument_cost")
    if cost is not None:
        bench, result = cost
        for name, r in result.items():
            if isinstance(r, dict) and "cost" in r:
                low, high = r["cost_quartiles"]
                from_cpu = r.get("cost_from_cpu_time")
                rows.append(
                    (
                        f"heartbeat's cost to the watched code, {name}: <= 1 %",
                        f"{pct(r['cost'], 2)} (quartiles {pct(low, 2)} .. {pct(high, 2)})"
                        + (f"; from CPU time {pct(from_cpu, 2)}" if from_cpu is not None else ""),
                        "met" if r["cost"] <= 0.01 else "**missed**",
                        interference([bench]),
                    )
                )
    return rows


def instrument_section(benches: list[Bench]) -> list[str]:
    """Each duty cycle's estimate error, for gilx and the peers measured in the same run."""
    error = _instrument(benches, "instrument_error")
    if error is None:
        return []
    _, result = error
    tools = list(result["worst_abs_error"])
    limit = result.get("disturbed_above_cores")
    rows = []
    for r in result["rows"]:
        g = r["gilx"]
        noise, other, late = g.get("noise"), g.get("other_cores"), g.get("late_share")
        if "disturbed" in g:
            judged = "" if not g["disturbed"] else " (disturbed: not judged)"
        else:  # older runs judged by the others' cores alone
            judged = " (not judged)" if limit is not None and other > limit else ""
        rows.append(
            (
                r.get("kind", "spin"),
                f"{r['period_ms']:.0f} ms",
                f"{r['hold']:.2f}",
                f"{g['truth']:.3f}",
                *(
                    f"{r[t]['error']:+.3f}"
                    if r[t].get("error") is not None
                    else r[t].get("failed", "failed")
                    for t in tools
                ),
                f"{noise:.3f}" if noise is not None else "-",
                f"{late:.3f}" if late is not None else "-",
                ("-" if other is None else f"{other:.2f}") + judged,
            )
        )
    load = result.get("load_average")
    blocking = any(r.get("kind", "spin") != "spin" for r in result["rows"])
    if blocking:
        what = (
            "`_core.duty_cycle` holds the GIL for a known share of each period and releases "
            "it for the rest, spinning (`spin`); `_core.duty_block` does the same with a "
            "release that blocks, as real code does: `sleep` (nanosleep) or `poll` (poll() "
            "on a pipe, with a timeout)."
        )
        judged = (
            "A cell the instrument flags as disturbed (`Reading.disturbed`: more than 3 % "
            "of its instants late, steal above 0.03 cores, or other processes taking more "
            "than 3 % of the CPU time the watched process needed) was measured again once, "
            "and is not judged if it stayed so."
        )
    else:
        what = (
            "`_core.duty_cycle` holds the GIL for a known share of each period and releases "
            "it for the rest."
        )
        judged = (
            f"A cell above {result.get('disturbed_above_cores', '-')} cores was measured "
            "again once, and is not judged if it stayed disturbed."
        )
    peers = []
    if "py-spy" in tools:
        peers.append(
            "py-spy's estimate is the share of its `record --gil` samples (1000 a "
            "second, from outside) in which a thread held the GIL"
        )
    if "gil_load" in tools:
        peers.append(
            "gil_load's is its `held` share (a child process under its LD_PRELOAD, "
            "sampling every 1 ms on average)"
        )
    return [
        "## The GIL instrument: how close is the hold fraction?",
        "",
        f"{what} Each tool watches the same kind of run, one after the other, for "
        f"{result['seconds_per_cell']} s a cell. Error = estimate - the time really held "
        "(benchmarks/test_instrument.py)" + "".join(f"; {p}" for p in peers) + ". "
        "gilx noise = the standard error its number of samples allows, "
        "sqrt(p (1 - p) / samples); late = the share of gilx's instants at which its "
        "heartbeat was waiting for a CPU; others = cores that other processes and the "
        f"hypervisor (steal time) took during gilx's cell. {judged}"
        + (
            f" Heartbeat priority: {result['heartbeat_priority']}."
            if result.get("heartbeat_priority")
            else ""
        )
        + (f" Load average at the end: {', '.join(f'{x:.2f}' for x in load)}." if load else ""),
        "",
        *table(
            (
                "release",
                "period",
                "share held (asked)",
                "held (true)",
                *(f"{t} error" for t in tools),
                "gilx noise",
                "late",
                "others (cores)",
            ),
            rows,
        ),
        "",
    ]


def _blame(benches: list[Bench], key: str) -> tuple[Bench, dict[str, Any]] | None:
    found = next((b for b in benches if b.group == "blame" and key in b.info), None)
    return (found, found.info[key]) if found else None


def blame_section(
    benches: list[Bench], label: str | None = None, heading: bool = True
) -> list[str]:
    """Blame on the ground-truth program beside py-spy, and its cost (issue 27); ``label``
    names the run (its file), ``heading``: the section's title and legend first."""
    accuracy = _blame(benches, "blame_accuracy")
    if accuracy is None:
        return []
    _, r = accuracy
    rows = []
    for row in r["rows"]:
        low, high = row["truth_held"]
        spy = row.get("pyspy_held")
        share = row.get("truth_share_range")
        rows.append(
            (
                row["thread"],
                f"`{row['function']}`",
                f"{low:.3f} .. {high:.3f}",
                f"{row['gilx_held']:.3f}",
                f"{row['gilx_error']:.3f}",
                f"{spy:.3f}" if spy is not None else "-",
                f"{share[0]:.3f} .. {share[1]:.3f}" if share else "-",
                f"{row['gilx_share_of_waiting']:.3f}",
                f"{row['gilx_share_range_error']:.3f}" if share else "-",
            )
        )
    lines: list[str] = []
    if heading:
        lines += [
            "## Blame: who held the GIL (`gilx watch --top`)",
            "",
            "`benchmarks/blame_truth.py` runs five threads under `gilx watch --top --json`: A a "
            "Python loop, B `count_gil`, C `usleep` through `ctypes.PyDLL` (blocked with the "
            "GIL held), D `count_nogil` (GIL released), E 1 ms sleeps. Each thread times what "
            "it held itself; the truth is a range, from its own count up to that plus the time "
            "it waited for a CPU (a holder may lose its CPU while it holds the GIL). Share of "
            "waiting = the share of the time the GIL was held while another thread waited "
            "(all five always want it back, so that is the thread's share of all holding: its "
            "range follows from the threads' ranges). |err| = gilx's distance to the range (0 "
            "inside it). py-spy `record --gil --idle --nonblocking` (1000 samples a second, "
            "ptrace) sampled the same process at the same time: its column is the share of "
            "its samples in which the GIL holder's stack ran the function.",
            "",
        ]
    who = ""
    if "euid" in r:
        who = " as root" if r["euid"] in (None, 0) else f" as an ordinary user (uid {r['euid']})"
    spy = r.get("gilx_vs_pyspy_max_abs")
    lines += [
        (f"Run `{label}`" if label else "This run") + f", Python {r['python']}{who}, "
        f"{r['seconds']:.1f} s: blame put {r['on_A_B_C']:.1%} of the waiting on A, B and C's "
        f"functions and {r['on_D_E']:.1%} on D and E's"
        + (
            f"; gilx and py-spy differ by at most {spy:.3f} on A, B and C's hold shares"
            if spy is not None
            else f"; py-spy not measured ({r.get('pyspy_problem')})"
        )
        + "; the reading was "
        + ("judged" if r["judged"] else "not judged (disturbed)")
        + (
            f", other processes took {r['others_share']:.0%} of the CPU time it needed"
            if r.get("others_share") is not None
            else ""
        )
        + f"; load average {', '.join(f'{x:.2f}' for x in r['load_average'])}.",
        "",
        *table(
            (
                "thread",
                "function",
                "held: truth",
                "gilx",
                "gilx err",
                "py-spy",
                "share of waiting: truth",
                "gilx",
                "gilx err",
            ),
            rows,
        ),
        "",
    ]
    cost = _blame(benches, "blame_cost")
    if cost is not None:
        _, c = cost
        parts = []
        for mode, name in (
            ("watch", "`watch()` vs plain"),
            ("top", "`watch(top=True)` vs plain"),
            ("top_vs_watch", "`watch(top=True)` vs `watch()`"),
        ):
            if mode in c:
                q = c[mode]["quartiles"]
                parts.append(
                    f"{name} {pct(c[mode]['cost'], 2)} (quartiles {pct(q[0], 2)} .. {pct(q[1], 2)})"
                )
        beat = c.get("gil_per_beat_us", {})
        lines += [
            "Cost to the watched program (a Python loop beside a thread of 1 ms sleeps, timed "
            f"plain, watched and watched with blame in {c['triples']} rotated triples; median "
            "ratio - 1; load average "
            f"{', '.join(f'{x:.2f}' for x in c['load_average'])}): "
            + "; ".join(parts)
            + ". What blame adds, which a busy machine hardly moves: the heartbeat holds the "
            f"GIL {beat.get('watch', 0):.1f} µs per beat without blame and "
            f"{beat.get('top', 0):.1f} µs with it (1000 beats a second), and blame's sampler "
            "thread used "
            + (f"{c['sampler_cpu_share']:.2%}" if c.get("sampler_cpu_share") is not None else "?")
            + " of one core.",
            "",
        ]
    return lines


def signal_check_seconds(benches: list[Bench]) -> float | None:
    check = next((b for b in benches if b.name.endswith("[PyErr_CheckSignals]")), None)
    base = next((b for b in benches if b.name.endswith("[Py_IsInitialized]")), None)
    return check.median - base.median if check and base else None


def crossover_section(xo: Crossover | None, threshold: int | None) -> list[str]:
    if xo is None:
        return []
    lines = [
        "## The crossover: when is releasing the GIL worth it?",
        "",
        "CPython's hashlib releases the GIL only above 2047 bytes and NumPy only above 500 "
        "elements; neither threshold was measured. Ours is, with one kernel run two ways "
        "(`count_gil`, `count_nogil`), so the only difference is the release.",
        "",
        f"**(a) One thread alone.** Releasing gains that thread nothing; it makes n iterations' "
        f"worth of time available to some other thread, and costs the caller the release + "
        f"re-acquire: {xo.release_cost * 1e9:.1f} ns (median over n <= {SHORT_CALL:,} of "
        f"`count_nogil(n)` - `count_gil(n)`), while one iteration costs "
        f"{xo.seconds_per_iteration * 1e9:.3f} ns (slope of `count_gil`). The two are equal at "
        f"**n ≈ {xo.n_alone:,.0f}**: below it, a release costs more than the work it frees.",
        "",
    ]
    rows = []
    for n in xo.sizes:
        gil, nogil = xo.alone[n]
        work = max(0.0, gil - xo.alone[xo.sizes[0]][0])
        rows.append(
            (
                f"{n:,}",
                fmt(gil * 1e9, 1),
                fmt(nogil * 1e9, 1),
                fmt((nogil - gil) * 1e9, 1),
                fmt(work * 1e9, 1),
            )
        )
    lines += table(
        ("n", "count_gil ns/call", "count_nogil ns/call", "extra cost of release ns", "work ns"),
        rows,
    )
    lines += [""]
    if not xo.contended:
        lines += [
            "**(b) Another thread waiting for the GIL.** Not in this file: other "
            f"processes took more than {NOISY:.0%} of the cores during every contended "
            "run.",
            "",
        ]
    else:
        if xo.n_contended == 0:
            verdict = "releasing won at every size measured"
        elif xo.n_contended is None:
            verdict = "releasing never won at the sizes measured"
        else:
            assert xo.bracket is not None
            verdict = (
                f"releasing loses up to n = {xo.bracket[0]:,} and wins from "
                f"n = {xo.bracket[1]:,} on; interpolated, **n ≈ {xo.n_contended:,.0f}**"
            )
        lines += [
            f"**(b) Another thread waiting for the GIL.** Two threads each call the function on "
            f"many inputs of size n from a Python loop, so whenever one holds the GIL the other "
            f"is waiting for it. Releasing now buys real parallelism, but every release lets "
            f"the waiting thread take the GIL, and the releasing thread must win it back "
            f"afterwards: {verdict}.",
            "",
        ]
        rows = []
        for n in sorted(xo.contended):
            gil, nogil = xo.contended[n]
            rows.append((f"{n:,}", fmt(gil * 1e3, 2), fmt(nogil * 1e3, 2), fmt(gil / nogil, 2)))
        lines += table(
            ("n", "count_gil ms (2 threads)", "count_nogil ms (2 threads)", "gain from releasing"),
            rows,
        )
        lines += [""]
        wide = [n for n, spread in sorted(xo.nogil_spread.items()) if spread > WIDE]
        if wide:
            lines += [
                f"The two-thread `count_nogil` times varied widely from round to round "
                f"(spread over {WIDE:.0%}) at n = {', '.join(f'{n:,}' for n in wide)}: a "
                f"round runs partly in parallel and partly in turns, depending on whether the "
                f"waiting thread wakes up in time to take the GIL while the other one works, "
                f"so near the crossover a median can land on either side of it.",
                "",
            ]
        if xo.excluded:
            lines += [
                f"Left out: n = {', '.join(f'{n:,}' for n in xo.excluded)}, where other "
                f"processes took more than {NOISY:.0%} of the cores during a run (see "
                f"`crossover-contended` below for those numbers).",
                "",
            ]
        if xo.handoff is not None:
            lines += [
                f"At n = 0 the difference per call, {xo.handoff * 1e9:,.0f} ns, is what one "
                f"release + re-acquire costs when another thread is waiting for the GIL "
                f"(uncontended: {xo.release_cost * 1e9:.0f} ns).",
                "",
            ]
    if xo.n_contended is None:
        lines += [
            f"**Threshold.** Not derived from this file: crossover (b) is missing. "
            f"`GILX_NOGIL_THRESHOLD` in `csrc/reference/policy.h` (used by `count_auto`) is "
            f"**{threshold if threshold is not None else '?'}** in this run.",
            "",
        ]
        return lines
    lines += [
        f"**Threshold.** In this run the larger crossover, rounded up to a power of two, is "
        f"**{xo.recommended:,}**; `GILX_NOGIL_THRESHOLD` in `csrc/reference/policy.h` (used by "
        f"`count_auto`) is **{threshold if threshold is not None else '?'}**"
        + (", the same." if threshold == xo.recommended else ".")
        + " One run's crossover (b) moves from run to run, so "
        "the constant is set from several quiet runs: the smallest power of two from which "
        "releasing never lost in any of them (`tools/crossover_runs.py "
        "benchmarks/results/crossover-runs/*.json`).",
        "",
    ]
    return lines


@dataclass(frozen=True)
class Build:
    """One interpreter's run of the suite: its file, its benchmarks and their speedups."""

    source: Path
    data: dict[str, Any]
    benches: list[Bench]
    sp: dict[str, tuple[float, float | None]]

    @classmethod
    def from_json(cls, data: dict[str, Any], source: Path) -> Build:
        benches = [Bench.from_json(raw) for raw in data["benchmarks"]]
        return cls(source, data, benches, speedups(benches))

    @classmethod
    def load(cls, source: Path) -> Build:
        return cls.from_json(json.loads(source.read_text(encoding="utf-8")), source)

    def get(self, group: str, name: str) -> Bench | None:
        return next((b for b in self.benches if b.group == group and b.name == name), None)

    def describe(self) -> str:
        m = self.data.get("machine_info", {})
        return (
            f"{m.get('python_implementation', 'CPython')} {m.get('python_version', '?')}, "
            f"GIL enabled: {m.get('gilx', {}).get('gil_enabled', '?')} "
            f"(`{self.source.as_posix()}`, run {self.data.get('datetime', '?')})"
        )


#: The benchmarks the free-threaded comparison shows: (group, name).
FT_BENCHES: tuple[tuple[str, str], ...] = (
    ("cpu-python", "test_count_py_threads[1thread]"),
    ("cpu-python", "test_count_py_threads[2thread]"),
    ("cpu-c", "test_count_c_threads[count_gil-1thread]"),
    ("cpu-c", "test_count_c_threads[count_gil-2thread]"),
    ("cpu-c", "test_count_c_threads[count_nogil-1thread]"),
    ("cpu-c", "test_count_c_threads[count_nogil-2thread]"),
)
#: Where a benchmark is not in a file.
MISSING = "not measured"


def per_iteration(b: Bench | None) -> float | None:
    """Seconds per iteration: the median over the total work ``n`` (split over the workers)."""
    if b is None or not b.info.get("n"):
        return None
    return b.median / float(b.info["n"])


def time_ratio(ft: Bench | None, gil: Bench | None) -> float | None:
    """Free-threaded time / GIL-build time, per iteration."""
    ft_t, gil_t = per_iteration(ft), per_iteration(gil)
    return ft_t / gil_t if ft_t is not None and gil_t else None


def ft_table(ft: Build, gil: Build) -> list[str]:
    def cells(build: Build, b: Bench | None) -> list[str]:
        t = per_iteration(b)
        if b is None or t is None:
            return [MISSING, MISSING]
        return [fmt(t * 1e9, 3), fmt(build.sp.get(b.name, (None, None))[0], 3)]

    rows = []
    for group, name in FT_BENCHES:
        g, f = gil.get(group, name), ft.get(group, name)
        if g is None and f is None:
            continue
        rows.append([f"`{name}`", *cells(gil, g), *cells(ft, f), fmt(time_ratio(f, g), 2)])
    if not rows:
        return ["Neither file has the `cpu-python` / `cpu-c` thread benchmarks.", ""]
    header = (
        "benchmark",
        "GIL build ns/iteration",
        "GIL build speedup",
        "free-threaded ns/iteration",
        "free-threaded speedup",
        "free-threaded / GIL",
    )
    return [*table(header, rows), ""]


def ft_targets(ft: Build, gil: Build) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []

    def add(
        label: str,
        value: float | None,
        ok: bool | None,
        shown: str,
        involved: Sequence[Bench | None],
    ) -> None:
        verdict = DASH if value is None or ok is None else ("met" if ok else "**missed**")
        rows.append(
            (label, shown if value is not None else MISSING, verdict, interference(involved))
        )

    py1, py2 = FT_BENCHES[0][1], FT_BENCHES[1][1]
    ft1, ft2 = ft.get("cpu-python", py1), ft.get("cpu-python", py2)
    gain = ft.sp.get(py2, (None, None))[0] if ft2 else None
    add(
        "pure-Python threads on 3.13t, 2 workers: speedup >= 1.8 over one free-threaded thread",
        gain,
        gain is not None and gain >= 1.8,
        fmt(gain, 3) + own_times([ft1, ft2], "threads"),
        [ft1, ft2],
    )
    for function in ("count_gil", "count_nogil"):
        name = f"test_count_c_threads[{function}-1thread]"
        f, g = ft.get("cpu-c", name), gil.get("cpu-c", name)
        ratio = time_ratio(f, g)
        off = ratio - 1 if ratio is not None else None
        add(
            f"{function}, one thread: free-threaded within 2 % of the GIL build per iteration",
            off,
            off is not None and abs(off) <= 0.02,
            f"{signed_pct(off)} per iteration",
            [f, g],
        )
    g1 = gil.get("cpu-python", py1)
    ratio = time_ratio(ft1, g1)
    price = ratio - 1 if ratio is not None else None
    add(
        "single-thread price of free-threading (count_py, one thread)",
        price,
        None,
        f"{signed_pct(price)} per iteration",
        [ft1, g1],
    )
    vs, how = ft_vs_gil(ft2, g1)
    add(
        "2 free-threaded threads vs 1 thread of the GIL build (count_py)",
        vs,
        None,
        f"speedup {fmt(vs, 3)}{how}",
        [ft2, g1],
    )
    header = ("target", "measured", "", "other processes' CPU")
    return [*table(header, rows), ""]


def signed_pct(value: float | None) -> str:
    return DASH if value is None else f"{100 * value:+.1f} %"


def ft_vs_gil(ft2: Bench | None, gil1: Bench | None) -> tuple[float | None, str]:
    """GIL 1-thread time / free-threaded 2-thread time, and how it was read."""
    if ft2 is None or gil1 is None:
        return None, ""
    if ft2.info.get("n") == gil1.info.get("n"):
        return speedup(gil1.median, ft2.median), ""
    ft_t, gil_t = per_iteration(ft2), per_iteration(gil1)
    if ft_t is None or gil_t is None:
        return None, ""
    return gil_t / ft_t, (
        f" (the files' n differ: {gil1.info['n']:,} vs {ft2.info['n']:,}; "
        "from the times per iteration)"
    )


def free_threaded_section(ft: Build, gil: Build) -> list[str]:
    lines = [
        "## Free-threaded CPython (3.13t) beside a GIL build of the same source",
        "",
        f"Free-threaded: {ft.describe()}. GIL build: {gil.describe()}.",
        "",
        "Time per iteration = median / the total work n (split over the workers); speedup "
        "over the one-worker benchmark of the same scenario in the same file; the last column "
        "is the free-threaded time per iteration / the GIL build's.",
        "",
    ]
    lines += ft_table(ft, gil)
    lines += [
        "Targets of the free-threaded build, shown, not asserted; the last column is the "
        "largest share of the cores other processes took during the benchmarks behind a "
        "figure (in either file).",
        "",
    ]
    lines += ft_targets(ft, gil)
    return lines


CONVOY_SECTION = "## The convoy effect: released calls beside a busy Python thread"


def _call_seconds(b: Bench | None) -> float | None:
    """A convoy call's time: on a worker thread its own clock around the call, else the median.

    The round's median on a worker also holds the hand-offs of starting and collecting the
    worker (each one a switch interval beside a busy thread): the crew's, not the call's.
    """
    if b is None:
        return None
    own = b.info.get("slowest_worker_s")
    return float(own) if own else b.median


def convoy_rows(build: Build) -> list[list[str]]:
    """One row per call and thread: alone, beside, slowdown (from the medians), its target."""
    rows: list[list[str]] = []
    convoy = [b for b in build.benches if b.group == "convoy"]
    pairs: dict[tuple[str, str], dict[str, Bench]] = {}
    for b in convoy:
        if "company" in b.info and b.info.get("call") != "sleep":
            pairs.setdefault((b.info["call"], b.info["thread"]), {})[b.info["company"]] = b
    for (call, thread), by in pairs.items():
        alone, beside = by.get("alone"), by.get("beside")
        a_s = _call_seconds(alone)
        b_s = _call_seconds(beside)
        slowdown = b_s / a_s if a_s and b_s else None
        verdict, target = DASH, DASH
        if beside is not None and "target" in beside.info and slowdown is not None:
            _, op, limit = beside.info["target"].split()
            target = f"{op} {limit}"
            verdict = "met" if _COMPARE[op](slowdown, float(limit)) else "**missed**"
        rows.append(
            [
                f"`{call}`",
                f"{thread} thread",
                fmt(a_s * 1e3, 1) if a_s else MISSING,
                fmt(b_s * 1e3, 1) if b_s else MISSING,
                f"{fmt(slowdown, 2)}x" if slowdown is not None else MISSING,
                target,
                verdict,
                interference([alone, beside]),
            ]
        )
    ctrl_c = next((b for b in convoy if "ctrl_c_latency_max_s" in b.info), None)
    if ctrl_c is not None:
        worst = ctrl_c.info["ctrl_c_latency_max_s"]
        _, op, limit = ctrl_c.info["target"].split()
        rows.append(
            [
                "Ctrl-C in `count_nogil`",
                "main thread",
                DASH,
                f"{fmt(ctrl_c.info['ctrl_c_latency_s'] * 1e3, 1)} (max {fmt(worst * 1e3, 1)})",
                DASH,
                f"max {op} {float(limit) * 1e3:g} ms",
                "met" if _COMPARE[op](worst, float(limit)) else "**missed**",
                interference([ctrl_c]),
            ]
        )
    sleeps = {b.info["company"]: b for b in convoy if b.info.get("call") == "sleep"}
    if sleeps:

        def p50_p99(b: Bench | None) -> str:
            if b is None:
                return MISSING
            return f"{fmt(b.info['sleep_p50_s'] * 1e3, 2)} / {fmt(b.info['sleep_p99_s'] * 1e3, 2)}"

        alone, beside = sleeps.get("alone"), sleeps.get("beside")
        ratio = beside.info["sleep_p50_s"] / alone.info["sleep_p50_s"] if alone and beside else None
        rows.append(
            [
                "1 ms `time.sleep`, per call p50 / p99",
                "worker thread",
                p50_p99(alone),
                p50_p99(beside),
                f"{fmt(ratio, 2)}x (p50)" if ratio is not None else MISSING,
                "reported",
                DASH,
                interference([alone, beside]),
            ]
        )
    return rows


CLAIMS_SECTION = "## The heartbeat without privileges: how it claims a CPU"
CLAIM_MODES = ("normal", "pinned", "short-slice", "fifo")


def claims_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per cell: per way of claiming a CPU, each round's error (read - truth),
    with ``?`` after a reading the instrument did not judge (disturbed)."""
    rows: dict[str, dict[str, list[str]]] = {}
    truth: dict[str, list[float]] = {}
    for r in result["rows"]:
        cell = rows.setdefault(r["cell"], {})
        cell.setdefault(r["mode"], []).append(f"{r['error']:+.3f}{'?' if r['disturbed'] else ''}")
        truth.setdefault(r["cell"], []).append(r["truth"])
    modes = [m for m in CLAIM_MODES if any(m in c for c in rows.values())]
    out = []
    for cell, by_mode in rows.items():
        out.append(
            [
                cell,
                fmt(statistics.mean(truth[cell]), 2),
                *(" ".join(by_mode.get(m, ["-"])) for m in modes),
            ]
        )
    return out


def claims_section(runs: Sequence[tuple[Path, dict[str, Any]]]) -> list[str]:
    """Each run of benchmarks/test_heartbeat_claims.py: the error per cell and claim."""
    if not runs:
        return []
    lines = [
        CLAIMS_SECTION,
        "",
        "The heartbeat must run at its sampled instants. Its timer often fires on the CPU "
        "that runs the GIL's holder; Linux's fair scheduler (EEVDF) lets that thread finish "
        "its slice first, so a heartbeat without a claim waits until the holder blocks, just "
        "after it let go of the GIL, and reads a held instant free. Each cell holds the GIL "
        "for *hold* ms in C, then sleeps *rest* ms (`_core.duty_block`), or spins, or idles; "
        "each way of claiming a CPU watches the same cells in turn "
        "(`benchmarks/test_heartbeat_claims.py`): `normal` (nothing, what an ordinary user "
        "had before), `pinned` (the heartbeat bound to one CPU), `short-slice` (the "
        "scheduler's 0.1 ms slice, `sched_setattr`, Linux 6.12+, any user: gilx's claim "
        "without privileges) and `fifo` (real-time, root only). Error = read - truth, one "
        "number per round; `?` = the instrument said `disturbed` (not judged).",
        "",
    ]
    for source, data in runs:
        result = next(
            b["extra_info"]["heartbeat_claims"]
            for b in data["benchmarks"]
            if "heartbeat_claims" in b.get("extra_info", {})
        )
        m = data.get("machine_info", {})
        modes = [x for x in CLAIM_MODES if any(r["mode"] == x for r in result["rows"])]
        lines += [
            f"`{source.as_posix()}`: {result['user']} user, {result['hogs']} CPU hogs beside, "
            f"{result['rounds']} rounds of {result['seconds_per_cell']:g} s a cell; "
            f"{m.get('python_implementation', '')} {m.get('python_version', '')}, "
            f"kernel {m.get('gilx', {}).get('kernel', m.get('release', '?'))}.",
            "",
            *table(("cell (hold/rest)", "truth", *modes), claims_rows(result)),
            "",
        ]
    return lines


def convoy_section(builds: Sequence[Build]) -> list[str]:
    """The ``convoy`` group of each file that has one: slowdowns beside a busy thread."""
    found = [b for b in builds if any(x.group == "convoy" for x in b.benches)]
    if not found:
        return []
    lines = [
        CONVOY_SECTION,
        "",
        "Each call runs alone, then while one other thread runs `count_py` nonstop "
        "(`benchmarks/test_convoy.py`). A released call that takes the GIL back between its "
        "chunks waits, at each re-take, for the busy thread's switch interval. Slowdown = "
        "median beside / median alone, recomputed here (on a worker thread, the worker's own "
        "clock around the call: it includes the call's one return to Python but not the "
        "hand-offs of starting and collecting the worker); targets shown, not asserted. The "
        "uncontended cost of chunking is the `chunking` target above. A row whose last column "
        "is more than a few per cent was measured on a busy machine: it shows the neighbours "
        "as much as the GIL.",
        "",
    ]
    header = (
        "call",
        "thread",
        "alone (ms)",
        "beside (ms)",
        "slowdown",
        "target",
        "",
        "other processes' CPU",
    )
    for build in found:
        m = build.data.get("machine_info", {})
        g = m.get("gilx", {})
        lines += [
            f"{build.describe()}; switch interval "
            f"{fmt(1e3 * g.get('switch_interval_s', math.nan), 1)} ms, load average "
            f"{g.get('load_average_start')} before, "
            f"{build.data.get('gilx_run', {}).get('load_average_end')} after.",
            "",
            *table(header, convoy_rows(build)),
            "",
        ]
    return lines


def group_section(
    group: str, benches: list[Bench], sp: dict[str, tuple[float, float | None]]
) -> list[str]:
    scale, unit = unit_for(b.median for b in benches)
    has_speedup = any(b.name in sp for b in benches)
    header = ["benchmark", f"median ({unit})", f"IQR ({unit})", "spread", f"min ({unit})", "rounds"]
    if has_speedup:
        header += ["speedup", "efficiency"]
    header += ["other processes' CPU"]
    rows = []
    for b in benches:
        row = [
            f"`{b.name.split('[', 1)[-1].rstrip(']') if '[' in b.name else b.name}`",
            fmt(b.median / scale, 3),
            fmt(b.iqr / scale, 3),
            pct(b.spread),
            fmt(b.min / scale, 3),
            str(b.rounds),
        ]
        if has_speedup:
            speedup, efficiency = sp.get(b.name, (None, None))
            row += [fmt(speedup, 3), fmt(efficiency, 3)]
        row += [pct(b.info.get("foreign_cpu"), 0)]
        rows.append(row)
    return [f"### `{group}`", "", GROUPS.get(group, ""), "", *table(header, rows), ""]


def reproduce_section() -> list[str]:
    return [
        "## Reproduce and compare",
        "",
        "```sh",
        'pip install ".[bench]"',
        "# the whole suite (under 5 minutes on 2 cores), saved for later comparison:",
        "pytest benchmarks/ --benchmark-only --benchmark-save=mine \\",
        "    --benchmark-json=benchmarks/results/mine.json",
        "# this page, from that file:",
        "python tools/benchmarks_md.py benchmarks/results/mine.json -o BENCHMARKS.md",
        "# free-threaded beside a GIL build of the same CPython 3.13.5 source (each script",
        "# prints the interpreter's path), the CPU groups on each:",
        "FT=$(bash tools/build_cpython.sh ft); GIL=$(bash tools/build_cpython.sh gil)",
        "# (in a venv on each, or as here with the interpreter's own pip:)",
        '"$FT" -m pip install --prefer-binary ".[bench]"',
        '"$FT" -m pytest benchmarks/test_cpu_python.py benchmarks/test_cpu_c.py \\',
        "    --benchmark-only --benchmark-json=benchmarks/results/cpython3.13t-2core.json",
        '"$GIL" -m pip install --prefer-binary ".[bench]"',
        '"$GIL" -m pytest benchmarks/test_cpu_python.py benchmarks/test_cpu_c.py \\',
        "    --benchmark-only --benchmark-json=benchmarks/results/cpython3.13-gil-2core.json",
        "python tools/benchmarks_md.py benchmarks/results/mine.json \\",
        "    --free-threaded benchmarks/results/cpython3.13t-2core.json \\",
        "    --gil-build benchmarks/results/cpython3.13-gil-2core.json -o BENCHMARKS.md",
        "# the convoy group on its own (on any interpreter, 3.13t too), for its section:",
        "pytest benchmarks/test_convoy.py --benchmark-only \\",
        "    --benchmark-json=benchmarks/results/convoy-mine.json",
        "python tools/benchmarks_md.py benchmarks/results/mine.json \\",
        "    --convoy benchmarks/results/convoy-mine.json -o BENCHMARKS.md",
        "# how the heartbeat claims a CPU, every claim, as an ordinary user (USER) and as root:",
        "GILX_CLAIMS_SWEEP=1 runuser -u USER -- python -m pytest \\",
        "    benchmarks/test_heartbeat_claims.py --benchmark-only \\",
        "    --benchmark-json=benchmarks/results/claims-mine.json",
        "python tools/benchmarks_md.py benchmarks/results/mine.json \\",
        "    --claims benchmarks/results/claims-mine.json -o BENCHMARKS.md",
        '# interpreters beside processes (3.12+; on 3.13: pip install ".[bench,interpreters]"):',
        "pytest benchmarks/test_interpreters.py --benchmark-only \\",
        "    --benchmark-json=benchmarks/results/interpreters-mine.json",
        "python tools/benchmarks_md.py benchmarks/results/mine.json \\",
        "    --interpreters benchmarks/results/interpreters-mine.json -o BENCHMARKS.md",
        "# after a change: run again, compare with the saved run, fail on a 10 % slower median:",
        "pytest benchmarks/ --benchmark-only --benchmark-compare \\",
        "    --benchmark-compare-fail=median:10%",
        "# crossover (b) over several runs (how GILX_NOGIL_THRESHOLD was chosen):",
        "python tools/crossover_runs.py benchmarks/results/crossover-runs/*.json",
        "# or compare saved runs without running anything:",
        "pytest-benchmark compare --group-by=group --columns=median,iqr,min,rounds",
        "```",
        "",
        "Before each benchmark the suite waits (up to 10 s, 120 s in all) for other processes "
        "to leave the cores alone; `GILX_BENCH_QUIET_WAIT=0` turns that off. "
        "`GILX_BENCH_START_METHOD=spawn` (or `forkserver`) picks the process start method "
        "(default: the platform's). CI runs every benchmark once, untimed, as a smoke test: "
        "`pytest benchmarks/ --benchmark-disable -q`.",
        "",
        "Numbers from a 2-core machine are only as good as its quietness: the column *other "
        "processes' CPU* is the share of all cores that other processes (and the hypervisor's "
        "steal time) took during each benchmark, read from `/proc/stat`. Above a few per cent, "
        "a two-worker speedup is capped below 2 for reasons that have nothing to do with the "
        "GIL; re-run on a quiet machine.",
        "",
    ]


INTERPRETERS_SECTION = "## Interpreters beside processes: pure Python, and what a worker costs"


def _named(build: Build, group: str, name: str) -> Bench | None:
    return build.get(group, name)


def interpreters_rows(build: Build) -> tuple[list[list[str]], list[list[str]]]:
    """(scaling rows, cost rows) of one run of benchmarks/test_interpreters.py."""
    scaling = []
    for mode in ("interpreters", "processes"):
        one = _named(build, "interpreters", f"test_count_py[1-{mode}]")
        two = _named(build, "interpreters", f"test_count_py[2-{mode}]")
        gain = speedup(one.median, two.median) if one and two else None
        scaling.append(
            [
                mode,
                f"{fmt(one.median * 1e3, 1)} ms" if one else MISSING,
                f"{fmt(two.median * 1e3, 1)} ms" if two else MISSING,
                f"{fmt(gain)}x" if gain is not None else DASH,
                pct(two.spread) if two else DASH,
                interference([one, two]),
            ]
        )
    costs: list[list[str]] = []

    def cost_row(label: str, proc: float | None, interp: float | None, unit: str) -> None:
        scale = {"ms": 1e3, "µs": 1e6, "MiB": 1 / (1 << 20)}[unit]
        ratio = proc / interp if proc and interp else None
        costs.append(
            [
                label,
                f"{fmt(proc * scale, 1)} {unit}" if proc is not None else MISSING,
                f"{fmt(interp * scale, 1)} {unit}" if interp is not None else MISSING,
                f"{fmt(ratio)}x" if ratio is not None else DASH,
            ]
        )

    sp, si = (
        _named(build, "worker-costs", f"test_startup[{k}]") for k in ("process", "interpreter")
    )
    cost_row("start-up (to ready)", sp.median if sp else None, si.median if si else None, "ms")
    cost_row(
        "memory (one more worker)",
        sp.info.get("memory_bytes") if sp else None,
        si.info.get("memory_bytes") if si else None,
        "MiB",
    )
    sizes = sorted(
        {b.info["bytes"] for b in build.benches if b.group == "worker-costs" and "bytes" in b.info}
    )
    for size in sizes:
        ids = f"{size // 1024}KiB"
        pp, pi = (
            _named(build, "worker-costs", f"test_passing[{k}-{ids}]")
            for k in ("process", "interpreter")
        )
        label = (
            f"{size // 1024} KiB round trip" if size < 1 << 20 else f"{size >> 20} MiB round trip"
        )
        cost_row(label, pp.median if pp else None, pi.median if pi else None, "µs")
    return scaling, costs


def interpreters_section(builds: Sequence[Build]) -> list[str]:
    """Each run of benchmarks/test_interpreters.py: count_py on interpreters and processes,
    and the worker costs with the process / interpreter ratio."""
    if not builds:
        return []
    lines = [
        INTERPRETERS_SECTION,
        "",
        "Since CPython 3.12 each subinterpreter can have its own GIL (PEP 684): `gilx scale "
        "--mode interpreters` runs k of them, one thread each, in one process "
        "(`concurrent.interpreters` on 3.14+, `interpreters-pep-734` on 3.13, the standard "
        "library's `_xxsubinterpreters` on 3.12). `count_py` on 1 and 2 workers of each "
        "backend in the same run (`benchmarks/test_interpreters.py`), then what one worker "
        "costs: start-up from nothing to ready to run gilx's work (a process with the "
        "platform's start method; an interpreter created, `gilx.workloads` imported), the "
        "memory one more worker adds (a process's private resident memory, USS; an "
        "interpreter's share of this process's growth), and one round trip of a bytes "
        "payload (pickled over a pipe; the interpreters' own queues, channels on 3.12, woken "
        "through a pipe). Ratio = process / interpreter: above 1, the interpreter is "
        "cheaper.",
        "",
    ]
    for build in builds:
        m = build.data.get("machine_info", {})
        g = m.get("gilx", {})
        method = next(
            (b.info.get("start_method") for b in build.benches if b.info.get("start_method")), "?"
        )
        scaling, costs = interpreters_rows(build)
        lines += [
            f"{build.describe()}; processes start with {method}; load average "
            f"{g.get('load_average_start', '?')} before.",
            "",
            *table(
                (
                    "count_py on",
                    "1 worker",
                    "2 workers",
                    "speedup",
                    "spread (2)",
                    "other processes' CPU",
                ),
                scaling,
            ),
            "",
            *table(("one worker", "process", "interpreter", "ratio"), costs),
            "",
        ]
    return lines


def render(
    data: dict[str, Any],
    source: Path,
    ft: Build | None = None,
    gil: Build | None = None,
    convoy: Sequence[Build] = (),
    claims: Sequence[tuple[Path, dict[str, Any]]] = (),
    blame: Sequence[Build] = (),
    interpreters: Sequence[Build] = (),
) -> str:
    """BENCHMARKS.md; with ``ft`` and ``gil`` (both or neither), the free-threaded section;
    the convoy section from the main file's ``convoy`` group and from each of ``convoy``."""
    if (ft is None) != (gil is None):
        raise ValueError("render: give both ft and gil, or neither")
    benches = [Bench.from_json(raw) for raw in data["benchmarks"]]
    sp = speedups(benches)
    xo = crossover(benches)
    threshold = data.get("machine_info", {}).get("gilx", {}).get("NOGIL_THRESHOLD")
    lines = [
        "# gilx benchmarks",
        "",
        "<!-- Generated by tools/benchmarks_md.py from "
        f"{sources(source, ft, gil, convoy, claims, blame, interpreters)}; "
        "do not edit by hand. -->",
        "",
        "What the GIL costs and what releasing it buys, measured by the pytest-benchmark suite "
        "in `benchmarks/` on the machine below. Speedup = median time of one worker doing all "
        "the work / median time of k workers splitting it (all started together behind a "
        "barrier); efficiency = speedup / k. *Spread* is IQR / median.",
        "",
    ]
    lines += machine_section(data, source)
    lines += targets_section(benches, sp, xo)
    lines += crossover_section(xo, threshold)
    lines += instrument_section(benches)
    blames = [(None, benches), *((str(b.source), b.benches) for b in blame)]
    shown = False
    for label, run in blames:
        section = blame_section(run, label, heading=not shown)
        shown = shown or bool(section)
        lines += section
    lines += claims_section(claims)
    if ft is not None and gil is not None:
        lines += free_threaded_section(ft, gil)
    lines += convoy_section([Build.from_json(data, source), *convoy])
    lines += interpreters_section(interpreters)
    lines += ["## Every group", ""]
    seen = list(GROUPS) + sorted({b.group for b in benches} - set(GROUPS))
    for group in seen:
        members = [b for b in benches if b.group == group]
        if members:
            lines += group_section(group, members, sp)
    lines += reproduce_section()
    return "\n".join(lines).rstrip() + "\n"


def sources(
    source: Path,
    ft: Build | None,
    gil: Build | None,
    convoy: Sequence[Build] = (),
    claims: Sequence[tuple[Path, dict[str, Any]]] = (),
    blame: Sequence[Build] = (),
    interpreters: Sequence[Build] = (),
) -> str:
    """The files the page comes from, for its header comment."""
    text = source.as_posix()
    if ft is not None and gil is not None:
        text = (
            f"{source.as_posix()}, {ft.source.as_posix()} (free-threaded) and "
            f"{gil.source.as_posix()} (GIL build)"
        )
    if convoy:
        text += f"; convoy: {', '.join(b.source.as_posix() for b in convoy)}"
    if claims:
        text += f"; claims: {', '.join(path.as_posix() for path, _ in claims)}"
    if blame:
        text += f"; blame: {', '.join(b.source.as_posix() for b in blame)}"
    if interpreters:
        text += f"; interpreters: {', '.join(b.source.as_posix() for b in interpreters)}"
    return text


def newest_result() -> Path:
    found = sorted(RESULTS.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"benchmarks_md: no JSON file in {RESULTS}/; pass one")
    return found[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "json",
        nargs="?",
        type=Path,
        help=f"a --benchmark-json file (default: the newest in {RESULTS}/)",
    )
    parser.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    parser.add_argument(
        "--free-threaded",
        type=Path,
        metavar="FT.json",
        help="a run of the CPU groups on a free-threaded CPython (needs --gil-build)",
    )
    parser.add_argument(
        "--gil-build",
        type=Path,
        metavar="GIL.json",
        help="a run of the same groups on a GIL build of the same CPython source "
        "(needs --free-threaded)",
    )
    parser.add_argument(
        "--convoy",
        type=Path,
        metavar="RUN.json",
        action="append",
        default=[],
        help="a run of benchmarks/test_convoy.py (on any interpreter) for the "
        "convoy section; may be given more than once",
    )
    parser.add_argument(
        "--claims",
        type=Path,
        metavar="RUN.json",
        action="append",
        default=[],
        help="a run of benchmarks/test_heartbeat_claims.py (as root or as an "
        "ordinary user) for the heartbeat's section; may be given more than once",
    )
    parser.add_argument(
        "--blame",
        type=Path,
        metavar="RUN.json",
        action="append",
        default=[],
        help="a run of benchmarks/test_blame.py (any interpreter, root or an "
        "ordinary user) for the blame section; may be given more than once",
    )
    parser.add_argument(
        "--interpreters",
        type=Path,
        metavar="RUN.json",
        action="append",
        default=[],
        help="a run of benchmarks/test_interpreters.py (CPython "
        "3.12+) for the interpreters section; may be given more than once",
    )
    args = parser.parse_args(argv)
    if (args.free_threaded is None) != (args.gil_build is None):
        parser.error("--free-threaded and --gil-build go together: give both or neither")
    source: Path = args.json or newest_result()
    data = json.loads(source.read_text(encoding="utf-8"))
    ft = Build.load(args.free_threaded) if args.free_threaded else None
    gil = Build.load(args.gil_build) if args.gil_build else None
    convoy = [Build.load(path) for path in args.convoy]
    claims = [(path, json.loads(path.read_text(encoding="utf-8"))) for path in args.claims]
    blame = [Build.load(path) for path in args.blame]
    interpreters = [Build.load(path) for path in args.interpreters]
    text = render(data, source, ft, gil, convoy, claims, blame, interpreters)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
