"""Monitors, the same for every face: the API, the CLI (through the control socket) and,
later, the pages. A face parses its input, calls one method, and shows the answer.

Every method takes the caller's account: another account's monitor is ``NotFound``, never a
hint that it exists. Writes validate everything first (fields, the account's own channels, a
push token nobody else holds, private targets on servers that deny them) and change nothing
when refused; then the runtime stores the change (the writer thread, one transaction) and
tells the owning worker.
"""

from __future__ import annotations

from typing import Any, Protocol

from core.models import FieldError, Monitor, MonitorValidationError, parse_monitor, private_target
from core.services.errors import Conflict, Invalid, NotFound

__all__ = ["MonitorPage", "MonitorRuntime", "MonitorService"]

#: One page: (monitor, its timestamps) pairs, the number matching, and whether more follow.
MonitorPage = tuple[list[tuple[Monitor, dict[str, Any]]], int, bool]


class MonitorRuntime(Protocol):
    """What the service needs of the serve process (``core.server.Server``)."""

    deny_private: bool
    push_tokens: dict[str, int]
    integrations: dict[int, Any]

    async def create_monitor(self, monitor: Monitor) -> Monitor: ...
    async def update_monitor(self, monitor: Monitor) -> Monitor | None: ...
    async def delete_monitor(self, monitor_id: int) -> bool: ...
    async def set_paused(self, monitor_id: int, paused: bool) -> Monitor | None: ...
    async def monitor_with_times(self, account_id: int, monitor_id: int) -> tuple[Monitor, dict[str, Any]] | None: ...
    def live_monitor(self, monitor_id: int) -> Monitor | None: ...
    def monitor_page(self, account_id: int, after_id: int, limit: int, *, status: str | None = None,
                     kind: str | None = None, tag: str | None = None, q: str | None = None) -> MonitorPage: ...


class MonitorService:
    def __init__(self, runtime: MonitorRuntime) -> None:
        self.runtime = runtime

    # reads ---------------------------------------------------------------------------------
    async def get(self, account_id: int, monitor_id: int) -> tuple[Monitor, dict[str, Any]]:
        """The monitor with its timestamps (``createdAt``...), read on the writer: it sees
        every change acknowledged before."""
        found = await self.runtime.monitor_with_times(account_id, monitor_id)
        if found is None:
            raise NotFound("Monitor not found")
        return found

    def require(self, account_id: int, monitor_id: int) -> Monitor:
        """The live monitor (from memory, no database round trip), or ``NotFound``."""
        monitor = self.runtime.live_monitor(monitor_id)
        if monitor is None or monitor.account_id != account_id:
            raise NotFound("Monitor not found")
        return monitor

    def page(self, account_id: int, after_id: int, limit: int, *, status: str | None = None,
             kind: str | None = None, tag: str | None = None, q: str | None = None) -> MonitorPage:
        """One keyset page of the account's monitors by id, from memory."""
        return self.runtime.monitor_page(account_id, after_id, limit, status=status, kind=kind, tag=tag, q=q)

    # writes --------------------------------------------------------------------------------
    async def create(self, account_id: int, data: Any) -> tuple[Monitor, dict[str, Any]]:
        """Validate and store a new monitor, and schedule it on its worker."""
        monitor = self.parse(data)
        monitor.account_id = account_id
        self._check(account_id, monitor)
        created = await self.runtime.create_monitor(monitor)
        return await self.get(account_id, created.id)

    async def update(self, account_id: int, monitor_id: int, data: Any) -> tuple[Monitor, dict[str, Any]]:
        """Change some fields (the type cannot change); a change of ``paused`` pauses or
        resumes with its status handling. Stores, then tells the worker."""
        current, _ = await self.get(account_id, monitor_id)
        if not isinstance(data, dict):
            raise Invalid("Invalid monitor", [FieldError("body", "must be a JSON object")])
        updated = self.parse(data, current)
        self._check(account_id, updated)
        await self.runtime.update_monitor(updated)
        if updated.paused != current.paused:
            await self.runtime.set_paused(monitor_id, updated.paused)
        return await self.get(account_id, monitor_id)

    async def delete(self, account_id: int, monitor_id: int) -> None:
        """Delete the monitor with its results and incidents; its worker forgets it."""
        await self.get(account_id, monitor_id)
        if not await self.runtime.delete_monitor(monitor_id):
            raise NotFound("Monitor not found")

    async def set_paused(self, account_id: int, monitor_id: int, paused: bool) -> tuple[Monitor, dict[str, Any]]:
        """Pause (no checks, no alerts) or resume (pending again) a monitor."""
        await self.get(account_id, monitor_id)
        await self.runtime.set_paused(monitor_id, paused)
        return await self.get(account_id, monitor_id)

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
        if owner is not None and owner != monitor.id:
            raise Conflict("Push token already in use", [FieldError("pushToken", "is used by another monitor")])
        if self.runtime.deny_private and (found := private_target(monitor)) is not None:
            field, host = found
            raise Invalid("Invalid monitor", [FieldError(field, f"{host}: private and loopback targets are not "
                                                                "allowed on this server")])
