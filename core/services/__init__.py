"""The one door between every face (API, pages, CLI) and the store and engine: typed service
objects that validate, check ownership, run store calls on the right thread, tell the engine,
and return domain Structs. Faces never reach past them.

``Services.build`` wires them over one store, its threads, an engine (the running one, or a
``DormantEngine`` for the CLI on a stopped data dir) and one catalog; ``load`` fills the
catalog and the key map from the store before the first call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.services.access import Actor
from core.services.accounts import AccountService
from core.services.agents import AgentService
from core.services.context import Catalog, DormantEngine, EngineLink, StoreThreads
from core.services.errors import Conflict, Forbidden, Invalid, Limited, NotFound, ServiceError, Unavailable
from core.services.history import HistoryService
from core.services.integrations import IntegrationService, Sender
from core.services.maintenance import MaintenanceService
from core.services.monitors import MonitorService
from core.services.pages import StatusPageService
from core.services.recent import HOURS as RECENT_HOURS
from core.services.sealing import Sealer
from core.services.system import SystemService
from core.services.users import Session, UserService

if TYPE_CHECKING:
    from core.storage.base import Store

__all__ = ["AccountService", "Actor", "AgentService", "Catalog", "Conflict", "DormantEngine", "Forbidden",
           "HistoryService", "IntegrationService", "Invalid", "Limited", "MaintenanceService", "MonitorService",
           "NotFound", "ServiceError", "Services", "Session", "StatusPageService", "StoreThreads", "SystemService",
           "Unavailable", "UserService"]


#: How far back the heartbeat bars are filled from the store at start (a monitor checked less
#: often shows fewer bars until it has been checked again).
BARS_LOOKBACK_S = 3600


@dataclass(frozen=True)
class Services:
    """Every service of one process; faces get them injected."""

    monitors: MonitorService
    integrations: IntegrationService
    accounts: AccountService
    history: HistoryService
    system: SystemService
    users: UserService
    pages: StatusPageService
    maintenance: MaintenanceService
    agents: AgentService
    catalog: Catalog

    @classmethod
    def build(cls, store: Store, threads: StoreThreads, engine: EngineLink, *, sender: Sender | None = None,
              catalog: Catalog | None = None, base_url: str = "", deny_private: bool = False,
              sealer: Sealer | None = None) -> Services:
        catalog = catalog if catalog is not None else Catalog()
        monitors = MonitorService(store, threads, engine, catalog, deny_private=deny_private)
        system = SystemService(store, threads, engine)
        system.sources.append(monitors.stats)
        system.sources.append(catalog.live.stats)
        maintenance = MaintenanceService(store, threads, monitors, catalog)
        agents = AgentService(store, threads, engine, monitors, catalog)
        system.sources.append(agents.stats)
        system.sources.append(threads.stats)
        history = HistoryService(store, threads, monitors)
        system.sources.append(history.stats)
        return cls(monitors=monitors,
                   integrations=IntegrationService(store, threads, engine, catalog, sender, base_url, sealer,
                                                   deny_private=deny_private),
                   accounts=AccountService(store, threads),
                   history=history,
                   system=system,
                   users=UserService(store, threads),
                   pages=StatusPageService(store, threads, monitors, catalog, maintenance),
                   maintenance=maintenance,
                   agents=agents,
                   catalog=catalog)

    async def _load_recent_checks(self, ids: list[int], now_us: int) -> None:
        """Each monitor's newest checks into memory, read back over as long as about twice the
        rings' depth of checks takes at the last day's rate (a minute to 31 days): the rows
        read stay near twice what the rings hold (``2 * budget / ROW_BYTES``), however busy
        the server."""
        tail = self.catalog.recent_checks
        if not ids:
            return
        tail.fit(max(ids))
        if not tail.on:
            return
        per_hour = max(1.0, self.catalog.recent.checks_per_hour())
        hours = min(31 * 24.0, max(1 / 60, 2 * len(ids) * tail.depth / per_hour))
        from_us = now_us - int(hours * 3600 * 10**6)
        tail.cover_from(ids, from_us)
        # (a row more than the rings hold: the oldest leaves again, moving the cover past it)
        got = await self.monitors.threads.read(self.monitors.store.recent_checks, from_us, tail.depth + 1)
        tail.add(got["monitor_id"], got["ts_us"], got["ok"], got["latency_us"], got["status_code"], got["error"],
                 got["dns_us"], got["connect_us"], got["tls_us"], got["ttfb_us"])

    async def load(self, *, light: bool = False) -> None:
        """Fill the catalog (for the engine's monitors, as loaded from the store) and the key
        map. ``light``: without the newest checks, bars and hours held for pages (a CLI export on
        a stopped data dir reads the store alone)."""
        store, threads = self.monitors.store, self.monitors.threads
        monitors = self.monitors.engine.monitors
        last = {} if light else await threads.write(store.last_checks)
        self.catalog.load(monitors, await threads.write(store.monitor_times), last)
        if light:
            await self.accounts.load()
            return
        now_us = time.time_ns() // 1000
        hours, bars = await threads.read(store.recent_window, now_us - RECENT_HOURS * 3600 * 10**6,
                                         now_us - BARS_LOOKBACK_S * 10**6)
        self.catalog.recent.load_hours(*hours)
        self.catalog.recent.load_bars(*bars)
        await self._load_recent_checks(monitors.ids(), now_us)
        if len(monitors):
            self.catalog.recent_hours.fit(monitors.top())
            await self.history.sync_hours()
        await self.integrations.load()
        await self.accounts.load()
        await self.users.load()
        await self.pages.load()
        await self.maintenance.load()
        await self.agents.load()
