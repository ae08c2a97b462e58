"""A loopback HTTP server that answers every GET after a delay: the "network" of the io group.

Run as a script, in its own process, so that its CPU work (parsing requests,
starting a thread per connection) does not compete with the client threads
for their GIL: like a real remote server, it only makes the clients wait.

    python benchmarks/delay_server.py --delay 0.05

It binds 127.0.0.1 only, on a free port, and prints ``PORT <number>`` on
stdout once it is listening.
"""

from __future__ import annotations

import argparse
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BODY = b"gilx\n"


def make_handler(delay_s: float) -> type[BaseHTTPRequestHandler]:
    class DelayedHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection, as urlopen() does

        def do_GET(self) -> None:
            time.sleep(delay_s)  # the "network": blocks without the GIL
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the benchmark output clean

    return DelayedHandler


class DelayServer(ThreadingHTTPServer):
    daemon_threads = True
    # The listen() backlog.  The default, 5, drops the SYNs of a burst of
    # more than 5 simultaneous connections, and each dropped one costs the
    # client a 1 s retransmission timeout.
    request_queue_size = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, required=True, help="seconds before each answer")
    args = parser.parse_args()
    server = DelayServer(("127.0.0.1", 0), make_handler(args.delay))
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
