"""Generic webhook: a documented JSON payload, signed.

``POST <url>`` with ``Content-Type: application/json`` and

- ``X-Xuptime-Delivery``: the outbox row's id, the same on every retry (deduplicate on it);
- ``X-Xuptime-Event``: ``down``, ``up``, ``reminder`` or ``test``;
- ``X-Xuptime-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body with ``secret`` (when set);
- the channel's own ``headers``.

Body: ``{"deliveryId", "event", "status", "message", "test", "monitor": {"id", "name", "type",
"target"}, "incident": {"id", "startedAt", "resolvedAt", "durationSeconds"}, "reason",
"sentAt"}``. Any 2xx is delivered; 408, 429 and 5xx are retried (honouring ``Retry-After``);
other answers fail the delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated, ClassVar

import msgspec

from core.alerting.base import FieldProblem, SendContext, SendResult, check_url, http_outcome, request_json
from core.clock import iso_ms

__all__ = ["WebhookProvider"]


class WebhookConfig(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(max_length=2048)]
    secret: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    headers: dict[str, Annotated[str, msgspec.Meta(max_length=1024)]] = {}


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookProvider:
    type: ClassVar[str] = "webhook"
    Config: ClassVar[type[msgspec.Struct]] = WebhookConfig
    # The URL too: like Slack's and Discord's, a webhook URL often is the credential.
    #: ``headers`` too: a receiver's Authorization header is as secret as the signing key.
    secret_fields: ClassVar[frozenset[str]] = frozenset({"url", "secret", "headers"})
    #: Config fields naming the host a message goes to (the target policy applies to them).
    target_fields: ClassVar[frozenset[str]] = frozenset({"url"})
    parallel: ClassVar[int] = 8  # concurrent requests per channel: a webhook is ours to scale
    default_template: ClassVar[str] = (
        "{% if is_test %}Test message from xuptime"
        "{% elif event == 'flapping' %}{{ monitor.name }} is flapping ({{ changes }} changes)"
        "{% elif event == 'settled' %}{{ monitor.name }} settled after {{ changes }} changes: {{ status }}"
        "{% elif event == 'up' %}{{ monitor.name }} is up again after "
        "{{ duration }}{% else %}{{ monitor.name }} is down{% if reason %}: {{ reason }}{% endif %}{% endif %}")

    @staticmethod
    def check(config: WebhookConfig) -> list[FieldProblem]:
        errors: list[FieldProblem] = []
        check_url(config.url, "config.url", errors)
        for name, value in (config.headers or {}).items():
            if not name or any(c in name for c in ":\r\n \t") or any(c in value for c in "\r\n"):
                errors.append(FieldProblem(f"config.headers.{name}", "invalid header name or value"))
        return errors

    @staticmethod
    def payload(ctx: SendContext) -> dict:
        e = ctx.event
        return {"deliveryId": ctx.delivery_id, "event": e["event"], "status": e["status"], "message": ctx.text,
                "test": e["is_test"], "monitor": e["monitor"], "reason": e["reason"],
                "incident": {"id": e["incident_id"], "startedAt": e["started"] or None,
                             "resolvedAt": e["resolved"] or None, "durationSeconds": e["duration_seconds"]},
                "changes": e.get("changes"), "sentAt": iso_ms(time.time_ns() // 1000)}

    async def send(self, ctx: SendContext) -> SendResult:
        config: WebhookConfig = ctx.config
        body = msgspec.json.encode(self.payload(ctx))
        headers = {**config.headers, "User-Agent": "xuptime", "X-Xuptime-Delivery": ctx.delivery_id,
                   "X-Xuptime-Event": ctx.event["event"]}
        if config.secret:
            headers["X-Xuptime-Signature"] = signature(config.secret, body)
        status, response_headers, text = await request_json(ctx.session, "POST", config.url, body, headers)
        return http_outcome(status, response_headers, text)
