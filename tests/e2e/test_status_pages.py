"""A public status page in a real browser: readable with JavaScript off, escaped, a day's
figures on hover, and how it looks in light and dark mode and on a phone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_dashboard import _api, _page
from tests.integration.test_serve import Serve, cli, wait_for

pytestmark = pytest.mark.slow

XSS = "<img src=x onerror=alert(1)>"


def test_status_page_light_dark_phone_and_no_script(browser: Any, server: Serve, shots: Path) -> None:
    key = cli(server.data_dir, "keys", "create").stdout.splitlines()[-1]
    ids = []
    for body in ({"name": "Website", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": 1},
                 {"name": "API", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": 3600},
                 {"name": XSS, "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": 3600}):
        ids.append(_api(server, "/api/v1/monitors", key, body)[1]["data"]["id"])
    status, page = _api(server, "/api/v1/status-pages", key, {
        "slug": "acme", "title": "Acme status", "description": "Live status of Acme's public services",
        "sections": [{"name": "Public", "monitors": ids[:2]}, {"name": "Internal", "monitors": ids[2:]}]})
    assert status == 201
    _api(server, f"/api/v1/status-pages/{page['data']['id']}/incidents", key,
         {"title": "Website unreachable", "status": "identified", "message": "The load balancer dropped it."})
    wait_for(lambda: _api(server, f"/api/v1/monitors/{ids[0]}", key)[1]["data"]["status"] == "down", 20,
             "the website to be down")
    for name, options in (("status-page.png", {}), ("status-page-dark.png", {"dark": True}),
                          ("status-page-phone.png", {"width": 390, "height": 844})):
        view = _page(browser, **options)
        try:
            view.goto(server.url + "/status/acme")
            assert view.title() == "Acme status"
            assert view.locator("[data-monitor-id] .pm-name").all_inner_texts() == ["Website", "API", XSS]
            assert view.locator("img[src=x]").count() == 0 and view.dialogs == [] and view.outside == []
            days = view.locator(f"[data-monitor-id='{ids[0]}'] .days i")
            assert days.count() == 90
            days.last.hover()  # today's figures show on hover (and on focus, for a tap)
            assert re.match(r"\d{4}-\d\d-\d\d: ", days.last.get_attribute("aria-label") or "")
            assert view.evaluate("document.documentElement.scrollWidth") <= (options.get("width") or 1280)
            view.screenshot(path=str(shots / name), full_page=True)
        finally:
            view.context.close()
    # without JavaScript everything is there: it is all server-rendered
    context = browser.new_context(java_script_enabled=False)
    try:
        plain = context.new_page()
        plain.goto(server.url + "/status/acme")
        assert plain.locator(".banner").get_attribute("data-status") in ("degraded", "partial_outage",
                                                                          "major_outage")
        assert "The load balancer dropped it." in plain.content()
    finally:
        context.close()


def test_the_editor_previews_saves_and_posts_incidents(browser: Any, server: Serve) -> None:
    from tests.e2e.test_dashboard import _setup

    key = cli(server.data_dir, "keys", "create").stdout.splitlines()[-1]
    ids = [_api(server, "/api/v1/monitors", key, {"name": name, "type": "tcp", "host": "127.0.0.1", "port": 9,
                                                  "interval": 3600})[1]["data"]["id"] for name in ("Web", XSS)]
    view = _page(browser)
    try:
        _setup(view, server)
        view.click("nav >> text=Status pages")
        view.click("text=New status page")
        view.fill("#p-title", "Our status")
        view.fill("#p-slug", "Bad Slug")
        view.fill("#s0-name", "Everything")
        view.select_option("#s0-monitors", [str(i) for i in ids])
        # the preview follows the form, unsaved, and says what is wrong
        view.locator("#preview [data-error-for=slug]").wait_for()
        view.fill("#p-slug", "ours")
        view.locator("#preview .pm-name", has_text="Web").wait_for()
        assert view.locator("#preview .pm-name").all_inner_texts() == ["Web", XSS]
        assert view.locator("img[src=x]").count() == 0
        assert _api(server, "/api/v1/status-pages", key)[1]["data"] == []  # (nothing saved by previewing)
        view.click("button:has-text('Create status page')")
        view.wait_for_url(re.compile(r".*/status-pages/\d+$"))
        view.fill("#i-title", "Slow pages")
        view.fill("#i-message", "We are on it")
        view.click("button:has-text('Post incident')")
        view.locator("#incidents [data-incident-id] h3", has_text="Slow pages").wait_for()  # (the preview shows it too)
        public = view.context.new_page()
        public.goto(server.url + "/status/ours")
        assert "We are on it" in public.content()
        assert view.dialogs == [] and view.outside == []
    finally:
        view.context.close()


def test_maintenance_page_adds_lists_and_refuses_with_field_errors(browser: Any, server: Serve) -> None:
    from tests.e2e.test_dashboard import _setup

    key = cli(server.data_dir, "keys", "create").stdout.splitlines()[-1]
    _api(server, "/api/v1/monitors", key, {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 9,
                                           "interval": 3600, "tags": ["db"]})
    view = _page(browser)
    try:
        _setup(view, server)
        view.click("nav >> text=Maintenance")
        view.fill("#m-name", "Weekly")
        view.check("#m-recurring")
        view.fill("#m-schedule", "not cron")
        view.fill("#m-duration", "60")
        view.fill("#m-timezone", "Europe/Berlin")
        view.fill("#m-tags", "db")
        view.click("button:has-text('Add window')")
        assert view.locator("[data-error-for=schedule]").is_visible()
        assert view.locator("#m-name").input_value() == "Weekly"  # (kept)
        view.fill("#m-schedule", "0 3 * * *")
        view.click("button:has-text('Add window')")
        view.wait_for_url("**/maintenance")
        assert view.locator("table >> text=Weekly").count() >= 1
        assert view.locator("section[aria-labelledby=cal-h] tbody tr").count() >= 13  # (daily, over 14 days)
        windows = _api(server, "/api/v1/maintenance", key)[1]["data"]
        assert [(w["schedule"], w["duration"], w["tags"]) for w in windows] == [("0 3 * * *", 3600, ["db"])]
    finally:
        view.context.close()
