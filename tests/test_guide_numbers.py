"""The guide's crossover sentences (docs/extension-guide.md, section 3) say what the data say.

The numbers are read here from the benchmark runs in the repository, the way
tools/benchmarks_md.py and tools/crossover_runs.py read them, and must appear in the guide
as written: a sentence that rounds, picks a subset of runs or misreads a unit fails.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "extension-guide.md"
QUIET_RUNS = sorted((ROOT / "benchmarks" / "results" / "crossover-runs").glob("*.json"))
SHOWN_RUN = ROOT / "benchmarks" / "results" / "cpython3.11-2core.json"  # BENCHMARKS.md's

pytestmark = pytest.mark.skipif(
    not (GUIDE.exists() and QUIET_RUNS and SHOWN_RUN.exists()),
    reason="needs docs/ and benchmarks/results/ (a source checkout or the sdist)",
)


@pytest.fixture(scope="module")
def runs():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from benchmarks_md import Bench, crossover
    finally:
        sys.path.remove(str(ROOT / "tools"))

    def read(path: Path):
        data = json.loads(path.read_text(encoding="utf-8"))
        return crossover([Bench.from_json(raw) for raw in data["benchmarks"]])

    return [read(p) for p in QUIET_RUNS], read(SHOWN_RUN)


def gain(xo, n: int) -> float:
    gil, nogil = xo.contended[n]
    return gil / nogil


def guide() -> str:
    return " ".join(GUIDE.read_text(encoding="utf-8").split())  # one line: sentences wrap


def test_one_release_in_iterations(runs):
    quiet, shown = runs
    text = guide()
    assert f"costs {shown.release_cost * 1e9:.1f} ns" in text
    assert f"one iteration of the counting loop {shown.seconds_per_iteration * 1e9:.3f} ns" in text
    assert f"about {shown.n_alone:,.0f} iterations" in text
    low, high = min(x.n_alone for x in quiet), max(x.n_alone for x in quiet)
    assert f"at {low:,.0f} to {high:,.0f} iterations" in text


def test_the_contended_crossover_over_all_runs(runs):
    quiet, shown = runs
    text = guide()
    every = [*quiet, shown]
    crossings = [x.n_contended for x in every if x.n_contended is not None]
    assert f"between n ≈ {min(crossings):,.0f} and n ≈ {max(crossings):,.0f}" in text
    at_2048 = [gain(x, 2048) for x in every]
    won = [g for g in at_2048 if g >= 1.0]
    lost = [g for g in at_2048 if g < 1.0]
    assert f"won in {_WORDS[len(won)]} of them ({min(won):.2f}x to {max(won):.2f}x)" in text
    assert f"lost in {_WORDS[len(lost)]} ({', '.join(f'{g:.2f}x' for g in lost)}" in text
    from_4096 = [gain(x, n) for x in every for n in x.contended if n >= 4096]
    assert min(from_4096) >= 1.0
    assert f"won in all {_WORDS[len(every)]} ({min(from_4096):.2f}x or more)" in text


_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def test_the_threshold_is_the_rule_over_all_runs(runs):
    from gilx import _core

    quiet, shown = runs

    def rule(xos) -> int:
        sizes = sorted({n for x in xos for n in x.contended})
        never_lost = [
            n for n in sizes if all(gain(x, m) >= 1.0 for x in xos for m in x.contended if m >= n)
        ]
        return 1 << math.ceil(math.log2(never_lost[0]))

    text = guide()
    every = [*quiet, shown]
    assert rule(every) == _core.NOGIL_THRESHOLD
    assert f"is {_core.NOGIL_THRESHOLD:,} iterations" in text
    assert (
        f"the smallest power of two from which releasing never lost in any of the "
        f"{_WORDS[len(every)]} runs" in text
    )
