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
    at_2048 = [gain(x, 2048) for x in quiet]
    assert f"({min(at_2048):.2f}x to {max(at_2048):.2f}x)" in text
    assert min(at_2048) >= 1.0 > gain(shown, 2048)
    assert f"lost in the BENCHMARKS.md run ({gain(shown, 2048):.2f}x)" in text
    from_4096 = [gain(x, n) for x in every for n in x.contended if n >= 4096]
    assert min(from_4096) >= 1.0
    assert f"won in all six ({min(from_4096):.2f}x or more)" in text
    assert len(every) == 6


def test_the_threshold_rule_over_all_runs(runs):
    quiet, shown = runs

    def rule(xos) -> int:
        sizes = sorted({n for x in xos for n in x.contended})
        never_lost = [
            n for n in sizes
            if all(gain(x, m) >= 1.0 for x in xos for m in x.contended if m >= n)
        ]
        return 1 << math.ceil(math.log2(never_lost[0]))

    text = guide()
    assert rule(quiet) == 2048
    assert "the smallest power of two from which releasing never lost in the five runs" in text
    assert f"The same rule over all six runs gives {rule([*quiet, shown]):,}." in text
