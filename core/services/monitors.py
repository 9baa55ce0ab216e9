"""Monitors, the same for every face: the API, the CLI (through the control socket) and,
later, the pages. A face parses its input, calls one method, and shows the answer.

Every method takes the caller's account: another account's monitor is ``NotFound``, never a
hint that it exists. Reads come from the runtime's memory (the engine's monitor set and each
monitor's timestamps, kept in step with the database by every change). Writes validate
everything first (fields, the account's own channels, a push token nobody else holds or is
taking, private targets on servers that deny them) and change nothing when refused; then
the runtime stores the change in one statement on the writer thread (concurrent creates are
committed together) and tells the owning worker once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

from core.models import FieldError, Monitor, MonitorValidationError, parse_monitor, private_target
from core.services.errors import Conflict, Invalid, NotFound

__all__ = ["MAX_BULK", "MonitorPage", "MonitorRuntime", "MonitorService"]

#: One page: (monitor, its timestamps) pairs, the number matching, and whether more follow.
MonitorPage = tuple[list[tuple[Monitor, dict[str, Any]]], int, bool]
#: A monitor with its ``createdAt``, ``updatedAt`` and ``statusSince``.
Found = tuple[Monitor, dict[str, Any]]

#: Monitors in one bulk create at most.
MAX_BULK = 1000


class MonitorRuntime(Protocol):
    """What the service needs of the serve process (``core.server.Server``)."""

    deny_private: bool
    push_tokens: dict[str, int]
    integrations: dict[int, Any]

    async def create_monitor(self, monitor: Monitor) -> Found: ...
    async def create_monitors(self, monitors: list[Monitor]) -> list[Found]: ...
    async def update_monitor(self, monitor: Monitor, paused_changed: bool = False) -> Found | None: ...
    async def delete_monitor(self, monitor_id: int) -> bool: ...
    async def set_paused(self, monitor_id: int, paused: bool) -> Found | None: ...
    def live_monitor(self, monitor_id: int) -> Monitor | None: ...
    def monitor_times_of(self, monitor_id: int) -> dict[str, Any]: ...
    def monitor_page(self, account_id: int, after_id: int, limit: int, *, status: str | None = None,
                     kind: str | None = None, tag: str | None = None, q: str | None = None) -> MonitorPage: ...


class MonitorService:
    """Every monitor operation of every face. Refusals are ``Invalid`` (400), ``NotFound``
    (404) and ``Conflict`` (409) with the fields at fault; faces word them their own way."""

    def __init__(self, runtime: MonitorRuntime) -> None:
        self.runtime = runtime

    # reads ---------------------------------------------------------------------------------
    async def get(self, account_id: int, monitor_id: int) -> Found:
        """The monitor (with its live status) and its timestamps."""
        return self.require(account_id, monitor_id), self.runtime.monitor_times_of(monitor_id)

    def require(self, account_id: int, monitor_id: int) -> Monitor:
        """The live monitor, or ``NotFound``."""
        monitor = self.runtime.live_monitor(monitor_id)
        if monitor is None or monitor.account_id != account_id:
            raise NotFound("Monitor not found")
        return monitor

    def page(self, account_id: int, after_id: int, limit: int, *, status: str | None = None,
             kind: str | None = None, tag: str | None = None, q: str | None = None) -> MonitorPage:
        """One keyset page of the account's monitors by id."""
        return self.runtime.monitor_page(account_id, after_id, limit, status=status, kind=kind, tag=tag, q=q)

    # writes --------------------------------------------------------------------------------
    async def create(self, account_id: int, data: Any) -> Found:
        """Validate and store a new monitor, and schedule it on its worker."""
        monitor = self.parse(data)
        monitor.account_id = account_id
        self._check(account_id, monitor)
        with self._taking_tokens([monitor]):
            return await self.runtime.create_monitor(monitor)

    async def create_many(self, account_id: int, items: Any) -> list[Found]:
        """Up to ``MAX_BULK`` monitors, all or none: every item is validated first (errors
        name the item, ``monitors[3].url``), then they are stored in one transaction."""
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BULK:
            raise Invalid("Invalid monitors", [FieldError("monitors", f"must be a list of 1 to {MAX_BULK} monitors")])
        monitors, errors = [], []
        tokens: dict[str, int] = {}
        for i, item in enumerate(items):
            try:
                monitor = self.parse(item)
                monitor.account_id = account_id
                self._check(account_id, monitor)
            except (Invalid, Conflict) as exc:
                errors += [FieldError(f"monitors[{i}].{e.field}", e.message) for e in exc.errors or []]
                continue
            token = getattr(monitor.spec, "push_token", None)
            if token is not None and tokens.setdefault(token, i) != i:
                errors.append(FieldError(f"monitors[{i}].pushToken", f"is the same as monitors[{tokens[token]}]'s"))
            monitors.append(monitor)
        if errors:
            raise Invalid("Invalid monitors", errors)
        with self._taking_tokens(monitors):
            return await self.runtime.create_monitors(monitors)

    async def update(self, account_id: int, monitor_id: int, data: Any) -> Found:
        """Change some fields (the type cannot change); a change of ``paused`` pauses or
        resumes. One statement, then the worker is told once."""
        current = self.require(account_id, monitor_id)
        if not isinstance(data, dict):
            raise Invalid("Invalid monitor", [FieldError("body", "must be a JSON object")])
        updated = self.parse(data, current)
        self._check(account_id, updated)
        with self._taking_tokens([updated]):
            found = await self.runtime.update_monitor(updated, updated.paused != current.paused)
        if found is None:
            raise NotFound("Monitor not found")
        return found

    async def delete(self, account_id: int, monitor_id: int) -> None:
        """Delete the monitor with its results and incidents; its worker forgets it."""
        self.require(account_id, monitor_id)
        if not await self.runtime.delete_monitor(monitor_id):
            raise NotFound("Monitor not found")

    async def set_paused(self, account_id: int, monitor_id: int, paused: bool) -> Found:
        """Pause (no checks, no alerts) or resume (pending again) a monitor."""
        self.require(account_id, monitor_id)
        found = await self.runtime.set_paused(monitor_id, paused)
        if found is None:
            raise NotFound("Monitor not found")
        return found

    # validation ----------------------------------------------------------------------------
    @staticmethod
    def parse(data: Any, current: Monitor | None = None) -> Monitor:
        """A monitor definition (or, with ``current``, a patch of one) checked field by field."""
        try:
            return parse_monitor(data, partial_of=current)
        except MonitorValidationError as exc:
            raise Invalid("Invalid monitor", exc.errors) from None

    def _check(self, account_id: int, monitor: Monitor) -> None:
        """What a monitor may name beyond its own fields."""
        channels = self.runtime.integrations
        unknown = [i for i in monitor.integrations if (c := channels.get(i)) is None or c.account_id != account_id]
        if unknown:
            raise Invalid("Invalid monitor", [FieldError("integrations",
                                                         f"no such integration: {', '.join(map(str, unknown))}")])
        token = getattr(monitor.spec, "push_token", None)
        owner = self.runtime.push_tokens.get(token) if token is not None else None
        if owner is not None and (owner != monitor.id or not monitor.id):
            raise Conflict("Push token already in use", [FieldError("pushToken", "is used by another monitor")])
        if self.runtime.deny_private and (found := private_target(monitor)) is not None:
            field, host = found
            raise Invalid("Invalid monitor", [FieldError(field, f"{host}: private and loopback targets are not "
                                                                "allowed on this server")])

    @contextlib.contextmanager
    def _taking_tokens(self, monitors: list[Monitor]) -> Iterator[None]:
        """Hold the push tokens of monitors being written (as owned by no monitor, id 0) until
        the runtime indexes them: two concurrent creates with one token cannot both pass
        ``_check``. A write that fails lets them go."""
        taken = []
        for monitor in monitors:
            token = getattr(monitor.spec, "push_token", None)
            if token is not None and token not in self.runtime.push_tokens:
                self.runtime.push_tokens[token] = 0
                taken.append(token)
        try:
            yield
        except BaseException:
            for token in taken:
                if self.runtime.push_tokens.get(token) == 0:
                    del self.runtime.push_tokens[token]
            raise
