"""``xuptime serve``: the main process. Owns the DuckDB file, supervises the engine workers,
ingests their results, runs the background jobs, answers the CLI on its control socket, and
hosts the faces' ASGI app on its own loop.

It knows no face: the CLI passes ``make_app`` (``api.create_app`` over the services), so the
web can change without this module, and this module cannot reach past the services either.

SIGTERM / Ctrl-C: HTTP stops (open requests get 5 s), the quota counters are saved, the
workers flush and exit, everything queued is written, unsent alerts stay in the outbox, the
database is checkpointed and closed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import demo, heap
from core.alerting.outbox import Dispatcher
from core.engine.supervisor import Engine
from core.engine.table import MonitorTable
from core.main import CONTROL_SOCKET, jobs
from core.main.control import start_control
from core.main.http import HttpHost, bind
from core.main.ingest import Ingest
from core.models.retention import parse_retention
from core.services import Catalog, Services, StoreThreads
from core.services.context import background_priority
from core.services.flapping import FLAP_CHANGES, FLAP_WINDOW_S, FlapGuard
from core.services.maintenance import MaintenanceGate
from core.services.sealing import Sealer
from core.storage.duckdb import READERS, DuckDBStore

__all__ = ["ServeProcess"]

log = logging.getLogger("xuptime.server")


class ServeProcess:
    """One serve process over one data dir: ``run`` until ``stop`` (or a signal)."""

    def __init__(self, data_dir: str | Path, make_app: Callable[[Services], Any], *,
                 host: str = "127.0.0.1", port: int = 8080, workers: int = 0, demo_monitors: bool = False,
                 max_inflight: int = 0, http_server: str = "uvicorn", alert_retry_base: float = 2.0,
                 deny_private: bool = False, public_url: str | None = None,
                 flap_changes: int = FLAP_CHANGES, flap_window_s: int = FLAP_WINDOW_S,
                 keep_alive_s: float = 75.0, retention: str | None = None,
                 history_memory: int = 256 << 20) -> None:
        self.data_dir = Path(data_dir)
        #: The dashboard's address as users reach it (behind a proxy): links in notifications.
        self.public_url = public_url.rstrip("/") if public_url else None
        self.flap_changes, self.flap_window_s = flap_changes, flap_window_s
        self.make_app = make_app
        self.host = host
        self.port = port
        self.workers = workers or os.cpu_count() or 1
        self.demo = demo_monitors
        self.max_inflight = max_inflight
        self.http = HttpHost(http_server, keep_alive_s)
        #: ``serve --retention`` (tiers named there change; the others stay as kept), or None.
        self.retention = retention
        #: ``serve --history-memory`` in bytes: the budget of the history pages' memory.
        self.history_memory = history_memory
        self.alert_retry_base = alert_retry_base
        #: Refuse monitors (and channels) of private, loopback and link-local targets.
        self.deny_private = deny_private
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            gc.enable()  # (also when the start failed: see below)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # No collection while the monitors load: each pass of the collector rescans the heap
        # built so far, which at a million monitors was about half of the start (reading
        # 200k monitors: 4.1 s with it, 2.2 s without). Enabled again once all is loaded.
        gc.disable()
        listener, base_url = bind(self.host, self.port)  # first, so a busy port fails before anything starts
        link_url = self.public_url or base_url  # what links in notifications start with
        threads = StoreThreads(READERS)
        rollup_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="duckdb-rollup",
                                                              initializer=background_priority)
        store = await threads.write(DuckDBStore, self.data_dir)
        if self.retention is not None:  # (serve --retention: over what was kept, and kept from now on)
            await threads.write(store.set_retention, parse_retention(self.retention, store.retention))
        demo_target = None
        if self.demo:
            demo_target = await demo.start_target()
            await threads.write(demo.ensure_monitors, store, demo_target.base_url)
        # (read as columns into the table: no Python object a monitor)
        monitors = await threads.write(lambda: MonitorTable.from_batches(store.monitor_batches()))

        catalog = Catalog(history_memory=self.history_memory)
        alerts: Dispatcher | None = None
        ingest = Ingest(store, threads, catalog, wake_alerts=lambda: alerts.wake() if alerts is not None else None)
        engine = Engine(self.workers, ingest.put, max_inflight=self.max_inflight, deny_private=self.deny_private)
        engine.monitors = monitors  # (the services, the gate and ingest read the same table)
        ingest.engine = engine
        services = Services.build(store, threads, engine, catalog=catalog, base_url=link_url,
                                                  deny_private=self.deny_private,
                                                  sealer=Sealer.for_data_dir(self.data_dir))
        await services.load()
        gate = MaintenanceGate(services.maintenance, engine.monitors)
        gate.load(monitors)
        ingest.gate = gate
        ingest.flaps = flaps = FlapGuard(self.flap_changes, self.flap_window_s)
        # DuckDB's cache of the blocks the start read (every monitor), dropped while nothing
        # else queries (a query beside it would run under its tiny limit)
        await threads.write(store.evict_cached_blocks)
        # (the listener is bound: connections wait for the app; the dashboard's address is the
        # first thing a new user reads, before any log line)
        self._banner(base_url, len(monitors), demo_target, services.users.needs_setup())
        services.system.sources.append(ingest.stats)
        alerts = Dispatcher(fetch_due=functools.partial(threads.read, store.due_outbox),
                            record=functools.partial(threads.write, store.record_deliveries),
                            integration=catalog.integrations.get, base_url=link_url,
                            backoff_base=self.alert_retry_base, deny_private=self.deny_private)
        services.integrations.sender = alerts
        await alerts.start()

        ingest.start()
        background = [loop.create_task(jobs.rollups(store, rollup_thread)),
                      loop.create_task(jobs.reminders(store, threads, alerts)),
                      loop.create_task(jobs.maintenance(gate, ingest.put)),
                      loop.create_task(jobs.flapping(flaps, store, threads, ingest.wake_alerts)),
                      loop.create_task(jobs.trim_heap()),
                      # (these two last: the shutdown stops them first and saves once more)
                      loop.create_task(jobs.save_agents(services.agents)),
                      loop.create_task(jobs.save_usage(services.accounts))]
        await engine.start()
        control = await start_control(self.data_dir, services)
        http_task = self.http.start(self.make_app(services), listener)
        # Requests allocate many short-lived objects: collect young garbage less often, and keep
        # what startup loaded (monitors, caches, modules) out of the collector's full passes.
        gc.set_threshold(50_000, 20, 100)
        gc.freeze()
        gc.enable()
        heap.trim()  # (what the start built and dropped; the workers' shards: ``Engine``)
        if _slow_collections not in gc.callbacks:
            gc.callbacks.append(_slow_collections)
        try:
            await self._stop.wait()
        finally:
            log.info("shutting down: flushing workers")
            control.close()
            self.http.stop()
            await http_task
            log.info("shutting down: HTTP stopped")
            background[-1].cancel()
            background[-2].cancel()
            await services.accounts.save_usage()
            await services.agents.save()
            await engine.stop()
            await ingest.close()
            log.info("shutting down: workers stopped, results written")
            await alerts.stop()  # unsent messages stay in the outbox for the next start
            for task in background:
                task.cancel()
            rollup_thread.shutdown(wait=True)  # a rollup in progress finishes before the store closes
            if demo_target is not None:
                await demo_target.close()
            await threads.write(store.close)
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / CONTROL_SOCKET).unlink()
            threads.shutdown()
            log.info("stopped; %d results written this run", ingest.rows_written)

    def _banner(self, base_url: str, count: int, demo_target: demo.DemoTarget | None, setup: bool) -> None:
        dashboard = (f"  dashboard: {base_url}/setup  <- open this to create the first admin" if setup
                     else f"  dashboard: {base_url}/  (sign in; new users: xuptime users create EMAIL --role admin)")
        lines = [
            dashboard,
            f"xuptime serving {count} monitor(s) with {self.workers} engine worker(s)",
            f"  data dir:  {self.data_dir.resolve()}",
            f"  API:       {base_url}/api/v1/monitors?limit=25 (Authorization: Bearer <key>)",
            f"  API docs:  {base_url}/api/docs",
            f"  API key:   dashboard -> API keys, or xuptime keys create --data-dir {self.data_dir} (shown once)",
            f"  control:   {self.data_dir / CONTROL_SOCKET} (used by `xuptime monitors ...`, `xuptime sql ...`)",
            "  try:       xuptime sql \"SELECT monitor_id, count(*), avg(latency_us) FROM checks GROUP BY 1\"",
        ]
        if self.public_url:
            lines.insert(2, f"  links:     notifications link to {self.public_url}/monitors/<id>")
        if demo_target is not None:
            lines.insert(2, f"  demo:      monitors tagged 'demo' check a local demo target at {demo_target.base_url}")
        print("\n".join(lines), flush=True)


_gc_started = 0.0


def _slow_collections(phase: str, info: dict[str, int]) -> None:
    """Log a garbage collection that held the event loop for 50 ms or more (every request
    waits for it: an open-loop benchmark saw such stalls as a p99 of 158 ms)."""
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    elif (took := time.perf_counter() - _gc_started) >= 0.05:
        log.warning("garbage collection of generation %d took %.0f ms (%d objects collected)",
                     info.get("generation", -1), took * 1000, info.get("collected", 0))
