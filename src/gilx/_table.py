"""The seed's "GIL and Hardware Utilization" table, every cell measured on this machine.

Each threading / multiprocessing cell is the speedup of ``workers`` workers
over one worker doing the same total work; each NumPy cell is how many times
faster NumPy is than pure Python for the same computation.  A cell reads ✓
when its number is at least :data:`GAIN_THRESHOLD`, ✗ below, and ``?`` when
its measurement is not judged even after re-measuring
(:class:`gilx._judgement.Judgement`: other processes used the cores the
workers needed, its speedup was unstable, or a reference showed the machine
did not give the cores): then it is not compared with the seed, and the
reason is printed.  Cells the seed marks N/A stay ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gilx import _measured, _present, machine, runner, vectorise
from gilx._judgement import CANNOT_METER
from gilx.machine import gil_enabled

#: A speedup at least this large is a gain (✓); below it, ✗.
GAIN_THRESHOLD = 1.2


@dataclass(frozen=True)
class _RowSpec:
    task: str
    label: str
    workload: str
    pair: vectorise.Pair | None
    seed: tuple[str, str, str] | None  # the seed's marks: threading, multiprocessing, numpy
    asyncio: bool = False  # measured on asyncio tasks too (I/O only: elsewhere N/A)


_ROWS = (
    _RowSpec("cpu-bound-python", "CPU-bound Python", "py", None, ("✗", "✓", "N/A")),
    _RowSpec("cpu-bound-numpy", "CPU-bound NumPy", "numpy", vectorise.MATMUL, ("✓", "✓", "✓")),
    _RowSpec("io-bound", "I/O-bound", "io", None, ("✓", "✓", "N/A"), asyncio=True),
    _RowSpec("memory-bound", "Memory-bound", "memory", vectorise.SUM_WORDS, ("✗", "✗", "✓")),
    _RowSpec("cpu-bound-c-gil", "CPU-bound C, GIL held", "gil", None, None),
    _RowSpec("cpu-bound-c-nogil", "CPU-bound C, GIL released", "nogil", None, None),
)


def mark(value: float | None) -> str:
    """✓ for a gain, ✗ for none, N/A for a cell that is not measured."""
    return _present.gain_mark(value, GAIN_THRESHOLD)


@dataclass(frozen=True)
class TableRow:
    task: str
    label: str
    threading: float | None
    multiprocessing: float | None
    numpy: float | None
    unstable: tuple[bool, bool, bool] = (False, False, False)
    seed: tuple[str, str, str] | None = None
    disturbed: tuple[bool, bool, bool] = (False, False, False)
    other_cpu: tuple[float | None, float | None, float | None] = (None, None, None)
    asyncio: float | None = None  # k asyncio tasks over 1 task (I/O row only)
    asyncio_unstable: bool = False
    asyncio_disturbed: bool = False
    asyncio_other_cpu: float | None = None
    interpreters: float | None = None  # k subinterpreters over 1 (None: not run here)
    interpreters_unstable: bool = False
    interpreters_disturbed: bool = False
    interpreters_other_cpu: float | None = None
    interpreters_reason: str = ""  # why the interpreters cell is not judged ("": judged)
    #: Why each cell (threading, multiprocessing, numpy, asyncio) is not judged ("": judged).
    reasons: tuple[str, str, str, str] = ("", "", "", "")

    @property
    def cells(self) -> tuple[float | None, float | None, float | None]:
        return (self.threading, self.multiprocessing, self.numpy)

    def to_dict(self) -> dict[str, object]:
        names = ("threading", "multiprocessing", "numpy")
        return {
            "task": self.task,
            "threading": self.threading,
            "multiprocessing": self.multiprocessing,
            "numpy": self.numpy,
            # a cell whose repeats spread more than SPREAD_LIMIT (the text's ~)
            "unstable": dict(zip(names, self.unstable, strict=True)),
            # the seed's marks for this row, where the seed has the row
            "seed": dict(zip(names, self.seed, strict=True)) if self.seed else None,
            # measured while other processes kept the workers' cores busy: not judged
            "disturbed": dict(zip(names, self.disturbed, strict=True)),
            "other_cpu": dict(zip(names, self.other_cpu, strict=True)),
            # why a cell is not judged, in words (null where it is judged)
            "reasons": {
                name: reason or None
                for name, reason in zip((*names, "asyncio"), self.reasons, strict=True)
            },
            "asyncio": self.asyncio,
            # k subinterpreters over 1, each with its own GIL (None: refused or before 3.12)
            "interpreters": self.interpreters,
        }

    def cell_text(self, index: int) -> str:
        """``✓ 1.80x``, ``? 1.09x`` (disturbed: not judged), ``N/A``; ``~`` when unsteady."""
        return _present.table_cell(
            self.cells[index], self.disturbed[index], self.unstable[index], GAIN_THRESHOLD
        )

    def asyncio_text(self) -> str:
        """The Asyncio cell, written like the others (``N/A`` off the I/O row)."""
        return _present.table_cell(
            self.asyncio, self.asyncio_disturbed, self.asyncio_unstable, GAIN_THRESHOLD
        )

    def interpreters_text(self) -> str:
        """The Interpreters cell (``N/A`` where they cannot run the row's work, or before 3.12)."""
        return _present.table_cell(
            self.interpreters,
            self.interpreters_disturbed,
            self.interpreters_unstable,
            GAIN_THRESHOLD,
        )


@dataclass(frozen=True)
class Table:
    cpu_count: int
    gil_enabled: bool
    python: str
    workers: int
    start_method: str | None
    rows: tuple[TableRow, ...] = field(default_factory=tuple)
    load_average: float | None = None  # before measuring
    interpreters_missing: str = ""  # why no interpreters ran here ("" : they did)

    @property
    def disturbed(self) -> bool:
        """Some cell stayed disturbed after re-measuring (it is shown, not judged)."""
        return any(
            any(r.disturbed) or r.asyncio_disturbed or r.interpreters_disturbed for r in self.rows
        )

    @property
    def note(self) -> str | None:
        """:data:`gilx._judgement.CANNOT_METER` where no cell's disturbance could be read."""
        shares = [
            x
            for r in self.rows
            for x in (*r.other_cpu, r.asyncio_other_cpu, r.interpreters_other_cpu)
        ]
        return None if any(x is not None for x in shares) else CANNOT_METER

    def row(self, task: str) -> TableRow:
        for r in self.rows:
            if r.task == task:
                return r
        raise KeyError(task)

    def to_dict(self) -> dict[str, object]:
        """The JSON object of ``table`` (the README's reference, JSON shapes)."""
        return {
            "cpu_count": self.cpu_count,
            "gil_enabled": self.gil_enabled,
            "python": self.python,
            "rows": [r.to_dict() for r in self.rows],
            "disturbed": self.disturbed,
            "note": self.note,
            "workers": self.workers,
            "start_method": self.start_method,
            "gain_threshold": GAIN_THRESHOLD,
        }

    def render(self) -> str:
        """The table as text, with its header, legend and where it disagrees with the seed."""
        return _present.table_text(self, GAIN_THRESHOLD)


def measure(measurements: _measured.Measurements) -> Table:
    """Fill the table from ``measurements`` (measuring what it lacks)."""
    rows = []
    for spec in _ROWS:
        threads = measurements.speedup(spec.workload, "threads")
        procs = measurements.speedup(spec.workload, "processes")
        comparison = measurements.compare(spec.pair) if spec.pair is not None else None
        tasks = measurements.speedup(spec.workload, "asyncio") if spec.asyncio else None
        inter = (
            measurements.speedup(spec.workload, "interpreters")
            if measurements.can_run(spec.workload, "interpreters")
            else None
        )
        rows.append(
            TableRow(
                task=spec.task,
                label=spec.label,
                threading=threads.speedup,
                multiprocessing=procs.speedup,
                numpy=comparison.numpy_speedup if comparison else None,
                unstable=(
                    threads.timing.unstable
                    or measurements.scale(spec.workload, "threads").baseline.unstable,
                    procs.timing.unstable
                    or measurements.scale(spec.workload, "processes").baseline.unstable,
                    bool(comparison and (comparison.python.unstable or comparison.numpy.unstable)),
                ),
                seed=spec.seed,
                disturbed=(
                    threads.disturbed,
                    procs.disturbed,
                    comparison.disturbed if comparison else False,
                ),
                other_cpu=(
                    threads.other_cpu,
                    procs.other_cpu,
                    comparison.other_cpu if comparison else None,
                ),
                asyncio=tasks.speedup if tasks else None,
                asyncio_unstable=bool(
                    tasks
                    and (
                        tasks.timing.unstable
                        or measurements.scale(spec.workload, "asyncio").baseline.unstable
                    )
                ),
                asyncio_disturbed=bool(tasks and tasks.disturbed),
                asyncio_other_cpu=tasks.other_cpu if tasks else None,
                interpreters=inter.speedup if inter else None,
                interpreters_unstable=bool(
                    inter
                    and (
                        inter.timing.unstable
                        or measurements.scale(spec.workload, "interpreters").baseline.unstable
                    )
                ),
                interpreters_disturbed=bool(inter and inter.disturbed),
                interpreters_other_cpu=inter.other_cpu if inter else None,
                interpreters_reason=_why(inter) if inter else "",
                reasons=(
                    _why(threads),
                    _why(procs),
                    _present.why_not(comparison.judgement) if comparison else "",
                    _why(tasks) if tasks else "",
                ),
            )
        )
    method = measurements.scale("py", "processes").start_method
    return Table(
        cpu_count=machine.cores(),
        gil_enabled=gil_enabled(),
        python=machine.python_description(),
        workers=measurements.workers,
        start_method=method,
        rows=tuple(rows),
        load_average=measurements.load_before,
        interpreters_missing=_interpreters_missing(),
    )


def _interpreters_missing() -> str:
    """Why this Python runs no interpreters ("" where it does)."""
    from gilx.backends.interpreters import require

    try:
        require()
    except (ValueError, ImportError) as exc:
        return f"not measured here: {exc}"
    return ""


def _why(point: runner.ScalePoint) -> str:
    """Why ``point`` is not judged, in words ("" when it is)."""
    return _present.why_not(point.judged) if point.disturbed else ""


def table(
    *,
    quick: bool = False,
    workers: int | None = None,
    start_method: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Table:
    """Measure the seed's table on this machine (``quick``: shorter, noisier runs)."""
    measurements = _measured.Measurements(
        quick=quick, workers=workers, start_method=start_method, progress=progress
    )
    return measure(measurements)
