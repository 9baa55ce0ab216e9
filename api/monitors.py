"""``/api/v1/monitors``: list (keyset pagination), create, read, update, delete, pause, resume.

Changes go through the server (store first, in a transaction, then the owning worker), the
same path the CLI takes. Another account's monitor is a 404, never a 403.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post

from api.errors import ApiError, BadRequest, Conflict, NotFound
from api.schemas import ERROR_RESPONSES
from core.models import (
    KINDS,
    STATUSES,
    Monitor,
    MonitorValidationError,
    monitor_to_wire,
    parse_monitor,
    private_target,
)

__all__ = ["MonitorController", "decode_cursor", "encode_cursor", "json_body", "owned_monitor", "parse_limit"]


class UnsupportedMediaType(ApiError):
    status_code = 415


async def json_body(request: Request[Any, Any, Any]) -> Any:
    """The request body as JSON: 415 unless it is sent as JSON, 400 unless it parses (the
    1 MiB cap is enforced before this, as a 413)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json")
    body = await request.body()
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest("Body is not valid JSON", [{"field": "body", "message": str(exc)}]) from None


def _validated(data: Any, current: Monitor | None = None) -> Monitor:
    try:
        return parse_monitor(data, partial_of=current)
    except MonitorValidationError as exc:
        raise BadRequest("Invalid monitor", [{"field": e.field, "message": e.message} for e in exc.errors]) from None


def check_monitor_integrations(request: Request[int, Any, Any], ids: list[int]) -> None:
    """A monitor may only name its own account's channels (another account's is unknown)."""
    channels = request.app.state.server.integrations
    unknown = [i for i in ids if (c := channels.get(i)) is None or c.account_id != request.user]
    if unknown:
        raise BadRequest("Invalid monitor", [{"field": "integrations",
                                              "message": f"no such integration: {', '.join(map(str, unknown))}"}])


def check_private_target(request: Request[int, Any, Any], monitor: Monitor) -> None:
    """With ``serve --deny-private-targets``, a target written as a private address is a 400
    (one that only resolves to one fails its checks instead)."""
    if request.app.state.server.deny_private and (found := private_target(monitor)) is not None:
        field, host = found
        raise BadRequest("Invalid monitor", [{"field": field,
                                              "message": f"{host}: private and loopback targets are not allowed "
                                                         "on this server"}])


def check_push_token(request: Request[int, Any, Any], monitor: Monitor) -> None:
    """A push token names one monitor: another monitor's is a 409."""
    token = getattr(monitor.spec, "push_token", None)
    owner = request.app.state.server.push_tokens.get(token) if token is not None else None
    if owner is not None and owner != monitor.id:
        raise Conflict("Push token already in use", [{"field": "pushToken", "message": "is used by another monitor"}])


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Opaque to clients; a cursor is the last id seen, so it stays valid while monitors are
    added or deleted. Anything that is not one of ours is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise BadRequest("Invalid cursor", [{"field": "cursor", "message": "not a cursor from this API"}]) from None
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise BadRequest("Invalid cursor", [{"field": "cursor", "message": "not a cursor from this API"}])
    return after


def parse_limit(raw: str | None, default: int = 25, maximum: int = 100) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest("Invalid limit", [{"field": "limit", "message": f"must be an integer from 1 to {maximum}"}])
    return int(raw)


def iso_us(ts_us: int) -> str:
    """µs since the epoch as ISO 8601 UTC with milliseconds and ``Z``."""
    seconds, us = divmod(ts_us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{us // 1000:03d}Z"


_last_iso: dict[int, tuple[int, str]] = {}  # monitor id -> (ts µs, ISO) of its last check, formatted once
_LAST_ISO_MAX = 1_000_000  # entries; past it the memo starts over (deleted monitors leave theirs behind)


def _last_check_at(monitor_id: int, ts_us: int) -> str:
    memo = _last_iso.get(monitor_id)
    if memo is None or memo[0] != ts_us:
        if len(_last_iso) >= _LAST_ISO_MAX:
            _last_iso.clear()
        memo = _last_iso[monitor_id] = (ts_us, iso_us(ts_us))
    return memo[1]


def monitor_body(monitor: Monitor, times: dict[str, Any], last: tuple[int, int] | None,
                 cache: dict[int, tuple[Monitor, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The wire form of a monitor. With ``cache`` (the server's, for monitors of its live set),
    the static part is built once per monitor object: the set replaces a monitor's object on
    every change except its status, which is filled in here every time."""
    cached = cache.get(monitor.id) if cache is not None else None
    if cached is not None and cached[0] is monitor:
        static = cached[1]
    else:
        static = monitor_to_wire(monitor)
        static.pop("accountId", None)
        static["id"] = monitor.id
        static["timeout"] = monitor.effective_timeout
        if cache is not None:
            cache[monitor.id] = (monitor, static)
    return {**static, "status": monitor.status,
            "lastCheckAt": _last_check_at(monitor.id, last[0]) if last else None,
            "lastLatencyMs": round(last[1] / 1000, 3) if last else None, **times}


class MonitorController(Controller):
    path = "/monitors"
    tags = ["monitors"]

    @get("/", operation_id="listMonitors", responses=ERROR_RESPONSES)
    async def list_monitors(self, request: Request[int, Any, Any]) -> dict[str, Any]:
        """List the account's monitors, 25 at a time by default."""
        params = request.query_params
        limit = parse_limit(params.get("limit"))
        cursor = params.get("cursor")
        after = decode_cursor(cursor) if cursor else 0
        status, kind = params.get("status"), params.get("type")
        errors = []
        if status is not None and status not in STATUSES:
            errors.append({"field": "status", "message": f"must be one of {', '.join(STATUSES)}"})
        if kind is not None and kind not in KINDS:
            errors.append({"field": "type", "message": f"must be one of {', '.join(KINDS)}"})
        if errors:
            raise BadRequest("Invalid filter", errors)
        server = request.app.state.server
        page, total, more = server.monitor_page(request.user, after, limit, status=status, kind=kind,
                                                tag=params.get("tag"), q=params.get("q"))
        last_checks = server.last_checks
        cache = server.wire_cache
        data = [monitor_body(m, times, last_checks.get(m.id), cache) for m, times in page]
        next_cursor = encode_cursor(page[-1][0].id) if more and page else None
        return {"data": data, "pagination": {"limit": limit, "nextCursor": next_cursor, "total": total}}

    @post("/", operation_id="createMonitor", status_code=201, responses=ERROR_RESPONSES)
    async def create_monitor(self, request: Request[int, Any, Any]) -> dict[str, Any]:
        """Create a monitor; its first check runs within one interval."""
        monitor = _validated(await json_body(request))
        monitor.account_id = request.user
        check_monitor_integrations(request, monitor.integrations)
        check_push_token(request, monitor)
        check_private_target(request, monitor)
        server = request.app.state.server
        created = await server.create_monitor(monitor)
        return {"data": await _one(request, created.id)}

    @get("/{monitor_id:int}", operation_id="getMonitor", responses=ERROR_RESPONSES)
    async def get_monitor(self, request: Request[int, Any, Any], monitor_id: int) -> dict[str, Any]:
        """One monitor."""
        return {"data": await _one(request, monitor_id)}

    @patch("/{monitor_id:int}", operation_id="updateMonitor", responses=ERROR_RESPONSES)
    async def update_monitor(self, request: Request[int, Any, Any], monitor_id: int) -> dict[str, Any]:
        """Change some fields of a monitor; the type cannot change."""
        current = await owned_monitor(request, monitor_id)
        data = await json_body(request)
        if not isinstance(data, dict):
            raise BadRequest("Invalid monitor", [{"field": "body", "message": "must be a JSON object"}])
        updated = _validated(data, current)
        check_monitor_integrations(request, updated.integrations)
        check_push_token(request, updated)
        check_private_target(request, updated)
        server = request.app.state.server
        await server.update_monitor(updated)
        if updated.paused != current.paused:  # pausing has its own status handling
            await server.set_paused(monitor_id, updated.paused)
        return {"data": await _one(request, monitor_id)}

    @delete("/{monitor_id:int}", operation_id="deleteMonitor", status_code=200, responses=ERROR_RESPONSES)
    async def delete_monitor(self, request: Request[int, Any, Any], monitor_id: int) -> dict[str, Any]:
        """Delete a monitor with its history."""
        await owned_monitor(request, monitor_id)
        if not await request.app.state.server.delete_monitor(monitor_id):
            raise NotFound("Monitor not found")
        return {"data": {"id": monitor_id, "deleted": True}}

    @post("/{monitor_id:int}/pause", operation_id="pauseMonitor", status_code=200, responses=ERROR_RESPONSES)
    async def pause_monitor(self, request: Request[int, Any, Any], monitor_id: int) -> dict[str, Any]:
        """Stop checking a monitor (no results, no alerts) until resumed."""
        await owned_monitor(request, monitor_id)
        await request.app.state.server.set_paused(monitor_id, True)
        return {"data": await _one(request, monitor_id)}

    @post("/{monitor_id:int}/resume", operation_id="resumeMonitor", status_code=200, responses=ERROR_RESPONSES)
    async def resume_monitor(self, request: Request[int, Any, Any], monitor_id: int) -> dict[str, Any]:
        """Check a paused monitor again; it starts as pending."""
        await owned_monitor(request, monitor_id)
        await request.app.state.server.set_paused(monitor_id, False)
        return {"data": await _one(request, monitor_id)}


async def owned_monitor(request: Request[int, Any, Any], monitor_id: int) -> Monitor:
    server = request.app.state.server
    found = await server.db(server.store.monitor_with_times, request.user, monitor_id)
    if found is None:
        raise NotFound("Monitor not found")
    return found[0]


def require_owned(request: Request[int, Any, Any], monitor_id: int) -> None:
    """404 unless the monitor exists and belongs to the caller's account (from memory: the
    server's monitor set is the database's, kept in step by every change)."""
    engine = request.app.state.server.engine
    monitor = engine.monitors.get(monitor_id) if engine is not None else None
    if monitor is None or monitor.account_id != request.user:
        raise NotFound("Monitor not found")


async def _one(request: Request[int, Any, Any], monitor_id: int) -> dict[str, Any]:
    server = request.app.state.server
    found = await server.db(server.store.monitor_with_times, request.user, monitor_id)
    if found is None:
        raise NotFound("Monitor not found")
    monitor, times = found
    return monitor_body(monitor, times, server.last_checks.get(monitor_id))
