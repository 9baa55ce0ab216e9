"""``/api/v1`` over real HTTP against a running ``xuptime serve`` (the first slice of the API:
authentication, the error shape, and the monitors list)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_serve import Serve, add, cli, wait_for

pytestmark = pytest.mark.slow


def call(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, _lower(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers), json.loads(exc.read())


def _lower(headers: Any) -> dict[str, str]:
    """Header names are case-insensitive: compare them in lower case."""
    return {k.lower(): v for k, v in headers.items()}


def assert_error(status: int, headers: dict[str, str], body: Any, expected: int) -> None:
    assert status == expected, body
    assert headers["content-type"].startswith("application/json")
    assert set(body) == {"statusCode", "statusMessage", "data"} and body["statusCode"] == expected
    assert isinstance(body["data"]["reason"], str) and body["data"]["reason"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("api") / "data"
    cli(data_dir, "accounts", "create", "other")
    server = Serve(data_dir, workers=1)
    try:
        key = cli(data_dir, "keys", "create", "--name", "tests").stdout.splitlines()[-1]
        other = cli(data_dir, "keys", "create", "--account", "other").stdout.splitlines()[-1]
        yield {"url": server.url, "key": key, "other": other, "data_dir": data_dir, "server": server}
    finally:
        assert server.stop() == 0


def test_every_way_to_send_a_key(api: dict[str, Any]) -> None:
    url, key = api["url"] + "/api/v1/monitors", api["key"]
    for headers, query in [({"Authorization": f"Bearer {key}"}, ""), ({"X-API-Key": key}, ""),
                           ({}, f"?api_key={key}")]:
        status, response_headers, body = call(url + query, headers=headers)
        assert status == 200, body
        assert response_headers["content-type"].startswith("application/json")
        assert set(body) == {"data", "pagination"}


def test_a_read_only_key_reads_outside_the_monthly_quota_and_changes_nothing(api: dict[str, Any]) -> None:
    """What Grafana's Infinity data source is given: GET works, spends a minute's budget of its
    own (the quota headers say so), never the month's; anything else is a 403 that changes
    nothing."""
    url, key = api["url"], api["key"]
    status, _, body = send(f"{url}/api/v1/api-keys", "POST", {"name": "grafana", "scope": "read"}, key)
    assert status == 201 and body["data"]["scope"] == "read", body
    reader = body["data"]["secret"]
    assert_error(*send(f"{url}/api/v1/api-keys", "POST", {"name": "x", "scope": "admin"}, key), 400)
    listed = call(f"{url}/api/v1/api-keys?limit=100", headers={"X-API-Key": key})[2]["data"]
    assert {k["name"]: k["scope"] for k in listed}["grafana"] == "read" and "x" not in {k["name"] for k in listed}

    used = call(f"{url}/api/v1/account/usage", headers={"X-API-Key": key})[2]["data"]["used"]
    for _ in range(5):
        status, headers, body = call(f"{url}/api/v1/monitors", headers={"Authorization": f"Bearer {reader}"})
        assert status == 200 and "data" in body
    assert headers["x-api-limit"] == "600" and headers["x-api-remaining"] == "595"
    assert 0 < int(headers["x-api-reset"]) - time.time() <= 60  # (the minute's end, not the month's)
    # (the one request of the full key above counts; the reader's five do not)
    assert call(f"{url}/api/v1/account/usage", headers={"X-API-Key": key})[2]["data"]["used"] == used + 1

    before = call(f"{url}/api/v1/monitors?limit=100", headers={"X-API-Key": key})[2]["data"]
    status, headers, body = send(f"{url}/api/v1/monitors", "POST", {"name": "no", "type": "tcp", "host": "127.0.0.1",
                                                                     "port": 9}, reader)
    assert_error(status, headers, body, 403)
    assert body["data"]["reason"] == "This API key can only read (GET and HEAD)"
    assert call(f"{url}/api/v1/monitors?limit=100", headers={"X-API-Key": key})[2]["data"] == before


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer xup_not-a-real-key"}, {"X-API-Key": "nope"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}])
def test_missing_or_unknown_key_is_401(api: dict[str, Any], headers: dict[str, str]) -> None:
    status, response_headers, body = call(api["url"] + "/api/v1/monitors", headers=headers)
    assert_error(status, response_headers, body, 401)
    assert body == {"statusCode": 401, "statusMessage": "Unauthorized",
                    "data": {"reason": "API key missing or invalid"}}


def test_revoked_key_is_401(api: dict[str, Any]) -> None:
    data_dir = api["data_dir"]
    secret = cli(data_dir, "keys", "create", "--name", "short-lived").stdout.splitlines()[-1]
    assert call(api["url"] + "/api/v1/monitors", headers={"X-API-Key": secret})[0] == 200
    key_id = [k for k in json.loads(cli(data_dir, "keys", "list", "--json").stdout) if k["name"] == "short-lived"]
    cli(data_dir, "keys", "revoke", str(key_id[0]["id"]))
    status, headers, body = call(api["url"] + "/api/v1/monitors", headers={"X-API-Key": secret})
    assert_error(status, headers, body, 401)


def test_errors_have_one_shape(api: dict[str, Any]) -> None:
    auth = {"X-API-Key": api["key"]}
    assert_error(*call(api["url"] + "/api/v1/no-such-thing", headers=auth), 404)
    assert_error(*call(api["url"] + "/api/v1/monitors", method="DELETE", headers=auth), 405)
    for query, field in [("limit=0", "limit"), ("limit=101", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"),
                         ("cursor=garbage", "cursor"), ("cursor=eyJhZnRlciI6IC0xfQ", "cursor"),
                         ("status=sideways", "status"), ("type=smtp", "type")]:
        status, headers, body = call(f"{api['url']}/api/v1/monitors?{query}", headers=auth)
        assert_error(status, headers, body, 400)
        assert [e["field"] for e in body["data"]["errors"]] == [field], query
    status, _, body = call(api["url"] + "/healthz")
    assert status == 200 and body == {"status": "ok"}


def test_pagination_walk_with_concurrent_inserts_and_deletes_and_isolation(api: dict[str, Any]) -> None:
    data_dir, url, auth = api["data_dir"], api["url"], {"Authorization": f"Bearer {api['key']}"}
    ids = [add(data_dir, f"page-{i}", "--url", f"http://127.0.0.1:9/{i}", "--tag", "walk") for i in range(12)]
    status, _, body = call(f"{url}/api/v1/monitors?limit=100&tag=walk", headers=auth)
    assert status == 200 and body["pagination"] == {"limit": 100, "nextCursor": None, "total": 12}
    first = body["data"][0]
    for field in ("id", "name", "type", "url", "interval", "timeout", "status", "lastCheckAt", "lastLatencyMs",
                  "createdAt", "updatedAt", "tags"):
        assert field in first, field
    assert first["createdAt"].endswith("Z") and first["status"] in ("pending", "up", "down")

    seen: list[int] = []
    cursor = None
    deleted, added = ids[7], []
    for step in range(20):
        query = "limit=5&tag=walk" + (f"&cursor={cursor}" if cursor else "")
        status, _, body = call(f"{url}/api/v1/monitors?{query}", headers=auth)
        assert status == 200, body
        assert body["pagination"]["limit"] == 5 and len(body["data"]) <= 5
        seen += [m["id"] for m in body["data"]]
        if step == 0:  # while walking: one deleted ahead of us, the one under the cursor, one added
            cli(data_dir, "monitors", "remove", str(deleted))
            cli(data_dir, "monitors", "remove", str(body["data"][-1]["id"]))  # the cursor points at it
            added.append(add(data_dir, "late", "--url", "http://127.0.0.1:9/late", "--tag", "walk"))
        cursor = body["pagination"]["nextCursor"]
        if cursor is None:
            break
    survivors = [i for i in ids if i != deleted]  # (ids[4], under the cursor, was seen before it went)
    assert [i for i in seen if i in survivors] == survivors  # none skipped, none repeated, in order
    assert len(seen) == len(set(seen)) and deleted not in seen and added[0] in seen

    status, _, body = call(f"{url}/api/v1/monitors?tag=walk", headers={"X-API-Key": api["other"]})
    assert status == 200 and body["data"] == [] and body["pagination"]["total"] == 0  # another account's


def test_filters(api: dict[str, Any]) -> None:
    data_dir, url, auth = api["data_dir"], api["url"], {"X-API-Key": api["key"]}
    tcp = add(data_dir, "Database primary", "--type", "tcp", "--host", "127.0.0.1", "--port", "9", "--tag", "db")
    status, _, body = call(f"{url}/api/v1/monitors?type=tcp&q=PRIMARY", headers=auth)
    assert status == 200 and [m["id"] for m in body["data"]] == [tcp]
    assert body["data"][0]["host"] == "127.0.0.1" and body["data"][0]["port"] == 9
    status, _, body = call(f"{url}/api/v1/monitors?tag=db&status=paused", headers=auth)
    assert status == 200 and body["data"] == []
    cli(data_dir, "monitors", "pause", str(tcp))
    status, _, body = call(f"{url}/api/v1/monitors?tag=db&status=paused", headers=auth)
    assert [m["id"] for m in body["data"]] == [tcp] and body["data"][0]["paused"] is True


def test_a_busy_port_is_a_clear_error(api: dict[str, Any], tmp_path: Path) -> None:
    import subprocess
    import sys

    port = api["url"].rsplit(":", 1)[1]
    args = [sys.executable, "-m", "core.cli", "serve", "--data-dir", str(tmp_path / "d"), "--port", port]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def _new_account(api: dict[str, Any], name: str, limit: int) -> str:
    cli(api["data_dir"], "accounts", "create", name, "--monthly-limit", str(limit))
    return cli(api["data_dir"], "keys", "create", "--account", name).stdout.splitlines()[-1]


def test_quota_headers_and_the_boundary(api: dict[str, Any]) -> None:
    import datetime as dt

    key = _new_account(api, "tiny", 3)
    url = api["url"]
    status, headers, _ = call(f"{url}/api/v1/monitors", headers={"X-API-Key": key})
    now = dt.datetime.now(dt.UTC)
    nxt = dt.datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=dt.UTC)
    assert status == 200
    assert (headers["x-api-limit"], headers["x-api-remaining"]) == ("3", "2")
    assert int(headers["x-api-reset"]) == int(nxt.timestamp())
    status, headers, body = call(f"{url}/api/v1/monitors?limit=0", headers={"X-API-Key": key})  # errors count too
    assert status == 400 and headers["x-api-remaining"] == "1"
    status, headers, body = call(f"{url}/api/v1/account/usage", headers={"X-API-Key": key})
    assert status == 200 and headers["x-api-remaining"] == "0"
    assert body["data"] == {"month": now.strftime("%Y-%m"), "limit": 3, "used": 3, "remaining": 0,
                            "reset": int(nxt.timestamp()), "resetAt": nxt.strftime("%Y-%m-%dT%H:%M:%SZ")}
    status, headers, body = call(f"{url}/api/v1/monitors", headers={"X-API-Key": key})
    assert body == {"statusCode": 429, "statusMessage": "Too Many Requests",
                    "data": {"reason": "Monthly request limit reached"}}
    assert status == 429 and headers["x-api-remaining"] == "0" and headers["x-api-limit"] == "3"
    assert 0 < int(headers["retry-after"]) <= int(nxt.timestamp() - now.timestamp()) + 1
    status, headers, _ = call(f"{url}/api/v1/monitors", headers={"X-API-Key": "xup_unknown"})
    assert status == 401 and "x-api-limit" not in headers  # not authenticated: no account to report


def test_quota_is_exact_under_concurrency(api: dict[str, Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = _new_account(api, "racer", 100)
    url = f"{api['url']}/api/v1/monitors?limit=1"
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda _: call(url, headers={"X-API-Key": key})[0], range(200)))
    assert statuses.count(200) == 100 and statuses.count(429) == 100


def test_quota_count_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    cli(data_dir, "accounts", "create", "keeper", "--monthly-limit", "10")
    key = cli(data_dir, "keys", "create", "--account", "keeper").stdout.splitlines()[-1]
    server = Serve(data_dir, workers=1)
    try:
        for _ in range(4):
            assert call(f"{server.url}/api/v1/monitors", headers={"X-API-Key": key})[0] == 200
    finally:
        assert server.stop() == 0
    again = Serve(data_dir, workers=1)
    try:
        status, headers, body = call(f"{again.url}/api/v1/account/usage", headers={"X-API-Key": key})
        assert status == 200 and body["data"]["used"] == 5 and headers["x-api-remaining"] == "5"
        import signal
        import time

        time.sleep(0.5)  # older than the 100 ms write-behind interval
        again.proc.send_signal(signal.SIGKILL)
        again.proc.wait(10)
        again.log.close()
    finally:
        again.kill_everything()
    third = Serve(data_dir, workers=1)
    try:
        status, _, body = call(f"{third.url}/api/v1/account/usage", headers={"X-API-Key": key})
        assert status == 200 and body["data"]["used"] == 6  # the count survived kill -9
    finally:
        assert third.stop() == 0


def send(url: str, method: str, body: Any, key: str, content_type: str = "application/json"
         ) -> tuple[int, dict[str, str], Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=raw, method=method,
                                     headers={"X-API-Key": key, "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, _lower(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers), json.loads(exc.read())


@pytest.fixture(scope="module")
def target_url() -> Iterator[str]:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_monitor_lifecycle_over_http(api: dict[str, Any], target_url: str) -> None:
    import time

    base, key = api["url"] + "/api/v1/monitors", api["key"]
    status, _, body = send(base, "POST", {"name": "Site", "type": "http", "url": target_url, "interval": 1,
                                          "tags": ["web"]}, key)
    assert status == 201, body
    created = body["data"]
    mid = created["id"]
    assert (created["name"], created["type"], created["url"], created["method"]) == ("Site", "http", target_url, "GET")
    assert created["status"] == "pending" and created["interval"] == 1 and created["createdAt"].endswith("Z")

    deadline = time.monotonic() + 5  # the first result lands within interval + 1 s (plus slack)
    while True:
        status, _, body = call(f"{base}/{mid}", headers={"X-API-Key": key})
        assert status == 200
        if body["data"]["lastCheckAt"] is not None:
            break
        assert time.monotonic() < deadline, "no check result after 5 s"
        time.sleep(0.2)
    assert body["data"]["lastLatencyMs"] >= 0

    status, _, body = send(f"{base}/{mid}", "PATCH", {"name": "Site (renamed)", "interval": 30}, key)
    assert status == 200 and body["data"]["name"] == "Site (renamed)" and body["data"]["interval"] == 30
    assert body["data"]["url"] == target_url  # untouched fields stay
    status, _, body = send(f"{base}/{mid}", "PATCH", {"type": "tcp"}, key)
    assert status == 400 and [e["field"] for e in body["data"]["errors"]] == ["type"]

    status, _, body = send(f"{base}/{mid}/pause", "POST", {}, key)
    assert status == 200 and body["data"]["status"] == "paused" and body["data"]["paused"] is True
    status, _, body = send(f"{base}/{mid}/resume", "POST", {}, key)
    assert status == 200 and body["data"]["status"] == "pending" and body["data"]["paused"] is False
    status, _, body = send(f"{base}/{mid}", "PATCH", {"paused": True}, key)
    assert status == 200 and body["data"]["status"] == "paused"

    other = {"X-API-Key": api["other"]}
    for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/pause")]:
        status, headers, body = call(f"{base}/{mid}{path}", method=method, headers=other)
        assert_error(status, headers, body, 404)  # another account's monitor does not exist for you
    assert send(f"{base}/{mid}", "PATCH", {"name": "hijack"}, api["other"])[0] == 404

    status, _, body = call(f"{base}/{mid}", method="DELETE", headers={"X-API-Key": key})
    assert status == 200 and body["data"] == {"id": mid, "deleted": True}
    assert_error(*call(f"{base}/{mid}", headers={"X-API-Key": key}), 404)
    assert_error(*call(f"{base}/{mid}", method="DELETE", headers={"X-API-Key": key}), 404)


@pytest.mark.parametrize(("body", "fields"), [
    ({"name": "x", "type": "http", "url": "ftp://example.com/"}, ["url"]),
    ({"name": "x", "type": "tcp", "host": "h", "port": 70000}, ["port"]),
    ({"name": "x", "type": "http", "url": "http://h/", "colour": "red"}, ["colour"]),
    ({"name": 5, "type": "http", "url": "http://h/", "interval": "often"}, ["name", "interval"]),
    ({"name": "x", "type": "http", "url": "http://h/", "id": 99}, ["id"]),
    ({"type": "smtp"}, ["type", "name"]),
    ({"type": "dns"}, ["host", "name"]),
    ([1, 2, 3], ["body"]),
])
def test_bad_monitor_bodies_are_400_and_change_nothing(api: dict[str, Any], body: Any, fields: list[str]) -> None:
    base, key = api["url"] + "/api/v1/monitors", api["key"]
    before = call(f"{base}?limit=100", headers={"X-API-Key": key})[2]["pagination"]["total"]
    status, headers, response = send(base, "POST", body, key)
    assert_error(status, headers, response, 400)
    assert sorted(e["field"] for e in response["data"]["errors"]) == sorted(fields)
    assert call(f"{base}?limit=100", headers={"X-API-Key": key})[2]["pagination"]["total"] == before


def test_malformed_requests(api: dict[str, Any]) -> None:
    base, key = api["url"] + "/api/v1/monitors", api["key"]
    status, headers, body = send(base, "POST", b'{"name": "x", ', key)
    assert_error(status, headers, body, 400)
    assert body["data"]["errors"][0]["field"] == "body"
    assert_error(*send(base, "POST", b"name=x", key, content_type="application/x-www-form-urlencoded"), 415)
    assert_error(*post_too_large(api["url"], key), 413)


def post_too_large(url: str, key: str) -> tuple[int, dict[str, str], Any]:
    """POST a monitor body over 1 MiB, by hand: the server answers 413 from Content-Length
    alone and may close (with a reset, as data is left unread) before reading the body, so a
    client pushing the whole body sees a broken pipe. Send the head and a little of the body,
    then read the answer, which arrives before any reset."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /api/v1/monitors HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n".encode()
                     + b'{"name": "' + b"a" * 65536)
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(payload)


def test_api_keys_endpoints(api: dict[str, Any]) -> None:
    base = api["url"] + "/api/v1/api-keys"
    key = _new_account(api, "keyring", 1000)
    status, _, body = send(base, "POST", {"name": "deploy bot"}, key)
    assert status == 201 and body["data"]["secret"].startswith("xup_") and body["data"]["name"] == "deploy bot"
    new_secret, new_id = body["data"]["secret"], body["data"]["id"]
    assert call(base, headers={"X-API-Key": new_secret})[0] == 200  # usable at once
    status, _, body = call(base, headers={"X-API-Key": key})
    assert status == 200 and {k["name"] for k in body["data"]} == {"default", "deploy bot"}
    assert all("secret" not in k and "sha256" not in k for k in body["data"])
    for bad, fields in [({"name": ""}, ["name"]), ({"name": "x", "scope": "all"}, ["scope"]), ([], ["body"])]:
        status, headers, response = send(base, "POST", bad, key)
        assert_error(status, headers, response, 400)
        assert sorted(e["field"] for e in response["data"]["errors"]) == fields
    assert_error(*call(f"{base}/{new_id}", method="DELETE", headers={"X-API-Key": api["other"]}), 404)
    status, _, body = call(f"{base}/{new_id}", method="DELETE", headers={"X-API-Key": key})
    assert status == 200 and body["data"] == {"id": new_id, "revoked": True}
    assert_error(*call(base, headers={"X-API-Key": new_secret}), 401)  # revoked: refused at once


def test_incidents_endpoints(api: dict[str, Any]) -> None:
    import time

    base, key = api["url"] + "/api/v1", api["key"]
    status, _, body = send(f"{base}/monitors", "POST", {"name": "Down one", "type": "tcp", "host": "127.0.0.1",
                                                          "port": 9, "interval": 1}, key)  # nothing listens on 9
    assert status == 201
    mid = body["data"]["id"]
    deadline = time.monotonic() + 10
    while True:
        status, _, body = call(f"{base}/monitors/{mid}/incidents", headers={"X-API-Key": key})
        assert status == 200
        if body["data"]:
            break
        assert time.monotonic() < deadline, "no incident after 10 s"
        time.sleep(0.25)
    incident = body["data"][0]
    assert incident["monitorId"] == mid and incident["status"] == "open" and incident["resolvedAt"] is None
    assert incident["cause"] == "connection refused" and incident["startedAt"].endswith("Z")
    status, _, body = call(f"{base}/incidents?limit=100", headers={"X-API-Key": key})
    assert status == 200 and mid in {i["monitorId"] for i in body["data"]}
    ids = [i["id"] for i in body["data"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert_error(*call(f"{base}/monitors/{mid}/incidents", headers={"X-API-Key": api["other"]}), 404)
    status, _, body = call(f"{base}/incidents", headers={"X-API-Key": api["other"]})
    assert status == 200 and body["data"] == []
    send(f"{base}/monitors/{mid}/pause", "POST", {}, key)


def test_history_and_uptime(api: dict[str, Any], target_url: str) -> None:
    import time

    base, key = api["url"] + "/api/v1/monitors", api["key"]
    mid = send(base, "POST", {"name": "Hist", "type": "http", "url": target_url, "interval": 1}, key)[2]["data"]["id"]
    deadline = time.monotonic() + 10
    while True:
        status, _, body = call(f"{base}/{mid}/history?limit=2", headers={"X-API-Key": key})
        assert status == 200
        if len(body["data"]) == 2 and body["pagination"]["nextCursor"]:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
    first, second = body["data"]
    assert first["ts"] > second["ts"] and first["ok"] is True and first["statusCode"] == 200
    assert set(first["phases"]) == {"dnsMs", "connectMs", "tlsMs", "ttfbMs"} and first["phases"]["dnsMs"] is None
    status, _, page2 = call(f"{base}/{mid}/history?limit=2&cursor={body['pagination']['nextCursor']}",
                            headers={"X-API-Key": key})
    assert status == 200 and all(r["ts"] < second["ts"] for r in page2["data"])

    status, _, body = call(f"{base}/{mid}/history?interval=1m&from=0", headers={"X-API-Key": key})
    # (the newest minute may hold one check: the minute can turn between two of them)
    assert status == 200 and sum(b["checks"] for b in body["data"]) >= 2
    assert {b["uptime"] for b in body["data"]} == {1.0}
    # Answers are cached, but the same query sees every check stored since (within 10 s).
    def counted() -> int:
        answer = call(f"{base}/{mid}/history?interval=1h&from=0", headers={"X-API-Key": key})[2]
        return sum(b["checks"] for b in answer["data"])
    before, deadline = counted(), time.monotonic() + 10
    while counted() <= before + 1:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert set(body["data"][0]["latencyMs"]) == {"avg", "min", "max", "p50", "p95", "p99"}
    status, _, body = call(f"{base}/{mid}/uptime?windows=1h,30d", headers={"X-API-Key": key})
    assert status == 200 and set(body["data"]) == {"1h", "30d"}
    assert body["data"]["1h"]["uptime"] == 1.0 and body["data"]["1h"]["downtimeSeconds"] == 0

    for query, field in [("interval=2m", "interval"), ("from=yesterday", "from"), ("to=1e", "to"),
                         ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"), ("limit=0", "limit"),
                         ("cursor=%%%", "cursor")]:
        status, headers, response = call(f"{base}/{mid}/history?{query}", headers={"X-API-Key": key})
        assert_error(status, headers, response, 400)
        assert [e["field"] for e in response["data"]["errors"]] == [field], query
    assert_error(*call(f"{base}/{mid}/uptime?windows=forever", headers={"X-API-Key": key}), 400)
    assert_error(*call(f"{base}/{mid}/history", headers={"X-API-Key": api["other"]}), 404)
    send(f"{base}/{mid}/pause", "POST", {}, key)


def test_openapi_document_and_docs_page(api: dict[str, Any]) -> None:
    request = urllib.request.Request(api["url"] + "/api/v1/openapi.json")
    with urllib.request.urlopen(request, timeout=10) as response:  # public, like the docs page
        assert response.status == 200
        doc = json.loads(response.read())
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path, method in [("/api/v1/monitors", "get"), ("/api/v1/monitors", "post"),
                         ("/api/v1/monitors/{monitor_id}", "patch"), ("/api/v1/monitors/{monitor_id}/history", "get"),
                         ("/api/v1/monitors/{monitor_id}/uptime", "get"), ("/api/v1/incidents", "get"),
                         ("/api/v1/api-keys", "post"), ("/api/v1/account/usage", "get")]:
        operation = paths[path][method]
        assert {"400", "401", "429"} <= set(operation["responses"]), (path, method)
        error = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert error["$ref"].endswith("/ErrorPayload")
        success = next(v for k, v in operation["responses"].items() if k.startswith("2"))
        assert {"X-API-Limit", "X-API-Remaining", "X-API-Reset"} <= set(success["headers"])
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKeyHeader", "apiKeyQuery"}
    assert set(doc["components"]["schemas"]["ErrorPayload"]["properties"]) == {"statusCode", "statusMessage", "data"}
    # Request bodies: the documented schemas accept what the API accepts and reject what it rejects.
    import jsonschema_rs

    def body_schema(path: str, method: str) -> dict[str, Any]:
        ref = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        return {**ref, "components": doc["components"]}

    create = body_schema("/api/v1/monitors", "post")
    for body in ({"name": "web", "type": "http", "url": "http://127.0.0.1/", "expectedStatus": ["200-299"]},
                 {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432, "interval": 30}):
        assert jsonschema_rs.is_valid(create, body), body
        assert send(api["url"] + "/api/v1/monitors", "POST", body, api["key"])[0] == 201
    for body in ({"name": "db", "type": "tcp", "host": "h", "port": 70000}, {"type": "http", "url": "http://a/"},
                 {"name": "x", "type": "http", "url": "http://a/", "colour": "red"}, {"name": "x", "type": "ping"}):
        assert not jsonschema_rs.is_valid(create, body), body
        assert send(api["url"] + "/api/v1/monitors", "POST", body, api["key"])[0] == 400
    assert jsonschema_rs.is_valid(body_schema("/api/v1/monitors/{monitor_id}", "patch"), {"interval": 120})
    assert not jsonschema_rs.is_valid(body_schema("/api/v1/monitors/{monitor_id}", "patch"), {"colour": "red"})
    assert jsonschema_rs.is_valid(body_schema("/api/v1/api-keys", "post"), {"name": "ci"})
    channel = body_schema("/api/v1/integrations", "post")
    assert jsonschema_rs.is_valid(channel, {"name": "ops", "type": "slack", "isDefault": True,
                                            "config": {"webhookUrl": "https://hooks.slack.com/services/T/B/X"}})
    assert not jsonschema_rs.is_valid(channel, {"name": "ops", "type": "slack", "config": {"url": "https://x/"}})
    assert not jsonschema_rs.is_valid(channel, {"name": "ops", "type": "pager", "config": {}})
    # Query parameters, typed responses (their examples valid against them) and the routes outside /api/v1.
    def params(path: str, method: str = "get") -> set[str]:
        return {p["name"] for p in paths[path][method].get("parameters", []) if p["in"] == "query"}

    assert {"limit", "cursor", "status", "type", "tag", "q"} <= params("/api/v1/monitors")
    assert {"interval", "from", "to", "limit", "cursor"} <= params("/api/v1/monitors/{monitor_id}/history")
    assert "windows" in params("/api/v1/monitors/{monitor_id}/uptime")
    assert {"/metrics", "/api/push/{token}", "/healthz"} <= set(paths)
    assert {"status", "msg", "ping"} <= params("/api/push/{token}", "post")
    schemas = doc["components"]["schemas"]
    for name in ("Monitor", "Check", "Bucket", "Incident", "ApiKey", "Usage", "Integration"):
        assert jsonschema_rs.is_valid({**schemas[name], "components": doc["components"]}, schemas[name]["example"])
    listed = paths["/api/v1/monitors"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    status, _, page = call(api["url"] + "/api/v1/monitors?limit=5", headers={"X-API-Key": api["key"]})
    assert status == 200 and page["data"]
    assert jsonschema_rs.is_valid({**listed, "components": doc["components"]}, page)
    request = urllib.request.Request(api["url"] + "/api/docs")
    with urllib.request.urlopen(request, timeout=10) as response:  # redirected to the UI
        assert response.status == 200 and response.url.endswith("/api/schema/docs")
        page = response.read()
        assert b"swagger" in page.lower() and b"MonitorCreate" in page  # the UI shows the request bodies


def test_schemathesis_finds_no_server_error_and_no_schema_break(api: dict[str, Any]) -> None:
    """Bounded property-based run of every documented operation against the live server."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    args = [exe, "run", f"{api['url']}/api/v1/openapi.json", "--url", api["url"],
            "-H", f"Authorization: Bearer {api['key']}", "--max-examples", "25", "--seed", "20261126",
            "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,"
                        "content_type_conformance", "--no-color"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_granian_serves_the_same_api(tmp_path: Path) -> None:
    """The other embedded ASGI server (bench.api compares the two) keeps the whole contract."""
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1, "--http-server", "granian")
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        status, headers, body = call(server.url + "/api/v1/account/usage", headers={"X-API-Key": key})
        assert status == 200 and headers["x-api-remaining"] == str(body["data"]["remaining"])
        assert_error(*call(server.url + "/api/v1/monitors"), 401)
        assert_error(*call(server.url + "/api/v1/nothing-here", headers={"X-API-Key": key}), 404)
        status, _, created = send(server.url + "/api/v1/monitors", "POST",
                                  {"name": "g", "type": "tcp", "host": "127.0.0.1", "port": 9}, key)
        assert status == 201
        assert_error(*post_too_large(server.url, key), 413)  # (granian closed mid-upload: a broken pipe)
        status, _, page = call(server.url + "/api/v1/monitors", headers={"X-API-Key": key})
        assert [m["id"] for m in page["data"]] == [created["data"]["id"]]
        # The quota is as exact under granian's threads as under uvicorn.
        from concurrent.futures import ThreadPoolExecutor

        cli(data_dir, "accounts", "create", "racer", "--monthly-limit", "100")
        racer = cli(data_dir, "keys", "create", "--account", "racer").stdout.splitlines()[-1]
        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(lambda _: call(server.url + "/api/v1/monitors?limit=1",
                                                    headers={"X-API-Key": racer})[0], range(200)))
        assert statuses.count(200) == 100 and statuses.count(429) == 100
    finally:
        assert server.stop() == 0


def test_push_monitors_hear_heartbeats(api: dict[str, Any]) -> None:
    """A push monitor is up while its job calls /api/push/{token}, down when it stops or
    reports down; tokens are unique, and bad calls get the error shape."""
    base = api["url"]
    key = cli(api["data_dir"], "keys", "create").stdout.splitlines()[-1]  # schemathesis may revoke the fixture's
    status, _, created = send(f"{base}/api/v1/monitors", "POST", {"name": "nightly", "type": "push", "interval": 1},
                              key)
    assert status == 201 and created["data"]["type"] == "push" and created["data"]["grace"] == 0
    token, mid = created["data"]["pushToken"], created["data"]["id"]
    assert len(token) >= 16
    status, headers, error = send(f"{base}/api/v1/monitors", "POST",
                                  {"name": "copy", "type": "push", "pushToken": token}, key)
    assert_error(status, headers, error, 409)
    assert error["data"]["errors"][0]["field"] == "pushToken"

    def monitor() -> dict[str, Any]:
        return call(f"{base}/api/v1/monitors/{mid}", headers={"X-API-Key": key})[2]["data"]

    def beat(query: str = "", method: str = "GET") -> tuple[int, Any]:
        request = urllib.request.Request(f"{base}/api/push/{token}{query}", method=method, data=b"" if
                                         method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    deadline = time.monotonic() + 15
    while monitor()["status"] != "up" and time.monotonic() < deadline:
        assert beat("?ping=12.5") == (200, {"ok": True})
        time.sleep(0.3)
    assert monitor()["status"] == "up" and monitor()["lastLatencyMs"] == 12.5
    wait_for(lambda: monitor()["status"] == "down", 15, "down after the heartbeats stop")
    history = call(f"{base}/api/v1/monitors/{mid}/history?limit=1", headers={"X-API-Key": key})[2]["data"]
    assert history[0]["error"].startswith("no push for")
    deadline = time.monotonic() + 15
    while monitor()["status"] != "up" and time.monotonic() < deadline:
        assert beat(method="POST")[0] == 200
        time.sleep(0.3)
    assert monitor()["status"] == "up"
    wait_for(lambda: beat("?status=down&msg=backup%20failed")[0] == 200 and monitor()["status"] == "down", 15,
             "down when the job says so")
    # (the job's own failure is stored; with a 1 s interval and no grace, silence checks may
    # already follow it, so it need not be the newest row)
    history = call(f"{base}/api/v1/monitors/{mid}/history?limit=20", headers={"X-API-Key": key})[2]["data"]
    assert "backup failed" in [row["error"] for row in history]
    for query, field in (("?status=sideways", "status"), ("?ping=-3", "ping"), ("?ping=abc", "ping")):
        status, body = beat(query)
        assert status == 400 and body["data"]["errors"][0]["field"] == field
    request = urllib.request.Request(f"{base}/api/push/not-a-token-at-all")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 404 and json.loads(info.value.read())["statusCode"] == 404
    call(f"{base}/api/v1/monitors/{mid}", method="DELETE", headers={"X-API-Key": key})


def test_a_failure_push_is_a_result_at_once(api: dict[str, Any]) -> None:
    """A daily job (interval one day) that reports a failure is down now, not tomorrow, even
    with retries (the job said so), with the job's message as the cause; its next good run
    is up at once too."""
    base = api["url"]
    key = cli(api["data_dir"], "keys", "create").stdout.splitlines()[-1]
    status, _, created = send(f"{base}/api/v1/monitors", "POST",
                              {"name": "daily", "type": "push", "interval": 86400, "retries": 2}, key)
    assert status == 201
    token, mid = created["data"]["pushToken"], created["data"]["id"]

    def monitor() -> dict[str, Any]:
        return call(f"{base}/api/v1/monitors/{mid}", headers={"X-API-Key": key})[2]["data"]

    with urllib.request.urlopen(f"{base}/api/push/{token}?status=down&msg=disk%20full", timeout=10) as answer:
        assert answer.status == 200
    wait_for(lambda: monitor()["status"] == "down", 10, "down at once")
    history = call(f"{base}/api/v1/monitors/{mid}/history?limit=5", headers={"X-API-Key": key})[2]["data"]
    assert [(h["ok"], h["error"]) for h in history] == [(False, "disk full")]
    incidents = call(f"{base}/api/v1/monitors/{mid}/incidents", headers={"X-API-Key": key})[2]["data"]
    assert [(i["status"], i["cause"]) for i in incidents] == [("open", "disk full")]
    # The job runs again and succeeds: up now, not at tomorrow's check.
    with urllib.request.urlopen(f"{base}/api/push/{token}", timeout=10) as answer:
        assert answer.status == 200
    wait_for(lambda: monitor()["status"] == "up", 10, "up at once")
    history = call(f"{base}/api/v1/monitors/{mid}/history?limit=5", headers={"X-API-Key": key})[2]["data"]
    assert [h["ok"] for h in history] == [True, False]
    call(f"{base}/api/v1/monitors/{mid}", method="DELETE", headers={"X-API-Key": key})


def test_cron_heartbeats_are_validated_and_start_pings_time_the_run(api: dict[str, Any]) -> None:
    """A push monitor with a cron schedule and zone is taken as given (a bad one names its
    field); ``/start`` then the ping reports the run time as the check's latency."""
    base = api["url"]
    key = cli(api["data_dir"], "keys", "create").stdout.splitlines()[-1]
    status, _, created = send(f"{base}/api/v1/monitors", "POST", {
        "name": "nightly backup", "type": "push", "schedule": "0 3 * * *", "timezone": "Europe/Berlin",
        "grace": 600}, key)
    assert status == 201, created
    assert (created["data"]["schedule"], created["data"]["timezone"], created["data"]["grace"]) == (
        "0 3 * * *", "Europe/Berlin", 600)
    call(f"{base}/api/v1/monitors/{created['data']['id']}", method="DELETE", headers={"X-API-Key": key})
    for body, field in (({"schedule": "0 3 * *"}, "schedule"), ({"schedule": "61 3 * * *"}, "schedule"),
                        ({"schedule": "0 3 * * *", "timezone": "Mars/Olympus"}, "timezone"),
                        ({"timezone": "Europe/Nowhere"}, "timezone")):
        status, headers, error = send(f"{base}/api/v1/monitors", "POST", {"name": "x", "type": "push", **body}, key)
        assert_error(status, headers, error, 400)
        assert [e["field"] for e in error["data"]["errors"]] == [field], error

    status, _, created = send(f"{base}/api/v1/monitors", "POST", {"name": "job", "type": "push", "interval": 2}, key)
    token, mid = created["data"]["pushToken"], created["data"]["id"]

    def history() -> list[dict[str, Any]]:
        return call(f"{base}/api/v1/monitors/{mid}/history?limit=20", headers={"X-API-Key": key})[2]["data"]

    def ping(path: str = "") -> None:
        with urllib.request.urlopen(f"{base}/api/push/{token}{path}", timeout=10) as answer:
            assert answer.status == 200 and json.loads(answer.read()) == {"ok": True}

    ping("/start")
    time.sleep(0.4)
    ping()
    timed = wait_for(lambda: [h for h in history() if h["ok"]], 10, "the run's check")
    assert 400 <= timed[0]["latencyMs"] < 5000  # the run time, start to ping
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{base}/api/push/not-a-token-at-all/start", timeout=10)
    assert info.value.code == 404
    call(f"{base}/api/v1/monitors/{mid}", method="DELETE", headers={"X-API-Key": key})


def test_deny_private_targets_option(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1, "--deny-private-targets")
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        base = f"{server.url}/api/v1/monitors"
        for body, field in (({"name": "x", "type": "http", "url": "http://127.0.0.1:8080/"}, "url"),
                            ({"name": "x", "type": "tcp", "host": "localhost", "port": 22}, "host"),
                            ({"name": "x", "type": "ping", "host": "192.168.0.1"}, "host")):
            status, headers, error = send(base, "POST", body, key)
            assert_error(status, headers, error, 400)
            problem = error["data"]["errors"][0]
            assert problem["field"] == field and "not allowed" in problem["message"]
        status, _, created = send(base, "POST", {"name": "public", "type": "http", "url": "https://example.com/"}, key)
        assert status == 201
        status, headers, error = send(f"{base}/{created['data']['id']}", "PATCH", {"url": "http://10.0.0.1/"}, key)
        assert_error(status, headers, error, 400)
        # The CLI goes through the same door (it used to skip this rule on a running server).
        refused = cli(data_dir, "monitors", "add", "local", "--url", "http://127.0.0.1:8080/", check=False)
        assert refused.returncode == 2 and "url: 127.0.0.1: private and loopback targets" in refused.stderr
        assert call(base, headers={"X-API-Key": key})[2]["pagination"]["total"] == 1
    finally:
        assert server.stop() == 0


def test_bulk_create_is_all_or_nothing_and_names_the_item(api: dict[str, Any]) -> None:
    base = api["url"] + "/api/v1/monitors"
    key = cli(api["data_dir"], "keys", "create").stdout.splitlines()[-1]  # schemathesis may revoke the fixture's
    before = call(f"{base}?limit=1", headers={"X-API-Key": key})[2]["pagination"]["total"]
    items = [{"name": f"bulk-{i}", "type": "http", "url": f"http://127.0.0.1:9/bulk/{i}", "tags": ["bulk"]}
             for i in range(3)]
    status, _, created = send(f"{base}/bulk", "POST", {"monitors": items}, key)
    assert status == 201, created
    ids = [m["id"] for m in created["data"]]
    assert [m["name"] for m in created["data"]] == ["bulk-0", "bulk-1", "bulk-2"] and ids == sorted(ids)
    assert all(m["status"] == "pending" and m["createdAt"].endswith("Z") for m in created["data"])
    assert call(f"{base}/{ids[1]}", headers={"X-API-Key": key})[2]["data"]["url"] == "http://127.0.0.1:9/bulk/1"
    token = "a-shared-push-token-0123"
    for body, fields in [
        ({"monitors": [*items, {"name": "bad", "type": "http", "url": "ftp://x"}]}, ["monitors[3].url"]),
        ({"monitors": [{"name": "p1", "type": "push", "pushToken": token},
                       {"name": "p2", "type": "push", "pushToken": token}]}, ["monitors[1].pushToken"]),
        ({"monitors": [{"name": "c", "type": "tcp", "host": "127.0.0.1", "port": 9, "integrations": [999999]}]},
         ["monitors[0].integrations"]),
        ({"monitors": []}, ["monitors"]),
        ({"monitors": items * 334}, ["monitors"]),  # 1,002
        ({"monitors": items, "extra": 1}, ["body"]),
    ]:
        status, headers, error = send(f"{base}/bulk", "POST", body, key)
        assert_error(status, headers, error, 400)
        assert [e["field"] for e in error["data"]["errors"]] == fields, error
    assert call(f"{base}?limit=1", headers={"X-API-Key": key})[2]["pagination"]["total"] == before + 3


def test_concurrent_creates_all_land_and_a_push_token_goes_to_one(api: dict[str, Any]) -> None:
    """Creates that arrive together are committed together; each still gets its own answer,
    and two racing for one push token cannot both have it."""
    from concurrent.futures import ThreadPoolExecutor

    base = api["url"] + "/api/v1/monitors"
    key = cli(api["data_dir"], "keys", "create").stdout.splitlines()[-1]
    before = call(f"{base}?limit=1", headers={"X-API-Key": key})[2]["pagination"]["total"]

    def create(i: int) -> tuple[int, Any]:
        status, _, body = send(base, "POST", {"name": f"racer-{i}", "type": "tcp", "host": "127.0.0.1", "port": 9},
                               key)
        return status, body

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(create, range(80)))
    assert [status for status, _ in results] == [201] * 80
    ids = [body["data"]["id"] for _, body in results]
    assert len(set(ids)) == 80
    assert all(body["data"]["name"] == f"racer-{i}" for i, (_, body) in enumerate(results))
    assert call(f"{base}?limit=1", headers={"X-API-Key": key})[2]["pagination"]["total"] == before + 80

    def claim(i: int) -> int:
        return send(base, "POST", {"name": f"beat-{i}", "type": "push", "pushToken": "one-token-for-two-0042"},
                    key)[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(claim, range(8)))
    assert statuses == [201] + [409] * 7


def test_concurrent_changes_all_land_each_with_its_own_answer(api: dict[str, Any]) -> None:
    """PATCHes, pauses and resumes that arrive together are committed together (fewer
    commits than changes, in the server's stats); each caller gets its own monitor back."""
    from concurrent.futures import ThreadPoolExecutor

    base = api["url"] + "/api/v1/monitors"
    key = cli(api["data_dir"], "keys", "create").stdout.splitlines()[-1]
    created = send(base + "/bulk", "POST", {"monitors": [
        {"name": f"change-{i}", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": 3600} for i in range(40)]},
                   key)[2]["data"]
    ids = [m["id"] for m in created]
    before = json.loads(cli(api["data_dir"], "status", "--json").stdout)["changes"]

    def change(i: int) -> tuple[int, Any]:
        mid = ids[i]
        if i % 4 == 0:
            status, _, body = send(f"{base}/{mid}/pause", "POST", None, key)
        else:
            status, _, body = send(f"{base}/{mid}", "PATCH", {"name": f"changed-{i}", "retries": i % 3}, key)
        return status, body

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(change, range(40)))
    assert [status for status, _ in results] == [200] * 40
    for i, (_, body) in enumerate(results):
        monitor = body["data"]
        assert monitor["id"] == ids[i]
        if i % 4 == 0:
            assert monitor["paused"] is True and monitor["status"] == "paused" and monitor["name"] == f"change-{i}"
        else:
            assert monitor["name"] == f"changed-{i}" and monitor["retries"] == i % 3 and monitor["paused"] is False
    after = json.loads(cli(api["data_dir"], "status", "--json").stdout)["changes"]
    assert after["monitors"] - before["monitors"] == 40
    assert after["commits"] - before["commits"] < 40
    stored = {m["id"]: m for m in json.loads(cli(api["data_dir"], "monitors", "list", "--json").stdout)}
    assert all(stored[ids[i]]["name"] == (f"change-{i}" if i % 4 == 0 else f"changed-{i}") for i in range(40))
    assert all(stored[ids[i]]["paused"] is (i % 4 == 0) for i in range(40))



def test_retention_is_read_by_every_key_and_changed_only_by_the_servers_own_admins(api: dict[str, Any]) -> None:
    base = api["url"] + "/api/v1/settings/retention"
    owner = cli(api["data_dir"], "keys", "create", "--name", "retention").stdout.splitlines()[-1]  # (the default
    # account's; the module's first key may be revoked by the property-based run)
    status, _, body = call(base, headers={"X-API-Key": api["other"]})
    assert status == 200 and body["data"] == {"raw": "90d", "hourly": "2y", "daily": "forever"}
    for bad, fields in [({"raw": "12h"}, ["raw"]), ({"raw": "3y"}, ["hourly"]), ({"weekly": "1d"}, ["weekly"]),
                        ({"raw": 30}, ["raw"]), ({}, ["body"]), ([], ["body"]), ({"daily": "soon"}, ["daily"]),
                        ({"raw": "30d,daily=1d"}, ["raw"])]:
        status, headers, response = send(base, "PATCH", bad, owner)
        assert_error(status, headers, response, 400)
        assert sorted(e["field"] for e in response["data"]["errors"]) == fields, (bad, response)
    assert_error(*send(base, "PATCH", {"raw": "30d"}, api["other"]), 403)  # another account's admin
    status, _, body = send(base, "PATCH", {"raw": "30d", "daily": "10y"}, owner)
    assert status == 200 and body["data"] == {"raw": "30d", "hourly": "2y", "daily": "10y"}
    shown = json.loads(cli(api["data_dir"], "retention", "--json").stdout)  # the CLI, through the server
    assert shown == body["data"]
    cli(api["data_dir"], "retention", "--set", "raw=90d,daily=forever")
    assert call(base, headers={"X-API-Key": owner})[2]["data"] == {"raw": "90d", "hourly": "2y",
                                                                       "daily": "forever"}
    refused = cli(api["data_dir"], "retention", "--set", "raw=1h", check=False)
    assert refused.returncode != 0 and "raw: must be at least 1d" in refused.stderr
