"""Asyncio: the io workload's downloads as ``k`` tasks on one event loop, in one thread.

Standard library only: each download opens a connection with
``asyncio.open_connection``, sends a minimal HTTP/1.0 GET, reads the whole
answer to the end and checks it (status 200, as many body bytes as the
``Content-Length`` header says).  No thread pool is involved: while one task
waits for its answer the loop runs the others, which is how asyncio overlaps
I/O without threads.

Strong scaling, as in the other modes: ``workers`` tasks are in flight at
once, each doing its share of the ``total`` downloads one after another; one
repeat's time runs from the moment the tasks are created to the moment the
last one finishes.  The event loop is the backend's session: made once,
before anything is timed, and closed at the end.

Only I/O-bound work (``Workload.io_bound``: the io workload) has something to
overlap: a CPU workload on one event loop is one thread doing all the work, so
the backend refuses it.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Sequence

from gilx._httpdelay import LOOPBACK
from gilx.backends.base import Backend, Crew, Job, Options, Session
from gilx.timing import Span, clock, split

#: How long one download may take before it counts as failed (seconds).
DOWNLOAD_TIMEOUT = 30.0


def _target(url: str) -> tuple[str, int, str]:
    """(host, port, path) of ``url``, which must be plain HTTP on the loopback address."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != LOOPBACK or parts.port is None:
        raise ValueError(f"the io workload only talks to http://{LOOPBACK}:PORT/, not {url!r}")
    return LOOPBACK, parts.port, parts.path or "/"


async def download(url: str) -> int:
    """GET ``url`` over a new connection; return the body's length after checking the answer."""
    host, port, path = _target(url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode("ascii"))
        await writer.drain()
        answer = await reader.read()  # HTTP/1.0: the server closes when the body is complete
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # the server may already have reset a closed connection
    return _checked_body_length(answer, url)


def _checked_body_length(answer: bytes, url: str) -> int:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        raise OSError(f"incomplete HTTP answer from {url} ({len(answer)} bytes)")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split()
    if len(status) < 2 or status[1] != "200":
        raise OSError(f"{url} answered {lines[0]!r}, not 200")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            value = value.strip()
            if not value.isdigit() or int(value) != len(body):
                raise OSError(f"{url} sent {len(body)} body bytes, Content-Length says {value}")
            return len(body)
    raise OSError(f"{url} answered without a Content-Length: its body cannot be checked")


async def _downloads(url: str, count: int) -> int:
    """One task's share: ``count`` downloads one after another; total bytes read."""
    read = 0
    for _ in range(count):
        read += await asyncio.wait_for(download(url), DOWNLOAD_TIMEOUT)
    return read


async def _repeat(url: str, shares: Sequence[int]) -> Span:
    start = clock()
    tasks = [asyncio.ensure_future(_downloads(url, share)) for share in shares]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # after a failure, stop the others before leaving the loop
            task.cancel()
    return start, clock()


class TaskCrew(Crew):
    """``len(shares)`` tasks, one per share, started together on the session's loop at each go()."""

    def __init__(self, loop: asyncio.AbstractEventLoop, url: str, shares: Sequence[int]) -> None:
        self._loop = loop
        self._url = url
        self._shares = tuple(shares)

    def go(self) -> Span:
        return self._loop.run_until_complete(_repeat(self._url, self._shares))

    def close(self) -> None:
        """Nothing runs between repeats: every task of a go() has ended when it returns."""


class AsyncioSession(Session):
    """One event loop in this thread, for every crew of the measurement."""

    def __init__(self, url: str) -> None:
        _target(url)  # a bad URL fails here, before a loop is made
        self._url = url
        self._loop = asyncio.new_event_loop()

    def tasks(self, shares: Sequence[int]) -> TaskCrew:
        return TaskCrew(self._loop, self._url, shares)

    def crew(self, total: int, workers: int) -> Crew:
        return self.tasks(split(total, workers))

    def describe(self) -> str:
        return "asyncio tasks on one event loop, one thread"

    def close(self) -> None:
        """Close the loop; tasks left by an interrupted go() (Ctrl-C) are cancelled first."""
        loop = self._loop
        if loop.is_closed():
            return
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


class Asyncio(Backend):
    name = "asyncio"
    singular = "task"
    summary = "k asyncio tasks in flight on one event loop, one thread (the io workload only)"

    def accepts(self, work: Job) -> bool:
        """Only I/O-bound work has waits for one event loop to overlap."""
        return bool(getattr(work, "io_bound", False))

    def refusal(self, work: Job) -> str:
        name = getattr(work, "name", "this")
        return (
            f"--mode asyncio runs only the io workload (I/O-bound work), not {name!r}:"
            " one event loop overlaps waiting, and a CPU workload has none to overlap"
        )

    def open(self, work: Job, endpoint: str, options: Options) -> Session:
        self.check(work)
        return AsyncioSession(endpoint)

    def notes(self, session_startup: float | None) -> list[str]:
        return ["one thread: every task waits on the same event loop; no thread pool"]

    def plural(self, count: int) -> str:
        return f"{count} asyncio task{'' if count == 1 else 's'}"
