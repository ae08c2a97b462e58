"""Dask modes: a real distributed cluster runs the shares, quietly, and leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gilx import _extras, workloads
from gilx.backends import dask_cluster as _dask
from gilx.backends import dask_tasks

needs_dask = pytest.mark.skipif(
    not _extras.installed("distributed"),
    reason='Dask is not installed here (pip install "gilx[dask]")',
)


@pytest.mark.parametrize(
    ("given", "address"),
    [
        ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        (" scheduler.example:1/ ", "tcp://scheduler.example:1"),
        ("tls://[::1]:65535", "tls://[::1]:65535"),
    ],
)
def test_a_scheduler_address_is_read_as_tcp_host_port(given, address):
    assert _dask.parse_scheduler(given) == address


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("", "malformed"),
        ("nonsense", "malformed"),
        ("tcp://127.0.0.1", "malformed"),
        ("tcp://127.0.0.1:port", "malformed"),
        ("tcp://127.0.0.1:0", "port must be 1..65535"),
        ("tcp://127.0.0.1:70000", "port must be 1..65535"),
        ("http://127.0.0.1:8786", "scheme must be tcp or tls"),
    ],
)
def test_a_malformed_scheduler_address_is_a_value_error(given, problem):
    with pytest.raises(ValueError, match=problem):
        _dask.parse_scheduler(given)


def test_a_scheduler_address_must_be_a_string():
    with pytest.raises(TypeError, match="string"):
        _dask.parse_scheduler(8786)  # type: ignore[arg-type]


def test_without_dask_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(_extras, "installed", lambda module: False)
    with pytest.raises(_extras.MissingExtra, match=r'pip install "gilx\[dask\]"'):
        _dask.start(_dask.PROCESSES, 1)


def test_every_task_result_is_checked():
    good = [(0, 5, 0.0, 1.0), (1, 6, 0.0, 1.0)]
    py, numpy = workloads.get("py"), workloads.get("numpy")
    dask_tasks.check(good, [5, 6], py)
    with pytest.raises(RuntimeError, match="counted 4, not its share 6"):
        dask_tasks.check([good[0], (1, 4, 0.0, 1.0)], [5, 6], py)
    with pytest.raises(RuntimeError, match="returned the result of task 0"):
        dask_tasks.check([good[0], good[0]], [5, 6], py)
    dask_tasks.check([(0, None, 0.0, 1.0)], [5], numpy)  # nothing to count: only the index


def new_processes(before: set[int]) -> list[str]:
    """Command lines of this process's descendants not in ``before`` (multiprocessing's
    resource tracker aside: it belongs to the interpreter, not to a cluster)."""
    psutil = pytest.importorskip("psutil")
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue  # it ended while we looked
        if child.pid not in before and "resource_tracker" not in line:
            found.append(line)
    return found


def descendants() -> set[int]:
    psutil = pytest.importorskip("psutil")
    return {p.pid for p in psutil.Process().children(recursive=True)}


def run(cluster: Any, workload: str, shares: list[int], repeats: int) -> tuple[list, list]:
    """``repeats`` repeats of one crew on ``cluster``: (client spans, the tasks' own spans)."""
    crew = _dask.DaskCrew(cluster, workloads.get(workload), shares, "")
    try:
        spans = [crew.go() for _ in range(repeats)]
        return spans, list(crew.task_spans)
    finally:
        crew.close()


def no_new_processes_soon(before: set[int], seconds: float = 10.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := new_processes(before)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@needs_dask
def test_dask_mode_runs_each_share_in_its_own_process_and_leaves_none_behind():
    before = descendants()
    cluster = _dask.start(_dask.PROCESSES, 2)
    try:
        assert cluster.startup > 0
        assert len(set(cluster.slots)) == 2
        workers = cluster.client.scheduler_info(n_workers=-1)["workers"]
        assert sorted(w["nthreads"] for w in workers.values()) == [1, 1]
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
        pids = cluster.client.run(os.getpid)
        assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
        spans, task_spans = run(cluster, "py", [20_000, 20_001], repeats=3)
        assert len(spans) == len(task_spans) == 3
        for (start, end), (task_start, task_end) in zip(spans, task_spans, strict=True):
            # the client's span holds the tasks' own: Dask's dispatch is counted
            assert start <= task_start <= task_end <= end
    finally:
        cluster.close()
    assert no_new_processes_soon(before) == []


def _gil_monitor_setting() -> object:
    import dask.config

    return dask.config.get(_dask._GIL_MONITOR)


def _scheduler_gil_monitor(dask_scheduler: Any) -> object:
    return dask_scheduler.monitor.monitor_gil_contention


@needs_dask
@pytest.mark.parametrize("shape", [_dask.PROCESSES, _dask.THREADS], ids=["processes", "threads"])
def test_clusters_gilx_starts_run_no_gil_monitor_of_dasks(shape):
    # Dask's SystemMonitor would knock on the GIL every millisecond in the
    # scheduler and every worker (with gilknocker installed): a second program
    # competing for the GIL being measured.  Off, where it is read: the
    # worker processes' config and the scheduler's (in this process).
    import dask.config

    pytest.importorskip("distributed")  # its defaults are part of Dask's config from then on
    before = dask.config.get(_dask._GIL_MONITOR)
    cluster = _dask.start(shape, 2)
    try:
        settings = cluster.client.run(_gil_monitor_setting)
        assert settings and set(settings.values()) == {False}, settings
        assert cluster.client.run_on_scheduler(_scheduler_gil_monitor) is False
        monitors = cluster.client.run(
            lambda dask_worker: dask_worker.monitor.monitor_gil_contention
        )
        assert set(monitors.values()) == {False}, monitors
    finally:
        cluster.close()
    assert dask.config.get(_dask._GIL_MONITOR) == before  # this process's config is restored
    assert "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__GIL__ENABLED" not in os.environ


@needs_dask
def test_dask_threads_mode_runs_every_share_on_one_worker_with_k_threads():
    before = descendants()
    cluster = _dask.start(_dask.THREADS, 3)
    try:
        workers = cluster.client.scheduler_info(n_workers=-1)["workers"]
        assert [w["nthreads"] for w in workers.values()] == [3]
        assert cluster.slots == (next(iter(workers)),) * 3
        spans, _ = run(cluster, "nogil", [100_000] * 3, repeats=2)
        assert len(spans) == 2
    finally:
        cluster.close()
    assert no_new_processes_soon(before) == []


@contextlib.contextmanager
def their_cluster() -> Iterator[tuple[Any, Any]]:
    """A 2-worker LocalCluster and a client of it, started as a user would, not by gilx."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as theirs,
        distributed.Client(theirs) as their_client,
    ):
        yield theirs, their_client


@needs_dask
def test_an_existing_cluster_is_used_and_never_stopped():
    with their_cluster() as (theirs, their_client):
        ours = _dask.start(_dask.PROCESSES, 2, scheduler=theirs.scheduler_address)
        try:
            assert ours.local is None
            assert set(ours.slots) == set(theirs.scheduler_info["workers"])
            run(ours, "gil", [1000, 1000], repeats=1)
        finally:
            ours.close()
        assert their_client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3
        assert len(their_client.scheduler_info()["workers"]) == 2


@needs_dask
def test_the_workers_of_an_existing_cluster_on_this_machine_count_as_the_measurements_own():
    # Their CPU is the work's: it must not be read as other processes disturbing it.
    from gilx.backends.dask_cluster import DaskSession

    with their_cluster() as (theirs, their_client):
        workers = {int(p) for p in their_client.run(os.getpid).values()}
        address = theirs.scheduler_address
        with DaskSession(_dask.PROCESSES, workloads.get("nogil"), "", address) as session:
            crew = session.crew(10_000, 2)
            assert workers <= crew.pids()
            assert workers <= session.pids()
            crew.close()
            assert crew.pids() == frozenset()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_dask
def test_an_unreachable_scheduler_fails_within_a_bounded_wait():
    start = time.monotonic()
    with pytest.raises(_dask.SchedulerUnreachable, match="no Dask scheduler answered"):
        _dask.start(_dask.PROCESSES, 1, scheduler=f"tcp://127.0.0.1:{closed_port()}")
    assert time.monotonic() - start < _dask.CONNECT_TIMEOUT + 10


def gilx_cli(*args: str, marker: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m gilx ARGS`` in a fresh process; its children inherit ``marker``."""
    env = {**os.environ, "GILX_TEST_MARKER": marker} if marker else None
    return subprocess.run(
        [sys.executable, "-m", "gilx", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@needs_dask
@pytest.mark.parametrize("mode", ["dask", "dask-threads"])
def test_scale_on_a_local_cluster_is_quiet_and_leaves_no_process_after_exit(mode):
    marker = uuid.uuid4().hex
    args = ["scale", "--workload", "py", "--mode", mode, "--workers", "1,2"]
    done = gilx_cli(*args, "--size", "20000", "--repeats", "2", "--json", marker=marker)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no CommClosedError, no warning: nothing from shutdown
    result = json.loads(done.stdout)
    assert result["mode"] == mode and [r["workers"] for r in result["results"]] == [1, 2]
    assert processes_marked(marker) == []


@needs_dask
def test_scale_text_reports_the_cluster_start_up_apart_from_the_work():
    done = gilx_cli(
        "scale",
        "--workload",
        "nogil",
        "--mode",
        "dask",
        "--workers",
        "2",
        "--size",
        "20000",
        "--repeats",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert "LocalCluster on 127.0.0.1" in done.stdout
    assert "start-up" in done.stdout and "Dask's own cost included" in done.stdout


@needs_dask
def test_scale_through_a_scheduler_uses_that_cluster_and_leaves_it_running():
    import gilx

    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, host="127.0.0.1", dashboard_address=None
        ) as theirs,
        distributed.Client(theirs) as their_client,
    ):
        for mode in ("dask", "dask-threads"):
            result = gilx.scale(
                "nogil", mode, [1, 2], size=20_000, repeats=1, scheduler=theirs.scheduler_address
            )
            assert [p.workers for p in result.points] == [1, 2]
            assert theirs.scheduler_address in result.how
            assert result.session_startup is not None
        assert len(their_client.scheduler_info()["workers"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "threads", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler is for"),
        (["--mode", "dask", "--scheduler", "no-port"], "malformed scheduler address"),
        (["--mode", "dask", "--scheduler", "http://127.0.0.1:8786"], "scheme must be tcp"),
    ],
)
def test_scheduler_mistakes_are_one_line_and_exit_2(args, message):
    done = gilx_cli("scale", "--workload", "py", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]


def test_a_scheduler_for_a_mode_without_one_is_a_value_error():
    import gilx

    with pytest.raises(ValueError, match="--scheduler is for --mode dask or dask-threads"):
        gilx.scale("py", "threads", [1], size=10, scheduler="tcp://127.0.0.1:8786")


@needs_dask
def test_an_unreachable_scheduler_is_one_line_exit_2_within_a_bounded_wait():
    marker = uuid.uuid4().hex
    start = time.monotonic()
    done = gilx_cli(
        "scale",
        "--workload",
        "py",
        "--mode",
        "dask",
        "--size",
        "1000",
        "--scheduler",
        f"tcp://127.0.0.1:{closed_port()}",
        marker=marker,
    )
    assert time.monotonic() - start < _dask.CONNECT_TIMEOUT + 20
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "no Dask scheduler answered" in lines[0]
    assert processes_marked(marker) == []


@pytest.mark.parametrize("mode", ["dask", "dask-threads"])
def test_without_dask_scale_says_how_to_install_it_and_exits_2(mode):
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from gilx.cli import main\n"
        f"raise SystemExit(main(['scale', '--workload', 'py', '--mode', {mode!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert 'pip install "gilx[dask]"' in lines[0]


def processes_marked(marker: str) -> list[int]:
    """Processes still alive whose environment carries ``marker`` (after a short grace)."""
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + 10
    while True:
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get("GILX_TEST_MARKER") == marker:
                    found.append(proc.pid)
            except psutil.Error:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@needs_dask
def test_a_failing_task_raises_in_the_caller_and_its_cluster_is_stopped():
    from gilx import backends

    before = descendants()
    job = workloads.get("io")
    dask = backends.get("dask")
    # the io workload refuses any address but the loopback one, in the worker
    with (
        pytest.raises(ValueError, match=r"only talks to 127\.0\.0\.1"),
        dask.open(job, "http://example.com/", backends.Options()) as session,
        session.crew(2, 2) as crew,
    ):
        crew.go()
    assert no_new_processes_soon(before) == []
