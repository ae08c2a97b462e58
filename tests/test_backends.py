"""The backends' registry and interface: one list of run modes, sessions, crews that repeat."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

import pytest

from gilx import _extras, backends, machine, runner, workloads
from gilx.backends.base import Backend, Crew, Session


def test_the_registry_lists_threads_and_processes_and_refuses_others():
    assert {"threads", "processes"} <= set(backends.NAMES)
    for name in backends.NAMES:
        backend = backends.get(name)
        assert isinstance(backend, Backend)
        assert backend.name == name
    with pytest.raises(ValueError, match=r"mode must be one of .*threads.*processes"):
        backends.get("fibers")


def _defined_backends() -> set[str]:
    """The names of the concrete Backend classes in gilx.backends' modules, read from them."""
    import importlib
    import inspect
    import pkgutil
    import types

    found = set()
    for info in pkgutil.iter_modules(backends.__path__):
        module = importlib.import_module(f"gilx.backends.{info.name}")
        for obj in vars(module).values():
            # Not inspect.isclass alone: on 3.10 it is true of a generic alias such as
            # list[int], which issubclass() refuses.
            if isinstance(obj, types.GenericAlias) or not inspect.isclass(obj):
                continue
            if issubclass(obj, Backend) and obj.name:
                found.add(obj.name)
    return found


def test_every_backend_written_is_registered_and_offered_by_the_cli(capsys):
    # Found independently of the registry: a backend file whose class was not
    # added to _BACKENDS, or a registry entry the CLI does not offer, fails here.
    from gilx.cli import main

    defined = _defined_backends()
    assert defined == set(backends.NAMES)
    with pytest.raises(SystemExit) as exit_info:
        main(["scale", "--workload", "py", "--mode", "fibers"])
    assert exit_info.value.code == 2
    # "(choose from 'threads', ...)"; Python 3.12.8+ and 3.13.1+ drop the quotes
    listed = capsys.readouterr().err.split("choose from", 1)[1].strip().rstrip(")")
    offered = [name.strip().strip("'") for name in listed.split(",")]
    assert set(offered) == defined


@pytest.mark.parametrize("mode", backends.NAMES)
def test_a_crew_repeats_its_work_as_often_as_asked(mode):
    backend = backends.get(mode)
    if mode.startswith("dask") and not _extras.installed("distributed"):
        pytest.skip('Dask is not installed here (pip install "gilx[dask]")')
    if mode == "interpreters":
        try:
            backend.check(workloads.get("py"))
        except (ValueError, ImportError) as exc:  # before 3.12; 3.13 without the extra
            pytest.skip(str(exc))
    # the first workload this backend accepts (asyncio: only I/O-bound work)
    job = next(w for w in workloads.WORKLOADS.values() if backend.accepts(w))
    with job.server() as endpoint, backend.open(job, endpoint, backends.Options()) as session:
        assert isinstance(session, Session)
        with session.crew(4 if job.io_bound else 20_000, 2) as crew:
            assert isinstance(crew, Crew)
            spans = [crew.go() for _ in range(3)]
        crew.close()  # closing twice is harmless
    assert len(spans) == 3
    assert all(end >= start for start, end in spans)
    # repeats follow one another: each starts after the previous one ended
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans))


def test_process_workers_are_separate_live_processes_until_closed():
    backend = backends.get("processes")
    with backend.open(workloads.get("nogil"), "", backends.Options()) as session:
        crew = session.crew(10_000, 2)
        pids = crew.pids()
        assert len(pids) == 2 and os.getpid() not in pids
        assert session.pids() == pids
        assert crew.startup is not None and crew.startup > 0
        crew.go()
    assert crew.pids() == frozenset()


@pytest.mark.thread_unsafe(reason="counts the process's OS threads")
@pytest.mark.skipif(machine.os_threads() is None, reason="needs /proc/self/stat (Linux)")
def test_a_closed_thread_crew_has_no_os_thread_left():
    # Not just joined (Python code done): gone from the OS, so that a process forked
    # right after cannot catch one of them inside the allocator.
    before = machine.os_threads()
    with backends.get("threads").open(workloads.get("nogil"), "", backends.Options()) as session:
        crew = session.crew(10_000, 4)
        assert machine.os_threads() == before + 4
        crew.go()
        crew.close()
        assert machine.os_threads() == before


@pytest.mark.thread_unsafe(reason="counts the process's OS threads")
@pytest.mark.skipif(machine.os_threads() is None, reason="needs /proc/self/stat (Linux)")
def test_os_threads_counts_a_new_thread_until_it_has_exited():
    import threading

    release = threading.Event()
    t = threading.Thread(target=release.wait)
    before = machine.os_threads()
    t.start()
    try:
        assert machine.os_threads() == before + 1
    finally:
        release.set()
        t.join()
    machine.wait_for_os_threads(before, timeout=5.0)
    assert machine.os_threads() == before


def test_threads_have_no_startup_of_their_own():
    run = runner.measure(workloads.get("nogil"), 1000, 2, repeats=2)
    assert run.startup is None


class _Closure:
    """A job that is no Workload: a closure, like the probe's calls, that no child can import."""

    def prepare(self, share: int, endpoint: str, /) -> Callable[[], object]:
        return lambda: None


@pytest.mark.parametrize("mode", ["processes", "dask", "dask-threads"])
def test_backends_in_other_processes_take_only_workloads(mode):
    backend = backends.get(mode)
    assert not backend.accepts(_Closure())
    assert backend.accepts(workloads.get("py"))
    with pytest.raises(ValueError, match="runs only gilx's workloads"):
        runner.measure(_Closure(), 10, 1, mode=mode)


def test_each_backend_answers_which_workloads_it_accepts():
    # asyncio overlaps waits: it takes the I/O-bound workloads, and only them.
    asyncio_backend = backends.get("asyncio")
    for work in workloads.WORKLOADS.values():
        assert asyncio_backend.accepts(work) is work.io_bound
        assert backends.get("threads").accepts(work)
    assert [w.name for w in workloads.WORKLOADS.values() if w.io_bound] == ["io"]


def test_an_option_a_backend_does_not_take_is_refused_naming_the_modes_that_do():
    with pytest.raises(ValueError, match="--scheduler is for --mode dask or dask-threads"):
        backends.check_options(backends.get("threads"), backends.Options(scheduler="tcp://h:1"))
    # the start method is a preference: backends that start no processes ignore it
    backends.check_options(backends.get("threads"), backends.Options(start_method="spawn"))
    with pytest.raises(ValueError, match="start method must be one of"):
        backends.check_options(backends.get("processes"), backends.Options(start_method="teleport"))


def test_scale_reports_how_the_work_ran():
    threads = runner.scale("nogil", "threads", [1], size=1000, repeats=1)
    assert threads.how == "threads" and threads.start_method is None
    procs = runner.scale("nogil", "processes", [2], size=1000, repeats=1, start_method="spawn")
    assert procs.how == "processes, start method spawn"
    assert procs.start_method == "spawn"
    assert procs.point(2).startup is not None
