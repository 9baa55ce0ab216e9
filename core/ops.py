"""The CLI's operations, written once over the services: the running server answers them on
its control socket, and the CLI runs the same table itself on a stopped data dir (over a
``DormantEngine``), so both paths validate and answer alike.

An operation takes ``(services, args)`` and returns JSON-ready data (the CLI's shapes: a
monitor is its flat camelCase form with ``id`` and ``status``). It refuses with ``OpError``
(a message shown as it is) or a ``ServiceError`` (its reason, and the fields at fault).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pyarrow as pa

from core.models import Monitor, User, monitor_to_wire
from core.services import Invalid, NotFound, ServiceError, Services
from core.services.history import OWNER_ACCOUNT
from core.services.recent import BARS

__all__ = ["NEEDS_SERVER", "OPS", "READ_ONLY_OPS", "STREAM_OPS", "OpError", "monitor_row", "run", "stream"]


class OpError(ValueError):
    """An operation refused its input; the message is for the user, as it is."""


def monitor_row(monitor: Monitor) -> dict[str, Any]:
    """The CLI/control-socket view of a monitor."""
    return {**monitor_to_wire(monitor), "id": monitor.id, "status": monitor.status}


# monitors: the CLI acts as the operator, on any account's monitor; new ones are the default
# account's.
async def _monitors_list(services: Services, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [monitor_row(m) for m in services.monitors.every()]


async def _monitors_add(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    account = await services.accounts.account_id(None)
    return monitor_row((await services.monitors.create(account, args.get("monitor")))[0])


def _owner(services: Services, args: dict[str, Any]) -> tuple[int, int]:
    try:
        monitor_id = int(args["id"])
    except (KeyError, TypeError, ValueError):
        raise OpError("a monitor id is required") from None
    account = services.monitors.owner_of(monitor_id)
    if account is None:
        raise OpError(f"no monitor {monitor_id}")
    return account, monitor_id


async def _monitors_remove(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    account, monitor_id = _owner(services, args)
    await services.monitors.delete(account, monitor_id)
    return {"id": monitor_id, "deleted": True}


async def _monitors_pause(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    account, monitor_id = _owner(services, args)
    return monitor_row((await services.monitors.set_paused(account, monitor_id, True))[0])


async def _monitors_resume(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    account, monitor_id = _owner(services, args)
    return monitor_row((await services.monitors.set_paused(account, monitor_id, False))[0])


async def _monitors_show(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    account, monitor_id = _owner(services, args)
    monitor, times = await services.monitors.get(account, monitor_id)
    _, uptime = services.monitors.recent(monitor)
    last = services.monitors.last_check(monitor_id)
    # (the heartbeat bar's checks with their times: a page of history, oldest first)
    rows, _ = await services.history.raw(account, monitor_id, None, None, None, BARS)
    return {**monitor_row(monitor), **msgspec.to_builtins(times), "uptime24h": uptime,
            "lastCheckUs": last[0] if last else None, "lastLatencyMs": last[1] / 1000 if last else None,
            "recent": [{"tsUs": r[0], "ok": bool(r[1]), "latencyMs": r[2] / 1000} for r in reversed(rows)]}


async def _monitors_edit(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    account, monitor_id = _owner(services, args)
    return monitor_row((await services.monitors.update(account, monitor_id, args.get("changes")))[0])


async def _monitors_history(services: Services, args: dict[str, Any]) -> list[dict[str, Any]]:
    account, monitor_id = _owner(services, args)
    limit = args.get("limit", 20)
    if not isinstance(limit, int) or not 1 <= limit <= 10000:
        raise OpError("--limit must be 1 to 10000")
    rows, _ = await services.history.raw(account, monitor_id, None, None, None, limit)
    return [{"tsUs": r[0], "ok": bool(r[1]), "latencyMs": r[2] / 1000 if r[2] is not None else None,
             "statusCode": r[3], "error": r[4]} for r in rows]


# accounts and keys ------------------------------------------------------------------------
async def _accounts_create(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    return msgspec.to_builtins(await services.accounts.create_account(args.get("name"), args.get("monthlyLimit")))


async def _accounts_list(services: Services, args: dict[str, Any]) -> list[dict[str, Any]]:
    return msgspec.to_builtins(await services.accounts.accounts())


async def _keys_create(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    account = await services.accounts.account_id(args.get("account"))
    try:
        return msgspec.to_builtins(await services.accounts.create_key(account, args.get("name") or "default",
                                                                      args.get("scope") or "full"))
    except Invalid as exc:
        raise OpError("; ".join(f"{e.field}: {e.message}" for e in exc.errors or [])
                      or "a key name of 1 to 100 characters is required") from None


async def _keys_list(services: Services, args: dict[str, Any]) -> list[dict[str, Any]]:
    return msgspec.to_builtins(await services.accounts.keys(await services.accounts.account_id(args.get("account"))))


async def _keys_revoke(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    account = await services.accounts.account_id(args.get("account"))
    key_id = args.get("id")
    await services.accounts.revoke_key(account, key_id)
    return {"id": key_id, "revoked": True}


# retention: the server's, set by its owner ---------------------------------------------------
async def _retention_show(services: Services, args: dict[str, Any]) -> dict[str, str]:
    return services.history.retention(OWNER_ACCOUNT).text()


async def _retention_set(services: Services, args: dict[str, Any]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for part in str(args.get("set") or "").split(","):
        tier, eq, value = part.partition("=")
        if not eq:
            raise OpError(f"{part.strip()!r}: write tier=duration, e.g. raw=30d,hourly=1y,daily=forever")
        changes[tier.strip()] = value.strip()
    return (await services.history.set_retention(OWNER_ACCOUNT, changes)).text()


# users: the box's owner manages every account's users, named by e-mail address --------------
def _user(services: Services, args: dict[str, Any]) -> User:
    user = services.users.find(str(args.get("email") or ""))
    if user is None:
        raise OpError(f"no user {args.get('email')!r}")
    return user


async def _users_create(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    account = await services.accounts.account_id(args.get("account"))
    user = await services.users.create(account, args.get("email"), args.get("password"), args.get("role") or "viewer")
    return msgspec.to_builtins(user)


async def _users_list(services: Services, args: dict[str, Any]) -> list[dict[str, Any]]:
    return msgspec.to_builtins(services.users.every())


async def _users_remove(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    user = _user(services, args)
    await services.users.remove(user.account_id, user.id)
    return {"email": args.get("email"), "removed": True}


async def _users_set_password(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    user = _user(services, args)
    await services.users.set_password(user.account_id, user.id, args.get("password"))
    return {"email": args.get("email"), "passwordChanged": True}


# the process ------------------------------------------------------------------------------
async def _ping(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    return services.system.ping()


async def _stats(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    try:
        return services.system.stats(bool(args.get("histogram")))
    except LookupError as exc:
        raise OpError(str(exc)) from None


async def _sql(services: Services, args: dict[str, Any]) -> dict[str, Any]:
    try:
        columns, rows = await services.system.sql(args.get("sql"))
    except Invalid as exc:
        raise OpError(exc.reason) from None
    return {"columns": columns, "rows": [list(r) for r in rows]}


Op = Callable[[Services, dict[str, Any]], Awaitable[Any]]
OPS: dict[str, Op] = {
    "monitors.list": _monitors_list,
    "monitors.add": _monitors_add,
    "monitors.remove": _monitors_remove,
    "monitors.pause": _monitors_pause,
    "monitors.resume": _monitors_resume,
    "monitors.show": _monitors_show,
    "monitors.edit": _monitors_edit,
    "monitors.history": _monitors_history,
    "accounts.create": _accounts_create,
    "accounts.list": _accounts_list,
    "keys.create": _keys_create,
    "keys.list": _keys_list,
    "keys.revoke": _keys_revoke,
    "retention.show": _retention_show,
    "retention.set": _retention_set,
    "users.create": _users_create,
    "users.list": _users_list,
    "users.remove": _users_remove,
    "users.set-password": _users_set_password,
    "ping": _ping,
    "stats": _stats,
    "sql": _sql,
}

#: Operations that only read: the CLI opens a stopped data dir read-only for them.
READ_ONLY_OPS = frozenset({"monitors.list", "monitors.show", "monitors.history", "accounts.list", "keys.list",
                           "users.list", "sql", "retention.show", "export", "sql.stream"})
#: Operations that only a running server can answer.
NEEDS_SERVER = frozenset({"ping", "stats"})


async def run(services: Services, op: Any, args: dict[str, Any]) -> Any:
    """One operation; ``OpError`` for an unknown one."""
    handler = OPS.get(op) if isinstance(op, str) else None
    if handler is None:
        raise OpError(f"unknown operation {op!r}")
    try:
        return await handler(services, args)
    except NotFound as exc:
        if exc.reason == "Monitor not found":  # gone between the lookup and the write
            raise OpError(f"no monitor {args.get('id')}") from None
        raise


def error_payload(exc: Exception) -> dict[str, Any]:
    """What the control socket answers for a refusal (the CLI prints it)."""
    if isinstance(exc, ServiceError):
        return {"ok": False, "error": exc.reason[:1].lower() + exc.reason[1:],
                "errors": [{"field": e.field, "message": e.message} for e in exc.errors or []]}
    return {"ok": False, "error": str(exc)}


# streamed operations: a header, then Arrow batches (``xuptime export``, ``xuptime sql --out``) --
Streamed = tuple[dict[str, Any], AsyncIterator[pa.RecordBatch]]
_INTERVALS = {"raw": None, "1m": 60, "5m": 300, "1h": 3600, "1d": 86400}


def _time(args: dict[str, Any], name: str) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise OpError(f"--{name} must be a time")
    return value


async def _export(services: Services, args: dict[str, Any]) -> Streamed:
    """A monitor's (``id``) or an account's (``account``, every monitor) checks or buckets
    (``interval``) within ``from``/``to`` (µs)."""
    interval = args.get("interval") or "raw"
    if interval not in _INTERVALS:
        raise OpError(f"--interval must be one of {', '.join(_INTERVALS)}")
    start, end = _time(args, "from"), _time(args, "to")
    if start is not None and end is not None and start > end:
        raise OpError("--from must not be after --to")
    if args.get("id") is not None:
        account, monitor_id = _owner(services, args)
        ids: list[int] | None = [monitor_id]
    else:
        account, ids = await services.accounts.account_id(args.get("account")), None
    try:
        total, batches = await services.history.export(account, ids, _INTERVALS[interval], start, end)
    except Invalid as exc:
        raise OpError(exc.reason) from None
    return {"rows": total}, batches


async def _sql_stream(services: Services, args: dict[str, Any]) -> Streamed:
    """A read-only query's whole answer (no row cap), for a file."""
    return {"rows": None}, services.system.sql_batches(args.get("sql"))


STREAM_OPS: dict[str, Callable[[Services, dict[str, Any]], Awaitable[Streamed]]] = {
    "export": _export, "sql.stream": _sql_stream}


async def stream(services: Services, op: str, args: dict[str, Any]) -> Streamed:
    """One streamed operation: ``(header, batches)``, at least one batch (its columns, if no
    rows); ``OpError`` for an
    unknown one. (A refusal found while reading, such as a query DuckDB rejects, is raised
    by the first batch.)"""
    handler = STREAM_OPS.get(op)
    if handler is None:
        raise OpError(f"unknown operation {op!r}")
    return await handler(services, args)
