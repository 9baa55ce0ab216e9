"""The operator's view of the serve process: is it up, how is it doing, and read-only SQL
over the data (``xuptime sql``, bounded by the store: SELECT/EXPLAIN only, rows capped)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from core.services.context import EngineLink, StoreThreads
from core.services.errors import Invalid
from core.services.exports import stream_batches

if TYPE_CHECKING:
    from core.storage.base import Store

__all__ = ["SystemService"]


class SystemService:
    """``ping``, ``stats`` and ``sql``. Parts of the process outside the services (ingest,
    the API's caches) add their figures to ``stats`` through ``sources``."""

    def __init__(self, store: Store, threads: StoreThreads, engine: EngineLink) -> None:
        self.store = store
        self.threads = threads
        self.engine = engine
        #: Each returns figures merged into ``stats`` (``rowsWritten``, ``historyCache``...).
        self.sources: list[Callable[[], dict[str, Any]]] = []

    def ingest(self) -> dict[str, Any]:
        """Result keeping only: written, waiting in memory for a full disk, dropped."""
        figures: dict[str, Any] = {}
        for source in self.sources:
            figures.update(source())
        return {k: figures[k] for k in ("rowsWritten", "rowsSpilled", "rowsDropped") if k in figures}

    def ping(self) -> dict[str, Any]:
        return {"pid": os.getpid()}

    def stats(self, histogram: bool = False) -> dict[str, Any]:
        """The engine's counters (lateness histogram on request), rollup progress, and every
        source's figures."""
        stats = self.engine.stats()
        lateness = stats.pop("latenessHistogram")
        if histogram:
            stats["latenessHistogram"] = lateness.tolist()
        for source in self.sources:
            stats.update(source())
        stats["rollupUptoUs"] = self.store.rollup_upto_us  # exclusive end of the rolled-up hours
        # (what the rollup job's thread is doing: "rollup", "upkeep: compaction"... or None, how far the
        # rewrites of days of checks and of months of hours got)
        stats["upkeep"] = {"busy": self.store.busy, "compactedUptoUs": self.store.compacted_upto_us,
                           "hoursCompactedUptoUs": self.store.hours_compacted_upto_us,
                           "dailyUptoUs": self.store.daily_upto_us}
        return stats

    async def sql_batches(self, sql: Any) -> AsyncIterator[pa.RecordBatch]:
        """A read-only query's whole answer as Arrow batches, streamed (``Invalid`` with
        DuckDB's words if refused: raised by the first batch's read)."""
        from core.storage.duckdb import ReadOnlyQueryError

        batches = stream_batches(self.threads.read, lambda: self.store.query_batches(str(sql)))
        try:
            async for batch in batches:
                yield batch
        except (ReadOnlyQueryError, duckdb.Error) as exc:
            raise Invalid(str(exc)) from None

    async def sql(self, sql: Any) -> tuple[list[str], list[tuple]]:
        """A read-only query's columns and rows (``Invalid`` with DuckDB's words if refused)."""
        from core.storage.duckdb import ReadOnlyQueryError

        try:
            return await self.threads.read(self.store.query, str(sql))
        except (ReadOnlyQueryError, duckdb.Error) as exc:
            raise Invalid(str(exc)) from None
