"""Twitter/X: a post through the X API v2 (``POST /2/tweets``) as the account's ``handle``.

``bearerToken`` is a user-context OAuth 2.0 access token with ``tweet.write`` (an app-only
token cannot post). The rendered template is fitted to X's 280-character limit as X counts
it (a URL counts 23, wide characters 2) by dropping whole words from the end, never cutting a
word or a URL. A 429 waits until ``x-rate-limit-reset``; X's "duplicate content" refusal of
a retried post counts as delivered (the first try went out). 401/403 are final.
``apiBaseUrl`` (default ``https://api.x.com``) exists for proxies and tests.
"""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any, ClassVar

import msgspec

from core.alerting.base import FieldProblem, SendContext, SendResult, check_url, http_outcome, request_json

__all__ = ["TwitterProvider", "fit_tweet", "weighted_length"]

LIMIT = 280
URL_WEIGHT = 23
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
_HANDLE = re.compile(r"^@?[A-Za-z0-9_]{1,15}$")
# Code points X counts as one (twitter-text's default ranges); everything else counts two.
_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def _char_weight(ch: str) -> int:
    point = ord(ch)
    return 1 if any(lo <= point <= hi for lo, hi in _LIGHT) else 2


def weighted_length(text: str) -> int:
    """The length X counts: URLs 23 each, wide characters 2, the rest 1."""
    total = 0
    for token in re.split(r"(\s+)", text):
        total += URL_WEIGHT if _URL.match(token) else sum(_char_weight(c) for c in token)
    return total


def fit_tweet(text: str, limit: int = LIMIT) -> str:
    """``text`` if it fits, else as many whole leading words as fit, plus an ellipsis."""
    text = " ".join(text.split())
    if weighted_length(text) <= limit:
        return text
    words, out = text.split(" "), []
    for word in words:
        candidate = " ".join([*out, word]) + "…"
        if weighted_length(candidate) > limit:
            break
        out.append(word)
    return (" ".join(out) + "…") if out else "…"


class TwitterConfig(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    handle: str
    bearer_token: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    api_base_url: Annotated[str, msgspec.Meta(max_length=512)] = "https://api.x.com"


class TwitterProvider:
    type: ClassVar[str] = "twitter"
    Config: ClassVar[type[msgspec.Struct]] = TwitterConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"bearerToken"})
    #: Config fields naming the host a message goes to (the target policy applies to them).
    target_fields: ClassVar[frozenset[str]] = frozenset({"apiBaseUrl"})
    min_interval: ClassVar[float] = 1.0
    default_template: ClassVar[str] = (
        "{% if is_test %}Test post from xuptime: status updates will appear here."
        "{% elif event == 'up' %}Resolved: {{ monitor.name }} is back up after {{ duration }}."
        "{% elif event == 'flapping' %}{{ monitor.name }} is unstable: it keeps going down and up. We are on it."
        "{% elif event == 'settled' %}Update: {{ monitor.name }} is stable again ({{ status }})."
        "{% elif event == 'reminder' %}Update: {{ monitor.name }} is still down. We are working on it."
        "{% else %}{{ monitor.name }} is down since {{ started }}. We are investigating.{% endif %}")

    @staticmethod
    def check(config: TwitterConfig) -> list[FieldProblem]:
        errors: list[FieldProblem] = []
        if config.handle is not None and not _HANDLE.match(config.handle):
            errors.append(FieldProblem("config.handle", "must be an X handle: up to 15 letters, digits or _"))
        check_url(config.api_base_url, "config.apiBaseUrl", errors)
        return errors

    @staticmethod
    def payload(ctx: SendContext) -> dict[str, Any]:
        return {"text": fit_tweet(ctx.text)}

    async def send(self, ctx: SendContext) -> SendResult:
        config: TwitterConfig = ctx.config
        status, headers, text = await request_json(
            ctx.session, "POST", config.api_base_url.rstrip("/") + "/2/tweets", self.payload(ctx),
            {"Authorization": f"Bearer {config.bearer_token}"})
        if status == 201:
            try:
                post_id = json.loads(text)["data"]["id"]
            except (ValueError, KeyError, TypeError):
                post_id = None
            return SendResult(True, status, f"posted {post_id}", reference=post_id)
        if status == 403 and "duplicate" in text.lower():
            return SendResult(True, status, "already posted (X refused a duplicate)")
        retry_after = None
        if status == 429 and headers.get("x-rate-limit-reset", "").isdigit():
            retry_after = max(0.0, int(headers["x-rate-limit-reset"]) - time.time())
        return http_outcome(status, headers, text, retry_after=retry_after)
