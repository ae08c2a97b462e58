"""The io workload's "internet": an HTTP server on 127.0.0.1 that answers after a delay.

The seed downloads ``http://example.com`` four times; gilx must never leave the
machine, so its downloads go to this server instead.  It binds the loopback
address only and answers every GET with a small body after ``delay`` seconds
(sleeping, like a slow remote server, so the waiting client blocks in a socket
read with the GIL released).

It runs in a **process of its own** (``serve()`` starts it, for every run
mode): a server thread inside the measured process would parse requests and
start a thread per connection on the very GIL the workers are measured on.
Like a real remote server, it only makes the clients wait.  The child prints
its port, serves until its stdin closes (the ``serve()`` block ends, or the
parent died), and its CPU counts as the measurement's own (:mod:`gilx.machine`).

    python -m gilx._httpdelay --delay 0.05
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: The only address the io workload ever talks to.
LOOPBACK = "127.0.0.1"

#: How long the server waits before answering: a fast remote server's round trip.
DELAY_SECONDS = 0.02

#: The size of each answer.
BODY_BYTES = 16 * 1024

#: How long the server process may take to stop before it is killed (seconds).
STOP_TIMEOUT = 5.0


class _DelayServer(ThreadingHTTPServer):
    daemon_threads = True
    # The listen() backlog.  The default, 5, drops the SYNs of a burst of more
    # than 5 simultaneous connections, and each dropped one costs the client a
    # 1 s retransmission timeout.
    request_queue_size = 128

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


def _run_server(delay: float, body_bytes: int) -> None:
    """The child process: serve until stdin reaches its end."""
    server = _DelayServer(delay, b"x" * body_bytes)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="gilx-httpdelay",
        daemon=True,
    )
    thread.start()
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        sys.stdin.read()  # returns when the parent closes the pipe, or dies
    except KeyboardInterrupt:
        pass  # Ctrl-C reaches the whole process group: stop quietly
    finally:
        server.shutdown()
        server.server_close()


def _server_port(process: subprocess.Popen[str]) -> int:
    assert process.stdout is not None
    line = process.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT" or not line[1].isdigit():
        raise RuntimeError(f"the io workload's server did not start (it said {line!r})")
    return int(line[1])


@contextmanager
def serve(delay: float = DELAY_SECONDS, body_bytes: int = BODY_BYTES) -> Iterator[str]:
    """Run the server in a child process for the block; yield its URL (``http://127.0.0.1:PORT/``)."""
    from gilx import machine

    if not delay >= 0:
        raise ValueError(f"delay must be >= 0 seconds, got {delay}")
    if body_bytes < 0:
        raise ValueError(f"body_bytes must be >= 0, got {body_bytes}")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gilx._httpdelay",
            "--delay",
            repr(delay),
            "--body-bytes",
            str(body_bytes),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    machine.add_helper_process(process.pid)
    try:
        port = _server_port(process)
        yield f"http://{LOOPBACK}:{port}/"
    finally:
        machine.remove_helper_process(process.pid)
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    """Close the server's stdin (it shuts down), and kill it if it does not."""
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def loopback_opener() -> urllib.request.OpenerDirector:
    """A urllib opener that ignores proxy settings: a request to 127.0.0.1 stays here."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def download(opener: urllib.request.OpenerDirector, url: str) -> int:
    """Fetch ``url`` (which must be on the loopback address) and return the number of bytes read."""
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"the io workload only talks to {LOOPBACK}, not {url!r}")
    with opener.open(url, timeout=30) as response:
        return len(response.read())


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m gilx._httpdelay",
        description="a loopback HTTP server that answers every GET after a delay",
    )
    parser.add_argument("--delay", type=float, default=DELAY_SECONDS, help="seconds per answer")
    parser.add_argument("--body-bytes", type=int, default=BODY_BYTES)
    args = parser.parse_args(argv)
    _run_server(args.delay, args.body_bytes)


if __name__ == "__main__":
    main()
