"""Monitors: the list (live), the forms for every kind, a monitor's page and its chart data,
and the one Server-Sent Events stream a page listens to."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncGenerator
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency as Named
from litestar.params import FromPath
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage
from markupsafe import Markup

from core.models import KINDS, STATUSES, TOKEN_KINDS, Monitor, monitor_to_wire
from core.models.agents import AgentReport, disk_percent, used_percent
from core.services import AgentService, HistoryService, IntegrationService, MonitorService, ServiceError
from web.forms import COMMON, KIND_FIELDS, KIND_LABELS, field_errors, form_to_monitor, monitor_values, posted_values
from web.render import bars as bars_markup
from web.render import fragment, page
from web.session import principal

__all__ = ["HANDLERS"]

PAGE = 25
#: Chart ranges: (seconds, bucket seconds or 0 for raw checks, most points).
RANGES = {"1h": (3600, 0, 3600), "24h": (86400, 300, 288), "7d": (7 * 86400, 3600, 168),
          "30d": (30 * 86400, 6 * 3600, 120)}
UPTIME_WINDOWS = [("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400), ("1y", 365 * 86400)]
KEEPALIVE_S = 15.0


def _row(monitors: MonitorService, monitor: Monitor) -> dict[str, Any]:
    bars, uptime = monitors.recent(monitor)
    last = monitors.last_check(monitor.id)
    # (a push or agent monitor's target is its token's URL: the credential, shown only where it is explained)
    target = monitor.spec.target() if monitor.spec is not None and monitor.type not in TOKEN_KINDS else ""
    return {"monitor": monitor, "target": target,
            "bars": bars_markup(bars),
            "uptime": uptime, "last_at": last[0] // 10**6 if last else None,
            "last_ms": last[1] / 1000 if last else None}


class TableCache:
    """The monitors list's table, rendered, kept for the rest of the second it was made in
    and only while no status changed and no monitor came or went (``MonitorService.version``):
    a wall of screens on one list, or one user's quick reloads, costs one render a second.
    What it shows is at most a second old; the live stream corrects statuses at once."""

    def __init__(self, size: int = 256) -> None:
        self._entries: collections.OrderedDict[tuple[Any, ...], tuple[tuple[int, int], Markup]] = (
            collections.OrderedDict())
        self.size = size
        self.hits = self.renders = 0

    def get(self, key: tuple[Any, ...], stamp: tuple[int, int]) -> Markup | None:
        found = self._entries.get(key)
        if found is None or found[0] != stamp:
            return None
        self.hits += 1
        return found[1]

    def put(self, key: tuple[Any, ...], stamp: tuple[int, int], html: Markup) -> None:
        self.renders += 1
        self._entries[key] = (stamp, html)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


@get("/monitors", include_in_schema=False)
async def monitor_list(request: Request[Any, Any, Any], monitors: Named[MonitorService], tables: Named[TableCache],
                       status: str | None = None,
                       type: str | None = None, tag: str | None = None, q: str | None = None,
                       after: int = 0) -> Response[str]:
    who = principal(request)
    filters = {"status": status or None, "type": type or None, "tag": (tag or "").strip() or None,
               "q": (q or "").strip() or None}
    now = int(time.time())
    key = (who.account_id, who.may("editor"), *filters.values(), max(after, 0))
    stamp = (monitors.version(), now)
    table = tables.get(key, stamp)
    found, total, more = monitors.page(who, max(after, 0), PAGE, status=filters["status"], kind=filters["type"],
                                       tag=filters["tag"], q=filters["q"]) if table is None else ([], 0, False)
    if table is None:
        rows = [_row(monitors, m) for m, _ in found]
        table = fragment("_monitor_table.html", session=request.state.web_session, rows=rows, total=total,
                         more=more, next_after=found[-1][0].id if found and more else None, filters=filters,
                         now=now)
        tables.put(key, stamp, table)
    return page(request, "monitors.html", title="Monitors", table=table, total=monitors.count(who), filters=filters,
                statuses=STATUSES, kinds=KIND_LABELS, counts=monitors.status_counts(who))


def _defaults(kind: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in (*msgspec.structs.fields(Monitor), *msgspec.structs.fields(KINDS[kind])):
        if f.name in ("id", "account_id", "status", "paused", "spec", "push_token", "agent_token", "thresholds"):
            continue
        if f.default is not msgspec.NODEFAULT:
            values[f.encode_name] = f.default
        elif f.default_factory is not msgspec.NODEFAULT:
            values[f.encode_name] = f.default_factory()
    return monitor_values(values)


def _form(request: Request[Any, Any, Any], channels: IntegrationService, *, kind: str, values: dict[str, Any],
          errors: dict[str, str], monitor: Monitor | None = None, status: int = 200) -> Response[str]:
    mine, _, _ = channels.page(principal(request), 0, 1000)
    title = f"Edit {monitor.name}" if monitor is not None else f"New {KIND_LABELS[kind]} monitor"
    return page(request, "monitor_form.html", status=status, title=title, kind=kind, kinds=KIND_LABELS,
                common=COMMON, fields=KIND_FIELDS[kind], values=values, errors=errors, monitor=monitor,
                channels=mine)


@get("/monitors/new", include_in_schema=False)
async def new_monitor(request: Request[Any, Any, Any], channels: Named[IntegrationService],
                      type: str = "http") -> Response[str]:
    kind = type if type in KINDS else "http"
    principal(request)
    return _form(request, channels, kind=kind, values=_defaults(kind), errors={})



@post("/monitors/new", include_in_schema=False)
async def create_monitor(request: Request[Any, Any, Any], monitors: Named[MonitorService],
                         channels: Named[IntegrationService]) -> Response[Any]:
    form = await request.form()
    kind = form.get("type") if form.get("type") in KINDS else "http"
    data, problems = form_to_monitor(form, kind, editing=False)
    if problems:
        return _form(request, channels, kind=kind, values=posted_values(form), status=400,
                     errors={e.field: e.message for e in problems})
    try:
        monitor, _ = await monitors.create(principal(request), data)
    except ServiceError as exc:
        return _form(request, channels, kind=kind, values=posted_values(form), errors=field_errors(exc), status=400)
    return Redirect(f"/monitors/{monitor.id}", status_code=303)



@get("/monitors/{monitor_id:int}", include_in_schema=False)
async def monitor_page(request: Request[Any, Any, Any], monitor_id: FromPath[int], monitors: Named[MonitorService],
                       history: Named[HistoryService], agents: Named[AgentService]) -> Response[str]:
    who = principal(request)
    monitor, times = await monitors.get(who, monitor_id)
    uptime, (incidents, _, _), (checks, _) = await asyncio.gather(
        history.uptime(who, monitor_id, UPTIME_WINDOWS),
        history.incidents(who, None, 10, monitor_id),
        history.raw(who, monitor_id, None, None, None, 20))
    recent = [{"at": r[0] // 10**6, "ok": r[1], "ms": r[2] / 1000 if r[2] is not None else None,
               "status": r[3], "error": r[4]} for r in checks]
    wire = monitor_to_wire(monitor)
    push_url = agent = None
    if monitor.type == "push":
        push_url = f"{request.base_url}api/push/{wire.get('pushToken')}"
    if monitor.type == "agent":
        agent = _agent_view(str(request.base_url).rstrip("/"), wire["agentToken"], agents.newest(who, monitor_id))
    return page(request, "monitor.html", title=monitor.name, row=_row(monitors, monitor), times=times,
                uptime=uptime, incidents=incidents, checks=recent, ranges=list(RANGES), push_url=push_url,
                agent=agent, wire=wire, now=int(time.time()))


def _agent_view(base: str, token: str, newest: tuple[int, AgentReport] | None) -> dict[str, Any]:
    """What the page shows of an agent: its newest report, and how to install it (a one-line
    run of the served file, and a systemd unit that keeps the token out of the process list)."""
    install = (f"curl -fsSO {base}/agent/xuptime-agent.py && XUPTIME_AGENT_TOKEN={token} "
               f"python3 xuptime-agent.py --server {base}")
    unit = AGENT_UNIT.format(base=base)
    env = f"XUPTIME_AGENT_TOKEN={token}"
    report = None
    if newest is not None:
        ts_us, r = newest
        report = {"at": ts_us // 10**6, "r": r, "memory": r.memory_percent,
                  "disks": [(d.mount, disk_percent(d), d.used_bytes, d.total_bytes) for d in r.disks]}
    return {"install": install, "unit": unit, "env": env, "report": report, "base": base}


AGENT_UNIT = """# /etc/systemd/system/xuptime-agent.service
# with the agent at /usr/local/lib/xuptime-agent.py:
#   curl -fsS {base}/agent/xuptime-agent.py -o /usr/local/lib/xuptime-agent.py
# and the token in /etc/xuptime-agent.env (chmod 600), then:
#   systemctl daemon-reload && systemctl enable --now xuptime-agent
[Unit]
Description=xuptime agent
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/xuptime-agent.py --server {base}
EnvironmentFile=/etc/xuptime-agent.env
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
Restart=on-failure
RestartSec=10
# exit status 2: the server does not know the token; restarting cannot help
RestartPreventExitStatus=2

[Install]
WantedBy=multi-user.target
"""

#: Agent chart ranges: (seconds, metrics interval).
AGENT_RANGES = {"1h": (3600, "raw"), "24h": (86400, "5m"), "7d": (7 * 86400, "1h"), "30d": (30 * 86400, "1d")}


@get("/monitors/{monitor_id:int}/agent-chart", include_in_schema=False)
async def agent_chart(request: Request[Any, Any, Any], monitor_id: FromPath[int], agents: Named[AgentService],
                      range: str = "24h") -> dict[str, Any]:
    """An agent's series for one range, oldest first: CPU, memory and swap in percent, load,
    network in bytes a second, and each disk's percent (raw reports for 1 h, else averages,
    a disk's fullest). Times in seconds."""
    span, interval = AGENT_RANGES.get(range, AGENT_RANGES["24h"])
    now_us = time.time_ns() // 1000
    start = now_us - span * 10**6
    rows, _ = await agents.series(principal(request), monitor_id, interval, start, None, 1000)
    rows.reverse()
    mounts: dict[str, list[float | None]] = {}
    out: dict[str, Any] = {"from": start / 1e6, "to": now_us / 1e6, "ts": [r[0] / 1e6 for r in rows]}
    if interval == "raw":
        out.update(cpu=[r[1] for r in rows], memory=[used_percent(r[2], r[3]) for r in rows],
                   swap=[used_percent(r[4], r[5]) for r in rows], load=[r[6] for r in rows],
                   rx=[r[9] for r in rows], tx=[r[10] for r in rows])
        disks = [{d["mount"]: used_percent(d["used"], d["total"]) for d in r[13] or []} for r in rows]
    else:
        out.update(cpu=[r[2] for r in rows], memory=[r[4] for r in rows], swap=[r[6] for r in rows],
                   load=[r[7] for r in rows], rx=[r[9] for r in rows], tx=[r[10] for r in rows])
        disks = [{d[0]: d[1] for d in r[12]} for r in rows]
    for i, found in enumerate(disks):
        for mount, value in found.items():
            mounts.setdefault(mount, [None] * len(rows))[i] = value
    out["disks"] = mounts
    return out


@get("/monitors/{monitor_id:int}/chart", include_in_schema=False)
async def monitor_chart(request: Request[Any, Any, Any], monitor_id: FromPath[int], history: Named[HistoryService],
                        range: str = "24h") -> dict[str, Any]:
    """Chart data for one range: raw checks with their phases (1 h), else buckets with
    average and percentile latency and uptime. Times in seconds, latencies in ms."""
    who = principal(request)
    span, bucket, most = RANGES.get(range, RANGES["24h"])
    now_us = time.time_ns() // 1000
    start = now_us - span * 10**6
    window = {"from": start / 1e6, "to": now_us / 1e6}
    if bucket == 0:
        rows, _ = await history.raw(who, monitor_id, start, None, None, most)
        rows.reverse()

        def ms(i: int) -> list[float | None]:
            return [r[i] / 1000 if r[i] is not None else None for r in rows]

        return {**window, "kind": "raw", "ts": [r[0] / 1e6 for r in rows], "latency": ms(2), "dns": ms(5),
                "connect": ms(6), "tls": ms(7), "ttfb": ms(8), "ok": [bool(r[1]) for r in rows]}
    rows, _ = await history.buckets(who, monitor_id, bucket, start, None, None, most)
    rows.reverse()
    return {**window, "kind": "buckets", "ts": [r[0] / 1e6 for r in rows],
            "avg": [r[3] / 1000 if r[3] is not None else None for r in rows],
            "p95": [r[6][1] / 1000 if r[6] and r[6][1] is not None else None for r in rows],
            "p99": [r[6][2] / 1000 if r[6] and r[6][2] is not None else None for r in rows],
            "uptime": [r[2] / r[1] if r[1] else None for r in rows]}


@get("/monitors/{monitor_id:int}/edit", include_in_schema=False)
async def edit_monitor(request: Request[Any, Any, Any], monitor_id: FromPath[int], monitors: Named[MonitorService],
                       channels: Named[IntegrationService]) -> Response[str]:
    monitor, _ = await monitors.get(principal(request), monitor_id)
    return _form(request, channels, kind=monitor.type, values=monitor_values(monitor_to_wire(monitor)), errors={},
                 monitor=monitor)


@post("/monitors/{monitor_id:int}/edit", include_in_schema=False)
async def update_monitor(request: Request[Any, Any, Any], monitor_id: FromPath[int], monitors: Named[MonitorService],
                         channels: Named[IntegrationService]) -> Response[Any]:
    who = principal(request)
    monitor, _ = await monitors.get(who, monitor_id)
    form = await request.form()
    data, problems = form_to_monitor(form, monitor.type, editing=True)
    if problems:
        return _form(request, channels, kind=monitor.type, values=posted_values(form), monitor=monitor, status=400,
                     errors={e.field: e.message for e in problems})
    try:
        await monitors.update(who, monitor_id, data)
    except ServiceError as exc:
        return _form(request, channels, kind=monitor.type, values=posted_values(form), monitor=monitor,
                     errors=field_errors(exc), status=400)
    return Redirect(f"/monitors/{monitor_id}", status_code=303)


@post("/monitors/{monitor_id:int}/pause", include_in_schema=False)
async def pause_monitor(request: Request[Any, Any, Any], monitor_id: FromPath[int],
                        monitors: Named[MonitorService]) -> Redirect:
    await monitors.set_paused(principal(request), monitor_id, True)
    return Redirect(f"/monitors/{monitor_id}", status_code=303)


@post("/monitors/{monitor_id:int}/resume", include_in_schema=False)
async def resume_monitor(request: Request[Any, Any, Any], monitor_id: FromPath[int],
                         monitors: Named[MonitorService]) -> Redirect:
    await monitors.set_paused(principal(request), monitor_id, False)
    return Redirect(f"/monitors/{monitor_id}", status_code=303)


@post("/monitors/{monitor_id:int}/delete", include_in_schema=False)
async def delete_monitor(request: Request[Any, Any, Any], monitor_id: FromPath[int],
                         monitors: Named[MonitorService]) -> Redirect:
    await monitors.delete(principal(request), monitor_id)
    return Redirect("/monitors", status_code=303)


@get("/live", include_in_schema=False)
async def live(request: Request[Any, Any, Any], monitors: Named[MonitorService]) -> ServerSentEvent:
    """The page's one stream of its account's status changes (``status``, ``created``,
    ``deleted``, ``resync`` events, JSON data), with a comment every 15 s to keep it open.
    It starts after the page's mark (``?after=``, rendered into the page) or, reconnecting,
    after the last event the page had (``Last-Event-ID``): nothing in between is missed."""
    who = principal(request)
    after = request.headers.get("last-event-id") or request.query_params.get("after")
    boot = monitors.live_mark(who).partition(".")[0]

    async def events() -> AsyncGenerator[ServerSentEventMessage, None]:
        with monitors.watch(who, after) as queue:
            yield ServerSentEventMessage(comment="connected", retry=3000)
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                seq = event.get("seq")
                yield ServerSentEventMessage(event=event["event"], data=msgspec.json.encode(event).decode(),
                                             id=None if seq is None else f"{boot}.{seq}")

    return ServerSentEvent(events(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


HANDLERS = [monitor_list, new_monitor, create_monitor, monitor_page, monitor_chart, agent_chart, edit_monitor,
            update_monitor, pause_monitor, resume_monitor, delete_monitor, live]
