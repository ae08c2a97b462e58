"""The seed's tour, section by section, each claim shown with a number measured now.

``run(measurements, out)`` prints through ``out`` as it goes, so a section appears
as soon as it is measured.  Every number printed comes from ``measurements`` (or
from ``gilx.race()``), measured in this process on this machine.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gilx import _extras, _judgement, _present, backends, machine, runner, vectorise
from gilx._convoy import CONVOY_AT, SLEEP_SECONDS, ConvoyResult, verdict
from gilx._measured import Measurements
from gilx._race import KINDS, race
from gilx._table import GAIN_THRESHOLD, Table, measure
from gilx.machine import gil_enabled

Out = _present.Report
#: A measurement a verdict is built on: (workload, mode).
Judged = tuple[str, str]


class Metered(Protocol):
    """Any other measurement a verdict is built on (a convoy result): was it disturbed?"""

    @property
    def disturbed(self) -> bool: ...

    @property
    def other_cpu(self) -> float | None: ...


# The words of results are _present's; these short names keep the prose below readable.
_x = _present.times
_ms = _present.ms


def _heading(out: Out, title: str) -> None:
    out.heading(title)


def _seconds(timing: runner.Timing) -> str:
    return _present.median_text(timing)


def _scaling_lines(out: Out, measurements: Measurements, workload: str, mode: str) -> float:
    result = measurements.scale(workload, mode)
    k = measurements.workers
    backend = backends.get(mode)
    for line in _present.scaling_lines(result, k, f"{backend.plural(1)}:", f"{backend.plural(k)}:"):
        out(line)
    return result.point(k).speedup


def _race(out: Out, measurements: Measurements) -> None:
    _heading(out, "1. What is the GIL? The refcount race")
    increments = 200_000 if measurements.quick else 1_000_000
    out("Threads each add 1 to one shared counter, with the GIL released, as a refcount++")
    out("without a GIL would (the table of `gilx race`):")
    results = [race(kind, measurements.workers, increments) for kind in KINDS]
    for line in _present.race_table(results).splitlines():
        out(line)
    out("UnsafeCounter's plain load/add/store loses updates whenever two cores interleave;")
    out("LockedCounter takes a lock for each chunk of steps: safe, serialised, as the seed says.")


def _claim(
    out: Out,
    measurements: Measurements,
    claim: str,
    shown: bool,
    judged_on: Sequence[Judged | Metered],
) -> None:
    """Say whether this machine's numbers show the seed's ``claim``, and why not if not.

    ``judged_on``: the measurements the verdict is built on, (workload, mode)
    scaling runs in ``measurements``, or other measurements; when one of them
    stayed disturbed, no verdict is given.
    """
    points: list[Metered] = [
        measurements.speedup(*j) if isinstance(j, tuple) else j for j in judged_on
    ]
    if any(p.disturbed for p in points):
        known = [p.other_cpu for p in points if p.other_cpu is not None]
        # The judgements' reasons where the measurements carry them (gilx._judgement).
        judgements = [getattr(p, "judgement", None) for p in points if p.disturbed]
        why = _judgement.combine(*(j for j in judgements if j is not None)).why()
        out(f"{_present.NOT_JUDGED[0].upper()}{_present.NOT_JUDGED[1:]}: {claim}?")
        out(
            f"({why or _present.busy_note(max(known) if known else None)}, even after"
            " re-measuring; run again on a quieter machine.)"
        )
        return
    if shown:
        out(f"Measured here: {claim}.")
        return
    out(f"Not shown by these numbers: {claim}.")
    load = measurements.load_before
    if load is not None and load >= _present.BUSY_LOAD:
        out(
            f"(The machine was busy, load average {load:.2f} before measuring: other work held"
            " cores the workers needed.)"
        )


def _gain(speed: float) -> bool:
    return speed >= GAIN_THRESHOLD


def _two_threads(out: Out, measurements: Measurements) -> float:
    k = measurements.workers
    _heading(out, f"2. Demonstrating the GIL: {k} threads vs one (pure-Python count)")
    speed = _scaling_lines(out, measurements, "py", "threads")
    if gil_enabled():
        _claim(
            out,
            measurements,
            f"{k} threads are no faster than one for pure Python",
            not _gain(speed),
            [("py", "threads")],
        )
        out("With the GIL, one thread at a time runs Python bytecode.")
    else:
        out("There is no GIL in this process: pure-Python threads may run at once.")
    return speed


def _io(out: Out, measurements: Measurements) -> float:
    _heading(out, "3. The GIL is released during I/O (downloads from a local delayed server)")
    speed = _scaling_lines(out, measurements, "io", "threads")
    _claim(
        out, measurements, "threading speeds up I/O-bound work", _gain(speed), [("io", "threads")]
    )
    out("A thread waiting in a socket read has released the GIL; the others download meanwhile.")
    return speed


#: The tour's knob: a switch interval a tenth of CPython's default.
SHORT_INTERVAL = 0.0005


def _per_call(out: Out, label: str, r: ConvoyResult) -> None:
    out(_present.per_call_line(label, r))


def _waits(r: ConvoyResult) -> bool:
    """The per-call time beside the busy thread is a convoy's (at least CONVOY_AT x alone)."""
    assert r.latency is not None
    return r.latency.beside.p50 >= CONVOY_AT * r.latency.alone.p50


def _convoy(out: Out, measurements: Measurements) -> None:
    _heading(out, "4. The convoy effect: released work beside a busy Python thread")
    interval = sys.getswitchinterval()
    out("A thread that released the GIL (a socket read, a sleep, a C loop) must take it back")
    out("to return to Python. Beside a thread running Python nonstop, it may wait for that")
    out(f"thread's switch interval ({interval * 1e3:g} ms) at every return: CPython issue 7946.")
    out("One worker thread, alone, then beside one thread running count_py (gilx convoy):")
    sleep, io = measurements.convoy("sleep"), measurements.convoy("io")
    _per_call(out, "sleep", sleep)
    out(f"          (each call: time.sleep({SLEEP_SECONDS:g}))")
    _per_call(out, "io", io)
    out("          (each call: one download from the local server that answers after 20 ms)")
    if gil_enabled():
        _claim(
            out,
            measurements,
            "a thread returning from released work waits for the GIL",
            _waits(sleep),
            [sleep],
        )
        short = SHORT_INTERVAL
        out("")
        out(f"The knob: sys.setswitchinterval({short:g}) makes the busy thread hand the GIL over")
        out(f"{interval / short:g} times sooner. The same measurements with it:")
        knob_sleep = measurements.convoy("sleep", short)
        knob_io = measurements.convoy("io", short)
        _per_call(out, "sleep", knob_sleep)
        _per_call(out, "io", knob_io)
        out("Its price, in the busy thread's own work (count_py loop steps per second):")
        for name, default, knob in (("sleep", sleep, knob_sleep), ("io", io, knob_io)):
            change = knob.busy_rate / default.busy_rate - 1 if default.busy_rate > 0 else 0.0
            out(
                f"  beside {name + ':':<7}{default.busy_rate:>14,.0f} at {interval * 1e3:g} ms,"
                f" {knob.busy_rate:>14,.0f} at {short * 1e3:g} ms ({change:+.1%})"
            )
        out("(a drop is the knob's price: each hand-over is a thread switch the busy thread")
        out("waits through; a rise, on a busy machine, is noise.)")
        out(f"The interval is back at {sys.getswitchinterval() * 1e3:g} ms.")
    else:
        out("No GIL in this process: nothing to wait for, so no convoy and no knob to turn.")
    out("")
    out("Released C work pays it at every return to Python, and a loop that took the GIL")
    out("back between chunks would return many times a call. gilx's count_nogil (its policy:")
    out("csrc/reference/policy.h) keeps it released for the whole call on a worker thread,")
    out("as NumPy does once per np.dot call:")
    nogil, numpy = measurements.convoy("nogil"), measurements.convoy("numpy")
    for label, r in (("count_nogil", nogil), ("np.dot", numpy)):
        out(
            f"  {label:<12}{_seconds(r.alone):<10} alone, {_seconds(r.beside_timing):<10} beside:"
            f" {_x(r.slowdown)} ({verdict(r)})"
        )
    if gil_enabled():
        _claim(
            out,
            measurements,
            "one release per call keeps released C work at its own speed beside"
            " a busy Python thread",
            numpy.slowdown < CONVOY_AT,
            [numpy],
        )
    else:
        _claim(
            out,
            measurements,
            "without a GIL, released work runs as fast beside a busy Python thread as alone",
            all(r.slowdown < CONVOY_AT for r in (sleep, io, nogil, numpy)),
            [sleep, io, nogil, numpy],
        )
    if machine.cores() < 2:
        out("(One core here: the worker and the busy thread also share it, GIL or not.)")


def _numpy(out: Out, measurements: Measurements) -> float:
    _heading(out, "5. NumPy releases the GIL (np.dot of 1000x1000, BLAS pinned to one thread)")
    speed = _scaling_lines(out, measurements, "numpy", "threads")
    _claim(
        out,
        measurements,
        "NumPy calls on several threads run in parallel",
        _gain(speed),
        [("numpy", "threads")],
    )
    out("np.dot runs its BLAS kernel with the GIL released.")
    return speed


def _c_extensions(out: Out, measurements: Measurements) -> tuple[float, float]:
    _heading(out, "6. C extensions that release the GIL (one C loop, run two ways)")
    out("count_gil: the GIL held for the whole call")
    held = _scaling_lines(out, measurements, "gil", "threads")
    out("count_nogil: the same kernel inside Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS")
    released = _scaling_lines(out, measurements, "nogil", "threads")
    if gil_enabled():
        _claim(
            out,
            measurements,
            "only the version that releases the GIL runs on several cores at once",
            _gain(released) and not _gain(held),
            [("gil", "threads"), ("nogil", "threads")],
        )
    else:
        out("Without a GIL both versions can run at once: count_gil has nothing to hold.")
    _side_by_side_timelines(out, measurements)
    return held, released


def _side_by_side_timelines(out: Out, measurements: Measurements) -> None:
    """The seed's core diagrams, recorded: count_gil takes turns, count_nogil runs together."""
    import shutil

    from gilx import timeline, timeline_text

    out("")
    out("Who ran when, two threads each (gilx timeline --workload gil / nogil):")
    seconds = 0.05 if measurements.quick else 0.2
    half = max(timeline_text.MIN_WIDTH, (shutil.get_terminal_size((100, 24)).columns - 3) // 2)
    drawings = [
        timeline_text.draw(timeline.record(name, 2, seconds), half).splitlines()
        for name in ("gil", "nogil")
    ]
    rows = max(len(d) for d in drawings)
    for left, right in zip(*(d + [""] * (rows - len(d)) for d in drawings), strict=True):
        out(f"{left:<{half}} | {right}")


def _multiprocessing(out: Out, measurements: Measurements) -> float:
    _heading(out, "7. Solution 1: multiprocessing (the pure-Python count again)")
    result = measurements.scale("py", "processes")
    speed = _scaling_lines(out, measurements, "py", "processes")
    point = result.point(measurements.workers)
    if point.startup is not None:
        out(
            f"Starting {measurements.workers} processes ({result.start_method}) and preparing their"
            f" work took {point.startup:.3f} s more, not counted above."
        )
    _claim(
        out,
        measurements,
        "processes run pure Python in parallel",
        _gain(speed),
        [("py", "processes")],
    )
    out("Each process has its own interpreter and its own GIL.")
    return speed


def _interpreters(out: Out, measurements: Measurements, py_threads: float) -> None:
    k = measurements.workers
    _heading(out, "8. Solution 1b: an interpreter per core (the pure-Python count again)")
    out("Since CPython 3.12 each subinterpreter can have its own GIL (PEP 684); 3.14 puts them in")
    out(f"the standard library (concurrent.interpreters, PEP 734). {k} of them, one thread each,")
    out(f"run pure Python on {k} cores inside one process (gilx scale --mode interpreters):")
    if not measurements.can_run("py", "interpreters"):
        from gilx.backends.interpreters import require

        try:
            require()
        except (ValueError, ImportError) as exc:
            out(f"  not measured here: {exc}")
        return
    result = measurements.scale("py", "interpreters")
    speed = _scaling_lines(out, measurements, "py", "interpreters")
    procs = measurements.speedup("py", "processes")
    out(f"  (processes in this tour: {_x(procs.speedup)}; threads: {_x(py_threads)})")
    point = result.point(k)
    if point.startup is not None:
        out(
            f"Creating {k} interpreters and preparing their work took {point.startup:.3f} s"
            " more, not counted above."
        )
    if gil_enabled():
        _claim(
            out,
            measurements,
            "interpreters run pure Python in parallel",
            _gain(speed),
            [("py", "interpreters")],
        )
    else:
        out("No GIL in this process: threads already run pure Python in parallel. What")
        out("interpreters still buy is isolation: each has its own modules and globals, so")
        out("workers share no Python object and cannot race on one; what that costs is below.")
    out("")
    out("What one worker costs, measured now (gilx._costs):")
    for line in _present.costs_table(measurements.costs()):
        out(line)
    out("An interpreter shares its process: NumPy, and what is built on it, refuses to load in")
    out("one, and a crash in C ends them all; a process is the stronger wall, at the costs above.")


def _vectorisation(out: Out, measurements: Measurements) -> float:
    _heading(out, "9. Solution 2: NumPy vectorisation (the seed's sum of squares)")
    c = measurements.compare(vectorise.SUM_SQUARES)
    out(f"  n = {c.size:,}")
    out(f"  Python  sum(x**2 for x in data): {_seconds(c.python)}")
    out(f"  NumPy   np.sum(arr**2):          {_seconds(c.numpy)}")
    out(f"  NumPy is {c.numpy_speedup:.0f}x faster: one C loop over raw numbers, not objects.")
    return c.numpy_speedup


def _numba(out: Out, measurements: Measurements) -> None:
    _heading(out, "10. Solution 3: Numba with nogil / prange")
    if not _extras.installed("numba"):
        out('Numba is not installed here; pip install "gilx[numba]" to measure this section.')
        return
    from gilx import _numba

    out("One loop compiled twice by Numba, run on threads like count_gil and count_nogil:")
    out("numba-gil: @njit, the GIL held while the compiled loop runs")
    held = _scaling_lines(out, measurements, "numba-gil", "threads")
    out("numba-nogil: @njit(nogil=True), the same loop with the GIL released")
    released = _scaling_lines(out, measurements, "numba-nogil", "threads")
    compiled = [_numba.compile_seconds(nogil) for nogil in (False, True)]
    if all(c is not None for c in compiled):
        out(
            f"(JIT compilation, done before timing and not counted: {compiled[0]:.2f} s"
            f" and {compiled[1]:.2f} s)"
        )
    if gil_enabled():
        _claim(
            out,
            measurements,
            "only the nogil=True version runs on several threads at once",
            _gain(released) and not _gain(held),
            [("numba-gil", "threads"), ("numba-nogil", "threads")],
        )
    else:
        out("Without a GIL both versions can run at once: the GIL numba-gil keeps is not there.")
    out("")
    out("The seed's parallel_sum_squares: prange runs the loop on Numba's own threads")
    r = _measure_prange(quick=measurements.quick)
    out(f"  n = {r.size:,}; JIT compilation not counted")
    out(f"  NumPy  np.sum(arr**2):                      {_seconds(r.numpy)}")
    out(f"  Numba  the loop on one thread (range):      {_seconds(r.serial)}")
    out(f"  Numba  parallel_sum_squares (prange):       {_seconds(r.parallel)}")
    gain = runner.speedup(r.serial.median, r.parallel.median)
    out(f"  prange's speedup over the one-thread loop: {_x(gain)} on {machine.cores()} cores.")


#: The seed's array for parallel_sum_squares: ``np.random.rand(10_000_000)``.
_PRANGE_SIZE = 10_000_000


@dataclass(frozen=True)
class PrangeResult:
    size: int
    numpy: runner.Timing  # np.sum(arr**2)
    serial: runner.Timing  # the same Numba loop over range(): one thread, GIL released
    parallel: runner.Timing  # the seed's parallel_sum_squares (prange)


def _compile_sum_squares() -> tuple[Any, Any]:
    """The seed's parallel_sum_squares, compiled twice: for prange's threads, and for one thread.

    Compiled without ``parallel=True``, Numba runs ``prange`` as ``range``: the
    same loop on one thread (GIL released), the baseline for prange's speedup.
    """
    _extras.require("numba", "numba", "the Numba section")
    from numba import jit, prange  # type: ignore[import-not-found, import-untyped, unused-ignore]

    def parallel_sum_squares(arr: Any) -> float:
        """Numba can release the GIL and parallelise (the seed's function)."""
        total = 0.0
        for i in prange(len(arr)):
            total += arr[i] ** 2
        return total

    serial = jit(nopython=True, nogil=True)(parallel_sum_squares)
    parallel = jit(nopython=True, parallel=True)(parallel_sum_squares)
    return serial, parallel


def _measure_prange(*, quick: bool) -> PrangeResult:
    """The seed's ``prange`` loop, the same loop on one thread, and NumPy, on the same array."""
    import numpy as np

    size = _PRANGE_SIZE // 10 if quick else _PRANGE_SIZE
    arr = np.random.default_rng(2).random(size)
    serial, parallel = _compile_sum_squares()
    serial(arr)  # JIT warm-up, not timed
    parallel(arr)
    repeats = runner.QUICK_REPEATS if quick else runner.FULL_REPEATS
    return PrangeResult(
        size,
        runner.time_call(lambda: np.sum(arr**2), repeats),
        runner.time_call(lambda: serial(arr), repeats),
        runner.time_call(lambda: parallel(arr), repeats),
    )


def _free_threading(
    out: Out, measurements: Measurements, py_threads: float, py_procs: float
) -> None:
    _heading(out, "11. The future: free-threaded Python")
    gil = "on" if gil_enabled() else "off"
    out(f"This interpreter: {machine.python_description()}; GIL {gil}.")
    from gilx import timeline  # only this section draws on it

    seconds = 0.05 if measurements.quick else 0.2
    both = timeline.record("gil", threads=2, seconds=seconds)
    overlap_ms = both.overlap_seconds() * 1000
    span_ms = max((e.end for e in both.events), default=0.0) * 1000
    increments = 200_000 if measurements.quick else 1_000_000
    unsafe = race("unsafe", 2, increments)
    locked = race("locked", 2, increments)
    out(f"Pure-Python threads reached {_x(py_threads)} here, processes {_x(py_procs)}.")
    out(
        f"Two count_gil threads were inside their loops at the same time for {overlap_ms:.1f} ms"
        f" of the {span_ms:.1f} ms they took."
    )
    out(
        f"2 threads x {increments:,} increments: UnsafeCounter "
        + (f"lost {unsafe.lost:,}" if unsafe.judged else f"[{_present.race_not_judged(unsafe)}]")
        + ", LockedCounter "
        + (f"lost {locked.lost:,}." if locked.judged else f"[{_present.race_not_judged(locked)}].")
    )
    if gil_enabled():
        out("With the GIL on, count_gil threads take turns (no overlap) and pure-Python threads")
        out("cannot beat one thread. On a free-threaded build (python3.13t and later) with the GIL")
        out("off, the same lines show overlap and pure-Python threads near the processes' number;")
        out("UnsafeCounter still loses (a race in C needs no GIL) and LockedCounter, with a")
        out("lock of its own, still loses nothing. Run `gilx tour` there to measure it;")
        out("README.md shows both builds of one CPython source side by side.")
    else:
        out("The GIL is off: pure-Python threads run on several cores at once, count_gil holds")
        out("no lock that stops other threads, UnsafeCounter still loses updates (a race in C")
        out("needs no GIL) and LockedCounter's own lock keeps it exact. What this costs")
        out("one thread: README.md, 'The future: free-threaded Python'.")


def _decision_tree(
    out: Out,
    measurements: Measurements,
    t: Table,
) -> None:
    _heading(out, "13. Decision tree, filled in with this machine's numbers")
    k = measurements.workers
    py, np_row, io = t.row("cpu-bound-python"), t.row("cpu-bound-numpy"), t.row("io-bound")
    assert py.threading is not None and py.multiprocessing is not None
    assert np_row.threading is not None and io.threading is not None

    def agree(ok: bool, *disturbed: bool) -> str:
        if any(disturbed):
            return _present.NOT_JUDGED
        return "agrees" if ok else "disagrees here"

    processes_win = py.multiprocessing >= max(GAIN_THRESHOLD, py.threading)
    py_busy = py.disturbed[:2]
    out("Is your code CPU-bound?")
    out("├── Yes: Pure Python?")
    if py.interpreters is None:
        out(
            f"│   ├── Yes → Use multiprocessing      [{k} processes {_x(py.multiprocessing)},"
            f" {k} threads {_x(py.threading)}: {agree(processes_win, *py_busy)}]"
        )
        out(f"│   │   (interpreters, the other way: {t.interpreters_missing or 'not measured'})")
    else:
        best = max(py.multiprocessing, py.interpreters)
        win = best >= max(GAIN_THRESHOLD, py.threading)
        busy = (*py_busy, py.interpreters_disturbed)
        choice, why = _processes_or_interpreters(measurements, py.multiprocessing, py.interpreters)
        if any(busy):  # no choice from numbers that are not judged
            choice = "multiprocessing or interpreters (3.12+)"
            why = [f"not chosen: the speedups are {_present.NOT_JUDGED}", *why[1:]]
        out(
            f"│   ├── Yes → Use {choice}  [{k} processes {_x(py.multiprocessing)},"
            f" {k} interpreters {_x(py.interpreters)}, {k} threads {_x(py.threading)}:"
            f" {agree(win, *busy)}]"
        )
        for line in why:
            out(f"│   │     {line}")
    out(
        f"│   └── No (NumPy) → Threading may help [{k} threads {_x(np_row.threading)}:"
        f" {agree(np_row.threading >= GAIN_THRESHOLD, np_row.disturbed[0])}]"
    )
    tasks = f", {k} asyncio tasks {_x(io.asyncio)}" if io.asyncio is not None else ""
    io_helps = io.threading >= GAIN_THRESHOLD and (io.asyncio or GAIN_THRESHOLD) >= GAIN_THRESHOLD
    out(
        f"└── No (I/O-bound) → Use threading or asyncio [{k} threads {_x(io.threading)}{tasks}:"
        f" {agree(io_helps, io.disturbed[0] or io.asyncio_disturbed)}]"
    )
    out(_convoy_line(measurements))
    out(_dask_line(measurements))
    out(
        f'("helps" means at least {GAIN_THRESHOLD:.1f}x; every number is measured now, on'
        f" {machine.cores()} cores.)"
    )


#: Interpreters scale as well as processes when within this share of their speedup.
_SCALES_AS_WELL = 0.9


def _processes_or_interpreters(
    measurements: Measurements, procs: float, interps: float
) -> tuple[str, list[str]]:
    """Processes or interpreters for pure Python, by this machine's speedups and costs."""
    costs = measurements.costs()
    passing = max(costs.passing, key=lambda p: p.size)  # the largest payload measured
    data = f"a {_present.size_text(passing.size)} round trip {_x(passing.ratio)} " + (
        "faster in interpreters" if passing.ratio >= 1 else "slower in interpreters"
    )
    start = (
        f"start-up {_x(costs.startup_ratio)} (process / interpreter,"
        f" start method {costs.start_method})"
    )
    memory = f"memory {_present.ratio_text(costs.memory_ratio)}"
    if interps < _SCALES_AS_WELL * procs:
        choice = "multiprocessing"
        reason = "interpreters scale worse here"
    elif passing.ratio >= 1:
        choice = "interpreters (3.12+)"
        reason = "they scale as well here and pass data cheaper"
    else:
        choice = "multiprocessing"
        reason = "interpreters scale as well here but pass data no cheaper"
    return choice, [
        f"here: {reason}",
        f"costs here: {data}; {start}; {memory}",
        "processes where workers are short-lived, load NumPy, or must survive a crash",
    ]


def _convoy_line(measurements: Measurements) -> str:
    """The tree's branch for released work beside CPU-bound Python threads: the convoy."""
    sleep, nogil, numpy = (measurements.convoy(w) for w in ("sleep", "nogil", "numpy"))
    assert sleep.latency is not None
    measured = (
        f"1 ms sleep p50 {_ms(sleep.latency.alone.p50)} -> {_ms(sleep.latency.beside.p50)},"
        f" count_nogil {_x(nogil.slowdown)}, np.dot {_x(numpy.slowdown)} the time alone"
    )
    if any(r.disturbed for r in (sleep, nogil, numpy)):
        verdict_ = _present.NOT_JUDGED
    elif gil_enabled():
        verdict_ = "agrees" if _waits(sleep) else "no convoy here"
    else:
        verdict_ = "no GIL here: no convoy"
    return (
        "I/O or C work beside CPU-bound Python threads → each return from released work waits\n"
        "    for the GIL (the convoy): put the CPU-bound Python in processes, release the GIL\n"
        "    once per call in C, or shorten sys.setswitchinterval\n"
        f"    [beside 1 busy thread here: {measured}: {verdict_}]"
    )


def _dask_line(measurements: Measurements) -> str:
    """The tree's last line: past one machine, Dask; measured on a local cluster here."""
    k = measurements.workers
    line = "More than one machine → Dask (gilx scale --mode dask --scheduler ADDRESS)"
    if not _extras.installed("distributed"):
        return f'{line}\n    [not measured here: pip install "gilx[dask]"]'
    procs = measurements.speedup("py", "dask")
    threads = measurements.speedup("py", "dask-threads")
    busy = f"; {_present.NOT_JUDGED}" if procs.disturbed or threads.disturbed else ""
    return (
        f"{line}\n    [pure Python on a local Dask cluster here: {k} worker processes"
        f" {_x(procs.speedup)}, 1 worker with {k} threads {_x(threads.speedup)}{busy}]"
    )


def run(measurements: Measurements, out: Out) -> Table:
    """Walk the seed's sections in order; return the measured table."""
    out("gilx tour: the seed's claims about the GIL, each measured now on this machine")
    out(f"machine: {_present.machine_line(measurements.workers, measurements.load_before)}")
    out("(~ after a number: its repeats spread more than 10 %, treat it as rough)")
    _race(out, measurements)
    py_threads = _two_threads(out, measurements)
    _io(out, measurements)
    _convoy(out, measurements)
    _numpy(out, measurements)
    _c_extensions(out, measurements)
    py_procs = _multiprocessing(out, measurements)
    _interpreters(out, measurements, py_threads)
    _vectorisation(out, measurements)
    _numba(out, measurements)
    _free_threading(out, measurements, py_threads, py_procs)
    _heading(out, "12. GIL and Hardware Utilization")
    measured = measure(measurements)
    out(measured.render())
    _decision_tree(out, measurements, measured)
    _who_holds(out, measurements)
    return measured


def _who_holds(out: Out, measurements: Measurements) -> None:
    """Blame on a program with two culprits: who held the GIL while others waited."""
    from gilx._blame import two_culprits

    _heading(out, "13. Who holds the GIL in your program: gilx watch --top")
    out("Two culprits keep the GIL from four threads that answer requests (1 ms waits for the")
    out("network, then a little Python): _rebuild_index runs Python, _checksum_blocks calls C")
    out("that keeps the GIL (count_gil). gilx.watch(top=True) names them from inside, with no")
    out("privilege; where they held it while another thread waited, and who waited on whom:")
    w = two_culprits(0.5 if measurements.quick else 2.0)
    blame = w.blame
    if blame is None:
        out(f"  no blame here: {w.blame_unavailable}")
        return
    for function, thread, seconds, share in blame.by_function()[:3]:
        out(f"  {share:>4.0%} of the waiting ({_ms(seconds)}): {function} [{thread}]")
    for p in blame.waits[:3]:
        out(f"  {p.waiter} waited {_ms(p.seconds)} while {p.holder} held it")
    if not blame.judged:
        out(f"  ({_present.NOT_JUDGED}: the machine was busy; the shares may be off)")
    out("Your program: gilx watch --top SCRIPT (--json, --flame FILE for a flame graph).")
