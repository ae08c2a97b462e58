"""The seed's "GIL and Hardware Utilization" table, every cell measured on this machine.

Each threading / multiprocessing cell is the speedup of ``workers`` workers
over one worker doing the same total work; each NumPy cell is how many times
faster NumPy is than pure Python for the same computation.  A cell reads ✓
when its number is at least :data:`GAIN_THRESHOLD`, ✗ below.  Cells the seed
marks N/A stay ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gilx import report, vectorise
from gilx._gilstate import gil_enabled

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
    if value is None:
        return "N/A"
    return "✓" if value >= GAIN_THRESHOLD else "✗"


@dataclass(frozen=True)
class TableRow:
    task: str
    label: str
    threading: float | None
    multiprocessing: float | None
    numpy: float | None
    unstable: tuple[bool, bool, bool] = (False, False, False)
    seed: tuple[str, str, str] | None = None
    asyncio: float | None = None  # k asyncio tasks over 1 task (I/O row only)
    asyncio_unstable: bool = False

    @property
    def cells(self) -> tuple[float | None, float | None, float | None]:
        return (self.threading, self.multiprocessing, self.numpy)

    def to_dict(self) -> dict[str, object]:
        return {
            "task": self.task,
            "threading": self.threading,
            "multiprocessing": self.multiprocessing,
            "numpy": self.numpy,
            "asyncio": self.asyncio,
        }


@dataclass(frozen=True)
class Table:
    cpu_count: int
    gil_enabled: bool
    python: str
    workers: int
    start_method: str | None
    rows: tuple[TableRow, ...] = field(default_factory=tuple)
    load_average: float | None = None  # before measuring

    def row(self, task: str) -> TableRow:
        for r in self.rows:
            if r.task == task:
                return r
        raise KeyError(task)

    def to_dict(self) -> dict[str, object]:
        """The JSON object of CONTRACT.md's ``table``."""
        return {
            "cpu_count": self.cpu_count,
            "gil_enabled": self.gil_enabled,
            "python": self.python,
            "rows": [r.to_dict() for r in self.rows],
        }

    def render(self) -> str:
        """The table as text, with its header, legend and where it disagrees with the seed."""
        gil = "on" if self.gil_enabled else "off"
        lines = [
            "GIL and Hardware Utilization (measured now)",
            f"machine: {self.cpu_count} cores, {self.python}, GIL {gil}"
            + (
                f"; 1-minute load average {self.load_average:.2f} before measuring"
                if self.load_average is not None
                else ""
            ),
            f"threading / multiprocessing: speedup of {self.workers} workers over 1 worker"
            " doing the same total work",
            f"  (processes: start method {self.start_method}; start-up not counted)",
            "numpy: times faster than pure Python for the same computation, both on one core",
            "  (a matrix product; the sum of a large buffer's words)",
            f"asyncio: {self.workers} tasks on one event loop over 1 task, the same downloads"
            " (I/O only)",
            f"✓ = at least {GAIN_THRESHOLD:.1f}x, ✗ = less; ~ = repeats spread more than 10 %",
            "",
        ]
        header = (
            f"{'Task Type':<28}{'Threading':<14}{'Multiprocessing':<18}{'NumPy':<12}{'Asyncio':<10}"
        )
        lines += [header, "─" * len(header)]
        disagreements = []
        names = ("threading", "multiprocessing", "numpy")
        for r in self.rows:
            texts = []
            for value, shaky in zip(r.cells, r.unstable, strict=True):
                texts.append(
                    "N/A" if value is None else f"{mark(value)} {value:.2f}x{'~' if shaky else ''}"
                )
            texts.append(
                "N/A"
                if r.asyncio is None
                else f"{mark(r.asyncio)} {r.asyncio:.2f}x{'~' if r.asyncio_unstable else ''}"
            )
            lines.append(f"{r.label:<28}{texts[0]:<14}{texts[1]:<18}{texts[2]:<12}{texts[3]:<10}")
            if r.seed is not None:
                for name, seed_mark, value in zip(names, r.seed, r.cells, strict=True):
                    if value is not None and seed_mark != mark(value):
                        disagreements.append(
                            f"  {r.label}, {name}: the seed says {seed_mark}, measured"
                            f" {mark(value)} {value:.2f}x"
                        )
        lines.append("")
        if disagreements:
            lines.append("Where this machine disagrees with the seed:")
            lines += disagreements
        else:
            lines.append("Every seed cell agrees with this machine's measurements.")
        return "\n".join(lines)


def measure(session: report.Session) -> Table:
    """Fill the table from ``session``'s measurements (measuring what it lacks)."""
    rows = []
    for spec in _ROWS:
        threads = session.speedup(spec.workload, "threads")
        procs = session.speedup(spec.workload, "processes")
        comparison = session.compare(spec.pair) if spec.pair is not None else None
        tasks = session.speedup(spec.workload, "asyncio") if spec.asyncio else None
        rows.append(
            TableRow(
                task=spec.task,
                label=spec.label,
                threading=threads.speedup,
                multiprocessing=procs.speedup,
                numpy=comparison.numpy_speedup if comparison else None,
                unstable=(
                    threads.timing.unstable
                    or session.scale(spec.workload, "threads").baseline.unstable,
                    procs.timing.unstable
                    or session.scale(spec.workload, "processes").baseline.unstable,
                    bool(comparison and (comparison.python.unstable or comparison.numpy.unstable)),
                ),
                seed=spec.seed,
                asyncio=tasks.speedup if tasks else None,
                asyncio_unstable=bool(
                    tasks
                    and (
                        tasks.timing.unstable
                        or session.scale(spec.workload, "asyncio").baseline.unstable
                    )
                ),
            )
        )
    method = session.scale("py", "processes").start_method
    return Table(
        cpu_count=report.cores(),
        gil_enabled=gil_enabled(),
        python=report.python_description(),
        workers=session.workers,
        start_method=method,
        rows=tuple(rows),
        load_average=session.load_before,
    )


def table(
    *,
    quick: bool = False,
    workers: int | None = None,
    start_method: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Table:
    """Measure the seed's table on this machine (``quick``: shorter, noisier runs)."""
    session = report.Session(
        quick=quick, workers=workers, start_method=start_method, progress=progress
    )
    return measure(session)
