"""The io workload's server: loopback only, answers after a delay, shuts down."""

from __future__ import annotations

import socket
import urllib.parse

import pytest

from gilx import _httpdelay, workloads


def test_serves_on_loopback_only_and_shuts_down():
    with _httpdelay.serve(delay=0.001, body_bytes=100) as url:
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        assert _httpdelay.download(_httpdelay.loopback_opener(), url) == 100
        port = parts.port
    assert port is not None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


@pytest.mark.thread_unsafe(reason="counts the process's server threads and children")
def test_the_server_runs_in_a_child_process_that_is_gone_after_the_block():
    import os
    import threading

    from gilx import machine

    with _httpdelay.serve(delay=0.001):
        # nothing of the server runs in this process: no thread on its GIL
        assert not any(t.name == "gilx-httpdelay" for t in threading.enumerate())
        (pid,) = machine._helper_pids
        assert pid != os.getpid()
        os.kill(pid, 0)  # alive
    assert pid not in machine._helper_pids
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # exited and reaped


@pytest.mark.parametrize(("delay", "body"), [(-1.0, 10), (0.01, -1)])
def test_serve_refuses_a_negative_delay_or_size(delay, body):
    with pytest.raises(ValueError, match="must be >= 0"), _httpdelay.serve(delay, body):
        pass


@pytest.mark.parametrize(
    "url", ["http://example.com/", "https://127.0.0.1:1/", "http://10.0.0.1:80/"]
)
def test_downloads_refuse_any_other_address(url):
    with pytest.raises(ValueError, match=r"only talks to 127\.0\.0\.1"):
        _httpdelay.download(_httpdelay.loopback_opener(), url)


def test_proxy_settings_do_not_reroute_loopback(monkeypatch):
    monkeypatch.setenv("http_proxy", "http://192.0.2.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://192.0.2.1:9")
    with _httpdelay.serve(delay=0.001, body_bytes=10) as url:
        assert _httpdelay.download(_httpdelay.loopback_opener(), url) == 10


def test_io_workload_downloads_its_share_from_the_session_server():
    io = workloads.get("io")
    with io.server() as url:
        assert url.startswith("http://127.0.0.1:")
        io.prepare(3, url)()
