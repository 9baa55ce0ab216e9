"""A fault inside a handler is a 500 in the documented shape, with nothing of its cause.

The fault is injected into what the handler calls (the thing under test is the error path
of the real application: routing, authentication, the exception handler, the quota hook).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from core.services import IntegrationService, MonitorService, Services
from core.storage.duckdb import hash_api_key

KEY = "xup_0123456789abcdef0123456789abcdef"
SECRET_CAUSE = "disk /srv/secret-path failed for hooks.slack.com/services/T000/B000/XXXX"


class _Failing:
    """The serve process as the monitors list reaches it (through its service): it fails
    with a revealing message."""

    def __init__(self) -> None:
        self.services = Services(monitors=MonitorService(self), integrations=IntegrationService(self))  # type: ignore[arg-type]

    def monitor_page(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(SECRET_CAUSE)


def test_a_fault_is_a_500_in_the_error_shape_without_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(_Failing())
    app.state.api_keys[hash_api_key(KEY)] = 1
    app.state.quota.limits[1] = 100
    with caplog.at_level(logging.ERROR, logger="xuptime.api"), TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/monitors", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"statusCode": 500, "statusMessage": "Internal Server Error",
                               "data": {"reason": "Internal server error"}}
    assert SECRET_CAUSE not in response.text and "Traceback" not in response.text
    assert all(name in response.headers for name in ("x-api-limit", "x-api-remaining", "x-api-reset"))
    # The operator sees the cause in the server's log; the client never does.
    assert any("unhandled error on GET /api/v1/monitors" in r.getMessage() for r in caplog.records)
