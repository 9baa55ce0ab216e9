"""Message templates: Jinja2 in its sandbox, one language for every provider.

Variables (all present in every context; empty when ``private`` hides them):

- ``event``: ``down``, ``up`` (recovery), ``reminder``, ``test``, ``flapping`` (it keeps
  changing between up and down: this one message stands in for the stream) or ``settled``
  (the flapping stopped)
- ``status``: the monitor's status the message is about (``down`` or ``up``)
- ``changes``: how many times a flapping monitor changed (``flapping``, ``settled``)
- ``is_test``: true for ``POST /integrations/{id}/test``
- ``monitor``: ``id``, ``name``, ``type``, ``target`` (URL or host:port; empty when private)
- ``reason``: why it went down (empty when private)
- ``incident_id``, ``started`` (ISO 8601 UTC), ``resolved`` (on recovery)
- ``duration``: how long it has been down (``1h 2m 5s``), ``duration_seconds``
- ``link``: the monitor's page in this xuptime's dashboard

A template that does not compile, or refers to something that does not exist, is refused
when the channel is saved (``template`` field error). Output is capped at 4,000 characters.

Rendering runs off the event loop (``off_loop``: its own two threads, a one-second budget),
and a template is cheap by construction besides: the
sandbox refuses loops, macros, assignments, includes and call blocks, offers only filters
that cannot grow their input much (``upper``, ``lower``, ``title``, ``capitalize``, ``trim``,
``truncate``, ``default``, ``replace`` (bounded), ``round``, ``int``, ``float``, ``string``,
``length``, ``first``, ``last``, ``abs``, ``striptags``, ``wordcount``), bounds ``*`` and
``**``, refuses ``%`` formatting of strings and the string methods that take a width or a
format (``format``, ``ljust``, ``center``, ``zfill``, ``replace``...). Without loops or
variables, a value can only be as large as the template spells out.
Conditions, filters and expressions are all a message needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "MAX_OUTPUT",
    "MAX_TEMPLATE",
    "RENDER_BUDGET_S",
    "TemplateError",
    "human_duration",
    "off_loop",
    "render",
    "sample_context",
    "validate_template",
]

MAX_TEMPLATE = 4000
MAX_OUTPUT = 4000
#: Seconds a template (with everything around it: a channel's validation renders it four
#: times) may take, off the event loop, before it counts as failed.
RENDER_BUDGET_S = 1.0
_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="templates")

T = TypeVar("T")


class TemplateError(ValueError):
    pass


_REFUSED_NODES = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.Assign, nodes.AssignBlock,
                  nodes.With, nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends, nodes.Block)
_MAX_VALUE = 10_000  # characters (or items) a repetition or a replace may produce
_SAFE_FILTERS = ("upper", "lower", "title", "capitalize", "trim", "truncate", "default", "d", "round", "int",
                 "float", "string", "length", "count", "first", "last", "abs", "striptags", "wordcount")


def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    out = str(value).replace(str(old), str(new), -1 if count is None else count)
    if len(out) > _MAX_VALUE:
        raise SecurityError(f"replace would build more than {_MAX_VALUE} characters")
    return out


#: String methods whose output can be far larger than their input (a width, a format spec, a
#: replacement): refused in templates (the bounded ``replace`` filter stays).
_GROWING_METHODS = frozenset({"format", "format_map", "center", "ljust", "rjust", "zfill", "expandtabs",
                              "replace", "translate", "join", "encode"})


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, plus bounds on ``*`` and ``**``, no ``%`` formatting of
    strings and none of the string methods that grow (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _GROWING_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        # Jinja hands out a sandboxed ``str.format``/``format_map`` before asking
        # ``is_safe_attribute``; a format spec's width builds a string of any size, so there is
        # none: the attribute is then refused like the other growing methods.
        return None

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and not all(isinstance(v, int | float) for v in (left, right)):
            raise SecurityError("% formatting is not allowed in templates (write the value with {{ }})")
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
        if operator == "**" and not (numbers and abs(right) <= 64 and abs(left) <= 10**6):
            raise SecurityError("powers are limited in templates")
        if operator == "*" and not numbers:
            count, seq = (right, left) if isinstance(right, int) else (left, right)
            if not isinstance(count, int) or not hasattr(seq, "__len__") or len(seq) * count > _MAX_VALUE:
                raise SecurityError(f"repetition is limited to {_MAX_VALUE} characters in templates")
        return super().call_binop(context, operator, left, right)


@functools.cache
def _env() -> _Sandbox:
    env = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters = {name: env.filters[name] for name in _SAFE_FILTERS} | {"replace": _replace}
    env.globals = {}
    return env


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    env = _env()
    tree = env.parse(source)
    for node in tree.find_all(_REFUSED_NODES):
        raise SecurityError(f"{type(node).__name__.lower()} is not allowed in templates")
    return env.from_string(tree)


def render(source: str, context: dict[str, Any]) -> str:
    """Render ``source`` with ``context``; raises TemplateError with a short reason."""
    try:
        text = _compile(source).render(context)
    except jinja2.TemplateError as exc:  # syntax, undefined names, sandbox refusals
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
    return text.strip()[:MAX_OUTPUT]


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` (anything that renders templates) on the templates' own threads, within
    ``RENDER_BUDGET_S``: the event loop never waits for a template, and one that takes too
    long is a ``TemplateError`` (its thread finishes on its own; at most two run at once, so
    slow ones cannot pile up behind each other unbounded)."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(_pool, functools.partial(fn, *args)), RENDER_BUDGET_S)
    except TimeoutError:
        raise TemplateError(f"rendering took longer than {RENDER_BUDGET_S:g} s") from None


def validate_template(source: str) -> str | None:
    """None when ``source`` renders for every kind of event, else the reason it does not."""
    if len(source) > MAX_TEMPLATE:
        return f"must be at most {MAX_TEMPLATE} characters"
    for event in ("down", "up", "reminder", "test", "flapping", "settled"):
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
        "changes": 7 if event in ("flapping", "settled") else None,
        "monitor": {"id": 0, "name": "Example website", "type": "http", "target": "https://example.com/"},
        "reason": "status 503, expected 200-299" if down else "", "incident_id": 0,
        "started": "2026-01-01T12:00:00Z", "resolved": "" if down else "2026-01-01T12:04:10Z",
        "duration": "4m 10s", "duration_seconds": 250.0, "link": "http://127.0.0.1:8080/monitors/0",
    }
