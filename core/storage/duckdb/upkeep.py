"""Keeping the big tables bounded and fast to read: deleted monitors' rows purged, tiers of
history dropped past their retention, closed days of ``checks`` and rolled-up months of
``checks_hourly`` rewritten sorted by monitor.

All of it runs on the maintenance cursor (``_maint``, the rollup job's thread), beside the
writer: ingest only appends to these tables, and nothing else deletes from them, so the two
never touch the same rows. Each step is one transaction: a crash leaves the step done or not
done, never half (a day being rewritten is either still in arrival order or sorted, and no row
is lost or doubled either way).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any

import duckdb
import msgspec
import pyarrow as pa

from core.models.retention import DEFAULT_RETENTION, Retention, RetentionError
from core.storage.duckdb.common import finish, transaction
from core.storage.rollups import HOUR_US, merge_percentiles

__all__ = ["DAY_US", "UpkeepStore"]

DAY_US = 24 * HOUR_US
_PURGED = ("checks", "checks_hourly", "checks_daily", "agent_reports", "maintenance_checks")


class UpkeepStore:
    """Retention, compaction and the purge of deleted monitors' rows."""

    con: duckdb.DuckDBPyConnection
    _maint: duckdb.DuckDBPyConnection
    _rollup_lock: threading.Lock
    _ts_range: tuple[int, int] | None
    _hour_cache: Any
    _rollup_generation: int
    rollup_upto_us: int | None
    #: Exclusive end of the days of ``checks`` rewritten sorted by (monitor_id, ts).
    compacted_upto_us: int | None = None
    #: Exclusive end of the months of ``checks_hourly`` rewritten sorted by (monitor_id, hour).
    hours_compacted_upto_us: int | None = None
    #: What the maintenance thread is doing now ("rollup", "upkeep: compaction", ...), or None.
    busy: str | None = None
    #: Exclusive end of the days merged into ``checks_daily``; None before the first.
    daily_upto_us: int | None = None

    def _load_upkeep(self) -> None:
        """(At open.) The stored retention, and how far compaction got."""
        self.retention = DEFAULT_RETENTION
        if self.schema_version() < 9:  # type: ignore[attr-defined]  # (an older file, opened read-only)
            return
        row = self.con.execute("SELECT value FROM settings WHERE name = 'retention'").fetchone()
        if row is not None:
            with contextlib.suppress(msgspec.ValidationError, RetentionError):  # (else: the defaults)
                self.retention = msgspec.json.decode(row[0], type=Retention).check()
        row = self.con.execute("SELECT epoch_us(upto) FROM rollup_state WHERE name = 'compacted'").fetchone()
        self.compacted_upto_us = None if row is None else int(row[0])
        row = self.con.execute("SELECT epoch_us(upto) FROM rollup_state WHERE name = 'hours_compacted'").fetchone()
        self.hours_compacted_upto_us = None if row is None else int(row[0])
        row = self.con.execute("SELECT epoch_us(upto) FROM rollup_state WHERE name = 'daily'").fetchone()
        self.daily_upto_us = None if row is None else int(row[0])
        #: Days merged already whose hours were recomputed since (late rows): merged again.
        self._dirty_days: set[int] = set()

    def set_retention(self, retention: Retention) -> None:
        """Keep ``retention`` (checked) from now on, across restarts; the next upkeep applies it."""
        retention.check()
        self.con.execute("INSERT OR REPLACE INTO settings VALUES ('retention', ?)",
                         [msgspec.json.encode(retention).decode()])
        with self._rollup_lock:
            self.retention = retention
            self._rollup_generation += 1  # (cached answers may reach past the new tiers)

    def floor_us(self, tier: str, now_us: int) -> int | None:
        """The oldest time (µs) a tier may still answer with, or None (kept forever)."""
        seconds = getattr(self.retention, tier)
        return None if seconds is None else now_us - seconds * 1_000_000

    # upkeep -------------------------------------------------------------------------------
    def upkeep(self, now_us: int, grace_us: int = 120 * 10**6) -> dict[str, int]:
        """One round (the rollup job calls it after each rollup): purge deleted monitors'
        rows, merge rolled-up days into daily rollups, drop what is past retention, rewrite
        closed days and rolled-up months sorted. Returns what it did (rows purged and expired,
        days merged and compacted, months of hours compacted). A first round over years of
        hours merges them all (a day a transaction, per row in Python: slow at scale, and the
        rollup waits behind it; reads stay exact)."""
        steps: list[tuple[str, str, Any]] = [
            ("purged", "purge", self._purge), ("days", "days", self.roll_days),
            ("expired", "retention", lambda: self._expire(now_us)),
            ("compacted", "compaction", lambda: self.compact(now_us, grace_us)),
            ("months", "compaction", self.compact_hours)]
        done = {}
        try:
            for key, step, run in steps:
                self.busy = f"upkeep: {step}"
                done[key] = run()
        finally:
            finish(self._maint)
            self.busy = None
        return done

    def roll_days(self) -> int:
        """Merge each day whose hours are all rolled up into ``checks_daily`` (oldest first, a
        day a transaction), and again each merged day whose hours late rows changed since;
        returns days merged."""
        cur = self._maint
        if self.rollup_upto_us is None:
            return 0
        target = self.rollup_upto_us // DAY_US * DAY_US
        start = self.daily_upto_us
        if start is None:
            row = cur.execute("SELECT epoch_us(min(hour)) FROM checks_hourly").fetchone()
            start = target if row is None or row[0] is None else int(row[0]) // DAY_US * DAY_US
        days = 0
        while start < target:
            days += self._roll_day(cur, start, replace=False)
            start = self.daily_upto_us = start + DAY_US
        with self._rollup_lock:
            dirty, self._dirty_days = {d for d in self._dirty_days if d < start}, {
                d for d in self._dirty_days if d >= start}
        for day in sorted(dirty):
            days += self._roll_day(cur, day, replace=True)
        return days

    def _roll_day(self, cur: duckdb.DuckDBPyConnection, day: int, *, replace: bool) -> int:
        got = cur.execute("""
            WITH hh AS (SELECT * FROM checks_hourly WHERE hour >= make_timestamp($a) AND hour < make_timestamp($b)),
                 s AS (SELECT monitor_id, sum(checks) AS c, sum(up) AS u, sum(latency_sum) AS ls,
                              min(latency_min) AS lmin, max(latency_max) AS lmax FROM hh GROUP BY ALL),
                 b AS (SELECT monitor_id, bin, sum(n) AS n
                       FROM (SELECT monitor_id, unnest(hist_idx) AS bin, unnest(hist_cnt) AS n FROM hh) GROUP BY ALL),
                 h AS (SELECT monitor_id, list(bin ORDER BY bin) AS hidx, list(n ORDER BY bin) AS hcnt
                       FROM b GROUP BY ALL)
            SELECT s.monitor_id, s.c, s.u, s.ls, s.lmin, s.lmax, h.hidx, h.hcnt
            FROM s JOIN h USING (monitor_id) ORDER BY s.monitor_id""", {"a": day, "b": day + DAY_US}).fetchall()
        quantiles = [merge_percentiles([(r[6], r[7])], r[4], r[5]) for r in got]
        table = pa.table({
            "monitor_id": pa.array([r[0] for r in got], pa.int64()),
            "day": pa.array([day] * len(got), pa.int64()).cast(pa.timestamp("us")),
            "checks": pa.array([r[1] for r in got], pa.int32()), "up": pa.array([r[2] for r in got], pa.int32()),
            "latency_sum": pa.array([r[3] for r in got], pa.int64()),
            "latency_min": pa.array([r[4] for r in got], pa.int64()),
            "latency_max": pa.array([r[5] for r in got], pa.int64()),
            "p50": pa.array([q[0] for q in quantiles], pa.float64()),
            "p95": pa.array([q[1] for q in quantiles], pa.float64()),
            "p99": pa.array([q[2] for q in quantiles], pa.float64()),
            "hist_idx": pa.array([r[6] for r in got], pa.list_(pa.uint16())),
            "hist_cnt": pa.array([[int(n) for n in r[7]] for r in got], pa.list_(pa.uint32())),
        })
        with transaction(cur):
            if replace:
                cur.execute("DELETE FROM checks_daily WHERE day = make_timestamp(?)", [day])
            cur.register("_xuptime_days", table)
            try:
                cur.execute("INSERT INTO checks_daily SELECT * FROM _xuptime_days")
            finally:
                cur.unregister("_xuptime_days")
            if not replace:
                cur.execute("INSERT OR REPLACE INTO rollup_state VALUES ('daily', make_timestamp(?))", [day + DAY_US])
        return 1

    def _purge(self) -> int:
        cur = self._maint
        ids = [int(r[0]) for r in cur.execute("SELECT monitor_id FROM purge").fetchall()]
        if not ids:
            return 0
        rows = 0
        with transaction(cur):
            for table in _PURGED:
                got = cur.execute(f"DELETE FROM {table} WHERE monitor_id IN (SELECT unnest(?))", [ids]).fetchone()
                rows += int(got[0]) if got else 0
            cur.execute("DELETE FROM purge WHERE monitor_id IN (SELECT unnest(?))", [ids])
        with self._rollup_lock:
            for monitor_id in ids:
                self._hour_cache.pop(monitor_id, None)
            self._rollup_generation += 1
        return rows

    def _expire(self, now_us: int) -> int:
        """Rows older than their tier's retention go, a whole day at a time (the cut is the
        start of the day the retention reaches into, so a day is never split)."""
        cur = self._maint
        rows = 0
        cuts = []
        for tier, tables in (("raw", (("checks", "ts"), ("agent_reports", "ts"))),
                             ("hourly", (("checks_hourly", "hour"), ("maintenance_checks", "hour"))),
                             ("daily", (("checks_daily", "day"),))):
            floor = self.floor_us(tier, now_us)
            if floor is not None:
                cuts += [(table, column, floor // DAY_US * DAY_US) for table, column in tables]
        if not cuts:
            return 0
        with transaction(cur):
            for table, column, cut in cuts:
                got = cur.execute(f"DELETE FROM {table} WHERE {column} < make_timestamp(?)", [cut]).fetchone()
                rows += int(got[0]) if got else 0
        raw_cut = next((cut for table, _, cut in cuts if table == "checks"), None)
        with self._rollup_lock:
            if raw_cut is not None and self._ts_range is not None and self._ts_range[0] < raw_cut:
                self._ts_range = (min(raw_cut, self._ts_range[1]), self._ts_range[1])
            if rows:
                self._rollup_generation += 1  # (cached rolled hours may hold expired ones)
        return rows

    def compact(self, now_us: int, grace_us: int = 120 * 10**6) -> int:
        """Rewrite each closed day of ``checks`` (ended ``grace_us`` before ``now_us``) sorted by
        ``(monitor_id, ts)``, oldest first, one transaction a day: the day's rows are appended
        sorted and the arrival-ordered ones deleted (those visible when it began: rows that
        arrive late meanwhile stay, in arrival order). A monitor's day then sits in one or two
        row groups, which DuckDB's zone maps find without reading the others. Returns days
        rewritten."""
        target = (now_us - grace_us) // DAY_US * DAY_US
        upto = self.compacted_upto_us
        if upto is None:
            if self._ts_range is None:
                return 0
            upto = self._ts_range[0] // DAY_US * DAY_US
        days = 0
        while upto < target:
            end = upto + DAY_US
            days += self._rewrite_sorted("checks", "ts", upto, end, "compacted")
            upto = self.compacted_upto_us = end
        return days

    def compact_hours(self) -> int:
        """Rewrite each calendar month (UTC) of ``checks_hourly`` whose hours are all rolled up
        sorted by ``(monitor_id, hour)``, oldest first, a month a transaction, as ``compact``
        does with days of ``checks``. The rollup writes a day at a time, sorted within the day,
        so a monitor's month of hours is spread over every row group of the month until then;
        once rewritten it sits in one or two, which is what a month of hour buckets reads.
        Hours recomputed later (late rows) are appended unsorted: few. Returns months
        rewritten."""
        cur = self._maint
        rolled = self.rollup_upto_us
        start = self.hours_compacted_upto_us
        if rolled is None:
            return 0
        if start is None:
            row = cur.execute("SELECT epoch_us(min(hour)) FROM checks_hourly").fetchone()
            if row is None or row[0] is None:
                return 0
            start = _month_start(int(row[0]))
        months = 0
        while (end := _month_start(start + 32 * DAY_US)) <= rolled:
            months += self._rewrite_sorted("checks_hourly", "hour", start, end, "hours_compacted")
            start = self.hours_compacted_upto_us = end
        return months

    def _rewrite_sorted(self, table: str, column: str, start: int, end: int, state: str) -> int:
        """In one transaction: ``table``'s rows with ``column`` in [start, end) appended sorted by
        ``(monitor_id, column)`` and the ones they copy deleted (those visible when it began:
        rows that arrive meanwhile stay as they came), and ``rollup_state[state]`` set to
        ``end``. Returns 1 if there were rows, else 0. A crash leaves the span as it was or
        rewritten, never half."""
        cur = self._maint
        span = f"{column} >= make_timestamp($a) AND {column} < make_timestamp($b)"
        with transaction(cur):
            row = cur.execute(f"SELECT max(rowid) FROM {table} WHERE {span}", {"a": start, "b": end}).fetchone()
            found = row is not None and row[0] is not None
            if found:
                # (rows this transaction appends have row ids above every stored one)
                args = {"a": start, "b": end, "last": int(row[0])}
                cur.execute(f"INSERT INTO {table} SELECT * FROM {table} WHERE {span} AND rowid <= $last"
                            f" ORDER BY monitor_id, {column}", args)
                cur.execute(f"DELETE FROM {table} WHERE {span} AND rowid <= $last", args)
            cur.execute("INSERT OR REPLACE INTO rollup_state VALUES (?, make_timestamp(?))", [state, end])
        return int(found)


def _month_start(ts_us: int) -> int:
    """The start (µs) of the UTC calendar month holding ``ts_us``."""
    day = dt.datetime.fromtimestamp(ts_us // 10**6, dt.UTC)
    return int(dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC).timestamp()) * 10**6
