"""``xuptime serve``: the main process. Owns the DuckDB file, supervises the engine workers,
ingests their results, serves the HTTP API (Litestar on embedded uvicorn, on this loop), and
answers the CLI over a Unix socket in the data dir.

Ingest: result frames are queued (bounded: a full queue stops reading the workers, which then
buffer and, past their own bound, drop and count) and written by one task that coalesces
queued batches into one Arrow insert. Workers flush every 250 ms and the main process writes
at once, so a result is in DuckDB's WAL well within 1 s of its check. SIGTERM / Ctrl-C: the
workers flush and exit, everything queued is written, the database is checkpointed.

DuckDB calls never run on the event loop: writes on one writer thread, reads (API history,
incidents, ``xuptime sql``) on ``READERS`` reader threads, the hourly rollup on one more.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import datetime as dt
import functools
import gc
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import msgspec
import numpy as np

from api.quota import month_bounds
from core import demo
from core.alerting.base import SendResult
from core.alerting.outbox import Dispatcher
from core.engine.supervisor import Engine
from core.models import Integration, Monitor, Transition
from core.ops import STORE_OPS, OpError
from core.services import IntegrationService, MonitorService, NotFound, ServiceError, Services
from core.services.monitors import MAX_BULK
from core.storage.duckdb import READERS, DuckDBStore, ReadOnlyQueryError, monitor_row
from ext import COLUMNS

__all__ = ["CONTROL_SOCKET", "Server"]

log = logging.getLogger("xuptime.server")
CONTROL_SOCKET = "xuptime.sock"
T = TypeVar("T")
#: How long a small batch of creates waits for more before it is committed (a commit costs
#: about 4 ms whatever its size, so 16 clients committing one at a time wait on each other).
CREATE_LINGER_S = 0.002
DEFAULT_ACCOUNT = 1  # the account of monitors added with the CLI (``accounts`` row 1, "default")
MAX_COALESCED_ROWS = 200_000
ROLLUP_EVERY_S = 60.0
REMINDER_EVERY_S = 15.0
OUTBOX_KEEP_DAYS = 30  # finished notifications (and their attempts) are kept this long


def _merge(batches: list[dict[str, Any]]) -> dict[str, Any]:
    if len(batches) == 1:
        return batches[0]
    merged: dict[str, Any] = {name: np.concatenate([b[name] for b in batches]) for name in COLUMNS}
    rows, texts, offset = [], [], 0
    for b in batches:
        rows.append(b["error_rows"] + offset)
        texts.extend(b["error_texts"])
        offset += len(b["monitor_id"])
    merged["error_rows"] = np.concatenate(rows).astype(np.int32)
    merged["error_texts"] = texts
    return merged


class Server:
    def __init__(self, data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8080, workers: int = 0,
                 demo_monitors: bool = False, max_inflight: int = 0, http_server: str = "uvicorn",
                 alert_retry_base: float = 2.0, deny_private: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.workers = workers or os.cpu_count() or 1
        self.demo = demo_monitors
        self.max_inflight = max_inflight
        self.http_server = http_server
        self.alert_retry_base = alert_retry_base
        #: Refuse monitors of private, loopback and link-local targets (shared installs).
        self.deny_private = deny_private
        self.store: DuckDBStore | None = None
        self.engine: Engine | None = None
        self._db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="duckdb")
        self._ro = concurrent.futures.ThreadPoolExecutor(READERS, thread_name_prefix="duckdb-ro")
        self._rollups = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="duckdb-rollup")
        self._queue: asyncio.Queue[tuple[dict[str, Any], list[Transition]] | None] = asyncio.Queue(maxsize=64)
        self._stop = asyncio.Event()
        self.rows_written = 0
        self.ready = asyncio.Event()
        #: monitor id -> (ts µs, latency µs) of its newest check, for the API's lastCheckAt.
        self.last_checks = LastChecks()
        #: The API's monitor list is answered from memory: the engine's monitor set (with live
        #: statuses), each account's ids in order, and each monitor's timestamps.
        self.account_ids: dict[int, list[int]] = {}
        self.monitor_times: dict[int, dict[str, Any]] = {}
        self.wire_cache: dict[int, tuple[Monitor, dict[str, Any]]] = {}  # see api.monitors.monitor_body
        #: Push monitors: token -> monitor id (``/api/push/{token}``).
        self.push_tokens: dict[str, int] = {}
        #: The notification channels of every account, kept in step with the database.
        self.integrations: dict[int, Integration] = {}
        self.alerts: Dispatcher | None = None
        self.app: Any = None
        self.http: Any = None
        self.http_url = ""
        #: Single creates waiting for the writer, committed together (see ``create_monitor``).
        self._pending_creates: list[tuple[Monitor, asyncio.Future[tuple[Monitor, dict[str, Any]]]]] = []
        self._creating = False
        #: The one door of every face (the API, the control socket): see ``core.services``.
        self.services = Services(monitors=MonitorService(self), integrations=IntegrationService(self))

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._db, functools.partial(fn, *args, **kwargs))

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one of the store's read methods (reader cursors) beside the writer."""
        return await asyncio.get_running_loop().run_in_executor(self._ro, functools.partial(fn, *args, **kwargs))

    # lifecycle ---------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        listener = self._bind_http()  # first, so a busy port fails before anything starts
        self.store = await self.db(DuckDBStore, self.data_dir)
        self.last_checks.load(await self.db(self.store.last_checks))
        demo_target = None
        if self.demo:
            demo_target = await demo.start_target()
            await self.db(demo.ensure_monitors, self.store, demo_target.base_url)
        monitors = await self.db(self.store.list_monitors)
        self.monitor_times = await self.db(self.store.monitor_times)
        for monitor in monitors:
            bisect.insort(self.account_ids.setdefault(monitor.account_id, []), monitor.id)
            self._index_push(monitor)
        self.integrations = {i.id: i for i in await self.db(self.store.list_integrations)}
        self.alerts = Dispatcher(fetch_due=functools.partial(self.read, self.store.due_outbox),
                                 record=functools.partial(self.db, self.store.record_deliveries),
                                 integration=self.integrations.get, base_url=self.http_url,
                                 backoff_base=self.alert_retry_base)
        await self.alerts.start()
        self.engine = Engine(self.workers, self._enqueue, max_inflight=self.max_inflight,
                             deny_private=self.deny_private)
        ingest = loop.create_task(self._ingest_loop())
        rollups = loop.create_task(self._rollup_loop())
        reminders = loop.create_task(self._reminder_loop())
        await self.engine.start(monitors)
        control = await self._start_control()
        http_task = await self._start_http(listener)
        self._banner(len(monitors), demo_target)
        # Requests allocate many short-lived objects: collect young garbage less often, and keep
        # what startup loaded (monitors, caches, modules) out of the collector's full passes.
        gc.set_threshold(50_000, 20, 100)
        gc.freeze()
        if _slow_collections not in gc.callbacks:
            gc.callbacks.append(_slow_collections)
        self.ready.set()
        try:
            await self._stop.wait()
        finally:
            log.info("shutting down: flushing workers")
            control.close()
            self._stop_http()
            await http_task
            log.info("shutting down: HTTP stopped")
            self._usage_task.cancel()
            await self._save_usage()
            await self.engine.stop()
            await self._queue.put(None)
            await ingest
            log.info("shutting down: workers stopped, results written")
            await self.alerts.stop()  # unsent messages stay in the outbox for the next start
            rollups.cancel()
            reminders.cancel()
            self._rollups.shutdown(wait=True)  # a rollup in progress finishes before the store closes
            if demo_target is not None:
                await demo_target.close()
            await self.db(self.store.close)
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / CONTROL_SOCKET).unlink()
            self._db.shutdown()
            self._ro.shutdown(wait=False)
            log.info("stopped; %d results written this run", self.rows_written)

    def stop(self) -> None:
        self._stop.set()

    def _banner(self, count: int, demo_target: demo.DemoTarget | None) -> None:
        lines = [
            f"xuptime serving {count} monitor(s) with {self.workers} engine worker(s)",
            f"  data dir:  {self.data_dir.resolve()}",
            f"  control:   {self.data_dir / CONTROL_SOCKET} (used by `xuptime monitors ...`, `xuptime sql ...`)",
            f"  API:       {self.http_url}/api/v1/monitors?limit=25 (Authorization: Bearer <key>)",
            f"  health:    {self.http_url}/healthz (the web dashboard comes later)",
            f"  API key:   xuptime keys create --data-dir {self.data_dir} (prints the key once, last line)",
            "  try:       xuptime sql \"SELECT monitor_id, count(*), avg(latency_us) FROM checks GROUP BY 1\"",
        ]
        if demo_target is not None:
            lines.insert(1, f"  demo:      monitors tagged 'demo' check a local demo target at {demo_target.base_url}")
        print("\n".join(lines), flush=True)

    # HTTP --------------------------------------------------------------------------------
    def _bind_http(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise SystemExit(f"xuptime: cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        sock.listen(1024)
        sock.setblocking(False)
        host, port = sock.getsockname()[:2]
        self.http_url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        return sock

    async def _start_http(self, listener: socket.socket) -> asyncio.Task[None]:
        """Serve the API on this loop with the chosen embedded ASGI server (uvicorn by default:
        bench.api measures both)."""
        from api.app import create_app

        self.app = create_app(self)
        await self.reload_api_keys()
        self._usage_task = asyncio.get_running_loop().create_task(self._save_usage_loop())
        if self.http_server == "granian":
            return self._start_granian(listener)
        import uvicorn

        class _Embedded(uvicorn.Server):
            def capture_signals(self) -> contextlib.AbstractContextManager[None]:
                return contextlib.nullcontext()  # the server's own SIGTERM/SIGINT handling stays

        # A request still open at shutdown (a client that never sends its body) gets 5 s.
        config = uvicorn.Config(self.app, lifespan="on", log_level="warning", access_log=False,
                                server_header=False, date_header=True, timeout_graceful_shutdown=5)
        self.http = _Embedded(config)
        return asyncio.get_running_loop().create_task(self.http.serve(sockets=[listener]))

    def _start_granian(self, listener: socket.socket) -> asyncio.Task[None]:
        try:
            from granian.constants import Interfaces
            from granian.server.embed import Server as Granian
        except ImportError:
            raise SystemExit("xuptime: --http-server granian needs granian: pip install granian") from None
        host, port = listener.getsockname()[:2]
        listener.close()  # granian binds its own socket (same address, SO_REUSEADDR)
        self.http = Granian(self.app, address=host, port=port, interface=Interfaces.ASGI, backlog=1024,
                            runtime_threads=1, log_enabled=False)
        return asyncio.get_running_loop().create_task(self.http.serve())

    def _stop_http(self) -> None:
        if self.http_server == "granian":
            self.http.stop()
        else:
            self.http.should_exit = True

    async def reload_api_keys(self) -> None:
        """Refresh what authentication reads without the database: keys and account limits."""
        assert self.store is not None and self.app is not None
        self.app.state.api_keys = await self.db(self.store.api_key_map)
        quota = self.app.state.quota
        limits = await self.db(self.store.account_limits)
        if quota.month:
            quota.limits = limits
        else:
            month, _ = month_bounds(dt.datetime.now(dt.UTC))
            quota.load(month, await self.db(self.store.usage_for_month, month), limits)

    async def _save_usage_loop(self) -> None:
        """Write the quota counters behind, every 100 ms (and once more at shutdown)."""
        while True:
            await asyncio.sleep(0.1)
            await self._save_usage()

    async def _save_usage(self) -> None:
        assert self.store is not None and self.app is not None
        month, counts = self.app.state.quota.take_dirty()
        if counts:
            await self.db(self.store.save_usage, month, counts)

    async def _reminder_loop(self) -> None:
        """Queue reminders for incidents still open, checked every 15 s; once an hour, forget
        finished messages older than ``OUTBOX_KEEP_DAYS`` so the outbox stays bounded."""
        assert self.store is not None and self.alerts is not None
        pruned_at = 0.0
        while True:
            await asyncio.sleep(REMINDER_EVERY_S)
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            try:
                if await self.db(self.store.queue_reminders, now):
                    self.alerts.wake()
                if time.monotonic() - pruned_at > 3600:
                    pruned_at = time.monotonic()
                    await self.db(self.store.prune_outbox, now - dt.timedelta(days=OUTBOX_KEEP_DAYS))
            except duckdb.Error:
                log.exception("cannot queue reminders or prune the outbox; retrying")

    async def _rollup_loop(self) -> None:
        """Roll closed hours up (catching up at start), then check again every minute."""
        assert self.store is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                hours = await loop.run_in_executor(self._rollups, self.store.rollup, time.time_ns() // 1000)
                if hours:
                    log.info("rolled up %d monitor-hours (now up to %s)", hours, self.store.rollup_upto_us)
            except duckdb.Error:
                log.exception("rollup failed; retrying in a minute (reads stay exact from raw checks)")
            await asyncio.sleep(ROLLUP_EVERY_S)

    # ingest ------------------------------------------------------------------------------
    async def _enqueue(self, batch: dict[str, Any], transitions: list[Transition]) -> None:
        await self._queue.put((batch, transitions))

    async def _ingest_loop(self) -> None:
        assert self.store is not None
        done = False
        while not done:
            item = await self._queue.get()
            if item is None:
                break
            batches, transitions, rows = [item[0]], list(item[1]), len(item[0]["monitor_id"])
            while rows < MAX_COALESCED_ROWS and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    done = True
                    break
                batches.append(nxt[0])
                transitions.extend(nxt[1])
                rows += len(nxt[0]["monitor_id"])
            try:
                if rows:
                    merged = _merge(batches)
                    self.rows_written += await self.db(self.store.ingest, merged)
                    self.last_checks.note(merged)
                if transitions:
                    await self.db(self.store.apply_transitions, transitions)
                    assert self.engine is not None and self.alerts is not None
                    self.alerts.wake()
                    for t in transitions:
                        self.engine.set_status(t.monitor_id, t.new)
                        times = self.monitor_times.get(t.monitor_id)
                        if times is not None:
                            times["statusSince"] = dt.datetime.fromtimestamp(
                                t.ts_us / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            except Exception:
                log.exception("ingest of %d rows failed", rows)

    # control socket ----------------------------------------------------------------------
    async def _start_control(self) -> asyncio.AbstractServer:
        path = self.data_dir / CONTROL_SOCKET
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = await asyncio.start_unix_server(self._serve_control, path=str(path), limit=16 * 1024 * 1024)
        os.chmod(path, 0o600)
        return server

    async def _serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    response = {"ok": True, "data": await self.handle(request.get("op"), request.get("args") or {})}
                except ServiceError as exc:
                    response = {"ok": False, "error": exc.reason[:1].lower() + exc.reason[1:],
                                "errors": [{"field": e.field, "message": e.message} for e in exc.errors or []]}
                except OpError as exc:
                    response = {"ok": False, "error": str(exc)}
                except (ValueError, KeyError, LookupError) as exc:
                    response = {"ok": False, "error": str(exc)}
                except Exception as exc:
                    log.exception("control request failed")
                    response = {"ok": False, "error": f"internal error: {type(exc).__name__}"}
                writer.write(json.dumps(response, default=str).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    # monitor changes: store first (transactional), then the owning worker ------------------
    # The control socket and the HTTP API both go through these, so they cannot drift apart.
    def _index_push(self, monitor: Monitor, old: Monitor | None = None) -> None:
        token = getattr(old.spec, "push_token", None) if old is not None else None
        if token is not None and self.push_tokens.get(token) == old.id:
            del self.push_tokens[token]
        token = getattr(monitor.spec, "push_token", None)
        if token is not None:
            self.push_tokens[token] = monitor.id

    async def push(self, token: str, ok: bool, msg: str | None, ping_ms: float | None) -> bool:
        """A heartbeat for the push monitor with this token; False if there is none. A paused
        monitor's heartbeats are taken and ignored."""
        assert self.engine is not None
        monitor_id = self.push_tokens.get(token)
        if monitor_id is None:
            return False
        await self.engine.push(monitor_id, time.time(), ok, msg, ping_ms)
        return True

    async def create_monitor(self, monitor: Monitor) -> tuple[Monitor, dict[str, Any]]:
        """Store and schedule one monitor. Creates that arrive while the writer is busy are
        committed together (one statement, one transaction, one frame per worker): with many
        concurrent clients the writer works in batches instead of a round trip each."""
        future: asyncio.Future[tuple[Monitor, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._pending_creates.append((monitor, future))
        if not self._creating:
            self._creating = True
            asyncio.get_running_loop().create_task(self._commit_creates())
        return await future

    async def _commit_creates(self) -> None:
        solo = 0  # after a batch failed, its monitors go one at a time: one that fails fails alone
        try:
            while self._pending_creates:
                if len(self._pending_creates) < 8:  # let creates already on their way join the batch
                    await asyncio.sleep(CREATE_LINGER_S)
                size = 1 if solo else MAX_BULK
                batch = self._pending_creates[:size]
                del self._pending_creates[:size]
                solo = max(0, solo - 1)
                try:
                    created = await self.create_monitors([monitor for monitor, _ in batch])
                except Exception as exc:
                    if len(batch) > 1:
                        self._pending_creates[:0] = batch
                        solo = len(batch)
                    elif not batch[0][1].done():
                        batch[0][1].set_exception(exc)
                    continue
                for (_, future), found in zip(batch, created, strict=True):
                    if not future.done():
                        future.set_result(found)
        finally:
            self._creating = False

    async def create_monitors(self, monitors: list[Monitor]) -> list[tuple[Monitor, dict[str, Any]]]:
        """Store monitors in one transaction (all or none) and schedule them: the monitors as
        stored, with their timestamps, in the order given."""
        assert self.store is not None and self.engine is not None
        created = await self.db(self.store.create_monitors, monitors)
        for monitor, times in created:
            self._index_push(monitor)
            self.monitor_times[monitor.id] = times
            bisect.insort(self.account_ids.setdefault(monitor.account_id, []), monitor.id)
        await self.engine.upsert_many([monitor for monitor, _ in created])
        return created

    async def update_monitor(self, monitor: Monitor, paused_changed: bool = False
                             ) -> tuple[Monitor, dict[str, Any]] | None:
        """Store a changed monitor (one statement, pausing or resuming included) and hand it
        to its worker once."""
        assert self.store is not None and self.engine is not None
        old = self.engine.monitors.get(monitor.id)
        found = await self.db(self.store.update_monitor, monitor, paused_changed)
        if found is not None:
            updated, times = found
            self._index_push(updated, old)
            self.monitor_times[updated.id] = times
            await self.engine.upsert(updated)
        return found

    async def delete_monitor(self, monitor_id: int) -> bool:
        assert self.store is not None and self.engine is not None
        monitor = self.engine.monitors.get(monitor_id)
        if not await self.db(self.store.delete_monitor, monitor_id):
            return False
        await self.engine.delete(monitor_id)
        if monitor is not None:
            token = getattr(monitor.spec, "push_token", None)
            if token is not None and self.push_tokens.get(token) == monitor_id:
                del self.push_tokens[token]
        self.last_checks.pop(monitor_id)
        self.monitor_times.pop(monitor_id, None)
        self.wire_cache.pop(monitor_id, None)
        if monitor is not None:
            ids = self.account_ids.get(monitor.account_id, [])
            at = bisect.bisect_left(ids, monitor_id)
            if at < len(ids) and ids[at] == monitor_id:
                del ids[at]
        return True

    def live_monitor(self, monitor_id: int) -> Monitor | None:
        """The engine's copy of a monitor (with its live status), or None."""
        return self.engine.monitors.get(monitor_id) if self.engine is not None else None

    async def set_paused(self, monitor_id: int, paused: bool) -> tuple[Monitor, dict[str, Any]] | None:
        """Pause or resume in one statement, and tell the worker."""
        assert self.store is not None and self.engine is not None
        found = await self.db(self.store.set_paused_with_times, monitor_id, paused)
        if found is not None:
            self.monitor_times[monitor_id] = found[1]
            await self.engine.upsert(found[0])
        return found

    def monitor_times_of(self, monitor_id: int) -> dict[str, Any]:
        """A monitor's createdAt, updatedAt and statusSince, from memory."""
        return self.monitor_times.get(monitor_id, {})

    # notification channels -----------------------------------------------------------------
    async def create_integration(self, integration: Integration) -> Integration:
        assert self.store is not None
        created = await self.db(self.store.create_integration, integration)
        self.integrations[created.id] = created
        return created

    async def update_integration(self, integration: Integration) -> Integration | None:
        assert self.store is not None
        updated = await self.db(self.store.update_integration, integration)
        if updated is not None:
            self.integrations[updated.id] = updated
        return updated

    async def send_test(self, integration: Integration, context: dict[str, Any]) -> SendResult:
        """Send one message now, outside the outbox (a channel's test)."""
        assert self.alerts is not None
        return await self.alerts.send_now(integration, context)

    async def outbox_page(self, account_id: int, integration_id: int, status: str | None, before: int | None,
                          limit: int) -> tuple[list[dict[str, Any]], bool]:
        """A channel's messages, newest first, read on a reader thread."""
        assert self.store is not None
        return await self.read(self.store.outbox_page, account_id, integration_id, status, before, limit)

    async def delete_integration(self, account_id: int, integration_id: int) -> bool:
        """Delete a channel, and detach it from the monitors that named it."""
        assert self.store is not None and self.engine is not None
        touched = await self.db(self.store.delete_integration, account_id, integration_id)
        if touched is None:
            return False
        self.integrations.pop(integration_id, None)
        for monitor_id in touched:
            monitor = self.engine.monitors.get(monitor_id)
            if monitor is not None:
                await self.engine.upsert(msgspec.structs.replace(
                    monitor, integrations=[i for i in monitor.integrations if i != integration_id]))
        return True

    def monitor_page(self, account_id: int, after_id: int, limit: int, *, status: str | None = None,
                     kind: str | None = None, tag: str | None = None, q: str | None = None
                     ) -> tuple[list[tuple[Monitor, dict[str, Any]]], int, bool]:
        """One keyset page of an account's monitors by id, from memory (no database round
        trip): ``(monitors with their timestamps, total matching, more after this page)``."""
        assert self.engine is not None
        monitors = self.engine.monitors
        ids = self.account_ids.get(account_id, [])
        if status is not None or kind is not None or tag is not None or q is not None:
            needle = q.lower() if q is not None else None
            ids = [i for i in ids if (m := monitors.get(i)) is not None
                   and (status is None or m.status == status) and (kind is None or m.type == kind)
                   and (tag is None or tag in m.tags) and (needle is None or needle in m.name.lower())]
        start = bisect.bisect_right(ids, after_id)
        chosen = ids[start:start + limit + 1]
        page = [(monitors[i], self.monitor_times.get(i, {})) for i in chosen[:limit] if i in monitors]
        return page, len(ids), len(chosen) > limit

    async def handle(self, op: str | None, args: dict[str, Any]) -> Any:
        """One control operation for the CLI."""
        store, engine = self.store, self.engine
        assert store is not None and engine is not None
        if op == "ping":
            return {"pid": os.getpid()}
        if op in STORE_OPS:
            result = await self.db(STORE_OPS[op], store, args)
            if op.startswith(("keys.", "accounts.")):
                await self.reload_api_keys()
            return result
        if op == "monitors.list":
            return [monitor_row(m) for m in await self.db(store.list_monitors)]
        monitors = self.services.monitors
        if op == "monitors.add":  # the CLI's monitors are the default account's
            return monitor_row((await monitors.create(DEFAULT_ACCOUNT, args.get("monitor")))[0])
        if op in ("monitors.remove", "monitors.pause", "monitors.resume"):
            mid = int(args["id"])
            live = self.live_monitor(mid)  # the CLI acts on any account's monitor, as its owner would
            account = live.account_id if live is not None else DEFAULT_ACCOUNT
            try:
                if op == "monitors.remove":
                    await monitors.delete(account, mid)
                    return {"id": mid, "deleted": True}
                return monitor_row((await monitors.set_paused(account, mid, op == "monitors.pause"))[0])
            except NotFound:
                raise LookupError(f"no monitor {mid}") from None
        if op == "sql":
            loop = asyncio.get_running_loop()
            try:
                columns, rows = await loop.run_in_executor(self._ro, store.query, str(args["sql"]))
            except (ReadOnlyQueryError, duckdb.Error) as exc:
                raise ValueError(str(exc)) from None
            return {"columns": columns, "rows": rows}
        if op == "stats":
            stats = engine.stats()
            histogram = stats.pop("latenessHistogram")
            if args.get("histogram"):
                stats["latenessHistogram"] = histogram.tolist()
            stats["rowsWritten"] = self.rows_written
            stats["rollupUptoUs"] = store.rollup_upto_us  # exclusive end of the rolled-up hours
            if self.app is not None:
                cache = self.app.state.history_cache
                stats["historyCache"] = {"hits": cache.hits, "computed": cache.computed}
            return stats
        raise ValueError(f"unknown operation {op!r}")


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


class LastChecks:
    """Each monitor's latest check, as (ts µs, latency µs), in two arrays indexed by monitor
    id (ids are dense: a database sequence). A batch updates them in a few numpy calls: at
    100k checks a second a dict of tuples, updated per monitor, cost a tenth of a core. A later
    batch never holds an older check of a monitor (one worker owns it, and its checks never
    overlap), so the batch's latest simply replaces."""

    def __init__(self) -> None:
        self._ts = np.zeros(1024, dtype=np.int64)  # 0: none
        self._latency = np.zeros(1024, dtype=np.int64)

    def _fit(self, top: int) -> None:
        if top >= len(self._ts):
            size = max(top + 1, 2 * len(self._ts))
            self._ts = np.concatenate([self._ts, np.zeros(size - len(self._ts), dtype=np.int64)])
            self._latency = np.concatenate([self._latency, np.zeros(size - len(self._latency), dtype=np.int64)])

    def load(self, known: dict[int, tuple[int, int]]) -> None:
        if not known:
            return
        ids = np.fromiter(known, dtype=np.int64, count=len(known))
        values = np.array(list(known.values()), dtype=np.int64).reshape(-1, 2)
        self._fit(int(ids.max()))
        self._ts[ids], self._latency[ids] = values[:, 0], values[:, 1]

    def note(self, batch: dict[str, Any]) -> None:
        ids = batch["monitor_id"]
        if not len(ids):
            return
        unique, first_in_rev = np.unique(ids[::-1], return_index=True)
        last = len(ids) - 1 - first_in_rev
        self._fit(int(unique[-1]))
        self._ts[unique] = batch["ts_us"][last]
        self._latency[unique] = batch["latency_us"][last]

    def get(self, monitor_id: int) -> tuple[int, int] | None:
        if not 0 <= monitor_id < len(self._ts):
            return None
        ts = self._ts.item(monitor_id)  # (item(): a Python int, without a numpy scalar between)
        return (ts, self._latency.item(monitor_id)) if ts else None

    def pop(self, monitor_id: int) -> None:
        if 0 <= monitor_id < len(self._ts):
            self._ts[monitor_id] = self._latency[monitor_id] = 0
