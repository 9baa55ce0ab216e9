"""Issue 11, item 9 (in part): a key's ``lastUsedAt`` is written (at most once a minute per
key), and the api-keys list pages like every other list (``pagination.limit`` is the limit
asked, not the count)."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest

from tests.integration.test_api import call, send
from tests.integration.test_serve import Serve, cli

pytestmark = pytest.mark.slow


def test_last_used_is_written_and_keys_page(data_dir: Path) -> None:
    server = Serve(data_dir, 1)
    try:
        key = cli(data_dir, "keys", "create", "--name", "first").stdout.splitlines()[-1]
        base = server.url + "/api/v1/api-keys"
        for i in range(4):
            assert send(base, "POST", {"name": f"k{i}"}, key)[0] == 201
        auth = {"X-API-Key": key}
        status, _, page = call(f"{base}?limit=2", headers=auth)
        assert status == 200 and page["pagination"]["limit"] == 2 and page["pagination"]["total"] == 5
        names = [k["name"] for k in page["data"]]
        while page["pagination"]["nextCursor"]:
            status, _, page = call(f"{base}?limit=2&cursor={page['pagination']['nextCursor']}", headers=auth)
            names += [k["name"] for k in page["data"]]
        assert names == ["first", "k0", "k1", "k2", "k3"]
        deadline = time.monotonic() + 10
        first: dict = {}
        while time.monotonic() < deadline:
            first = call(f"{base}?limit=1", headers=auth)[2]["data"][0]
            if first["lastUsedAt"]:
                break
            time.sleep(0.2)
        assert first["name"] == "first" and first["lastUsedAt"] and first["lastUsedAt"].endswith("Z")
        unused = call(f"{base}?limit=5", headers=auth)[2]["data"][1]
        assert unused["name"] == "k0" and unused["lastUsedAt"] is None
    finally:
        assert server.stop() == 0
    listed = cli(data_dir, "keys", "list").stdout  # stopped: read from the file
    row = next(line for line in listed.splitlines() if " first " in line)
    assert len(re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row)) == 2  # created and last used


def test_a_body_that_never_finishes_is_a_408(data_dir: Path) -> None:
    server = Serve(data_dir, 1, "--body-timeout", "1")
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            sock.sendall(b"POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"X-API-Key: " + key.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"name\":")
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        payload = json.loads(body)
        assert payload["statusCode"] == 408 and payload["data"]["errors"][0]["field"] == "body"
        assert send(server.url + "/api/v1/monitors", "POST",
                    {"name": "whole", "type": "tcp", "host": "127.0.0.1", "port": 9}, key)[0] == 201
    finally:
        assert server.stop() == 0
