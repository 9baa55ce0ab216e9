"""Notification channels: list, per-type forms with help, a channel's page with its delivery
log, a test message and a preview (rendered text, escaped like everything else)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency as Named
from litestar.params import FromPath
from litestar.response import Redirect

from core.alerting import EVENTS, PROVIDERS
from core.models import Integration
from core.services import IntegrationService, ServiceError
from web.forms import CHANNEL_HELP, channel_fields, channel_values, field_errors, form_to_channel
from web.render import page
from web.session import principal

__all__ = ["HANDLERS"]


def _wire(integration: Integration) -> dict[str, Any]:
    return {"name": integration.name, "config": IntegrationService.masked(integration),
            "template": integration.template, "isDefault": integration.is_default,
            "reminderInterval": integration.reminder_interval}


@get("/integrations", include_in_schema=False)
async def integration_list(request: Request[Any, Any, Any], channels: Named[IntegrationService]) -> Response[str]:
    mine, total, _ = channels.page(principal(request), 0, 1000)
    return page(request, "integrations.html", title="Notification channels", channels=mine, total=total,
                types=list(PROVIDERS), help=CHANNEL_HELP)


def _form(request: Request[Any, Any, Any], kind: str, values: dict[str, Any], errors: dict[str, str], *,
          channel: Integration | None = None, status: int = 200) -> Response[str]:
    title = f"Edit {channel.name}" if channel is not None else f"New {kind} channel"
    return page(request, "integration_form.html", status=status, title=title, kind=kind, types=list(PROVIDERS),
                fields=channel_fields(PROVIDERS[kind].Config), secret=PROVIDERS[kind].secret_fields,
                help=CHANNEL_HELP.get(kind, ""), values=values, errors=errors, channel=channel)



@get("/integrations/new", include_in_schema=False)
async def new_integration(request: Request[Any, Any, Any], type: str = "slack") -> Response[str]:
    kind = type if type in PROVIDERS else "slack"
    return _form(request, kind, {"isDefault": False}, {})


@post("/integrations/new", include_in_schema=False)
async def create_integration(request: Request[Any, Any, Any], channels: Named[IntegrationService]) -> Response[Any]:
    form = await request.form()
    kind = form.get("type") if form.get("type") in PROVIDERS else "slack"
    provider = PROVIDERS[kind]
    data, problems = form_to_channel(form, kind, provider.Config, provider.secret_fields, editing=False)
    values = {k: v for k, v in form.items() if k != "_csrf"} | {"isDefault": data["isDefault"]}
    if problems:
        return _form(request, kind, values, {e.field: e.message for e in problems}, status=400)
    try:
        channel = await channels.create(principal(request), data)
    except ServiceError as exc:
        return _form(request, kind, values, field_errors(exc), status=400)
    return Redirect(f"/integrations/{channel.id}", status_code=303)


async def _channel_page(request: Request[Any, Any, Any], channels: IntegrationService, channel_id: int, *,
                        preview: dict[str, Any] | None = None, test: Any = None) -> Response[str]:
    """A channel's page: its masked settings; for admins also the preview, the test result
    and the delivery log (which only they may read)."""
    who = principal(request)
    channel = channels.get(who, channel_id)
    deliveries = (await channels.deliveries(who, channel_id, None, None, 50))[0] if who.may("admin") else []
    return page(request, "integration.html", title=channel.name, channel=channel, config=channels.masked(channel),
                deliveries=deliveries, events=EVENTS, preview=preview, test=test)


@get("/integrations/{channel_id:int}", include_in_schema=False)
async def integration_page(request: Request[Any, Any, Any], channel_id: FromPath[int],
                           channels: Named[IntegrationService]) -> Response[str]:
    return await _channel_page(request, channels, channel_id)


@post("/integrations/{channel_id:int}/test", include_in_schema=False)
async def test_integration(request: Request[Any, Any, Any], channel_id: FromPath[int],
                           channels: Named[IntegrationService]) -> Response[str]:
    result = await channels.test(principal(request), channel_id)
    return await _channel_page(request, channels, channel_id, test=result)


@post("/integrations/{channel_id:int}/preview", include_in_schema=False)
async def preview_integration(request: Request[Any, Any, Any], channel_id: FromPath[int],
                              channels: Named[IntegrationService]) -> Response[str]:
    form = await request.form()
    event = form.get("event") if form.get("event") in EVENTS else "down"
    event, text, payload = await channels.preview(principal(request), channel_id, {"event": event})
    shown = msgspec.json.format(msgspec.json.encode(payload), indent=2).decode() if payload is not None else None
    return await _channel_page(request, channels, channel_id,
                               preview={"event": event, "text": text, "payload": shown})


@get("/integrations/{channel_id:int}/edit", include_in_schema=False)
async def edit_integration(request: Request[Any, Any, Any], channel_id: FromPath[int],
                           channels: Named[IntegrationService]) -> Response[str]:
    channel = channels.get(principal(request), channel_id)
    return _form(request, channel.type, channel_values(_wire(channel)), {}, channel=channel)


@post("/integrations/{channel_id:int}/edit", include_in_schema=False)
async def update_integration(request: Request[Any, Any, Any], channel_id: FromPath[int],
                             channels: Named[IntegrationService]) -> Response[Any]:
    who = principal(request)
    channel = channels.get(who, channel_id)
    provider = PROVIDERS[channel.type]
    form = await request.form()
    data, problems = form_to_channel(form, channel.type, provider.Config, provider.secret_fields, editing=True)
    values = {k: v for k, v in form.items() if k != "_csrf"} | {"isDefault": data["isDefault"]}
    if problems:
        return _form(request, channel.type, values, {e.field: e.message for e in problems}, channel=channel,
                     status=400)
    try:
        await channels.update(who, channel_id, data)
    except ServiceError as exc:
        return _form(request, channel.type, values, field_errors(exc), channel=channel, status=400)
    return Redirect(f"/integrations/{channel_id}", status_code=303)


@post("/integrations/{channel_id:int}/delete", include_in_schema=False)
async def delete_integration(request: Request[Any, Any, Any], channel_id: FromPath[int],
                             channels: Named[IntegrationService]) -> Redirect:
    await channels.delete(principal(request), channel_id)
    return Redirect("/integrations", status_code=303)


HANDLERS = [integration_list, new_integration, create_integration, integration_page, test_integration,
            preview_integration, edit_integration, update_integration, delete_integration]
