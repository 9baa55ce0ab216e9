"""Maintenance windows: when they are, and which monitors they cover.

A window is one-off (``startsAt`` to ``endsAt``) or recurring: a five-field cron
``schedule`` read in an IANA ``timezone`` (croniter, so a daily 03:00 in Europe/Berlin is at
03:00 Berlin time on both sides of a DST change), each occurrence lasting ``duration``
seconds. It covers the monitors it names and the account's monitors carrying any of its
``tags`` (today's monitors: a monitor tagged later is covered from then on). A local time
that does not exist when clocks go forward starts at the next one that does (croniter's
rule); one that happens twice when they go back starts once, at its first.

The clock is a parameter everywhere (``now``, UTC), so the rules are tested with a fake one.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import TYPE_CHECKING, Any

import msgspec
from croniter import croniter

from core.models import FieldError, Maintenance, Transition
from core.services.access import Actor, account_of
from core.services.context import Catalog, StoreThreads
from core.services.errors import Invalid, NotFound

if TYPE_CHECKING:
    from core.engine.table import MonitorTable
    from core.services.monitors import MonitorService
    from core.storage.base import Store

__all__ = ["MaintenanceGate", "MaintenanceService", "occurrences"]

MIN_DURATION, MAX_DURATION = 60, 7 * 86400
MAX_ONE_OFF = 31 * 86400
_FIELDS = {"name", "monitors", "tags", "startsAt", "endsAt", "schedule", "duration", "timezone"}


def _utc(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def schedule_problems(schedule: Any, timezone: Any) -> list[FieldError]:
    """A five-field cron expression (croniter's dialect) and an IANA time zone, as a recurring
    maintenance window and a cron heartbeat take them."""
    errors = []
    if not isinstance(schedule, str) or len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        errors.append(FieldError("schedule", "must be a five-field cron expression, e.g. '0 3 * * 0'"))
    try:
        valid_zone = isinstance(timezone, str) and bool(timezone) and zoneinfo.ZoneInfo(timezone) is not None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        valid_zone = False
    if not valid_zone:
        errors.append(FieldError("timezone", "must be an IANA time zone, e.g. Europe/Berlin or UTC"))
    return errors


def occurrences(window: Maintenance, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The window's occurrences that overlap ``[start, end)`` (aware UTC datetimes), in order."""
    if window.schedule is None:
        if window.starts_at is None or window.ends_at is None:
            return []
        s, e = _utc(window.starts_at), _utc(window.ends_at)
        return [(s, e)] if s < end and e > start else []
    assert window.duration is not None and window.timezone is not None
    zone = zoneinfo.ZoneInfo(window.timezone)
    span = dt.timedelta(seconds=window.duration)
    fires = croniter(window.schedule, (start - span).astimezone(zone))
    out = []
    last_wall = None
    for _ in range(10_000):  # (bounded: a one-minute schedule over a week)
        fired = fires.get_next(dt.datetime)
        wall = fired.astimezone(zone).replace(tzinfo=None)
        if wall == last_wall:  # (a wall-clock time that happens twice when clocks go back: once, as cron does)
            continue
        last_wall = wall
        began = fired.astimezone(dt.UTC)
        if began >= end:
            break
        if began + span > start:
            out.append((began, began + span))
    return out


class MaintenanceService:
    """Every account's windows (few: kept in memory, written through)."""

    def __init__(self, store: Store, threads: StoreThreads, monitors: MonitorService, catalog: Catalog) -> None:
        self.store = store
        self.threads = threads
        self.monitors = monitors
        self.catalog = catalog
        self._windows: dict[int, Maintenance] = {}

    async def load(self) -> None:
        self._windows = {w.id: w for w in await self.threads.write(self.store.list_maintenance)}

    # CRUD ------------------------------------------------------------------------------------
    def list(self, actor: Actor) -> list[Maintenance]:
        account_id = account_of(actor)
        return [w for w in self._windows.values() if w.account_id == account_id]

    def get(self, actor: Actor, window_id: int) -> Maintenance:
        account_id = account_of(actor)
        window = self._windows.get(window_id)
        if window is None or window.account_id != account_id:
            raise NotFound("Maintenance window not found")
        return window

    async def create(self, actor: Actor, data: Any) -> Maintenance:
        account_id = account_of(actor, "editor")
        window = self.parse(account_id, data, None)
        saved = await self.threads.write(self.store.save_maintenance, window)
        assert saved is not None
        self._windows[saved.id] = saved
        return saved

    async def update(self, actor: Actor, window_id: int, data: Any) -> Maintenance:
        account_id = account_of(actor, "editor")
        window = self.parse(account_id, data, self.get(account_id, window_id))
        saved = await self.threads.write(self.store.save_maintenance, window)
        if saved is None:
            raise NotFound("Maintenance window not found")
        self._windows[saved.id] = saved
        return saved

    async def delete(self, actor: Actor, window_id: int) -> None:
        account_id = account_of(actor, "editor")
        self.get(account_id, window_id)
        if not await self.threads.write(self.store.delete_maintenance, account_id, window_id):
            raise NotFound("Maintenance window not found")
        self._windows.pop(window_id, None)

    def parse(self, account_id: int, data: Any, current: Maintenance | None) -> Maintenance:
        """A window from the API's object (or, with ``current``, a patch of one), every field
        checked; ``Invalid`` naming each bad one."""
        if not isinstance(data, dict):
            raise Invalid("Invalid maintenance window", [FieldError("body", "must be a JSON object")])
        errors = [FieldError(k, "unknown field") for k in data if k not in _FIELDS]
        base = {} if current is None else {k: v for k, v in msgspec.to_builtins(current).items() if k in _FIELDS}
        merged = {**base, **{k: v for k, v in data.items() if k in _FIELDS}}
        name = merged.get("name")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
            errors.append(FieldError("name", "must be a string of 1 to 200 characters"))
        monitors, tags = merged.get("monitors", []), merged.get("tags", [])
        mine = set(self.catalog.account_ids.get(account_id, ()))
        if not isinstance(monitors, list) or not all(isinstance(m, int) and not isinstance(m, bool) for m in monitors):
            errors.append(FieldError("monitors", "must be a list of monitor ids"))
            monitors = []
        elif unknown := [m for m in monitors if m not in mine]:
            errors.append(FieldError("monitors", f"no such monitor: {', '.join(map(str, unknown))}"))
        if not isinstance(tags, list) or not all(isinstance(t, str) and 1 <= len(t) <= 64 for t in tags) \
                or len(tags) > 100:
            errors.append(FieldError("tags", "must be a list of at most 100 tags of 1 to 64 characters"))
            tags = []
        if isinstance(monitors, list) and isinstance(tags, list) and not monitors and not tags:
            errors.append(FieldError("monitors", "name monitors, or tags, or both"))
        one_off = merged.get("startsAt") is not None or merged.get("endsAt") is not None
        recurring = any(merged.get(k) is not None for k in ("schedule", "duration", "timezone"))
        window = Maintenance(id=current.id if current else 0, account_id=account_id,
                             name=name.strip() if isinstance(name, str) else "", monitors=sorted(set(monitors)),
                             tags=sorted(set(tags)), created_at=current.created_at if current else None)
        if one_off == recurring:
            errors.append(FieldError("schedule", "give startsAt and endsAt (once), or schedule, duration and "
                                                 "timezone (recurring), not both"))
        elif one_off:
            self._one_off(merged, window, errors)
        else:
            self._recurring(merged, window, errors)
        if errors:
            raise Invalid("Invalid maintenance window", errors)
        return window

    @staticmethod
    def _one_off(data: dict[str, Any], window: Maintenance, errors: list[FieldError]) -> None:
        times = {}
        for field in ("startsAt", "endsAt"):
            value = data.get(field)
            try:
                parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                errors.append(FieldError(field, "must be an ISO 8601 time with its offset, e.g. 2026-12-24T02:00:00Z"))
            else:
                times[field] = parsed.astimezone(dt.UTC)
        if len(times) == 2:
            if times["endsAt"] <= times["startsAt"]:
                errors.append(FieldError("endsAt", "must be after startsAt"))
            elif (times["endsAt"] - times["startsAt"]).total_seconds() > MAX_ONE_OFF:
                errors.append(FieldError("endsAt", "a window lasts at most 31 days"))
            window.starts_at = times["startsAt"].strftime("%Y-%m-%dT%H:%M:%SZ")
            window.ends_at = times["endsAt"].strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def _recurring(data: dict[str, Any], window: Maintenance, errors: list[FieldError]) -> None:
        schedule, duration, timezone = data.get("schedule"), data.get("duration"), data.get("timezone")
        if not isinstance(duration, int) or isinstance(duration, bool) or not MIN_DURATION <= duration <= MAX_DURATION:
            errors.append(FieldError("duration", f"must be {MIN_DURATION} to {MAX_DURATION} seconds"))
        errors.extend(schedule_problems(schedule, timezone))
        window.schedule, window.duration, window.timezone = schedule, duration, timezone

    # when ------------------------------------------------------------------------------------
    def covered(self, window: Maintenance) -> set[int]:
        """The monitors ``window`` covers now: those it names and those with one of its tags."""
        ids = set(window.monitors)
        if window.tags:
            tags = set(window.tags)
            ids.update(m.id for m in self.monitors.account_monitors(window.account_id) if tags & set(m.tags))
        return ids

    def active(self, now: dt.datetime) -> dict[int, dt.datetime]:
        """Monitors in maintenance at ``now`` (aware UTC) -> when their window ends."""
        out: dict[int, dt.datetime] = {}
        for window in self._windows.values():
            for began, ends in occurrences(window, now, now + dt.timedelta(microseconds=1)):
                if began <= now < ends:
                    for monitor_id in self.covered(window):
                        out[monitor_id] = max(out.get(monitor_id, ends), ends)
        return out

    def schedule_of(self, account_id: int, monitor_ids: set[int], now: dt.datetime,
                    horizon: dt.timedelta = dt.timedelta(days=7)) -> list[dict[str, Any]]:
        """Windows of the account touching ``monitor_ids`` that are active or start within
        ``horizon``: ``{"name", "startsAt", "endsAt", "active"}`` by start (what a status
        page shows: names and times only)."""
        out = []
        for window in self._windows.values():
            if window.account_id != account_id or not self.covered(window) & monitor_ids:
                continue
            for began, ends in occurrences(window, now, now + horizon)[:5]:
                out.append({"name": window.name, "startsAt": began.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "endsAt": ends.strftime("%Y-%m-%dT%H:%M:%SZ"), "active": began <= now < ends})
        return sorted(out, key=lambda w: w["startsAt"])


class MaintenanceGate:
    """Puts monitors in and out of ``maintenance`` as their windows begin and end, and holds
    back what the engine says of them meanwhile.

    The workers keep checking and keep their own up/down machine (they know nothing of
    windows); their checks are stored as always. ``filter`` sees every transition before it
    is stored: one of a monitor inside a window only updates what its status would be (no
    status change, no incident, no notification). ``tick(now)`` returns the transitions of
    windows that began (``X -> maintenance``: an open incident is resolved, silently) or ended
    (``maintenance -> `` the status the engine last said: a monitor still down opens a new
    incident and alerts then, as a fresh ``down``; one that is up says nothing). A monitor
    whose stored status is ``maintenance`` at start (a restart during a window) is inside
    until the next tick says otherwise; what the engine says of it is not known yet, so it
    leaves a window as ``pending``. Paused monitors are left alone."""

    def __init__(self, service: MaintenanceService, monitors: MonitorTable) -> None:
        self.service = service
        self.monitors = monitors  # the engine's live monitor set
        self.inside: dict[int, str] = {}  # monitor id -> the status the engine last said

    def load(self, monitors: MonitorTable) -> None:
        self.inside = dict.fromkeys(monitors.select(monitors.ids(), status="maintenance"), "pending")

    def filter(self, transitions: list[Transition]) -> list[Transition]:
        out = []
        for t in transitions:
            if t.monitor_id in self.inside and "maintenance" not in (t.old, t.new):
                self.inside[t.monitor_id] = t.new
                continue
            out.append(t)
        return out

    def tick(self, now: dt.datetime) -> list[Transition]:
        active = self.service.active(now)
        ts_us = int(now.timestamp() * 1_000_000)
        out = []
        for monitor_id in sorted(active.keys() - self.inside.keys()):
            monitor = self.monitors.get(monitor_id)
            if monitor is None or monitor.paused:
                continue
            self.inside[monitor_id] = monitor.status
            if monitor.status != "maintenance":
                out.append(Transition(monitor_id, ts_us, monitor.status, "maintenance", "maintenance window"))
        for monitor_id in sorted(self.inside.keys() - active.keys()):
            underlying = self.inside.pop(monitor_id)
            monitor = self.monitors.get(monitor_id)
            if monitor is not None and not monitor.paused:
                out.append(Transition(monitor_id, ts_us, "maintenance", underlying, None))
        return out
