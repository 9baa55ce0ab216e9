"""Results into the store: the workers' batches are queued (bounded: a full queue stops
reading the workers, which then buffer and, past their own bound, drop and count) and written
by one task that coalesces queued batches into one Arrow insert. Workers flush every 250 ms
and this writes at once, so a result is in DuckDB's WAL well within 1 s of its check.

Transitions are applied after their batch's rows (incidents and outbox rows in the store),
then the engine's live statuses and the catalog's ``status_since`` follow, and the alert
dispatcher is woken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from core.clock import iso_seconds
from core.models import Transition
from core.services import Catalog, StoreThreads
from ext import COLUMNS

if TYPE_CHECKING:
    from core.engine.supervisor import Engine
    from core.storage.base import Store

__all__ = ["Ingest", "merge_batches"]

log = logging.getLogger("xuptime.ingest")
MAX_COALESCED_ROWS = 200_000


def merge_batches(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """One columnar batch of several (error rows renumbered into the merged batch)."""
    if len(batches) == 1:
        return batches[0]
    merged: dict[str, Any] = {name: np.concatenate([b[name] for b in batches]) for name in COLUMNS}
    rows, texts, offset = [], [], 0
    for b in batches:
        rows.append(b["error_rows"] + offset)
        texts.extend(b["error_texts"])
        offset += len(b["monitor_id"])
    merged["error_rows"] = np.concatenate(rows).astype(np.int32)
    merged["error_texts"] = texts
    return merged


class Ingest:
    """The queue between the engine and the store, and the one task that drains it.
    ``put(None)`` (by ``close``) ends the task after everything queued before it is written."""

    def __init__(self, store: Store, threads: StoreThreads, catalog: Catalog, wake_alerts: Callable[[], None]
                 ) -> None:
        self.store = store
        self.threads = threads
        self.catalog = catalog
        self.wake_alerts = wake_alerts
        self.engine: Engine | None = None  # set once the engine exists (it feeds this queue)
        self.rows_written = 0
        self._queue: asyncio.Queue[tuple[dict[str, Any], list[Transition]] | None] = asyncio.Queue(maxsize=64)
        self._task: asyncio.Task[None] | None = None

    async def put(self, batch: dict[str, Any], transitions: list[Transition]) -> None:
        """The engine's results handler."""
        await self._queue.put((batch, transitions))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Write everything queued, then stop."""
        await self._queue.put(None)
        if self._task is not None:
            await self._task

    def stats(self) -> dict[str, Any]:
        return {"rowsWritten": self.rows_written}

    async def _run(self) -> None:
        done = False
        while not done:
            item = await self._queue.get()
            if item is None:
                break
            batches, transitions, rows = [item[0]], list(item[1]), len(item[0]["monitor_id"])
            while rows < MAX_COALESCED_ROWS and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    done = True
                    break
                batches.append(nxt[0])
                transitions.extend(nxt[1])
                rows += len(nxt[0]["monitor_id"])
            try:
                if rows:
                    merged = merge_batches(batches)
                    self.rows_written += await self.threads.write(self.store.ingest, merged)
                    self.catalog.last_checks.note(merged)
                if transitions:
                    await self.threads.write(self.store.apply_transitions, transitions)
                    self.wake_alerts()
                    self._follow(transitions)
            except Exception:
                log.exception("ingest of %d rows failed", rows)

    def _follow(self, transitions: list[Transition]) -> None:
        assert self.engine is not None
        times = self.catalog.times
        for t in transitions:
            self.engine.set_status(t.monitor_id, t.new)
            found = times.get(t.monitor_id)
            if found is not None:
                found.status_since = iso_seconds(t.ts_us)
