"""What every service shares: the store's threads, the engine's control surface, and the
catalog (the in-memory read model that answers monitor reads without the database).

Invariants:

- DuckDB work never runs on the event loop. Writes run on ``StoreThreads``' one writer thread
  (DuckDB allows one writer; a single thread also orders them), reads on its reader threads
  (each with its own cursor in the store).
- The catalog is changed only after the store committed, and only on the event loop, so a
  read from memory never shows a change the database does not hold.
"""

from __future__ import annotations

import asyncio
import bisect
import calendar
import concurrent.futures
import contextlib
import errno
import functools
import os
import threading
import time
from array import array
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from core.clock import iso_seconds
from core.engine.table import MonitorTable
from core.models import TOKEN_KINDS, Integration, Monitor, MonitorTimes
from core.services.errors import Unavailable
from core.services.live import LiveFeed
from core.services.probes import ProbeTable, newest_rows
from core.services.recent import RecentWindow
from core.services.recent_checks import RecentChecks
from core.services.recent_hours import RecentHours

__all__ = ["Catalog", "DormantEngine", "EngineLink", "GroupCommit", "LastChecks", "MonitorTimesTable", "StoreThreads",
           "out_of_space"]

T = TypeVar("T")
QUIET_MAX_S = 0.05
In = TypeVar("In")
Out = TypeVar("Out")


BACKGROUND_NICE = 10


def background_priority() -> None:
    """(A background thread's initializer: the rollup job's, the reads ahead.) Give this
    thread a low CPU priority (nice 10): rollups, compaction, retention and reads nobody waits
    for can wait, checks and requests cannot. With DuckDB on one thread per core, a statement
    runs on the thread that calls it, so the whole statement yields to the engine and the
    event loop when a core is contended (at capacity, a catch-up rollup at normal priority cut
    checks per second to a third). Not the lowest (19): at saturation the rollup would then
    barely run and could fall behind for good (``bench.upkeep``)."""
    with contextlib.suppress(OSError):  # (not Linux, or not allowed: it runs at normal priority)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


class StoreThreads:
    """The writer thread, the reader threads of one store, and one reader thread at a low
    priority for reads nobody waits for (``read_behind``): the store has a reader cursor for
    each (``READERS`` + 1), so a read behind never keeps a cursor from a read a page waits for."""

    def __init__(self, readers: int) -> None:
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="duckdb")
        self._readers = concurrent.futures.ThreadPoolExecutor(readers, thread_name_prefix="duckdb-ro")
        self._behind = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="duckdb-behind",
                                                             initializer=background_priority)
        #: Store calls on the writer thread and on the readers by name: [calls, CPU seconds
        #: of the thread, seconds taken] (``xuptime status --json`` shows them: where the
        #: store's time goes).
        self.writes: dict[str, list[float]] = {}
        self.reads: dict[str, list[float]] = {}

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call on the writer thread. A disk that is full is ``Unavailable`` (the
        store rolled the change back: nothing was changed)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._writer, self._timed, self.writes, fn, args,
                                                                    kwargs)
        except Exception as exc:
            if out_of_space(exc):
                raise Unavailable("The data dir is out of space; nothing was changed") from exc
            raise

    @staticmethod
    def _timed(into: dict[str, list[float]], fn: Callable[..., T], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> T:
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            figures = into.setdefault(getattr(fn, "__name__", "call"), [0, 0.0, 0.0])
            figures[0] += 1  # (readers may race here: the figures are a guide, not a ledger)
            figures[1] += time.thread_time() - cpu
            figures[2] += time.perf_counter() - wall

    def stats(self) -> dict[str, Any]:
        return {f"store{kind}": {name: {"calls": int(n), "cpuSeconds": round(cpu, 3), "seconds": round(wall, 3)}
                                 for name, (n, cpu, wall) in sorted(figures.items())}
                for kind, figures in (("Writes", self.writes), ("Reads", self.reads))}

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one of the store's read methods (reader cursors) beside the writer."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._timed, self.reads, fn, args,
                                                                kwargs)

    async def read_behind(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``read`` at a low CPU priority, for what no request waits for (a read ahead)."""
        return await asyncio.get_running_loop().run_in_executor(self._behind, self._timed, self.reads, fn, args,
                                                                kwargs)

    def shutdown(self) -> None:
        self._writer.shutdown()
        self._readers.shutdown(wait=False)
        self._behind.shutdown(wait=False)


def out_of_space(exc: BaseException) -> bool:
    """A failure because the data dir's disk is full (DuckDB says so in its message)."""
    return (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left on device" in str(exc)


class GroupCommit(Generic[In, Out]):
    """Writes of one kind that arrive while the writer is busy are stored together: one store
    call (one statement or one transaction, one commit) for the batch, then ``after`` once for
    the batch on the loop (the catalog, one frame per worker). A commit costs about the same
    for 1 row as for 16, and the writer's core is the engine's too.

    A batch waits at most ``linger`` seconds for more when it has fewer than ``batch`` items;
    with ``quiet``, no longer than ``quiet`` times the mean gap between arrivals (over the
    last second; at most ``QUIET_MAX_S``, so a lone caller is not kept waiting) without a new
    item: callers that wait for their answer before sending
    again will not send more until this batch is stored, while callers on their own clocks
    keep the gaps near their mean (at random arrivals, a gap of 6 means happens 0.25% of the
    time).
    If a batch fails, its items are retried one at a time, so one bad item fails alone; every
    caller gets its own result or exception, in the order the store returned them."""

    def __init__(self, threads: StoreThreads, store_many: Callable[[list[In]], list[Out]],
                 after: Callable[[list[Out]], Awaitable[None]], *, batch: int = 16, limit: int = 1000,
                 linger: float = 0.002, quiet: float | None = None) -> None:
        self.threads = threads
        self.store_many = store_many
        self.after = after
        self.batch, self.limit, self.linger, self.quiet = batch, limit, linger, quiet
        self._gap = linger  # mean gap between arrivals (s), over the last second or so
        self._arrived = self._counted_from = 0.0
        self._counted = 0
        #: Store calls made and the items they stored (their ratio is the batch size), and what
        #: ended each batch's wait: ``batch`` items, ``linger`` seconds, or ``quiet``.
        self.commits = self.stored = 0
        self.closed = {"batch": 0, "linger": 0, "quiet": 0}
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._task: asyncio.Task[None] | None = None  # (held: a bare task may be collected)

    async def many(self, items: list[In]) -> list[Out]:
        """Store these together now (all or none), without waiting for others."""
        out = await self.threads.write(self.store_many, items)
        self.commits += 1
        self.stored += len(items)
        await self.after(out)
        return out

    async def one(self, item: In) -> Out:
        """Store one item, committed with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        if self.quiet is not None:  # (a count over time, not an average of gaps: arrivals come in bursts)
            now = self._arrived = loop.time()
            self._counted += 1
            if now - self._counted_from >= 1.0:
                self._gap = min(self.linger, (now - self._counted_from) / self._counted)
                self._counted_from, self._counted = now, 0
        self._pending.append((item, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        solo = 0  # after a batch failed, its items go one at a time
        try:
            while self._pending:
                deadline = loop.time() + self.linger
                why = "batch"
                while len(self._pending) < self.batch:
                    if (now := loop.time()) >= deadline:
                        why = "linger"
                        break
                    if self.quiet is None:
                        await asyncio.sleep(self.linger / 8)
                        continue
                    quiet_for = min(QUIET_MAX_S, max(0.0005, self.quiet * self._gap))
                    if now - self._arrived >= quiet_for:
                        why = "quiet"
                        break
                    await asyncio.sleep(min(self._arrived + quiet_for - now, deadline - now))
                self.closed[why] += 1
                size = 1 if solo else self.limit
                batch = self._pending[:size]
                del self._pending[:size]
                solo = max(0, solo - 1)
                try:
                    stored = await self.many([item for item, _ in batch])
                except Exception as exc:
                    if len(batch) > 1:
                        self._pending[:0] = batch
                        solo = len(batch)
                    elif not batch[0][1].done():
                        batch[0][1].set_exception(exc)
                    continue
                for (_, future), result in zip(batch, stored, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._task = None


class EngineLink(Protocol):
    """What services need of the engine (``core.engine.supervisor.Engine``): its monitor set
    with live statuses, and the orders that reach the owning worker."""

    monitors: MonitorTable

    async def upsert(self, monitor: Monitor) -> None: ...
    async def upsert_many(self, monitors: list[Monitor]) -> None: ...
    async def delete(self, monitor_id: int) -> None: ...
    async def push(self, monitor_id: int, ts: float, ok: bool, msg: str | None, ping_ms: float | None) -> bool: ...
    async def report(self, results: list[tuple[int, float, bool, str | None]]) -> None: ...
    def stats(self) -> dict[str, Any]: ...


class DormantEngine:
    """The engine of a stopped data dir (the CLI working on the file): it holds the monitor
    set and checks nothing, so the same services serve the CLI with or without a server."""

    def __init__(self, monitors: MonitorTable | list[Monitor]) -> None:
        self.monitors = monitors if isinstance(monitors, MonitorTable) else MonitorTable(monitors)

    async def upsert(self, monitor: Monitor) -> None:
        self.monitors.put(monitor)

    async def upsert_many(self, monitors: list[Monitor]) -> None:
        for monitor in monitors:
            self.monitors.put(monitor)

    async def delete(self, monitor_id: int) -> None:
        self.monitors.pop(monitor_id, None)

    async def push(self, monitor_id: int, ts: float, ok: bool, msg: str | None, ping_ms: float | None) -> bool:
        return False

    async def report(self, results: list[tuple[int, float, bool, str | None]]) -> None:
        pass  # (nothing watches agents while no server runs)

    def stats(self) -> dict[str, Any]:
        raise LookupError("no server is running on this data dir")


class Catalog:
    """The read model kept beside the engine's monitor set: each account's monitor ids in
    order, each monitor's timestamps, push and agent tokens, every account's channels, and each
    monitor's newest check.

    ``history_memory`` (bytes) is shared by the newest checks and the rolled-up hours that
    answer history pages (half each)."""

    def __init__(self, history_memory: int = 256 << 20) -> None:
        #: account id -> its monitors' ids, ascending (C int64s; ``bisect`` and slices work).
        self.account_ids: dict[int, array[int]] = {}
        #: monitor id -> when it was created and changed, and since when it has its status.
        self.times = MonitorTimesTable()
        #: push or agent token -> monitor id; 0 while a write that takes the token is in flight.
        self.tokens: dict[str, int] = {}
        self.integrations: dict[int, Integration] = {}
        self.last_checks = LastChecks()
        #: Each monitor's newest outcome, HTTP status and phases, and its counts (``/metrics``).
        self.probes = ProbeTable()
        #: Each monitor's recent checks and hourly counts (heartbeat bars, 24 h uptime).
        self.recent = RecentWindow()
        #: Each monitor's newest checks in full (raw history pages without a statement).
        self.recent_checks = RecentChecks(history_memory // 2)
        #: Each monitor's rolled-up hours of the last month (hour buckets without a statement).
        self.recent_hours = RecentHours(history_memory // 2)
        #: Status changes for open pages.
        self.live = LiveFeed()
        #: Bumped whenever a monitor's status may have changed, or a monitor came or went
        #: (what per-account summaries are cached against).
        self.generation = 0

    def load(self, monitors: MonitorTable, times: Mapping[str, np.ndarray],
             last_checks: dict[int, tuple[int, int]]) -> None:
        """``times``: the store's ``monitor_times`` columns."""
        self.times.load(times["id"], times["created"], times["updated"], times["since"])
        if len(monitors):
            self.recent.fit(monitors.top())
        self.account_ids = monitors.ids_by_account()
        for monitor_id in monitors.of_kinds(TOKEN_KINDS):
            self.index_token(monitors[monitor_id])
        self.last_checks.load(last_checks)

    def load_integrations(self, integrations: list[Integration]) -> None:
        self.integrations.clear()  # (in place: the alert dispatcher holds its ``get``)
        self.integrations.update((i.id, i) for i in integrations)

    def add(self, monitor: Monitor) -> None:
        ids = self.account_ids.setdefault(monitor.account_id, array("q"))
        at = bisect.bisect_left(ids, monitor.id)
        if at == len(ids) or ids[at] != monitor.id:
            ids.insert(at, monitor.id)
        self.index_token(monitor)

    def index_token(self, monitor: Monitor, old: Monitor | None = None) -> None:
        token = getattr(old.spec, "token", None) if old is not None else None
        if token is not None and self.tokens.get(token) == old.id:  # type: ignore[union-attr]
            del self.tokens[token]
        token = getattr(monitor.spec, "token", None)
        if token is not None:
            self.tokens[token] = monitor.id

    def remove(self, monitor_id: int, monitor: Monitor | None) -> None:
        self.last_checks.pop(monitor_id)
        self.probes.forget(monitor_id)
        self.recent.forget(monitor_id)
        self.recent_checks.forget(monitor_id)
        self.times.pop(monitor_id)
        if monitor is None:
            return
        token = getattr(monitor.spec, "token", None)
        if token is not None and self.tokens.get(token) == monitor_id:
            del self.tokens[token]
        ids = self.account_ids.get(monitor.account_id, [])
        at = bisect.bisect_left(ids, monitor_id)
        if at < len(ids) and ids[at] == monitor_id:
            del ids[at]


@functools.lru_cache(maxsize=65_536)
def _iso_second(seconds: int) -> str:
    """(Kept: a page shows times that monitors made together share, and formatting is most of
    building a ``MonitorTimes``.)"""
    return iso_seconds(seconds * 1_000_000)


@functools.lru_cache(maxsize=4096)
def _iso_seconds_of(text: str) -> int:
    """``2026-12-01T17:30:11Z`` -> seconds since the epoch (kept: a batch of creates shares
    its stamp, and ``strptime`` took 8 µs)."""
    return calendar.timegm((int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                            int(text[17:19]), 0, 0, 0))


class MonitorTimesTable:
    """Each monitor's ``createdAt``, ``updatedAt`` and ``statusSince`` as whole seconds since
    the epoch (what the API shows: ISO 8601 to the second), in uint32 arrays indexed by monitor
    id (ids are dense: a database sequence; seconds fit until 2106); ``NONE`` (0) where a time
    is null. A ``MonitorTimes`` is built when asked for (a page builds one per monitor shown).
    A dict of Structs holding ISO strings cost the main process about 470 bytes a monitor;
    the arrays cost 13."""

    NONE = 0
    #: What ``Store.monitor_times`` marks a null time with.
    STORED_NONE = np.iinfo(np.int64).min

    def __init__(self) -> None:
        self._known = np.zeros(1024, dtype=np.bool_)
        self._cols = np.full((3, 1024), self.NONE, dtype=np.uint32)  # created, updated, since

    def _fit(self, top: int) -> None:
        if top >= len(self._known):
            size = max(top + 1, 2 * len(self._known))
            self._known = np.concatenate([self._known, np.zeros(size - len(self._known), dtype=np.bool_)])
            grown = np.full((3, size), self.NONE, dtype=np.uint32)
            grown[:, :self._cols.shape[1]] = self._cols
            self._cols = grown

    #: The seconds held (1970-2106; a time outside it, which no monitor has, is clipped).
    _FIRST, _LAST = 1, 2**32 - 1

    @classmethod
    def _column(cls, seconds: np.ndarray) -> np.ndarray:
        """Seconds as stored (int64, ``STORED_NONE`` for null) as held: uint32, ``NONE`` for null."""
        seconds = np.asarray(seconds, dtype=np.int64)
        held = np.clip(seconds, cls._FIRST, cls._LAST)
        return np.where(seconds == cls.STORED_NONE, cls.NONE, held).astype(np.uint32)

    @classmethod
    def _held(cls, seconds: int) -> int:
        return min(max(seconds, cls._FIRST), cls._LAST)

    def load(self, ids: np.ndarray, created: np.ndarray, updated: np.ndarray, since: np.ndarray) -> None:
        """Every monitor's times at once (arrays of equal length; ``STORED_NONE`` for null)."""
        if not len(ids):
            return
        self._fit(int(ids.max()))
        self._known[ids] = True
        self._cols[0, ids], self._cols[1, ids], self._cols[2, ids] = (self._column(created), self._column(updated),
                                                                       self._column(since))

    def get(self, monitor_id: int, default: MonitorTimes | None = None) -> MonitorTimes | None:
        if not 0 <= monitor_id < len(self._known) or not self._known.item(monitor_id):
            return default
        created, updated, since = self._cols[:, monitor_id].tolist()
        return MonitorTimes(created_at=self._iso(created), updated_at=self._iso(updated),
                            status_since=self._iso(since))

    def since_many(self, ids: list[int]) -> list[str | None]:
        """``statusSince`` of each of ``ids`` (None where unknown), in one gather."""
        at = np.asarray(ids, dtype=np.int64)
        inside = (at >= 0) & (at < len(self._known))
        seconds = np.full(len(at), self.NONE, dtype=np.uint32)
        seconds[inside] = self._cols[2, at[inside]]
        return [self._iso(value) for value in seconds.tolist()]

    def put(self, monitor_id: int, times: MonitorTimes) -> None:
        """A monitor's times as a write returned them."""
        self._fit(monitor_id)
        self._known[monitor_id] = True
        for row, text in enumerate((times.created_at, times.updated_at, times.status_since)):
            self._cols[row, monitor_id] = self._seconds(text)

    def status_changed(self, monitor_id: int, ts_us: int) -> None:
        """A known monitor has had its status since ``ts_us``."""
        if 0 <= monitor_id < len(self._known) and self._known.item(monitor_id):
            self._cols[2, monitor_id] = self._held(ts_us // 1_000_000)

    def pop(self, monitor_id: int) -> None:
        if 0 <= monitor_id < len(self._known):
            self._known[monitor_id] = False
            self._cols[:, monitor_id] = self.NONE

    def __contains__(self, monitor_id: int) -> bool:
        return 0 <= monitor_id < len(self._known) and bool(self._known.item(monitor_id))

    @classmethod
    def _iso(cls, seconds: int) -> str | None:
        return None if seconds == cls.NONE else _iso_second(seconds)

    @classmethod
    def _seconds(cls, text: str | None) -> int:
        return cls.NONE if text is None else cls._held(_iso_seconds_of(text))


class LastChecks:
    """Each monitor's latest check, as (ts µs, latency µs), in two arrays indexed by monitor
    id (ids are dense: a database sequence). A batch updates them in a few numpy calls: at
    100k checks a second a dict of tuples, updated per monitor, cost a tenth of a core. A later
    batch never holds an older check of a monitor (one worker owns it, and its checks never
    overlap), so the batch's latest simply replaces."""

    def __init__(self) -> None:
        self._ts = np.zeros(1024, dtype=np.int64)  # 0: none
        self._latency = np.zeros(1024, dtype=np.int32)  # (µs: 35 minutes fit; a check times out before)

    def _fit(self, top: int) -> None:
        if top >= len(self._ts):
            size = max(top + 1, 2 * len(self._ts))
            self._ts = np.concatenate([self._ts, np.zeros(size - len(self._ts), dtype=np.int64)])
            self._latency = np.concatenate([self._latency, np.zeros(size - len(self._latency), dtype=np.int32)])

    def load(self, known: dict[int, tuple[int, int]]) -> None:
        if not known:
            return
        ids = np.fromiter(known, dtype=np.int64, count=len(known))
        values = np.array(list(known.values()), dtype=np.int64).reshape(-1, 2)
        self._fit(int(ids.max()))
        self._ts[ids], self._latency[ids] = values[:, 0], np.clip(values[:, 1], 0, 2**31 - 1)

    def note(self, batch: dict[str, Any]) -> None:
        ids = batch["monitor_id"]
        if not len(ids):
            return
        unique, last = newest_rows(ids)
        self._fit(int(unique[-1]))
        self._ts[unique] = batch["ts_us"][last]
        self._latency[unique] = np.clip(batch["latency_us"][last], 0, 2**31 - 1)

    def gather(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ts µs, 0: none; latency µs) of each of ``ids`` (held ids), as arrays."""
        ids = np.asarray(ids, dtype=np.int64)
        self._fit(int(ids.max(initial=0)))
        return self._ts[ids], self._latency[ids].astype(np.int64)

    def get_many(self, ids: list[int]) -> list[tuple[int, int] | None]:
        """``get`` of each of ``ids`` at once (ids of held monitors)."""
        if not ids:
            return []
        inside = [i if 0 <= i < len(self._ts) else 0 for i in ids]  # (0: never a monitor, never checked)
        return [(ts, lat) if ts else None
                for ts, lat in zip(self._ts[inside].tolist(), self._latency[inside].tolist(), strict=True)]

    def get(self, monitor_id: int) -> tuple[int, int] | None:
        if not 0 <= monitor_id < len(self._ts):
            return None
        ts = self._ts.item(monitor_id)  # (item(): a Python int, without a numpy scalar between)
        return (ts, self._latency.item(monitor_id)) if ts else None

    def pop(self, monitor_id: int) -> None:
        if 0 <= monitor_id < len(self._ts):
            self._ts[monitor_id] = self._latency[monitor_id] = 0
