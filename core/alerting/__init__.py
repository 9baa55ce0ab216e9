"""Notification channels ("integrations"): validation, rendering, and the providers.

A channel is ``{"name", "type", "config", "template", "isDefault", "reminderInterval"}``;
``type`` picks a provider (one module each), whose ``Config`` struct validates ``config``.
Secret config fields are write-only: the API shows them masked, and a PATCH that sends a
masked value back keeps the stored secret. Delivery goes through the outbox
(``core.alerting.outbox``); this module only decides what is sent.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from core.alerting.base import (
    ConfigError,
    FieldProblem,
    Provider,
    convert_config,
    keep_masked,
    mask_config,
    target_host,
)
from core.alerting.providers import PROVIDERS
from core.alerting.templates import human_duration, render, validate_template
from core.models import Integration

__all__ = ["EVENTS", "PROVIDERS", "ConfigError", "FieldProblem", "Integration", "event_context",
           "masked_config", "message_text", "parse_integration", "provider_of", "target_hosts", "typed_config"]

EVENTS = ("down", "up", "reminder", "test", "flapping", "settled")
_TOP = {"name", "type", "config", "template", "isDefault", "reminderInterval"}
_READ_ONLY = {"id", "createdAt", "updatedAt"}

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


def provider_of(integration: Integration) -> Provider:
    """The provider that delivers this channel's messages."""
    return PROVIDERS[integration.type]


def target_hosts(integration: Integration) -> list[tuple[str, str]]:
    """(config field, host) of each field naming where the channel's messages go (what the
    target policy judges, when saved and again before each send)."""
    found = []
    for name in sorted(PROVIDERS[integration.type].target_fields):
        host = target_host(integration.config.get(name))
        if host is not None:
            found.append((name, host))
    return found


def typed_config(integration: Integration) -> Any:
    """The channel's config as its provider's ``Config`` struct."""
    return msgspec.convert(integration.config, PROVIDERS[integration.type].Config)


def parse_integration(data: Any, *, partial_of: Integration | None = None) -> Integration:
    """Validate a channel definition (or, with ``partial_of``, a patch of one); raises
    ConfigError naming every bad field, nested ones with dots (``config.webhookUrl``)."""
    if not isinstance(data, dict):
        raise ConfigError([FieldProblem("body", "must be a JSON object")])
    errors: list[FieldProblem] = []
    for key in data:
        if key not in _TOP and not (partial_of is not None and key in _READ_ONLY):
            errors.append(FieldProblem(key, "is read-only" if key in _READ_ONLY else "unknown field"))
    if partial_of is not None:
        if "type" in data and data["type"] != partial_of.type:
            errors.append(FieldProblem("type", "cannot be changed; create a new channel"))
        config = data.get("config", {})
        if isinstance(config, dict):  # a patch of the config: sent fields replace, masked secrets keep
            config = {**partial_of.config,
                      **keep_masked(config, partial_of.config, PROVIDERS[partial_of.type].secret_fields)}
        data = {"name": partial_of.name, "template": partial_of.template, "isDefault": partial_of.is_default,
                "reminderInterval": partial_of.reminder_interval, **data, "type": partial_of.type, "config": config}
    name = data.get("name")
    try:
        name = msgspec.convert(name, Name)
    except msgspec.ValidationError:
        errors.append(FieldProblem("name", "is required: a string of 1 to 200 characters"))
    kind = data.get("type")
    provider = PROVIDERS.get(kind) if isinstance(kind, str) else None
    if provider is None:
        errors.append(FieldProblem("type", f"must be one of {', '.join(PROVIDERS)}"))
    config = None
    if provider is not None:
        config_errors: list[FieldProblem] = []
        typed = convert_config(provider.Config, data.get("config"), config_errors,
                               provider.check)  # type: ignore[attr-defined]
        errors += config_errors
        if not config_errors:
            config = msgspec.to_builtins(typed)
    template = data.get("template")
    if template is not None:
        if not isinstance(template, str) or not template.strip():
            errors.append(FieldProblem("template", "must be a non-empty string or null"))
        elif (problem := validate_template(template)) is not None:
            errors.append(FieldProblem("template", problem))
    is_default = data.get("isDefault", False)
    if not isinstance(is_default, bool):
        errors.append(FieldProblem("isDefault", "must be true or false"))
    reminder = data.get("reminderInterval")
    if reminder is not None and (not isinstance(reminder, int) or isinstance(reminder, bool)
                                 or not 60 <= reminder <= 7 * 86400):
        errors.append(FieldProblem("reminderInterval", "must be null or seconds from 60 to 604800"))
    if errors:
        raise ConfigError(errors)
    out = Integration(name=name, type=kind, config=config or {}, template=template, is_default=is_default,
                      reminder_interval=reminder)
    if partial_of is not None:
        out.id, out.account_id, out.created_at = partial_of.id, partial_of.account_id, partial_of.created_at
    return out


def masked_config(integration: Integration) -> dict[str, Any]:
    """The channel's config as anyone may see it: every secret field masked."""
    return mask_config(integration.config, PROVIDERS[integration.type].secret_fields)


def event_context(snapshot: dict[str, Any], event: str, *, private: bool, base_url: str) -> dict[str, Any]:
    """The template context (see ``core.alerting.templates``) of an outbox row's snapshot."""
    monitor = dict(snapshot.get("monitor") or {})
    monitor.setdefault("target", "")
    if private:
        monitor["target"] = ""
    seconds = snapshot.get("duration_seconds")
    mid = monitor.get("id")
    status = snapshot.get("status") or ("up" if event == "up" else "down")  # (flapping messages carry theirs)
    return {
        "event": event, "status": status, "is_test": event == "test", "changes": snapshot.get("changes"),
        "monitor": monitor, "reason": "" if private else (snapshot.get("reason") or ""),
        "incident_id": snapshot.get("incident_id"), "started": snapshot.get("started") or "",
        "resolved": snapshot.get("resolved") or "", "duration": human_duration(seconds),
        "duration_seconds": seconds, "link": f"{base_url}/monitors/{mid}" if base_url and mid else "",
    }


def message_text(integration: Integration, context: dict[str, Any]) -> str:
    """The rendered template; a user template that fails at send time (it rendered for the
    sample when saved) falls back to the provider's default rather than losing the alert."""
    provider = PROVIDERS[integration.type]
    if integration.template:
        try:
            return render(integration.template, context)
        except ValueError:
            pass
    return render(provider.default_template, context)
