"""The one error shape of ``/api/v1``, applied in one place.

Every error is ``{"statusCode", "statusMessage", "data": {"reason", ...}}`` with
``Content-Type: application/json``; validation failures are 400 (never 422) with
``data.errors: [{"field", "message"}]``; a 500 says nothing about its cause.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException

from core.services import Conflict as ServiceConflict
from core.services import Forbidden as ServiceForbidden
from core.services import Limited as ServiceLimited
from core.services import NotFound as ServiceNotFound
from core.services import ServiceError
from core.services import Unavailable as ServiceUnavailable

__all__ = ["ApiError", "BadRequest", "NotFound", "RequestTimeout", "TooManyRequests", "error_response",
           "exception_handlers"]

log = logging.getLogger("xuptime.api")


class ApiError(Exception):
    """Raised by handlers; mapped to the error payload by ``handle``."""

    status_code = 400

    def __init__(self, reason: str, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors
        self.headers = headers or {}


class BadRequest(ApiError):
    status_code = 400


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class RequestTimeout(ApiError):
    status_code = 408


class Forbidden(ApiError):
    status_code = 403


class TooManyRequests(ApiError):
    status_code = 429


def error_response(status: int, reason: str, errors: list[dict[str, str]] | None = None,
                   headers: dict[str, str] | None = None) -> Response[Any]:
    data: dict[str, Any] = {"reason": reason}
    if errors is not None:
        data["errors"] = errors
    body = {"statusCode": status, "statusMessage": HTTPStatus(status).phrase, "data": data}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


_REASONS = {
    401: "API key missing or invalid",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body larger than 1 MiB",
    415: "Unsupported media type",
}


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The only place that builds error bodies (quota headers are added by a before_send hook)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.reason, exc.errors, exc.headers)
    if isinstance(exc, ServiceError):  # the services' refusals, in the API's words
        status = (404 if isinstance(exc, ServiceNotFound) else 409 if isinstance(exc, ServiceConflict)
                  else 503 if isinstance(exc, ServiceUnavailable) else 403 if isinstance(exc, ServiceForbidden)
                  else 429 if isinstance(exc, ServiceLimited) else 400)
        errors = [{"field": e.field, "message": e.message} for e in exc.errors] if exc.errors is not None else None
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, ServiceLimited) else None
        return error_response(status, exc.reason, errors, headers)
    if isinstance(exc, NotAuthorizedException):
        return error_response(401, _REASONS[401])
    if isinstance(exc, ValidationException):
        errors = [{"field": str(e.get("key") or e.get("source") or "body"), "message": str(e.get("message", ""))}
                  for e in (exc.extra if isinstance(exc.extra, list) else [])]
        return error_response(400, "Invalid request", errors)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        reason = _REASONS.get(status) or (exc.detail if status < 500 else HTTPStatus(status).phrase)
        return error_response(status, reason, headers=exc.headers or None)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "Internal server error")


exception_handlers: dict[type[Exception] | int, Any] = {Exception: handle}
