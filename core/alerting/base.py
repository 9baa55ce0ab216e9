"""What every notification provider shares: its protocol, config validation, secret masking,
and the outcome of one delivery attempt.

A provider is a module-level object with ``type``, a msgspec ``Config`` struct (camelCase wire
names, unknown fields refused), the names of its ``secret_fields``, a ``default_template`` and
``async send(ctx)``. ``send`` never raises for a provider-side failure: it returns a
``SendResult`` that says whether to retry and when. Nothing here logs a secret: responses are
cut short and scrubbed of the config's secret values before they are kept or shown.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import re
import time
import types
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol
from urllib.parse import quote, urlsplit

import aiohttp
import msgspec

from core.models import FieldError as FieldProblem  # one field-error shape for monitors and channels
from core.models import is_private_address

__all__ = [
    "TIMEOUT",
    "ConfigError",
    "FieldProblem",
    "Provider",
    "PublicResolver",
    "SendContext",
    "SendResult",
    "check_url",
    "keep_masked",
    "mask_config",
    "parse_retry_after",
    "request_json",
    "scrub",
    "shorten",
    "target_host",
]

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)  # every outbound call has a timeout
RESPONSE_KEEP = 200  # characters of a provider's answer kept for the API (one line)


class ConfigError(ValueError):
    """A channel definition was refused; ``errors`` names every bad field (``config.x``)."""

    def __init__(self, errors: list[FieldProblem]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


@dataclasses.dataclass(frozen=True)
class SendResult:
    """One attempt's outcome. ``retry`` false with ``ok`` false means give up now (a 4xx that
    will not change); ``retry_after`` (seconds) is the provider's own wish, if it said one."""

    ok: bool
    status: int | None = None
    response: str = ""
    retry: bool = True
    retry_after: float | None = None
    reference: str | None = None  # what the provider created (a Jira key, a tweet id)


@dataclasses.dataclass
class SendContext:
    """Everything one delivery needs. ``text`` is the rendered template; ``event`` the
    template context (see ``core.alerting.templates``); ``delivery_id`` is stable across
    retries of the same outbox row, so receivers can deduplicate."""

    config: Any
    text: str
    event: dict[str, Any]
    delivery_id: str
    session: aiohttp.ClientSession


class Provider(Protocol):
    type: ClassVar[str]
    Config: ClassVar[type[msgspec.Struct]]
    secret_fields: ClassVar[frozenset[str]]  # wire (camelCase) names
    target_fields: ClassVar[frozenset[str]]  # wire names of the fields naming the host sent to
    default_template: ClassVar[str]

    async def send(self, ctx: SendContext) -> SendResult: ...


def target_host(value: Any) -> str | None:
    """The host a channel's target field names: a URL's host, or the value itself (an SMTP
    host); None when there is none to judge."""
    if not isinstance(value, str) or not value:
        return None
    if "://" not in value:
        return value
    try:
        return urlsplit(value).hostname
    except ValueError:
        return None


class PublicResolver(aiohttp.ThreadedResolver):
    """The resolver of a server that denies private targets: a name that resolves to a
    private, loopback or link-local address is refused when a message is sent (an address
    written as one is refused when the channel is saved; redirects are never followed)."""

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> Any:
        found = await super().resolve(host, port, family)
        private = [r["host"] for r in found if is_private_address(r["host"])]
        if private:
            raise OSError(f"{host} resolves to a private address ({private[0]}); this server denies private targets")
        return found


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when cut (a provider's
    field limit)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_url(value: str | None, field: str, errors: list[FieldProblem]) -> None:
    if value is None:  # already reported as a type error
        return
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        errors.append(FieldProblem(field, "is not a valid URL"))
        return
    if parts.scheme not in ("http", "https") or not hostname:
        errors.append(FieldProblem(field, "must be an http:// or https:// URL"))
    elif any(c in value for c in " \r\n\t"):
        errors.append(FieldProblem(field, "must not contain whitespace"))
    elif "%" in hostname:
        errors.append(FieldProblem(field, "a scoped IPv6 address (with %zone) cannot be a target"))


def _mask(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname:
        return f"{parts.scheme}://{parts.hostname}/****"  # the host says which service; the path is the secret
    return "****"  # no part of a secret, not even its end


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return _mask(value) if value else value
    if isinstance(value, dict):  # e.g. a webhook's headers: every value may carry a token
        return {k: _mask_value(v) for k, v in value.items()}
    return value


def mask_config(config: Mapping[str, Any], secret_fields: frozenset[str]) -> dict[str, Any]:
    """The config as the API shows it: secret values masked (never returned after creation);
    a secret field that is an object has each of its values masked."""
    return {k: (_mask_value(v) if k in secret_fields else v) for k, v in config.items()}


def keep_masked(sent: Mapping[str, Any], stored: Mapping[str, Any], secret_fields: frozenset[str]) -> dict[str, Any]:
    """A config patch with every masked value sent back replaced by the stored secret it
    masks (a client that read a channel and sends its config back changes no secret)."""
    out = dict(sent)
    for name in secret_fields & sent.keys() & stored.keys():
        new, old = sent[name], stored[name]
        if isinstance(new, dict) and isinstance(old, dict):
            out[name] = {k: (old[k] if k in old and v != old[k] and v == _mask_value(old[k]) else v)
                         for k, v in new.items()}
        elif new != old and new == _mask_value(old):
            out[name] = old
    return out


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def _secret_pieces(config: Mapping[str, Any], secret_fields: frozenset[str]) -> list[str]:
    """Every secret of the config, and the parts an endpoint may echo on their own: a secret
    URL's path, its path segments and query values (a Slack or Discord token lives there)."""
    pieces: list[str] = []
    for name in secret_fields:
        value = config.get(name)
        for secret in value.values() if isinstance(value, dict) else (value,):
            if not isinstance(secret, str) or len(secret) < 4:
                continue
            pieces.append(secret)
            if "://" in secret:
                with contextlib.suppress(ValueError):
                    parts = urlsplit(secret)
                    pieces += [p for p in (parts.path, parts.query) if len(p) >= 6]
                    pieces += [seg for seg in parts.path.split("/") if len(seg) >= 6]
                    pieces += [v for _, _, v in (q.partition("=") for q in parts.query.split("&")) if len(v) >= 6]
            elif " " in secret:  # a header value: "Bearer <token>"
                pieces += [w for w in secret.split() if len(w) >= 6]
    return sorted(set(pieces), key=len, reverse=True)  # longest first: a whole URL before its path


def scrub(text: str, config: Mapping[str, Any], secret_fields: frozenset[str]) -> str:
    """A provider's answer as it may be kept and shown: one short line, with every secret of
    the config blanked out, as it is, URL-encoded, or inside base64 (``Authorization: Basic``,
    SMTP's AUTH): an endpoint that echoes what it was sent gives nothing away."""
    text = " ".join(text[:RESPONSE_KEEP * 8].split())
    pieces = _secret_pieces(config, secret_fields)
    for secret in pieces:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "****")

    def blank_encoded(match: re.Match[str]) -> str:
        run = match.group(0)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(ValueError, binascii.Error):
                plain = decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace")
                if any(secret in plain for secret in pieces):
                    return "****"
        return run

    if pieces:
        text = _BASE64_RUN.sub(blank_encoded, text)
    return text[:RESPONSE_KEEP]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - (now or time.time()))
    except (TypeError, ValueError):
        return None


def http_outcome(status: int, headers: Mapping[str, str], text: str, *, retry_after: float | None = None
                 ) -> SendResult:
    """The common reading of an HTTP answer: 2xx ok; 429 and 5xx retried (honouring
    ``Retry-After``); 408 retried; other 4xx given up."""
    if 200 <= status < 300:
        return SendResult(True, status, text)
    wait = retry_after if retry_after is not None else parse_retry_after(headers.get("retry-after"))
    retry = status in (408, 429) or status >= 500
    return SendResult(False, status, text, retry=retry, retry_after=wait)


def convert_config(cls: type[msgspec.Struct], data: Any, errors: list[FieldProblem],
                   check: Any = None) -> Any:
    """``data`` as a ``cls`` instance, or None with every bad field named in ``errors`` (as
    ``config.<wireName>``). Unknown and missing fields are errors too. ``check(config)``, the
    provider's own rules, runs on the fields that converted (the others are None), so one
    answer names every bad field."""
    if not isinstance(data, dict):
        errors.append(FieldProblem("config", "must be a JSON object"))
        return None
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    values: dict[str, Any] = {}
    before = len(errors)
    for key in data:
        if key not in fields:
            errors.append(FieldProblem(f"config.{key}", "unknown field"))
    for wire, field in fields.items():
        if wire not in data:
            if field.required:
                errors.append(FieldProblem(f"config.{wire}", "is required"))
            continue
        try:
            values[field.name] = msgspec.convert(data[wire], field.type)
        except msgspec.ValidationError as exc:
            errors.append(FieldProblem(f"config.{wire}", str(exc).split(" - at ")[0].rstrip(".")))
    view = types.SimpleNamespace(**{f.name: values.get(f.name, None if f.required else _default(f))
                                    for f in fields.values()})
    if check is not None:
        errors.extend(check(view))
    if len(errors) > before:
        return None
    return cls(**values)


def _default(field: Any) -> Any:
    return field.default_factory() if field.default_factory is not msgspec.NODEFAULT else field.default


async def request_json(session: aiohttp.ClientSession, method: str, url: str, body: Any = None,
                       headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """One JSON API call (any method); returns status, headers (lower-case) and text (capped).
    ``body`` is encoded as JSON, or sent as it is when already ``bytes`` (a signed body)."""
    data = body if isinstance(body, bytes) or body is None else msgspec.json.encode(body)
    all_headers = {"Accept": "application/json", **({"Content-Type": "application/json"} if data else {}),
                   **(headers or {})}
    async with session.request(method, url, data=data, headers=all_headers, timeout=TIMEOUT,
                               allow_redirects=False) as response:
        text = (await response.content.read(256 * 1024)).decode("utf-8", "replace")
        return response.status, {k.lower(): v for k, v in response.headers.items()}, text
