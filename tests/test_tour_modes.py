"""The tour's Numba section and the decision tree's Dask line: measured when the extra is there."""

from __future__ import annotations

import pytest

from gilx import _extras, _measured, _present, runner, tour
from gilx._race import RaceResult


@pytest.fixture
def session(monkeypatch) -> _measured.Measurements:
    """A session whose calibrated measurements are tiny: these tests check what is said."""
    monkeypatch.setattr(runner, "QUICK_SECONDS", 0.01)
    monkeypatch.setattr(runner, "QUICK_REPEATS", 1)
    return _measured.Measurements(quick=True, workers=2)


def said(section, session) -> str:
    report = _present.Report()
    section(report, session)
    return report.text()


@pytest.mark.skipif(not _extras.installed("numba"), reason='needs pip install "gilx[numba]"')
def test_the_numba_section_runs_both_compiled_loops_on_threads_then_prange(session):
    text = said(tour._numba, session)
    assert "numba-gil: @njit, the GIL held" in text
    assert "numba-nogil: @njit(nogil=True)" in text
    assert text.count("2 threads:") == 2 and "speedup" in text
    assert "JIT compilation, done before timing and not counted" in text
    assert "parallel_sum_squares (prange)" in text
    assert session.scale("numba-nogil", "threads").point(2).speedup > 0


def test_the_numba_section_without_numba_says_how_to_get_it(session, monkeypatch):
    monkeypatch.setattr(_extras, "installed", lambda module: False)
    text = said(tour._numba, session)
    assert 'pip install "gilx[numba]"' in text
    assert "speedup" not in text


def test_the_dask_line_without_dask_says_how_to_get_it(session, monkeypatch):
    monkeypatch.setattr(_extras, "installed", lambda module: False)
    line = tour._dask_line(session)
    assert line.startswith("More than one machine → Dask")
    assert 'not measured here: pip install "gilx[dask]"' in line


@pytest.mark.skipif(not _extras.installed("distributed"), reason='needs pip install "gilx[dask]"')
def test_the_dask_line_shows_processes_and_threads_measured_on_a_local_cluster(session):
    line = tour._dask_line(session)
    procs = session.speedup("py", "dask").speedup
    threads = session.speedup("py", "dask-threads").speedup
    assert f"2 worker processes {procs:.2f}x" in line
    assert f"1 worker with 2 threads {threads:.2f}x" in line


def test_the_race_section_prints_the_table_of_gilx_race(session, monkeypatch):
    made = {
        "unsafe": RaceResult("unsafe", 2, 400_000, 300_000, 0.9, 0.0, False),
        "atomic": RaceResult("atomic", 2, 400_000, 400_000, 0.0, 0.0, False),
        "locked": RaceResult("locked", 2, 400_000, 400_000, 0.5, 0.3, True),
    }
    monkeypatch.setattr(tour, "race", lambda kind, threads, increments: made[kind])
    text = said(tour._race, session)
    assert _present.race_table(list(made.values())) in text
    assert "lost" in text and "threads did not overlap — not judged" in text


def test_the_interpreters_section_measures_them_or_says_why_not(session):
    text = said(lambda out, m: tour._interpreters(out, m, 1.0), session)
    assert "8. Solution 1b: an interpreter per core" in text
    if session.can_run("py", "interpreters"):
        assert "2 interpreters:" in text and "speedup" in text
        assert "processes in this tour:" in text
        assert "start-up" in text and "round trip" in text and "ratio" in text
    else:
        assert "not measured here:" in text
        assert "speedup" not in text


def _costs_with(passing_ratio: float):
    from gilx import _costs

    return _costs.Costs(
        "fork",
        0.003,
        0.03,
        2 << 20,
        6 << 20,
        (_costs.Passing(1 << 20, passing_ratio * 1e-4, 1e-4),),
    )


@pytest.mark.parametrize(
    ("procs", "interps", "passing", "choice"),
    [
        (1.9, 1.95, 3.0, "interpreters (3.12+)"),  # as good, and cheaper to talk to
        (1.9, 1.2, 3.0, "multiprocessing"),  # interpreters scale worse
        (1.9, 1.9, 0.5, "multiprocessing"),  # as good, but data passes no cheaper
    ],
)
def test_the_tree_chooses_processes_or_interpreters_by_the_numbers(
    session, monkeypatch, procs, interps, passing, choice
):
    monkeypatch.setattr(session, "costs", lambda: _costs_with(passing))
    got, why = tour._processes_or_interpreters(session, procs, interps)
    assert got == choice
    assert why[0].startswith("here: ")
    assert "1 MiB round trip" in why[1] and "start method fork" in why[1]
