"""Check history, uptime and incidents: reads only, on the store's reader threads.

Ownership is checked against the caller's account first (another account's monitor is
``NotFound``); the answers are the store's rows, which the faces shape (the API's JSON, later
the pages' charts).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pyarrow as pa

from core.models import FieldError, Incident, Uptime
from core.models.retention import TIERS, Retention, RetentionError, parse_duration
from core.services.access import Actor, account_of
from core.services.context import StoreThreads
from core.services.errors import Forbidden, Invalid
from core.services.exports import stream_batches
from core.services.monitors import MonitorService
from core.storage.rollups import HOUR_US
from ext._history import raw_hour_items

if TYPE_CHECKING:
    from core.storage.base import Store

#: The hours read into memory at a time (``sync_hours``).
FILL_CHUNK_US = 24 * HOUR_US

__all__ = ["OWNER_ACCOUNT", "HistoryService"]

OWNER_ACCOUNT = 1  # the server's own account ("default", made with the database)


log = logging.getLogger("xuptime.history")

#: A page of history as the API's JSON items, comma-separated: ``(items, the oldest item's
#: time in µs or None, more after it)``.
JsonPage = tuple[bytes, int | None, bool]


def _joined(rows: list[tuple[int, str]], more: bool) -> JsonPage:
    return ",".join(r[1] for r in rows).encode(), rows[-1][0] if rows else None, more


class _Page:
    """An hour page put together part by part, newest part first, up to ``limit`` buckets:
    each part encoded as it comes (``raw_hour_items`` or ``rolled_items``). ``seen`` counts the
    buckets of the parts so far, taken or not; ``more``: a bucket past the page exists."""

    __slots__ = ("items", "limit", "more", "oldest", "seen", "taken")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[bytes] = []
        self.taken = self.seen = 0
        self.oldest: int | None = None
        self.more = False

    @property
    def room(self) -> int:
        return 0 if self.more else self.limit - self.taken

    def add(self, rows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Checks ``(ts, ok, latency)`` in any order, as the hour buckets they fall in."""
        room = self.room
        ends, starts = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64)
        ts, ok, latency = (np.ascontiguousarray(c, dtype=t) for c, t in zip(rows, (np.int64, np.int8, np.int64),
                                                                                 strict=True))
        items, taken, held = raw_hour_items(ts, ok, latency, ends, starts)
        self.add_encoded(items, taken, int(starts[taken - 1]) if taken else None, held)

    def add_encoded(self, items: bytes, taken: int, oldest: int | None, held: int) -> None:
        self.seen += held
        if not held or self.more:
            return
        if taken:
            self.items.append(items)
            self.taken += taken
            self.oldest = oldest
        self.more = taken < held

    def joined(self) -> JsonPage:
        return b",".join(self.items), self.oldest, self.more


def _later(a: int | None, b: int | None) -> int | None:
    """The later of two lower bounds (None: unbounded)."""
    return b if a is None else a if b is None else max(a, b)


def _upper(end: int | None, before: int | None) -> int | None:
    """The inclusive upper bound (µs) of a page: ``to`` and a keyset cursor (exclusive)."""
    return end if before is None else before - 1 if end is None else min(end, before - 1)


BLOCK_HOURS = 6
ALL, ALL_HOUR = -1, -2  # (``HourRows``: keys of a block, and of an hour, read for every monitor)


class HourRows:
    """The checks of some blocks of closed hours, by ``(monitor id, block start)``, or of every
    monitor at once by ``(ALL, block start)`` or ``(ALL_HOUR, hour start)`` (sorted by
    monitor, with each one's first row),
    each kept with the store's ``(late rows, rollup generation)`` counters it was read at (and
    the block's end) and served only while they stand: a closed hour's checks change only by a
    late row (which moves the first) or a purge of a deleted monitor (whose history is never
    asked again). Least recently used blocks go beyond ``max_rows`` checks in all."""

    def __init__(self, max_rows: int = 1 << 21) -> None:
        self.max_rows = max_rows
        self.rows = 0
        #: Rows served from what was kept, statements a page waited for, and reads ahead.
        self.hits = self.reads = self.ahead = 0
        self._entries: collections.OrderedDict[tuple[int, int], tuple[tuple[int, int, int], Any]] = \
            collections.OrderedDict()

    def _used(self, key: tuple[int, int], version: tuple[int, int, int], hit: bool = True) -> Any:
        """The entry kept under ``key`` at ``version`` (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(key)
        self.hits += hit
        return entry

    def get(self, key: tuple[int, int], version: tuple[int, int, int]) -> Any:
        entry = self._used(key, version)
        return None if entry is None else entry[1]

    def has(self, key: tuple[int, int], version: tuple[int, int, int]) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry[0] == version

    def get_slice(self, monitor_id: int, key: tuple[int, int], version: tuple[int, int, int],
                  hit: bool = True) -> Any:
        """The monitor's rows of a block read for every monitor (``key``: ``(ALL, start)`` or
        ``(ALL_HOUR, start)``), or None when none is kept; ``hit``: counted as served from
        what was kept (not for the read that just put it there)."""
        entry = self._used(key, version, hit)
        if entry is None:
            return None
        (ts, ok, latency), (ids, firsts) = entry[1], entry[2]
        at = int(np.searchsorted(ids, monitor_id))
        if at == len(ids) or ids[at] != monitor_id:
            empty = ts[:0]
            return empty, ok[:0], latency[:0]
        lo, hi = int(firsts[at]), int(firsts[at + 1]) if at + 1 < len(firsts) else len(ts)
        return ts[lo:hi], ok[lo:hi], latency[lo:hi]

    def put_all(self, key: tuple[int, int], version: tuple[int, int, int], rows: tuple[np.ndarray, ...]) -> None:
        """A block's checks of every monitor, ``(monitor, ts, ok, latency)`` in any order."""
        order = np.argsort(rows[0], kind="stable")
        ids, firsts = np.unique(rows[0][order], return_index=True)
        self.put(key, version, tuple(column[order] for column in rows[1:]), (ids, firsts))

    def put(self, key: tuple[int, int], version: tuple[int, int, int], rows: Any, index: Any = None) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.rows -= len(old[1][0])
        self._entries[key] = (version, rows, index)
        self.rows += len(rows[0])
        while self.rows > self.max_rows and len(self._entries) > 1:
            self.rows -= len(self._entries.popitem(last=False)[1][1][0])


class HistoryService:
    """History of one monitor (raw checks, buckets, rolled-up hours), its uptime over windows,
    and incident pages."""

    def __init__(self, store: Store, threads: StoreThreads, monitors: MonitorService) -> None:
        self.store = store
        self.threads = threads
        self.monitors = monitors
        self.recent = monitors.catalog.recent_checks
        self.hours = monitors.catalog.recent_hours
        #: Pages answered from memory and from the store (benchmarks report both).
        self.raw_pages = {"memory": 0, "store": 0}
        self.hour_pages = {"memory": 0, "store": 0}
        self._refreshing: asyncio.Task[None] | None = None
        self.hour_rows = HourRows()
        self._board: tuple[tuple, tuple[np.ndarray, np.ndarray, np.ndarray] | None] | None = None
        self._board_lock = asyncio.Lock()
        self._board_task: asyncio.Future[None] | None = None
        self._reads_all: dict[tuple[tuple[int, int], tuple[int, int, int]], asyncio.Future[None]] = {}

    def version(self, monitor_id: int) -> tuple[int, int, int, int | None, int]:
        """Changes whenever a history answer of this monitor could: take it before a read, and
        cache the answer under it (see ``api.history.AnswerCache``). The memory's part moves
        when ingest hands it rows the store has committed (and bumped its part for) already."""
        return (*self.store.history_version(monitor_id), self.recent.generation(monitor_id))

    async def raw(self, account_id: Actor, monitor_id: int, start: int | None, end: int | None,
                  before: int | None, limit: int) -> tuple[list[tuple], bool]:
        """Checks newest first: ``(rows, more)``; a row is ``(ts µs, ok, latency µs, status,
        error, dns µs, connect µs, tls µs, ttfb µs)``."""
        self.monitors.require(account_of(account_id), monitor_id)
        return await self.threads.read(self.store.history_raw, monitor_id, start, end, before, limit)

    async def buckets(self, account_id: Actor, monitor_id: int, bucket_s: int, start: int | None, end: int | None,
                      before: int | None, limit: int) -> tuple[list[tuple], bool]:
        """Fixed buckets newest first: ``(rows, more)``."""
        self.monitors.require(account_of(account_id), monitor_id)
        return await self.threads.read(self.store.history_buckets, monitor_id, bucket_s, start, end, before, limit)

    async def export(self, actor: Actor, monitor_ids: list[int] | None, bucket_s: int | None, start: int | None,
                     end: int | None) -> tuple[int, AsyncIterator[pa.RecordBatch]]:
        """Checks (``bucket_s`` None) or buckets of the account's monitors ``monitor_ids``
        (None: all of them; buckets need one) within [start, end] as Arrow batches, oldest
        first for one monitor, never older than their tier: ``(rows, batches)``, ``rows``
        counted first (a progress bar's total; checks written meanwhile may add a few).
        Buckets are read a page at a time and held (a month of minutes is 43,200 rows);
        checks stream from the store with one batch in memory."""
        account_id = account_of(actor)
        if monitor_ids is None:  # (the account's own)
            monitor_ids = list(self.monitors.catalog.account_ids.get(account_id, []))
        else:
            for monitor_id in monitor_ids:
                self.monitors.require(account_id, monitor_id)
        if bucket_s is not None:  # (buckets reach as far back as their tiers: ``history_buckets`` knows)
            if len(monitor_ids) != 1:
                raise Invalid("Buckets are exported for one monitor at a time",
                              [FieldError("interval", "use raw to export many monitors")])
            rows: list[tuple] = []
            before = None
            while True:
                page, more = await self.buckets(actor, monitor_ids[0], bucket_s, start, end, before, 1000)
                rows += page
                if not more or not page:
                    break
                before = page[-1][0]
            return len(rows), _bucket_batches(rows[::-1])
        start = _later(start, self.store.floor_us("raw", time.time_ns() // 1000))
        total = await self.threads.read(self.store.export_count, monitor_ids, start, end)
        return total, stream_batches(self.threads.read, lambda: self.store.export_checks(monitor_ids, start, end))

    async def raw_json(self, account_id: Actor, monitor_id: int, start: int | None, end: int | None,
                       before: int | None, limit: int) -> JsonPage:
        """``raw``'s checks as the API's JSON items: from memory when the newest checks there
        answer exactly (``RecentChecks``), else from the store."""
        monitor = self.monitors.require(account_of(account_id), monitor_id)
        floor = self.store.floor_us("raw", time.time_ns() // 1000)
        page = self.recent.page(monitor_id, _later(start, floor), _upper(end, before), limit)
        if page is not None:
            self.raw_pages["memory"] += 1
            return page
        self.raw_pages["store"] += 1
        every_us = None if monitor.type in ("push", "agent") else int(monitor.interval * 1_000_000)
        return _joined(*await self.threads.read(self.store.history_raw_json, monitor_id, start, end, before, limit,
                                                every_us))

    async def hours_json(self, account_id: Actor, monitor_id: int, start: int | None, end: int | None,
                         before: int | None, limit: int) -> JsonPage:
        """Hour buckets newest first (rolled up where closed) as the API's JSON items: from
        the rolled-up hours and the newest checks in memory where they hold the answer, else
        from the store."""
        self.monitors.require(account_of(account_id), monitor_id)
        page = await self._hours_from_memory(monitor_id, start, _upper(end, before), limit)
        if page is not None:
            self.hour_pages["memory"] += 1
            return page
        self.hour_pages["store"] += 1
        return _joined(*await self.threads.read(self.store.history_hours_json, monitor_id, start, end, before, limit))

    async def _hours_from_memory(self, monitor_id: int, lo: int | None, hi: int | None, limit: int
                                 ) -> JsonPage | None:
        """The store's ``history_hours_json`` answer, assembled as the store splits it
        (``split_hours``): whole rolled-up hours [a, b) from ``RecentHours``, the rest (the
        hours not rolled up yet, the part of an hour a range starts or ends in) aggregated
        from ``RecentChecks``, or read from the store when not there. None when memory cannot
        make it exact: the rolled-up hours in memory are behind the store's, a stale hour is
        in the range, or older hours than memory holds are needed."""
        _, _, generation, upto = self.store.history_version(monitor_id)
        if not self.hours.current(upto, generation):
            self.refresh_hours()
            held = self.hours.upto
            if not (self.hours.on and held is not None and upto is not None and held < upto
                    and self.hours.generation == generation):
                return None
            # (newer hours were rolled up and memory is filling them in: answer as of the hours it
            # holds, the newer ones aggregated raw like the open hours; as exact, and no page goes
            # to the store for the second or so the refill takes)
            upto = held
        assert upto is not None
        now = time.time_ns() // 1000
        lo = _later(lo, self.store.floor_us("hourly", now))
        raw_floor = self.store.floor_us("raw", now)
        split, ranges = self.store.split_hours(lo, hi, upto)  # (raw ranges newest first)
        page = _Page(limit)
        first = a = rolled = None
        if split is not None:
            a, b, stale = split
            if stale or b > upto:  # (a stale hour is read raw; the rollup moved on meanwhile)
                return None
            rolled = self.hours.items(monitor_id, a, b, limit)  # (before any await: a snapshot)
            if rolled is None:
                return None
            first = rolled.first
        newest, older = ranges[0], ranges[1:]
        page.add(await self._raw_hours(monitor_id, newest, raw_floor))
        if rolled is not None:
            page.add_encoded(*rolled.head(page.room), rolled.held)
        if page.seen <= limit:  # older buckets are part of the answer
            if first is not None and (a is None or a < first):
                return None  # hours older than memory holds
            for r in older:
                page.add(await self._raw_hours(monitor_id, r, raw_floor))
        return page.joined()

    async def _raw_hours(self, monitor_id: int, bounds: tuple[int | None, int | None], raw_floor: int | None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The checks within ``bounds`` (clamped to the raw tier) as ``(ts, ok, latency)``, in
        no order: from ``RecentChecks`` when it holds them all, else from the store."""
        lo, hi = _later(bounds[0], raw_floor), bounds[1]
        lo = -2**62 if lo is None else lo
        if hi is not None and hi < lo:
            return (np.zeros(0, dtype=np.int64),) * 3
        rows = self.recent.rows(monitor_id, lo, hi)
        if rows is None:
            rows = await self._closed_hour(monitor_id, lo, hi)
        if rows is None:
            rows = await self.threads.read(self.store.raw_checks, monitor_id, lo, 2**62 if hi is None else hi)
        return rows

    async def _closed_hour(self, monitor_id: int, lo: int, hi: int | None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The checks within [lo, hi] when they lie inside one block of ``BLOCK_HOURS``
        rolled-up hours, from the block's checks read once and kept (``HourRows``): a range
        that starts inside an old hour keeps starting inside it, then inside the next ones,
        while its ``from`` moves (a time picker's "last 30 days"), and each read is a
        statement of its own whatever it returns. None for other ranges."""
        _, late, generation, upto = self.store.history_version(monitor_id)
        block = lo // (BLOCK_HOURS * HOUR_US) * (BLOCK_HOURS * HOUR_US)
        end = None if upto is None else min(block + BLOCK_HOURS * HOUR_US, upto)  # (closed hours only)
        if hi is None or end is None or hi >= end:
            return None
        version = (late, generation, end)
        hour = lo // HOUR_US * HOUR_US
        in_hour = hi < hour + HOUR_US  # (the part asked lies in one hour: that hour may be read alone)
        kept = self.hour_rows
        rows = kept.get_slice(monitor_id, (ALL, block), version)
        if rows is None and in_hour:
            rows = kept.get_slice(monitor_id, (ALL_HOUR, hour), version)
        if rows is None:
            rows = kept.get((monitor_id, block), version)
        if rows is None:
            # Ranges asked together start together (a dashboard's "last 30 days" for each of its
            # monitors): read the block, or else the hour, for every monitor at once when it is
            # small enough: one statement, not one a monitor.
            unit = self._unit_for_all(block, end, hour if in_hour else None)
            if unit is not None:
                read, mine = self._read_all(*unit, version)
                await asyncio.shield(read)  # (a page cancelled does not cancel the read for the others)
                rows = kept.get_slice(monitor_id, unit[0], version, hit=not mine)
            if rows is not None:
                self._read_ahead(lo, version, upto)
            if rows is None:  # (too big to read for all, or dropped again before it was used)
                kept.reads += 1
                rows = await self.threads.read(self.store.raw_checks, monitor_id, block, end - 1)
                kept.put((monitor_id, block), version, rows)
        elif in_hour:
            self._read_ahead(lo, version, upto)
        keep = (rows[0] >= lo) & (rows[0] <= hi)
        return rows[0][keep], rows[1][keep], rows[2][keep]

    def _read_ahead(self, lo: int, version: tuple[int, int, int], upto: int) -> None:
        """A range that starts in the last quarter of an hour will soon start in the next one
        (a time picker's "last 30 days" moves with the clock): read what ``_closed_hour`` will
        then want for every monitor (the next hour's block, or the hour) now, in the
        background, so that no page waits for it."""
        hour = lo // HOUR_US * HOUR_US
        nxt = hour + HOUR_US
        if lo - hour < HOUR_US * 3 // 4 or nxt + HOUR_US > upto:
            return
        block = nxt // (BLOCK_HOURS * HOUR_US) * (BLOCK_HOURS * HOUR_US)
        end = min(block + BLOCK_HOURS * HOUR_US, upto)
        version = (version[0], version[1], end)
        if any(self.hour_rows.has(key, version) or (key, version) in self._reads_all
               for key in ((ALL, block), (ALL_HOUR, nxt))):
            return
        unit = self._unit_for_all(block, end, nxt)
        if unit is not None:
            self._read_all(*unit, version, ahead=True)

    def _unit_for_all(self, block: int, end: int, hour: int | None) -> tuple[tuple[int, int], int, int] | None:
        """What to read for every monitor at once: the block [block, end) of closed hours, or
        else the hour (when given), whichever first holds at most a quarter of ``HourRows``'
        budget of checks (``RecentHours`` counts them): ``(key, start, stop)``, or None."""
        units = [((ALL, block), block, end)]
        if hour is not None:
            units.append(((ALL_HOUR, hour), hour, hour + HOUR_US))
        for unit in units:
            count = self.hours.checks_between(unit[1], unit[2])
            if count is not None and count <= self.hour_rows.max_rows // 4:
                return unit
        return None

    def _read_all(self, key: tuple[int, int], start: int, stop: int, version: tuple[int, int, int],
                  ahead: bool = False) -> tuple[asyncio.Future[None], bool]:
        """Read every monitor's checks of [start, stop) into ``hour_rows`` under ``key``, once
        for all who ask at the same time (32 requests missing the same block started 32
        reads of it, each about a day's scan, and queued behind one another). Returns what to
        await (shielded: others may be waiting for it too), and whether this call started it."""
        pending = self._reads_all.get((key, version))
        if pending is not None:
            return pending, False

        async def read() -> None:
            if ahead:  # (nobody waits for it: at a low priority, beside the readers)
                self.hour_rows.ahead += 1
                rows = await self.threads.read_behind(self.store.raw_checks_all, start, stop - 1)
            else:
                self.hour_rows.reads += 1
                rows = await self.threads.read(self.store.raw_checks_all, start, stop - 1)
            self.hour_rows.put_all(key, version, rows)

        pending = self._reads_all[(key, version)] = asyncio.ensure_future(read())

        def done(read: asyncio.Future[None]) -> None:
            self._reads_all.pop((key, version), None)
            if ahead and not read.cancelled() and read.exception() is not None:  # (nobody else sees it)
                log.warning("reading the checks of %s ahead failed: %s", key, read.exception())

        pending.add_done_callback(done)
        return pending, True

    def refresh_hours(self) -> None:
        """Bring the rolled-up hours in memory up to the store's (in the background, once)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self.sync_hours())

    async def sync_hours(self) -> None:
        """Fill the rolled-up hours in memory up to the store's (at start, and after rollups)."""
        for _ in range(3):  # (the store may move on while a fill is read)
            _, _, generation, upto = self.store.history_version(0)
            if upto is None or not self.hours.on or self.hours.current(upto, generation):
                return
            self.hours.fit(self.monitors.engine.monitors.top())  # (the budget first: it may say no)
            if not self.hours.on:
                return
            start = self.hours.wanted(upto, generation)
            while start < upto:  # (a day at a time: a month of 100k monitors' hours is 72M rows)
                end = min(upto, start + FILL_CHUNK_US)
                rows = await self.threads.read(self.store.hourly_rows, start, end)
                self.hours.fill(rows, start, end, generation)
                start = end

    def stats(self) -> dict[str, Any]:
        """Raw pages answered from memory and from the store, and what the memory holds."""
        return {"rawPages": dict(self.raw_pages), "hourPages": dict(self.hour_pages),
                "hourRows": {"hits": self.hour_rows.hits, "reads": self.hour_rows.reads,
                             "ahead": self.hour_rows.ahead, "rows": self.hour_rows.rows},
                "recentChecks": {"depth": self.recent.depth, "bytes": self.recent.nbytes},
                "recentHours": {"hours": self.hours.hours, "bytes": self.hours.nbytes}}

    async def uptime_ratios(self, actor: Actor, ids: np.ndarray, hours: list[int]) -> np.ndarray:
        """Uptime of each of the account's monitors ``ids`` over the last ``hours`` hours of
        each window (the current one so far included), checks in maintenance left out: a
        ``(len(ids), len(hours))`` array, NaN where a monitor had no check. Hours rolled up
        come from one scan of the hourly tier for every monitor, kept until the rollup moves
        or the hour turns; the hours after, from the recent window in memory."""
        del actor  # (``ids`` are the account's own: ``MonitorService.probe_figures`` gave them)
        now_hour = time.time_ns() // 1000 // HOUR_US * HOUR_US
        starts = [now_hour - (h - 1) * HOUR_US for h in hours]
        key = (self.store.rollup_upto_us, tuple(starts))
        async with self._board_lock:
            if self._board is None or len(self._board[0][1]) != len(starts):
                self._board = (key, await self._scan_board(key))
            elif self._board[0] != key and (self._board_task is None or self._board_task.done()):
                self._board_task = asyncio.ensure_future(self._refresh_board(key))
            (upto, _), board = self._board
        ids = np.asarray(ids, dtype=np.int64)
        checks = np.zeros((len(ids), len(hours)), dtype=np.int64)
        up = np.zeros_like(checks)
        if board is not None and len(board[0]):
            at = np.clip(np.searchsorted(board[0], ids), 0, len(board[0]) - 1)
            found = board[0][at] == ids
            checks[found], up[found] = board[1][at[found]], board[2][at[found]]
        recent = self.monitors.catalog.recent
        for column, start in enumerate(starts):
            c, u = recent.since_all(start if upto is None else max(start, upto))
            inside = ids < len(c)
            checks[inside, column] += c[ids[inside]]
            up[inside, column] += u[ids[inside]]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(checks > 0, up / np.maximum(checks, 1), np.nan)

    async def _scan_board(self, key: tuple[int | None, tuple[int, ...]]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        upto, starts = key
        return None if upto is None else await self.threads.read(self.store.uptime_counts, list(starts), upto)

    async def _refresh_board(self, key: tuple[int | None, tuple[int, ...]]) -> None:
        """Scan again in the background: until it lands, scrapes read the scan before (its
        rolled hours, then the recent window from where it stopped: an hour turned shows a
        window an hour longer for the scan's few seconds, never a hole)."""
        try:
            board = await self._scan_board(key)
        except Exception:  # (the next scrape tries again; this one's answer stands)
            log.exception("scanning the hourly tier for uptime ratios failed")
            return
        async with self._board_lock:
            self._board = (key, board)

    async def uptime(self, account_id: Actor, monitor_id: int, windows: list[tuple[str, int]]
                     ) -> dict[str, Uptime]:
        """Uptime ratio, checks and downtime per ``(label, seconds)`` window, ending now."""
        self.monitors.require(account_of(account_id), monitor_id)
        return await self.threads.read(self.store.uptime, monitor_id, windows, time.time_ns() // 1000)

    def retention(self, actor: Actor) -> Retention:
        """How long each tier of history is kept (the server's, the same for every account)."""
        account_of(actor)
        return self.store.retention

    async def set_retention(self, actor: Actor, changes: dict[str, str]) -> Retention:
        """Change some tiers (``{"raw": "30d"}``; the others stay); kept across restarts and
        applied by the next upkeep, within a minute. The setting is the server's: only an admin
        of its own account (the first, ``default``) may change it."""
        if account_of(actor, "admin") != OWNER_ACCOUNT:
            raise Forbidden("Retention is the server's setting: only an admin of its own account may change it")
        errors = [FieldError(k, f"unknown tier: the tiers are {', '.join(TIERS)}") for k in changes if k not in TIERS]
        errors += [FieldError(k, "must be a duration such as 90d or 2y, or forever")
                   for k, v in changes.items() if k in TIERS and not isinstance(v, str)]
        if not changes:
            errors.append(FieldError("body", f"name at least one tier: {', '.join(TIERS)}"))
        if errors:
            raise Invalid("Invalid retention", errors)
        try:  # (each value on its own: "30d,daily=1d" is not a duration)
            retention = msgspec.structs.replace(self.store.retention, **{
                tier: parse_duration(tier, value.strip().lower()) for tier, value in changes.items()}).check()
        except RetentionError as exc:
            raise Invalid("Invalid retention", [FieldError(exc.field, exc.message)]) from None
        await self.threads.write(self.store.set_retention, retention)
        return retention

    async def incidents(self, account_id: Actor, before: int | None, limit: int, monitor_id: int | None = None
                        ) -> tuple[list[Incident], int, bool]:
        """The account's incidents (or one monitor's) newest first: ``(page, total, more)``."""
        account_id = account_of(account_id)
        if monitor_id is not None:
            self.monitors.require(account_id, monitor_id)
        return await self.threads.read(self.store.incident_page, account_id, before, limit, monitor_id)


#: A bucket as exported: the API's fields, latencies flattened (ms).
BUCKET_SCHEMA = pa.schema([("ts", pa.timestamp("us", tz="UTC")), ("checks", pa.int64()), ("up", pa.int64()),
                           ("uptime", pa.float64()), ("latencyAvgMs", pa.float64()), ("latencyMinMs", pa.float64()),
                           ("latencyMaxMs", pa.float64()), ("latencyP50Ms", pa.float64()),
                           ("latencyP95Ms", pa.float64()), ("latencyP99Ms", pa.float64())])


async def _bucket_batches(rows: list[tuple]) -> AsyncIterator[pa.RecordBatch]:
    """Buckets (``history_buckets`` rows, oldest first) as one Arrow batch (empty: none)."""
    if not rows:
        yield pa.RecordBatch.from_pylist([], schema=BUCKET_SCHEMA)
        return
    q = np.array([r[6] for r in rows], dtype=np.float64).reshape(-1, 3)

    def ms(values: Any) -> pa.Array:
        return pa.array(np.round(np.asarray(values, dtype=np.float64) / 1000, 3))

    checks = np.array([r[1] for r in rows], dtype=np.int64)
    up = np.array([r[2] for r in rows], dtype=np.int64)
    yield pa.RecordBatch.from_arrays([
        pa.array([r[0] for r in rows], pa.timestamp("us", tz="UTC")), pa.array(checks), pa.array(up),
        pa.array(up / np.maximum(checks, 1)), ms([r[3] for r in rows]), ms([r[4] for r in rows]),
        ms([r[5] for r in rows]), ms(q[:, 0]), ms(q[:, 1]), ms(q[:, 2])], schema=BUCKET_SCHEMA)
