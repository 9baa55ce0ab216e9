"""Incidents: opened when a monitor goes down, resolved when it comes back; newest first."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency as Named
from litestar.params import FromPath

from api.monitors import decode_cursor, encode_cursor, parse_limit
from api.schemas import ERROR_RESPONSES
from core.services import HistoryService, MonitorService

__all__ = ["list_incidents", "list_monitor_incidents"]


async def _page(request: Request[int, Any, Any], history: HistoryService, monitor_id: int | None) -> dict[str, Any]:
    params = request.query_params
    limit = parse_limit(params.get("limit"))
    cursor = params.get("cursor")
    before = decode_cursor(cursor) if cursor else None
    page, total, more = await history.incidents(request.user, before, limit, monitor_id)
    next_cursor = encode_cursor(page[-1].id) if more and page else None
    return {"data": page, "pagination": {"limit": limit, "nextCursor": next_cursor, "total": total}}


@get("/incidents", operation_id="listIncidents", tags=["incidents"], responses=ERROR_RESPONSES)
async def list_incidents(request: Request[int, Any, Any], history: Named[HistoryService]) -> dict[str, Any]:
    """The account's incidents, newest first."""
    return await _page(request, history, None)


@get("/monitors/{monitor_id:int}/incidents", operation_id="listMonitorIncidents", tags=["incidents"],
     responses=ERROR_RESPONSES)
async def list_monitor_incidents(request: Request[int, Any, Any], history: Named[HistoryService],
                                 monitors: Named[MonitorService],
                                 monitor_id: FromPath[int]) -> dict[str, Any]:
    """One monitor's incidents, newest first."""
    monitors.require(request.user, monitor_id)  # (another account's: 404 before any query error)
    return await _page(request, history, monitor_id)
