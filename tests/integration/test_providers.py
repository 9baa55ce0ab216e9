"""Jira, X, email and Apprise against local fakes that implement each provider's documented
requests and failure modes; first each provider on its own, then an outage through a real
``xuptime serve`` reaching all of them once per transition."""

from __future__ import annotations

import asyncio
import base64
import email
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.alerting import PROVIDERS, event_context, message_text, parse_integration, typed_config
from core.alerting.base import SendContext, SendResult
from core.alerting.providers.twitter import weighted_length
from core.alerting.templates import sample_context
from core.models import Integration
from tests.integration.test_alerts import Sink, Target, api, channel
from tests.integration.test_serve import Serve, cli, closed_port, wait_for
from tests.servers import QuietHandler, ThreadedHttp

pytestmark = pytest.mark.slow  # real xuptime serve processes


class FakeJira(ThreadedHttp):
    """Jira Cloud REST v3, the parts xuptime uses, with basic auth and field validation."""

    FIELDS = [{"id": "customfield_10010", "name": "Affected service"}, {"id": "environment", "name": "Environment"}]
    TRANSITIONS = [{"id": "11", "name": "Start work", "to": {"name": "In Progress"}},
                   {"id": "31", "name": "Resolve", "to": {"name": "Done"}}]

    def __init__(self, email_: str = "ops@example.com", token: str = "jira-token") -> None:
        self.auth = "Basic " + base64.b64encode(f"{email_}:{token}".encode()).decode()
        self.issues: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        jira = self

        class Handler(QuietHandler):
            def _reply(self, status: int, body: Any = None) -> None:
                self.reply(status, b"" if body is None else json.dumps(body).encode(),
                           {"Content-Type": "application/json"})

            def _handle(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                parts = urlsplit(self.path)
                with jira.lock:
                    jira.calls.append((method, parts.path))
                    if self.headers.get("Authorization") != jira.auth:
                        return self._reply(401, {"errorMessages": ["You are not authenticated."]})
                    return self._reply(*jira.route(method, parts.path, parse_qs(parts.query),
                                                   json.loads(body) if body else None))

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        super().__init__(Handler)

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if method == "GET" and path.startswith("/rest/api/3/project/"):
            key = path.rsplit("/", 1)[1]
            return (200, {"key": key}) if key == "OPS" else (404, {"errorMessages": [f"No project {key}."]})
        if method == "GET" and path == "/rest/api/3/field":
            return 200, self.FIELDS
        if method == "GET" and path == "/rest/api/3/search/jql":
            label = query["jql"][0].split('"')[1]
            found = [{"key": k} for k, issue in self.issues.items() if label in issue["fields"]["labels"]]
            return 200, {"issues": found[:1]}
        if method == "POST" and path == "/rest/api/3/issue":
            fields = body["fields"]
            errors = {}
            if fields.get("issuetype", {}).get("name") not in ("Task", "Incident"):
                errors["issuetype"] = "Specify a valid issue type"
            for name in fields:
                if name.startswith("customfield_") and name not in {f["id"] for f in self.FIELDS}:
                    errors[name] = f"Field '{name}' cannot be set."
            if not fields.get("summary"):
                errors["summary"] = "You must specify a summary of the issue."
            if errors:
                return 400, {"errorMessages": [], "errors": errors}
            key = f"OPS-{len(self.issues) + 1}"
            self.issues[key] = {"fields": fields, "comments": [], "status": "Open"}
            return 201, {"id": str(len(self.issues)), "key": key}
        if path.startswith("/rest/api/3/issue/"):
            key, action = path.split("/")[5], path.split("/")[6]
            issue = self.issues.get(key)
            if issue is None:
                return 404, {"errorMessages": ["Issue does not exist"]}
            if action == "comment" and method == "POST":
                issue["comments"].append(body["body"])
                return 201, {"id": str(len(issue["comments"]))}
            if action == "transitions" and method == "GET":
                return 200, {"transitions": self.TRANSITIONS}
            if action == "transitions" and method == "POST":
                match = next(t for t in self.TRANSITIONS if t["id"] == body["transition"]["id"])
                issue["status"] = match["to"]["name"]
                return 204, None
        return 404, {"errorMessages": ["no such resource"]}


class FakeX(ThreadedHttp):
    """``POST /2/tweets`` with bearer auth, the 280 limit, duplicate refusal and a scripted 429."""

    def __init__(self, token: str = "x-token") -> None:
        self.posts: list[dict[str, Any]] = []
        self.rate_limited = 0  # how many next requests get a 429
        x = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self.headers.get("Authorization") != f"Bearer {token}":
                    status, reply, headers = 401, {"title": "Unauthorized", "status": 401}, {}
                elif x.rate_limited:
                    x.rate_limited -= 1
                    status, reply = 429, {"title": "Too Many Requests"}
                    headers = {"x-rate-limit-reset": str(int(time.time()) + 1)}
                elif weighted_length(body["text"]) > 280:
                    status, reply, headers = 400, {"detail": "Your Tweet text is too long."}, {}
                elif any(p["text"] == body["text"] for p in x.posts):
                    status, headers = 403, {}
                    reply = {"detail": "You are not allowed to create a Tweet with duplicate content."}
                else:
                    x.posts.append({"text": body["text"], "at": time.time()})
                    status, reply, headers = 201, {"data": {"id": str(len(x.posts)), "text": body["text"]}}, {}
                self.reply(status, json.dumps(reply).encode(), headers)

        super().__init__(Handler)


class Mailbox:
    """An aiosmtpd server that takes one login (plain or login, no TLS needed on loopback)."""

    def __init__(self, user: str = "alerts", password: str = "mail-pass", tls: Any = None) -> None:
        self.messages: list[email.message.Message] = []
        box = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                box.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
                user.encode(), password.encode())
            return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 535 itself

        self.port = closed_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator,
                                     auth_require_tls=False, tls_context=tls, require_starttls=tls is not None)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    jira, x, mailbox, sink = FakeJira(), FakeX(), Mailbox(), Sink()
    yield {"jira": jira, "x": x, "mail": mailbox, "sink": sink}
    jira.close()
    x.close()
    mailbox.close()
    sink.close()


def jira_config(fakes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"siteUrl": fakes["jira"].url, "email": "ops@example.com", "apiToken": "jira-token", "projectKey": "OPS",
            "issueType": "Incident", "resolveTransition": "Done", "priority": "High", "labels": ["uptime"],
            "fields": {"Affected service": "shop", "environment": "production"}, **extra}


def mail_config(fakes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": fakes["mail"].port, "security": "none", "username": "alerts",
            "password": "mail-pass", "from": "xuptime@example.com", "to": ["oncall@example.com"], **extra}


def send(kind: str, config: dict[str, Any], event: str, incident: int = 7, delivery: str = "1") -> SendResult:
    """One provider send, as the dispatcher makes it."""
    integration = parse_integration({"name": kind, "type": kind, "config": config})
    snapshot = {**sample_context(event), "incident_id": incident, "duration_seconds": 250.0}
    context = event_context(snapshot, event, private=False, base_url="http://127.0.0.1:8080")
    context["monitor"] = {"id": 3, "name": "shop", "type": "http", "target": "https://shop.example/"}

    async def run() -> SendResult:
        async with aiohttp.ClientSession() as session:
            ctx = SendContext(config=typed_config(integration), text=message_text(integration, context), event=context,
                              delivery_id=delivery, session=session)
            return await PROVIDERS[kind].send(ctx)

    return asyncio.run(run())


def test_jira_one_issue_per_incident_comment_and_resolve(fakes: dict[str, Any]) -> None:
    jira = fakes["jira"]
    assert send("jira", jira_config(fakes), "test").ok  # a test reads the project, creates nothing
    assert jira.issues == {}
    first = send("jira", jira_config(fakes), "down", incident=41)
    again = send("jira", jira_config(fakes), "down", incident=41)  # a retry after a crash
    assert first.ok and again.ok and first.reference == again.reference == "OPS-1" and len(jira.issues) == 1
    fields = jira.issues["OPS-1"]["fields"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Incident"}
    assert fields["priority"] == {"name": "High"} and fields["summary"] == "shop is down: status 503, expected 200-299"
    assert set(fields["labels"]) == {"uptime", "xuptime", "xuptime-incident-41"}
    assert fields["customfield_10010"] == "shop" and fields["environment"] == "production"  # by name and by id
    assert fields["description"]["type"] == "doc" and "Target: https://shop.example/" in json.dumps(
        fields["description"])
    result = send("jira", jira_config(fakes), "up", incident=41)
    assert result.ok and "moved it to Resolve" in result.response
    assert jira.issues["OPS-1"]["status"] == "Done" and "Recovered after 4m 10s" in json.dumps(
        jira.issues["OPS-1"]["comments"])
    # Failure modes: bad token (final 401), a field error (final 400, named), a missing transition.
    refused = send("jira", jira_config(fakes, apiToken="wrong"), "down", incident=42)
    assert (refused.ok, refused.retry, refused.status) == (False, False, 401)
    bad_type = send("jira", jira_config(fakes, issueType="Bug"), "down", incident=43)
    assert (bad_type.ok, bad_type.retry, bad_type.status) == (False, False, 400)
    assert "issuetype: Specify a valid issue type" in bad_type.response
    assert not send("jira", jira_config(fakes, projectKey="NOPE"), "test").ok
    send("jira", jira_config(fakes), "down", incident=44)
    stuck = send("jira", jira_config(fakes, resolveTransition="Closed"), "up", incident=44)
    assert not stuck.ok and "available: Start work, Resolve" in stuck.response


def test_x_fits_280_honours_rate_limits_and_treats_duplicates_as_sent(fakes: dict[str, Any]) -> None:
    x = fakes["x"]
    config = {"handle": "@shopstatus", "bearerToken": "x-token", "apiBaseUrl": x.url}
    assert send("twitter", config, "down").ok
    posted = x.posts[-1]["text"]
    assert posted.startswith("shop is down since")
    long = parse_integration({"name": "t", "type": "twitter", "config": config,
                              "template": "{{ monitor.name }} " + "outage " * 60 + "{{ link }}"})
    assert long.template is not None
    text = asyncio.run(_x_send(long))
    assert weighted_length(text) <= 280 and text.endswith("…") and all(w in ("shop", "outage", "…")
                                                                        for w in text.replace("…", " …").split())
    x.rate_limited = 1
    limited = send("twitter", config, "up", incident=9)
    assert limited.status == 429 and limited.retry and limited.retry_after is not None and limited.retry_after <= 2
    assert send("twitter", config, "up", incident=9).ok
    duplicate = send("twitter", config, "up", incident=9)  # resent after a crash: X refuses, we count it as sent
    assert duplicate.ok and "duplicate" in duplicate.response
    bad = send("twitter", {**config, "bearerToken": "wrong"}, "up", incident=10)
    assert (bad.ok, bad.retry, bad.status) == (False, False, 401)


async def _x_send(integration: Integration) -> str:
    context = event_context(sample_context("down"), "down", private=False, base_url="http://127.0.0.1:8080")
    context["monitor"]["name"] = "shop"
    async with aiohttp.ClientSession() as session:
        ctx = SendContext(config=typed_config(integration), text=message_text(integration, context), event=context,
                          delivery_id="1", session=session)
        result = await PROVIDERS["twitter"].send(ctx)
        assert result.ok, result
        return PROVIDERS["twitter"].payload(ctx)["text"]


def test_email_over_smtp_and_a_refused_login(fakes: dict[str, Any]) -> None:
    box = fakes["mail"]
    result = send("email", mail_config(fakes), "down", delivery="77")
    assert result.ok, result
    message = box.messages[-1]
    assert message["Subject"] == "[xuptime] shop is down" and message["To"] == "oncall@example.com"
    assert message["Message-ID"].startswith("<xuptime-77@")
    assert "Reason: status 503" in message.get_payload()
    assert send("email", mail_config(fakes, to="second@example.com", security="NONE"), "up").ok  # one address
    assert box.messages[-1]["To"] == "second@example.com"
    refused = send("email", mail_config(fakes, password="wrong"), "down")
    assert (refused.ok, refused.retry) == (False, False) and "login refused" in refused.response
    assert "wrong" not in refused.response


def test_email_with_starttls(fakes: dict[str, Any]) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    box = Mailbox(tls=context)  # refuses to go on without STARTTLS
    try:
        config = mail_config({"mail": box}, security="starttls")
        refused = send("email", config, "down")  # a certificate nobody vouches for
        assert not refused.ok and refused.retry
        assert send("email", {**config, "verifyTls": False}, "down").ok
        assert box.messages[-1]["Subject"] == "[xuptime] shop is down"
    finally:
        box.close()


def test_apprise_posts_through_its_json_service(fakes: dict[str, Any]) -> None:
    sink = fakes["sink"]
    url = sink.url.replace("http://", "json://") + "/apprise/direct"
    assert send("apprise", {"url": url}, "down").ok
    body = sink.bodies("/apprise/direct")[-1]
    assert body["title"] == "shop is down" and "status 503" in body["message"] and body["type"] == "failure"


def test_bad_configs_name_nested_fields() -> None:
    cases = [
        ("jira", {"siteUrl": "nope", "email": "nobody", "apiToken": "t", "projectKey": "ops", "summaryTemplate": "{{"},
         {"config.siteUrl", "config.email", "config.projectKey", "config.summaryTemplate"}),
        ("twitter", {"handle": "not a handle!", "bearerToken": "t"}, {"config.handle"}),
        ("email", {"host": "h", "from": "nobody", "to": [], "security": "smoke-signals"},
         {"config.from", "config.to", "config.security"}) ,
        ("apprise", {"url": "notaservice://x"}, {"config.url"}),
    ]
    for kind, config, fields in cases:
        with pytest.raises(ValueError) as info:
            parse_integration({"name": "x", "type": kind, "config": config})
        assert {e.field for e in info.value.errors} == fields, (kind, info.value)  # type: ignore[attr-defined]


def test_an_outage_reaches_jira_x_email_and_apprise_once_each(tmp_path: Any, fakes: dict[str, Any]) -> None:
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1, "--alert-retry-base", "0.5")
    try:
        alerts = {"url": server.url, "key": cli(data_dir, "keys", "create").stdout.splitlines()[-1]}
        target = Target()
        ids = [channel(alerts, name="jira", type="jira", config=jira_config(fakes))["id"],
               channel(alerts, name="x", type="twitter",
                       config={"handle": "shop", "bearerToken": "x-token", "apiBaseUrl": fakes["x"].url})["id"],
               channel(alerts, name="mail", type="email", config=mail_config(fakes))["id"],
               channel(alerts, name="apprise", type="apprise",
                       config={"url": fakes["sink"].url.replace("http://", "json://") + "/apprise/outage"})["id"]]
        status, _, monitor = api(alerts, "POST", "/monitors", {"name": "storefront", "type": "http", "url": target.url,
                                                               "interval": 1, "timeout": 0.5, "integrations": ids})
        assert status == 201
        mid = monitor["data"]["id"]
        wait_for(lambda: api(alerts, "GET", f"/monitors/{mid}")[2]["data"]["status"] == "up", 15, "up")
        issues_before, posts_before, mails_before = (len(fakes["jira"].issues), len(fakes["x"].posts),
                                                     len(fakes["mail"].messages))
        target.healthy = False
        wait_for(lambda: api(alerts, "GET", f"/monitors/{mid}")[2]["data"]["status"] == "down", 15, "down")
        time.sleep(1.5)
        target.healthy = True

        def delivered() -> bool:
            return all([d["status"] for d in api(alerts, "GET", f"/integrations/{i}/deliveries")[2]["data"]]
                       == ["sent", "sent"] for i in ids)

        wait_for(delivered, 20, "every message delivered")
        assert len(fakes["jira"].issues) == issues_before + 1
        issue = fakes["jira"].issues[f"OPS-{len(fakes['jira'].issues)}"]
        assert issue["status"] == "Done" and issue["fields"]["summary"].startswith("storefront is down")
        assert len(fakes["x"].posts) == posts_before + 2
        assert len(fakes["mail"].messages) == mails_before + 2
        assert [b["title"] for b in fakes["sink"].bodies("/apprise/outage")] == ["storefront is down",
                                                                                "storefront is back up"]
        assert "jira-token" not in server.output() and "mail-pass" not in server.output()
    finally:
        assert server.stop() == 0
