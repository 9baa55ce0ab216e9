"""Ingest on a real store: a monitor's first ``up`` is live at once and stored with the others
later (one UPDATE for many), while a down is stored with its incident at once; closing
stores what is still gathered, so a clean stop loses no status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import core.main.ingest as ingest_module
from core.engine.table import MonitorTable
from core.main.ingest import Ingest
from core.models import Monitor, Transition, parse_monitor
from core.services import Catalog, StoreThreads
from core.storage.duckdb import DuckDBStore


class LiveStatuses:
    """The part of the engine that ingest drives: the live monitor set and its statuses."""

    def __init__(self, monitors: list[Monitor]) -> None:
        self.monitors = MonitorTable(monitors)

    def set_status(self, monitor_id: int, status: str) -> None:
        self.monitors.set_status(monitor_id, status)


def test_first_ups_are_live_at_once_and_stored_together_by_close(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_module, "STATUS_EVERY_S", 3600.0)  # (only close stores them here)
    store = DuckDBStore(tmp_path)
    threads = StoreThreads(2)
    a, b, c = (store.create_monitor(parse_monitor({"name": n, "type": "http", "url": "http://h/"})) for n in "abc")

    def stored() -> dict[int, tuple[str, int | None]]:
        rows = store.query("SELECT id, status, epoch_us(status_since) FROM monitors")[1]
        return {int(r[0]): (r[1], r[2]) for r in rows}

    async def main() -> None:
        engine = LiveStatuses(store.list_monitors())
        ingest = Ingest(store, threads, Catalog(), lambda: None)
        ingest.engine = engine  # type: ignore[assignment]
        ingest.start()
        await ingest.put({}, [Transition(a.id, 1_000_000, "pending", "up"),
                              Transition(b.id, 1_000_000, "pending", "down", "refused"),
                              Transition(c.id, 1_000_000, "pending", "up")])
        for _ in range(500):  # (statuses go live once the batch's transitions are stored)
            if engine.monitors[b.id].status == "down":
                break
            await asyncio.sleep(0.01)
        assert stored()[b.id] == ("down", 1_000_000)  # a down: stored with its incident at once
        assert store.query("SELECT count(*) FROM incidents")[1] == [(1,)]
        assert stored()[a.id][0] == "pending" and engine.monitors[a.id].status == "up"  # live, not yet stored
        await ingest.put({}, [Transition(c.id, 2_000_000, "up", "down", "timeout")])  # a newer change of c
        await ingest.close()
        assert stored()[a.id] == ("up", 1_000_000)
        assert stored()[c.id] == ("down", 2_000_000)  # (its first up, stored later, did not overwrite it)

    try:
        asyncio.run(main())
    finally:
        threads.shutdown()
        store.close()
