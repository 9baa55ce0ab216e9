"""Background jobs of the serve process, each a loop that survives its own failures: hourly
rollups, alert reminders (and outbox pruning), writing the quota counters behind, and
maintenance windows beginning and ending."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import duckdb

from core import heap
from core.services import AccountService, AgentService, StoreThreads

if TYPE_CHECKING:
    from core.alerting.outbox import Dispatcher
    from core.models import Transition
    from core.services.flapping import FlapGuard
    from core.services.maintenance import MaintenanceGate
    from core.storage.base import Store

__all__ = ["OUTBOX_KEEP_DAYS", "flapping", "maintenance", "reminders", "rollups", "save_agents",
           "save_usage", "trim_heap"]

log = logging.getLogger("xuptime.jobs")
ROLLUP_EVERY_S = 60.0
REMINDER_EVERY_S = 15.0
USAGE_EVERY_S = 0.1
AGENTS_EVERY_S = 60.0  # (a crash loses at most this of host names and the like: the reports are stored)
MAINTENANCE_EVERY_S = 1.0
FLAPPING_EVERY_S = 1.0
TRIM_EVERY_S = 60.0
OUTBOX_KEEP_DAYS = 30  # finished notifications (and their attempts) are kept this long


async def rollups(store: Store, executor: concurrent.futures.Executor) -> None:
    """Roll closed hours up (catching up at start), then keep the tables up (``upkeep``:
    deleted monitors' rows purged, tiers past retention dropped, closed days and months of
    hours rewritten sorted); again every minute. This has its own thread (and cursor): it
    never waits behind ingest, and ingest never waits behind it."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            hours = await loop.run_in_executor(executor, store.rollup, time.time_ns() // 1000)
            if hours:
                log.info("rolled up %d monitor-hours (now up to %s)", hours, store.rollup_upto_us)
        except duckdb.Error:
            log.exception("rollup failed; retrying in a minute (reads stay exact from raw checks)")
        try:
            done = await loop.run_in_executor(executor, store.upkeep, time.time_ns() // 1000)
            if any(done.values()):
                log.info("upkeep: %d rows of deleted monitors purged, %d days rolled up, %d rows past retention "
                         "dropped, %d days and %d months of hours compacted", done["purged"], done["days"],
                         done["expired"], done["compacted"], done["months"])
        except duckdb.Error:
            log.exception("upkeep failed; retrying in a minute (nothing is lost: each step is one transaction)")
        await asyncio.sleep(ROLLUP_EVERY_S)


async def reminders(store: Store, threads: StoreThreads, alerts: Dispatcher) -> None:
    """Queue reminders for incidents still open, checked every 15 s; once an hour, forget
    finished messages older than ``OUTBOX_KEEP_DAYS`` so the outbox stays bounded."""
    pruned_at = 0.0
    while True:
        await asyncio.sleep(REMINDER_EVERY_S)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        try:
            if await threads.write(store.queue_reminders, now):
                alerts.wake()
            if time.monotonic() - pruned_at > 3600:
                pruned_at = time.monotonic()
                await threads.write(store.prune_outbox, now - dt.timedelta(days=OUTBOX_KEEP_DAYS))
        except duckdb.Error:
            log.exception("cannot queue reminders or prune the outbox; retrying")


async def save_usage(accounts: AccountService) -> None:
    """Write the quota counters behind, every 100 ms (the process saves once more at exit)."""
    while True:
        await asyncio.sleep(USAGE_EVERY_S)
        try:
            await accounts.save_usage()
        except duckdb.Error:
            log.exception("cannot save API usage; retrying")


async def save_agents(agents: AgentService, every: float = AGENTS_EVERY_S) -> None:
    """Write agents' newest reports behind, every minute (the process saves once more at exit)."""
    while True:
        await asyncio.sleep(every)
        try:
            await agents.save()
        except duckdb.Error:
            log.exception("cannot save agents' newest reports; retrying")


async def maintenance(gate: MaintenanceGate, put: Callable[[dict[str, Any], list[Transition]], Awaitable[None]],
                      every: float = MAINTENANCE_EVERY_S) -> None:
    """Each second, windows that began or ended become status transitions, stored in order
    with the engine's through ``put`` (the ingest queue)."""
    while True:
        try:
            transitions = gate.tick(dt.datetime.now(dt.UTC))
            if transitions:
                await put({}, transitions)
        except Exception:
            log.exception("maintenance windows could not be applied; trying again")
        await asyncio.sleep(every)


async def flapping(guard: FlapGuard, store: Store, threads: StoreThreads, wake: Callable[[], None],
                   every: float = FLAPPING_EVERY_S) -> None:
    """Each second, queue the messages of flapping spells that began or settled."""
    while True:
        try:
            events = guard.tick(time.time_ns() // 1000)
            if events:
                await threads.write(store.queue_flap_events, events)
                wake()
                for monitor_id, event, _, changes, status in events:
                    log.info("monitor %d %s after %d changes (now %s)", monitor_id,
                             "is flapping" if event == "flapping" else "settled", changes, status)
        except Exception:
            log.exception("flapping messages could not be queued; trying again")
        await asyncio.sleep(every)


async def trim_heap(every: float = TRIM_EVERY_S) -> None:
    """Each minute, give the heap's free pages back to the system (``core.heap``): memory
    that bursts (a start, a big page, a catch-up of results) freed stays with the process
    otherwise (43 MB at a million monitors, 20 s after the start). A few milliseconds."""
    while True:
        await asyncio.sleep(every)
        started = time.perf_counter()
        heap.trim()
        log.debug("heap trimmed in %.1f ms", (time.perf_counter() - started) * 1e3)
