"""Read-only SQL for operators (``xuptime sql``): SELECT and EXPLAIN only, rows capped; and
the same as Arrow batches without a cap, and a monitor's (or every) check as Arrow batches:
what exports stream (``xuptime sql --out``, ``xuptime export``, ``?format=csv|parquet``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import duckdb
import pyarrow as pa

from core.storage.duckdb.common import (
    ReadOnlyQueryError,
)

__all__ = ["QueryStore"]

_READ_ONLY_TYPES = {"SELECT", "EXPLAIN"}
QUERY_TIMEOUT_S = 30.0  # an operator's query is stopped after this long
EXPORT_TIMEOUT_S = 1800.0  # an export (of any size: 100M rows take minutes) after this long
BATCH_ROWS = 122_880  # rows per exported batch (a DuckDB row group)
DAY_US = 86_400 * 10**6

#: A check as exported: the API's fields, phases flattened, latencies in ms (µs kept).
CHECK_COLUMNS = ("ts, ok, round(latency_us / 1000, 3) AS latencyMs, status_code AS statusCode, error,"
                 " round(dns_us / 1000, 3) AS dnsMs, round(connect_us / 1000, 3) AS connectMs,"
                 " round(tls_us / 1000, 3) AS tlsMs, round(ttfb_us / 1000, 3) AS ttfbMs, region")


class QueryStore:
    """Read-only SQL for operators (``xuptime sql``): SELECT and EXPLAIN only, rows capped."""

    con: duckdb.DuckDBPyConnection
    query_timeout_s: float = QUERY_TIMEOUT_S

    # read-only SQL ----------------------------------------------------------------------
    def query(self, sql: str, limit: int = 10_000) -> tuple[list[str], list[tuple]]:
        """Run read-only SQL (SELECT / EXPLAIN only) on a reader cursor; returns columns, rows.

        Three fences: the statement types; a READ ONLY transaction, rolled back after (so an
        ``EXPLAIN ANALYZE UPDATE``, which DuckDB runs, or ``nextval`` cannot change anything);
        and the store's connection, which cannot touch any file but its own (``read_text``,
        ``COPY ... TO``, ``ATTACH`` are refused). A query running past ``QUERY_TIMEOUT_S`` is
        interrupted.

        Safe on another thread than the writer: it never touches the writer's connection. (It
        once called ``extract_statements`` on it and deadlocked the server: this thread waited
        for that connection's lock holding the GIL, while the writer, scanning a registered
        Arrow table, waited for the GIL.)"""
        cursor = self._readers.get()
        timer = threading.Timer(self.query_timeout_s, cursor.interrupt)
        try:
            statements = _read_only_statements(cursor, sql)
            cursor.execute("BEGIN TRANSACTION READ ONLY")
            try:
                timer.start()
                try:
                    result = None
                    for statement in statements:
                        result = cursor.execute(statement)
                    assert result is not None
                    columns = [d[0] for d in result.description or []]
                    rows = result.fetchmany(limit)
                finally:
                    timer.cancel()  # (before anything else runs on this cursor)
            except duckdb.InterruptException:
                raise ReadOnlyQueryError(f"the query ran longer than {self.query_timeout_s:g} s and was "
                                         "stopped") from None
            finally:
                cursor.execute("ROLLBACK")
        finally:
            self._readers.put(cursor)
        return columns, rows

    def query_batches(self, sql: str, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """``query``'s fences, without its cap: the last statement's rows as Arrow batches of up
        to ``rows``, read as they are consumed (a stream: the whole answer is never in memory,
        unless the query itself must hold it, as a sort does). Stopped after
        ``EXPORT_TIMEOUT_S``. The generator must be run to its end or closed."""
        cursor = self._readers.get()  # type: ignore[attr-defined]
        timer = threading.Timer(EXPORT_TIMEOUT_S, cursor.interrupt)
        try:
            statements = _read_only_statements(cursor, sql)
            cursor.execute("BEGIN TRANSACTION READ ONLY")
            try:
                timer.start()
                for statement in statements[:-1]:
                    cursor.execute(statement)
                reader = cursor.execute(statements[-1]).fetch_record_batch(rows)
                yield from _batches(reader)
            finally:
                timer.cancel()
                cursor.execute("ROLLBACK")
        finally:
            self._readers.put(cursor)  # type: ignore[attr-defined]

    def export_count(self, monitor_ids: list[int] | None, from_us: int | None, to_us: int | None) -> int:
        """How many checks ``export_checks`` would give (for a progress bar)."""
        where, params = _check_filter(monitor_ids, from_us, to_us)
        with self._reading() as cur:  # type: ignore[attr-defined]
            row = cur.execute(f"SELECT count(*) FROM checks WHERE {where}", params).fetchone()
        return int(row[0]) if row else 0

    def export_checks(self, monitor_ids: list[int] | None, from_us: int | None, to_us: int | None,
                      rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The checks of ``monitor_ids`` (None: every monitor; a ``monitorId`` column unless
        there is one) within [from, to] (µs, inclusive; None: unbounded) as Arrow batches, ``ts``
        a UTC timestamp. One monitor's oldest first, sorted a day at a time (a sort holds what it
        sorts: a day of one monitor, never its years); many monitors' as stored (closed days
        sorted by monitor and time, the open day in arrival order: sorting 100M rows would cost
        the memory an export must not). On a cursor of its own (an export may take minutes: the
        readers stay free); run the generator to its end or close it. At least one batch, empty
        if there are no rows (its columns: a CSV's header)."""
        one = monitor_ids is not None and len(monitor_ids) == 1
        cursor = self.con.cursor()  # type: ignore[attr-defined]
        timer = threading.Timer(EXPORT_TIMEOUT_S, cursor.interrupt)
        try:
            timer.start()
            if not one:
                where, params = _check_filter(monitor_ids, from_us, to_us)
                sql = f"SELECT monitor_id AS monitorId, {CHECK_COLUMNS} FROM checks WHERE {where}"
                yield from _batches(cursor.execute(sql, params).fetch_record_batch(rows))
                return
            where, params = _check_filter(monitor_ids, from_us, to_us)
            bounds = cursor.execute(f"SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM checks WHERE {where}",
                                    params).fetchone()
            if bounds is None or bounds[0] is None:
                yield from _batches(cursor.execute(f"SELECT {CHECK_COLUMNS} FROM checks WHERE false")
                                    .fetch_record_batch(rows))
                return
            first, last = int(bounds[0]), int(bounds[1])
            day = first // DAY_US * DAY_US
            while day <= last:
                where, params = _check_filter(monitor_ids, max(first, day), min(last, day + DAY_US - 1))
                reader = cursor.execute(f"SELECT {CHECK_COLUMNS} FROM checks WHERE {where} ORDER BY ts",
                                        params).fetch_record_batch(rows)
                yield from _batches(reader, empty=False)
                day += DAY_US
        finally:
            timer.cancel()
            with contextlib.suppress(duckdb.Error):
                cursor.close()


def _read_only_statements(cursor: duckdb.DuckDBPyConnection, sql: str) -> list[duckdb.Statement]:
    """The statements of ``sql``, every one a SELECT or EXPLAIN (``ReadOnlyQueryError`` else)."""
    statements = cursor.extract_statements(sql)
    if not statements:
        raise ReadOnlyQueryError("no SQL statement given")
    for statement in statements:
        kind = statement.type.name
        if kind not in _READ_ONLY_TYPES:
            raise ReadOnlyQueryError(f"only SELECT queries are allowed here, not {kind}")
    return statements


def _check_filter(monitor_ids: list[int] | None, from_us: int | None, to_us: int | None) -> tuple[str, list]:
    parts, params = ["ts >= make_timestamp(?)", "ts <= make_timestamp(?)"], [
        -2**62 if from_us is None else int(from_us), 2**62 if to_us is None else int(to_us)]
    if monitor_ids is not None:
        parts.append("monitor_id IN (SELECT unnest(?::BIGINT[]))")
        params.append([int(i) for i in monitor_ids])
    return " AND ".join(parts), params


def _batches(reader: pa.RecordBatchReader, empty: bool = True) -> Iterator[pa.RecordBatch]:
    """The reader's batches, timestamps marked UTC (DuckDB's are naive UTC); one empty batch
    if it has no rows (and ``empty``)."""
    given = not empty
    try:
        for batch in reader:
            if batch.num_rows:
                given = True
                yield _utc(batch)
        if not given:  # (an answer of no rows still has its columns: a CSV's header)
            yield _utc(pa.RecordBatch.from_pylist([], schema=reader.schema))
    except duckdb.InterruptException:
        raise ReadOnlyQueryError(f"the export ran longer than {EXPORT_TIMEOUT_S:g} s and was stopped") from None


def _utc(batch: pa.RecordBatch) -> pa.RecordBatch:
    columns = []
    changed = False
    for column in batch.columns:
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
            changed = True
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch
