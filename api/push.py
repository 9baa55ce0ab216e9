"""``/api/push/{token}``: heartbeats for push monitors (GET or POST).

Public like a status page: the token in the URL is the credential, so no API key and no quota.
``?status=up|down`` (default ``up``), ``msg`` (the reason shown when down, up to 500
characters), ``ping`` (milliseconds, reported as the check's latency). Answers
``{"ok": true}``; an unknown token is a 404 and a bad parameter a 400, in the error shape.

``/api/push/{token}/start`` (GET or POST) says the job started: the next ping without ``ping``
reports the time since as its latency (the job's run time).
"""

from __future__ import annotations

import math
from typing import Any

from litestar import Request, route
from litestar.di import NamedDependency as Named
from litestar.params import FromPath

from api.errors import BadRequest
from core.services import MonitorService

__all__ = ["push_heartbeat", "push_start"]


@route("/api/push/{token:str}", http_method=["GET", "POST"], include_in_schema=False,
       status_code=200)
async def push_heartbeat(request: Request[Any, Any, Any], monitors: Named[MonitorService],
                         token: FromPath[str]) -> dict[str, Any]:
    """Tell a push monitor that its job ran (or failed)."""
    params = request.query_params
    errors = []
    status = params.get("status", "up")
    if status not in ("up", "down"):
        errors.append({"field": "status", "message": "must be up or down"})
    msg = params.get("msg") or None
    if msg is not None and len(msg) > 500:
        errors.append({"field": "msg", "message": "must be at most 500 characters"})
    ping = None
    if params.get("ping"):
        try:
            ping = float(params["ping"])
        except ValueError:
            ping = math.nan
        if not math.isfinite(ping) or ping < 0:
            errors.append({"field": "ping", "message": "must be a number of milliseconds"})
    if errors:
        raise BadRequest("Invalid push", errors)
    await monitors.push(token, status == "up", msg, ping)
    return {"ok": True}


@route("/api/push/{token:str}/start", http_method=["GET", "POST"], include_in_schema=False, status_code=200)
async def push_start(monitors: Named[MonitorService], token: FromPath[str]) -> dict[str, Any]:
    """Tell a push monitor that its job started (its next ping measures the run)."""
    monitors.push_start(token)
    return {"ok": True}
