"""Main-process side of the engine: spawns one worker process per shard, sends each its
monitors (``monitor_id % shards``), receives results, and restarts a worker that dies.

The supervisor keeps the authoritative monitor set in memory so a restarted worker gets its
whole shard again. Results are handed to ``on_results`` in arrival order; it may apply
back-pressure (by awaiting), which stops reading that worker's socket: the worker then
buffers and finally drops, counting what it dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from core import heap
from core.engine.scheduler import LATENESS_BUCKETS
from core.engine.table import MonitorTable
from core.engine.transport import (
    AgentResults,
    Bye,
    Channel,
    Delete,
    Hello,
    Push,
    Results,
    Shutdown,
    Stats,
    StreamChannel,
    Upsert,
    batch_from_frame,
)
from core.models import Monitor, Transition

__all__ = ["Engine"]

log = logging.getLogger("xuptime.engine")
UPSERT_CHUNK = 5000
ResultsHandler = Callable[[dict[str, Any], list[Transition]], Awaitable[None]]


class _WorkerHandle:
    def __init__(self, shard: int) -> None:
        self.shard = shard
        self.proc: asyncio.subprocess.Process | None = None
        self.channel: Channel | None = None
        self.ready = False
        self.stats: Stats | None = None
        self.restarts = 0
        self.said_bye = False
        self.task: asyncio.Task[None] | None = None
        #: Stats of previous incarnations, so counters survive restarts.
        self.base_checks = 0
        self.base_lateness = np.zeros(LATENESS_BUCKETS, dtype=np.int64)


class Engine:
    """The engine as the main process holds it: the authoritative monitor set (with live
    statuses, set by ingest), one worker process per shard, and the frames between them. A
    change is sent only to the worker that owns the monitor (``monitor_id % shards``); a
    restarted worker gets its whole shard again."""

    def __init__(self, shards: int, on_results: ResultsHandler, *, max_inflight: int = 0,
                 log_level: str | None = None, deny_private: bool = False) -> None:
        if shards < 1:
            raise ValueError("need at least one worker")
        self.shards = shards
        self.on_results = on_results
        self.max_inflight = max_inflight
        self.log_level = log_level
        self.deny_private = deny_private
        #: Every monitor, with its live status (what the services read; the serve process sets
        #: the table it loaded before ``start``).
        self.monitors = MonitorTable()
        self.workers = [_WorkerHandle(i) for i in range(shards)]
        self.stopping = False

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the workers; each is sent its shard of ``monitors``."""
        for handle in self.workers:
            await self._spawn(handle)
            handle.task = asyncio.get_running_loop().create_task(self._supervise(handle))

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask every worker to flush and exit; wait for their last results."""
        self.stopping = True
        for handle in self.workers:
            if handle.channel is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await handle.channel.send(Shutdown())
        tasks = [h.task for h in self.workers if h.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
        for handle in self.workers:
            if handle.proc is not None and handle.proc.returncode is None:
                handle.proc.kill()
                await handle.proc.wait()

    async def _spawn(self, handle: _WorkerHandle) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        args = [sys.executable, "-m", "core.engine.worker", "--fd", str(child.fileno()),
                "--shard", str(handle.shard), "--shards", str(self.shards)]
        if self.max_inflight:
            args += ["--max-inflight", str(self.max_inflight)]
        env = dict(os.environ)
        if self.log_level:
            env["XUPTIME_LOG_LEVEL"] = self.log_level
        if self.deny_private:
            env["XUPTIME_DENY_PRIVATE"] = "1"  # read by the workers' checker Env
        handle.proc = await asyncio.create_subprocess_exec(*args, pass_fds=(child.fileno(),), env=env)
        child.close()
        handle.channel = await StreamChannel.from_socket(parent)
        handle.ready = False
        handle.said_bye = False

    async def _supervise(self, handle: _WorkerHandle) -> None:
        backoff = 0.2
        while True:
            started = time.monotonic()
            await self._pump(handle)
            proc = handle.proc
            if proc is not None:
                code = await proc.wait()
                if not handle.said_bye:
                    log.warning("worker %d (pid %s) exited with %s", handle.shard, proc.pid, code)
            if handle.stats is not None:
                handle.base_checks += handle.stats.checks
                handle.base_lateness += np.frombuffer(handle.stats.lateness_ms, dtype=np.int64)
                handle.stats = None
            if self.stopping:
                return
            backoff = 0.2 if time.monotonic() - started > 30 else min(backoff * 2, 10.0)
            await asyncio.sleep(backoff)
            if self.stopping:
                return
            handle.restarts += 1
            log.warning("restarting worker %d (restart #%d)", handle.shard, handle.restarts)
            await self._spawn(handle)

    async def _pump(self, handle: _WorkerHandle) -> None:
        channel = handle.channel
        assert channel is not None
        try:
            while True:
                frame = await channel.recv()
                if frame is None:
                    break
                if isinstance(frame, Results):
                    await self.on_results(batch_from_frame(frame), frame.transitions)
                elif isinstance(frame, Stats):
                    handle.stats = frame
                elif isinstance(frame, Hello):
                    handle.ready = True
                    await self._send_shard(handle)
                elif isinstance(frame, Bye):
                    handle.said_bye = True
        except (ConnectionError, ValueError) as exc:
            log.error("worker %d channel failed: %s", handle.shard, exc)
        finally:
            handle.ready = False
            channel.close()
            handle.channel = None

    async def _send_shard(self, handle: _WorkerHandle) -> None:
        table = self.monitors
        mine = [mid for mid in table if mid % self.shards == handle.shard]
        for i in range(0, len(mine), UPSERT_CHUNK):
            if handle.channel is None:
                return
            # (``from_table`` leaves out what was deleted while the shard was being sent)
            await handle.channel.send(Upsert.from_table(table, mine[i:i + UPSERT_CHUNK]))
        del mine
        heap.trim()  # (the frames' bytes, freed: a million monitors' worth at a start)

    # control -----------------------------------------------------------------------------
    def _owner(self, monitor_id: int) -> _WorkerHandle:
        return self.workers[monitor_id % self.shards]

    async def upsert(self, monitor: Monitor) -> None:
        await self.upsert_many([monitor])

    async def upsert_many(self, monitors: list[Monitor]) -> None:
        """Add or replace monitors: one frame per owning worker, however many."""
        by_owner: dict[int, list[Monitor]] = {}
        for monitor in monitors:
            self.monitors.put(monitor)
            by_owner.setdefault(monitor.id % self.shards, []).append(monitor)
        for shard, batch in by_owner.items():
            handle = self.workers[shard]
            if handle.ready and handle.channel is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):  # (the bytes the table packed)
                    await handle.channel.send(Upsert.from_table(self.monitors, [m.id for m in batch]))

    async def delete(self, monitor_id: int) -> None:
        self.monitors.pop(monitor_id, None)
        handle = self._owner(monitor_id)
        if handle.ready and handle.channel is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await handle.channel.send(Delete(ids=[monitor_id]))

    async def push(self, monitor_id: int, ts: float, ok: bool, msg: str | None, ping_ms: float | None) -> bool:
        """Hand a heartbeat to the worker that owns the monitor; False if it cannot take it now."""
        handle = self._owner(monitor_id)
        if not (handle.ready and handle.channel is not None):
            return False
        try:
            await handle.channel.send(Push(monitor_id=monitor_id, ts=ts, ok=ok, msg=msg, ping_ms=ping_ms))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def report(self, results: list[tuple[int, float, bool, str | None]]) -> None:
        """Hand judged agent reports to their owning workers, one frame per worker. A worker
        that is restarting misses them (its silence watch starts afresh when it is back)."""
        by_owner: dict[int, list[tuple[int, float, bool, str | None]]] = {}
        for item in results:
            by_owner.setdefault(item[0] % self.shards, []).append(item)
        for items in by_owner.values():
            handle = self._owner(items[0][0])
            if handle.ready and handle.channel is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await handle.channel.send(AgentResults(results=items))

    def set_status(self, monitor_id: int, status: str) -> None:
        self.monitors.set_status(monitor_id, status)

    # introspection -----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Totals over all workers and their previous incarnations."""
        lateness = np.zeros(LATENESS_BUCKETS, dtype=np.int64)
        out: dict[str, Any] = {"workers": [], "checks": 0, "inflight": 0, "queued": 0, "skippedOverlap": 0,
                               "dropped": 0, "rssBytes": 0, "tlsHandshakes": 0, "tlsResumed": 0,
                               "handedOver": 0, "detours": 0}
        for h in self.workers:
            lateness += h.base_lateness
            out["checks"] += h.base_checks
            s = h.stats
            pid = h.proc.pid if h.proc is not None else None
            out["workers"].append({"shard": h.shard, "pid": pid, "ready": h.ready, "restarts": h.restarts,
                                   "monitors": s.monitors if s else 0, "inflightLimit": s.limit if s else 0})
            if s is None:
                continue
            lateness += np.frombuffer(s.lateness_ms, dtype=np.int64)
            out["checks"] += s.checks
            out["inflight"] += s.inflight
            out["queued"] += s.queued
            out["skippedOverlap"] += s.skipped_overlap
            out["dropped"] += s.dropped
            out["rssBytes"] += s.rss_bytes
            out["tlsHandshakes"] += s.tls_handshakes
            out["tlsResumed"] += s.tls_resumed
            out["handedOver"] += s.handed_over
            out["detours"] += s.detours
        total = int(lateness.sum())
        cumulative = np.cumsum(lateness)
        for q, key in ((0.5, "latenessP50Ms"), (0.99, "latenessP99Ms")):
            out[key] = int(np.searchsorted(cumulative, q * total)) if total else 0
        out["latenessHistogram"] = lateness
        return out
