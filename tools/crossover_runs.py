#!/usr/bin/env python3
"""Crossover (b) over several benchmark runs: the evidence behind GILX_NOGIL_THRESHOLD.

    python tools/crossover_runs.py benchmarks/results/crossover-runs/*.json

The crossover moves from run to run (BENCHMARKS.md), so the threshold is
read off several quiet runs: for each size, the gain from releasing in every
run, and the smallest power of two from which releasing never lost in any of
them.  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

from benchmarks_md import Bench, crossover


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="--benchmark-json files")
    args = parser.parse_args(argv)
    gains: dict[int, list[float | None]] = {}
    names: list[str] = []
    for i, path in enumerate(args.runs):
        data = json.loads(path.read_text(encoding="utf-8"))
        xo = crossover([Bench.from_json(raw) for raw in data["benchmarks"]])
        if xo is None:
            continue
        names.append(path.stem)
        n_b = "-" if xo.n_contended is None else f"{xo.n_contended:,.0f}"
        print(f"{path.stem}: crossover (a) n = {xo.n_alone:,.0f}, (b) n = {n_b}")
        for n, (gil, nogil) in xo.contended.items():
            gains.setdefault(n, [None] * len(args.runs))[i] = gil / nogil
    print()
    print(f"{'n':>8}  " + "  ".join(f"{name:>8}" for name in names) + "   releasing")
    never_lost: list[int] = []
    for n in sorted(gains):
        row = gains[n]
        measured = [g for g in row if g is not None]
        verdict = "never lost" if measured and min(measured) >= 1.0 else "lost"
        if verdict == "never lost":
            never_lost.append(n)
        else:
            never_lost.clear()
        cells = "  ".join(f"{g:8.2f}" if g is not None else f"{'-':>8}" for g in row)
        print(f"{n:>8,}  {cells}   {verdict}")
    print()
    if never_lost:
        first = never_lost[0]
        power = 1 << math.ceil(math.log2(first)) if first > 0 else 0
        print(f"releasing never lost from n = {first:,} on: threshold {power:,}")
    else:
        print("releasing lost at the largest size measured: no threshold from these runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
