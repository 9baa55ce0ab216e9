"""Status pages: the editors' side (pages, posted incidents and their updates) and the
public side (what ``/status/{slug}``, its ``.json``, its feed and the badges show).

The public view holds names and states only: never a target, host, address, error text or
token. It is computed at most once every ``VIEW_TTL_S`` seconds per page (and again at once
after the page or its incidents change), so an outage's crowd costs one computation per
page every few seconds; the 90 daily bars come from the hourly rollups (cached for
``DAYS_TTL_S``) plus today's open hours from memory.

The overall banner, from the page's monitors (paused ones left out) and its posted
incidents: ``major_outage`` when at least half are down; ``partial_outage`` when some are;
``maintenance`` when none is down and some are in maintenance; ``degraded`` when none is
down but a posted incident is not resolved; else ``operational``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import TYPE_CHECKING, Any

import msgspec

from core.clock import iso_seconds
from core.models import INCIDENT_STATES, FieldError, Monitor, PageIncident, PageSection, StatusPage
from core.services.access import Actor, account_of
from core.services.context import Catalog, StoreThreads
from core.services.errors import Conflict, Invalid, NotFound

if TYPE_CHECKING:
    from core.services.maintenance import MaintenanceService
    from core.services.monitors import MonitorService
    from core.storage.base import Store

__all__ = ["BANNERS", "StatusPageService"]

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
DAYS = 90
VIEW_TTL_S = 5.0
DAYS_TTL_S = 300.0
MAX_SECTIONS = 20
MAX_MONITORS = 1000  # on one page, over all its sections
PAST_INCIDENT_DAYS = 14  # resolved posted incidents shown this long
BANNERS = ("operational", "degraded", "partial_outage", "major_outage", "maintenance")
_FIELDS = {"slug", "title", "description", "sections", "public"}


class StatusPageService:
    """Status pages of every account (a few per account: kept in memory, written through)."""

    def __init__(self, store: Store, threads: StoreThreads, monitors: MonitorService, catalog: Catalog,
                 maintenance: MaintenanceService | None = None) -> None:
        self.store = store
        self.maintenance = maintenance
        self.threads = threads
        self.monitors = monitors
        self.catalog = catalog
        self._pages: dict[int, StatusPage] = {}
        self._views: dict[int, tuple[float, dict[str, Any]]] = {}  # page id -> (made at, view)
        self._days: dict[int, tuple[float, dict[int, list[tuple]]]] = {}  # page id -> (made at, rolled days)
        self._incidents: dict[int, list[PageIncident]] = {}

    async def load(self) -> None:
        self._pages = {p.id: p for p in await self.threads.write(self.store.list_status_pages)}
        self._views.clear()

    # editors' side -------------------------------------------------------------------------
    def list(self, actor: Actor) -> list[StatusPage]:
        account_id = account_of(actor)
        return [p for p in self._pages.values() if p.account_id == account_id]

    def get(self, actor: Actor, page_id: int) -> StatusPage:
        account_id = account_of(actor)
        page = self._pages.get(page_id)
        if page is None or page.account_id != account_id:
            raise NotFound("Status page not found")
        return page

    async def create(self, actor: Actor, data: Any) -> StatusPage:
        account_id = account_of(actor, "editor")
        page = self._parse(account_id, data, None)
        created = await self.threads.write(self._insert, page)
        self._pages[created.id] = created
        return created

    def _insert(self, page: StatusPage) -> StatusPage:
        if any(p.slug == page.slug for p in self.store.list_status_pages()):
            raise Conflict("Slug already in use", [FieldError("slug", "is used by another status page")])
        return self.store.create_status_page(page)

    async def update(self, actor: Actor, page_id: int, data: Any) -> StatusPage:
        account_id = account_of(actor, "editor")
        current = self.get(account_id, page_id)
        page = self._parse(account_id, data, current)
        if any(p.slug == page.slug and p.id != page_id for p in self._pages.values()):
            raise Conflict("Slug already in use", [FieldError("slug", "is used by another status page")])
        updated = await self.threads.write(self.store.update_status_page, page)
        if updated is None:
            raise NotFound("Status page not found")
        self._pages[page_id] = updated
        self._forget(page_id)
        self._days.pop(page_id, None)  # (its monitors may have changed)
        return updated

    async def delete(self, actor: Actor, page_id: int) -> None:
        account_id = account_of(actor, "editor")
        self.get(account_id, page_id)
        if not await self.threads.write(self.store.delete_status_page, account_id, page_id):
            raise NotFound("Status page not found")
        self._pages.pop(page_id, None)
        self._forget(page_id)
        self._incidents.pop(page_id, None)

    def _parse(self, account_id: int, data: Any, current: StatusPage | None) -> StatusPage:
        if not isinstance(data, dict):
            raise Invalid("Invalid status page", [FieldError("body", "must be a JSON object")])
        errors = [FieldError(k, "unknown field") for k in data if k not in _FIELDS]
        base = ({"slug": current.slug, "title": current.title, "description": current.description,
                 "sections": msgspec.to_builtins(current.sections), "public": current.public}
                if current is not None else {"description": None, "sections": [], "public": True})
        merged = {**base, **{k: v for k, v in data.items() if k in _FIELDS}}
        slug, title, description = merged.get("slug"), merged.get("title"), merged.get("description")
        if not isinstance(slug, str) or not SLUG.fullmatch(slug):
            errors.append(FieldError("slug", "must be 1 to 64 lowercase letters, digits and dashes, "
                                             "not starting or ending with a dash"))
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
            errors.append(FieldError("title", "must be a string of 1 to 200 characters"))
        if description is not None and (not isinstance(description, str) or len(description) > 2000):
            errors.append(FieldError("description", "must be a string of at most 2000 characters, or null"))
        if not isinstance(merged.get("public"), bool):
            errors.append(FieldError("public", "must be true or false"))
        sections: list[PageSection] = []
        raw = merged.get("sections")
        if not isinstance(raw, list) or len(raw) > MAX_SECTIONS:
            errors.append(FieldError("sections", f"must be a list of at most {MAX_SECTIONS} sections"))
        else:
            mine = set(self.catalog.account_ids.get(account_id, ()))
            for i, item in enumerate(raw):
                try:
                    section = msgspec.convert(item, PageSection)
                except msgspec.ValidationError as exc:
                    errors.append(FieldError(f"sections[{i}]", f"{exc} (a section is {{\"name\", \"monitors\"}})"))
                    continue
                unknown = [m for m in section.monitors if m not in mine]
                if unknown:
                    errors.append(FieldError(f"sections[{i}].monitors",
                                             f"no such monitor: {', '.join(map(str, unknown))}"))
                sections.append(section)
            if sum(len(s.monitors) for s in sections) > MAX_MONITORS:
                errors.append(FieldError("sections", f"at most {MAX_MONITORS} monitors on one page"))
        if errors:
            raise Invalid("Invalid status page", errors)
        return StatusPage(id=current.id if current else 0, account_id=account_id, slug=slug, title=title.strip(),
                          description=description, sections=sections, public=merged["public"],
                          created_at=current.created_at if current else None)

    # posted incidents ----------------------------------------------------------------------
    async def incidents(self, actor: Actor, page_id: int) -> list[PageIncident]:
        self.get(actor, page_id)
        return await self._page_incidents(page_id)

    async def _page_incidents(self, page_id: int) -> list[PageIncident]:
        found = self._incidents.get(page_id)
        if found is None:
            found = self._incidents[page_id] = await self.threads.write(self.store.page_incidents, page_id, 50)
        return found

    async def post_incident(self, actor: Actor, page_id: int, data: Any) -> PageIncident:
        """A new posted incident with its first update (``title``, ``status``, ``message``)."""
        self.get(account_of(actor, "editor"), page_id)
        title, status, message = _incident_fields(data, with_title=True)
        incident = await self.threads.write(self.store.post_page_incident, page_id, title, status, message)
        self._incidents.pop(page_id, None)
        self._forget(page_id)
        return incident

    async def add_update(self, actor: Actor, page_id: int, incident_id: int, data: Any) -> PageIncident:
        """A new update (``status``, ``message``): the incident moves to that status."""
        self.get(account_of(actor, "editor"), page_id)
        _, status, message = _incident_fields(data, with_title=False)
        incident = await self.threads.write(self.store.update_page_incident, page_id, incident_id, status, message)
        if incident is None:
            raise NotFound("Incident not found")
        self._incidents.pop(page_id, None)
        self._forget(page_id)
        return incident

    async def delete_incident(self, actor: Actor, page_id: int, incident_id: int) -> None:
        self.get(account_of(actor, "editor"), page_id)
        if not await self.threads.write(self.store.delete_page_incident, page_id, incident_id):
            raise NotFound("Incident not found")
        self._incidents.pop(page_id, None)
        self._forget(page_id)

    def _forget(self, page_id: int) -> None:
        self._views.pop(page_id, None)

    # public side ---------------------------------------------------------------------------
    def by_slug(self, slug: str) -> StatusPage | None:
        """The public page with this slug (None when there is none, or it is not public)."""
        return next((p for p in self._pages.values() if p.slug == slug and p.public), None)

    def public_monitor(self, monitor_id: int) -> Monitor | None:
        """The monitor, if it is shown on a public page (badges exist for those only)."""
        if not any(p.public and monitor_id in p.monitor_ids() for p in self._pages.values()):
            return None
        return self.monitors.engine.monitors.get(monitor_id)

    def _windows(self, page: StatusPage) -> dict[str, list[dict[str, Any]]]:
        """Active and upcoming (7 days) maintenance of the page's monitors: names and times."""
        if self.maintenance is None:
            return {"active": [], "upcoming": []}
        return _split(self.maintenance.schedule_of(page.account_id, set(page.monitor_ids()), dt.datetime.now(dt.UTC)))

    async def view(self, page: StatusPage) -> dict[str, Any]:
        """What the public sees of ``page`` (computed at most every ``VIEW_TTL_S`` seconds)."""
        now = time.monotonic()
        cached = self._views.get(page.id)
        if cached is not None and now - cached[0] < VIEW_TTL_S:
            return cached[1]
        view = await self._compute(page)
        self._views[page.id] = (now, view)
        return view

    async def preview(self, actor: Actor, data: Any, page_id: int | None = None) -> dict[str, Any]:
        """What the public would see of a page with these fields (a new one, or ``page_id``
        changed so), without saving anything; field errors as ``Invalid``."""
        account_id = account_of(actor, "editor")
        current = self.get(account_id, page_id) if page_id is not None else None
        page = self._parse(account_id, data, current)
        return await self._compute(page, cached=False)

    async def _compute(self, page: StatusPage, *, cached: bool = True) -> dict[str, Any]:
        ids = page.monitor_ids()
        rolled = self._days.get(page.id) if cached else None
        if rolled is None or time.monotonic() - rolled[0] >= DAYS_TTL_S:
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            rolled = (time.monotonic(), await self.threads.read(self.store.daily_uptime, ids, DAYS, now))
            if cached:
                self._days[page.id] = rolled
        today = dt.datetime.now(dt.UTC).date()
        today_us = int(dt.datetime.combine(today, dt.time(), dt.UTC).timestamp()) * 10**6
        open_from = max(today_us, self.store.rollup_upto_us or today_us)
        live = self.monitors.engine.monitors
        sections, counted = [], []
        for section in page.sections:
            shown = []
            for monitor_id in section.monitors:
                monitor = live.get(monitor_id)
                if monitor is None:
                    continue
                days = _bars(rolled[1].get(monitor_id, []), self.catalog.recent.since(monitor_id, open_from), today)
                checks = sum(d["checks"] for d in days)
                up = sum(d["up"] for d in days)
                shown.append({"id": monitor.id, "name": monitor.name, "status": monitor.status,
                              "uptime90d": round(up / checks, 5) if checks else None,
                              "days": [{k: v for k, v in d.items() if k not in ("checks", "up")} for d in days]})
                if not monitor.paused:
                    counted.append(monitor.status)
            sections.append({"name": section.name, "monitors": shown})
        incidents = await self._page_incidents(page.id) if page.id else []
        cutoff = iso_seconds((time.time() - PAST_INCIDENT_DAYS * 86400) * 10**6)
        active = [i for i in incidents if i.status != "resolved"]
        past = [i for i in incidents if i.status == "resolved" and (i.resolved_at or "") >= cutoff]
        return {"page": {"slug": page.slug, "title": page.title, "description": page.description},
                "status": _banner(counted, bool(active)), "updatedAt": iso_seconds(time.time_ns() // 1000),
                "sections": sections,
                "incidents": {"active": msgspec.to_builtins(active), "past": msgspec.to_builtins(past)},
                "maintenance": self._windows(page)}


def _split(windows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Active and upcoming windows apart, without their ``active`` flag."""
    out: dict[str, list[dict[str, Any]]] = {"active": [], "upcoming": []}
    for window in windows:
        out["active" if window.pop("active") else "upcoming"].append(window)
    return out


def _incident_fields(data: Any, *, with_title: bool) -> tuple[str, str, str]:
    if not isinstance(data, dict):
        raise Invalid("Invalid incident", [FieldError("body", "must be a JSON object")])
    allowed = {"title", "status", "message"} if with_title else {"status", "message"}
    errors = [FieldError(k, "unknown field") for k in data if k not in allowed]
    title = data.get("title", "")
    if with_title and (not isinstance(title, str) or not 1 <= len(title.strip()) <= 200):
        errors.append(FieldError("title", "must be a string of 1 to 200 characters"))
    status = data.get("status", "investigating")
    if status not in INCIDENT_STATES:
        errors.append(FieldError("status", f"must be one of {', '.join(INCIDENT_STATES)}"))
    message = data.get("message")
    if not isinstance(message, str) or not 1 <= len(message.strip()) <= 5000:
        errors.append(FieldError("message", "must be a string of 1 to 5000 characters"))
    if errors:
        raise Invalid("Invalid incident", errors)
    return (title.strip() if with_title else ""), status, message.strip()


def _bars(rolled: list[tuple], open_hours: tuple[int, int], today: dt.date) -> list[dict[str, Any]]:
    """``DAYS`` daily entries, oldest first: date, uptime (None: no checks), incidents started
    and downtime seconds; today's rolled hours plus its open ones from memory."""
    by_day = {row[0]: row for row in rolled}
    out = []
    for back in range(DAYS - 1, -1, -1):
        day = today - dt.timedelta(days=back)
        _, checks, up, incidents, down_s = by_day.get(day, (day, 0, 0, 0, 0.0))
        if back == 0:
            checks, up = checks + open_hours[0], up + open_hours[1]
        out.append({"date": day.isoformat(), "checks": checks, "up": up,
                    "uptime": round(up / checks, 5) if checks else None, "incidents": incidents,
                    "downtimeSeconds": round(down_s)})
    return out


def _banner(statuses: list[str], posted_active: bool) -> str:
    down = sum(1 for s in statuses if s == "down")
    if statuses and down * 2 >= len(statuses) and down:
        return "major_outage"
    if down:
        return "partial_outage"
    if any(s == "maintenance" for s in statuses):
        return "maintenance"
    return "degraded" if posted_active else "operational"
