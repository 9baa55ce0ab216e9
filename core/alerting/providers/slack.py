"""Slack through an incoming webhook (``https://hooks.slack.com/services/...``).

The message is Block Kit: a header (monitor and status), the rendered template as a mrkdwn
section, then fields: status, since, downtime (on recovery), reason and target, and a
context line with the link. ``private`` leaves out the target, the reason and the link (URLs,
hosts, IPs and error details stay in xuptime). ``text`` carries the rendered template too,
as Slack's notification fallback.

Slack answers ``ok`` (200); errors come back as text: ``invalid_payload`` (400),
``invalid_token``/``action_prohibited`` (403), ``no_service``/``channel_not_found`` (404),
``channel_is_archived`` (410) are final; 429 (with ``Retry-After``) and 5xx are retried.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from core.alerting.base import FieldProblem, SendContext, SendResult, check_url, http_outcome, request_json, shorten

__all__ = ["SlackProvider"]


class SlackConfig(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    webhook_url: Annotated[str, msgspec.Meta(max_length=2048)]
    private: bool = False



class SlackProvider:
    type: ClassVar[str] = "slack"
    Config: ClassVar[type[msgspec.Struct]] = SlackConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"webhookUrl"})
    #: Config fields naming the host a message goes to (the target policy applies to them).
    target_fields: ClassVar[frozenset[str]] = frozenset({"webhookUrl"})
    default_template: ClassVar[str] = (
        "{% if is_test %}:white_check_mark: Test message from xuptime: this channel receives alerts."
        "{% elif event == 'up' %}:large_green_circle: *{{ monitor.name }}* is back up after {{ duration }}."
        "{% elif event == 'flapping' %}:large_orange_circle: *{{ monitor.name }}* is flapping: {{ changes }} "
        "changes between up and down; alerts are held until it settles."
        "{% elif event == 'settled' %}:large_blue_circle: *{{ monitor.name }}* settled after {{ changes }} "
        "changes; it is {{ status }}."
        "{% elif event == 'reminder' %}:red_circle: *{{ monitor.name }}* is still down ({{ duration }})."
        "{% else %}:red_circle: *{{ monitor.name }}* is down.{% endif %}")

    @staticmethod
    def check(config: SlackConfig) -> list[FieldProblem]:
        errors: list[FieldProblem] = []
        check_url(config.webhook_url, "config.webhookUrl", errors)
        return errors

    @staticmethod
    def payload(ctx: SendContext) -> dict[str, Any]:
        e, private = ctx.event, ctx.config.private
        title = {"up": "is back up", "reminder": "is still down", "test": "test message", "flapping": "is flapping",
                 "settled": "settled"}.get(e["event"], "is down")
        fields = [f"*Status*\n{e['status']}", f"*Since*\n{e['started'] or '-'}"]
        if e["event"] == "up":
            fields.append(f"*Downtime*\n{e['duration']}")
        if not private:
            if e["reason"]:
                fields.append(f"*Reason*\n{shorten(e['reason'], 500)}")
            if e["monitor"]["target"]:
                fields.append(f"*Target*\n{shorten(e['monitor']['target'], 500)}")
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": shorten(f"{e['monitor']['name']} {title}", 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": shorten(ctx.text, 3000)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        ]
        if not private and e["link"]:
            link = {"type": "mrkdwn", "text": f"<{e['link']}|Open in xuptime>"}
            blocks.append({"type": "context", "elements": [link]})
        return {"text": shorten(ctx.text, 3000), "blocks": blocks}

    async def send(self, ctx: SendContext) -> SendResult:
        status, headers, text = await request_json(ctx.session, "POST", ctx.config.webhook_url, self.payload(ctx))
        return http_outcome(status, headers, text)
