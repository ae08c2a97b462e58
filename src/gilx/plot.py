"""Pictures (extra ``plot``: matplotlib): a timeline, and scaling curves.

matplotlib is imported only here, and only when a picture is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gilx.timeline import Timeline

if TYPE_CHECKING:
    from gilx.runner import ScaleResult


class PlotUnavailable(RuntimeError):
    """A picture was asked for (``--png``, :func:`scale_png`, :func:`timeline_png`), but
    matplotlib is not installed: ``pip install "gilx[plot]"``.  A :class:`RuntimeError`.
    """


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable("--png needs matplotlib: pip install 'gilx[plot]'") from None
    matplotlib.use("Agg")  # files only: never open a window
    import matplotlib.pyplot as plt

    return plt


#: What ``gilx scale --png`` compares: the asked-for mode's curve beside the
#: other of these (beside the first, for any other mode); drawn in this order.
COMPARED_MODES = ("threads", "processes")


def companion_mode(mode: str) -> str:
    """The mode whose curve ``gilx scale --png`` draws beside ``mode``'s."""
    first, second = COMPARED_MODES
    return second if mode == first else first


_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def timeline_png(timeline: Timeline, path: str | Path) -> Path:
    """Draw ``timeline`` like the text version: threads, then cores; write a PNG."""
    plt = _pyplot()
    cpus = timeline.cpus()
    rows = timeline.threads + len(cpus)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * rows))
    labels: list[str] = []
    for t in range(timeline.threads):
        y = rows - 1 - t
        colour = _COLOURS[t % len(_COLOURS)]
        runs = [(e.start, e.end - e.start) for e in timeline.runs(t)]
        waits = [
            (e.start, e.end - e.start)
            for e in timeline.events
            if e.thread == t and e.state == "wait"
        ]
        ax.broken_barh(waits, (y - 0.3, 0.6), facecolors="#dddddd", edgecolor="none")
        ax.broken_barh(runs, (y - 0.3, 0.6), facecolors=colour, edgecolor="none")
        labels.append(f"thread {t}")
    for i, cpu in enumerate(cpus):
        y = rows - 1 - timeline.threads - i
        for e in timeline.runs():
            if e.cpu == cpu:
                ax.broken_barh(
                    [(e.start, e.end - e.start)],
                    (y - 0.3, 0.6),
                    facecolors=_COLOURS[e.thread % len(_COLOURS)],
                    edgecolor="none",
                )
        labels.append(f"core {cpu}")
    ax.set_yticks(range(rows - 1, -1, -1), labels)
    ax.set_xlabel("seconds from the common start")
    ax.set_xlim(0, max(timeline.duration, 1e-9))
    ax.set_title(
        f"gilx timeline: {timeline.workload} on {timeline.threads} thread(s) "
        f"(colour: running; grey: waiting)"
    )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out


def scale_png(results: Sequence[ScaleResult], path: str | Path) -> Path:
    """Speedup against workers for each result, with the ideal line (the modes of
    :data:`COMPARED_MODES` first, in its order)."""
    plt = _pyplot()
    results = sorted(results, key=lambda r: r.mode != COMPARED_MODES[0])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    most = max((p.workers for r in results for p in r.points), default=1)
    ideal = "ideal (speedup = workers)"
    ax.plot([1, most], [1, most], linestyle="--", color="#999999", label=ideal)
    for i, r in enumerate(results):
        xs = [p.workers for p in r.points]
        ys = [p.speedup for p in r.points]
        ax.plot(xs, ys, marker="o", color=_COLOURS[i % len(_COLOURS)], label=r.mode)
    workload = results[0].workload if results else ""
    ax.set_title(f"gilx scale: {workload}")
    ax.set_xlabel("workers")
    ax.set_ylabel("speedup over one worker (same total work)")
    ax.set_xticks(sorted({p.workers for r in results for p in r.points}))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out
