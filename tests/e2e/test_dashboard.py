"""The dashboard as a new user meets it, in a real browser against a real server: first run,
sign-in, a monitor going up and down live, an API key used with the API, roles, escaping,
CSRF, forms that keep what was typed, and the way back after a session ends."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_serve import Serve, cli
from tests.servers import QuietHandler, ThreadedHttp

pytestmark = pytest.mark.slow

ADMIN = ("admin@example.com", "correct-horse-battery")
XSS = "<img src=x onerror=alert(1)>"
WAIT_MS = 30_000


class Ok(QuietHandler):
    def do_GET(self) -> None:
        self.reply(200, b"all good")


def _page(browser: Any, *, width: int = 1280, height: int = 900, dark: bool = False) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height},
                                  color_scheme="dark" if dark else "light")
    page = context.new_page()
    page.dialogs = []  # any alert() at all is a script that should not have run
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.outside = []  # the pages work offline: nothing is fetched from anywhere but the server
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"),
               lambda route: (page.outside.append(route.request.url), route.abort()))
    page.set_default_timeout(WAIT_MS)
    return page


def _setup(page: Any, server: Serve) -> None:
    page.goto(server.url + "/")
    assert page.url.endswith("/setup")
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/monitors")


def _login(page: Any, server: Serve, email: str, password: str, path: str = "/login") -> None:
    page.goto(server.url + path)
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _api(server: Serve, path: str, key: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {key}"},
                                     data=json.dumps(body).encode() if body is not None else None,
                                     method="POST" if body is not None else "GET")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _new_key(page: Any, server: Serve, name: str, scope: str | None = None) -> str:
    page.goto(server.url + "/account/api-keys")
    page.fill("#key-name", name)
    if scope is not None:
        page.select_option("#key-scope", scope)
    page.click("form[action='/account/api-keys'] button[type=submit]")
    secret = page.locator("#new-api-key").inner_text().strip()
    assert secret.startswith("xup_")
    return secret


def test_first_run_monitor_live_up_and_down_then_api_key(browser: Any, server: Serve, shots: Path) -> None:
    target = ThreadedHttp(Ok)
    page = _page(browser)
    try:
        _setup(page, server)
        page.click("text=New monitor")
        page.fill("#f-name", "Local site")
        page.fill("#f-url", target.url + "/")
        page.fill("#f-interval", "1")
        page.click("button:has-text('Create monitor')")
        page.wait_for_url(re.compile(r".*/monitors/\d+$"))
        monitor_id = int(page.url.rsplit("/", 1)[1])
        head = page.locator(f".page-head[data-monitor-id='{monitor_id}']")
        # live: the page is not reloaded (a mark left on its window survives) while it turns up
        page.evaluate("window.__notReloaded = true")
        page.wait_for_selector(f"[data-monitor-id='{monitor_id}'][data-status='up']")
        assert head.locator("[data-role=status]").inner_text().lower() == "up"
        page.wait_for_selector("#chart canvas")
        target.close()
        page.wait_for_selector(f"[data-monitor-id='{monitor_id}'][data-status='down']")
        assert page.evaluate("window.__notReloaded") is True
        page.reload()  # (the page as a visitor finds it now: the outage among the checks)
        page.wait_for_selector("#chart canvas")
        assert page.locator("text=No incidents").count() == 0
        page.screenshot(path=str(shots / "monitor.png"), full_page=True)
        # the list shows it down too, with its heartbeat bar and uptime
        page.goto(server.url + "/monitors")
        row = page.locator(f"tr[data-monitor-id='{monitor_id}']")
        assert row.get_attribute("data-status") == "down"
        assert row.locator(".bars i.bad").count() >= 1
        page.screenshot(path=str(shots / "monitors.png"), full_page=True)

        secret = _new_key(page, server, "e2e")
        page.screenshot(path=str(shots / "api-keys.png"), full_page=True)
        status, body = _api(server, "/api/v1/monitors?limit=25", secret)
        assert status == 200
        assert [m["name"] for m in body["data"]] == ["Local site"]
        # the secret is shown once: the page asked for again does not hold it
        page.goto(server.url + "/account/api-keys")
        assert page.locator("#new-api-key").count() == 0
        assert secret not in page.content()
        assert secret[:12] in page.content()  # (its prefix is listed)
        # a read-only key (for Grafana): it reads, it may not write, and the list says so
        reader = _new_key(page, server, "grafana", scope="read")
        assert page.locator("tr", has_text="grafana").inner_text().count("only read") == 1
        assert _api(server, "/api/v1/monitors?limit=25", reader)[0] == 200
        status, body = _api(server, "/api/v1/monitors", reader, {"name": "x", "type": "tcp", "host": "127.0.0.1",
                                                                 "port": 9})
        assert status == 403 and body["data"]["reason"] == "This API key can only read (GET and HEAD)"
        assert page.dialogs == [] and page.outside == []
    finally:
        page.context.close()
        target.close()


def test_viewer_sees_no_controls_and_is_refused(browser: Any, server: Serve) -> None:
    admin = _page(browser)
    _setup(admin, server)
    key = _new_key(admin, server, "setup")
    status, monitor = _api(server, "/api/v1/monitors", key, {"name": "Watched", "type": "tcp", "host": "127.0.0.1",
                                                             "port": 9, "interval": 60})
    assert status == 201
    monitor_id = monitor["data"]["id"]
    status, channel = _api(server, "/api/v1/integrations", key, {"name": "hook", "type": "webhook",
                                                                  "config": {"url": "http://127.0.0.1:9/"}})
    assert status == 201
    channel_id = channel["data"]["id"]
    admin.goto(server.url + "/account/users")
    admin.fill("#u-email", "viewer@example.com")
    admin.fill("#u-password", "viewer-password")
    admin.select_option("#u-role", "viewer")
    admin.click("form[action='/account/users'] button[type=submit]")
    assert "viewer@example.com" in admin.locator("table").inner_text()
    admin.context.close()

    viewer = _page(browser)
    try:
        _login(viewer, server, "viewer@example.com", "viewer-password")
        viewer.wait_for_url("**/monitors")
        assert viewer.locator("text=New monitor").count() == 0
        assert viewer.locator("nav >> text=API keys").count() == 0
        viewer.goto(f"{server.url}/monitors/{monitor_id}")
        assert viewer.locator(f"[data-monitor-id='{monitor_id}']").first.get_attribute("data-status")
        for label in ("Edit", "Pause", "Delete"):
            assert viewer.locator(f"button:has-text('{label}'), a:has-text('{label}')").count() == 0
        # the server refuses what the page does not offer, with a valid CSRF token
        csrf = viewer.locator("body").get_attribute("data-csrf")
        for path in (f"/monitors/{monitor_id}/pause", f"/monitors/{monitor_id}/delete", "/account/api-keys"):
            response = viewer.request.post(server.url + path, form={"_csrf": csrf, "name": "x"})
            assert response.status == 403, path
        response = viewer.request.post(server.url + "/monitors/new",
                                       form={"_csrf": csrf, "type": "http", "name": "x", "url": "http://x/",
                                             "interval": "60"})
        assert response.status == 403
        assert viewer.request.get(server.url + "/account/users").status == 403
        # a channel's page reads (settings masked), without its admin-only parts
        assert viewer.goto(f"{server.url}/integrations/{channel_id}").status == 200
        assert viewer.locator("button:has-text('Send a test'), button:has-text('Preview')").count() == 0
        assert viewer.request.post(f"{server.url}/integrations/{channel_id}/test", form={"_csrf": csrf}).status == 403
    finally:
        viewer.context.close()
    status, monitors = _api(server, "/api/v1/monitors", key)
    assert [m["name"] for m in monitors["data"]] == ["Watched"] and not monitors["data"][0]["paused"]


def test_names_are_text_everywhere(browser: Any, server: Serve) -> None:
    page = _page(browser)
    try:
        _setup(page, server)
        key = _new_key(page, server, "xss")
        status, created = _api(server, "/api/v1/monitors", key, {"name": XSS, "type": "tcp", "host": "127.0.0.1",
                                                                 "port": 9, "interval": 60, "tags": [XSS[:60]]})
        assert status == 201
        monitor_id = created["data"]["id"]
        status, channel = _api(server, "/api/v1/integrations", key, {
            "name": XSS, "type": "webhook", "config": {"url": "http://127.0.0.1:9/hook"},
            "template": "{{ monitor.name }} " + XSS})
        assert status == 201, channel
        for path in ("/monitors", f"/monitors/{monitor_id}", f"/monitors/{monitor_id}/edit", "/incidents",
                     "/integrations", f"/integrations/{channel['data']['id']}"):
            page.goto(server.url + path)
            assert page.locator("img[src=x]").count() == 0, path
        page.goto(f"{server.url}/monitors")
        assert page.locator(f"tr[data-monitor-id='{monitor_id}'] a.name").inner_text() == XSS
        page.goto(f"{server.url}/integrations/{channel['data']['id']}")
        page.click("button:has-text('Preview')")
        assert XSS in page.locator("#preview-text").inner_text()
        assert page.locator("img[src=x]").count() == 0
        assert page.dialogs == []
    finally:
        page.context.close()


def test_csrf_form_errors_and_expired_session(browser: Any, server: Serve, shots: Path) -> None:
    page = _page(browser)
    try:
        _setup(page, server)
        # a POST without the token (a cross-site form) is refused and changes nothing
        response = page.request.post(server.url + "/monitors/new",
                                     form={"type": "http", "name": "forged", "url": "http://127.0.0.1:9/",
                                           "interval": "60"})
        assert response.status == 403
        response = page.request.post(server.url + "/account/api-keys", form={"name": "forged"},
                                     headers={"X-CSRF-Token": "not-the-token"})
        assert response.status == 403
        # a form with errors comes back with the values kept and each error beside its field
        page.goto(server.url + "/monitors/new")
        page.fill("#f-name", "Typed name")
        page.fill("#f-url", "ftp://example.com/")
        page.fill("#f-interval", "0")
        page.click("button:has-text('Create monitor')")
        assert page.locator("#f-name").input_value() == "Typed name"
        assert page.locator("#f-url").input_value() == "ftp://example.com/"
        assert page.locator("[data-error-for=url]").is_visible()
        assert page.locator("[data-error-for=interval]").is_visible()
        page.screenshot(path=str(shots / "monitor-form-errors.png"), full_page=True)
        page.goto(server.url + "/monitors")
        assert page.locator("tr[data-monitor-id]").count() == 0
        # an ended session leads to sign-in and back to the page asked for
        page.context.clear_cookies()
        page.goto(server.url + "/account/api-keys")
        assert "/login" in page.url
        page.fill("#email", ADMIN[0])
        page.fill("#password", ADMIN[1])
        page.click("button[type=submit]")
        page.wait_for_url("**/account/api-keys")
        # sign-out ends the session on the server: its cookie is worth nothing afterwards
        cookie = next(c for c in page.context.cookies() if c["name"] == "xuptime_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        page.click("button:has-text('Sign out')")
        page.wait_for_url("**/login")
        page.context.add_cookies([cookie])
        page.goto(server.url + "/monitors")
        assert "/login" in page.url
    finally:
        page.context.close()


def test_failed_sign_ins_are_limited(browser: Any, server: Serve) -> None:
    cli(server.data_dir, "users", "create", "owner@example.com", "--role", "admin", "--password", "owner-password")
    page = _page(browser)
    try:
        statuses = []
        for _ in range(6):
            _login(page, server, "owner@example.com", "wrong-password")
            statuses.append(page.locator("[data-error-for=form]").inner_text())
        assert "Too many failed sign-ins" in statuses[-1]
        # (the right password is refused too until the window moves on)
        _login(page, server, "owner@example.com", "owner-password")
        assert "/login" in page.url
        assert "Too many failed sign-ins" in page.locator("[data-error-for=form]").inner_text()
    finally:
        page.context.close()


def test_phone_and_dark_mode(browser: Any, server: Serve, shots: Path) -> None:
    setup = _page(browser)
    _setup(setup, server)
    key = _new_key(setup, server, "demo")
    setup.context.close()
    for i in range(3):
        _api(server, "/api/v1/monitors", key, {"name": f"Service {i}", "type": "tcp", "host": "127.0.0.1",
                                               "port": 9, "interval": 60})
    phone = _page(browser, width=390, height=844, dark=True)
    try:
        _login(phone, server, *ADMIN)
        phone.wait_for_url("**/monitors")
        # nothing wider than the screen, and the dark palette is in use
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 18, 22)"
        phone.screenshot(path=str(shots / "monitors-phone-dark.png"), full_page=True)
        for path in ("/monitors/new", "/account/api-keys", "/integrations", "/incidents", "/account/users"):
            phone.goto(server.url + path)
            assert phone.title().endswith("· xuptime")
            unlabelled = phone.evaluate("""[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)""")
            assert unlabelled == [], (path, unlabelled)
    finally:
        phone.context.close()


def test_api_docs_render_offline(browser: Any, server: Serve) -> None:
    page = _page(browser)
    try:
        page.goto(server.url + "/api/docs")
        page.locator(".opblock-summary-path", has_text="/api/v1/monitors").first.wait_for()
        assert page.outside == []
    finally:
        page.context.close()


def test_an_agent_monitor_from_its_form_to_its_charts(browser: Any, server: Serve, shots: Path) -> None:
    """Create an agent monitor in the form (a threshold among its fields), read the install
    line on its page, run that agent, and see its figures and charts; the edit form keeps
    the threshold."""
    from tests.integration.test_agents import start_agent, stop

    page = _page(browser)
    agent = None
    try:
        _setup(page, server)
        page.goto(server.url + "/monitors/new?type=agent")
        page.fill("#f-name", "db server")
        page.fill("#f-interval", "5")
        page.fill("[name='thresholds.diskPercent']", "99.5")
        page.click("button:has-text('Create monitor')")
        page.wait_for_url(re.compile(r".*/monitors/\d+$"))
        monitor_id = int(page.url.rsplit("/", 1)[1])
        assert "No report yet" in page.locator("#agent-now").inner_text()
        line = page.locator("#agent-install-line").inner_text()
        token = re.search(r"XUPTIME_AGENT_TOKEN=(\S+)", line).group(1)  # type: ignore[union-attr]
        assert f"curl -fsSO {server.url}/agent/xuptime-agent.py" in line and f"--server {server.url}" in line
        assert "RestartPreventExitStatus=2" in page.locator("#agent-unit").inner_text()
        agent = start_agent(server.url, token, "--interval", "1")
        page.wait_for_selector(f"[data-monitor-id='{monitor_id}'][data-status='up']")
        page.reload()
        assert page.locator("#agent-now [data-metric=cpu]").inner_text().endswith("%")
        assert page.locator("#agent-now tr[data-mount]").count() >= 1
        page.click("[data-range='1h']")
        page.wait_for_function("document.querySelectorAll('#agent-charts canvas').length === 4")
        page.screenshot(path=str(shots / "agent.png"), full_page=True)
        page.goto(f"{server.url}/monitors/{monitor_id}/edit")
        assert page.locator("[name='thresholds.diskPercent']").input_value() == "99.5"
        page.fill("[name='thresholds.diskPercent']", "")  # cleared: no disk limit any more
        page.fill("[name='thresholds.cpuPercent']", "90")
        page.click("button:has-text('Save')")
        page.wait_for_url(re.compile(rf".*/monitors/{monitor_id}$"))
        key = _new_key(page, server, "agents")
        assert _api(server, f"/api/v1/monitors/{monitor_id}", key)[1]["data"]["thresholds"] == {"cpuPercent": 90.0}
        assert page.dialogs == [] and page.outside == []
    finally:
        if agent is not None:
            stop(agent)
        page.context.close()
