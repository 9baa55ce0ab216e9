"""Browser tests: Playwright for Python driving Debian's Chromium (``/usr/bin/chromium``,
installed from Debian's archive when missing; never a downloaded browser) against a real
``xuptime serve`` on loopback.

Screenshots go to ``$XUPTIME_SCREENSHOTS`` when set (``make screenshots`` sets it to
``docs/screenshots``), else to the test's temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_serve import Serve
from tests.servers import ensure_debian_package

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else ensure_debian_package("chromium", "chromium")
    assert os.access(path, os.X_OK), f"{path} is not executable"
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """One Chromium per test module. (Playwright's sync API runs an event loop in this
    thread while it is open: held for the whole session, it broke every later test that
    calls ``asyncio.run``.)"""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Serve]:
    serve = Serve(tmp_path / "data", 1)
    try:
        yield serve
    finally:
        serve.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("XUPTIME_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where
