"""The price and the gain of free-threading, measured on this interpreter.

    python tools/ft_numbers.py                    # this interpreter alone
    python tools/ft_numbers.py --versus PYTHON    # and beside another build
    python tools/ft_numbers.py --json

Measures the pure-Python ``count_py`` loop: nanoseconds per iteration on one
thread (the single-thread price of free-threading, when one build is compared
with the other), and ``gilx.scale("py")`` on 1 and 2 threads with the same
fixed total work (the speedup, and the absolute times, so that 2 threads of
one build can be set against 1 thread of the other).  With ``--versus``, the
other interpreter (which must have gilx installed) runs this script with
``--json`` and both are printed side by side.  README.md renders it with
both builds of the same CPython source (tools/render_docs.py, ``@gil`` /
``@ft``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import gilx

ITERATIONS = 4_000_000  # the total work of the scale runs, and the per-iteration loop


def describe() -> str:
    build = "free-threaded" if gilx._core.FREE_THREADED_BUILD else "GIL build"
    gil = "on" if gilx.gil_enabled() else "off"
    return f"CPython {platform.python_version()} {build}, GIL {gil}"


def measure(repeats: int) -> dict[str, object]:
    gilx.count_py(ITERATIONS // 10)  # warm up
    best = min(_timed(lambda: gilx.count_py(ITERATIONS)) for _ in range(repeats))
    scaled = gilx.scale("py", "threads", workers=(1, 2), size=ITERATIONS, repeats=repeats)
    points = {p.workers: p for p in scaled.points}
    return {
        "python": describe(),
        "ns_per_iteration": best / ITERATIONS * 1e9,
        "seconds_1_thread": points[1].seconds,
        "seconds_2_threads": points[2].seconds,
        "speedup_2_threads": points[2].speedup,
    }


def _timed(call: object) -> float:
    start = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - start


def render(results: list[dict[str, object]]) -> str:
    rows = [
        ("interpreter", lambda r: str(r["python"])),
        ("count_py, one thread", lambda r: f"{r['ns_per_iteration']:.1f} ns per iteration"),
        ("2 threads, same work", lambda r: f"{r['speedup_2_threads']:.2f}x over 1 thread"),
    ]
    width = max(len(name) for name, _ in rows) + 2
    cols = [max(len(get(r)) for _, get in rows) + 3 for r in results]
    lines = []
    for name, get in rows:
        cells = "".join(get(r).ljust(c) for r, c in zip(results, cols, strict=True))
        lines.append(f"{name.ljust(width)}{cells}".rstrip())
    if len(results) == 2:
        gil, ft = results
        price = float(ft["ns_per_iteration"]) / float(gil["ns_per_iteration"]) - 1  # type: ignore[arg-type]
        net = float(gil["seconds_1_thread"]) / float(ft["seconds_2_threads"])  # type: ignore[arg-type]
        lines.append(f"single-thread price of the second: {price:+.0%} per iteration")
        lines.append(f"2 threads of the second vs 1 thread of the first: {net:.2f}x")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versus", metavar="PYTHON", help="another interpreter, shown first")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mine = measure(args.repeats)
    if args.json:
        print(json.dumps(mine))
        return 0
    results = [mine]
    if args.versus:
        done = subprocess.run(
            [args.versus, __file__, "--json", "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            print(f"ft_numbers: {args.versus} failed:\n{done.stderr}", file=sys.stderr)
            return 1
        results.insert(0, json.loads(done.stdout))
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
