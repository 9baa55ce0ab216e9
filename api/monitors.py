"""``/api/v1/monitors``: list (keyset pagination), create, read, update, delete, pause, resume.

Every handler parses, calls one method of the injected ``MonitorService`` (the door the CLI
takes too), and encodes the answer in camelCase. Another account's monitor is a 404, never a
403; the service decides that, and validation, once for every face.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import json
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency as Named
from litestar.params import FromPath

from api.errors import ApiError, BadRequest, RequestTimeout
from api.schemas import ERROR_RESPONSES, WRITE_RESPONSES
from core.clock import iso_ms
from core.models import KINDS, STATUSES, Monitor, MonitorTimes, monitor_to_wire
from core.services import MonitorService

__all__ = ["MonitorController", "decode_cursor", "encode_cursor", "json_body", "parse_limit"]


class UnsupportedMediaType(ApiError):
    status_code = 415


async def json_body(request: Request[Any, Any, Any]) -> Any:
    """The request body as JSON: 415 unless it is sent as JSON, 400 unless it parses (the
    1 MiB cap is enforced before this, as a 413)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json")
    try:
        body = await asyncio.wait_for(request.body(), request.app.state.get("body_timeout", 30.0))
    except TimeoutError:
        raise RequestTimeout("The request body did not arrive in time",
                             [{"field": "body", "message": "send the whole body at once"}]) from None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest("Body is not valid JSON", [{"field": "body", "message": str(exc)}]) from None
    except RecursionError:  # (msgspec follows nesting on the C stack, up to Python's limit)
        raise BadRequest("Body is not valid JSON", [{"field": "body", "message": "nested too deeply"}]) from None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Opaque to clients; a cursor is the last id seen, so it stays valid while monitors are
    added or deleted. Anything that is not one of ours is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
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


def id_page(request: Request[Any, Any, Any], items: list[Any]) -> dict[str, Any]:
    """One keyset page of small in-memory lists (keys, status pages, maintenance windows) by
    ``id``, oldest first, with ``limit`` and ``cursor`` from the query: the API's envelope."""
    limit = parse_limit(request.query_params.get("limit"))
    cursor = request.query_params.get("cursor")
    after = decode_cursor(cursor) if cursor else 0
    ordered = sorted(items, key=lambda item: item.id)
    chosen = [item for item in ordered if item.id > after][:limit + 1]
    page, more = chosen[:limit], len(chosen) > limit
    return {"data": page, "pagination": {"limit": limit, "nextCursor": encode_cursor(page[-1].id)
                                         if more and page else None, "total": len(ordered)}}


_last_iso: dict[int, tuple[int, str]] = {}  # monitor id -> (ts µs, ISO) of its last check, formatted once
_LAST_ISO_MAX = 1_000_000  # entries; past it the memo starts over (deleted monitors leave theirs behind)


def _last_check_at(monitor_id: int, ts_us: int) -> str:
    memo = _last_iso.get(monitor_id)
    if memo is None or memo[0] != ts_us:
        if len(_last_iso) >= _LAST_ISO_MAX:
            _last_iso.clear()
        memo = _last_iso[monitor_id] = (ts_us, iso_ms(ts_us))
    return memo[1]


class WireCache:
    """The static part of monitors' wire form (all but status and times), per monitor, while
    its definition stays the same: kept with the monitor's revision (from ``MonitorService.live``:
    a number that changes with every change but of its status) and used only while that is
    still the one. The least recently used leave past ``size`` monitors."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._entries: collections.OrderedDict[int, tuple[int, dict[str, Any]]] = collections.OrderedDict()

    def get(self, monitor_id: int, revision: int) -> dict[str, Any] | None:
        entry = self._entries.get(monitor_id)
        if entry is None or entry[0] != revision:
            return None
        self._entries.move_to_end(monitor_id)
        return entry[1]

    def put(self, monitor_id: int, revision: int, static: dict[str, Any]) -> None:
        self._entries[monitor_id] = (revision, static)
        self._entries.move_to_end(monitor_id)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def pop(self, monitor_id: int) -> None:
        self._entries.pop(monitor_id, None)

    def __len__(self) -> int:
        return len(self._entries)


def _static(monitor: Monitor) -> dict[str, Any]:
    static = monitor_to_wire(monitor)
    static.pop("accountId", None)
    static["id"] = monitor.id
    static["timeout"] = monitor.effective_timeout
    return static


def _body(static: dict[str, Any], monitor_id: int, status: str, last: tuple[int, int] | None,
          created_at: str | None, updated_at: str | None, since: str | None) -> dict[str, Any]:
    return {**static, "status": status,
            "lastCheckAt": _last_check_at(monitor_id, last[0]) if last else None,
            "lastLatencyMs": round(last[1] / 1000, 3) if last else None, "createdAt": created_at,
            "updatedAt": updated_at, "statusSince": since}


def monitor_body(monitor: Monitor, times: MonitorTimes, last: tuple[int, int] | None) -> dict[str, Any]:
    """The wire form of a monitor."""
    return _body(_static(monitor), monitor.id, monitor.status, last, times.created_at, times.updated_at,
                 times.status_since)


def listed_bodies(monitors: MonitorService, ids: list[int], cache: WireCache) -> list[dict[str, Any]]:
    """The wire forms of monitors ``page_ids`` gave: each one's definition part (with its
    creation and change times, which change with it) from ``cache`` while its revision is the
    same; status, statusSince and newest check read for the page at once. A page of cached
    monitors builds no ``Monitor``."""
    out = []
    for monitor_id, (revision, status, since, last) in zip(ids, monitors.live(ids), strict=True):
        cached = cache.get(monitor_id, revision)
        if cached is None:
            monitor, times = monitors.peek(monitor_id)
            cached = {"static": _static(monitor), "createdAt": times.created_at, "updatedAt": times.updated_at}
            cache.put(monitor_id, revision, cached)
        out.append(_body(cached["static"], monitor_id, status, last, cached["createdAt"], cached["updatedAt"], since))
    return out


class MonitorController(Controller):
    path = "/monitors"
    tags = ["monitors"]

    @get("/", operation_id="listMonitors", responses=ERROR_RESPONSES)
    async def list_monitors(self, request: Request[int, Any, Any], monitors: Named[MonitorService]) -> dict[str, Any]:
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
        ids, total, more = monitors.page_ids(request.user, after, limit, status=status, kind=kind,
                                             tag=params.get("tag"), q=params.get("q"))
        cache = request.app.state.wire_cache
        data = listed_bodies(monitors, ids, cache)
        next_cursor = encode_cursor(ids[-1]) if more and ids else None
        return {"data": data, "pagination": {"limit": limit, "nextCursor": next_cursor, "total": total}}

    @post("/", operation_id="createMonitor", status_code=201, responses=WRITE_RESPONSES)
    async def create_monitor(self, request: Request[int, Any, Any], monitors: Named[MonitorService]) -> dict[str, Any]:
        """Create a monitor; its first check runs within one interval."""
        return _answer(monitors, await monitors.create(request.user, await json_body(request)))

    @post("/bulk", operation_id="createMonitors", status_code=201, responses=WRITE_RESPONSES)
    async def create_monitors(self, request: Request[int, Any, Any], monitors: Named[MonitorService]) -> dict[str, Any]:
        """Create up to 1,000 monitors at once, all or none (for imports)."""
        body = await json_body(request)
        items = body.get("monitors") if isinstance(body, dict) else None
        if not isinstance(body, dict) or set(body) - {"monitors"}:
            raise BadRequest("Invalid monitors", [{"field": "body", "message": 'must be {"monitors": [...]}'}])
        created = await monitors.create_many(request.user, items)
        return {"data": [monitor_body(m, times, monitors.last_check(m.id)) for m, times in created]}

    @get("/{monitor_id:int}", operation_id="getMonitor", responses=ERROR_RESPONSES)
    async def get_monitor(self, request: Request[int, Any, Any], monitors: Named[MonitorService],
                          monitor_id: FromPath[int]) -> dict[str, Any]:
        """One monitor."""
        return _answer(monitors, await monitors.get(request.user, monitor_id))

    @patch("/{monitor_id:int}", operation_id="updateMonitor", responses=WRITE_RESPONSES)
    async def update_monitor(self, request: Request[int, Any, Any], monitors: Named[MonitorService],
                             monitor_id: FromPath[int]) -> dict[str, Any]:
        """Change some fields of a monitor; the type cannot change."""
        await monitors.get(request.user, monitor_id)  # (another account's: 404 before any body error)
        return _answer(monitors, await monitors.update(request.user, monitor_id, await json_body(request)))

    @delete("/{monitor_id:int}", operation_id="deleteMonitor", status_code=200, responses=ERROR_RESPONSES)
    async def delete_monitor(self, request: Request[int, Any, Any], monitors: Named[MonitorService],
                             monitor_id: FromPath[int]) -> dict[str, Any]:
        """Delete a monitor with its history."""
        await monitors.delete(request.user, monitor_id)
        request.app.state.wire_cache.pop(monitor_id)
        return {"data": {"id": monitor_id, "deleted": True}}

    @post("/{monitor_id:int}/pause", operation_id="pauseMonitor", status_code=200, responses=ERROR_RESPONSES)
    async def pause_monitor(self, request: Request[int, Any, Any], monitors: Named[MonitorService],
                            monitor_id: FromPath[int]) -> dict[str, Any]:
        """Stop checking a monitor (no results, no alerts) until resumed."""
        return _answer(monitors, await monitors.set_paused(request.user, monitor_id, True))

    @post("/{monitor_id:int}/resume", operation_id="resumeMonitor", status_code=200, responses=ERROR_RESPONSES)
    async def resume_monitor(self, request: Request[int, Any, Any], monitors: Named[MonitorService],
                             monitor_id: FromPath[int]) -> dict[str, Any]:
        """Check a paused monitor again; it starts as pending."""
        return _answer(monitors, await monitors.set_paused(request.user, monitor_id, False))


def _answer(monitors: MonitorService, found: tuple[Monitor, MonitorTimes]) -> dict[str, Any]:
    """One monitor's answer: ``{"data": ...}``."""
    monitor, times = found
    return {"data": monitor_body(monitor, times, monitors.last_check(monitor.id))}
