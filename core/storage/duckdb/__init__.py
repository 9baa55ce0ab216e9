"""The embedded default store: one DuckDB file, owned by exactly one process, in parts by
concern (``monitors``, ``accounts``, ``users``, ``pages``, ``results``, ``history``, ``agents``, ``integrations``,
``query``)
over ``base`` (the connection and migrations). Every part returns domain Structs or plain
rows; wire shapes (camelCase) belong to the faces.

Thread contract: every method is synchronous. Writes (and anything on ``self.con``) come from
one thread at a time (the serve process's single writer thread). The read methods (``query``,
history, uptime, incidents, the delivery log) take one of ``READERS`` reader cursors and may
run on other threads concurrently; ``rollup`` uses a cursor of its own and may run on one
more thread. A thread that is not the writer never touches the writer's connection.

Ingest is columnar: a flushed ``ResultBuffer`` batch becomes an Arrow table and one
``INSERT ... SELECT``, never one statement per row. Every statement autocommits to DuckDB's
WAL, so an acknowledged batch survives ``kill -9``.
"""

from __future__ import annotations

from core.storage.duckdb.accounts import AccountStore
from core.storage.duckdb.agents import AgentStore
from core.storage.duckdb.base import StoreBase
from core.storage.duckdb.common import (
    API_KEY_PREFIX,
    DB_FILE,
    READERS,
    DuplicateError,
    NewerSchemaError,
    ReadOnlyQueryError,
)
from core.storage.duckdb.history import HistoryStore
from core.storage.duckdb.integrations import IntegrationStore
from core.storage.duckdb.maintenance import MaintenanceStore
from core.storage.duckdb.monitors import MonitorStore
from core.storage.duckdb.pages import StatusPageStore
from core.storage.duckdb.query import QueryStore
from core.storage.duckdb.results import ResultStore
from core.storage.duckdb.upkeep import UpkeepStore
from core.storage.duckdb.users import UserStore

__all__ = ["API_KEY_PREFIX", "DB_FILE", "READERS", "DuckDBStore", "DuplicateError", "NewerSchemaError",
           "ReadOnlyQueryError"]


class DuckDBStore(MonitorStore, AccountStore, UserStore, ResultStore, HistoryStore, AgentStore, IntegrationStore,
                  StatusPageStore, MaintenanceStore, QueryStore, UpkeepStore, StoreBase):
    """The whole store: every part over one connection (see the module's thread contract)."""
