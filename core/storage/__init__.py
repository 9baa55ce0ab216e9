"""Storage: the ``Store`` protocol and its embedded DuckDB implementation."""

from core.storage.base import Store
from core.storage.duckdb import DB_FILE, DuckDBStore, ReadOnlyQueryError

__all__ = ["DB_FILE", "DuckDBStore", "ReadOnlyQueryError", "Store"]
