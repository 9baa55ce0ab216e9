"""Server agents on the wire: ``POST /api/agent/{token}/report`` (the agent's), the agent itself
at ``/agent/xuptime-agent.py``, and ``GET /api/v1/monitors/{id}/metrics`` (the series).

The report route is public like ``/api/push/{token}``: the token is the credential, so no API
key and no quota. It answers 202 ``{"data": {"stored", "duplicates", "interval"}}`` once the
reports are on disk; 400 (a field named), 404 (unknown token), 413 (over 64 KiB), 415 (not
JSON) and 429 (too many requests for this token, with ``Retry-After``) in the error shape.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import HTTPException

import core.agent
from api.errors import ApiError, BadRequest, RequestTimeout
from api.history import parse_time
from api.monitors import UnsupportedMediaType, decode_cursor, encode_cursor, parse_limit
from api.schemas import ERROR_RESPONSES
from core.clock import iso_ms
from core.models.agents import MAX_REPORT_BYTES
from core.services import AgentService

__all__ = ["agent_metrics", "agent_report", "agent_script"]

_SCRIPT = Path(core.agent.__file__).read_bytes()


class PayloadTooLarge(ApiError):
    status_code = 413


@post("/api/agent/{token:str}/report", include_in_schema=False, status_code=202,
       request_max_body_size=MAX_REPORT_BYTES)
async def agent_report(request: Request[Any, Any, Any], agents: AgentService, token: str) -> Response[bytes]:
    """Store an agent's report (or a list of them: a backlog)."""
    agents.monitor_of(token)  # (an unknown token is a 404 before anything is read)
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType("Send the report as application/json")
    try:
        body = await asyncio.wait_for(request.body(), request.app.state.get("body_timeout", 30.0))
    except TimeoutError:
        raise RequestTimeout("The report did not arrive in time",
                             [{"field": "body", "message": "send the whole body at once"}]) from None
    except HTTPException as exc:
        if exc.status_code == 413:
            raise PayloadTooLarge(f"Report larger than {MAX_REPORT_BYTES // 1024} KiB") from None
        raise
    ack = await agents.report(token, body)
    return Response(b'{"data":' + msgspec.json.encode(ack) + b"}", status_code=202, media_type=MediaType.JSON)


@get("/agent/xuptime-agent.py", include_in_schema=False, media_type="text/x-python; charset=utf-8",
     cache_control=None)
async def agent_script() -> Response[bytes]:
    """The agent as one file (Python 3.8+, standard library only): what ``xuptime agent`` runs."""
    return Response(_SCRIPT, media_type="text/x-python; charset=utf-8",
                    headers={"Content-Disposition": 'inline; filename="xuptime-agent.py"'})


def _pct(used: Any, total: Any) -> float | None:
    return round(100.0 * used / total, 2) if used is not None and total else None


def _raw(r: tuple) -> dict[str, Any]:
    ts, cpu, mem_used, mem_total, swap_used, swap_total, l1, l5, l15, rx, tx, procs, uptime, disks = r
    return {"ts": iso_ms(ts), "cpuPercent": round(cpu, 2),
            "memory": {"usedBytes": mem_used, "totalBytes": mem_total, "percent": _pct(mem_used, mem_total)},
            "swap": None if swap_total is None else {"usedBytes": swap_used, "totalBytes": swap_total,
                                                      "percent": _pct(swap_used, swap_total)},
            "load": None if l1 is None else [round(l1, 2), round(l5, 2), round(l15, 2)],
            "disks": [{"mount": d["mount"], "usedBytes": d["used"], "totalBytes": d["total"],
                       "percent": _pct(d["used"], d["total"])} for d in disks or []],
            "network": None if rx is None else {"rxBytesPerS": round(rx, 1), "txBytesPerS": round(tx, 1)},
            "processes": procs, "uptimeS": uptime}


def _round(value: Any) -> float | None:
    return None if value is None else round(value, 2)


def _bucket(r: tuple) -> dict[str, Any]:
    ts, n, cpu, cpu_max, mem, mem_max, swap, l1, l1_max, rx, tx, procs, disks = r
    return {"ts": iso_ms(ts), "reports": n, "cpuPercent": {"avg": _round(cpu), "max": _round(cpu_max)},
            "memoryPercent": {"avg": _round(mem), "max": _round(mem_max)}, "swapPercent": _round(swap),
            "load1": None if l1 is None else {"avg": _round(l1), "max": _round(l1_max)},
            "network": None if rx is None else {"rxBytesPerS": round(rx, 1), "txBytesPerS": round(tx, 1)},
            "processes": procs,
            "disks": [{"mount": d[0], "percentMax": _round(d[1]), "usedBytes": d[2], "totalBytes": d[3]}
                      for d in disks]}


@get("/monitors/{monitor_id:int}/metrics", operation_id="getMonitorMetrics", tags=["history"],
     responses=ERROR_RESPONSES)
async def agent_metrics(request: Request[int, Any, Any], agents: AgentService, monitor_id: int) -> Response[bytes]:
    """An agent monitor's reports (``interval=raw``, the default) or buckets (``1m``, ``5m``,
    ``1h``, ``1d``: averages and maxima, each disk's fullest), newest first."""
    params = request.query_params
    interval = params.get("interval", "raw")
    errors = []
    if interval not in ("raw", "1m", "5m", "1h", "1d"):
        errors.append({"field": "interval", "message": "must be one of raw, 1m, 5m, 1h, 1d"})
    limit = parse_limit(params.get("limit"), default=100, maximum=1000)
    start, end = parse_time("from", params.get("from")), parse_time("to", params.get("to"))
    if start is not None and end is not None and start > end:
        errors.append({"field": "from", "message": "must not be after to"})
    if errors:
        raise BadRequest("Invalid metrics query", errors)
    cursor = params.get("cursor")
    if cursor:
        before = decode_cursor(cursor) - 1
        end = before if end is None else min(end, before)
    rows, more = await agents.series(request.user, monitor_id, interval, start, end, limit)
    data = [_raw(r) for r in rows] if interval == "raw" else [_bucket(r) for r in rows]
    pagination = {"limit": limit, "nextCursor": encode_cursor(rows[-1][0]) if more and rows else None}
    return Response(msgspec.json.encode({"data": data, "pagination": pagination}), media_type=MediaType.JSON)
