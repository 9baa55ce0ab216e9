"""Monitors read at start from their stored packed bytes (``monitors.packed``): the table
they make is the one decoding every row made, whoever wrote the rows; bytes that no longer
match their row (an older xuptime, SQL by hand, another packed layout) are made again from
the row and stored, and an invalid row is skipped, never loaded half-right."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest

from core import heap
from core.engine.table import MonitorTable
from core.models import Monitor
from core.storage.duckdb import DuckDBStore
from core.storage.duckdb import monitors as stored
from tests.unit.test_packed import SPECS, _full


def _assert_same(fast: MonitorTable, slow: MonitorTable) -> None:
    assert fast.ids() == slow.ids() and len(fast) == len(slow)
    for mid in slow.ids():
        assert fast[mid] == slow[mid]
        assert (fast.name(mid), fast.tags(mid), fast.status(mid), fast.kind(mid), fast.account(mid),
                fast.paused(mid)) == (slow.name(mid), slow.tags(mid), slow.status(mid), slow.kind(mid),
                                      slow.account(mid), slow.paused(mid))


def _load(store: DuckDBStore, rows: int = 65_536) -> MonitorTable:
    return MonitorTable.from_batches(store.monitor_batches(rows))


@pytest.fixture
def store(tmp_path: Path) -> DuckDBStore:
    s = DuckDBStore(tmp_path / "data")
    yield s
    s.close()


def _every_kind() -> list[Monitor]:
    out = []
    for kind in SPECS:
        full = _full(kind)
        out.append(msgspec.structs.replace(full, id=0, status="pending", paused=kind == "tcp"))
        out.append(Monitor(name=f"defaults {kind}", spec=type(SPECS[kind])(**_required(kind))))
    return out


def _required(kind: str) -> dict[str, object]:
    spec = SPECS[kind]
    fields = msgspec.structs.fields(type(spec))
    return {f.name: getattr(spec, f.name) for f in fields
            if f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT}


def test_monitors_created_and_changed_through_the_store_load_from_their_bytes(store: DuckDBStore) -> None:
    created = [m for m, _ in store.create_monitors(_every_kind())]
    first = created[0]
    store.update_monitor(msgspec.structs.replace(first, interval=90, tags=["renamed"], timeout=None))
    store.set_paused(created[1].id, True)  # (paused changes the stored status too)
    store.set_paused(created[2].id, False)
    table = _load(store)
    assert store.repacked == 0  # every row's bytes matched it: none decoded
    _assert_same(table, MonitorTable(store.each_monitor()))
    assert table[first.id].interval == 90 and table[first.id].tags == ["renamed"]
    assert table.paused(created[1].id) and table.status(created[1].id) == "paused"


def test_rows_written_by_sql_are_decoded_once_and_their_bytes_stored(store: DuckDBStore) -> None:
    store.con.execute("""
        INSERT INTO monitors (account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,
                              paused, status, tags)
        SELECT 1, 'sql-' || i, 'http', json_object('type', 'http', 'url', 'http://127.0.0.1/?m=' || i),
               60 + i, NULL, i % 3, 1, false, 'up', CASE WHEN i % 2 = 0 THEN ['even'] ELSE [] END
        FROM range(1000) t(i)""")
    table = _load(store, rows=300)  # (several batches)
    assert store.repacked == 1000
    _assert_same(table, MonitorTable(store.each_monitor()))
    assert table.tags(1) == ("even",) and table.tags(2) == () and table[5].retries == 4 % 3
    assert table.status(7) == "up"
    _assert_same(_load(store), table)
    assert store.repacked == 0  # (stored: the next start reads them)


def test_a_row_changed_by_hand_is_read_as_changed(store: DuckDBStore) -> None:
    (monitor, _), (other, _) = store.create_monitors([Monitor(name="a", spec=SPECS["http"]),
                                                      Monitor(name="b", spec=SPECS["tcp"])])
    store.con.execute("UPDATE monitors SET spec = json_object('type', 'http', 'url', 'http://changed.example/'),"
                      " interval_s = 600, integrations = [5] WHERE id = ?", [monitor.id])
    table = _load(store)
    assert store.repacked == 1
    assert table[monitor.id].spec.url == "http://changed.example/"  # type: ignore[union-attr]
    assert (table[monitor.id].interval, table[monitor.id].integrations) == (600, [5])
    assert table[other.id] == MonitorTable(store.each_monitor())[other.id]
    _load(store)
    assert store.repacked == 0


def test_another_packed_layout_makes_every_monitors_bytes_again(store: DuckDBStore,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store.create_monitors(_every_kind())
    before = _load(store)
    monkeypatch.setattr(stored, "LAYOUT", "another layout")
    after = _load(store)
    assert store.repacked == len(before)
    _assert_same(after, before)
    _load(store)
    assert store.repacked == 0


def test_an_invalid_row_is_skipped_and_named_and_the_rest_load(store: DuckDBStore,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    created = [m for m, _ in store.create_monitors([Monitor(name=f"m{i}", spec=SPECS["http"]) for i in range(3)])]
    bad = created[1].id
    store.con.execute("UPDATE monitors SET spec = json_object('type', 'http', 'url', 'ftp://nope/') WHERE id = ?",
                      [bad])
    with caplog.at_level(logging.ERROR, logger="xuptime.storage"):
        table = _load(store)
    assert table.ids() == [created[0].id, created[2].id] and bad not in table
    assert f"monitor {bad} is invalid and is skipped" in caplog.text


def test_a_read_only_store_reads_stale_rows_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    writer = DuckDBStore(data)
    writer.con.execute("""INSERT INTO monitors (account_id, name, type, spec, interval_s)
                          VALUES (1, 'x', 'tcp', '{"type": "tcp", "host": "db", "port": 5432}', 30)""")
    writer.close()
    reader = DuckDBStore(data, read_only=True)
    try:
        table = _load(reader)
        assert [table[i].spec.host for i in table] == ["db"]  # type: ignore[union-attr]
        assert reader.con.execute("SELECT count(*) FROM monitors WHERE packed IS NULL").fetchone() == (1,)
    finally:
        reader.close()


def test_a_batch_replacing_held_monitors_replaces_their_tags_and_statuses(store: DuckDBStore) -> None:
    store.create_monitors([Monitor(name=f"m{i}", spec=SPECS["ping"], tags=["old"]) for i in range(4)])
    table = _load(store)
    table.set_status(2, "weird")  # (a status outside STATUSES is kept as it is)
    store.con.execute("UPDATE monitors SET tags = [], status = 'down' WHERE id <= 2")
    for batch in store.monitor_batches():
        table.put_batch(batch)
    assert len(table) == 4
    assert [table.tags(i) for i in (1, 2, 3)] == [(), (), ("old",)]
    assert [table.status(i) for i in (1, 2, 3)] == ["down", "down", "pending"]
    assert table.status_counts(table.ids()) == {"down": 2, "pending": 2}


def test_evicting_the_cached_blocks_drops_them_and_keeps_the_default_memory_limit(tmp_path: Path) -> None:
    def cached() -> int:
        row = store.con.execute("SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'BASE_TABLE'").fetchone()
        return int(row[0]) if row else 0

    writer = DuckDBStore(tmp_path / "data")
    writer.con.execute("""INSERT INTO checks (monitor_id, ts, ok, latency_us, error_code)
                          SELECT i % 1000, TIMESTAMP '2026-12-01' + INTERVAL (i) SECOND, true, hash(i) % 100000000, 0
                          FROM range(3000000) t(i)""")
    writer.close()
    store = DuckDBStore(tmp_path / "data")  # (what a start finds: the blocks on disk, none cached)
    try:
        default = store.con.execute("SELECT string_split(current_setting('memory_limit'), ' ') AS v,"
                                    " v[1]::DOUBLE, v[2]").fetchone()[1:]
        store.con.execute("SELECT sum(latency_us), max(ts) FROM checks").fetchall()
        before = cached()
        assert before > 10 * 2**20
        store.evict_cached_blocks()
        assert cached() < before / 4
        after = store.con.execute("SELECT string_split(current_setting('memory_limit'), ' ') AS v,"
                                  " v[1]::DOUBLE, v[2]").fetchone()[1:]
        assert after[1] == default[1] and abs(after[0] - default[0]) <= 0.01 * default[0]  # (shown rounded)
        # (and the limit is the one in force: a query that needs memory runs)
        sorted_rows = store.con.execute("SELECT count(*) FROM (SELECT latency_us::VARCHAR AS s FROM checks"
                                        " ORDER BY s)").fetchone()
        assert sorted_rows == (3_000_000,)
    finally:
        store.close()


def test_the_heap_is_trimmed_where_the_c_library_can() -> None:
    assert heap.trim() is True  # (glibc, as on every machine this runs on)
