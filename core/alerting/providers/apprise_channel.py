"""Apprise: any of the 100+ services an Apprise URL names (``tgram://``, ``mailto://``,
``ntfy://``, ``json://`` ...). Optional: ``pip install apprise`` (the ``apprise`` extra).

Apprise is synchronous, so each send runs on a small bounded thread pool (at most
``WORKERS`` at once, each with the outbound timeout). Apprise only says whether it worked,
so a failure is retried with backoff until the attempts run out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from typing import Annotated, Any, ClassVar

import msgspec

from core.alerting.base import FieldProblem, SendContext, SendResult

__all__ = ["AppriseProvider"]

WORKERS = 4
_pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="apprise")


class AppriseConfig(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=3, max_length=4096)]


def _apprise() -> Any:
    try:
        import apprise
    except ImportError:
        return None
    # Apprise logs the URLs it is given, and an Apprise URL is a secret: keep its logs out.
    logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
    return apprise


def _notify(url: str, title: str, body: str, failed: bool) -> bool:
    apprise = _apprise()
    instance = apprise.Apprise()
    if not instance.add(url):
        return False
    kind = apprise.NotifyType.FAILURE if failed else apprise.NotifyType.SUCCESS
    return bool(instance.notify(body=body, title=title, notify_type=kind, timeout=10))


class AppriseProvider:
    type: ClassVar[str] = "apprise"
    Config: ClassVar[type[msgspec.Struct]] = AppriseConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"url"})
    #: Config fields naming the host a message goes to (the target policy applies to them).
    target_fields: ClassVar[frozenset[str]] = frozenset({"url"})
    parallel: ClassVar[int] = 2
    default_template: ClassVar[str] = (
        "{% if is_test %}Test message from xuptime.{% elif event == 'up' %}{{ monitor.name }} is back up after "
        "{{ duration }}.{% elif event == 'reminder' %}{{ monitor.name }} is still down ({{ duration }})."
        "{% elif event == 'flapping' %}{{ monitor.name }} is flapping ({{ changes }} changes); alerts held."
        "{% elif event == 'settled' %}{{ monitor.name }} settled after {{ changes }} changes: {{ status }}."
        "{% else %}{{ monitor.name }} is down{% if reason %}: {{ reason }}{% endif %}.{% endif %}")

    @staticmethod
    def check(config: AppriseConfig) -> list[FieldProblem]:
        apprise = _apprise()
        if apprise is None:
            return [FieldProblem("config.url", "Apprise is not installed here (pip install apprise)")]
        if config.url is not None and not apprise.Apprise().add(config.url):
            return [FieldProblem("config.url", "not an Apprise URL that this Apprise knows")]
        return []

    @staticmethod
    def payload(ctx: SendContext) -> dict[str, str]:
        what = {"up": "is back up", "reminder": "is still down", "test": "test", "flapping": "is flapping",
                "settled": "settled"}.get(ctx.event["event"], "is down")
        return {"title": f"{ctx.event['monitor']['name']} {what}", "body": ctx.text}

    async def send(self, ctx: SendContext) -> SendResult:
        if _apprise() is None:
            return SendResult(False, None, "Apprise is not installed", retry=False)
        body = self.payload(ctx)
        call = functools.partial(_notify, ctx.config.url, body["title"], body["body"], ctx.event["status"] == "down")
        ok = await asyncio.get_running_loop().run_in_executor(_pool, call)
        return SendResult(True, None, "sent") if ok else SendResult(False, None, "Apprise reported a failure")
