"""Notification channels: ``/api/v1/integrations``.

CRUD (secrets masked in every response, the create response included), ``POST .../test``
(sends a message labelled as a test at once; opens no incident), ``POST .../preview``
(renders without sending) and ``GET .../deliveries`` (the channel's outbox with each
message's status, attempts and the provider's last answer).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post

from api.errors import BadRequest, NotFound
from api.monitors import decode_cursor, encode_cursor, json_body, parse_limit
from api.schemas import ERROR_RESPONSES
from core.alerting import EVENTS, ConfigError, Integration, event_context, integration_wire, message_text
from core.alerting import parse_integration as _parse
from core.alerting.base import SendContext
from core.alerting.templates import sample_context, validate_template

__all__ = ["IntegrationController"]

DELIVERY_STATES = ("pending", "sent", "failed")


def _parsed(data: Any, current: Integration | None = None) -> Integration:
    try:
        return _parse(data, partial_of=current)
    except ConfigError as exc:
        raise BadRequest("Invalid integration", [{"field": e.field, "message": e.message}
                                                 for e in exc.errors]) from None


def _owned(request: Request[int, Any, Any], integration_id: int) -> Integration:
    integration = request.app.state.server.integrations.get(integration_id)
    if integration is None or integration.account_id != request.user:
        raise NotFound("Integration not found")
    return integration


class IntegrationController(Controller):
    path = "/integrations"
    tags = ["integrations"]

    @get("/", operation_id="listIntegrations", responses=ERROR_RESPONSES)
    async def list_integrations(self, request: Request[int, Any, Any]) -> dict[str, Any]:
        """The account's notification channels, oldest first."""
        limit = parse_limit(request.query_params.get("limit"))
        cursor = request.query_params.get("cursor")
        after = decode_cursor(cursor) if cursor else 0
        mine = sorted(i for i, c in request.app.state.server.integrations.items() if c.account_id == request.user)
        chosen = [i for i in mine if i > after][:limit + 1]
        channels = request.app.state.server.integrations
        data = [integration_wire(channels[i]) for i in chosen[:limit]]
        more = len(chosen) > limit
        return {"data": data, "pagination": {"limit": limit, "nextCursor": encode_cursor(chosen[limit - 1])
                                             if more else None, "total": len(mine)}}

    @post("/", operation_id="createIntegration", status_code=201, responses=ERROR_RESPONSES)
    async def create_integration(self, request: Request[int, Any, Any]) -> dict[str, Any]:
        """Add a channel; ``isDefault`` ones get every monitor's alerts."""
        integration = _parsed(await json_body(request))
        integration.account_id = request.user
        created = await request.app.state.server.create_integration(integration)
        return {"data": integration_wire(created)}

    @get("/{integration_id:int}", operation_id="getIntegration", responses=ERROR_RESPONSES)
    async def get_integration(self, request: Request[int, Any, Any], integration_id: int) -> dict[str, Any]:
        """One channel (secrets masked)."""
        return {"data": integration_wire(_owned(request, integration_id))}

    @patch("/{integration_id:int}", operation_id="updateIntegration", responses=ERROR_RESPONSES)
    async def update_integration(self, request: Request[int, Any, Any], integration_id: int) -> dict[str, Any]:
        """Change some fields; ``config`` fields sent replace stored ones, a masked secret sent
        back keeps the stored secret; the type cannot change."""
        current = _owned(request, integration_id)
        updated = await request.app.state.server.update_integration(_parsed(await json_body(request), current))
        if updated is None:
            raise NotFound("Integration not found")
        return {"data": integration_wire(updated)}

    @delete("/{integration_id:int}", operation_id="deleteIntegration", status_code=200, responses=ERROR_RESPONSES)
    async def delete_integration(self, request: Request[int, Any, Any], integration_id: int) -> dict[str, Any]:
        """Delete a channel: monitors stop naming it, its queued messages fail as deleted."""
        _owned(request, integration_id)
        if not await request.app.state.server.delete_integration(request.user, integration_id):
            raise NotFound("Integration not found")
        return {"data": {"id": integration_id, "deleted": True}}

    @post("/{integration_id:int}/test", operation_id="testIntegration", status_code=200, responses=ERROR_RESPONSES)
    async def test_integration(self, request: Request[int, Any, Any], integration_id: int) -> dict[str, Any]:
        """Send a message that says it is a test, now (no incident, no outbox); the answer
        says whether the provider accepted it and what it said."""
        integration = _owned(request, integration_id)
        server = request.app.state.server
        context = event_context(sample_context("test"), "test", private=_private(integration),
                                base_url=server.http_url)
        result = await server.alerts.send_now(integration, context)
        return {"data": {"delivered": result.ok, "statusCode": result.status, "response": result.response}}

    @post("/{integration_id:int}/preview", operation_id="previewIntegration", status_code=200,
          responses=ERROR_RESPONSES)
    async def preview_integration(self, request: Request[int, Any, Any], integration_id: int) -> dict[str, Any]:
        """Render a message without sending it: body ``{"event": "down"|"up"|"reminder"|"test",
        "template": optional, to try before saving}`` (both optional)."""
        integration = _owned(request, integration_id)
        body = await json_body(request) if await request.body() else {}
        if not isinstance(body, dict):
            raise BadRequest("Invalid preview", [{"field": "body", "message": "must be a JSON object"}])
        errors = [{"field": k, "message": "unknown field"} for k in body if k not in ("event", "template")]
        event = body.get("event", "down")
        if event not in EVENTS:
            errors.append({"field": "event", "message": f"must be one of {', '.join(EVENTS)}"})
        template = body.get("template", integration.template)
        if template is not None:
            problem = validate_template(template) if isinstance(template, str) else "must be a string"
            if problem is not None:
                errors.append({"field": "template", "message": problem})
        if errors:
            raise BadRequest("Invalid preview", errors)
        trial = Integration(id=integration.id, account_id=integration.account_id, name=integration.name,
                            type=integration.type, config=integration.config, template=template)
        context = event_context(sample_context(event), event, private=_private(integration),
                                base_url=request.app.state.server.http_url)
        text = message_text(trial, context)
        payload = None
        provider = trial.provider
        if hasattr(provider, "payload"):
            ctx = SendContext(config=trial.typed_config(), text=text, event=context, delivery_id="preview",
                              session=None)  # type: ignore[arg-type]
            payload = provider.payload(ctx)
        return {"data": {"event": event, "text": text, "payload": payload}}

    @get("/{integration_id:int}/deliveries", operation_id="listIntegrationDeliveries", responses=ERROR_RESPONSES)
    async def list_deliveries(self, request: Request[int, Any, Any], integration_id: int) -> dict[str, Any]:
        """The channel's messages, newest first: status (pending, sent, failed), attempts, and
        the provider's last answer; ``?status=failed`` for the ones that gave up."""
        _owned(request, integration_id)
        params = request.query_params
        limit = parse_limit(params.get("limit"))
        status = params.get("status")
        if status is not None and status not in DELIVERY_STATES:
            raise BadRequest("Invalid filter", [{"field": "status",
                                                 "message": f"must be one of {', '.join(DELIVERY_STATES)}"}])
        cursor = params.get("cursor")
        before = decode_cursor(cursor) if cursor else None
        server = request.app.state.server
        page, more = await server.read(server.store.outbox_page, request.user, integration_id, status, before, limit)
        return {"data": page, "pagination": {"limit": limit,
                                             "nextCursor": encode_cursor(page[-1]["id"]) if more and page else None}}


def _private(integration: Integration) -> bool:
    return bool(integration.config.get("private", False))
