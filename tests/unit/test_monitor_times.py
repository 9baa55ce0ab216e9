"""The main process's table of monitor times: what the store holds, read back at start, and
what each write returns, shown to the second as the API shows them."""

from __future__ import annotations

from pathlib import Path

import msgspec

from core.models import HttpSpec, Monitor, MonitorTimes
from core.services.context import MonitorTimesTable
from core.storage.duckdb import DuckDBStore


def _monitor(name: str) -> Monitor:
    return Monitor(name=name, spec=HttpSpec(url="http://127.0.0.1:9/"))


def test_times_read_back_at_start_equal_what_the_writes_returned(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path)
    try:
        created = store.create_monitors([_monitor("a"), _monitor("b"), _monitor("c")])
        # (sub-second parts in the file: shown truncated to the second, as the writes show them)
        store.con.execute("UPDATE monitors SET status_since = TIMESTAMP '2026-12-01 10:00:05.999999' WHERE id = ?",
                          [created[1][0].id])
        changed = store.update_monitor(msgspec.structs.replace(created[2][0], paused=True), True)
        assert changed is not None
        table = MonitorTimesTable()
        cols = store.monitor_times()
        table.load(cols["id"], cols["created"], cols["updated"], cols["since"])
    finally:
        store.close()
    a, b, c = (m.id for m, _ in created)
    assert table.get(a) == created[0][1] and created[0][1].status_since is None
    assert table.get(b) == MonitorTimes(created_at=created[1][1].created_at, updated_at=created[1][1].updated_at,
                                        status_since="2026-12-01T10:00:05Z")
    assert table.get(c) == changed[1] and changed[1].status_since is not None


def test_writes_status_changes_and_removals_show_at_once() -> None:
    table = MonitorTimesTable()
    assert table.get(1) is None and table.get(-1) is None and 5 not in table
    stamped = MonitorTimes(created_at="2026-12-01T10:00:00Z", updated_at="2026-12-02T11:30:59Z", status_since=None)
    table.put(5000, stamped)  # (beyond the arrays: they grow)
    assert table.get(5000) == stamped and 5000 in table and table.get(4999) is None
    table.status_changed(5000, 1_764_585_000_123_456)
    assert table.get(5000) == MonitorTimes(created_at="2026-12-01T10:00:00Z", updated_at="2026-12-02T11:30:59Z",
                                           status_since="2025-12-01T10:30:00Z")
    table.status_changed(7, 1_764_585_000_000_000)  # an unknown monitor stays unknown
    assert table.get(7) is None
    assert table.since_many([5000, 7, -1, 10**9]) == ["2025-12-01T10:30:00Z", None, None, None]
    assert table.since_many([]) == []
    table.pop(5000)
    assert table.get(5000) is None and 5000 not in table
    table.pop(10**9)  # (nothing to remove: no error)
