"""Read-only SQL for operators (``xuptime sql``): SELECT and EXPLAIN only, rows capped."""

from __future__ import annotations

import duckdb

from core.storage.duckdb.common import (
    ReadOnlyQueryError,
)

__all__ = ["QueryStore"]

_READ_ONLY_TYPES = {"SELECT", "EXPLAIN"}


class QueryStore:
    """Read-only SQL for operators (``xuptime sql``): SELECT and EXPLAIN only, rows capped."""

    con: duckdb.DuckDBPyConnection

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
