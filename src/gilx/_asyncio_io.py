"""The io workload's downloads as asyncio tasks on one event loop, in one thread.

Standard library only: each download opens a connection with
``asyncio.open_connection``, sends a minimal HTTP/1.0 GET, reads the whole
answer to the end and checks it (status 200, as many body bytes as the
``Content-Length`` header says).  No thread pool is involved: while one task
waits for its answer the loop runs the others, which is how asyncio overlaps
I/O without threads.

Strong scaling, as in the other modes: ``workers`` tasks are in flight at
once, each doing its share of the ``total`` downloads one after another; one
repeat's time runs from the moment the tasks are created to the moment the
last one finishes.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Sequence

from gilx._httpdelay import LOOPBACK

#: How long one download may take before it counts as failed (seconds).
DOWNLOAD_TIMEOUT = 30.0

clock = time.perf_counter


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


async def _repeat(url: str, shares: Sequence[int]) -> tuple[float, float]:
    start = clock()
    tasks = [asyncio.ensure_future(_downloads(url, share)) for share in shares]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # after a failure, stop the others before leaving the loop
            task.cancel()
    return start, clock()


async def _all_repeats(
    url: str, shares: Sequence[int], repeats: int
) -> tuple[tuple[float, float], ...]:
    return tuple([await _repeat(url, shares) for _ in range(repeats)])


def run_downloads(url: str, shares: Sequence[int], repeats: int) -> tuple[tuple[float, float], ...]:
    """Run one task per share on a new event loop in this thread, ``repeats`` times.

    Returns each repeat's (start, end) on ``time.perf_counter``.
    """
    _target(url)  # a bad URL fails here, before a loop starts
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    return asyncio.run(_all_repeats(url, shares, repeats))
