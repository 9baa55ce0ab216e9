"""The embedded default store: one DuckDB file, owned by exactly one process.

Thread contract: every method is synchronous. Writes (and anything on ``self.con``) come from
one thread at a time (the server's single writer thread). The read methods (``query``,
history, uptime, incidents) take one of ``READERS`` reader cursors and may run on other threads
concurrently; ``rollup`` uses a cursor of its own and may run on one more thread. A thread
that is not the writer never touches the writer's connection (see ``query``).

Ingest is columnar: a flushed ``ResultBuffer`` batch becomes an Arrow table and one
``INSERT ... SELECT``, never one statement per row. Every statement autocommits to DuckDB's WAL, so
an acknowledged batch survives ``kill -9``.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import datetime as dt
import importlib.util
import json
import logging
import os
import queue
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import numpy as np
import pyarrow as pa

from core.models import (
    KINDS,
    Integration,
    Monitor,
    MonitorValidationError,
    Transition,
    hash_api_key,
    parse_monitor,
)
from core.storage.rollups import HOUR_US, aggregate_hours, hour_aggregate_sql, merge_percentiles
from core.storage.schema import LATEST, MIGRATIONS

__all__ = ["API_KEY_PREFIX", "DB_FILE", "DuckDBStore", "DuplicateError", "NewerSchemaError", "ReadOnlyQueryError",
           ]

log = logging.getLogger("xuptime.storage")

# DuckDB's Python client tries ``import pandas`` for every bound parameter; with pandas absent
# that is a failed import and a search of sys.path each time (about 0.1 ms per parameter,
# measured). A finder first on sys.meta_path answers "not installed" at once instead. (Setting
# ``sys.modules["pandas"] = None`` would too, but pyarrow reads that entry as a module.)
class _AbsentPandas:
    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name="pandas")


if importlib.util.find_spec("pandas") is None and not any(isinstance(f, _AbsentPandas) for f in sys.meta_path):
    sys.meta_path.insert(0, _AbsentPandas())  # type: ignore[arg-type]

_SPEC_TYPES = dict(KINDS)

DB_FILE = "xuptime.duckdb"
_READ_ONLY_TYPES = {"SELECT", "EXPLAIN"}
READERS = 2  # read-only cursors, one per thread of the server's read executor
HOUR_CACHE_MONITORS = 256  # monitors whose rolled-up hours are kept in memory (LRU)


class DuplicateError(ValueError):
    """A unique name is already taken."""


class ReadOnlyQueryError(ValueError):
    """``query`` was given something other than SELECT/EXPLAIN statements."""


#: Every key starts with this, so a leaked key is recognisable (and greppable by scanners).
API_KEY_PREFIX = "xup_"


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def _ts(ts_us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ts_us)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class NewerSchemaError(RuntimeError):
    """The database was written by a newer xuptime: neither read nor migrated (downgrades
    are not supported; the newer version is needed to read it)."""


class DuckDBStore:
    def __init__(self, data_dir: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(data_dir) / DB_FILE
        self.read_only = read_only
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise FileNotFoundError(f"no xuptime database at {self.path}")
        # DuckDB sizes its thread pool from the machine, not from this process's CPU affinity.
        self.con = duckdb.connect(str(self.path), read_only=read_only,
                                  config={"threads": max(1, len(os.sched_getaffinity(0)))})
        self.con.create_function("xuptime_target", _alert_target, [str, str], str, side_effects=False)
        try:
            if not read_only:
                self.migrate()
            else:
                self._not_newer()
        except BaseException:
            self.con.close()
            raise
        # Cursors for read-only queries from other threads, made here, once: a thread that is
        # not the writer's must never touch the writer's connection (see ``query``).
        self._readers: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        for _ in range(READERS):
            self._readers.put(self.con.cursor())
        self._maint = self.con.cursor()  # the rollup job's, beside the writer
        self._rollup_lock = threading.Lock()
        #: Rolled-up hours that late rows landed in -> a counter bumped by each such row batch.
        self._dirty: dict[int, int] = {}
        self._deleted: set[int] = set()  # deleted monitors whose rollups are still to drop
        self._rolling_to = 0
        #: Bumped when rolled-up hours are rewritten (not when new hours are appended).
        self._rollup_generation = 0
        self._hour_cache: collections.OrderedDict[int, tuple[int, int, list[tuple]]] = collections.OrderedDict()
        #: Stored batches so far, and per monitor the number of the last batch that held one of
        #: its rows; ``_late`` counts batches with rows in rolled-up hours (see ``history_version``).
        self._batches = self._late = 0
        self._changed: dict[int, int] = {}
        row = self.con.execute("SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM checks").fetchone()
        #: Bounds (µs) of every stored check's ts, or None when there are none.
        self._ts_range: tuple[int, int] | None = None if not row or row[0] is None else (int(row[0]), int(row[1]))
        try:  # (a read-only open of an older database has no rollups yet)
            row = self.con.execute("SELECT epoch_us(upto) FROM rollup_state WHERE name = 'hourly'").fetchone()
        except duckdb.CatalogException:
            row = None
        #: Exclusive end (µs) of the hours in ``checks_hourly``; None before the first rollup.
        self.rollup_upto_us: int | None = None if row is None else int(row[0])

    # schema -----------------------------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0) if row else 0

    def _not_newer(self) -> int:
        """The schema version, or ``NewerSchemaError`` when a newer xuptime wrote it."""
        version = self.schema_version()
        if version > LATEST:
            raise NewerSchemaError(f"database schema v{version} is newer than this xuptime (v{LATEST})")
        return version

    def migrate(self) -> int:
        """Apply pending migrations, each atomically; returns the resulting version."""
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        version = self._not_newer()
        for number in range(version, LATEST):
            self.con.execute("BEGIN TRANSACTION")
            try:
                for statement in MIGRATIONS[number]:
                    self.con.execute(statement)
                self.con.execute("INSERT INTO schema_version VALUES (?, ?)", [number + 1, _utcnow()])
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        if version < LATEST:
            # Schema changes go into the database file at once, not only into the WAL: a crash
            # must never leave DDL for WAL replay to trip over.
            self.con.execute("CHECKPOINT")
        return LATEST

    def close(self) -> None:
        for _ in range(READERS):
            self._readers.get().close()
        self._maint.close()
        if not self.read_only:
            self.con.execute("CHECKPOINT")
        self.con.close()

    # monitors ---------------------------------------------------------------------------
    def create_monitor(self, monitor: Monitor) -> Monitor:
        return self.create_monitors([monitor])[0][0]

    def create_monitors(self, monitors: list[Monitor]) -> list[tuple[Monitor, dict[str, Any]]]:
        """Insert monitors in one transaction (all or none) and return each (the objects given,
        with their new id and status) with its timestamps, in the order given (ids ascending in
        that order): one round trip however many. The rows go in as one Arrow table (a VALUES
        list cost 300 µs a row to bind)."""
        if not monitors:
            return []
        now = _utcnow()
        self.con.execute("BEGIN TRANSACTION")
        try:
            ids = sorted(int(r[0]) for r in self.con.execute(
                "SELECT nextval('monitors_id_seq') FROM range(?)", [len(monitors)]).fetchall())
            table = pa.table({
                "id": pa.array(ids, pa.int64()),
                "account_id": pa.array([m.account_id for m in monitors], pa.int64()),
                "name": pa.array([m.name for m in monitors], pa.string()),
                "type": pa.array([m.type for m in monitors], pa.string()),
                "spec": pa.array([msgspec.json.encode(m.spec).decode() for m in monitors], pa.string()),
                "interval_s": pa.array([m.interval for m in monitors], pa.int32()),
                "timeout_s": pa.array([m.timeout for m in monitors], pa.float64()),
                "retries": pa.array([m.retries for m in monitors], pa.int32()),
                "recovery_threshold": pa.array([m.recovery_threshold for m in monitors], pa.int32()),
                "paused": pa.array([m.paused for m in monitors], pa.bool_()),
                "status": pa.array(["paused" if m.paused else "pending" for m in monitors], pa.string()),
                "tags": pa.array([m.tags for m in monitors], pa.list_(pa.string())),
                "integrations": pa.array([m.integrations for m in monitors], pa.list_(pa.int64())),
            })
            # (``new_monitors`` is found by DuckDB's replacement scan: registering a view cost more)
            new_monitors = table  # noqa: F841
            rows = self.con.execute(
                """INSERT INTO monitors (id, account_id, name, type, spec, interval_s, timeout_s, retries,
                        recovery_threshold, paused, status, tags, integrations, created_at, updated_at)
                    SELECT id, account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,
                           paused, status, tags, integrations, ?, ? FROM new_monitors
                    RETURNING id, status, created_at, updated_at, status_since""", [now, now]).fetchall()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        # The monitors are the ones given (validated already): only what the database chose
        # comes back, not rows to decode and validate again.
        by_id = {int(row[0]): row for row in rows}
        out = []
        for monitor, mid in zip(monitors, ids, strict=True):
            row = by_id[mid]
            monitor.id, monitor.status = mid, row[1]
            out.append((monitor, {"createdAt": _iso(row[2]), "updatedAt": _iso(row[3]), "statusSince": _iso(row[4])}))
        return out

    def update_monitor(self, monitor: Monitor, paused_changed: bool = False
                       ) -> tuple[Monitor, dict[str, Any]] | None:
        """Store a changed monitor (a change of ``paused`` resets its status to ``paused`` or
        ``pending``) and return it as stored with its timestamps: one statement."""
        now = _utcnow()
        status = ", paused = ?, status = ?, status_since = ?" if paused_changed else ""
        extra = [monitor.paused, "paused" if monitor.paused else "pending", now] if paused_changed else []
        row = self.con.execute(
            f"""UPDATE monitors SET name = ?, spec = ?, interval_s = ?, timeout_s = ?, retries = ?,
                    recovery_threshold = ?, tags = ?, integrations = ?, updated_at = ?{status} WHERE id = ?
                RETURNING {self._MONITOR_COLUMNS}, created_at, updated_at, status_since""",
            [monitor.name, msgspec.json.encode(monitor.spec).decode(), monitor.interval, monitor.timeout,
             monitor.retries, monitor.recovery_threshold, monitor.tags, monitor.integrations, now, *extra,
             monitor.id],
        ).fetchone()
        return None if row is None else self._with_times(row)

    def _with_times(self, row: tuple) -> tuple[Monitor, dict[str, Any]]:
        n = self._MONITOR_WIDTH
        return self._monitor_from_row(row[:n]), {"createdAt": _iso(row[n]), "updatedAt": _iso(row[n + 1]),
                                                  "statusSince": _iso(row[n + 2])}

    def set_paused(self, monitor_id: int, paused: bool) -> Monitor | None:
        found = self.set_paused_with_times(monitor_id, paused)
        return None if found is None else found[0]

    def set_paused_with_times(self, monitor_id: int, paused: bool) -> tuple[Monitor, dict[str, Any]] | None:
        """Pause (status ``paused``) or resume (``pending``) in one statement; the monitor as
        stored, with its timestamps."""
        now = _utcnow()
        row = self.con.execute(
            f"""UPDATE monitors SET paused = ?, status = ?, status_since = ?, updated_at = ? WHERE id = ?
                RETURNING {self._MONITOR_COLUMNS}, created_at, updated_at, status_since""",
            [paused, "paused" if paused else "pending", now, now, monitor_id],
        ).fetchone()
        return None if row is None else self._with_times(row)

    def delete_monitor(self, monitor_id: int) -> bool:
        """Remove a monitor with its results and incidents (one transaction)."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            row = self.con.execute("DELETE FROM monitors WHERE id = ? RETURNING id", [monitor_id]).fetchone()
            if row is not None:
                self.con.execute("DELETE FROM checks WHERE monitor_id = ?", [monitor_id])
                self.con.execute("DELETE FROM incidents WHERE monitor_id = ?", [monitor_id])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        if row is not None:
            self._batches += 1
            self._changed[monitor_id] = self._batches
            with self._rollup_lock:  # only the rollup job writes checks_hourly: no write conflicts
                self._deleted.add(monitor_id)
        return row is not None

    _MONITOR_COLUMNS = ("id, account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,"
                        " paused, status, tags, coalesce(integrations, [])")
    _MONITOR_WIDTH = 13

    def _monitor_from_row(self, row: tuple) -> Monitor:
        """Decode a stored monitor in one msgspec call (types and ranges still checked); only a
        row that fails goes through ``parse_monitor``, to name what is wrong with it."""
        (mid, account_id, name, kind, spec, interval, timeout, retries, recovery, paused, status, tags,
         integrations) = row
        try:
            spec_obj = msgspec.json.decode(spec, type=_SPEC_TYPES[kind])
            monitor = msgspec.convert(
                {"name": name, "interval": interval, "timeout": timeout, "retries": retries,
                 "recoveryThreshold": recovery, "paused": paused, "tags": list(tags),
                 "integrations": list(integrations)}, Monitor)
        except (KeyError, msgspec.ValidationError, msgspec.DecodeError):
            return self._monitor_from_row_slow(row)
        if spec_obj.check_fields():  # the rules msgspec cannot express (URL scheme, headers, ...)
            return self._monitor_from_row_slow(row)
        monitor.spec = spec_obj
        monitor.id = int(mid)
        monitor.account_id = int(account_id)
        monitor.status = status
        return monitor

    def _monitor_from_row_slow(self, row: tuple) -> Monitor:
        (mid, account_id, name, kind, spec, interval, timeout, retries, recovery, paused, status, tags,
         integrations) = row
        wire = {**json.loads(spec), "type": kind, "name": name, "interval": interval, "retries": retries,
                "recoveryThreshold": recovery, "paused": paused, "tags": list(tags),
                "integrations": list(integrations)}
        if timeout is not None:
            wire["timeout"] = timeout
        monitor = parse_monitor(wire)
        monitor.id = int(mid)
        monitor.account_id = int(account_id)
        monitor.status = status
        return monitor

    def get_monitor(self, monitor_id: int) -> Monitor | None:
        row = self.con.execute(
            f"SELECT {self._MONITOR_COLUMNS} FROM monitors WHERE id = ?", [monitor_id]
        ).fetchone()
        return None if row is None else self._monitor_from_row(row)

    def list_monitors(self, account_id: int | None = None) -> list[Monitor]:
        sql = f"SELECT {self._MONITOR_COLUMNS} FROM monitors"
        params: list[Any] = []
        if account_id is not None:
            sql += " WHERE account_id = ?"
            params.append(account_id)
        rows = self.con.execute(sql + " ORDER BY id", params).fetchall()
        monitors = []
        for row in rows:
            try:
                monitors.append(self._monitor_from_row(row))
            except MonitorValidationError as exc:
                # A row written by an older version (or by hand) must not stop the server.
                log.error("monitor %s is invalid and is skipped: %s", row[0], exc)
        return monitors

    def incident_page(self, account_id: int, before_id: int | None, limit: int, monitor_id: int | None = None
                      ) -> tuple[list[dict[str, Any]], int, bool]:
        """Incidents newest first (keyset on id): ``(page, total, more after this page)``."""
        where, params = ["account_id = ?"], [account_id]
        if monitor_id is not None:
            where.append("monitor_id = ?")
            params.append(monitor_id)
        clause = " AND ".join(where)
        keyset = " AND id < ?" if before_id is not None else ""
        with self._reading() as cur:
            total = cur.execute(f"SELECT count(*) FROM incidents WHERE {clause}", params).fetchone()
            rows = cur.execute(
                f"""SELECT id, monitor_id, started_at, resolved_at, cause,
                           epoch_us(coalesce(resolved_at, now() AT TIME ZONE 'UTC')) - epoch_us(started_at)
                    FROM incidents WHERE {clause}{keyset} ORDER BY id DESC LIMIT ?""",
                [*params, *([before_id] if before_id is not None else []), limit + 1]).fetchall()
        page = [{"id": int(r[0]), "monitorId": int(r[1]), "startedAt": _iso(r[2]), "resolvedAt": _iso(r[3]),
                 "status": "open" if r[3] is None else "resolved", "cause": r[4],
                 "durationSeconds": round(max(0, int(r[5])) / 1e6, 3)} for r in rows[:limit]]
        return page, int(total[0]) if total else 0, len(rows) > limit

    # history ----------------------------------------------------------------------------
    # Reads run on reader cursors (any thread). ``checks`` arrives in time order, so DuckDB's
    # zone maps on ``ts`` make a recent time range cheap while a per-monitor scan of all time
    # is not: raw reads probe growing windows back from the newest row, and hourly/daily
    # buckets and uptime read closed hours from ``checks_hourly`` and only the rest raw.
    @contextlib.contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cursor = self._readers.get()
        try:
            yield cursor
        finally:
            self._readers.put(cursor)

    def _probe(self, lo: int | None, hi: int | None, need: int, align_us: int,
               fetch: Callable[[int | None, int], list[tuple]]) -> list[tuple]:
        """``fetch(start, hi)`` over windows growing 8x back from ``hi`` (inclusive, µs) until it
        returns ``need`` rows or reaches ``lo``; ``start`` is aligned down to ``align_us``."""
        if self._ts_range is None:
            return []
        first, last = self._ts_range
        hi = last if hi is None else min(hi, last)
        lo = first if lo is None else max(lo, first)
        if hi < lo:
            return []
        width = HOUR_US
        while True:
            start = (hi - width) // align_us * align_us
            if start <= lo:
                return fetch(lo, hi)
            rows = fetch(start, hi)
            if len(rows) >= need:
                return rows
            width *= 8

    def history_raw(self, monitor_id: int, from_us: int | None, to_us: int | None, before_us: int | None,
                    limit: int) -> tuple[list[tuple], bool]:
        """Checks newest first within [from, to], keyset on ts: ``(rows, more)``."""
        hi = _upper(to_us, before_us)
        with self._reading() as cur:
            def fetch(start: int | None, end: int) -> list[tuple]:
                return cur.execute(
                    """SELECT epoch_us(ts), ok, latency_us, status_code, error, dns_us, connect_us, tls_us, ttfb_us
                       FROM checks WHERE monitor_id = ? AND ts >= make_timestamp(?) AND ts <= make_timestamp(?)
                       ORDER BY ts DESC LIMIT ?""", [monitor_id, start, end, limit + 1]).fetchall()
            rows = self._probe(from_us, hi, limit + 1, 1, fetch)
        return rows[:limit], len(rows) > limit

    def history_buckets(self, monitor_id: int, bucket_s: int, from_us: int | None, to_us: int | None,
                        before_us: int | None, limit: int) -> tuple[list[tuple], bool]:
        """Buckets that hold checks, newest first: ts, checks, up, avg/min/max latency µs and
        [p50, p95, p99]. Minute buckets and hours are exact; a day's percentiles are estimated
        from its hours' histograms (within 1.6%, see ``core.storage.rollups``)."""
        bucket_us = bucket_s * 10**6
        if bucket_us == HOUR_US:
            hours, more = self.history_hours(monitor_id, from_us, to_us, before_us, limit)
            return [(h[0], h[1], h[2], h[3] / h[1], h[4], h[5], [h[6], h[7], h[8]]) for h in hours], more
        hi = _upper(to_us, before_us)
        with self._reading() as cur:
            if bucket_us < HOUR_US:
                def fetch(start: int | None, end: int) -> list[tuple]:
                    return cur.execute(
                        """SELECT b, count(*), count(*) FILTER (WHERE ok), avg(latency_us), min(latency_us),
                                  max(latency_us), quantile_cont(latency_us, [0.5, 0.95, 0.99])
                           FROM (SELECT epoch_us(ts) // ? * ? AS b, ok, latency_us FROM checks
                                 WHERE monitor_id = ? AND ts >= make_timestamp(?) AND ts <= make_timestamp(?))
                           GROUP BY b ORDER BY b DESC LIMIT ?""",
                        [bucket_us, bucket_us, monitor_id, start, end, limit + 1]).fetchall()
                rows = self._probe(from_us, hi, limit + 1, bucket_us, fetch)
            else:
                hours = self._hours(cur, monitor_id, from_us, hi, (limit + 2) * bucket_us // HOUR_US,
                                    with_hist=True)
                rows = _merge_hours(hours, bucket_us, complete=len(hours) < (limit + 2) * bucket_us // HOUR_US)
        return rows[:limit], len(rows) > limit

    def history_hours(self, monitor_id: int, from_us: int | None, to_us: int | None, before_us: int | None,
                      limit: int) -> tuple[list[tuple], bool]:
        """Hour buckets that hold checks, newest first, as ``(hour µs, checks, up, latency sum,
        min, max, p50, p95, p99, ...)``: the rows ``history_buckets`` builds its hours from. A
        rolled-up hour comes back as the same tuple object from call to call while it stands
        (from the rolled-hours cache), so a caller may key work on its identity."""
        hi = _upper(to_us, before_us)
        with self._reading() as cur:
            hours = self._hours(cur, monitor_id, from_us, hi, limit + 1, with_hist=False)
        return hours[:limit], len(hours) > limit

    def _split(self, lo: int | None, hi: int | None) -> tuple[tuple[int | None, int, list[int]] | None, list[tuple]]:
        """Split [lo, hi] (µs, inclusive, None = open) into whole rolled-up hours ``[a, b)`` less
        the stale ones, and the raw ranges that complete it. A rolled-up hour that a late row
        has landed in is stale until ``rollup`` recomputes it and is read raw, so reads are
        always exact."""
        upto = self.rollup_upto_us
        a = None if lo is None else -(-lo // HOUR_US) * HOUR_US
        b = upto if hi is None or upto is None else min(upto, (hi + 1) // HOUR_US * HOUR_US)
        if b is None or (a is not None and a >= b):
            return None, [(lo, hi)]
        raw = [(b, hi)]
        if lo is not None and lo < a:
            raw.append((lo, a - 1))
        with self._rollup_lock:
            stale = sorted(h for h in self._dirty if (a is None or h >= a) and h < b)
        raw += [(h, h + HOUR_US - 1) for h in stale]
        return (a, b, stale), raw

    def _hours(self, cur: duckdb.DuckDBPyConnection, monitor_id: int, lo: int | None, hi: int | None,
               limit: int, *, with_hist: bool) -> list[tuple]:
        """Per-hour aggregates of one monitor within [lo, hi], newest first, at most ``limit``:
        (hour µs, checks, up, latency sum, min, max, p50, p95, p99, hist bins, hist counts)."""
        rolled, raw = self._split(lo, hi)
        branches, params = [], []
        for start, end in raw:
            branches.append("SELECT epoch_us(ts) AS t, ok, latency_us FROM checks WHERE monitor_id = ?"
                            " AND ts >= make_timestamp(?) AND ts <= make_timestamp(?)")
            params += [monitor_id, -2**62 if start is None else start, 2**62 if end is None else end]
        got = cur.execute(" UNION ALL ".join(branches), params).fetchnumpy()
        rows = aggregate_hours(got["t"], got["ok"], got["latency_us"], with_hist=with_hist)
        if rolled is not None:
            a, b, stale = rolled
            cached = self._rolled_hours(cur, monitor_id)
            hours = [r[0] for r in cached]
            first = 0 if a is None else bisect.bisect_left(hours, a)
            last = bisect.bisect_left(hours, b)
            skip = set(stale)
            for r in reversed(cached[max(first, last - limit - len(skip)):last]):
                if r[0] not in skip:
                    rows.append(r)
        rows.sort(key=lambda r: r[0], reverse=True)
        return rows[:limit]

    def _rolled_hours(self, cur: duckdb.DuckDBPyConnection, monitor_id: int) -> list[tuple]:
        """All of a monitor's ``checks_hourly`` rows, oldest first, from a small LRU cache that
        is extended as hours close and dropped when a rolled-up hour is recomputed: a
        dashboard's month of hours costs no scan."""
        with self._rollup_lock:
            generation, upto = self._rollup_generation, self.rollup_upto_us
            entry = self._hour_cache.get(monitor_id)
            if entry is not None and entry[0] == generation:
                self._hour_cache.move_to_end(monitor_id)
                if entry[1] == upto:
                    return entry[2]
        since = entry[1] if entry is not None and entry[0] == generation else None
        fresh = cur.execute(
            """SELECT epoch_us(hour), checks, up, latency_sum, latency_min, latency_max, p50, p95, p99,
                      hist_idx, hist_cnt
               FROM checks_hourly WHERE monitor_id = ? AND hour >= make_timestamp(?) AND hour < make_timestamp(?)
               ORDER BY hour""", [monitor_id, -2**62 if since is None else since, upto]).fetchall()
        rows = fresh if since is None else entry[2] + fresh
        with self._rollup_lock:
            if self._rollup_generation == generation:
                self._hour_cache[monitor_id] = (generation, upto, rows)
                self._hour_cache.move_to_end(monitor_id)
                while len(self._hour_cache) > HOUR_CACHE_MONITORS:
                    self._hour_cache.popitem(last=False)
        return rows

    def uptime(self, monitor_id: int, windows: list[tuple[str, int]], now_us: int) -> dict[str, dict[str, Any]]:
        """Per window (label, seconds): uptime ratio, checks, and downtime seconds from incidents."""
        out: dict[str, dict[str, Any]] = {}
        with self._reading() as cur:
            for label, seconds in windows:
                start = now_us - seconds * 1_000_000
                checks = up = 0
                rolled, raw = self._split(start, None)
                for lo, hi in raw:
                    row = cur.execute(
                        "SELECT count(*), count(*) FILTER (WHERE ok) FROM checks WHERE monitor_id = ?"
                        " AND ts >= make_timestamp(?) AND ts <= make_timestamp(?)",
                        [monitor_id, lo, hi if hi is not None else 2**62]).fetchone()
                    checks, up = checks + int(row[0]), up + int(row[1] or 0)
                if rolled is not None:
                    row = cur.execute(
                        "SELECT coalesce(sum(checks), 0), coalesce(sum(up), 0) FROM checks_hourly"
                        " WHERE monitor_id = ? AND hour >= make_timestamp(?) AND hour < make_timestamp(?)"
                        " AND epoch_us(hour) NOT IN (SELECT unnest(?::BIGINT[]))",
                        [monitor_id, *rolled]).fetchone()
                    checks, up = checks + int(row[0]), up + int(row[1])
                down_us = cur.execute(
                    """SELECT coalesce(sum(greatest(0, least(coalesce(epoch_us(resolved_at), ?), ?)
                                                      - greatest(epoch_us(started_at), ?))), 0)
                       FROM incidents WHERE monitor_id = ?""", [now_us, now_us, start, monitor_id]).fetchone()
                out[label] = {"uptime": (up / checks) if checks else None, "checks": checks,
                              "downtimeSeconds": round(int(down_us[0] if down_us else 0) / 1e6, 3)}
        return out

    def history_version(self, monitor_id: int) -> tuple[int, int, int, int | None]:
        """A value that changes whenever a history or bucket answer for this monitor could:
        a batch holding one of its rows is stored, a late row makes a rolled-up hour stale, or
        rolled-up hours are rewritten or extended. It is bumped only after the change is
        committed, so an answer computed after reading version ``v`` is at least as new as
        ``v``; a cache that keeps it under ``v`` never serves anything older than ``v``'s data."""
        return self._changed.get(monitor_id, 0), self._late, self._rollup_generation, self.rollup_upto_us

    # rollups ----------------------------------------------------------------------------
    def rollup(self, now_us: int, grace_us: int = 120 * 10**6, chunk_us: int = 24 * HOUR_US) -> int:
        """Roll closed hours (ended ``grace_us`` before ``now_us``) into ``checks_hourly`` and
        recompute hours that late rows touched; returns hours written. Runs on its own cursor,
        so it may run on a thread of its own beside the writer; one caller at a time."""
        cur = self._maint
        target = (now_us - grace_us) // HOUR_US * HOUR_US
        with self._rollup_lock:
            self._rolling_to = max(self._rolling_to, target)
            dirty = dict(self._dirty)
            gone, self._deleted = self._deleted, set()
        written = 0
        try:
            if gone:
                cur.execute("DELETE FROM checks_hourly WHERE monitor_id IN (SELECT unnest(?))", [sorted(gone)])
                with self._rollup_lock:
                    for monitor_id in gone:
                        self._hour_cache.pop(monitor_id, None)
            upto = self.rollup_upto_us
            if upto is None:
                upto = target if self._ts_range is None else min(target, self._ts_range[0] // HOUR_US * HOUR_US)
            while upto < target:
                end = min(target, upto + chunk_us)
                written += self._roll(cur, upto, end, replace=False)
                upto = end
            if upto != self.rollup_upto_us:
                cur.execute("INSERT OR REPLACE INTO rollup_state VALUES ('hourly', make_timestamp(?))", [upto])
                with self._rollup_lock:
                    self.rollup_upto_us = upto
            for hour, generation in sorted(dirty.items()):
                if hour >= upto:
                    continue  # not rolled up yet
                written += self._roll(cur, hour, hour + HOUR_US, replace=True)
                with self._rollup_lock:  # still stale if another late row came meanwhile
                    if self._dirty.get(hour) == generation:
                        del self._dirty[hour]
        except BaseException:
            with self._rollup_lock:
                self._deleted |= gone
            raise
        return written

    def _roll(self, cur: duckdb.DuckDBPyConnection, start: int, end: int, *, replace: bool) -> int:
        sql = hour_aggregate_sql("ts >= make_timestamp(?) AND ts < make_timestamp(?)")
        cur.execute("BEGIN TRANSACTION")
        try:
            if replace:
                cur.execute("DELETE FROM checks_hourly WHERE hour >= make_timestamp(?) AND hour < make_timestamp(?)",
                            [start, end])
            row = cur.execute(f"INSERT INTO checks_hourly SELECT * FROM ({sql}) ORDER BY monitor_id, hour",
                              [start, end] * 2).fetchone()
            if not replace:
                cur.execute("INSERT OR REPLACE INTO rollup_state VALUES ('hourly', make_timestamp(?))", [end])
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        with self._rollup_lock:
            if replace:
                self._rollup_generation += 1
            else:
                self.rollup_upto_us = end
        return int(row[0]) if row else 0

    def _note_ingest(self, ts_us: np.ndarray, monitor_ids: np.ndarray) -> None:
        """Called once a batch is committed: track the stored time range and which monitors
        changed, and mark rolled-up (or being rolled-up) hours that a late row lands in, so the
        next ``rollup`` recomputes them."""
        self._batches += 1
        self._changed.update(dict.fromkeys(np.unique(monitor_ids).tolist(), self._batches))
        lo, hi = int(ts_us.min()), int(ts_us.max())
        self._ts_range = (lo, hi) if self._ts_range is None else (min(lo, self._ts_range[0]),
                                                                  max(hi, self._ts_range[1]))
        with self._rollup_lock:
            guard = max(self.rollup_upto_us or 0, self._rolling_to)
            if lo < guard:
                self._late += 1
                late = ts_us[ts_us < guard]
                for hour in np.unique(late // HOUR_US * HOUR_US).tolist():
                    self._dirty[hour] = self._dirty.get(hour, 0) + 1

    def monitor_times(self) -> dict[int, dict[str, Any]]:
        """monitor id -> createdAt, updatedAt, statusSince of every monitor (loaded at startup;
        every write returns its monitor's times after that)."""
        rows = self.con.execute("SELECT id, created_at, updated_at, status_since FROM monitors").fetchall()
        return {int(r[0]): {"createdAt": _iso(r[1]), "updatedAt": _iso(r[2]), "statusSince": _iso(r[3])}
                for r in rows}

    def last_checks(self) -> dict[int, tuple[int, int]]:
        """monitor id -> (ts µs, latency µs) of its newest stored check (loaded at startup)."""
        rows = self.con.execute(
            "SELECT monitor_id, epoch_us(max(ts)), arg_max(latency_us, ts) FROM checks GROUP BY 1").fetchall()
        return {int(m): (int(ts), int(lat)) for m, ts, lat in rows}

    def api_key_map(self) -> dict[str, int]:
        """sha256 -> account id of every unrevoked key (the server's authentication map)."""
        rows = self.con.execute("SELECT sha256, account_id FROM api_keys WHERE revoked_at IS NULL").fetchall()
        return {h: int(a) for h, a in rows}

    def account_limits(self) -> dict[int, int]:
        rows = self.con.execute("SELECT id, monthly_request_limit FROM accounts").fetchall()
        return {int(a): int(limit) for a, limit in rows}

    def usage_for_month(self, month: str) -> dict[int, int]:
        rows = self.con.execute("SELECT account_id, requests FROM api_usage WHERE month = ?", [month]).fetchall()
        return {int(a): int(n) for a, n in rows}

    def save_usage(self, month: str, counts: dict[int, int]) -> None:
        """Upsert absolute counts (idempotent: the server's counters are the truth)."""
        if not counts:
            return
        table = pa.table({"account_id": pa.array(list(counts), pa.int64()),
                          "requests": pa.array(list(counts.values()), pa.int64())})
        self.con.register("_xuptime_usage", table)
        try:
            self.con.execute(
                """INSERT INTO api_usage SELECT account_id, ?, requests FROM _xuptime_usage
                   ON CONFLICT (account_id, month) DO UPDATE SET requests = excluded.requests""", [month])
        finally:
            self.con.unregister("_xuptime_usage")

    # accounts and API keys ----------------------------------------------------------------
    def create_account(self, name: str, monthly_limit: int | None = None) -> dict[str, Any]:
        if self.get_account(name) is not None:
            raise DuplicateError(name)
        if monthly_limit is None:
            self.con.execute("INSERT INTO accounts (name) VALUES (?)", [name])
        else:
            self.con.execute("INSERT INTO accounts (name, monthly_request_limit) VALUES (?, ?)",
                             [name, monthly_limit])
        account = self.get_account(name)
        assert account is not None
        return account

    def get_account(self, name: str) -> dict[str, Any] | None:
        row = self.con.execute(
            "SELECT id, name, monthly_request_limit, created_at FROM accounts WHERE name = ?", [name]).fetchone()
        if row is None:
            return None
        return {"id": int(row[0]), "name": row[1], "monthlyRequestLimit": int(row[2]), "createdAt": _iso(row[3])}

    def list_accounts(self) -> list[dict[str, Any]]:
        rows = self.con.execute("SELECT name FROM accounts ORDER BY id").fetchall()
        return [a for (name,) in rows if (a := self.get_account(name)) is not None]

    def create_api_key(self, account_id: int, name: str) -> dict[str, Any]:
        """A new key for the account; the returned ``secret`` is never stored or shown again."""
        secret = API_KEY_PREFIX + secrets.token_urlsafe(24)
        row = self.con.execute(
            "INSERT INTO api_keys (account_id, name, prefix, sha256, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
            [account_id, name, secret[:12], hash_api_key(secret), _utcnow()]).fetchone()
        assert row is not None
        key = next(k for k in self.list_api_keys(account_id) if k["id"] == int(row[0]))
        return {**key, "secret": secret}

    def list_api_keys(self, account_id: int) -> list[dict[str, Any]]:
        rows = self.con.execute(
            """SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys
               WHERE account_id = ? ORDER BY id""", [account_id]).fetchall()
        return [{"id": int(r[0]), "name": r[1], "prefix": r[2], "createdAt": _iso(r[3]), "lastUsedAt": _iso(r[4]),
                 "revokedAt": _iso(r[5])} for r in rows]

    def revoke_api_key(self, account_id: int, key_id: int) -> bool:
        row = self.con.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL RETURNING id",
            [_utcnow(), key_id, account_id]).fetchone()
        return row is not None

    def find_api_key(self, secret: str) -> int | None:
        """The account id of a valid, unrevoked key; None for anything else."""
        if not secret.startswith(API_KEY_PREFIX):
            return None
        row = self.con.execute("SELECT account_id FROM api_keys WHERE sha256 = ? AND revoked_at IS NULL",
                               [hash_api_key(secret)]).fetchone()
        return None if row is None else int(row[0])

    # results ----------------------------------------------------------------------------
    def ingest(self, batch: dict[str, Any], region: str | None = None) -> int:
        """Append one flushed result batch (columns as numpy arrays); returns rows written."""
        n = len(batch["monitor_id"])
        if n == 0:
            return 0
        errors = np.full(n, None, dtype=object)
        if len(batch["error_rows"]):
            errors[batch["error_rows"]] = batch["error_texts"]

        def phase(name: str) -> pa.Array:
            values = batch[name]
            return pa.array(values, type=pa.int64(), mask=values < 0)

        status = batch["status_code"]
        table = pa.table({
            "monitor_id": pa.array(batch["monitor_id"], type=pa.int64()),
            "ts": pa.array(batch["ts_us"], type=pa.int64()).cast(pa.timestamp("us")),
            "ok": pa.array(batch["ok"].astype(bool)),
            "latency_us": pa.array(batch["latency_us"], type=pa.int64()),
            "status_code": pa.array(status, type=pa.int16(), mask=status == 0),
            "error_code": pa.array(batch["error_code"], type=pa.uint8()),
            "error": pa.array(errors, type=pa.string()),
            "dns_us": phase("dns_us"),
            "connect_us": phase("connect_us"),
            "tls_us": phase("tls_us"),
            "ttfb_us": phase("ttfb_us"),
            "region": pa.nulls(n, pa.string()) if region is None else pa.array([region] * n, pa.string()),
        })
        self.con.register("_xuptime_batch", table)
        try:
            self.con.execute("INSERT INTO checks SELECT * FROM _xuptime_batch")
        finally:
            self.con.unregister("_xuptime_batch")
        self._note_ingest(batch["ts_us"], batch["monitor_id"])
        return n

    def apply_transitions(self, transitions: list[Transition]) -> None:
        """Persist status changes and open/resolve incidents, set-based, in one transaction.

        Transitions are applied in rounds; round k holds each monitor's k-th transition of the
        batch, so a monitor that went down and up again within one batch is replayed in order
        while thousands of monitors changing at once cost three statements per round.
        Paused or deleted monitors are left alone.

        The same transaction writes the outbox: one row per (transition, channel) for a monitor
        that went down (an incident opened) or recovered (its incident resolved), to its own
        channels and its account's defaults, each keyed ``incident:event:channel`` so that a
        replay cannot queue a message twice. A first result that is ``up`` queues nothing.
        """
        if not transitions:
            return
        rounds: list[list[Transition]] = []
        seen: dict[int, int] = {}
        for t in transitions:
            k = seen.get(t.monitor_id, 0)
            seen[t.monitor_id] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(t)
        now = _utcnow()
        self.con.execute("BEGIN TRANSACTION")
        try:
            for batch in rounds:
                table = pa.table({
                    "monitor_id": pa.array([t.monitor_id for t in batch], pa.int64()),
                    "ts": pa.array([t.ts_us for t in batch], pa.int64()).cast(pa.timestamp("us")),
                    "old": pa.array([t.old for t in batch], pa.string()),
                    "new": pa.array([t.new for t in batch], pa.string()),
                    "cause": pa.array([t.cause for t in batch], pa.string()),
                })
                self.con.register("_xuptime_transitions", table)
                try:
                    self.con.execute(
                        """UPDATE monitors SET status = t.new, status_since = t.ts FROM _xuptime_transitions t
                           WHERE monitors.id = t.monitor_id AND NOT monitors.paused""")
                    self.con.execute(
                        """INSERT INTO incidents (account_id, monitor_id, started_at, cause)
                           SELECT m.account_id, t.monitor_id, t.ts, t.cause
                           FROM _xuptime_transitions t JOIN monitors m ON m.id = t.monitor_id
                           WHERE t.new = 'down' AND NOT m.paused AND NOT EXISTS (SELECT 1 FROM incidents i
                               WHERE i.monitor_id = t.monitor_id AND i.resolved_at IS NULL)""")
                    self.con.execute(
                        """UPDATE incidents SET resolved_at = t.ts FROM _xuptime_transitions t
                           WHERE incidents.monitor_id = t.monitor_id AND incidents.resolved_at IS NULL
                             AND t.old = 'down' AND t.new = 'up'""")
                    self.con.execute(_OUTBOX_DOWN, [now, now])
                    self.con.execute(_OUTBOX_UP, [now, now])
                finally:
                    self.con.unregister("_xuptime_transitions")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    # notification channels ----------------------------------------------------------------
    _INTEGRATION_COLUMNS = ("id, account_id, name, type, config, template, is_default, reminder_interval_s,"
                            " created_at, updated_at")

    @staticmethod
    def _integration(row: tuple) -> Integration:
        return Integration(id=int(row[0]), account_id=int(row[1]), name=row[2], type=row[3],
                           config=json.loads(row[4]), template=row[5], is_default=bool(row[6]),
                           reminder_interval=row[7], created_at=_iso(row[8]), updated_at=_iso(row[9]))

    def create_integration(self, integration: Integration) -> Integration:
        now = _utcnow()
        row = self.con.execute(
            f"""INSERT INTO integrations (account_id, name, type, config, template, is_default, reminder_interval_s,
                                          created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {self._INTEGRATION_COLUMNS}""",
            [integration.account_id, integration.name, integration.type, json.dumps(integration.config),
             integration.template, integration.is_default, integration.reminder_interval, now, now]).fetchone()
        assert row is not None
        return self._integration(row)

    def update_integration(self, integration: Integration) -> Integration | None:
        row = self.con.execute(
            f"""UPDATE integrations SET name = ?, config = ?, template = ?, is_default = ?, reminder_interval_s = ?,
                       updated_at = ? WHERE id = ? AND account_id = ? RETURNING {self._INTEGRATION_COLUMNS}""",
            [integration.name, json.dumps(integration.config), integration.template, integration.is_default,
             integration.reminder_interval, _utcnow(), integration.id, integration.account_id]).fetchone()
        return None if row is None else self._integration(row)

    def delete_integration(self, account_id: int, integration_id: int) -> list[int] | None:
        """Delete a channel and detach it from monitors (its queued messages fail as
        deleted); returns the ids of the monitors it was detached from, None if not found."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            row = self.con.execute("DELETE FROM integrations WHERE id = ? AND account_id = ? RETURNING id",
                                   [integration_id, account_id]).fetchone()
            touched: list[int] = []
            if row is not None:
                touched = [int(r[0]) for r in self.con.execute(
                    """UPDATE monitors SET integrations = list_filter(integrations, x -> x <> ?)
                       WHERE list_contains(integrations, ?) RETURNING id""",
                    [integration_id, integration_id]).fetchall()]
                self.con.execute(
                    """UPDATE outbox SET status = 'failed', last_response = 'channel deleted'
                       WHERE integration_id = ? AND status = 'pending'""", [integration_id])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return None if row is None else touched

    def list_integrations(self, account_id: int | None = None) -> list[Integration]:
        where = "" if account_id is None else " WHERE account_id = ?"
        rows = self.con.execute(f"SELECT {self._INTEGRATION_COLUMNS} FROM integrations{where} ORDER BY id",
                                [] if account_id is None else [account_id]).fetchall()
        return [self._integration(r) for r in rows]

    def queue_reminders(self, now: dt.datetime) -> int:
        """Queue a reminder for each open incident and each of its channels with a reminder
        interval, once per elapsed interval (keyed by its number, so calling this often is
        harmless); returns how many were queued. Paused monitors get none."""
        row = self.con.execute(_OUTBOX_REMINDERS, [now, now, now]).fetchone()
        return int(row[0]) if row else 0

    def prune_outbox(self, before: dt.datetime) -> int:
        """Forget finished messages (sent or failed) created before ``before``, with their
        attempts; pending ones stay whatever their age. Returns messages removed."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(
                """DELETE FROM deliveries WHERE outbox_id IN
                       (SELECT id FROM outbox WHERE status <> 'pending' AND created_at < ?)""", [before])
            row = self.con.execute("DELETE FROM outbox WHERE status <> 'pending' AND created_at < ? RETURNING id",
                                   [before]).fetchall()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return len(row)

    def due_outbox(self, now: dt.datetime, limit: int) -> list[tuple]:
        """Pending messages whose next attempt is due, oldest first:
        (id, integration_id, monitor_id, incident_id, event, context, attempts)."""
        with self._reading() as cur:
            return cur.execute(
                """SELECT id, integration_id, monitor_id, incident_id, event, context, attempts FROM outbox
                   WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?""", [now, limit]).fetchall()

    def record_deliveries(self, attempts: list[dict[str, Any]]) -> None:
        """Write attempt outcomes in one transaction: each is ``id, attempt, at, ok, status,
        response, state ('sent'|'pending'|'failed'), next_at``."""
        if not attempts:
            return
        table = pa.table({
            "id": pa.array([a["id"] for a in attempts], pa.int64()),
            "attempt": pa.array([a["attempt"] for a in attempts], pa.int32()),
            "attempted_at": pa.array([a["at"] for a in attempts], pa.timestamp("us")),
            "ok": pa.array([a["ok"] for a in attempts], pa.bool_()),
            "status": pa.array([a["status"] for a in attempts], pa.int32()),
            "response": pa.array([a["response"] for a in attempts], pa.string()),
            "state": pa.array([a["state"] for a in attempts], pa.string()),
            "next_at": pa.array([a["next_at"] for a in attempts], pa.timestamp("us")),
        })
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.register("_xuptime_attempts", table)
            self.con.execute(
                """UPDATE outbox SET status = a.state, attempts = a.attempt, next_attempt_at = a.next_at,
                          last_status = a.status, last_response = a.response,
                          delivered_at = CASE WHEN a.ok THEN a.attempted_at END
                   FROM _xuptime_attempts a WHERE outbox.id = a.id AND outbox.status = 'pending'""")
            self.con.execute(
                "INSERT INTO deliveries SELECT id, attempt, attempted_at, ok, status, response FROM _xuptime_attempts")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister("_xuptime_attempts")

    def outbox_page(self, account_id: int, integration_id: int, status: str | None, before_id: int | None,
                    limit: int) -> tuple[list[dict[str, Any]], bool]:
        """A channel's messages newest first, with the provider's last answer."""
        where, params = ["account_id = ?", "integration_id = ?"], [account_id, integration_id]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        with self._reading() as cur:
            rows = cur.execute(
                f"""SELECT id, monitor_id, incident_id, event, status, attempts, created_at, delivered_at,
                           next_attempt_at, last_status, last_response
                    FROM outbox WHERE {" AND ".join(where)} ORDER BY id DESC LIMIT ?""",
                [*params, limit + 1]).fetchall()
        page = [{"id": int(r[0]), "monitorId": int(r[1]), "incidentId": r[2], "event": r[3], "status": r[4],
                 "attempts": int(r[5]), "createdAt": _iso(r[6]), "deliveredAt": _iso(r[7]),
                 "nextAttemptAt": _iso(r[8]) if r[4] == "pending" else None, "lastStatus": r[9],
                 "lastResponse": r[10]} for r in rows[:limit]]
        return page, len(rows) > limit

    # read-only SQL ----------------------------------------------------------------------
    def query(self, sql: str, limit: int = 10_000) -> tuple[list[str], list[tuple]]:
        """Run read-only SQL (SELECT / EXPLAIN only) on a reader cursor; returns columns, rows.

        Safe on another thread than the writer: it never touches the writer's connection. (It
        once called ``extract_statements`` on it and deadlocked the server: this thread waited
        for that connection's lock holding the GIL, while the writer, scanning a registered
        Arrow table, waited for the GIL.)"""
        cursor = self._readers.get()
        try:
            statements = cursor.extract_statements(sql)
            if not statements:
                raise ReadOnlyQueryError("no SQL statement given")
            for statement in statements:
                kind = statement.type.name
                if kind not in _READ_ONLY_TYPES:
                    raise ReadOnlyQueryError(f"only SELECT queries are allowed here, not {kind}")
            result = None
            for statement in statements:
                result = cursor.execute(statement)
            assert result is not None
            columns = [d[0] for d in result.description or []]
            rows = result.fetchmany(limit)
        finally:
            self._readers.put(cursor)
        return columns, rows


_ISO = "'%Y-%m-%dT%H:%M:%S.%gZ'"
_TARGET = "xuptime_target(m.type, CAST(m.spec AS VARCHAR))"
_CHANNELS = ("JOIN integrations g ON g.account_id = m.account_id"
             " AND (g.is_default OR list_contains(m.integrations, g.id))")
_OUTBOX_INSERT = """INSERT INTO outbox (account_id, integration_id, monitor_id, incident_id, event, context, dedupe_key,
                                        next_attempt_at, created_at)"""
_OUTBOX_DOWN = f"""{_OUTBOX_INSERT}
    SELECT m.account_id, g.id, m.id, i.id, 'down',
           json_object('monitor', json_object('id', m.id, 'name', m.name, 'type', m.type, 'target', {_TARGET}),
                       'reason', i.cause, 'started', strftime(i.started_at, {_ISO}), 'incident_id', i.id),
           i.id || ':down:' || g.id, ?, ?
    FROM _xuptime_transitions t JOIN monitors m ON m.id = t.monitor_id
    JOIN incidents i ON i.monitor_id = t.monitor_id AND i.resolved_at IS NULL {_CHANNELS}
    WHERE t.new = 'down' AND t.old <> 'down' AND NOT m.paused
    ON CONFLICT DO NOTHING"""
_OUTBOX_UP = f"""{_OUTBOX_INSERT}
    SELECT m.account_id, g.id, m.id, i.id, 'up',
           json_object('monitor', json_object('id', m.id, 'name', m.name, 'type', m.type, 'target', {_TARGET}),
                       'reason', i.cause, 'started', strftime(i.started_at, {_ISO}),
                       'resolved', strftime(i.resolved_at, {_ISO}), 'incident_id', i.id,
                       'duration_seconds', (epoch_us(i.resolved_at) - epoch_us(i.started_at)) / 1e6),
           i.id || ':up:' || g.id, ?, ?
    FROM _xuptime_transitions t JOIN monitors m ON m.id = t.monitor_id
    JOIN incidents i ON i.monitor_id = t.monitor_id AND i.resolved_at = t.ts {_CHANNELS}
    WHERE t.old = 'down' AND t.new = 'up' AND NOT m.paused
    ON CONFLICT DO NOTHING"""


_OUTBOX_REMINDERS = f"""{_OUTBOX_INSERT}
    SELECT account_id, integration_id, monitor_id, incident_id, 'reminder', context,
           incident_id || ':reminder-' || k || ':' || integration_id, ?, ?
    FROM (SELECT m.account_id, g.id AS integration_id, m.id AS monitor_id, i.id AS incident_id,
                 json_object('monitor', json_object('id', m.id, 'name', m.name, 'type', m.type, 'target', {_TARGET}),
                             'reason', i.cause, 'started', strftime(i.started_at, {_ISO}), 'incident_id', i.id)
                     AS context,
                 CAST(floor((epoch_us(CAST(? AS TIMESTAMP)) - epoch_us(i.started_at))
                            / (g.reminder_interval_s * 1e6)) AS BIGINT) AS k
          FROM incidents i JOIN monitors m ON m.id = i.monitor_id {_CHANNELS}
          WHERE i.resolved_at IS NULL AND NOT m.paused AND g.reminder_interval_s IS NOT NULL)
    WHERE k >= 1
    ON CONFLICT DO NOTHING"""


def _alert_target(kind: str, spec: str) -> str:
    """``Spec.target()`` for alert messages (SQL ``xuptime_target(type, spec)``); a push
    monitor's is empty, as its URL holds the token that lets anyone report it up."""
    if kind == "push":
        return ""
    return msgspec.json.decode(spec, type=_SPEC_TYPES[kind]).target()


def _upper(to_us: int | None, before_us: int | None) -> int | None:
    """The inclusive upper bound (µs) of a history read: ``to`` and a keyset cursor (exclusive)."""
    return to_us if before_us is None else before_us - 1 if to_us is None else min(to_us, before_us - 1)


def _merge_hours(hours: list[tuple], bucket_us: int, *, complete: bool) -> list[tuple]:
    """Hour aggregates (newest first) merged into longer buckets; unless ``complete``, the
    oldest bucket may be cut off and is dropped."""
    groups: dict[int, list[tuple]] = {}
    for h in hours:
        groups.setdefault(h[0] // bucket_us * bucket_us, []).append(h)
    if not complete and groups:
        groups.popitem()  # dicts keep insertion order: the oldest bucket
    out = []
    for start, group in groups.items():
        checks = sum(h[1] for h in group)
        lo, hi = min(h[4] for h in group), max(h[5] for h in group)
        out.append((start, checks, sum(h[2] for h in group), sum(h[3] for h in group) / checks, lo, hi,
                    merge_percentiles([(h[9], h[10]) for h in group], lo, hi)))
    return out
