"""The dashboard's routers: public (first run, sign-in, static files) and signed-in (behind
``web.session.guard``), with errors shown as pages instead of the API's JSON."""

from __future__ import annotations

import logging
from http import HTTPStatus
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from core.services import Forbidden, Invalid, Limited, NotFound, ServiceError, Services, Unavailable
from web.pages import account, auth, integrations, maintenance, monitors, status, status_admin
from web.render import page
from web.session import guard

__all__ = ["error_page", "routes"]

log = logging.getLogger("xuptime.web")
STATIC = Path(__file__).parent / "static"


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Every error of a page, as a page (never a traceback; a 500 says nothing of its cause)."""
    if isinstance(exc, ServiceError):
        status = (404 if isinstance(exc, NotFound) else 403 if isinstance(exc, Forbidden)
                  else 429 if isinstance(exc, Limited) else 503 if isinstance(exc, Unavailable)
                  else 400 if isinstance(exc, Invalid) else 409)
        message = exc.reason
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        message = "There is no such page." if status == 404 else str(exc.detail)
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        status, message = 500, "Something went wrong on the server; it has been logged."
    return page(request, "error.html", status=status, title=HTTPStatus(status).phrase, message=message)


def routes(services: Services) -> list[ControllerRouterHandler]:
    """The web face's routers over ``services``."""
    tables, rendered = monitors.TableCache(), status.Rendered()
    deps = {"users": Provide(lambda: services.users, sync_to_thread=False),
            "tables": Provide(lambda: tables, sync_to_thread=False),
            "rendered": Provide(lambda: rendered, sync_to_thread=False)}
    services.system.sources.append(lambda: {"pageCache": {"hits": tables.hits, "renders": tables.renders}})
    handlers = {Exception: error_page}
    public = Router(path="/", route_handlers=[*auth.PUBLIC, *status.HANDLERS], dependencies=deps,
                    exception_handlers=handlers, include_in_schema=False)
    signed_in = Router(path="/", route_handlers=[*auth.HANDLERS, *monitors.HANDLERS, *account.HANDLERS,
                                                  *integrations.HANDLERS, *status_admin.HANDLERS,
                                                  *maintenance.HANDLERS],
                       dependencies=deps, exception_handlers=handlers,
                       before_request=guard(services.users, services.monitors),
                       include_in_schema=False)
    static = create_static_files_router("/static", [STATIC], include_in_schema=False,
                                        cache_control=CacheControlHeader(max_age=3600, public=True))
    return [public, signed_in, static]
