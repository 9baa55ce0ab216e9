"""A fault inside a handler is a 500 in the documented shape, with nothing of its cause.

The fault is injected into what the handler calls (the thing under test is the error path
of the real application: routing, authentication, the exception handler, the quota hook).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from core.services import DormantEngine, Services, StoreThreads
from core.storage.duckdb import DuckDBStore

SECRET_CAUSE = "disk /srv/secret-path failed for hooks.slack.com/services/T000/B000/XXXX"


def _fail(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(SECRET_CAUSE)


def test_a_fault_is_a_500_in_the_error_shape_without_its_cause(caplog: pytest.LogCaptureFixture,
                                                               tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path)
    key = store.create_api_key(1, "test").secret
    threads = StoreThreads(1)
    services = Services.build(store, threads, DormantEngine([]))
    app = create_app(services)
    app.on_startup.append(services.accounts.load)  # (the key map, as the serve process loads it)
    services.monitors.page_ids = _fail  # type: ignore[method-assign]  # the monitor list fails, revealingly

    with caplog.at_level(logging.ERROR, logger="xuptime.api"), TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/monitors", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"statusCode": 500, "statusMessage": "Internal Server Error",
                               "data": {"reason": "Internal server error"}}
    assert SECRET_CAUSE not in response.text and "Traceback" not in response.text
    assert all(name in response.headers for name in ("x-api-limit", "x-api-remaining", "x-api-reset"))
    # The operator sees the cause in the server's log; the client never does.
    assert any("unhandled error on GET /api/v1/monitors" in r.getMessage() for r in caplog.records)
    threads.shutdown()
    store.close()
