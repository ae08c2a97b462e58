"""The io workload's "internet": an HTTP server on 127.0.0.1 that answers after a delay.

The seed downloads ``http://example.com`` four times; gilx must never leave the
machine, so its downloads go to this server instead.  It binds the loopback
address only, answers every GET with a small body after ``delay`` seconds
(sleeping, like a slow remote server, so the waiting client blocks in a socket
read with the GIL released), and shuts down when the ``serve()`` block ends.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: The only address the io workload ever talks to.
LOOPBACK = "127.0.0.1"

#: How long the server waits before answering: a fast remote server's round trip.
DELAY_SECONDS = 0.02

#: The size of each answer.
BODY_BYTES = 16 * 1024


class _DelayServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many workers may connect at once

    def __init__(self, delay: float, body: bytes) -> None:
        super().__init__((LOOPBACK, 0), _DelayHandler)
        self.delay = delay
        self.body = body


class _DelayHandler(BaseHTTPRequestHandler):
    server: _DelayServer

    def do_GET(self) -> None:
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay silent: the requests are the experiment, not news."""


@contextmanager
def serve(delay: float = DELAY_SECONDS, body_bytes: int = BODY_BYTES) -> Iterator[str]:
    """Run the server for the duration of the block; yield its URL (``http://127.0.0.1:PORT/``)."""
    server = _DelayServer(delay, b"x" * body_bytes)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="gilx-httpdelay",
        daemon=True,
    )
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def loopback_opener() -> urllib.request.OpenerDirector:
    """A urllib opener that ignores proxy settings: a request to 127.0.0.1 stays here."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def download(opener: urllib.request.OpenerDirector, url: str) -> int:
    """Fetch ``url`` (which must be on the loopback address) and return the number of bytes read."""
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"the io workload only talks to {LOOPBACK}, not {url!r}")
    with opener.open(url, timeout=30) as response:
        return len(response.read())
