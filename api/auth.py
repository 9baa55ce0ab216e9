"""API-key authentication for ``/api/v1`` (and ``/metrics``).

A key is accepted as ``Authorization: Bearer <key>``, ``X-API-Key: <key>`` or
``?api_key=<key>``. Missing, unknown and revoked keys are all the same 401. A read-only key
(``scope: read``) may GET and HEAD (anything else is a 403) and spends its own per-minute
budget instead of the account's monthly quota: a dashboard refreshing on its own (Grafana's
Infinity data source) does not eat the month; its quota headers tell of the minute. Keys are looked up
by SHA-256 in an in-memory map kept by the accounts service, reloaded whenever keys change, so a
request never waits on the database to authenticate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from api.errors import Forbidden, TooManyRequests
from core.services import AccountService

if TYPE_CHECKING:
    from litestar.types import Message, Scope

__all__ = ["ApiKeyAuth", "add_quota_headers", "key_from"]


def key_from(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    value = connection.headers.get("x-api-key") or connection.query_params.get("api_key")
    return value.strip() if value else None


class ApiKeyAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        accounts: AccountService = connection.app.state.services.accounts
        found = accounts.authenticate_key(key_from(connection))
        if found is None:
            raise NotAuthorizedException()
        account_id, key_id, scope = found
        if scope == "read":
            if connection.scope.get("method") not in ("GET", "HEAD"):
                raise Forbidden("This API key can only read (GET and HEAD)")
            allowed, headers, retry_after = accounts.take_read(key_id)
            reason = "Read-only key's requests per minute reached"
        else:
            allowed, headers, retry_after = accounts.take(account_id)
            reason = "Monthly request limit reached"
        connection.state.quota_headers = headers  # added to the response by ``add_quota_headers``
        if not allowed:
            raise TooManyRequests(reason, headers={"Retry-After": str(retry_after)})
        return AuthenticationResult(user=account_id, auth=None)


async def add_quota_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: every authenticated response, errors and 429 included, carries
    ``X-API-Limit``, ``X-API-Remaining`` and ``X-API-Reset``."""
    if message["type"] != "http.response.start":
        return
    state = scope.get("state") or {}
    quota = state.get("quota_headers")
    if quota:
        headers = MutableScopeHeaders.from_message(message)
        for name, value in quota.items():
            headers[name] = value
