"""Notification channels, the same for every face. A channel of another account is
``NotFound``. Config errors name every bad field at once (``config.webhookUrl``); secrets are
masked by ``masked`` for every face to show (the stored config never leaves unmasked).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from core.alerting import (
    EVENTS,
    PROVIDERS,
    ConfigError,
    event_context,
    masked_config,
    message_text,
    parse_integration,
    provider_of,
    target_hosts,
    typed_config,
)
from core.alerting.base import SendContext, SendResult
from core.alerting.templates import TemplateError, off_loop, sample_context, validate_template
from core.models import Delivery, FieldError, Integration, is_private_host
from core.services.access import Actor, account_of
from core.services.context import Catalog, EngineLink, StoreThreads
from core.services.errors import Invalid, NotFound
from core.services.sealing import Sealer, SealError

if TYPE_CHECKING:
    from core.storage.base import Store

__all__ = ["DELIVERY_STATES", "IntegrationService", "Preview", "Sender"]

log = logging.getLogger("xuptime.services")
DELIVERY_STATES = ("pending", "sent", "failed")
#: What ``preview`` renders: the event, the message text, and the provider's payload (or None).
Preview = tuple[str, str, Any]


class Sender(Protocol):
    """What sends a message outside the outbox (``core.alerting.outbox.Dispatcher``)."""

    async def send_now(self, integration: Integration, context: dict[str, Any]) -> SendResult: ...


class IntegrationService:
    """Every channel operation of every face: CRUD, a test message, a preview, the delivery
    log. Reads come from the catalog's in-memory set of channels, kept in step with the
    database by every write."""

    def __init__(self, store: Store, threads: StoreThreads, engine: EngineLink, catalog: Catalog,
                 sender: Sender | None, base_url: str, sealer: Sealer | None = None, *,
                 deny_private: bool = False) -> None:
        self.store = store
        self.threads = threads
        self.engine = engine
        self.catalog = catalog
        self.sender = sender
        #: The server's own URL, for links in messages.
        self.base_url = base_url
        #: Seals secret fields before they are stored, opens them when read (None: stored as
        #: given and kept as stored: the CLI on a stopped data dir never sends).
        self.sealer = sealer
        #: Refuse channels whose target is written as a private, loopback or link-local
        #: address (the dispatcher refuses names that resolve to one).
        self.deny_private = deny_private

    async def load(self) -> None:
        """Every channel into the catalog, secrets open; a secret stored plain (before
        sealing) or with a key other than the first is sealed again now."""
        stored = await self.threads.write(self.store.list_integrations)
        if self.sealer is None:
            self.catalog.load_integrations(stored)
            return
        opened, stale = [], []
        for integration in stored:
            try:
                plain = self._opened(integration)
            except SealError:  # a lost or wrong key: the channel stays, its secrets do not open
                log.error("channel %d: its secrets cannot be opened with the configured keys; it cannot send "
                          "until they are set again", integration.id)
                opened.append(integration)
                continue
            opened.append(plain)
            if not self.sealer.config_is_current(integration.config, PROVIDERS[integration.type].secret_fields):
                stale.append(plain)
        for integration in stale:
            await self.threads.write(self.store.reseal_integration, self._sealed(integration))
        self.catalog.load_integrations(opened)

    def _sealed(self, integration: Integration) -> Integration:
        if self.sealer is None:
            return integration
        config = self.sealer.seal_config(integration.config, PROVIDERS[integration.type].secret_fields)
        return msgspec.structs.replace(integration, config=config)

    def _opened(self, integration: Integration) -> Integration:
        if self.sealer is None:
            return integration
        config = self.sealer.open_config(integration.config, PROVIDERS[integration.type].secret_fields)
        return msgspec.structs.replace(integration, config=config)

    def get(self, actor: Actor, integration_id: int) -> Integration:
        account_id = account_of(actor)
        integration = self.catalog.integrations.get(integration_id)
        if integration is None or integration.account_id != account_id:
            raise NotFound("Integration not found")
        return integration

    @staticmethod
    def masked(integration: Integration) -> dict[str, Any]:
        """The channel's config with every secret field masked: what faces show."""
        return masked_config(integration)

    def page(self, actor: Actor, after_id: int, limit: int) -> tuple[list[Integration], int, bool]:
        """One keyset page of the account's channels by id: ``(page, total, more after it)``."""
        account_id = account_of(actor)
        channels = self.catalog.integrations
        mine = sorted(i for i, c in channels.items() if c.account_id == account_id)
        chosen = [i for i in mine if i > after_id][:limit + 1]
        return [channels[i] for i in chosen[:limit]], len(mine), len(chosen) > limit

    async def create(self, actor: Actor, data: Any) -> Integration:
        """Validate and store a channel (``isDefault`` ones get every monitor's alerts)."""
        account_id = account_of(actor, "admin")
        integration = await self._parse_off_loop(data)
        integration.account_id = account_id
        self._check_target(integration)
        created = self._opened(await self.threads.write(self.store.create_integration, self._sealed(integration)))
        self.catalog.integrations[created.id] = created
        return created

    async def update(self, actor: Actor, integration_id: int, data: Any) -> Integration:
        """Change some fields: ``config`` fields sent replace stored ones, a masked secret
        sent back keeps the stored secret, the type cannot change."""
        changed = await self._parse_off_loop(data, self.get(account_of(actor, "admin"), integration_id))
        self._check_target(changed)
        updated = await self.threads.write(self.store.update_integration, self._sealed(changed))
        updated = self._opened(updated) if updated is not None else None
        if updated is None:
            raise NotFound("Integration not found")
        self.catalog.integrations[updated.id] = updated
        return updated

    async def delete(self, actor: Actor, integration_id: int) -> None:
        """Delete a channel: monitors stop naming it (their workers are told), its queued
        messages fail as deleted."""
        account_id = account_of(actor, "admin")
        self.get(account_id, integration_id)
        touched = await self.threads.write(self.store.delete_integration, account_id, integration_id)
        if touched is None:
            raise NotFound("Integration not found")
        self.catalog.integrations.pop(integration_id, None)
        for monitor_id in touched:
            monitor = self.engine.monitors.get(monitor_id)
            if monitor is not None:
                await self.engine.upsert(msgspec.structs.replace(
                    monitor, integrations=[i for i in monitor.integrations if i != integration_id]))

    async def test(self, actor: Actor, integration_id: int) -> SendResult:
        """Send a message that says it is a test, now (no incident, no outbox)."""
        integration = self.get(account_of(actor, "admin"), integration_id)
        context = event_context(sample_context("test"), "test", private=_private(integration),
                                base_url=self.base_url)
        if self.sender is None:
            raise Invalid("Cannot send", [FieldError("integration", "messages are sent by a running server")])
        return await self.sender.send_now(integration, context)

    async def preview(self, actor: Actor, integration_id: int, data: Any) -> Preview:
        """Render a message without sending it: ``{"event", "template"}``, both optional (a
        template to try before saving it). Rendered off the loop, within the budget."""
        integration = self.get(account_of(actor, "admin"), integration_id)
        try:
            return await off_loop(self._preview, integration, data)
        except TemplateError as exc:
            raise Invalid("Invalid preview", [FieldError("template", str(exc))]) from None

    def _preview(self, integration: Integration, data: Any) -> Preview:
        if not isinstance(data, dict):
            raise Invalid("Invalid preview", [FieldError("body", "must be a JSON object")])
        errors = [FieldError(k, "unknown field") for k in data if k not in ("event", "template")]
        event = data.get("event", "down")
        if event not in EVENTS:
            errors.append(FieldError("event", f"must be one of {', '.join(EVENTS)}"))
        template = data.get("template", integration.template)
        if template is not None:
            problem = validate_template(template) if isinstance(template, str) else "must be a string"
            if problem is not None:
                errors.append(FieldError("template", problem))
        if errors:
            raise Invalid("Invalid preview", errors)
        trial = Integration(id=integration.id, account_id=integration.account_id, name=integration.name,
                            type=integration.type, config=integration.config, template=template)
        context = event_context(sample_context(event), event, private=_private(integration),
                                base_url=self.base_url)
        text = message_text(trial, context)
        provider = provider_of(trial)
        payload = None
        if hasattr(provider, "payload"):
            ctx = SendContext(config=typed_config(trial), text=text, event=context, delivery_id="preview",
                              session=None)  # type: ignore[arg-type]
            payload = provider.payload(ctx)
        return event, text, payload

    async def deliveries(self, actor: Actor, integration_id: int, status: str | None, before: int | None,
                         limit: int) -> tuple[list[Delivery], bool]:
        """The channel's messages, newest first (read on a reader thread)."""
        account_id = account_of(actor, "admin")
        self.get(account_id, integration_id)
        if status is not None and status not in DELIVERY_STATES:
            raise Invalid("Invalid filter", [FieldError("status", f"must be one of {', '.join(DELIVERY_STATES)}")])
        return await self.threads.read(self.store.outbox_page, account_id, integration_id, status, before, limit)

    def _check_target(self, integration: Integration) -> None:
        if not self.deny_private:
            return
        errors = [FieldError(f"config.{name}", f"{host}: private and loopback targets are not allowed on this server")
                  for name, host in target_hosts(integration) if is_private_host(host)]
        if errors:
            raise Invalid("Invalid integration", errors)

    async def _parse_off_loop(self, data: Any, current: Integration | None = None) -> Integration:
        """``_parse`` (which renders the template for every event) off the loop, in budget."""
        try:
            return await off_loop(self._parse, data, current)
        except TemplateError as exc:
            raise Invalid("Invalid integration", [FieldError("template", str(exc))]) from None

    @staticmethod
    def _parse(data: Any, current: Integration | None = None) -> Integration:
        try:
            return parse_integration(data, partial_of=current)
        except ConfigError as exc:
            raise Invalid("Invalid integration", [FieldError(e.field, e.message) for e in exc.errors]) from None


def _private(integration: Integration) -> bool:
    return bool(integration.config.get("private", False))
