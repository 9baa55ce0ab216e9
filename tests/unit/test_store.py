"""DuckDBStore on a real file: migrations, monitors, columnar ingest, set-based transitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.models import Transition, parse_monitor
from core.models.retention import Retention
from core.storage.duckdb import DuckDBStore, ReadOnlyQueryError
from core.storage.schema import LATEST
from ext import ResultBuffer


@pytest.fixture
def store(tmp_path: Path) -> DuckDBStore:
    s = DuckDBStore(tmp_path)
    yield s
    s.close()


def add(store: DuckDBStore, name: str) -> int:
    return store.create_monitor(parse_monitor({"name": name, "type": "http", "url": "http://h/"})).id


def test_monitors_are_listed_by_id_whatever_order_they_were_stored_in(store: DuckDBStore) -> None:
    first = add(store, "first")
    for mid in (first + 30, first + 10, first + 20):  # (stored out of id order, as a restore might)
        store.con.execute("INSERT INTO monitors SELECT * REPLACE (? AS id, 'm' || ? AS name) FROM monitors"
                          " WHERE id = ?", [mid, mid, first])
    listed = store.list_monitors()
    assert [m.id for m in listed] == [first, first + 10, first + 20, first + 30]
    assert [m.name for m in listed[1:]] == [f"m{first + 10}", f"m{first + 20}", f"m{first + 30}"]


def test_migrations_are_idempotent_and_survive_reopen(tmp_path: Path) -> None:
    s = DuckDBStore(tmp_path)
    assert s.schema_version() == LATEST
    mid = add(s, "a")
    s.close()
    again = DuckDBStore(tmp_path)
    assert again.migrate() == LATEST and again.get_monitor(mid).name == "a"
    again.close()
    ro = DuckDBStore(tmp_path, read_only=True)
    assert [m.id for m in ro.list_monitors()] == [mid]
    ro.close()


def test_ingest_maps_sentinels_to_null(store: DuckDBStore) -> None:
    buf = ResultBuffer(16)
    buf.append(1, 1_700_000_000_000_000, True, 1500, 200, 0, 10, 20, -1, 300)
    buf.append(1, 1_700_000_001_000_000, False, 900, 0, 3, error="connection refused")
    assert store.ingest(buf.flush()) == 2
    rows = store.query("SELECT ts, ok, latency_us, status_code, error_code, error, dns_us, tls_us, ttfb_us "
                       "FROM checks ORDER BY ts")[1]
    assert str(rows[0][0]) == "2023-11-14 22:13:20"
    assert rows[0][1:] == (True, 1500, 200, 0, None, 10, None, 300)
    assert rows[1][1:] == (False, 900, None, 3, "connection refused", None, None, None)


def test_transitions_in_bulk_and_in_order(store: DuckDBStore) -> None:
    ids = [add(store, f"m{i}") for i in range(2000)]
    down = [Transition(mid, 1_000_000, "pending", "down", "refused") for mid in ids]
    store.apply_transitions(down)
    assert store.query("SELECT count(*) FROM incidents WHERE resolved_at IS NULL")[1] == [(2000,)]
    assert {m.status for m in store.list_monitors()} == {"down"}
    # Within one batch: monitor 1 recovers and fails again; monitor 2 recovers.
    store.apply_transitions([
        Transition(ids[0], 2_000_000, "down", "up"), Transition(ids[1], 2_000_000, "down", "up"),
        Transition(ids[0], 3_000_000, "up", "down", "timeout"),
    ])
    incidents = store.query(f"SELECT monitor_id, resolved_at IS NULL, cause FROM incidents "
                            f"WHERE monitor_id IN ({ids[0]}, {ids[1]}) ORDER BY monitor_id, id")[1]
    assert incidents == [(ids[0], False, "refused"), (ids[0], True, "timeout"), (ids[1], False, "refused")]
    assert store.get_monitor(ids[0]).status == "down" and store.get_monitor(ids[1]).status == "up"


def test_first_ups_stored_together_never_overwrite_a_newer_status(store: DuckDBStore) -> None:
    a, b, c, paused = (add(store, n) for n in ("a", "b", "c", "paused"))
    store.set_paused(paused, True)
    store.apply_transitions([Transition(b, 5_000_000, "pending", "down", "refused")])  # newer than b's first up
    stored = store.apply_statuses([Transition(a, 1_000_000, "pending", "up"), Transition(b, 2_000_000, "pending", "up"),
                                   Transition(c, 3_000_000, "pending", "up"), Transition(c, 4_000_000, "pending", "up"),
                                   Transition(paused, 1_000_000, "pending", "up")])
    assert stored == 2  # a and c (c once: its later one)
    got = dict(store.query("SELECT id, status || ' ' || epoch_us(status_since) FROM monitors")[1])
    assert got[a] == "up 1000000" and got[b] == "down 5000000" and got[c] == "up 4000000"
    assert got[paused].startswith("paused")
    assert store.query(f"SELECT count(*) FROM incidents WHERE monitor_id = {b}")[1] == [(1,)]


def test_no_read_leaves_a_transaction_open_behind_it(store: DuckDBStore) -> None:
    """A cursor back in its pool holds no open result: an open one keeps its transaction, which
    keeps the undo data of every later UPDATE in memory (hundreds of MB at a million monitors
    in a first round of statuses) and refuses checkpoints. CHECKPOINT is refused while any other
    transaction is open, so it is the witness."""
    a = add(store, "a")
    now = 1_700_000_000_000_000
    reads = [lambda: store.uptime(a, [("24h", 86_400)], now),  # (single-row answers: fetchone)
             lambda: store.incident_page(1, None, 10),
             lambda: store.rollup(now, grace_us=0), lambda: store.upkeep(now, grace_us=0)]
    for read in reads:
        read()
        store.apply_statuses([Transition(a, now, "pending", "up")])
        store.con.execute("CHECKPOINT")  # raises TransactionException if a read left one open


def test_paused_and_deleted_monitors_ignore_transitions(store: DuckDBStore) -> None:
    a, b = add(store, "a"), add(store, "b")
    store.set_paused(a, True)
    store.delete_monitor(b)
    store.apply_transitions([Transition(a, 1, "pending", "down", "x"), Transition(b, 1, "pending", "down", "x")])
    assert store.get_monitor(a).status == "paused"
    assert store.query("SELECT count(*) FROM incidents")[1] == [(0,)]


def test_delete_removes_results_and_incidents(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path)
    a, b = add(store, "a"), add(store, "b")
    buf = ResultBuffer(4)
    for mid in (a, b):
        buf.append(mid, 1, False, 1, error_code=3)
    store.ingest(buf.flush())
    store.apply_transitions([Transition(a, 1, "pending", "down")])
    assert store.delete_monitor(a) and not store.delete_monitor(a)
    assert store.query("SELECT count(*) FROM incidents")[1] == [(0,)]
    assert store.query("SELECT monitor_id FROM purge")[1] == [(a,)]  # (its checks go with the upkeep)
    store.close()
    store = DuckDBStore(tmp_path)  # (noted durably: a restart before the upkeep forgets nothing)
    try:
        assert store.upkeep(2_000_000)["purged"] == 1
        assert store.query("SELECT DISTINCT monitor_id FROM checks")[1] == [(b,)]
        assert store.query("SELECT count(*) FROM purge")[1] == [(0,)]
    finally:
        store.close()


@pytest.mark.parametrize("sql", ["DELETE FROM checks", "INSERT INTO accounts (name) VALUES ('x')",
                                 "SELECT 1; DROP TABLE checks", "CREATE TABLE t (a INT)", "ATTACH 'x.db'", ""])
def test_query_is_read_only(store: DuckDBStore, sql: str) -> None:
    with pytest.raises(ReadOnlyQueryError):
        store.query(sql)
    assert store.query("SELECT count(*) FROM checks")[1] == [(0,)]


def test_ingest_of_a_large_batch_counts_exactly(store: DuckDBStore) -> None:
    buf = ResultBuffer(100_000)
    for i in range(100_000):
        buf.append(i % 100, i, i % 7 != 0, i)
    batch = buf.flush()
    assert store.ingest(batch) == 100_000
    ok = store.query("SELECT count(*) FILTER (WHERE ok) FROM checks")[1][0][0]
    assert ok == int(np.count_nonzero(batch["monitor_id"] >= 0) - (100_000 + 6) // 7)


def test_accounts_and_api_keys(store: DuckDBStore) -> None:
    from core.models import hash_api_key
    from core.storage.duckdb import DuplicateError

    assert [a.name for a in store.list_accounts()] == ["default"]
    acme = store.create_account("acme", 100)
    assert acme.monthly_request_limit == 100 and store.get_account("acme") == acme
    with pytest.raises(DuplicateError):
        store.create_account("acme")
    key = store.create_api_key(acme.id, "ci")
    secret = key.secret
    assert secret.startswith("xup_") and len(secret) == 36 and key.prefix == secret[:12]
    assert store.find_api_key(secret) == acme.id
    assert store.find_api_key(secret + "x") is None and store.find_api_key("Bearer " + secret) is None
    stored = store.query("SELECT prefix, sha256 FROM api_keys")[1]
    assert stored == [(secret[:12], hash_api_key(secret))]  # the secret itself is nowhere
    assert all(not hasattr(k, "secret") for k in store.list_api_keys(acme.id))
    default = store.get_account("default")
    assert default is not None
    other = store.create_api_key(default.id, "x")
    assert not store.revoke_api_key(acme.id, other.id)  # another account's key
    assert store.revoke_api_key(acme.id, key.id) and not store.revoke_api_key(acme.id, key.id)
    assert store.find_api_key(secret) is None
    revoked_at = store.list_api_keys(acme.id)[0].revoked_at
    assert revoked_at is not None and revoked_at.endswith("Z")


HOUR = 3600 * 10**6
FOREVER = Retention(raw=None, hourly=None, daily=None)


def _ingest(store: DuckDBStore, checks: list[tuple[int, bool, int]], base: int, ids: tuple[int, int] = (7, 8)) -> None:
    if not checks:
        return
    buf = ResultBuffer(2 * len(checks))
    for offset, ok, latency in checks:
        buf.append(ids[0], base + offset, ok, latency, 200 if ok else 0, 0 if ok else 3)
        buf.append(ids[1], base + offset, not ok, latency + 1, 200, 0)  # a neighbour that must not leak in
    store.ingest(buf.flush())


@settings(max_examples=40, deadline=None)
@given(checks=st.lists(st.tuples(st.integers(0, 50 * HOUR), st.booleans(), st.integers(0, 5_000_000)),
                       min_size=1, max_size=150, unique_by=lambda c: c[0]),
       bucket_s=st.sampled_from([60, 300, 3600, 86400]), split=st.integers(0, 150),
       rollups=st.sampled_from(["none", "between", "after", "both"]),
       bounds=st.tuples(st.none() | st.integers(0, 50 * HOUR), st.none() | st.integers(0, 50 * HOUR)),
       page=st.integers(1, 7))
def test_buckets_and_uptime_match_brute_force(tmp_path_factory: pytest.TempPathFactory,
                                              checks: list[tuple[int, bool, int]], bucket_s: int, split: int,
                                              rollups: str, bounds: tuple[int | None, int | None], page: int) -> None:
    """Whatever has been rolled up, and whatever arrived late after that, buckets and uptime
    equal a brute-force computation over the rows (a day's percentiles within 1/64)."""
    base = 1_700_000_000_000_000 - 1_700_000_000_000_000 % (24 * HOUR)  # a day boundary
    now = base + 51 * HOUR
    lo, hi = sorted(bounds, key=lambda b: -1 if b is None else b) if None not in bounds else bounds
    lo_us, hi_us = (None if lo is None else base + lo), (None if hi is None else base + hi)
    store = DuckDBStore(tmp_path_factory.mktemp("h"))
    store.set_retention(FOREVER)  # (the rows are of 2023: past the default retention)
    try:
        _ingest(store, checks[:split], base)
        if rollups in ("between", "both"):
            store.rollup(now, grace_us=0)
        _ingest(store, checks[split:], base)  # late rows, into hours already rolled up
        if rollups in ("after", "both"):
            store.rollup(now, grace_us=0)
        rows, before = [], None
        while True:  # walk every page
            got, more = store.history_buckets(7, bucket_s, lo_us, hi_us, before, page)
            assert len(got) == page or (len(got) < page and not more)
            rows += got
            if not more:
                break
            before = got[-1][0]
        expected: dict[int, list[tuple[bool, int]]] = {}
        for offset, ok, latency in checks:
            ts = base + offset
            if (lo_us is None or ts >= lo_us) and (hi_us is None or ts <= hi_us):
                expected.setdefault(ts - ts % (bucket_s * 10**6), []).append((ok, latency))
        assert [r[0] for r in rows] == sorted(expected, reverse=True)  # only buckets with checks, newest first
        for ts, n, up, avg, low, high, quantiles in rows:
            group = expected[ts]
            lat = np.array([latency for _, latency in group], dtype=float)
            assert (n, up) == (len(group), sum(ok for ok, _ in group))
            assert (low, high) == (lat.min(), lat.max()) and avg == pytest.approx(lat.mean())
            exact = np.quantile(lat, [0.5, 0.95, 0.99])
            if bucket_s < 86400:
                assert quantiles == pytest.approx(list(exact))
            else:
                assert np.all(np.abs(np.array(quantiles) - exact) <= lat.max() / 64 + 1)
        windows = [("1h", 3600), ("7h", 7 * 3600), ("2d", 2 * 86400)]
        result = store.uptime(7, windows, now)
        for label, seconds in windows:
            window = [ok for offset, ok, _ in checks if base + offset >= now - seconds * 10**6]
            assert result[label].checks == len(window)
            assert result[label].uptime == (sum(window) / len(window) if window else None)
    finally:
        store.close()


@settings(max_examples=30, deadline=None)
@given(offsets=st.lists(st.integers(0, 400 * HOUR), min_size=1, max_size=120, unique=True),
       bounds=st.tuples(st.none() | st.integers(0, 400 * HOUR), st.none() | st.integers(0, 400 * HOUR)),
       page=st.integers(1, 9))
def test_raw_history_pages_match_brute_force(tmp_path_factory: pytest.TempPathFactory, offsets: list[int],
                                             bounds: tuple[int | None, int | None], page: int) -> None:
    """Raw reads probe growing windows back in time: sparse rows weeks apart are all found."""
    base = 1_700_000_000_000_000
    lo, hi = sorted(bounds) if None not in bounds else bounds
    store = DuckDBStore(tmp_path_factory.mktemp("r"))
    store.set_retention(FOREVER)  # (the rows are of 2023: past the default retention)
    try:
        _ingest(store, [(o, True, o % 1000) for o in offsets], base)
        seen, before = [], None
        while True:
            rows, more = store.history_raw(7, None if lo is None else base + lo, None if hi is None else base + hi,
                                           before, page)
            assert len(rows) == page or (len(rows) < page and not more)
            seen += [r[0] for r in rows]
            if not more:
                break
            before = rows[-1][0]
        expected = sorted((base + o for o in offsets if (lo is None or o >= lo) and (hi is None or o <= hi)),
                          reverse=True)
        assert seen == expected
    finally:
        store.close()


def test_rollup_catches_up_in_chunks_and_survives_reopen(tmp_path: Path) -> None:
    base = 1_700_000_000_000_000 - 1_700_000_000_000_000 % (24 * HOUR)
    store = DuckDBStore(tmp_path)
    store.set_retention(FOREVER)  # (the rows are of 2023: past the default retention)
    first, second = add(store, "a"), add(store, "b")
    _ingest(store, [(h * HOUR + 5, True, 1000 + h) for h in range(60)], base, (first, second))
    assert store.rollup(base + 61 * HOUR, grace_us=0, chunk_us=7 * HOUR) == 2 * 60  # two monitors
    assert store.rollup_upto_us == base + 61 * HOUR
    assert store.rollup(base + 61 * HOUR, grace_us=0) == 0  # nothing new
    store.close()
    store = DuckDBStore(tmp_path)
    try:
        assert store.rollup_upto_us == base + 61 * HOUR
        sql = "SELECT monitor_id, count(*), sum(checks) FROM checks_hourly GROUP BY 1 ORDER BY 1"
        assert store.query(sql)[1] == [(first, 60, 60), (second, 60, 60)]
        assert store.delete_monitor(first)
        store.rollup(base + 61 * HOUR, grace_us=0)
        store.upkeep(base + 61 * HOUR, grace_us=0)
        assert store.query(sql)[1] == [(second, 60, 60)]
    finally:
        store.close()


def test_fast_row_decode_equals_the_validating_path(store: DuckDBStore) -> None:
    definitions = [
        {"name": "web", "type": "http", "url": "https://h/x?y=1", "method": "POST", "body": "{}", "keyword": "ok",
         "headers": {"X-A": "b"}, "expectedStatus": ["2xx", "301"], "keepAlive": True, "timeout": 5, "interval": 30,
         "retries": 2, "recoveryThreshold": 3, "tags": ["a", "b"]},
        {"name": "db", "type": "tcp", "host": "10.0.0.1", "port": 5432, "send": "PING", "expect": "PONG"},
        {"name": "paused", "type": "http", "url": "http://h/", "paused": True},
    ]
    for data in definitions:
        store.create_monitor(parse_monitor(data))
    rows = store.con.execute(f"SELECT {store._MONITOR_COLUMNS} FROM monitors ORDER BY id").fetchall()
    assert [store._monitor_from_row(r) for r in rows] == [store._monitor_from_row_slow(r) for r in rows]
    assert store.list_monitors()[2].status == "paused"


def test_readers_on_other_threads_never_deadlock_the_writer(store: DuckDBStore) -> None:
    """Read-only queries run on other threads while the writer ingests and applies
    transitions (both scan registered Arrow tables, which needs the GIL)."""
    import threading

    ids = [add(store, f"m{i}") for i in range(50)]
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for round_ in range(150):
                buf = ResultBuffer(len(ids))
                for mid in ids:
                    buf.append(mid, 1_700_000_000_000_000 + round_, round_ % 2 == 0, 10)
                store.ingest(buf.flush())
                new = "up" if round_ % 2 else "down"
                store.apply_transitions([Transition(mid, round_, "x", new, "c") for mid in ids])
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(150):
                store.query("SELECT monitor_id, count(*) FROM checks GROUP BY 1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f, daemon=True) for f in (writer, reader, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "deadlock: a thread is still blocked"
    assert errors == []


def test_outbox_rows_follow_transitions_and_reminders_once_per_interval(store: DuckDBStore) -> None:
    """Down and recovery queue one row per channel (attached or default), a replay queues none,
    a first 'up' and a paused monitor queue nothing, reminders come once per interval."""
    import datetime as dt

    from core.alerting import parse_integration

    def make(name: str, default: bool = False, reminder: int | None = None) -> int:
        integration = parse_integration({"name": name, "type": "webhook", "config": {"url": "http://127.0.0.1:9/"},
                                         "isDefault": default, "reminderInterval": reminder})
        integration.account_id = 1
        return store.create_integration(integration).id

    attached, default, reminding = make("attached"), make("default", True), make("reminding", reminder=60)
    monitor = store.create_monitor(parse_monitor({"name": "m", "type": "http", "url": "http://h/",
                                                  "integrations": [attached, reminding]}))
    quiet = store.create_monitor(parse_monitor({"name": "quiet", "type": "http", "url": "http://h/"}))
    t0 = 1_700_000_000_000_000
    start = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=t0)
    store.apply_transitions([Transition(quiet.id, t0, "pending", "up", None)])  # a first up says nothing
    down = [Transition(monitor.id, t0, "up", "down", "status 503")]
    store.apply_transitions(down)
    store.apply_transitions(down)  # replayed: nothing more
    rows = store.query("SELECT integration_id, event FROM outbox ORDER BY integration_id")[1]
    assert rows == [(attached, "down"), (default, "down"), (reminding, "down")]
    assert store.queue_reminders(start + dt.timedelta(seconds=59)) == 0
    assert store.queue_reminders(start + dt.timedelta(seconds=61)) == 1
    assert store.queue_reminders(start + dt.timedelta(seconds=119)) == 0  # same interval: already queued
    assert store.queue_reminders(start + dt.timedelta(seconds=121)) == 1
    store.apply_transitions([Transition(monitor.id, t0 + 200 * 10**6, "down", "up", None)])
    assert store.queue_reminders(start + dt.timedelta(seconds=400)) == 0  # resolved: no more reminders
    events = store.query("SELECT event, count(*) FROM outbox GROUP BY 1 ORDER BY 1")[1]
    assert events == [("down", 3), ("reminder", 2), ("up", 3)]
    context = store.query("SELECT context FROM outbox WHERE event = 'up' LIMIT 1")[1][0][0]
    assert '"duration_seconds":200.0' in context and '"target":"http://h/"' in context
    store.set_paused(monitor.id, True)
    store.apply_transitions([Transition(monitor.id, t0 + 300 * 10**6, "up", "down", "x")])
    assert store.query("SELECT count(*) FROM outbox")[1] == [(8,)]  # paused: nothing queued
    # Pruning forgets finished messages (and their attempts) older than the cut, never pending ones.
    first, second = (r[0] for r in store.query("SELECT id FROM outbox ORDER BY id LIMIT 2")[1])
    store.record_deliveries([{"id": first, "attempt": 1, "at": start, "ok": True, "status": 200, "response": "ok",
                              "state": "sent", "next_at": start}])
    cut = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=1)
    assert store.prune_outbox(cut) == 1
    assert store.query("SELECT count(*) FROM outbox")[1] == [(7,)]
    assert store.query("SELECT count(*) FROM deliveries")[1] == [(0,)]
    assert store.query(f"SELECT status FROM outbox WHERE id = {second}")[1] == [("pending",)]


def test_a_crash_right_after_migrating_and_writing_reopens(tmp_path: Path) -> None:
    """kill -9 (os._exit) after the migrations and some writes: the next open replays the WAL."""
    import subprocess
    import sys

    script = f"""
import os
from core.models import Transition, parse_monitor
from core.models.retention import Retention
from core.storage.duckdb import DuckDBStore
store = DuckDBStore({str(tmp_path)!r})
m = store.create_monitor(parse_monitor({{"name": "m", "type": "http", "url": "http://h/"}}))
store.con.execute("UPDATE monitors SET integrations = [1, 2] WHERE id = ?", [m.id])
store.apply_transitions([Transition(m.id, 1_700_000_000_000_000, "pending", "down", "x")])
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    store = DuckDBStore(tmp_path)
    store.set_retention(FOREVER)  # (the rows are of 2023: past the default retention)
    try:
        monitors = store.list_monitors()
        assert [(m.name, m.integrations, m.status) for m in monitors] == [("m", [1, 2], "down")]
    finally:
        store.close()


def test_history_version_changes_with_every_change_an_answer_could_see(store: DuckDBStore) -> None:
    base = 1_700_000_000_000_000 - 1_700_000_000_000_000 % (24 * HOUR)
    mine, other, third = add(store, "mine"), add(store, "other"), add(store, "third")
    _ingest(store, [(h * HOUR + 5, True, 1000) for h in range(3)], base, (mine, other))
    v0 = store.history_version(mine)
    unrelated = ResultBuffer(4)
    unrelated.append(third, base + 3 * HOUR, True, 1, 200, 0)
    store.ingest(unrelated.flush())
    assert store.history_version(mine) == v0  # a batch without its rows: answers stand
    _ingest(store, [(3 * HOUR, True, 1000)], base, (mine, other))
    v1 = store.history_version(mine)
    assert v1 != v0
    store.rollup(base + 3 * HOUR, grace_us=0)  # hours appended to the rollups
    v2 = store.history_version(mine)
    assert v2 != v1
    late = ResultBuffer(4)  # a late row of another monitor makes a rolled-up hour stale
    late.append(third, base + HOUR + 7, True, 1, 200, 0)
    store.ingest(late.flush())
    v3 = store.history_version(mine)
    assert v3 != v2
    store.rollup(base + 3 * HOUR, grace_us=0)  # and recomputing it rewrites rolled-up hours
    assert store.history_version(mine) != v3
    v4 = store.history_version(mine)
    assert store.delete_monitor(mine) and store.history_version(mine) != v4


def test_demo_monitors_never_use_the_default_channels(store: DuckDBStore) -> None:
    """``serve --demo``'s monitors (tagged ``demo``) fail on purpose: the account's default
    channels hear nothing of them; a channel attached to one still does."""
    from core.alerting import parse_integration

    def make(name: str, default: bool) -> int:
        integration = parse_integration({"name": name, "type": "webhook", "config": {"url": "http://127.0.0.1:9/"},
                                         "isDefault": default})
        integration.account_id = 1
        return store.create_integration(integration).id

    default, attached = make("default", True), make("attached", False)
    demo = store.create_monitor(parse_monitor({"name": "[demo] x", "type": "http", "url": "http://h/",
                                               "tags": ["demo"], "integrations": [attached]}))
    real = store.create_monitor(parse_monitor({"name": "real", "type": "http", "url": "http://h/"}))
    t0 = 1_700_000_000_000_000
    store.apply_transitions([Transition(demo.id, t0, "up", "down", "x"), Transition(real.id, t0, "up", "down", "x")])
    rows = store.query("SELECT monitor_id, integration_id FROM outbox ORDER BY monitor_id, integration_id")[1]
    assert rows == [(demo.id, attached), (real.id, default)]
