"""API-key authentication for ``/api/v1`` (and ``/metrics``).

A key is accepted as ``Authorization: Bearer <key>``, ``X-API-Key: <key>`` or
``?api_key=<key>``. Missing, unknown and revoked keys are all the same 401. Keys are looked up
by SHA-256 in an in-memory map kept by the server, reloaded whenever keys change, so a
request never waits on the database to authenticate.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from core.storage.duckdb import hash_api_key

__all__ = ["ApiKeyAuth", "key_from"]


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
        secret = key_from(connection)
        keys: dict[str, int] = connection.app.state.api_keys
        account_id = keys.get(hash_api_key(secret)) if secret else None
        if account_id is None:
            raise NotAuthorizedException()
        return AuthenticationResult(user=account_id, auth=None)
