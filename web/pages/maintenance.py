"""Maintenance in the dashboard: every window with its next occurrences (a calendar list of
the next 14 days), a form for one-off and recurring windows, and delete."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency as Named
from litestar.params import FromPath
from litestar.response import Redirect

from core.services import MaintenanceService, MonitorService, ServiceError
from core.services.maintenance import occurrences
from web.forms import field_errors
from web.render import page
from web.session import principal

__all__ = ["HANDLERS"]

DAYS = 14


def _form_data(form: Any) -> dict[str, Any]:
    """The form as the API's object: ``kind`` picks one-off or recurring fields."""
    data: dict[str, Any] = {"name": str(form.get("name") or "").strip(),
                            "monitors": [int(m) for m in form.getall("monitors", []) if str(m).isdigit()],
                            "tags": [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()]}
    if form.get("kind") == "recurring":
        duration = str(form.get("duration") or "").strip()
        data |= {"schedule": str(form.get("schedule") or "").strip(),
                 "timezone": str(form.get("timezone") or "").strip(),
                 "duration": int(duration) * 60 if duration.isdigit() else duration}
    else:
        data |= {"startsAt": _local(form.get("startsAt"), form.get("offset")),
                 "endsAt": _local(form.get("endsAt"), form.get("offset"))}
    return data


def _local(value: Any, offset: Any) -> str:
    """A ``datetime-local`` input's value with the UTC offset it was typed in (``+01:00``;
    UTC when not given) as ISO 8601."""
    value = str(value or "").strip()
    offset = str(offset or "").strip() or "+00:00"
    return f"{value}:00{offset}" if len(value) == 16 else value


async def _page(request: Request[Any, Any, Any], maintenance: MaintenanceService, monitors: MonitorService, *,
                values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                status: int = 200) -> Response[str]:
    who = principal(request)
    now = dt.datetime.now(dt.UTC)
    windows = sorted(maintenance.list(who), key=lambda w: w.id)
    names = {m.id: m.name for m in monitors.account_monitors(who)}
    calendar = []
    for window in windows:
        for began, ends in occurrences(window, now, now + dt.timedelta(days=DAYS))[:50]:
            calendar.append({"window": window, "startsAt": began, "endsAt": ends, "active": began <= now < ends,
                             "monitors": len(maintenance.covered(window))})
    calendar.sort(key=lambda c: c["startsAt"])
    return page(request, "maintenance.html", status=status, title="Maintenance", windows=windows,
                calendar=calendar, names=names, days=DAYS,
                values=values or {"kind": "once", "monitors": [], "timezone": "UTC"}, errors=errors or {})


@get("/maintenance", include_in_schema=False)
async def maintenance_list(request: Request[Any, Any, Any], maintenance: Named[MaintenanceService],
                           monitors: Named[MonitorService]) -> Response[str]:
    return await _page(request, maintenance, monitors)


@post("/maintenance", include_in_schema=False)
async def create_maintenance(request: Request[Any, Any, Any], maintenance: Named[MaintenanceService],
                             monitors: Named[MonitorService]) -> Response[Any]:
    form = await request.form()
    try:
        await maintenance.create(principal(request), _form_data(form))
    except ServiceError as exc:
        errors = field_errors(exc)
        if "duration" in errors:  # (the form asks for minutes)
            errors["duration"] = "must be a whole number of minutes, 1 to 10080"
        values = {k: v for k, v in form.items() if k != "_csrf"}
        values["monitors"] = [int(m) for m in form.getall("monitors", []) if str(m).isdigit()]
        return await _page(request, maintenance, monitors, values=values, errors=errors,
                           status=400)
    return Redirect("/maintenance", status_code=303)


@post("/maintenance/{window_id:int}/delete", include_in_schema=False)
async def delete_maintenance(request: Request[Any, Any, Any], window_id: FromPath[int],
                             maintenance: Named[MaintenanceService]) -> Redirect:
    await maintenance.delete(principal(request), window_id)
    return Redirect("/maintenance", status_code=303)


HANDLERS = [maintenance_list, create_maintenance, delete_maintenance]
