"""Issue 11, item 6: a monitor's own headers cannot smuggle a second request to the backend,
cannot carry control characters, and a ``Host`` header is honoured (a virtual host behind an
address), as an attacker with an API key would try it against a real server and backend."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_api import assert_error, send
from tests.integration.test_serve import Serve, cli

pytestmark = pytest.mark.slow


class _Backend(socketserver.ThreadingTCPServer):
    """Records every request head it reads (a smuggled request would be a second one on the
    connection) and answers each 200, closing the connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Record)
        self.heads: list[bytes] = []


class _Record(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(2)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data:
                    break
        except OSError:
            return
        self.server.heads.append(data)  # type: ignore[attr-defined]
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    backend = _Backend()
    thread = threading.Thread(target=backend.serve_forever, daemon=True)
    thread.start()
    data_dir: Path = tmp_path_factory.mktemp("headers") / "data"
    serve = Serve(data_dir, workers=1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        yield {"url": serve.url, "key": key, "backend": backend}
    finally:
        assert serve.stop() == 0
        backend.shutdown()
        backend.server_close()


@pytest.mark.parametrize(("headers", "field"), [
    ({"Content-Length": "0\r\n\r\nGET /poison HTTP/1.1"}, "headers.Content-Length"),
    ({"Content-Length": "5"}, "headers.Content-Length"),
    ({"Transfer-Encoding": "chunked"}, "headers.Transfer-Encoding"),
    ({"transfer-encoding": "identity"}, "headers.transfer-encoding"),
    ({"Connection": "keep-alive, Upgrade"}, "headers.Connection"),
    ({"X-Trace": "a\x00b"}, "headers.X-Trace"),
    ({"X-Trace": "a\rb"}, "headers.X-Trace"),
    ({"X Trace": "1"}, "headers.X Trace"),
    ({"Host": "evil.example\r\nX-Injected: 1"}, "headers.Host"),
])
def test_framing_and_control_characters_are_refused(setup: dict[str, Any], headers: dict[str, str],
                                                    field: str) -> None:
    monitor = {"name": "smuggler", "type": "http", "url": f"http://127.0.0.1:{setup['backend'].server_address[1]}/",
               "interval": 1, "headers": headers}
    status, response_headers, body = send(setup["url"] + "/api/v1/monitors", "POST", monitor, setup["key"])
    assert_error(status, response_headers, body, 400)
    assert [e["field"] for e in body["data"]["errors"]] == [field]


def test_the_host_header_is_honoured_and_nothing_is_smuggled(setup: dict[str, Any]) -> None:
    backend = setup["backend"]
    port = backend.server_address[1]
    for keep_alive in (False, True):
        monitor = {"name": f"vhost-{keep_alive}", "type": "http", "url": f"http://127.0.0.1:{port}/health",
                   "interval": 1, "keepAlive": keep_alive,
                   "headers": {"Host": "status.internal.example", "X-Trace": "tab\tok"}}
        status, _, body = send(setup["url"] + "/api/v1/monitors", "POST", monitor, setup["key"])
        assert status == 201, body
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(backend.heads) < 4:
        time.sleep(0.2)
    heads = list(backend.heads)
    assert len(heads) >= 4
    for head in heads:
        lines = head.split(b"\r\n")
        assert lines[0] == b"GET /health HTTP/1.1"
        hosts = [line for line in lines if line.lower().startswith(b"host:")]
        assert hosts == [b"Host: status.internal.example"]  # one Host, the monitor's
        assert head.count(b"HTTP/1.1") == 1 and b"poison" not in head
        assert b"X-Trace: tab\tok" in head
