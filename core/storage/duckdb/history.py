"""History reads (raw, buckets, hours, uptime), incidents, and the hourly rollups."""

from __future__ import annotations

import bisect
import contextlib
import time
from collections.abc import Callable, Iterator

import duckdb
import numpy as np

from core.models import Incident, Uptime
from core.storage.duckdb.common import (
    HOUR_CACHE_MONITORS,
    finish,
    iso,
)
from core.storage.rollups import HOUR_US, aggregate_hours, hour_aggregate_sql, merge_percentiles

__all__ = ["HistoryStore"]

DAY_US = 24 * HOUR_US


def _ms(us: str) -> str:
    """SQL: a latency in µs as the API's milliseconds, rounded to the µs."""
    return f"round({us} / 1000, 3)"


_ISO = "strftime({}, '%Y-%m-%dT%H:%M:%S.%gZ')"  # (``core.clock.iso_ms``)
# One check / one hour bucket as the API's JSON object (``api.history``): DuckDB encodes it.
RAW_JSON = (f"json_object('ts', {_ISO.format('ts')}, 'ok', ok, 'latencyMs', {_ms('latency_us')},"
            f" 'statusCode', status_code, 'error', error, 'phases', json_object("
            f"'dnsMs', {_ms('dns_us')}, 'connectMs', {_ms('connect_us')}, 'tlsMs', {_ms('tls_us')},"
            f" 'ttfbMs', {_ms('ttfb_us')}))")
# (over ``hour, checks, up, lsum, lmin, lmax, q`` = [p50, p95, p99])
HOUR_JSON = (f"json_object('ts', {_ISO.format('hour')}, 'checks', checks, 'up', up, 'uptime', up / checks,"
             f" 'latencyMs', json_object('avg', {_ms('lsum / checks')}, 'min', {_ms('lmin')}, 'max', {_ms('lmax')},"
             f" 'p50', {_ms('q[1]')}, 'p95', {_ms('q[2]')}, 'p99', {_ms('q[3]')}))")


class HistoryStore:
    """History reads (raw, buckets, hours, uptime), incidents, and the hourly rollups."""

    con: duckdb.DuckDBPyConnection
    busy: str | None

    def incident_page(self, account_id: int, before_id: int | None, limit: int, monitor_id: int | None = None
                      ) -> tuple[list[Incident], int, bool]:
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
        page = [Incident(id=int(r[0]), monitor_id=int(r[1]), started_at=iso(r[2]), resolved_at=iso(r[3]),
                         status="open" if r[3] is None else "resolved", cause=r[4],
                         duration_seconds=round(max(0, int(r[5])) / 1e6, 3)) for r in rows[:limit]]
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
            finish(cursor)
            self._readers.put(cursor)

    def _probe(self, lo: int | None, hi: int | None, need: int, align_us: int,
               fetch: Callable[[int | None, int], list[tuple]], width_us: int = HOUR_US) -> list[tuple]:
        """``fetch(start, hi)`` over windows growing 8x back from ``hi`` (inclusive, µs), the
        first ``width_us`` wide, until it returns ``need`` rows or reaches ``lo``; ``start`` is
        aligned down to ``align_us``."""
        if self._ts_range is None:
            return []
        first, last = self._ts_range
        hi = last if hi is None else min(hi, last)
        lo = first if lo is None else max(lo, first)
        floor = self.floor_us("raw", time.time_ns() // 1000)  # type: ignore[attr-defined]
        if floor is not None:  # (rows past retention may stand until the upkeep drops them: never shown)
            lo = max(lo, floor)
        if hi < lo:
            return []
        width = width_us
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
        return self._raw_page("epoch_us(ts), ok, latency_us, status_code, error, dns_us, connect_us, tls_us, ttfb_us",
                              monitor_id, from_us, _upper(to_us, before_us), limit, HOUR_US)

    def history_raw_json(self, monitor_id: int, from_us: int | None, to_us: int | None, before_us: int | None,
                         limit: int, every_us: int | None = None) -> tuple[list[tuple[int, str]], bool]:
        """``history_raw``'s checks, each as ``(ts µs, its JSON object as the API sends it)``,
        encoded by DuckDB: an answer costs no Python per field. ``every_us``, the monitor's
        interval if known, sizes the first window so that it usually holds the page: one
        statement instead of two or three."""
        width = HOUR_US if every_us is None else max(60 * 10**6, min(HOUR_US * 24, (limit + 1) * every_us * 5 // 4))
        return self._raw_page(f"epoch_us(ts), {RAW_JSON}", monitor_id, from_us, _upper(to_us, before_us), limit,
                              width)

    def _raw_page(self, columns: str, monitor_id: int, lo: int | None, hi: int | None, limit: int,
                  width_us: int) -> tuple[list[tuple], bool]:
        """One monitor's newest checks in [lo, hi] (µs, inclusive) as ``columns``, probed back
        from ``hi`` in windows from ``width_us`` on: ``(rows, more)``."""
        with self._reading() as cur:
            def fetch(start: int | None, end: int) -> list[tuple]:
                return cur.execute(
                    f"""SELECT {columns} FROM checks
                        WHERE monitor_id = ? AND ts >= make_timestamp(?) AND ts <= make_timestamp(?)
                        ORDER BY ts DESC LIMIT ?""", [monitor_id, start, end, limit + 1]).fetchall()
            rows = self._probe(lo, hi, limit + 1, 1, fetch, width_us)
        return rows[:limit], len(rows) > limit

    def history_hours_json(self, monitor_id: int, from_us: int | None, to_us: int | None, before_us: int | None,
                           limit: int) -> tuple[list[tuple[int, str]], bool]:
        """``history_hours``'s buckets, each as ``(hour µs, its JSON object as the API sends
        it)``, in one statement that DuckDB answers and encodes: rolled-up hours from
        ``checks_hourly`` (closed months rewritten sorted by monitor: zone maps skip the rest),
        the open, partial and stale hours aggregated from ``checks`` exactly as the rollup
        would. No per-monitor cache and no Python per hour: what a month of hours costs
        does not depend on what was asked before."""
        rolled, raw_sql, params = self._hour_plan(monitor_id, from_us, _upper(to_us, before_us), "ts")
        sql = f"""SELECT date_trunc('hour', ts) AS hour, count(*) AS checks, count(*) FILTER (WHERE ok) AS up,
                         sum(latency_us) AS lsum, min(latency_us) AS lmin, max(latency_us) AS lmax,
                         quantile_cont(latency_us, [0.5, 0.95, 0.99]) AS q
                  FROM ({raw_sql}) GROUP BY ALL"""
        if rolled is not None:
            a, b, stale = rolled
            sql = f"""SELECT hour, checks, up, latency_sum AS lsum, latency_min AS lmin, latency_max AS lmax,
                             [p50, p95, p99] AS q FROM checks_hourly
                      WHERE monitor_id = ? AND hour >= make_timestamp(?) AND hour < make_timestamp(?)
                            AND NOT list_contains(?::BIGINT[], epoch_us(hour))
                      UNION ALL {sql}"""
            params = [monitor_id, -2**62 if a is None else a, b, stale, *params]
        with self._reading() as cur:
            rows = cur.execute(f"SELECT epoch_us(hour), {HOUR_JSON} FROM ({sql}) ORDER BY hour DESC LIMIT ?",
                               [*params, limit + 1]).fetchall()
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
                # Days past the hourly tier come from ``checks_daily``: the hours are read from
                # the first whole day the hourly tier still holds.
                now = time.time_ns() // 1000
                hourly_floor = self.floor_us("hourly", now)  # type: ignore[attr-defined]
                split = None if hourly_floor is None or bucket_us != DAY_US else -(-hourly_floor // DAY_US) * DAY_US
                hours = self._hours(cur, monitor_id, _later(from_us, split), hi, (limit + 2) * bucket_us // HOUR_US,
                                    with_hist=True)
                complete = len(hours) < (limit + 2) * bucket_us // HOUR_US
                rows = _merge_hours(hours, bucket_us, complete=complete)
                if split is not None and complete and (from_us is None or from_us < split):
                    rows += self._days(cur, monitor_id, _later(from_us, self.floor_us("daily", now)),  # type: ignore[attr-defined]
                                       split - 1 if hi is None else min(hi, split - 1), limit + 1 - len(rows))
        return rows[:limit], len(rows) > limit

    def _days(self, cur: duckdb.DuckDBPyConnection, monitor_id: int, lo: int | None, hi: int, limit: int
              ) -> list[tuple]:
        """Whole days of ``checks_daily`` starting within [lo, hi], newest first, shaped like
        ``history_buckets``'s rows."""
        if limit <= 0 or (self.read_only and self.schema_version() < 10):  # type: ignore[attr-defined]
            return []
        got = cur.execute(
            """SELECT epoch_us(day), checks, up, latency_sum, latency_min, latency_max, p50, p95, p99
               FROM checks_daily WHERE monitor_id = ? AND day >= make_timestamp(?) AND day <= make_timestamp(?)
               ORDER BY day DESC LIMIT ?""", [monitor_id, -2**62 if lo is None else -(-lo // DAY_US) * DAY_US,
                                              hi, limit]).fetchall()
        return [(int(d), int(c), int(u), s / c, lo_, hi_, [p50, p95, p99]) for d, c, u, s, lo_, hi_, p50, p95, p99
                in got]

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

    def split_hours(self, lo: int | None, hi: int | None, upto: int | None = None
                    ) -> tuple[tuple[int | None, int, list[int]] | None, list[tuple]]:
        """Split [lo, hi] (µs, inclusive, None = open) into whole rolled-up hours ``[a, b)`` less
        the stale ones, and the raw ranges that complete it. A rolled-up hour that a late row
        has landed in is stale until ``rollup`` recomputes it and is read raw, so reads are
        always exact. ``upto``: split as if the rolled-up hours ended there (an earlier end
        than the store's: what a reader holding fewer of them can answer; the hours between
        are raw ranges, exact too)."""
        upto = self.rollup_upto_us if upto is None else min(upto, self.rollup_upto_us or upto)
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
        rolled, raw_sql, params = self._hour_plan(monitor_id, lo, hi, "epoch_us(ts) AS t")
        got = cur.execute(raw_sql, params).fetchnumpy()
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

    def _hour_plan(self, monitor_id: int, lo: int | None, hi: int | None, ts: str
                   ) -> tuple[tuple[int | None, int, list[int]] | None, str, list]:
        """How to read one monitor's hours within [lo, hi] (µs, inclusive; lo clamped to the
        hourly tier): the rolled-up hours ``(a, b, stale)`` to take from ``checks_hourly`` (or
        None), and a statement reading the rest from ``checks`` (``ts`` as given, ``ok``,
        ``latency_us``; each range clamped to the raw tier) with its parameters."""
        now = time.time_ns() // 1000
        lo = _later(lo, self.floor_us("hourly", now))  # type: ignore[attr-defined]
        raw_floor = self.floor_us("raw", now)  # type: ignore[attr-defined]
        rolled, raw = self.split_hours(lo, hi)
        branches, params = [], []
        for start, end in raw:
            start = _later(start, raw_floor)
            branches.append(f"SELECT {ts}, ok, latency_us FROM checks WHERE monitor_id = ?"
                            " AND ts >= make_timestamp(?) AND ts <= make_timestamp(?)")
            params += [monitor_id, -2**62 if start is None else start, 2**62 if end is None else end]
        return rolled, " UNION ALL ".join(branches), params

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

    def uptime(self, monitor_id: int, windows: list[tuple[str, int]], now_us: int) -> dict[str, Uptime]:
        """Per window (label, seconds): uptime ratio, checks, and downtime seconds from incidents."""
        out: dict[str, Uptime] = {}
        with self._reading() as cur:
            raw_floor = self.floor_us("raw", now_us)  # type: ignore[attr-defined]
            hourly_floor = self.floor_us("hourly", now_us)  # type: ignore[attr-defined]
            for label, seconds in windows:
                start = _later(now_us - seconds * 1_000_000, hourly_floor)
                checks = up = 0
                rolled, raw = self.split_hours(start, None)
                for lo, hi in raw:
                    row = cur.execute(
                        "SELECT count(*), count(*) FILTER (WHERE ok) FROM checks WHERE monitor_id = ?"
                        " AND ts >= make_timestamp(?) AND ts <= make_timestamp(?)",
                        [monitor_id, _later(lo, raw_floor), hi if hi is not None else 2**62]).fetchone()
                    checks, up = checks + int(row[0]), up + int(row[1] or 0)
                if rolled is not None:
                    row = cur.execute(
                        "SELECT coalesce(sum(checks), 0), coalesce(sum(up), 0) FROM checks_hourly"
                        " WHERE monitor_id = ? AND hour >= make_timestamp(?) AND hour < make_timestamp(?)"
                        " AND epoch_us(hour) NOT IN (SELECT unnest(?::BIGINT[]))",
                        [monitor_id, *rolled]).fetchone()
                    checks, up = checks + int(row[0]), up + int(row[1])
                # checks made in maintenance are left out (by the hour: the hour holding the
                # window's start counts whole)
                held = cur.execute(
                    """SELECT coalesce(sum(checks), 0), coalesce(sum(up), 0) FROM maintenance_checks
                       WHERE monitor_id = ? AND hour >= make_timestamp(?)""",
                    [monitor_id, start // HOUR_US * HOUR_US]).fetchone() if self._has_maintenance() else (0, 0)
                checks, up = max(0, checks - int(held[0])), max(0, up - int(held[1]))
                down_us = cur.execute(
                    """SELECT coalesce(sum(greatest(0, least(coalesce(epoch_us(resolved_at), ?), ?)
                                                      - greatest(epoch_us(started_at), ?))), 0)
                       FROM incidents WHERE monitor_id = ?""", [now_us, now_us, start, monitor_id]).fetchone()
                out[label] = Uptime(uptime=(up / checks) if checks else None, checks=checks,
                                    downtime_seconds=round(int(down_us[0] if down_us else 0) / 1e6, 3))
        return out

    def recent_window(self, hours_from_us: int, bars_from_us: int) -> tuple[list, list]:
        """For the services' in-memory recent window, at start: per monitor and hour since
        ``hours_from_us`` its checks and up-checks (rolled-up hours, then raw rows after them),
        and every check since ``bars_from_us`` (``monitor_id, ts µs, ok, latency µs`` columns)."""
        upto = self.rollup_upto_us if self.rollup_upto_us is not None else hours_from_us
        with self._reading() as cur:
            hours = cur.execute(
                """SELECT monitor_id, epoch_us(hour), checks, up FROM checks_hourly
                   WHERE hour >= make_timestamp($lo) AND hour < make_timestamp($upto)
                   UNION ALL
                   SELECT monitor_id, epoch_us(ts) // $h * $h, count(*), count(*) FILTER (WHERE ok) FROM checks
                   WHERE ts >= make_timestamp(greatest($lo, $upto)) GROUP BY ALL""",
                {"lo": hours_from_us, "upto": upto, "h": HOUR_US}).fetchnumpy()
            bars = cur.execute(
                """SELECT monitor_id, epoch_us(ts), ok, latency_us FROM checks WHERE ts >= make_timestamp(?)
                   QUALIFY row_number() OVER (PARTITION BY monitor_id ORDER BY ts DESC) <= 30""",
                [bars_from_us]).fetchnumpy()
        return list(hours.values()), list(bars.values())

    def recent_checks(self, from_us: int, per_monitor: int) -> dict:
        """For the services' newest checks in memory, at start: each monitor's newest
        ``per_monitor`` checks since ``from_us`` as columns (``ResultBuffer``'s: status 0 and
        phases -1 for null; ``error`` a column of texts or None)."""
        with self._reading() as cur:
            return cur.execute(
                """SELECT monitor_id, epoch_us(ts) AS ts_us, ok, latency_us, coalesce(status_code, 0) AS status_code,
                          error, coalesce(dns_us, -1) AS dns_us, coalesce(connect_us, -1) AS connect_us,
                          coalesce(tls_us, -1) AS tls_us, coalesce(ttfb_us, -1) AS ttfb_us
                   FROM checks WHERE ts >= make_timestamp(?)
                   QUALIFY row_number() OVER (PARTITION BY monitor_id ORDER BY ts DESC) <= ?""",
                [from_us, per_monitor]).fetchnumpy()

    def hourly_rows(self, start_us: int, upto_us: int) -> dict:
        """Every monitor's rolled-up hours in [start, upto) as columns (the services' rolled
        hours in memory)."""
        with self._reading() as cur:
            return cur.execute(
                """SELECT monitor_id, epoch_us(hour) AS hour, checks, up, latency_sum, latency_min, latency_max,
                          p50, p95, p99
                   FROM checks_hourly WHERE hour >= make_timestamp(?) AND hour < make_timestamp(?)""",
                [start_us, upto_us]).fetchnumpy()

    def raw_checks(self, monitor_id: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One monitor's checks within [lo, hi] (µs, inclusive) as ``(ts, ok, latency)``
        columns, in no order: the part of an hour (the first of a range that starts inside
        one) that neither a rollup nor the newest checks in memory hold. On a day rewritten
        sorted by monitor, DuckDB's zone maps skip all but a row group."""
        # (integers in the text: DuckDB binds Python parameters slower than it parses them)
        got = self._reading_numpy(f"""SELECT epoch_us(ts) AS t, ok, latency_us FROM checks
                                      WHERE monitor_id = {int(monitor_id)} AND ts >= make_timestamp({int(lo)})
                                            AND ts <= make_timestamp({int(hi)})""")
        return got["t"], got["ok"], got["latency_us"]

    def raw_checks_all(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every monitor's checks within [lo, hi] (µs, inclusive) as ``(monitor, ts, ok,
        latency)`` columns, in no order (``raw_checks`` for all monitors at once)."""
        got = self._reading_numpy(f"""SELECT monitor_id, epoch_us(ts) AS t, ok, latency_us FROM checks
                                      WHERE ts >= make_timestamp({int(lo)}) AND ts <= make_timestamp({int(hi)})""")
        return got["monitor_id"], got["t"], got["ok"], got["latency_us"]

    def _reading_numpy(self, sql: str) -> dict:
        with self._reading() as cur:
            return cur.execute(sql).fetchnumpy()

    def uptime_counts(self, starts_us: list[int], upto_us: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every monitor's rolled-up checks and up checks from each of ``starts_us`` (hours) to
        ``upto_us`` (exclusive), less those made in maintenance, in one scan of the hourly
        tier: ``(ids, checks, up)``, the last two shaped ``(len(ids), len(starts_us))``."""
        if not starts_us:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0), dtype=np.int64)
        floor = self.floor_us("hourly", upto_us)  # type: ignore[attr-defined]
        starts = [s if floor is None else max(s, floor) for s in starts_us]
        lo = min(starts, default=upto_us)
        held = ("UNION ALL SELECT monitor_id, hour, -checks, -up FROM maintenance_checks"
                " WHERE hour >= make_timestamp(?) AND hour < make_timestamp(?)") if self._has_maintenance() else ""
        columns = ", ".join(f"coalesce(sum(checks) FILTER (WHERE hour >= make_timestamp({int(s)})), 0) AS c{i}, "
                            f"coalesce(sum(up) FILTER (WHERE hour >= make_timestamp({int(s)})), 0) AS u{i}"
                            for i, s in enumerate(starts))
        params = [lo, upto_us] + ([lo, upto_us] if held else [])
        with self._reading() as cur:
            got = cur.execute(
                f"""SELECT monitor_id, {columns} FROM (
                        SELECT monitor_id, hour, checks, up FROM checks_hourly
                        WHERE hour >= make_timestamp(?) AND hour < make_timestamp(?) {held})
                    GROUP BY monitor_id ORDER BY monitor_id""", params).fetchnumpy()
        ids = np.asarray(got["monitor_id"], dtype=np.int64)

        def table(prefix: str) -> np.ndarray:
            out = np.zeros((len(ids), len(starts)), dtype=np.int64)
            for i in range(len(starts)):
                out[:, i] = np.maximum(0, np.asarray(got[f"{prefix}{i}"], dtype=np.int64))
            return out

        return ids, table("c"), table("u")

    def _has_maintenance(self) -> bool:
        """(An older file opened read-only has no ``maintenance_checks`` yet.)"""
        return not self.read_only or self.schema_version() >= 7  # type: ignore[attr-defined]

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
        self.busy = "rollup"
        try:
            return self._rollup(now_us, grace_us, chunk_us)
        finally:
            finish(self._maint)
            self.busy = None

    def _rollup(self, now_us: int, grace_us: int, chunk_us: int) -> int:
        cur = self._maint
        target = (now_us - grace_us) // HOUR_US * HOUR_US
        with self._rollup_lock:
            self._rolling_to = max(self._rolling_to, target)
            dirty = dict(self._dirty)
        written = 0
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
                daily_upto = self.daily_upto_us  # type: ignore[attr-defined]
                if daily_upto is not None and hour < daily_upto:  # (its day is merged again)
                    self._dirty_days.add(hour // DAY_US * DAY_US)  # type: ignore[attr-defined]
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


def _later(a: int | None, b: int | None) -> int | None:
    """The later of two lower bounds (None: unbounded)."""
    return b if a is None else a if b is None else max(a, b)


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
