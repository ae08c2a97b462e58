"""The io workload's downloads as asyncio tasks on one event loop, in the calling thread."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest

from gilx import runner
from gilx._httpdelay import BODY_BYTES, serve
from gilx.backends import asyncio_tasks as _asyncio_io
from gilx.timing import Span


def run_downloads(url: str, shares: list[int], repeats: int) -> tuple[Span, ...]:
    """``repeats`` repeats of one task per share, through the backend's own session and crew."""
    with _asyncio_io.AsyncioSession(url) as session, session.tasks(shares) as crew:
        return tuple(crew.go() for _ in range(repeats))


def test_one_download_reads_the_whole_body():
    with serve(delay=0.0) as url:
        assert asyncio.run(_asyncio_io.download(url)) == BODY_BYTES


def test_every_share_is_downloaded_by_tasks_in_the_calling_thread(monkeypatch):
    calls: list[int] = []
    real = _asyncio_io.download

    async def counted(url: str) -> int:
        calls.append(threading.get_ident())
        return await real(url)

    monkeypatch.setattr(_asyncio_io, "download", counted)
    with serve(delay=0.0) as url:
        spans = run_downloads(url, runner.split(7, 3), repeats=2)
    assert len(spans) == 2
    assert all(end > start for start, end in spans)
    assert len(calls) == 2 * 7
    assert set(calls) == {threading.get_ident()}  # no thread pool: one thread, one loop


def test_tasks_in_flight_overlap_their_waits():
    """4 tasks x 2 downloads of a 0.1 s answer: at least 0.2 s, far less than 0.8 s serially."""

    def overlapped() -> bool:
        with serve(delay=0.1) as url:
            ((start, end),) = run_downloads(url, [2, 2, 2, 2], repeats=1)
        assert end - start >= 0.2  # no task can finish its two downloads sooner
        return end - start < 0.6

    assert any(overlapped() for _ in range(3))  # a busy machine may delay one attempt


@pytest.mark.parametrize(
    "url",
    ["http://example.com/", "https://127.0.0.1:80/", "http://127.0.0.1/", "ftp://127.0.0.1:1/"],
)
def test_only_the_loopback_server_is_ever_asked(url):
    with pytest.raises(ValueError, match="only talks to"):
        run_downloads(url, [1], repeats=1)


def test_a_refused_connection_is_an_os_error():
    with serve(delay=0.0) as url:
        pass  # the server is gone: its port refuses connections now
    with pytest.raises(OSError):
        run_downloads(url, [1, 1], repeats=1)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", "not 200"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort", "Content-Length says 10"),
        (b"HTTP/1.0 200 OK\r\nContent-Len", "incomplete"),
        (b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nabc", "without a Content-Length"),
    ],
)
def test_a_wrong_answer_is_an_os_error_saying_what_was_wrong(answer, problem):
    with pytest.raises(OSError, match=problem):
        _asyncio_io._checked_body_length(answer, "http://127.0.0.1:1/")


def test_a_right_answer_gives_its_body_length():
    answer = b"HTTP/1.0 200 OK\r\nServer: x\r\ncontent-length: 3\r\n\r\nabc"
    assert _asyncio_io._checked_body_length(answer, "http://127.0.0.1:1/") == 3


def test_scale_runs_io_on_asyncio_tasks_with_the_usual_json_shape():
    import gilx

    result = gilx.scale("io", "asyncio", [1, 2, 4], size=8, repeats=1)
    assert result.mode == "asyncio" and result.how.startswith("asyncio tasks on one event loop")
    shape = result.to_dict()
    assert shape["workload"] == "io" and shape["mode"] == "asyncio"
    assert [r["workers"] for r in shape["results"]] == [1, 2, 4]
    for r in shape["results"]:
        assert r["efficiency"] == pytest.approx(r["speedup"] / r["workers"])


@pytest.mark.parametrize("workload", ["py", "gil", "nogil", "numpy", "memory", "numba-nogil"])
def test_asyncio_refuses_every_workload_but_io(workload):
    import gilx

    with pytest.raises(ValueError, match="runs only the io workload"):
        gilx.scale(workload, "asyncio", [1], size=10)


def test_the_cli_refuses_asyncio_for_a_cpu_workload_in_one_line_exit_2():
    done = subprocess.run(
        [sys.executable, "-m", "gilx", "scale", "--workload", "py", "--mode", "asyncio"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--mode asyncio runs only the io workload" in lines[0]
