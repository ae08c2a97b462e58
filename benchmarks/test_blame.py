"""Blame (``gilx watch --top``): how right it is on a program with known culprits, beside
py-spy, and what it costs the watched program.

Accuracy: ``benchmarks/blame_truth.py`` runs five threads whose holds are known (A: a
Python loop, B: ``count_gil``, C: ``usleep`` through ``ctypes.PyDLL``, blocked with the GIL
held, D: ``count_nogil``, E: 1 ms sleeps; each times what it held by itself).  It runs as
``gilx watch --top --json`` in a child process, and py-spy ``record --gil --idle`` samples
that same process from outside at the same time (ptrace: root here), so both read the
same run.  The table gives, per thread: the true share of the run it held the GIL (a range:
its own count, up to that plus the time it waited for a CPU), gilx's, py-spy's; and per
culprit function, its share of the time the GIL was held while another thread waited,
gilx's beside the truth (all five threads always want the GIL back, so whenever one holds
it the others wait: the true share is the thread's share of all holding).

Cost: the same fixed work (a thread running a Python loop, one thread doing 1 ms sleeps)
timed plain, under ``gilx.watch()`` and under ``gilx.watch(top=True)``, in adjacent
triples with the order rotated; the cost is the median ratio minus one.

Run: ``pytest benchmarks/test_blame.py --benchmark-only -s``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import gilx

HERE = Path(__file__).resolve().parent
TRUTH = HERE / "blame_truth.py"
CULPRITS = {
    "A": "spin_python",
    "B": "run_count_gil",
    "C": "block_holding_gil",
    "D": "burn_released",
    "E": "sleep_often",
}

#: The ground-truth program's length, and py-spy's sampling window inside it.
SECONDS = float(os.environ.get("GILX_BLAME_SECONDS", "6"))
PYSPY_RATE = 1000

needs_gil = pytest.mark.skipif(not gilx.gil_enabled(), reason="no GIL: nothing to blame")


def _pyspy_shares(raw: str, samples: int) -> dict[str, float]:
    """py-spy's raw output: per culprit function, the share of samples in which the GIL
    holder's stack ran it."""
    counts = dict.fromkeys(CULPRITS.values(), 0)
    for line in raw.splitlines():
        if not line.strip():
            continue
        frames, count = line.rsplit(" ", 1)
        for function in counts:
            if f";{function} (" in f";{frames}":
                counts[function] += int(count)
                break
    return {f: c / samples for f, c in counts.items()} if samples else {}


def run_once(seconds: float, with_pyspy: bool) -> dict[str, Any]:
    """One run of the ground truth under ``gilx watch --top --json``, py-spy beside it."""
    exe = shutil.which("py-spy") if with_pyspy else None
    with tempfile.TemporaryDirectory() as tmp:
        truth_file = os.path.join(tmp, "truth.json")
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gilx",
                "watch",
                "--top",
                "--json",
                str(TRUTH),
                str(seconds),
                truth_file,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        spy: dict[str, Any] = {"problem": "py-spy not installed" if with_pyspy else "off"}
        if exe is not None:
            time.sleep(min(1.0, seconds / 4))  # past the imports: the threads run
            window = max(1, int(seconds - 2 * min(1.0, seconds / 4)))
            out = os.path.join(tmp, "raw.txt")
            done = subprocess.run(
                [
                    exe,
                    "record",
                    "--pid",
                    str(child.pid),
                    "--gil",
                    "--idle",
                    "--nonblocking",
                    "--rate",
                    str(PYSPY_RATE),
                    "--duration",
                    str(window),
                    "--format",
                    "raw",
                    "--output",
                    out,
                ],
                capture_output=True,
                text=True,
                timeout=window + 60,
            )
            if done.returncode == 0 and os.path.exists(out):
                with open(out, encoding="utf-8") as f:
                    spy = {"shares": _pyspy_shares(f.read(), window * PYSPY_RATE)}
            else:
                spy = {"problem": (done.stderr or done.stdout).strip()[-300:]}
        _, err = child.communicate(timeout=seconds + 120)
        if child.returncode != 0:
            raise RuntimeError(f"gilx watch --top failed: {err[-2000:]}")
        with open(truth_file) as f:
            truth = json.load(f)
    report = json.loads(err.strip().splitlines()[-1])
    return {"truth": truth, "report": report, "pyspy": spy}


def score(run: dict[str, Any]) -> dict[str, Any]:
    """Per thread and per culprit: truth, gilx, py-spy, and gilx's distance to the truth
    (0 inside the truth's range)."""
    truth, blame, spy = run["truth"], run["report"]["blame"], run["pyspy"]
    wall = truth["wall"]
    held_total = sum(t["held"] for t in truth["threads"].values())
    by_name = {t["name"]: t for t in blame["threads"]}
    holder_share: dict[str, float] = dict.fromkeys(CULPRITS.values(), 0.0)
    for h in blame["holders"]:
        for function in holder_share:
            if any(frame.startswith(f"{function} (") for frame in h["stack"]):
                holder_share[function] += h["share"]
                break
    rows = []
    lows = {k: t["held"] for k, t in truth["threads"].items()}
    highs = {k: t["held"] + t["delay"] for k, t in truth["threads"].items()}
    for name, t in truth["threads"].items():
        low, high = t["held"] / wall, (t["held"] + t["delay"]) / wall
        got = by_name.get(name, {}).get("held_share", 0.0)
        function = CULPRITS[name]
        true_share = t["held"] / held_total if held_total else 0.0
        # Its share of all holding, as a range: least when it held least and the others
        # most, most the other way round.
        others_low = sum(v for k, v in lows.items() if k != name)
        others_high = sum(v for k, v in highs.items() if k != name)
        share_low = lows[name] / (lows[name] + others_high) if lows[name] else 0.0
        share_high = highs[name] / (highs[name] + others_low) if highs[name] else 0.0
        share_got = holder_share[function]
        rows.append(
            {
                "truth_share_range": [share_low, share_high],
                "gilx_share_range_error": 0.0
                if share_low <= share_got <= share_high
                else min(abs(share_got - share_low), abs(share_got - share_high)),
                "thread": name,
                "function": function,
                "truth_held": [low, high],
                "gilx_held": got,
                "gilx_error": 0.0 if low <= got <= high else min(abs(got - low), abs(got - high)),
                "pyspy_held": spy.get("shares", {}).get(function),
                "truth_share_of_waiting": true_share,
                "gilx_share_of_waiting": holder_share[function],
                "gilx_share_error": holder_share[function] - true_share,
            }
        )
    spy_diff = [
        abs(r["gilx_held"] - r["pyspy_held"])
        for r in rows
        if r["pyspy_held"] is not None and r["thread"] in "ABC"
    ]
    on_culprits = sum(holder_share[CULPRITS[k]] for k in "ABC")
    on_innocents = sum(holder_share[CULPRITS[k]] for k in "DE")
    return {
        "rows": rows,
        "on_A_B_C": on_culprits,
        "on_D_E": on_innocents,
        "gilx_vs_pyspy_max_abs": max(spy_diff) if spy_diff else None,
        "judged": blame["judged"],
        "disturbed": run["report"]["disturbed"],
        "others_share": run["report"]["meter"]["others_share_of_needed"],
        "pyspy_problem": spy.get("problem"),
        "seconds": wall,
        "python": sys.version.split()[0],
        "load_average": list(os.getloadavg()),
        "euid": os.geteuid() if hasattr(os, "geteuid") else None,
    }


def print_score(s: dict[str, Any]) -> None:
    print(
        f"\nblame on the ground truth (python {s['python']}, {s['seconds']:.1f} s,"
        f" judged {s['judged']}, others took {s['others_share']}, load {s['load_average']})"
    )
    print(
        "thread  function            held: truth range     gilx  |err|  py-spy"
        "   share of waiting: truth range  gilx  |err|"
    )
    for r in s["rows"]:
        low, high = r["truth_held"]
        slow, shigh = r["truth_share_range"]
        spy = f"{r['pyspy_held']:.3f}" if r["pyspy_held"] is not None else "  -  "
        print(
            f"{r['thread']:<7} {r['function']:<19} {low:.3f}..{high:.3f}"
            f"      {r['gilx_held']:.3f}  {r['gilx_error']:.3f}  {spy}"
            f"                    {slow:.3f}..{shigh:.3f}  "
            f"{r['gilx_share_of_waiting']:.3f}  {r['gilx_share_range_error']:.3f}"
        )
    print(
        f"gilx: {s['on_A_B_C']:.1%} of held-while-others-waited on A/B/C's functions,"
        f" {s['on_D_E']:.1%} on D/E's"
        + (f"; py-spy: {s['pyspy_problem']}" if s["pyspy_problem"] else "")
    )


@needs_gil
@pytest.mark.benchmark(group="blame")
def test_blame_accuracy(benchmark):
    seconds = 1.0 if benchmark.disabled else SECONDS
    run = benchmark.pedantic(
        run_once, args=(seconds, not benchmark.disabled), rounds=1, iterations=1
    )
    result = score(run)
    print_score(result)
    benchmark.extra_info["blame_accuracy"] = result


# --- cost ---------------------------------------------------------------------------------


def _work(rounds: int = 12) -> float:
    """Fixed work: one thread running a Python loop while another does 1 ms sleeps (and
    waits for the GIL after each); seconds.  (Two Python threads taking turns would
    measure how the GIL's hand-overs fall, which any third thread changes.)"""
    stop = threading.Event()

    def sleeper() -> None:
        while not stop.is_set():
            time.sleep(0.001)

    def python() -> None:
        gilx.count_py(250_000 * rounds)

    side = threading.Thread(target=sleeper)
    side.start()
    workers = [threading.Thread(target=python)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    took = time.perf_counter() - start
    stop.set()
    side.join()
    return took


def _sampler_cpu() -> float:
    """CPU seconds used so far by blame's sampler threads (named gilx-blame; Linux)."""
    total = 0.0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().strip() != "gilx-blame":
                    continue
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9  # ns on a CPU
        except (OSError, ValueError, IndexError):
            continue
    return total


def cost(triples: int = 16) -> dict[str, Any]:
    """Median of watched / plain over adjacent triples (plain, watch, watch top), the
    order rotated so that drift cancels.  Also what the cost is made of, which a busy
    machine hardly moves: the GIL time the heartbeat takes per beat (with blame's work
    at each beat, or without), and the CPU the sampler thread uses, per core."""
    modes = ("plain", "watch", "top")
    ratios: dict[str, list[float]] = {"watch": [], "top": [], "top_vs_watch": []}
    per_beat: dict[str, list[float]] = {"watch": [], "top": []}
    sampler_cpu, sampler_wall = 0.0, 0.0
    for i in range(triples):
        took: dict[str, float] = {}
        for k in range(3):
            mode = modes[(i + k) % 3]
            if mode == "plain":
                took[mode] = _work()
                continue
            with gilx.watch(top=mode == "top") as w:
                cpu = _sampler_cpu()
                took[mode] = _work()
                if mode == "top":
                    sampler_cpu += _sampler_cpu() - cpu
                    sampler_wall += took[mode]
            per_beat[mode].append(w.reading().cost_per_beat)
        ratios["watch"].append(took["watch"] / took["plain"])
        ratios["top"].append(took["top"] / took["plain"])
        ratios["top_vs_watch"].append(took["top"] / took["watch"])
    out: dict[str, Any] = {
        "triples": triples,
        "load_average": list(os.getloadavg()),
        "gil_per_beat_us": {m: statistics.median(v) * 1e6 for m, v in per_beat.items()},
        "sampler_cpu_share": sampler_cpu / sampler_wall if sampler_wall else None,
    }
    for mode, values in ratios.items():
        values.sort()
        out[mode] = {
            "cost": statistics.median(values) - 1,
            "quartiles": [values[len(values) // 4] - 1, values[3 * len(values) // 4] - 1],
        }
    return out


@needs_gil
@pytest.mark.benchmark(group="blame")
def test_blame_cost(benchmark):
    triples = 2 if benchmark.disabled else 16
    result = benchmark.pedantic(cost, args=(triples,), rounds=1, iterations=1)
    print("\ncost to the watched program (median of watched / plain - 1, quartiles):")
    names = {
        "watch": "watch() vs plain",
        "top": "watch(top=True) vs plain",
        "top_vs_watch": "watch(top=True) vs watch()",
    }
    for mode, name in names.items():
        r = result[mode]
        print(
            f"  {name}: {r['cost']:+.2%}"
            f" ({r['quartiles'][0]:+.2%} .. {r['quartiles'][1]:+.2%}),"
            f" {result['triples']} triples; load {result['load_average']}"
        )
    beat = result["gil_per_beat_us"]
    print(
        f"  GIL held by the heartbeat per beat: {beat['watch']:.1f} us plain,"
        f" {beat['top']:.1f} us with blame; blame's sampler used"
        f" {result['sampler_cpu_share']:.2%} of a core"
    )
    benchmark.extra_info["blame_cost"] = result
