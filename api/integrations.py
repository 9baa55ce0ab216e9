"""Notification channels: ``/api/v1/integrations``.

CRUD (secrets masked in every response, the create response included), ``POST .../test``
(sends a message labelled as a test at once; opens no incident), ``POST .../preview``
(renders without sending) and ``GET .../deliveries`` (the channel's outbox with each
message's status, attempts and the provider's last answer). Every handler calls the injected
``IntegrationService``; masking and the camelCase wire are this face's.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency as Named
from litestar.params import FromPath

from api.monitors import decode_cursor, encode_cursor, json_body, parse_limit
from api.schemas import ERROR_RESPONSES
from core.models import Integration
from core.services import IntegrationService

__all__ = ["IntegrationController", "integration_wire"]


def integration_wire(integration: Integration) -> dict[str, Any]:
    """A channel on the wire: secrets masked, on every response (the create response included)."""
    return {"id": integration.id, "name": integration.name, "type": integration.type,
            "config": IntegrationService.masked(integration), "template": integration.template,
            "isDefault": integration.is_default, "reminderInterval": integration.reminder_interval,
            "createdAt": integration.created_at, "updatedAt": integration.updated_at}


class IntegrationController(Controller):
    path = "/integrations"
    tags = ["integrations"]

    @get("/", operation_id="listIntegrations", responses=ERROR_RESPONSES)
    async def list_integrations(self, request: Request[int, Any, Any], channels: Named[IntegrationService]
                                ) -> dict[str, Any]:
        """The account's notification channels, oldest first."""
        limit = parse_limit(request.query_params.get("limit"))
        cursor = request.query_params.get("cursor")
        page, total, more = channels.page(request.user, decode_cursor(cursor) if cursor else 0, limit)
        return {"data": [integration_wire(c) for c in page],
                "pagination": {"limit": limit, "nextCursor": encode_cursor(page[-1].id) if more and page else None,
                               "total": total}}

    @post("/", operation_id="createIntegration", status_code=201, responses=ERROR_RESPONSES)
    async def create_integration(self, request: Request[int, Any, Any], channels: Named[IntegrationService]
                                 ) -> dict[str, Any]:
        """Add a channel; ``isDefault`` ones get every monitor's alerts."""
        return {"data": integration_wire(await channels.create(request.user, await json_body(request)))}

    @get("/{integration_id:int}", operation_id="getIntegration", responses=ERROR_RESPONSES)
    async def get_integration(self, request: Request[int, Any, Any], channels: Named[IntegrationService],
                              integration_id: FromPath[int]) -> dict[str, Any]:
        """One channel (secrets masked)."""
        return {"data": integration_wire(channels.get(request.user, integration_id))}

    @patch("/{integration_id:int}", operation_id="updateIntegration", responses=ERROR_RESPONSES)
    async def update_integration(self, request: Request[int, Any, Any], channels: Named[IntegrationService],
                                 integration_id: FromPath[int]) -> dict[str, Any]:
        """Change some fields; ``config`` fields sent replace stored ones, a masked secret sent
        back keeps the stored secret; the type cannot change."""
        channels.get(request.user, integration_id)  # (another account's: 404 before any body error)
        updated = await channels.update(request.user, integration_id, await json_body(request))
        return {"data": integration_wire(updated)}

    @delete("/{integration_id:int}", operation_id="deleteIntegration", status_code=200, responses=ERROR_RESPONSES)
    async def delete_integration(self, request: Request[int, Any, Any], channels: Named[IntegrationService],
                                 integration_id: FromPath[int]) -> dict[str, Any]:
        """Delete a channel: monitors stop naming it, its queued messages fail as deleted."""
        await channels.delete(request.user, integration_id)
        return {"data": {"id": integration_id, "deleted": True}}

    @post("/{integration_id:int}/test", operation_id="testIntegration", status_code=200, responses=ERROR_RESPONSES)
    async def test_integration(self, request: Request[int, Any, Any], channels: Named[IntegrationService],
                               integration_id: FromPath[int]) -> dict[str, Any]:
        """Send a message that says it is a test, now (no incident, no outbox); the answer
        says whether the provider accepted it and what it said."""
        result = await channels.test(request.user, integration_id)
        return {"data": {"delivered": result.ok, "statusCode": result.status, "response": result.response}}

    @post("/{integration_id:int}/preview", operation_id="previewIntegration", status_code=200,
          responses=ERROR_RESPONSES)
    async def preview_integration(self, request: Request[int, Any, Any], channels: Named[IntegrationService],
                                  integration_id: FromPath[int]) -> dict[str, Any]:
        """Render a message without sending it: body ``{"event": "down"|"up"|"reminder"|"test",
        "template": optional, to try before saving}`` (both optional)."""
        channels.get(request.user, integration_id)
        body = await json_body(request) if await request.body() else {}
        event, text, payload = await channels.preview(request.user, integration_id, body)
        return {"data": {"event": event, "text": text, "payload": payload}}

    @get("/{integration_id:int}/deliveries", operation_id="listIntegrationDeliveries", responses=ERROR_RESPONSES)
    async def list_deliveries(self, request: Request[int, Any, Any], channels: Named[IntegrationService],
                              integration_id: FromPath[int]) -> dict[str, Any]:
        """The channel's messages, newest first: status (pending, sent, failed), attempts, and
        the provider's last answer; ``?status=failed`` for the ones that gave up."""
        channels.get(request.user, integration_id)
        params = request.query_params
        limit = parse_limit(params.get("limit"))
        cursor = params.get("cursor")
        before = decode_cursor(cursor) if cursor else None
        page, more = await channels.deliveries(request.user, integration_id, params.get("status"), before, limit)
        return {"data": page, "pagination": {"limit": limit,
                                             "nextCursor": encode_cursor(page[-1].id) if more and page else None}}
