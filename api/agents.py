"""Server agents on the wire: ``POST /api/agent/{token}/report`` (the agent's), the agent itself
at ``/agent/xuptime-agent.py``, and ``GET /api/v1/monitors/{id}/metrics`` (the series).

The report route is public like ``/api/push/{token}``: the token is the credential, so no API
key and no quota. It answers 202 ``{"data": {"stored", "duplicates", "interval"}}`` once the
reports are on disk; 400 (a field named), 404 (unknown token), 413 (over 64 KiB), 415 (not
JSON) and 429 (too many requests for this token, with ``Retry-After``) in the error shape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get

import core.agent
from api.history import series_query
from api.monitors import encode_cursor
from api.schemas import ERROR_RESPONSES
from core.clock import iso_ms
from core.models.agents import MAX_REPORT_BYTES, used_percent
from core.services import AgentService, Limited, NotFound, ServiceError, Unavailable

__all__ = ["ReportPath", "agent_metrics", "agent_script"]

log = logging.getLogger("xuptime.api")

_SCRIPT = Path(core.agent.__file__).read_bytes()


class ReportPath:
    """ASGI in front of the application: ``POST /api/agent/{token}/report`` is answered here,
    without the framework's routing, injection and response objects, which cost more than the
    rest of a report together (a fleet of 10k agents at 30 s is 333 of these a second,
    measured in ``bench.agents``); everything else goes on to ``app``. The rules are the ones
    of the module's docstring; errors are the API's error shape."""

    def __init__(self, app: Any, agents: AgentService, body_timeout: float) -> None:
        self.app = app
        self.agents = agents
        self.body_timeout = body_timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # (the application's state, its OpenAPI schema...)

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/api/agent/") and path.endswith("/report"):
            token = path[len("/api/agent/"):-len("/report")]
            if token and "/" not in token:
                if scope["method"] != "POST":
                    await _send(send, 405, _error(405, "Method not allowed"), [(b"allow", b"POST")])
                    return
                status, body, headers = await self._report(token, scope, receive)
                await _send(send, status, body, headers)
                return
        await self.app(scope, receive, send)

    async def _report(self, token: str, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]]
                      ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        try:
            self.agents.monitor_of(token)  # (an unknown token is a 404 before anything is read)
            headers = dict(scope["headers"])
            content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
            if content_type != b"application/json":
                return 415, _error(415, "Send the report as application/json"), []
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_REPORT_BYTES):
                return 413, _error(413, TOO_LARGE), []
            try:
                async with asyncio.timeout(self.body_timeout):  # (a timer, not a task as wait_for makes)
                    body = await _read(receive)
            except TimeoutError:
                return 408, _error(408, "The report did not arrive in time",
                                   [{"field": "body", "message": "send the whole body at once"}]), []
            if body is None:
                return 413, _error(413, TOO_LARGE), []
            ack = await self.agents.report(token, body)
            return 202, b'{"data":' + msgspec.json.encode(ack) + b"}", []
        except ServiceError as exc:
            status = (404 if isinstance(exc, NotFound) else 429 if isinstance(exc, Limited)
                      else 503 if isinstance(exc, Unavailable) else 400)
            errors = [{"field": e.field, "message": e.message} for e in exc.errors] if exc.errors else None
            extra = [(b"retry-after", str(exc.retry_after).encode())] if isinstance(exc, Limited) else []
            return status, _error(status, exc.reason, errors), extra
        except Exception:
            log.exception("unhandled error on an agent's report")
            return 500, _error(500, "Internal server error"), []


TOO_LARGE = f"Report larger than {MAX_REPORT_BYTES // 1024} KiB"
_JSON = [(b"content-type", b"application/json")]


async def _read(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes | None:
    """The request body, or None once it passes ``MAX_REPORT_BYTES`` (not read further)."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError  # (the client went away: nothing to answer)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REPORT_BYTES:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


def _error(status: int, reason: str, errors: list[dict[str, str]] | None = None) -> bytes:
    data: dict[str, Any] = {"reason": reason}
    if errors is not None:
        data["errors"] = errors
    return msgspec.json.encode({"statusCode": status, "statusMessage": HTTPStatus(status).phrase, "data": data})


async def _send(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, body: bytes,
                headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON, (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


@get("/agent/xuptime-agent.py", include_in_schema=False, media_type="text/x-python; charset=utf-8",
     cache_control=None)
async def agent_script() -> Response[bytes]:
    """The agent as one file (Python 3.8+, standard library only): what ``xuptime agent`` runs."""
    return Response(_SCRIPT, media_type="text/x-python; charset=utf-8",
                    headers={"Content-Disposition": 'inline; filename="xuptime-agent.py"'})


def _pct(used: Any, total: Any) -> float | None:
    return _round(used_percent(used, total))


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
    interval, limit, start, end, before = series_query(request.query_params, "metrics")
    if before is not None:  # (a cursor is the oldest time shown: exclusive)
        end = before - 1 if end is None else min(end, before - 1)
    rows, more = await agents.series(request.user, monitor_id, interval, start, end, limit)
    data = [_raw(r) for r in rows] if interval == "raw" else [_bucket(r) for r in rows]
    pagination = {"limit": limit, "nextCursor": encode_cursor(rows[-1][0]) if more and rows else None}
    return Response(msgspec.json.encode({"data": data, "pagination": pagination}), media_type=MediaType.JSON)
