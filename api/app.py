"""The Litestar application: ``create_app(server)`` assembles small ``_configure_*`` steps.

Served by the main process of ``xuptime serve`` on its own uvloop loop (embedded uvicorn), so
handlers share the server's state directly; DuckDB work goes through ``server.db`` (a
single-thread executor) and never blocks the loop.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Router, get
from litestar.datastructures import State
from litestar.middleware.base import DefineMiddleware

from api.auth import ApiKeyAuth, add_quota_headers
from api.errors import exception_handlers
from api.history import monitor_history, monitor_uptime
from api.incidents import list_incidents, list_monitor_incidents
from api.keys import ApiKeyController
from api.monitors import MonitorController
from api.quota import Quota

__all__ = ["create_app"]

MAX_BODY = 1024 * 1024


@get("/account/usage", operation_id="getAccountUsage", tags=["account"])
async def account_usage(request: Request[int, Any, Any]) -> dict[str, Any]:
    """This calendar month's API usage of the key's account (UTC)."""
    return {"data": request.app.state.quota.usage(request.user)}


@get("/healthz", operation_id="health", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the main process answers."""
    return {"status": "ok"}


def _configure_api_v1() -> Router:
    # Only /api/v1 needs a key (the middleware sits on this router); status pages, push URLs
    # and health are public by design.
    return Router(path="/api/v1", route_handlers=[MonitorController, ApiKeyController, account_usage,
                                                  list_incidents, list_monitor_incidents, monitor_history,
                                                  monitor_uptime],
                  middleware=[DefineMiddleware(ApiKeyAuth)])


def create_app(server: Any) -> Litestar:
    return Litestar(
        route_handlers=[healthz, _configure_api_v1()],
        exception_handlers=exception_handlers,
        request_max_body_size=MAX_BODY,
        state=State({"server": server, "api_keys": {}, "quota": Quota()}),
        before_send=[add_quota_headers],
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
