"""``/api/v1/monitors``: list (keyset pagination). Create, update and delete follow."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from litestar import Controller, Request, get

from api.errors import BadRequest
from core.models import KINDS, STATUSES, Monitor, monitor_to_wire

__all__ = ["MonitorController", "decode_cursor", "encode_cursor"]


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


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return 25
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise BadRequest("Invalid limit", [{"field": "limit", "message": "must be an integer from 1 to 100"}])
    return int(raw)


def _iso_us(ts_us: int) -> str:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ts_us)).isoformat(timespec="milliseconds") + "Z"


def monitor_body(monitor: Monitor, times: dict[str, Any], last: tuple[int, int] | None) -> dict[str, Any]:
    body = monitor_to_wire(monitor)
    body.pop("accountId", None)
    body["id"] = monitor.id
    body["timeout"] = monitor.effective_timeout
    body["lastCheckAt"] = _iso_us(last[0]) if last else None
    body["lastLatencyMs"] = round(last[1] / 1000, 3) if last else None
    return {**body, **times}


class MonitorController(Controller):
    path = "/monitors"
    tags = ["monitors"]

    @get("/", operation_id="listMonitors")
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
        page, total, more = await server.db(
            server.store.monitor_page, request.user, after, limit, status=status, kind=kind,
            tag=params.get("tag"), q=params.get("q"))
        last_checks = server.last_checks
        data = [monitor_body(m, times, last_checks.get(m.id)) for m, times in page]
        next_cursor = encode_cursor(page[-1][0].id) if more and page else None
        return {"data": data, "pagination": {"limit": limit, "nextCursor": next_cursor, "total": total}}
