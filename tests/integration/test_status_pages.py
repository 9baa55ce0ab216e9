"""Status pages through a real server: the API (CRUD, posted incidents and updates, the
error shape), and what the public routes show, to anyone, without a key: names and states
only, escaped, cacheable (ETag/304), and nothing at all of a page that is not public."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.test_api import assert_error, call, send
from tests.integration.test_serve import Serve, cli, closed_port, wait_for

pytestmark = pytest.mark.slow

NAME = '<script>alert("x")</script> & <b>db</b>'


def raw(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("pages") / "data"
    server = Serve(data_dir, 1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        base = server.url + "/api/v1"
        secret_host = "db-internal.example.test"
        port = closed_port()
        ids = []
        for body in ({"name": "Website", "type": "tcp", "host": "127.0.0.1", "port": port, "interval": 1},
                     {"name": NAME, "type": "tcp", "host": secret_host, "port": 5432, "interval": 3600},
                     {"name": "hidden", "type": "http", "url": "http://127.0.0.1:9/secret-path?token=t0k3n"}):
            status, _, created = send(f"{base}/monitors", "POST", body, key)
            assert status == 201, created
            ids.append(created["data"]["id"])
        yield {"server": server, "key": key, "base": base, "ids": ids, "host": secret_host, "port": port,
               "data_dir": data_dir}
    finally:
        server.stop()


def test_crud_and_errors(site: dict[str, Any]) -> None:
    base, key, ids = site["base"], site["key"], site["ids"]
    page = {"slug": "acme", "title": "Acme", "sections": [{"name": "Core", "monitors": ids[:2]}]}
    status, _, created = send(f"{base}/status-pages", "POST", page, key)
    assert status == 201 and created["data"]["slug"] == "acme" and created["data"]["public"] is True
    page_id = created["data"]["id"]
    status, headers, body = send(f"{base}/status-pages", "POST", page, key)
    assert_error(status, headers, body, 409)
    assert body["data"]["errors"][0]["field"] == "slug"
    status, headers, body = send(f"{base}/status-pages", "POST",
                                 {"slug": "-Bad", "title": "", "sections": [{"name": "x", "monitors": [999]}],
                                  "colour": 1}, key)
    assert_error(status, headers, body, 400)
    assert {e["field"] for e in body["data"]["errors"]} == {"slug", "title", "sections[0].monitors", "colour"}
    status, _, listed = call(f"{base}/status-pages", headers={"X-API-Key": key})
    assert status == 200 and [p["id"] for p in listed["data"]] == [page_id] and listed["pagination"]["total"] == 1
    status, _, patched = send(f"{base}/status-pages/{page_id}", "PATCH", {"description": "Our services"}, key)
    assert status == 200 and patched["data"]["description"] == "Our services" and patched["data"]["slug"] == "acme"
    status, headers, body = call(f"{base}/status-pages/424242", headers={"X-API-Key": key})
    assert_error(status, headers, body, 404)
    # another account sees nothing of it
    cli(site["data_dir"], "accounts", "create", "other")
    other = cli(site["data_dir"], "keys", "create", "--account", "other").stdout.splitlines()[-1]
    status, headers, body = call(f"{base}/status-pages/{page_id}", headers={"X-API-Key": other})
    assert_error(status, headers, body, 404)
    status, headers, body = send(f"{base}/status-pages", "POST",
                                 {"slug": "theirs", "title": "T", "sections": [{"name": "x", "monitors": ids}]}, other)
    assert_error(status, headers, body, 400)  # (not their monitors)


def test_posted_incidents_and_the_public_page(site: dict[str, Any]) -> None:
    base, key, ids, server = site["base"], site["key"], site["ids"], site["server"]
    status, _, created = send(f"{base}/status-pages", "POST",
                              {"slug": "public-one", "title": "Public <one>",
                               "sections": [{"name": "Core", "monitors": ids[:2]}]}, key)
    page_id = created["data"]["id"]
    status, _, incident = send(f"{base}/status-pages/{page_id}/incidents", "POST",
                               {"title": "Slow <checkout>", "message": "Looking into it"}, key)
    assert status == 201 and incident["data"]["status"] == "investigating"
    incident_id = incident["data"]["id"]
    status, headers, body = send(f"{base}/status-pages/{page_id}/incidents/{incident_id}/updates", "POST",
                                 {"status": "fixed", "message": ""}, key)
    assert_error(status, headers, body, 400)
    assert {e["field"] for e in body["data"]["errors"]} == {"status", "message"}
    status, _, updated = send(f"{base}/status-pages/{page_id}/incidents/{incident_id}/updates", "POST",
                              {"status": "identified", "message": "A bad deploy"}, key)
    assert status == 201 and [u["status"] for u in updated["data"]["updates"]] == ["identified", "investigating"]
    # the website monitor checks a closed port every second: it goes down
    wait_for(lambda: call(f"{base}/monitors/{ids[0]}", headers={"X-API-Key": key})[2]["data"]["status"] == "down",
             20, "the monitor to be down")

    status, headers, html = raw(server.url + "/status/public-one")
    assert status == 200 and headers["content-type"].startswith("text/html")
    text = html.decode()
    assert "<script>alert" not in text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;db" in text
    assert "Slow &lt;checkout&gt;" in text and "A bad deploy" in text
    assert re.search(r'class="banner banner-(partial_outage|major_outage)"', text)
    assert text.count('role="listitem"') == 2 * 90
    status, _, data = raw(server.url + "/status/public-one.json")
    view = json.loads(data)
    assert view["status"] in ("partial_outage", "major_outage")
    names = [m["name"] for s in view["sections"] for m in s["monitors"]]
    assert names == ["Website", NAME]
    website = view["sections"][0]["monitors"][0]
    assert website["status"] == "down" and len(website["days"]) == 90 and website["days"][-1]["uptime"] == 0.0
    assert [i["title"] for i in view["incidents"]["active"]] == ["Slow <checkout>"]
    status, headers, feed = raw(server.url + "/status/public-one/feed.atom")
    assert status == 200 and headers["content-type"].startswith("application/atom+xml")
    assert b"Slow &lt;checkout&gt; (identified)" in feed

    # resolved: the incident moves to the past, the page is no longer degraded by it
    send(f"{base}/status-pages/{page_id}/incidents/{incident_id}/updates", "POST",
         {"status": "resolved", "message": "Rolled back"}, key)
    view = json.loads(raw(server.url + "/status/public-one.json")[2])
    assert view["incidents"]["active"] == [] and view["incidents"]["past"][0]["resolvedAt"]


def test_cacheable_and_private_things_stay_private(site: dict[str, Any]) -> None:
    base, key, ids, server = site["base"], site["key"], site["ids"], site["server"]
    send(f"{base}/status-pages", "POST", {"slug": "cached", "title": "C",
                                          "sections": [{"name": "All", "monitors": ids[:2]}]}, key)
    status, _, private = send(f"{base}/status-pages", "POST", {"slug": "internal", "title": "Internal",
                                                               "public": False,
                                                               "sections": [{"name": "x", "monitors": [ids[2]]}]}, key)
    assert status == 201
    status, headers, _first = raw(server.url + "/status/cached")
    assert status == 200 and headers["etag"] and "max-age=" in headers["cache-control"]
    again, _headers2, body = raw(server.url + "/status/cached", {"If-None-Match": headers["etag"]})
    assert again == 304 and body == b""
    status, zipped_headers, zipped = raw(server.url + "/status/cached", {"Accept-Encoding": "gzip"})
    assert status == 200 and zipped_headers["content-encoding"] == "gzip"
    assert b"</html>" in gzip.decompress(zipped) and len(zipped) < len(_first) / 3
    # not public, or unknown: 404 on every public route, and no badge for its monitor
    for path in ("/status/internal", "/status/internal.json", "/status/internal/feed.atom", "/status/nope",
                 f"/badge/{ids[2]}/status.svg", f"/badge/{ids[2]}/shields.json", "/badge/999999/status.svg"):
        assert raw(server.url + path)[0] == 404, path
    # badges of a public page's monitor
    status, headers, svg = raw(f"{server.url}/badge/{ids[0]}/status.svg")
    assert status == 200 and headers["content-type"].startswith("image/svg+xml") and b"Website" in svg
    assert raw(f"{server.url}/badge/{ids[0]}/uptime.svg?window=7d")[0] == 200
    assert raw(f"{server.url}/badge/{ids[0]}/uptime.svg?window=1y")[0] == 404
    assert raw(f"{server.url}/badge/{ids[0]}/latency.svg")[0] == 200
    shields = json.loads(raw(f"{server.url}/badge/{ids[0]}/shields.json")[2])
    assert shields["schemaVersion"] == 1 and shields["label"] == "Website" and shields["message"] in (
        "up", "down", "pending")
    escaped = raw(f"{server.url}/badge/{ids[1]}/status.svg")[2]
    assert b"<script>" not in escaped and b"&lt;script&gt;" in escaped
    # no public route says where a monitor points or why it failed
    everything = b"".join(raw(server.url + path)[2] for path in (
        "/status/cached", "/status/cached.json", "/status/cached/feed.atom", "/status/public-one",
        f"/badge/{ids[0]}/status.svg", f"/badge/{ids[1]}/shields.json", f"/badge/{ids[1]}/latency.svg"))
    everything = everything.replace(server.url.encode(), b"")  # (the feed links to the page itself)
    for secret in (site["host"].encode(), b"127.0.0.1", str(site["port"]).encode(), b"5432", b"secret-path",
                   b"t0k3n", b"refused", b"connection"):
        assert secret not in everything, secret
    del private


def test_maintenance_windows_over_the_api_and_on_the_public_page(site: dict[str, Any]) -> None:
    base, key, ids, server = site["base"], site["key"], site["ids"], site["server"]
    status, headers, body = send(f"{base}/maintenance", "POST", {"name": "x", "monitors": [ids[0]],
                                                                "schedule": "bad", "duration": 1}, key)
    assert_error(status, headers, body, 400)
    assert {e["field"] for e in body["data"]["errors"]} == {"schedule", "duration", "timezone"}
    # (an hour 12 hours from now: upcoming, never active, whatever the hour the test runs at)
    hour = (dt.datetime.now(ZoneInfo("Europe/Berlin")).hour + 12) % 24
    status, _, nightly = send(f"{base}/maintenance", "POST", {"name": "Nightly <db> work", "monitors": [ids[1]],
                                                             "schedule": f"0 {hour} * * *", "duration": 3600,
                                                             "timezone": "Europe/Berlin"}, key)
    assert status == 201 and nightly["data"]["timezone"] == "Europe/Berlin"
    now = dt.datetime.now(dt.UTC)
    status, _, current = send(f"{base}/maintenance", "POST", {
        "name": "Now", "monitors": [ids[0]], "startsAt": (now - dt.timedelta(minutes=5)).isoformat(),
        "endsAt": (now + dt.timedelta(hours=1)).isoformat()}, key)
    assert status == 201
    status, _, listed = call(f"{base}/maintenance", headers={"X-API-Key": key})
    assert [w["name"] for w in listed["data"]] == ["Nightly <db> work", "Now"]
    status, _, patched = send(f"{base}/maintenance/{current['data']['id']}", "PATCH", {"name": "Right now"}, key)
    assert status == 200 and patched["data"]["startsAt"] == current["data"]["startsAt"]
    send(f"{base}/status-pages", "POST", {"slug": "with-maintenance", "title": "M",
                                          "sections": [{"name": "All", "monitors": ids[:2]}]}, key)
    view = json.loads(raw(server.url + "/status/with-maintenance.json")[2])
    assert [w["name"] for w in view["maintenance"]["active"]] == ["Right now"]
    assert view["maintenance"]["upcoming"][0]["name"] == "Nightly <db> work"
    assert set(view["maintenance"]["active"][0]) == {"name", "startsAt", "endsAt"}
    html = raw(server.url + "/status/with-maintenance")[2].decode()
    assert "Nightly &lt;db&gt; work" in html and 'data-maintenance="active"' in html
    status, _, _ = call(f"{base}/maintenance/{nightly['data']['id']}", "DELETE", headers={"X-API-Key": key})
    assert status == 200
    status, headers, body = call(f"{base}/maintenance/{nightly['data']['id']}", headers={"X-API-Key": key})
    assert_error(status, headers, body, 404)


def test_a_window_holds_alerts_and_a_monitor_still_down_alerts_when_it_ends(tmp_path: Path) -> None:
    from tests.integration.test_alerts import Sink

    sink = Sink()
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        base = server.url + "/api/v1"
        status, _, _ = send(f"{base}/integrations", "POST", {"name": "hook", "type": "webhook", "isDefault": True,
                                                             "config": {"url": sink.url + "/hook"}}, key)
        assert status == 201
        _, _, created = send(f"{base}/monitors", "POST", {"name": "db", "type": "tcp", "host": "127.0.0.1",
                                                          "port": closed_port(), "interval": 1, "tags": ["db"]}, key)
        monitor = f"{base}/monitors/{created['data']['id']}"

        def status_now() -> str:
            return call(monitor, headers={"X-API-Key": key})[2]["data"]["status"]

        wait_for(lambda: len(sink.bodies("/hook")) == 1, 20, "the first down alert")
        now = dt.datetime.now(dt.UTC)
        send(f"{base}/maintenance", "POST", {"name": "Upgrade", "tags": ["db"], "startsAt": now.isoformat(),
                                             "endsAt": (now + dt.timedelta(seconds=6)).isoformat()}, key)
        wait_for(lambda: status_now() == "maintenance", 10, "the monitor to be in maintenance")
        time.sleep(2)  # checks go on (and fail) inside the window: nothing is sent
        assert status_now() == "maintenance" and len(sink.bodies("/hook")) == 1
        wait_for(lambda: status_now() == "down", 15, "the window to end")
        wait_for(lambda: len(sink.bodies("/hook")) == 2, 15, "a fresh down alert")
        first, fresh = sink.bodies("/hook")
        assert first["event"] == fresh["event"] == "down" and first["incident"] != fresh["incident"]
    finally:
        server.stop()
        sink.close()


def test_a_mistyped_address_is_a_page_for_browsers_and_json_for_the_api(site: dict[str, Any]) -> None:
    server = site["server"]
    status, headers, body = raw(server.url + "/no-such-page", {"Accept": "text/html,application/xhtml+xml"})
    assert status == 404 and headers["content-type"].startswith("text/html") and b"There is no such page" in body
    status, headers, body = raw(server.url + "/no-such-page")
    assert status == 404 and json.loads(body)["statusCode"] == 404
    status, headers, body = raw(server.url + "/api/v1/no-such", {"Accept": "text/html"})
    assert status == 404 and headers["content-type"].startswith("application/json")


def test_a_flapping_monitor_sends_one_message_and_one_when_it_settles(tmp_path: Path) -> None:
    import threading

    from tests.integration.test_alerts import Sink
    from tests.servers import QuietHandler, ThreadedHttp

    state = {"flap": True, "n": 0}
    lock = threading.Lock()

    class Flapper(QuietHandler):
        def do_GET(self) -> None:
            with lock:
                state["n"] += 1
                good = not state["flap"] or state["n"] % 2 == 0
            self.reply(200 if good else 500, b"ok" if good else b"no")

    target, sink = ThreadedHttp(Flapper), Sink()
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1, "--flap-changes", "3", "--flap-window", "4")
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        base = server.url + "/api/v1"
        send(f"{base}/integrations", "POST", {"name": "hook", "type": "webhook", "isDefault": True,
                                              "config": {"url": sink.url + "/hook"}}, key)
        send(f"{base}/monitors", "POST", {"name": "flaky", "type": "http", "url": target.url + "/", "interval": 1},
             key)

        def events() -> list[str]:
            return [b["event"] for b in sink.bodies("/hook")]

        wait_for(lambda: "flapping" in events(), 30, "a flapping message")
        time.sleep(4)  # it keeps flapping: nothing more is sent
        flapping_at = events().index("flapping")
        assert events()[flapping_at:] == ["flapping"]
        with lock:
            state["flap"] = False  # steady from now on
        wait_for(lambda: "settled" in events(), 30, "a settled message")
        assert events()[flapping_at:] == ["flapping", "settled"]
        settled = sink.bodies("/hook")[-1]
        assert settled["status"] == "up" and "settled after" in settled["message"] and settled["changes"] >= 4
        # before the spell: the first down (from pending: not a change) and the three changes it allows
        assert len([e for e in events()[:flapping_at] if e in ("down", "up")]) <= 4
    finally:
        server.stop()
        sink.close()
        target.close()
