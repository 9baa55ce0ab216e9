"""Read-only SQL for operators (``xuptime sql``): SELECT and EXPLAIN only, rows capped."""

from __future__ import annotations

import threading

import duckdb

from core.storage.duckdb.common import (
    ReadOnlyQueryError,
)

__all__ = ["QueryStore"]

_READ_ONLY_TYPES = {"SELECT", "EXPLAIN"}
QUERY_TIMEOUT_S = 30.0  # an operator's query is stopped after this long


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
            statements = cursor.extract_statements(sql)
            if not statements:
                raise ReadOnlyQueryError("no SQL statement given")
            for statement in statements:
                kind = statement.type.name
                if kind not in _READ_ONLY_TYPES:
                    raise ReadOnlyQueryError(f"only SELECT queries are allowed here, not {kind}")
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
