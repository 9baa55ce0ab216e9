"""Notification channels end to end: a real ``xuptime serve``, real monitors going down and up,
and local fakes of the providers' webhook endpoints that record what they receive and answer
the way the providers document (Slack's text errors, Discord's ``retry_after``, 429s)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_api import assert_error, call, send
from tests.integration.test_serve import Serve, cli, pid_alive, wait_for
from tests.servers import QuietHandler, ThreadedHttp

pytestmark = pytest.mark.slow  # real xuptime serve processes


class Sink(ThreadedHttp):
    """A threaded HTTP server that records every POST per path and answers from a script of
    ``(status, headers, body)`` per path, then 200 (``ok`` for Slack-like paths)."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.script: dict[str, list[tuple[int, dict[str, str], str]]] = {}
        self.delay: dict[str, float] = {}  # seconds to take before answering, per path
        self.lock = threading.Lock()
        sink = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path.split("?", 1)[0]
                time.sleep(sink.delay.get(path, 0.0))
                with sink.lock:
                    sink.received.setdefault(path, []).append(
                        {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                         "query": self.path.partition("?")[2], "at": time.monotonic()})
                    script = sink.script.get(path)
                    status, headers, text = script.pop(0) if script else (200, {}, "ok")
                self.reply(status, text.encode(), headers)

        super().__init__(Handler)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.received.get(path, [])]

    def requests(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received.get(path, []))



class Target(ThreadedHttp):
    """An HTTP target whose health the test switches."""

    def __init__(self) -> None:
        self.healthy = True
        target = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.reply(200 if target.healthy else 503)

        super().__init__(Handler)
        self.url += "/"


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("alerts") / "data"
    cli(data_dir, "accounts", "create", "other")
    server = Serve(data_dir, 1, "--alert-retry-base", "0.5")
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        other = cli(data_dir, "keys", "create", "--account", "other").stdout.splitlines()[-1]
        yield {"url": server.url, "key": key, "other": other, "data_dir": data_dir, "server": server}
    finally:
        assert server.stop() == 0


def api(alerts: dict[str, Any], method: str, path: str, body: Any = None, key: str | None = None
        ) -> tuple[int, dict[str, str], Any]:
    url = alerts["url"] + "/api/v1" + path
    if body is None and method == "GET":
        return call(url, headers={"X-API-Key": key or alerts["key"]})
    return send(url, method, body if body is not None else {}, key or alerts["key"])


def channel(alerts: dict[str, Any], **body: Any) -> dict[str, Any]:
    status, _, created = api(alerts, "POST", "/integrations", body)
    assert status == 201, created
    return created["data"]


def test_channels_validate_mask_secrets_and_stay_in_their_account(alerts: dict[str, Any], sink: Sink) -> None:
    secret_url = f"{sink.url}/slack/T000/B000/XXXXSECRET"
    created = channel(alerts, name="ops", type="slack", config={"webhookUrl": secret_url, "private": True})
    assert created["config"] == {"webhookUrl": "http://127.0.0.1/****", "private": True}  # masked at once
    assert "SECRET" not in json.dumps(api(alerts, "GET", "/integrations")[2])
    assert "SECRET" not in json.dumps(api(alerts, "GET", f"/integrations/{created['id']}")[2])
    # A PATCH that sends the masked value back keeps the secret; the test message proves it.
    status, _, patched = api(alerts, "PATCH", f"/integrations/{created['id']}",
                             {"name": "ops-2", "config": created["config"]})
    assert status == 200 and patched["data"]["name"] == "ops-2"
    status, _, tested = api(alerts, "POST", f"/integrations/{created['id']}/test")
    assert status == 200 and tested["data"]["delivered"] is True and tested["data"]["statusCode"] == 200
    message = sink.bodies("/slack/T000/B000/XXXXSECRET")[-1]
    assert "Test message" in message["text"] and message["blocks"][0]["type"] == "header"
    assert "example.com" not in json.dumps(message)  # private: no target, no reason, no link
    # Bad definitions: every field named, nothing created.
    before = api(alerts, "GET", "/integrations")[2]["pagination"]["total"]
    for body, fields in [
        ({"name": "x", "type": "pager"}, {"type"}),
        ({"name": "x", "type": "slack", "config": {"webhookUrl": "ftp://x"}}, {"config.webhookUrl"}),
        ({"name": "x", "type": "slack", "config": {}}, {"config.webhookUrl"}),
        ({"name": "x", "type": "discord", "config": {"webhookUrl": sink.url, "colour": 1}}, {"config.colour"}),
        ({"name": "", "type": "webhook", "config": {"url": sink.url, "headers": {"Bad Name": "v"}}},
         {"name", "config.headers.Bad Name"}),
        ({"name": "x", "type": "webhook", "config": {"url": sink.url}, "template": "{{ monitor.nme }}"}, {"template"}),
        ({"name": "x", "type": "webhook", "config": {"url": sink.url}, "template": "{% if %}"}, {"template"}),
        ({"name": "x", "type": "webhook", "config": {"url": sink.url}, "reminderInterval": 5}, {"reminderInterval"}),
    ]:
        status, headers, error = api(alerts, "POST", "/integrations", body)
        assert_error(status, headers, error, 400)
        assert {e["field"] for e in error["data"]["errors"]} == fields, error
    assert api(alerts, "GET", "/integrations")[2]["pagination"]["total"] == before
    # Another account sees nothing, and cannot attach it to its monitors.
    assert_error(*api(alerts, "GET", f"/integrations/{created['id']}", key=alerts["other"]), 404)
    assert_error(*api(alerts, "POST", f"/integrations/{created['id']}/test", key=alerts["other"]), 404)
    status, headers, error = api(alerts, "POST", "/monitors", {"name": "m", "type": "tcp", "host": "127.0.0.1",
                                                               "port": 9, "integrations": [created["id"]]},
                                 key=alerts["other"])
    assert_error(status, headers, error, 400)
    assert error["data"]["errors"][0]["field"] == "integrations"
    assert api(alerts, "DELETE", f"/integrations/{created['id']}")[0] == 200
    assert_error(*api(alerts, "GET", f"/integrations/{created['id']}"), 404)


def test_preview_renders_without_sending(alerts: dict[str, Any], sink: Sink) -> None:
    created = channel(alerts, name="preview", type="discord", config={"webhookUrl": f"{sink.url}/discord/preview"},
                      template="{{ monitor.name }} went {{ status }} ({{ event }})")
    status, _, preview = api(alerts, "POST", f"/integrations/{created['id']}/preview", {"event": "up"})
    assert status == 200
    assert preview["data"]["text"] == "Example website went up (up)"
    assert preview["data"]["payload"]["embeds"][0]["color"] == 0x2ECC71
    status, _, preview = api(alerts, "POST", f"/integrations/{created['id']}/preview",
                             {"template": "{{ reason | upper }}"})
    assert preview["data"]["text"] == "STATUS 503, EXPECTED 200-299"
    status, headers, error = api(alerts, "POST", f"/integrations/{created['id']}/preview",
                                 {"event": "sideways", "template": "{{ nope }}"})
    assert_error(status, headers, error, 400)
    assert {e["field"] for e in error["data"]["errors"]} == {"event", "template"}
    assert sink.requests("/discord/preview") == []  # nothing was sent


def test_an_outage_reaches_each_channel_once_per_transition(alerts: dict[str, Any], sink: Sink) -> None:
    target = Target()
    slack = channel(alerts, name="slack", type="slack", config={"webhookUrl": f"{sink.url}/slack/outage"})
    discord = channel(alerts, name="discord", type="discord", config={"webhookUrl": f"{sink.url}/discord/outage"},
                      isDefault=True)
    hook = channel(alerts, name="hook", type="webhook",
                   config={"url": f"{sink.url}/hook/outage", "secret": "s3cret", "headers": {"X-Team": "ops"}})
    status, _, monitor = api(alerts, "POST", "/monitors", {
        "name": "shop", "type": "http", "url": target.url, "interval": 1, "timeout": 0.5,
        "integrations": [slack["id"], hook["id"]]})
    assert status == 201 and monitor["data"]["integrations"] == [slack["id"], hook["id"]]
    mid = monitor["data"]["id"]
    wait_for(lambda: api(alerts, "GET", f"/monitors/{mid}")[2]["data"]["status"] == "up", 15, "the monitor up")
    time.sleep(1.5)
    assert sink.requests("/hook/outage") == []  # a first result that is up says nothing

    target.healthy = False
    wait_for(lambda: all(sink.requests(p) for p in ("/slack/outage", "/discord/outage", "/hook/outage")), 15,
             "the down messages")
    target.healthy = True
    wait_for(lambda: all(len(sink.requests(p)) >= 2 for p in ("/slack/outage", "/discord/outage", "/hook/outage")),
             15, "the recovery messages")
    time.sleep(2.5)  # anything extra would have arrived by now
    for path in ("/slack/outage", "/discord/outage", "/hook/outage"):
        assert len(sink.requests(path)) == 2, path

    down, up = sink.bodies("/slack/outage")
    assert "shop" in down["blocks"][0]["text"]["text"] and "is down" in down["text"]
    assert any("status 503" in f["text"] for f in down["blocks"][2]["fields"])
    assert "back up" in up["text"] and any(f["text"].startswith("*Downtime*") for f in up["blocks"][2]["fields"])
    down, up = sink.bodies("/discord/outage")
    assert down["embeds"][0]["color"] == 0xE74C3C and up["embeds"][0]["color"] == 0x2ECC71
    assert down["allowed_mentions"] == {"parse": []}
    assert all(r["query"] == "wait=true" for r in sink.requests("/discord/outage"))
    requests = sink.requests("/hook/outage")
    for request in requests:
        expected = "sha256=" + hmac.new(b"s3cret", request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["x-xuptime-signature"] == expected
        assert request["headers"]["x-team"] == "ops"
    down, up = (json.loads(r["body"]) for r in requests)
    assert (down["event"], up["event"]) == ("down", "up")
    assert down["monitor"] == {"id": mid, "name": "shop", "type": "http", "target": target.url}
    assert down["incident"]["id"] == up["incident"]["id"] and up["incident"]["durationSeconds"] > 0
    assert len({r["headers"]["x-xuptime-delivery"] for r in requests}) == 2
    status, _, deliveries = api(alerts, "GET", f"/integrations/{hook['id']}/deliveries")
    assert [(d["event"], d["status"], d["attempts"], d["lastStatus"]) for d in deliveries["data"]] == [
        ("up", "sent", 1, 200), ("down", "sent", 1, 200)]
    api(alerts, "DELETE", f"/monitors/{mid}")
    api(alerts, "DELETE", f"/integrations/{discord['id']}")  # a default channel would hear every later test


def test_rate_limits_are_honoured_and_failures_are_visible(alerts: dict[str, Any], sink: Sink) -> None:
    target = Target()
    target.healthy = False
    sink.script["/discord/limited"] = [(429, {"Retry-After": "2"}, json.dumps({"retry_after": 1.5, "global": False}))]
    sink.script["/slack/revoked"] = [(403, {}, "invalid_token")]
    sink.script["/slack/busy"] = [(429, {"Retry-After": "1"}, "rate_limited")]
    sink.script["/hook/flaky"] = [(503, {}, "try later"), (500, {}, "still no")]
    limited = channel(alerts, name="limited", type="discord", config={"webhookUrl": f"{sink.url}/discord/limited"})
    revoked = channel(alerts, name="revoked", type="slack", config={"webhookUrl": f"{sink.url}/slack/revoked"})
    flaky = channel(alerts, name="flaky", type="webhook", config={"url": f"{sink.url}/hook/flaky"})
    busy = channel(alerts, name="busy", type="slack", config={"webhookUrl": f"{sink.url}/slack/busy"})
    status, _, monitor = api(alerts, "POST", "/monitors", {
        "name": "broken", "type": "http", "url": target.url, "interval": 1, "timeout": 0.5,
        "integrations": [limited["id"], revoked["id"], flaky["id"], busy["id"]]})
    assert status == 201

    def state(channel_id: int) -> list[dict[str, Any]]:
        return api(alerts, "GET", f"/integrations/{channel_id}/deliveries")[2]["data"]

    wait_for(lambda: [d["status"] for d in state(limited["id"])] == ["sent"], 20, "the rate-limited message")
    first, second = sink.requests("/discord/limited")
    assert second["at"] - first["at"] >= 1.4  # waited as Discord asked
    assert state(limited["id"])[0]["attempts"] == 2
    wait_for(lambda: [d["status"] for d in state(busy["id"])] == ["sent"], 20, "the Slack message after a 429")
    first, second = sink.requests("/slack/busy")
    assert second["at"] - first["at"] >= 0.95 and state(busy["id"])[0]["attempts"] == 2
    wait_for(lambda: [d["status"] for d in state(flaky["id"])] == ["sent"], 20, "the retried webhook")
    assert state(flaky["id"])[0]["attempts"] == 3
    assert len({r["headers"]["x-xuptime-delivery"] for r in sink.requests("/hook/flaky")}) == 1  # same id each try
    wait_for(lambda: [d["status"] for d in state(revoked["id"])] == ["failed"], 20, "the refused message")
    failed = api(alerts, "GET", f"/integrations/{revoked['id']}/deliveries?status=failed")[2]["data"]
    assert (failed[0]["attempts"], failed[0]["lastStatus"], failed[0]["lastResponse"]) == (1, 403, "invalid_token")
    assert len(sink.requests("/slack/revoked")) == 1  # a final answer is not retried
    assert_error(*api(alerts, "GET", f"/integrations/{revoked['id']}/deliveries?status=lost"), 400)
    assert f"{sink.url}/slack/revoked" not in alerts["server"].output()  # secrets never logged
    api(alerts, "DELETE", f"/monitors/{monitor['data']['id']}")


def test_kill9_in_a_delivery_storm_loses_nothing(tmp_path: Any, sink: Sink) -> None:
    """150 monitors go down at once; the main process is killed with SIGKILL while their
    messages go out; after a restart every message arrives, and deduplicated by delivery id
    (what the webhook's X-Xuptime-Delivery is for) each arrives exactly once."""
    count = 150
    data_dir = tmp_path / "data"
    target = Target()
    target.healthy = False
    sink.delay["/storm"] = 0.03
    server = Serve(data_dir, 1, "--alert-retry-base", "0.5")
    try:
        alerts = {"url": server.url, "key": cli(data_dir, "keys", "create").stdout.splitlines()[-1]}
        channel(alerts, name="storm", type="webhook", config={"url": f"{sink.url}/storm"}, isDefault=True)
        for n in range(count):
            status, _, _ = api(alerts, "POST", "/monitors", {"name": f"m{n}", "type": "http", "url": target.url,
                                                             "interval": 5, "timeout": 1})
            assert status == 201
        wait_for(lambda: len(sink.requests("/storm")) >= 20, 30, "the storm to start")
        assert len(sink.requests("/storm")) < count, "the storm ended before the kill; make the sink slower"
        pid = server.proc.pid
        server.proc.kill()
        server.proc.wait(10)
        wait_for(lambda: not pid_alive(pid), 10, "the main process to die")
    finally:
        server.log.close()
    restarted = Serve(data_dir, 1, "--alert-retry-base", "0.5")
    try:
        def unique() -> dict[str, int]:
            return {r["headers"]["x-xuptime-delivery"]: json.loads(r["body"])["monitor"]["id"]
                    for r in sink.requests("/storm")}

        wait_for(lambda: len(unique()) >= count, 60, "every message after the restart")
        time.sleep(1.0)
        deliveries = unique()
        assert len(deliveries) == count and sorted(deliveries.values()) == list(range(1, count + 1))
        rows = json.loads(cli(data_dir, "sql", "SELECT status, count(*) FROM outbox GROUP BY 1", "--json").stdout)
        assert rows["rows"] == [["sent", count]], rows
    finally:
        assert restarted.stop() == 0
        sink.delay.pop("/storm", None)


def test_the_dispatcher_never_sends_a_row_twice_while_reads_lag(sink: Sink) -> None:
    """Reads of due rows are slow snapshots (as on a busy reader thread) and polls are
    frequent: a row whose outcome is committed during a read must not be claimed again."""
    import asyncio
    import datetime as dt

    from core.alerting import parse_integration
    from core.alerting.outbox import Dispatcher

    channel_ = parse_integration({"name": "lag", "type": "webhook", "config": {"url": f"{sink.url}/lag"}})
    channel_.id = 1
    rows = {i: "pending" for i in range(1, 201)}
    context = json.dumps({"monitor": {"id": 1, "name": "m", "type": "http", "target": ""}, "incident_id": 1})

    async def fetch_due(now: dt.datetime, limit: int) -> list[tuple]:
        snapshot = [(i, 1, 1, 1, "down", context, 0) for i, state in rows.items() if state == "pending"][:limit]
        await asyncio.sleep(0.03)  # the read finishes after outcomes may have been committed
        return snapshot

    async def record(batch: list[dict[str, Any]]) -> None:
        for outcome in batch:
            rows[outcome["id"]] = outcome["state"]

    async def run() -> None:
        dispatcher = Dispatcher(fetch_due=fetch_due, record=record, integration={1: channel_}.get, poll_s=0.005)
        await dispatcher.start()
        deadline = time.monotonic() + 20
        while any(state == "pending" for state in rows.values()) and time.monotonic() < deadline:
            dispatcher.wake()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        await dispatcher.stop()

    asyncio.run(run())
    ids = [r["headers"]["x-xuptime-delivery"] for r in sink.requests("/lag")]
    assert sorted(map(int, ids)) == list(range(1, 201))  # every row once, none twice


def test_another_account_cannot_see_touch_or_trigger_anything_by_id(alerts: dict[str, Any], sink: Sink) -> None:
    """Every route that takes an id answers another account's id with the same 404 as a
    missing one, and changes nothing; default channels of two accounts each hear only their
    own account's outages."""
    mine = channel(alerts, name="mine", type="webhook", config={"url": f"{sink.url}/tenant/mine"}, isDefault=True)
    theirs = channel(alerts, name="theirs", type="webhook", config={"url": f"{sink.url}/tenant/theirs"},
                     isDefault=True)
    status, _, body = api(alerts, "POST", "/integrations",
                          {"name": "other-default", "type": "webhook", "isDefault": True,
                           "config": {"url": f"{sink.url}/tenant/other"}}, key=alerts["other"])
    assert status == 201
    other_channel = body["data"]
    status, _, body = api(alerts, "POST", "/monitors", {"name": "tenant-a", "type": "tcp", "host": "127.0.0.1",
                                                         "port": 9, "interval": 1, "retries": 0})
    assert status == 201
    monitor = body["data"]
    status, _, body = api(alerts, "POST", "/api-keys", {"name": "tenant-a-key"})
    assert status == 201
    key_id = body["data"]["id"]

    def snapshot() -> Any:
        m = api(alerts, "GET", f"/monitors/{monitor['id']}")[2]["data"]
        volatile = ("status", "statusSince", "lastCheckAt", "lastLatencyMs", "updatedAt")  # (the engine moves these)
        return ({k: v for k, v in m.items() if k not in volatile},
                api(alerts, "GET", f"/integrations/{mine['id']}")[2]["data"],
                [k for k in api(alerts, "GET", "/api-keys")[2]["data"] if k["id"] == key_id])

    before = snapshot()
    mid, cid = monitor["id"], mine["id"]
    attempts = [
        ("GET", f"/monitors/{mid}", None), ("PATCH", f"/monitors/{mid}", {"name": "stolen", "interval": 5}),
        ("POST", f"/monitors/{mid}/pause", None), ("POST", f"/monitors/{mid}/resume", None),
        ("GET", f"/monitors/{mid}/history", None), ("GET", f"/monitors/{mid}/history?interval=1h", None),
        ("GET", f"/monitors/{mid}/uptime", None), ("GET", f"/monitors/{mid}/incidents", None),
        ("GET", f"/integrations/{cid}", None), ("PATCH", f"/integrations/{cid}", {"name": "stolen"}),
        ("POST", f"/integrations/{cid}/test", None), ("POST", f"/integrations/{cid}/preview", {}),
        ("GET", f"/integrations/{cid}/deliveries", None), ("DELETE", f"/integrations/{cid}", None),
        ("DELETE", f"/api-keys/{key_id}", None), ("DELETE", f"/monitors/{mid}", None),
    ]
    for method, path, body in attempts:
        status, headers, error = api(alerts, method, path, body, key=alerts["other"])
        assert_error(status, headers, error, 404)
        missing = path.replace(f"/{mid}", "/999999").replace(f"/{cid}", "/999999").replace(f"/{key_id}", "/999999")
        assert api(alerts, method, missing, body, key=alerts["other"])[2] == error, path  # the same answer
    assert snapshot() == before
    assert sink.requests("/tenant/mine") == []  # the foreign "test" sent nothing

    # The monitor goes down (nothing listens on port 9): both of this account's default
    # channels hear it, the other account's does not.
    wait_for(lambda: sink.bodies("/tenant/mine") and sink.bodies("/tenant/theirs"), 20, "the outage")
    assert [b["event"] for b in sink.bodies("/tenant/mine")] == ["down"]
    assert all(b["monitor"]["id"] == mid for b in sink.bodies("/tenant/theirs"))
    assert sink.requests("/tenant/other") == []
    for created, key in ((mine, None), (theirs, None), (other_channel, alerts["other"])):
        assert api(alerts, "DELETE", f"/integrations/{created['id']}", key=key)[0] == 200
    assert api(alerts, "DELETE", f"/monitors/{mid}")[0] == 200
