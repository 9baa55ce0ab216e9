"""The Litestar application: ``create_app(services)`` assembles small ``_configure_*`` steps.

Served by the main process of ``xuptime serve`` on its own uvloop loop (embedded uvicorn).
Handlers get the services injected by name (``monitors``, ``channels``, ``accounts``,
``history``) and reach nothing else: the services run DuckDB work on the store's threads, so
the loop never blocks. What lives here is the wire: camelCase shapes, answer caches, errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, Router, get
from litestar.datastructures import CacheControlHeader, State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from api.agents import ReportPath, agent_metrics, agent_script
from api.auth import ApiKeyAuth, add_quota_headers
from api.errors import exception_handlers
from api.grafana import grafana_dashboard
from api.history import AnswerCache, get_retention, monitor_history, monitor_uptime, update_retention
from api.incidents import list_incidents, list_monitor_incidents
from api.integrations import IntegrationController
from api.keys import ApiKeyController
from api.maintenance import MaintenanceController
from api.metrics import metrics
from api.monitors import MonitorController, WireCache
from api.openapi import add_request_bodies
from api.push import push_heartbeat, push_start
from api.schemas import ERROR_RESPONSES, QUOTA_HEADERS
from api.status_pages import StatusPageController
from core.services import Services

__all__ = ["create_app"]

MAX_BODY = 1024 * 1024
_STATIC = "/api/static/swagger-ui"
_CACHE = CacheControlHeader(max_age=3600, public=True)
BODY_TIMEOUT_S = 30.0


@get("/account/usage", operation_id="getAccountUsage", tags=["account"], responses=ERROR_RESPONSES)
async def account_usage(request: Request[int, Any, Any]) -> dict[str, Any]:
    """This calendar month's API usage of the key's account (UTC)."""
    return {"data": request.app.state.services.accounts.usage(request.user)}


@get("/healthz", operation_id="health", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the main process answers."""
    return {"status": "ok"}


def _configure_api_v1() -> Router:
    # Only /api/v1 needs a key (the middleware sits on this router); status pages, push URLs
    # and health are public by design.
    return Router(path="/api/v1", route_handlers=[MonitorController, ApiKeyController, IntegrationController,
                                                  StatusPageController, MaintenanceController,
                                                  account_usage,
                                                  list_incidents, list_monitor_incidents, monitor_history,
                                                  monitor_uptime, agent_metrics, get_retention, update_retention],
                  middleware=[DefineMiddleware(ApiKeyAuth)], response_headers=QUOTA_HEADERS,
                  security=[{"bearer": []}, {"apiKeyHeader": []}, {"apiKeyQuery": []}])


def _configure_openapi() -> OpenAPIConfig:
    # Litestar's schema router has a catch-all for its UI plugins, so it lives at /api/schema
    # (under /api/v1 it would answer unknown API paths with an HTML 404). The document is
    # also served at /api/v1/openapi.json; both are public, as is the docs page, whose UI
    # (Swagger UI) is vendored under api/static: it renders with no network.
    return OpenAPIConfig(
        title="xuptime API", version="1.0.0", path="/api/schema",
        description="Monitors, history, incidents and keys. Every request needs an API key; every "
                    "authenticated response carries X-API-Limit, X-API-Remaining and X-API-Reset.",
        render_plugins=[_SwaggerUI(path="/docs", js_url=f"{_STATIC}/swagger-ui-bundle.js",
                                   favicon=f"<link rel='icon' type='image/png' href='{_STATIC}/favicon-32x32.png'>",
                                   css_url=f"{_STATIC}/swagger-ui.css",
                                   standalone_preset_js_url=f"{_STATIC}/swagger-ui-standalone-preset.js")],
        components=Components(security_schemes={
            "bearer": SecurityScheme(type="http", scheme="bearer", description="Authorization: Bearer <key>"),
            "apiKeyHeader": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
            "apiKeyQuery": SecurityScheme(type="apiKey", name="api_key", security_scheme_in="query"),
        }),
    )


@get("/api/docs", include_in_schema=False)
async def docs_redirect() -> Redirect:
    """The interactive API docs."""
    return Redirect("/api/schema/docs")


@get("/api/v1/openapi.json", include_in_schema=False, media_type="application/json")
async def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI document of /api/v1, request bodies included (built once)."""
    state = request.app.state
    if state.get("openapi") is None:
        state.openapi = add_request_bodies(request.app.openapi_schema.to_schema())
    return state.openapi


class _SwaggerUI(SwaggerRenderPlugin):
    """Swagger UI on the complete document (Litestar's own lacks the request bodies)."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, add_request_bodies(openapi_schema))


def _configure_dependencies(services: Services) -> dict[str, Provide]:
    """The services, injected into handlers by name (``monitors: MonitorService``,
    ``channels: IntegrationService``, ``accounts: AccountService``, ``history: HistoryService``,
    ``system``, ``pages: StatusPageService``)."""

    def provide(value: Any) -> Provide:
        return Provide(lambda: value, sync_to_thread=False)

    return {"monitors": provide(services.monitors), "channels": provide(services.integrations),
            "accounts": provide(services.accounts), "history": provide(services.history),
            "system": provide(services.system), "pages": provide(services.pages),
            "maintenance": provide(services.maintenance), "agents": provide(services.agents)}


def _error_handlers(page_errors: Callable[[Request[Any, Any, Any], Exception], Response[Any]] | None
                    ) -> dict[type[Exception] | int, Any]:
    if page_errors is None:
        return exception_handlers

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        path = request.url.path
        wants_html = "text/html" in (request.headers.get("accept") or "")
        if wants_html and not path.startswith(("/api/", "/metrics", "/healthz", "/grafana/")):
            return page_errors(request, exc)
        return exception_handlers[Exception](request, exc)

    return {Exception: handle}


def create_app(services: Services, *, body_timeout: float = BODY_TIMEOUT_S,
               pages: Sequence[ControllerRouterHandler] = (),
               page_errors: Callable[[Request[Any, Any, Any], Exception], Response[Any]] | None = None) -> Any:
    """The API over ``services``, beside ``pages`` (the web face's routes, composed by the
    caller: api never imports web). ``page_errors`` answers errors outside ``/api`` for
    clients that ask for HTML (a browser on a mistyped address gets a page, not JSON). A
    request body that has not fully arrived ``body_timeout`` seconds after its handler asked
    for it is a 408 (a client that never finishes sending does not hold its handler for ever).
    The application answers behind ``api.agents.ReportPath`` (agents' reports go around it)."""
    history_cache = AnswerCache()
    services.system.sources.append(lambda: {"historyCache": {"hits": history_cache.hits,
                                                             "computed": history_cache.computed}})
    app = Litestar(
        route_handlers=[healthz, docs_redirect, openapi_document, push_heartbeat, push_start, agent_script, metrics,
                        grafana_dashboard,
                        _configure_api_v1(),
                        create_static_files_router("/api/static", [Path(__file__).parent / "static"],
                                                   include_in_schema=False, cache_control=_CACHE),
                        *pages],
        dependencies=_configure_dependencies(services),
        exception_handlers=_error_handlers(page_errors),
        request_max_body_size=MAX_BODY,
        state=State({"services": services, "body_timeout": body_timeout, "history_cache": history_cache,
                     "wire_cache": WireCache()}),
        before_send=[add_quota_headers],
        openapi_config=_configure_openapi(),
        logging_config=None,
        debug=False,
    )
    return ReportPath(app, services.agents, body_timeout)  # (agents' reports bypass the framework)
