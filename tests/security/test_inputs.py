"""Issue 11, item 8: input that used to give a 500 is a 400 naming the field, over HTTP as an
attacker with an API key sends it, and changes nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_api import assert_error, call, send
from tests.integration.test_serve import Serve, cli

pytestmark = pytest.mark.slow

DEEP = ("[" * 5000 + "]" * 5000).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir: Path = tmp_path_factory.mktemp("inputs") / "data"
    serve = Serve(data_dir, workers=1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        status, _, body = send(serve.url + "/api/v1/monitors", "POST",
                               {"name": "kept", "type": "http", "url": "http://127.0.0.1:9/", "interval": 3600}, key)
        assert status == 201
        yield {"url": serve.url, "key": key, "data_dir": data_dir, "monitor": body["data"]}
    finally:
        assert serve.stop() == 0


def _monitors(server: dict[str, Any]) -> list[dict[str, Any]]:
    return call(server["url"] + "/api/v1/monitors?limit=100", headers={"X-API-Key": server["key"]})[2]["data"]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/v1/monitors"), ("POST", "/api/v1/monitors/bulk"), ("PATCH", "/api/v1/monitors/{id}"),
    ("POST", "/api/v1/integrations"), ("POST", "/api/v1/api-keys"),
])
def test_json_nested_thousands_deep_is_a_400(server: dict[str, Any], method: str, path: str) -> None:
    before = _monitors(server)
    status, headers, body = send(server["url"] + path.format(id=server["monitor"]["id"]), method, DEEP, server["key"])
    assert_error(status, headers, body, 400)
    assert body["data"]["errors"] == [{"field": "body", "message": "nested too deeply"}]
    assert _monitors(server) == before


def test_a_cursor_nested_thousands_deep_is_a_400(server: dict[str, Any]) -> None:
    cursor = base64.urlsafe_b64encode(b'{"after":' + DEEP + b"}").decode().rstrip("=")
    for path in ("/api/v1/monitors", "/api/v1/incidents", "/api/v1/integrations"):
        status, headers, body = call(f"{server['url']}{path}?cursor={cursor}", headers={"X-API-Key": server["key"]})
        assert_error(status, headers, body, 400)
        assert body["data"]["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(("monitor", "field", "says"), [
    ({"type": "http", "url": "http://[::1/"}, "url", "is not a valid URL"),
    ({"type": "http", "url": "http://[fe80::1%25eth0]/"}, "url", "not a valid host"),
    ({"type": "tcp", "host": "fe80::1%eth0", "port": 22}, "host", "host name or IP address"),
    ({"type": "http", "url": "http://admin:secret@example.com/"}, "url", "credentials"),
    ({"type": "http", "url": "http://example.com/", "tags": [f"t{i}" for i in range(101)]}, "tags", "100"),
    ({"type": "http", "url": "http://example.com/", "tags": ["x" * 65]}, "tags", "64"),
    ({"type": "tcp", "host": "example.com", "port": 65536}, "port", "65535"),
    ({"type": "tcp", "host": "example.com", "port": 0}, "port", ""),
])
def test_bad_targets_and_limits_are_400s_naming_the_field(server: dict[str, Any], monitor: dict[str, Any],
                                                          field: str, says: str) -> None:
    before = _monitors(server)
    status, headers, body = send(server["url"] + "/api/v1/monitors", "POST", {"name": "bad", **monitor},
                                 server["key"])
    assert_error(status, headers, body, 400)
    errors = {e["field"]: e["message"] for e in body["data"]["errors"]}
    assert field in errors and says in errors[field], errors
    assert "secret" not in json.dumps(body)  # a refused URL's credentials are not echoed
    status, headers, body = send(f"{server['url']}/api/v1/monitors/{server['monitor']['id']}", "PATCH",
                                 {k: v for k, v in monitor.items() if k != "type"}, server["key"])
    if monitor["type"] == "http":  # (the kept monitor is an HTTP one: a PATCH is judged alike)
        assert_error(status, headers, body, 400)
    assert _monitors(server) == before


@pytest.mark.parametrize("url", ["http://[::1/hook", "http://[fe80::1%25eth0]/hook"])
def test_bad_channel_urls_are_400s_naming_the_field(server: dict[str, Any], url: str) -> None:
    status, headers, body = send(server["url"] + "/api/v1/integrations", "POST",
                                 {"name": "hook", "type": "webhook", "config": {"url": url}}, server["key"])
    assert_error(status, headers, body, 400)
    assert [e["field"] for e in body["data"]["errors"]] == ["config.url"]
