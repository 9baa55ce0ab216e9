"""Issue 11, item 4 (secrets at rest): a channel's secrets are nowhere in the data dir's files
in the clear (the database, its WAL), yet the channel still sends with them after a restart."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_api import send
from tests.integration.test_serve import Serve, cli

pytestmark = pytest.mark.slow

SECRETS = ("path-token-7f3a", "signing-secret-7f3a", "header-token-7f3a", "slack-token-7f3a")


class _Receiver(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.got: list[tuple[str, dict[str, str], bytes]] = []


class _Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.got.append((self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_secrets_are_sealed_on_disk_and_open_for_sending(data_dir: Path, receiver: _Receiver) -> None:
    server = Serve(data_dir, 1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        port = receiver.server_address[1]
        status, _, hook = send(server.url + "/api/v1/integrations", "POST", {
            "name": "hook", "type": "webhook", "config": {
                "url": f"http://127.0.0.1:{port}/hook/path-token-7f3a", "secret": "signing-secret-7f3a",
                "headers": {"Authorization": "Bearer header-token-7f3a"}}}, key)
        assert status == 201, hook
        status, _, _ = send(server.url + "/api/v1/integrations", "POST", {
            "name": "slack", "type": "slack",
            "config": {"webhookUrl": "https://hooks.slack.com/services/T0/B0/slack-token-7f3a"}}, key)
        assert status == 201
    finally:
        assert server.stop() == 0
    files = [p for p in data_dir.iterdir() if p.is_file() and p.name != "secret.key"]
    assert any(p.name == "xuptime.duckdb" for p in files)
    for path in files:
        raw = path.read_bytes()
        assert not any(s.encode() in raw for s in SECRETS), path.name
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600

    again = Serve(data_dir, 1)
    try:
        status, _, result = send(f"{again.url}/api/v1/integrations/{hook['data']['id']}/test", "POST", {}, key)
        assert status == 200 and result["data"]["delivered"] is True, result
        path, headers, body = receiver.got[-1]
        assert path == "/hook/path-token-7f3a" and headers["Authorization"] == "Bearer header-token-7f3a"
        expected = "sha256=" + hmac.new(b"signing-secret-7f3a", body, hashlib.sha256).hexdigest()
        assert headers["X-Xuptime-Signature"] == expected
    finally:
        assert again.stop() == 0


class _Echo(http.server.BaseHTTPRequestHandler):
    """An endpoint that answers 400 with everything it was sent: path, headers, body."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        echo = f"bad request to {self.path}\n{self.headers}\n".encode() + body
        self.send_response(400)
        self.send_header("Content-Length", str(len(echo)))
        self.end_headers()
        self.wfile.write(echo)

    def log_message(self, *args: Any) -> None:
        pass


def test_an_endpoint_echoing_its_request_gets_no_secret_shown(data_dir: Path) -> None:
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    server = Serve(data_dir, 1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        port = echo.server_address[1]
        status, _, hook = send(server.url + "/api/v1/integrations", "POST", {
            "name": "echo", "type": "webhook", "config": {
                "url": f"http://127.0.0.1:{port}/hook/path-token-7f3a?k=query-token-7f3a",
                "secret": "signing-secret-7f3a", "headers": {"Authorization": "Bearer header-token-7f3a"}}}, key)
        assert status == 201, hook
        status, _, result = send(f"{server.url}/api/v1/integrations/{hook['data']['id']}/test", "POST", {}, key)
        assert status == 200 and result["data"]["delivered"] is False and result["data"]["statusCode"] == 400
        shown = result["data"]["response"]
        assert shown.startswith("bad request to ****") and "\n" not in shown and len(shown) <= 200
        for secret in ("path-token-7f3a", "query-token-7f3a", "header-token-7f3a", "signing-secret-7f3a"):
            assert secret not in shown, (secret, shown)
    finally:
        assert server.stop() == 0
        echo.shutdown()
        echo.server_close()
