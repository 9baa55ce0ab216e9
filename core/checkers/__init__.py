"""Checkers, one module per kind, behind one signature: ``async check(prepared, ctx)``.

``REGISTRY`` maps a monitor kind to its ``Checker``: ``prepare(spec)`` turns the validated spec
into what the hot path needs (built once per monitor change), ``check(prepared, ctx)`` runs one
check. The caller owns the deadline (see ``core.checkers.base``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from core.checkers import agent, dns, http, ping, push, tcp, tls
from core.checkers.base import CheckContext, Env

__all__ = ["REGISTRY", "CheckContext", "Checker", "Env"]


class Checker(NamedTuple):
    prepare: Callable[[Any], Any]
    check: Callable[[Any, CheckContext], Awaitable[Any]]
    #: Optional callback fast path: ``start(prepared, ctx, done, timeout)`` returns a job
    #: with ``cancel()`` and later calls ``done(result)`` once, or returns None to decline.
    start: Callable[..., Any] | None = None
    #: Timed kinds (the monitored side calls in): ``next_due(prepared, env, monitor_id)`` is
    #: the wall time (s) at which to look next, armed once rather than every interval (None:
    #: this monitor is checked every interval after all). They are prepared from the whole
    #: ``Monitor`` (their deadlines depend on its interval), the others from its spec.
    next_due: Callable[[Any, Env, int], float | None] | None = None


REGISTRY: dict[str, Checker] = {
    "http": Checker(http.prepare, http.check, http.start),
    "tcp": Checker(tcp.prepare, tcp.check),
    "tls": Checker(tls.prepare, tls.check),
    "dns": Checker(dns.prepare, dns.check),
    "ping": Checker(ping.prepare, ping.check),
    "push": Checker(push.prepare, push.check, push.start, push.next_due),
    "agent": Checker(agent.prepare, agent.check, agent.start, agent.next_due),
}
