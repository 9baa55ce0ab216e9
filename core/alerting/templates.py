"""Message templates: Jinja2 in its sandbox, one language for every provider.

Variables (all present in every context; empty when ``private`` hides them):

- ``event``: ``down``, ``up`` (recovery), ``reminder`` or ``test``
- ``status``: the monitor's status the message is about (``down`` or ``up``)
- ``is_test``: true for ``POST /integrations/{id}/test``
- ``monitor``: ``id``, ``name``, ``type``, ``target`` (URL or host:port; empty when private)
- ``reason``: why it went down (empty when private)
- ``incident_id``, ``started`` (ISO 8601 UTC), ``resolved`` (on recovery)
- ``duration``: how long it has been down (``1h 2m 5s``), ``duration_seconds``
- ``link``: the monitor in this xuptime's API

A template that does not compile, or refers to something that does not exist, is refused
when the channel is saved (``template`` field error). Output is capped at 4,000 characters.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["MAX_OUTPUT", "MAX_TEMPLATE", "TemplateError", "human_duration", "render", "sample_context",
           "validate_template"]

MAX_TEMPLATE = 4000
MAX_OUTPUT = 4000


class TemplateError(ValueError):
    pass


@functools.cache
def _env() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                         keep_trailing_newline=False)


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return _env().from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    """Render ``source`` with ``context``; raises TemplateError with a short reason."""
    try:
        text = _compile(source).render(context)
    except jinja2.TemplateError as exc:  # syntax, undefined names, sandbox refusals
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
    return text.strip()[:MAX_OUTPUT]


def validate_template(source: str) -> str | None:
    """None when ``source`` renders for every kind of event, else the reason it does not."""
    if len(source) > MAX_TEMPLATE:
        return f"must be at most {MAX_TEMPLATE} characters"
    for event in ("down", "up", "reminder", "test"):
        try:
            render(source, sample_context(event))
        except TemplateError as exc:
            return str(exc)
    return None


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return " ".join(parts)


def sample_context(event: str) -> dict[str, Any]:
    """A made-up context for previews and validation (monitor 0, ``example.com``)."""
    down = event != "up"
    return {
        "event": event, "status": "down" if down else "up", "is_test": event == "test",
        "monitor": {"id": 0, "name": "Example website", "type": "http", "target": "https://example.com/"},
        "reason": "status 503, expected 200-299" if down else "", "incident_id": 0,
        "started": "2026-01-01T12:00:00Z", "resolved": "" if down else "2026-01-01T12:04:10Z",
        "duration": "4m 10s", "duration_seconds": 250.0, "link": "http://127.0.0.1:8080/api/v1/monitors/0",
    }
