"""``/api/v1/api-keys``: list (prefixes, never secrets), create (the secret once), revoke."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency as Named
from litestar.params import FromPath

from api.errors import BadRequest, NotFound
from api.monitors import id_page, json_body
from api.schemas import ERROR_RESPONSES
from core.models import KEY_SCOPES
from core.services import AccountService
from core.services import NotFound as ServiceNotFound

__all__ = ["ApiKeyController"]


class ApiKeyController(Controller):
    path = "/api-keys"
    tags = ["api-keys"]

    @get("/", operation_id="listApiKeys", responses=ERROR_RESPONSES)
    async def list_keys(self, request: Request[int, Any, Any], accounts: Named[AccountService]) -> dict[str, Any]:
        """The account's keys, oldest first, 25 at a time by default: prefix, name, created,
        last used (written at most once a minute), revoked."""
        return id_page(request, await accounts.keys(request.user))

    @post("/", operation_id="createApiKey", status_code=201, responses=ERROR_RESPONSES)
    async def create_key(self, request: Request[int, Any, Any], accounts: Named[AccountService]) -> dict[str, Any]:
        """Create a key (``scope``: ``full``, the default, or ``read``: GET and HEAD only,
        outside the monthly quota, for dashboards); the response is the only time its secret
        is shown."""
        data = await json_body(request)
        if not isinstance(data, dict):
            raise BadRequest("Invalid API key", [{"field": "body", "message": "must be a JSON object"}])
        unknown = sorted(set(data) - {"name", "scope"})
        name, scope = data.get("name", "default"), data.get("scope", "full")
        errors = [{"field": k, "message": "unknown field"} for k in unknown]
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
            errors.append({"field": "name", "message": "must be a string of 1 to 100 characters"})
        if scope not in KEY_SCOPES:
            errors.append({"field": "scope", "message": f"must be one of {', '.join(KEY_SCOPES)}"})
        if errors:
            raise BadRequest("Invalid API key", errors)
        return {"data": await accounts.create_key(request.user, name, scope)}

    @delete("/{key_id:int}", operation_id="revokeApiKey", status_code=200, responses=ERROR_RESPONSES)
    async def revoke_key(self, request: Request[int, Any, Any], accounts: Named[AccountService], key_id: FromPath[int]
                         ) -> dict[str, Any]:
        """Revoke a key; it stops working at once."""
        try:
            await accounts.revoke_key(request.user, key_id)
        except ServiceNotFound:
            raise NotFound("API key not found") from None
        return {"data": {"id": key_id, "revoked": True}}
