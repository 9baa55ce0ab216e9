"""The newest checks in memory (``RecentChecks``) and the compiled encoding of history items:
every page answered from memory is the store's page, byte for byte in meaning, and a page the
rings cannot answer exactly is left to the store."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.models import parse_monitor
from core.models.retention import Retention
from core.services import DormantEngine, Services, StoreThreads
from core.services.recent_checks import MIN_DEPTH, ROW_BYTES, RecentChecks
from core.services.recent_hours import HOUR_BYTES, HOUR_US, RecentHours
from core.storage.duckdb import READERS, DuckDBStore
from core.storage.duckdb.history import HOUR_JSON, RAW_JSON
from core.storage.rollups import hour_aggregate_sql
from ext import ResultBuffer
from ext._history import raw_hour_items, raw_items, rolled_items


def test_compiled_items_are_the_items_duckdb_encodes() -> None:
    import duckdb

    rng = np.random.default_rng(7)
    n = 500
    ts = rng.integers(0, 4_000_000_000_000_000, n)
    ok = rng.integers(0, 2, n).astype(np.int8)
    latency = rng.integers(0, 10**8, n)
    status = rng.choice([0, 200, 503], n).astype(np.int16)
    errors = [None if i % 3 else f'bad "x"\n\\ {i} é \x01' for i in range(n)]
    phases = [np.where(rng.random(n) < 0.3, -1, rng.integers(0, 10**7, n)) for _ in range(4)]
    con = duckdb.connect()
    raw = pa.table({"ts": pa.array(ts).cast(pa.timestamp("us")), "ok": ok.astype(bool), "latency_us": latency,
                    "status_code": pa.array(status, mask=status == 0), "error": errors,
                    **{k: pa.array(v, mask=v < 0) for k, v in zip(("dns_us", "connect_us", "tls_us", "ttfb_us"),
                                                                  phases, strict=True)}})
    con.register("raw", raw)
    expected = [msgspec.json.decode(r[0]) for r in con.execute(f"SELECT {RAW_JSON} FROM raw").fetchall()]
    assert msgspec.json.decode(b"[" + raw_items(ts, ok, latency, status, errors, *phases) + b"]") == expected

    # rolled-up hours, as ``RecentHours`` holds them (one row, a slot an hour), against DuckDB's
    checks = rng.integers(1, 4000, n)
    up = np.where(rng.random(n) < 0.5, checks, rng.integers(0, checks + 1))
    sums = rng.integers(0, 10**9, n) * checks + rng.integers(0, 1000, n)
    low, high = rng.integers(0, 10**6, n), rng.integers(0, 10**8, n)
    q = [rng.random(n) * 10**7 for _ in range(3)]
    # halves at every rounding step (the encoder rounds inline, away from zero, as C's round)
    checks[:6], sums[:6], up[:6] = [2, 2, 2, 4, 8, 2000], [1, 3, 5, 2_001, 4_004, 1_001], [1, 2, 0, 4, 8, 1999]
    q[0][:6] = [0.5, 1.5, 2.5, 1234.5, 999.5, 4503599627370495.5]
    q[1][:6] = [0.4999999999999999, 2**52 + 0.0, 2**53 + 2.0, 1e15 + 0.5, 7.0005, 1e-9]
    first = 480_000  # (hour numbers: slot = hour % n, so every hour has a slot of its own)
    hour_us = (first + np.arange(n)) * 3_600_000_000
    hours = pa.table({"hour": pa.array(hour_us).cast(pa.timestamp("us")),
                      "checks": checks, "up": up, "lsum": sums, "lmin": low, "lmax": high,
                      "q": pa.array([list(x) for x in zip(*q, strict=True)])})
    con.register("hours", hours)
    expected = [msgspec.json.decode(r[0]) for r in
                con.execute(f"SELECT {HOUR_JSON} FROM hours ORDER BY hour DESC").fetchall()]
    order = (first + np.arange(n)) % n
    row = [np.zeros((2, n), dtype=t) for t in (np.int32, np.int32, np.int64, np.int64, np.int64)]
    for array, values in zip(row, (checks, up, sums, low, high), strict=True):
        array[1, order] = values
    quantiles = np.zeros((3, 2, n))
    for k in range(3):
        quantiles[k, 1, order] = q[k]
    ends, starts = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    got, taken, held = rolled_items(*row, quantiles, 1, first, first + n - 1, ends, starts)
    assert (taken, held) == (n, n) and starts.tolist() == hour_us[::-1].tolist()
    assert msgspec.json.decode(b"[" + got + b"]") == expected
    # uptime is Python's repr of the ratio, byte for byte, whether its text was cached or not
    uptimes = re.findall(rb'"uptime":([^,]+),', got)
    assert uptimes == [repr(u / c).encode() for u, c in zip(up[::-1].tolist(), checks[::-1].tolist(), strict=True)]
    again, taken, held = rolled_items(*row, quantiles, 1, first, first + n - 1, ends[:7], starts[:7])
    assert (again, taken, held) == (got[:int(ends[6])], 7, n)  # (a page of 7 is the first 7 items)


@settings(max_examples=60, deadline=None)
# (found by hypothesis: a p95 whose textbook interpolation rounds to another µs than DuckDB's)
@example([(0, False, 0), (1, False, 65_535), (2, False, 107_860)], 1)
@given(st.lists(st.tuples(st.integers(0, 5 * 3_600_000_000), st.booleans(),
                          st.one_of(st.integers(0, 3), st.integers(0, 10**9))), max_size=120),
       st.integers(0, 8))
def test_raw_hours_are_the_hours_duckdb_rolls_up(checks: list[tuple[int, bool, int]], limit: int) -> None:
    """A page's raw part (the open hours, the part of an hour a range starts in) aggregated by
    ``raw_hour_items``: DuckDB's ``checks_hourly`` rows for the same checks, encoded alike,
    newest hour first, cut at ``limit`` (latencies of 0-3 µs make halves to round)."""
    import duckdb

    base = 1_700_000_000_000_000 // 3_600_000_000 * 3_600_000_000
    ts = np.array([base + t for t, _, _ in checks], dtype=np.int64)
    ok = np.array([o for _, o, _ in checks], dtype=np.int8)
    latency = np.array([lat for _, _, lat in checks], dtype=np.int64)
    con = duckdb.connect()
    con.execute("CREATE TABLE checks (monitor_id BIGINT, ts TIMESTAMP, ok BOOLEAN, latency_us BIGINT)")
    con.register("given", pa.table({"ts": pa.array(ts).cast(pa.timestamp("us")), "ok": ok.astype(bool),
                                    "latency_us": latency}))
    con.execute("INSERT INTO checks SELECT 1, ts, ok, latency_us FROM given")
    rolled = hour_aggregate_sql("monitor_id = ?")
    rows = con.execute(f"SELECT {HOUR_JSON} FROM (SELECT hour, checks, up, lsum, lmin, lmax, [p50, p95, p99] AS q"
                       f" FROM ({rolled})) ORDER BY hour DESC", [1, 1]).fetchall()
    expected = [msgspec.json.decode(r[0]) for r in rows]
    ends, starts = np.empty(limit, dtype=np.int64), np.empty(limit, dtype=np.int64)
    got, taken, held = raw_hour_items(ts, ok, latency, ends, starts)
    assert held == len(expected) and taken == min(limit, held)
    assert msgspec.json.decode(b"[" + got + b"]") == expected[:limit]


def test_pages_from_memory_are_the_stores_pages(tmp_path: Path) -> None:
    """Rows arrive interleaved, in batches bigger than a ring, late, and while the rings shrink
    for new monitors; every page the rings answer equals the store's, and the newest pages
    (what dashboards ask) are answered."""
    second = 1_000_000
    base = 1_700_000_000 * second
    # rings of 300 rows for ids below 1024; 150 once ids reach 2047
    tail = RecentChecks(budget=300 * 1024 * ROW_BYTES)
    store = DuckDBStore(tmp_path)
    store.set_retention(Retention(raw=None, hourly=None, daily=None))
    rng = np.random.default_rng(3)
    monitors = [1, 2, 3]
    count = dict.fromkeys([1, 2, 3, 1500], 0)
    compared = []

    def batch(ids: list[int], late: int | None = None) -> None:
        buf = ResultBuffer(4096)
        for mid in ids:
            count[mid] += 1
            ts = base + count[mid] * 10 * second + mid
            if late is not None and mid == late:
                ts -= 35 * second  # three checks back: older than rows already stored
            k = count[mid]
            buf.append(mid, ts, k % 7 != 0, 1000 + k, 200 if k % 7 else 0, 0 if k % 7 else 3,
                       dns_us=-1 if k % 2 else 40 + k, connect_us=250, ttfb_us=900 + k,
                       error=f"refused {k}" if k % 7 == 0 else None)
        rows = buf.flush()
        store.ingest(rows)
        tail.note(rows)

    def check(mid: int, answered: bool | None = None) -> None:
        for lo, hi, limit in [(None, None, 100), (None, None, 1), (None, None, 1000),
                              (base + count[mid] * 10 * second - 500 * second, None, 100),
                              (None, base + count[mid] * 10 * second - 200 * second, 100),
                              (base + 30 * second, base + 60 * second, 10)]:
            page = tail.page(mid, lo, hi, limit)
            rows, more = store.history_raw_json(mid, lo, hi, None, limit)
            if page is None:
                continue
            items, oldest, more_here = page
            compared.append((mid, lo, hi, limit))
            assert msgspec.json.decode(b"[" + items + b"]") == [msgspec.json.decode(r[1]) for r in rows]
            assert (oldest, more_here) == (rows[-1][0] if rows else None, more)
        if answered:  # the newest page, what a dashboard asks
            assert tail.page(mid, None, None, 100) is not None

    batch([1, 2, 3] * 10)
    for mid in monitors:
        check(mid, answered=True)  # everything of every monitor is here
    for _ in range(40):
        batch([int(m) for m in rng.choice([1, 1, 1, 2, 3], 30)])
    batch([1] * 700)  # more than a ring in one batch
    check(1, answered=True)
    check(2, answered=True)
    batch([3], late=3)  # a late row: pages that reach back past it go to the store
    assert tail.page(3, None, None, 100) is None
    check(3)
    batch([3] * 101)  # a page of rows after it: answered again
    check(3, answered=True)
    batch([1500] * 5 + [1, 2, 3])  # the rings shrink to 150 for id 1500
    assert tail.depth == 150 >= MIN_DEPTH
    for mid in [1, 2, 3, 1500]:
        check(mid, answered=True)
    assert len(compared) >= 40 and {c[3] for c in compared} == {1, 10, 100, 1000}
    tail.forget(2)
    assert tail.page(2, None, None, 10) is None
    store.close()


def test_the_rings_turn_off_below_a_page_and_start_covers_only_what_was_loaded() -> None:
    tail = RecentChecks(budget=200 * 1024 * ROW_BYTES)
    assert tail.on
    tail.cover_from([5], 1000)
    assert tail.page(5, None, None, 10) is None  # the store may hold older rows of 5
    assert tail.page(6, None, None, 10) == (b"", None, False)  # 6 was never stored: nothing anywhere
    one = [np.array([5]), np.array([2000]), np.array([1]), np.array([3000]), np.array([200]), [None],
           *[np.array([-1])] * 4]
    tail.add(*one)
    assert tail.page(5, 1000, None, 10)[1:] == (2000, False)  # the range starts at the cover: exact
    tail.add(np.array([5000]), *one[1:])  # ids up to 5000: 200 * 1024 / 8192 = 25 rows, too few
    assert not tail.on and tail.page(5, 1000, None, 10) is None

    hours = RecentHours(budget=100 * 1024 * HOUR_BYTES)  # a hundred hours for ids below 1024
    row = {"monitor_id": np.array([5]), "hour": np.array([99 * HOUR_US]), "checks": np.array([3]),
           "up": np.array([3]), "latency_sum": np.array([300]), "latency_min": np.array([90]),
           "latency_max": np.array([110]), "p50": np.array([100.0]), "p95": np.array([109.0]), "p99": np.array([109.8])}
    hours.fill(row, 0, 100 * HOUR_US, 0)
    assert hours.current(100 * HOUR_US, 0) and list(hours.rolled(5, None, 100 * HOUR_US)[0]["checks"]) == [3]
    hours.fill({**row, "monitor_id": np.array([5000])}, 100 * HOUR_US, 101 * HOUR_US, 0)  # too many: off
    assert not hours.on and not hours.current(101 * HOUR_US, 0) and hours.rolled(5, None, 100 * HOUR_US) is None


def restarted(data_dir: Path, body: Callable[[Services, DuckDBStore, StoreThreads], Awaitable[None]]) -> None:
    """``body`` over the services of a server started on ``data_dir`` (its monitors loaded)."""
    async def main() -> None:
        threads = StoreThreads(READERS)
        store = await threads.write(DuckDBStore, data_dir)
        try:
            monitors = await threads.read(store.list_monitors)
            services = Services.build(store, threads, DormantEngine(monitors))
            await services.load()
            await body(services, store, threads)
        finally:
            await threads.write(store.close)
            threads.shutdown()

    asyncio.run(main())


def test_a_restarted_server_answers_the_newest_pages_from_memory(tmp_path: Path) -> None:
    """At start the services read each monitor's newest checks back into memory: the newest
    pages come from there, equal to the store's, and a page reaching back past what was read
    comes from the store."""
    now = time.time_ns() // 1000
    store = DuckDBStore(tmp_path)
    ids = [store.create_monitor(parse_monitor({"name": f"m{k}", "type": "http", "url": "http://h/"})).id
           for k in range(3)]
    buf = ResultBuffer(8192)
    for age_s in [*range(20 * 86400, 14 * 86400, -3600), *range(3 * 3600, 0, -60)]:  # old rows, then recent
        for mid in ids:
            buf.append(mid, now - age_s * 1_000_000 + mid, age_s % 7 != 0, 900 + age_s % 500, 200, 0,
                       connect_us=300, ttfb_us=700 + mid)
    store.ingest(buf.flush())
    store.close()

    async def main(services: Services, store: DuckDBStore, threads: StoreThreads) -> None:
        assert services.history.stats()["recentChecks"]["depth"] == 1024
        old = now - 21 * 86400 * 1_000_000
        for mid in ids:
            for start, limit in [(None, 100), (None, 1), (old, 1000)]:
                items, oldest, more = await services.history.raw_json(1, mid, start, None, None, limit)
                rows, more2 = await threads.read(store.history_raw_json, mid, start, None, None, limit)
                assert msgspec.json.decode(b"[" + items + b"]") == [msgspec.json.decode(r[1]) for r in rows]
                assert (oldest, more) == (rows[-1][0], more2) and len(rows) == min(limit, 324)
        # the newest pages from memory; the one reaching 21 days back (past what start read: 11 days
        # of checks at the last day's rate) from the store
        assert services.history.raw_pages == {"memory": 6, "store": 3}

    restarted(tmp_path, main)


def test_hour_pages_from_memory_are_the_stores_pages(tmp_path: Path) -> None:
    """A month of hour buckets assembled from the rolled-up hours and the newest checks in
    memory (and the store for the part of an old hour a range starts in) equals the store's
    answer: aligned and unaligned ranges, the open hours, pages and cursors; a late row sends
    the pages that hold its hour to the store until the rollup recomputes it, and the memory
    follows the recomputed hour."""
    hour = 3_600_000_000
    now = time.time_ns() // 1000
    store = DuckDBStore(tmp_path)
    ids = [store.create_monitor(parse_monitor({"name": f"m{k}", "type": "http", "url": "http://h/"})).id
           for k in range(2)]
    rng = np.random.default_rng(5)
    buf = ResultBuffer(1 << 16)
    for age_s in range(40 * 86400, 0, -300):  # 40 days, a check every 5 minutes
        for mid in ids:
            buf.append(mid, now - age_s * 1_000_000 + mid, bool(rng.random() < 0.97), int(rng.integers(900, 90_000)),
                       200, 0, connect_us=300)
    store.ingest(buf.flush())
    store.rollup(now)
    store.close()

    async def main(services: Services, store: DuckDBStore, threads: StoreThreads) -> None:
        history = services.history

        async def same(mid: int, start: int | None, end: int | None, limit: int,
                       before: int | None = None) -> tuple[int | None, bool]:
            items, oldest, more = await history.hours_json(1, mid, start, end, before, limit)
            rows, more2 = await threads.read(store.history_hours_json, mid, start, end, before, limit)
            assert msgspec.json.decode(b"[" + items + b"]") == [msgspec.json.decode(r[1]) for r in rows]
            assert (oldest, more) == ((rows[-1][0] if rows else None), more2)
            return oldest, more

        # (ten minutes into an hour whatever the clock says: a range in an hour's last quarter
        # reads the next hour ahead, and the counts below must not depend on when this runs)
        month = (now - 30 * 86400 * 10**6) // hour * hour - 50 * 60 * 10**6
        for mid in ids:
            await same(mid, month, None, 1000)  # unaligned: the first hour in part, from the store
            await same(mid, month // hour * hour, None, 1000)
            await same(mid, None, None, 24)
            await same(mid, month + 7 * 10**6, now - 5 * 86400 * 10**6 + 17, 100)  # ends inside an old hour
            await same(mid, now - 20 * 60 * 10**6, None, 10)  # inside the open hour only
            oldest, more = await same(mid, month, None, 300)
            assert more
            await same(mid, month, None, 300, before=oldest)  # the next page, by its cursor
            await same(mid, None, None, 1)  # (the open hour only: the rolled-up hours cut to none)
            await same(mid, month, None, 2)  # (the open hour and one rolled-up hour of many)
        assert history.hour_pages == {"memory": 18, "store": 0}
        # blocks too big to read for every monitor at once are read for the one asked
        history.hour_rows.max_rows, kept = 8, history.hour_rows.max_rows
        reads = history.hour_rows.reads
        for mid in ids:
            await same(mid, month + 7 * hour + 11, None, 1000)
        assert history.hour_rows.reads == reads + 2
        # a block too big but an hour small enough: the hour is read for every monitor
        history.hour_rows.max_rows = 200  # (a quarter: 50 rows; a block holds 144, an hour 24)
        reads = history.hour_rows.reads
        for mid in ids:
            await same(mid, month + 13 * hour + 17, None, 1000)
        assert history.hour_rows.reads == reads + 1
        history.hour_rows.max_rows = kept
        # pages asked at the same time that miss the same block wait for one read of it
        reads = history.hour_rows.reads
        await asyncio.gather(*(same(mid, month + 19 * hour + 5, None, 1000) for mid in ids * 2))
        assert history.hour_rows.reads == reads + 1
        # a range starting in an hour's last quarter has the next hour read ahead, in the
        # background (blocks made too big: the hour is what a page would want)
        history.hour_rows.max_rows = 200
        late_in_hour = (month + 25 * hour) // hour * hour + 50 * 60 * 10**6
        reads, ahead = history.hour_rows.reads, history.hour_rows.ahead
        await same(ids[0], late_in_hour, None, 1000)
        while history._reads_all:
            await asyncio.sleep(0.01)
        assert (history.hour_rows.reads, history.hour_rows.ahead) == (reads + 1, ahead + 1)
        for mid in ids:  # (the next hour: kept already, for both monitors)
            await same(mid, late_in_hour + 20 * 60 * 10**6, None, 1000)
        assert history.hour_rows.reads == reads + 1
        history.hour_rows.max_rows = kept

        late = ResultBuffer(4)  # a late row in a rolled-up hour of ids[0] two days ago
        late.append(ids[0], now - 2 * 86400 * 10**6 + 1, False, 123_456_789, 500, 7)
        # and one in the hour the month's range starts in (whose checks memory kept, ``HourRows``)
        late.append(ids[0], month + 10**6, False, 98_765_432, 500, 7)
        assert history.hour_rows.rows > 0
        await threads.write(store.ingest, late.flush())
        await same(ids[0], month, None, 1000)
        await same(ids[0], now - 86400 * 10**6, None, 10)  # (the stale hour is outside: memory)
        assert history.hour_pages == {"memory": 30, "store": 1}
        await threads.write(store.rollup, time.time_ns() // 1000)  # recomputes it: a new generation
        await same(ids[0], month, None, 1000)  # (memory behind the store: from the store, and a refill)
        await history._refreshing
        hits, reads = history.hour_rows.hits, history.hour_rows.reads
        await same(ids[0], month, None, 1000)  # (the first hour's checks read again: a late row came)
        # (and read for every monitor at once, the block being small: ids[1]'s are kept)
        await same(ids[1], month, None, 1000)
        await same(ids[1], month, None, 1000)
        assert (history.hour_rows.hits, history.hour_rows.reads) == (hits + 2, reads + 1)
        assert history.hour_pages == {"memory": 33, "store": 2}
        upto = store.rollup_upto_us
        await threads.write(store.rollup, now + 2 * hour)  # the newest hours close: memory extends
        # (while memory fills them in, pages are answered as of the hours it holds, the newly
        # rolled-up ones aggregated raw: the store's answer all the same)
        assert history.hours.upto == upto < store.rollup_upto_us
        await same(ids[1], month, None, 1000)
        await same(ids[0], None, None, 24)
        await history._refreshing
        assert history.hours.upto == store.rollup_upto_us > upto
        await same(ids[1], month, None, 1000)
        await same(ids[0], None, None, 24)
        assert history.hour_pages == {"memory": 37, "store": 2}

    restarted(tmp_path, main)


def test_a_block_read_for_every_monitor_serves_each_of_them() -> None:
    """``HourRows.put_all``: each monitor's rows of the block, in the order read; a monitor
    without any is answered (no rows), not sent to the store; another version is not served."""
    from core.services.history import HourRows

    rows = HourRows(max_rows=100)
    monitors, ts = np.array([5, 3, 5, 9, 5]), np.array([10, 20, 30, 40, 50])
    rows.put_all(0, (1, 1, 1), (monitors, ts, np.array([1, 0, 1, 1, 0], dtype=np.int8), ts * 7))
    got = rows.get_slice(5, 0, (1, 1, 1))
    assert [c.tolist() for c in got] == [[10, 30, 50], [1, 1, 0], [70, 210, 350]]
    assert [c.tolist() for c in rows.get_slice(3, 0, (1, 1, 1))] == [[20], [0], [140]]
    assert [len(c) for c in rows.get_slice(4, 0, (1, 1, 1))] == [0, 0, 0]
    assert rows.get_slice(5, 0, (1, 2, 1)) is None and rows.get_slice(5, 6, (1, 1, 1)) is None
    assert rows.rows == 5
