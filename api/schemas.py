"""Wire schemas that the OpenAPI document describes: the error payload and the quota headers."""

from __future__ import annotations

import msgspec
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec

__all__ = ["ERROR_RESPONSES", "QUOTA_HEADERS", "WRITE_RESPONSES", "ErrorPayload"]


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class ErrorData(msgspec.Struct, omit_defaults=True):
    reason: str
    errors: list[FieldProblem] | None = None


class ErrorPayload(msgspec.Struct, rename="camel"):
    """Every error under /api/v1."""

    status_code: int
    status_message: str
    data: ErrorData


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorPayload, description=description, generate_examples=False)


ERROR_RESPONSES = {
    400: _error("Validation error: data.errors names each bad field"),
    401: _error("API key missing or invalid"),
    404: _error("Not found (including another account's resources)"),
    413: _error("Request body larger than 1 MiB"),
    415: _error("Body not sent as application/json"),
    429: _error("Monthly request limit reached; see Retry-After"),
    500: _error("Unexpected server error"),
}

#: Creating or changing something: it may clash with what exists, or the disk may be full.
WRITE_RESPONSES = {
    **ERROR_RESPONSES,
    409: _error("Conflicts with what exists (a slug or push token in use); data.errors names the field"),
    503: _error("The server cannot store the change now (its disk is full); nothing was changed"),
}

QUOTA_HEADERS = [
    ResponseHeader(name="X-API-Limit", documentation_only=True,
                   description="Requests allowed this calendar month (UTC); an integer"),
    ResponseHeader(name="X-API-Remaining", documentation_only=True, description="Requests left this month"),
    ResponseHeader(name="X-API-Reset", documentation_only=True,
                   description="Unix seconds when the month rolls over"),
]
