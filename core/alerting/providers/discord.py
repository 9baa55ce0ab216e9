"""Discord through a channel webhook (``https://discord.com/api/webhooks/<id>/<token>``).

One embed, coloured by status (red down, green up, grey test), with the rendered template as
its description and fields for reason, since and downtime; a test is titled as a test, and
sending one opens no incident. Mentions are disabled (``allowed_mentions``), so a monitor
name cannot ping anyone. ``?wait=true`` makes Discord confirm with the created message.

A 429 carries ``retry_after`` (seconds, in the JSON body) and ``Retry-After``; both are
honoured. 5xx is retried; other 4xx (unknown webhook, invalid form body) are final.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import msgspec

from core.alerting.base import FieldProblem, SendContext, SendResult, check_url, http_outcome, request_json, shorten

__all__ = ["DiscordProvider"]

RED, GREEN, GREY = 0xE74C3C, 0x2ECC71, 0x95A5A6
ORANGE = 0xF08C00


class DiscordConfig(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    webhook_url: Annotated[str, msgspec.Meta(max_length=2048)]
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=80)] | None = None



class DiscordProvider:
    type: ClassVar[str] = "discord"
    Config: ClassVar[type[msgspec.Struct]] = DiscordConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"webhookUrl"})
    #: Config fields naming the host a message goes to (the target policy applies to them).
    target_fields: ClassVar[frozenset[str]] = frozenset({"webhookUrl"})
    default_template: ClassVar[str] = (
        "{% if is_test %}This is a test message from xuptime: alerts for your monitors will arrive here."
        "{% elif event == 'up' %}**{{ monitor.name }}** is back up after {{ duration }}."
        "{% elif event == 'flapping' %}**{{ monitor.name }}** is flapping: {{ changes }} changes between up and "
        "down; alerts are held until it settles."
        "{% elif event == 'settled' %}**{{ monitor.name }}** settled after {{ changes }} changes; it is {{ status }}."
        "{% elif event == 'reminder' %}**{{ monitor.name }}** is still down ({{ duration }})."
        "{% else %}**{{ monitor.name }}** is down.{% endif %}")

    @staticmethod
    def check(config: DiscordConfig) -> list[FieldProblem]:
        errors: list[FieldProblem] = []
        check_url(config.webhook_url, "config.webhookUrl", errors)
        return errors

    @staticmethod
    def payload(ctx: SendContext) -> dict[str, Any]:
        e = ctx.event
        if e["is_test"]:
            title, colour = f"[TEST] {e['monitor']['name']}", GREY
        elif e["event"] == "flapping":
            title, colour = f"{e['monitor']['name']} is flapping", ORANGE
        elif e["event"] == "settled":
            title, colour = f"{e['monitor']['name']} settled ({e['status']})", GREEN if e["status"] == "up" else RED
        elif e["status"] == "up":
            title, colour = f"{e['monitor']['name']} is up", GREEN
        else:
            title, colour = f"{e['monitor']['name']} is down", RED
        fields = []
        if e["reason"]:
            fields.append({"name": "Reason", "value": shorten(e["reason"], 1024), "inline": False})
        if e["started"]:
            fields.append({"name": "Since", "value": e["started"], "inline": True})
        if e["event"] in ("up", "reminder") and e["duration"]:
            fields.append({"name": "Downtime", "value": e["duration"], "inline": True})
        embed: dict[str, Any] = {"title": shorten(title, 256), "description": shorten(ctx.text, 4096), "color": colour,
                                 "fields": fields, "footer": {"text": "xuptime"}}
        body: dict[str, Any] = {"embeds": [embed], "allowed_mentions": {"parse": []}}
        if ctx.config.username:
            body["username"] = ctx.config.username
        return body

    async def send(self, ctx: SendContext) -> SendResult:
        parts = urlsplit(ctx.config.webhook_url)
        query = "&".join(q for q in (parts.query, "wait=true") if q)
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        status, headers, text = await request_json(ctx.session, "POST", url, self.payload(ctx))
        retry_after = None
        if status == 429:
            try:
                retry_after = float(json.loads(text).get("retry_after"))
            except (ValueError, TypeError, AttributeError):
                retry_after = None
        return http_outcome(status, headers, text, retry_after=retry_after)
