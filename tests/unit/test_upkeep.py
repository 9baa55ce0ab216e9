"""The upkeep of the big tables on a real file: closed days of ``checks`` rewritten sorted by
``(monitor_id, ts)`` with every row kept (also when the process is killed in the middle of a
rewrite), tiers dropped past their retention and never shown past it even before they are,
and the retention setting checked and kept across restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.models.retention import DEFAULT_RETENTION, Retention, RetentionError, parse_retention
from core.storage.duckdb import DuckDBStore
from core.storage.duckdb.upkeep import DAY_US
from ext import ResultBuffer

HOUR = 3600 * 10**6
ROOT = Path(__file__).resolve().parents[2]
FINGERPRINT = ("SELECT count(*), count(DISTINCT (monitor_id, ts)), sum(monitor_id), sum(epoch_us(ts)), sum(latency_us)"
               " FROM checks")


def fill(store: DuckDBStore, start_us: int, hours: int, monitors: int = 50, every_s: int = 60) -> int:
    """Checks of ``monitors`` monitors every ``every_s`` over ``hours`` from ``start_us``, in
    arrival order (every monitor interleaved, as the engine writes them)."""
    n = 0
    step = every_s * 10**6
    for h in range(hours):
        buf = ResultBuffer(monitors * (3600 // every_s))
        for t in range(start_us + h * HOUR, start_us + (h + 1) * HOUR, step):
            for m in range(1, monitors + 1):
                buf.append(m, t + m, m % 7 != 0, 1000 + m, 200, 0)
                n += 1
        store.ingest(buf.flush())
    return n


def test_closed_days_are_rewritten_sorted_and_keep_every_row(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path)
    try:
        today = time.time_ns() // 1000 // DAY_US * DAY_US
        fill(store, today - 2 * DAY_US, 48 + 3)  # two closed days and three hours of today
        before = store.query(FINGERPRINT)[1]
        assert store.compact(time.time_ns() // 1000) == 2
        assert store.compact(time.time_ns() // 1000) == 0  # (done once)
        assert store.query(FINGERPRINT)[1] == before
        day = store.con.execute(f"""SELECT monitor_id, epoch_us(ts) FROM checks
                                    WHERE ts < make_timestamp({today - DAY_US}) ORDER BY rowid""").fetchall()
        assert day == sorted(day) and len(day) == 50 * 60 * 24
        open_day = store.con.execute(f"SELECT monitor_id FROM checks WHERE ts >= make_timestamp({today})"
                                     " ORDER BY rowid").fetchall()
        assert open_day != sorted(open_day)  # (today is left in arrival order)
        late = ResultBuffer(1)
        late.append(3, today - DAY_US + 5, False, 9, 0, 3)  # a late row into a rewritten day stays
        store.ingest(late.flush())
        rows, _ = store.history_raw(3, today - DAY_US, today - DAY_US + 10, None, 10)
        assert [r[0] for r in rows] == [today - DAY_US + 5, today - DAY_US + 3]
    finally:
        store.close()
    again = DuckDBStore(tmp_path)
    try:
        assert again.compacted_upto_us == today  # (kept: the next start does not redo it)
    finally:
        again.close()


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from core.storage.duckdb import DuckDBStore
store = DuckDBStore({data!r})
print("compacting", flush=True)
store.compact(time.time_ns() // 1000)
print("done", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.4])
def test_a_kill_in_the_middle_of_a_rewrite_loses_and_doubles_nothing(tmp_path: Path, delay: float) -> None:
    store = DuckDBStore(tmp_path)
    today = time.time_ns() // 1000 // DAY_US * DAY_US
    fill(store, today - 3 * DAY_US, 72, monitors=200)
    before = store.query(FINGERPRINT)[1]
    store.close()
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), data=str(tmp_path))],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "compacting"
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    store = DuckDBStore(tmp_path)
    try:
        assert store.query(FINGERPRINT)[1] == before  # every row once, rewritten or not
        store.compact(time.time_ns() // 1000)  # (and the rest is done by the next round)
        assert store.compacted_upto_us == today and store.query(FINGERPRINT)[1] == before
    finally:
        store.close()


def test_retention_drops_whole_days_and_reads_never_reach_past_it(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path)
    try:
        now = time.time_ns() // 1000
        today = now // DAY_US * DAY_US
        fill(store, today - 4 * DAY_US, 4 * 24, monitors=3, every_s=600)
        store.rollup(now, grace_us=0)
        store.set_retention(parse_retention("raw=2d,hourly=3d"))
        raw_floor, hourly_floor = now - 2 * DAY_US, now - 3 * DAY_US
        # before the upkeep: the rows stand, but no answer reaches past the tiers
        rows, _ = store.history_raw(1, None, None, None, 10_000)
        assert rows and min(r[0] for r in rows) >= raw_floor
        hours, _ = store.history_hours(1, None, None, None, 10_000)
        assert hours and min(h[0] for h in hours) >= hourly_floor - HOUR
        done = store.upkeep(now)
        assert done["expired"] > 0
        oldest = store.query("SELECT epoch_us(min(ts)) FROM checks")[1][0][0]
        assert oldest // DAY_US == raw_floor // DAY_US  # (the day the retention reaches into stays whole)
        assert store.query("SELECT epoch_us(min(hour)) FROM checks_hourly")[1][0][0] == hourly_floor // DAY_US * DAY_US
        assert store.upkeep(now)["expired"] == 0
    finally:
        store.close()
    again = DuckDBStore(tmp_path)
    try:
        assert again.retention == parse_retention("raw=2d,hourly=3d")  # kept across restarts
    finally:
        again.close()


@pytest.mark.parametrize(("text", "field"), [
    ("raw=12h", "raw"), ("raw=3y", "hourly"), ("hourly=1d", "hourly"), ("daily=1y", "daily"), ("raw=forever", "hourly"),
    ("raw=90", "raw"), ("weekly=1d", "retention"), ("raw=1d,raw=2d", "raw"), ("raw=1000000y", "raw"), ("", "retention"),
])
def test_retention_settings_that_break_a_rule_are_refused_naming_the_tier(text: str, field: str) -> None:
    with pytest.raises(RetentionError) as refused:
        parse_retention(text)
    assert refused.value.field == field


def test_retention_is_written_as_it_is_read() -> None:
    assert DEFAULT_RETENTION.text() == {"raw": "90d", "hourly": "2y", "daily": "forever"}
    assert parse_retention("raw=30d, daily=10y").text() == {"raw": "30d", "hourly": "2y", "daily": "10y"}
    assert parse_retention("raw=2w,hourly=forever") == Retention(raw=14 * 86400, hourly=None, daily=None)


def test_days_past_the_hourly_tier_are_answered_from_daily_rollups(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path)
    try:
        now = time.time_ns() // 1000
        today = now // DAY_US * DAY_US
        fill(store, today - 6 * DAY_US, 6 * 24, monitors=3, every_s=300)
        store.rollup(now, grace_us=0)
        late = ResultBuffer(1)
        late.append(1, today - 5 * DAY_US + 7, True, 10**6, 200, 0)  # (a late row in a rolled-up hour)
        assert store.upkeep(now)["days"] == 6
        store.ingest(late.flush())
        store.rollup(now, grace_us=0)  # (its hour is rolled up again, and its day is merged again)
        assert store.upkeep(now)["days"] == 1
        expected = {d: c for d, c in store.con.execute(
            f"""SELECT epoch_us(date_trunc('day', ts)), count(*) FROM checks WHERE monitor_id = 1
                AND ts < make_timestamp({today}) GROUP BY 1""").fetchall()}
        store.set_retention(parse_retention("raw=3d,hourly=3d"))
        assert store.upkeep(now)["expired"] > 0
        assert store.query(f"SELECT count(*) FROM checks_hourly WHERE hour < make_timestamp({today - 3 * DAY_US})"
                           )[1] == [(0,)]  # (the hours of the older days are gone)
        days, more = store.history_buckets(1, 86400, None, today - 1, None, 30)
        assert {d[0]: d[1] for d in days} == expected and not more  # every day, from one tier or the other
        merged_again = next(d for d in days if d[0] == today - 5 * DAY_US)
        assert merged_again[4] <= merged_again[6][0] <= merged_again[5] == 10**6  # (the late row's is the max)
        store.set_retention(parse_retention("raw=3d,hourly=3d,daily=4d"))
        store.upkeep(now)
        days, _ = store.history_buckets(1, 86400, None, today - 1, None, 30)
        assert min(d[0] for d in days) >= (now - 4 * DAY_US) // DAY_US * DAY_US - DAY_US
    finally:
        store.close()


def test_rolled_up_months_of_hours_are_rewritten_sorted_and_answer_the_same(tmp_path: Path) -> None:
    from core.storage.duckdb.upkeep import _month_start

    store = DuckDBStore(tmp_path)
    this_month = _month_start(time.time_ns() // 1000)
    last_month = _month_start(this_month - DAY_US)
    try:
        fill(store, this_month - 40 * DAY_US, 40 * 24 + 2, monitors=5, every_s=600)
        store.rollup(this_month + 3 * HOUR)  # (a fixed "now": the last month closed, whenever this runs)
        hours = ("SELECT count(*), sum(monitor_id * checks), sum(epoch_us(hour) // 1000000 * up), sum(p99)"
                 " FROM checks_hourly")
        before = store.query(hours)[1]
        answers = [store.history_hours_json(m, None, None, None, 1000) for m in (1, 3, 5)]
        assert store.compact_hours() == 2  # the month the rows begin in, and last month
        assert store.compact_hours() == 0 and store.hours_compacted_upto_us == this_month
        assert store.query(hours)[1] == before
        assert [store.history_hours_json(m, None, None, None, 1000) for m in (1, 3, 5)] == answers
        month = store.con.execute(f"""SELECT monitor_id, epoch_us(hour) FROM checks_hourly
                                      WHERE hour >= make_timestamp({last_month})
                                        AND hour < make_timestamp({this_month}) ORDER BY rowid""").fetchall()
        assert month == sorted(month) and len(month) == 5 * 24 * (this_month - last_month) // DAY_US
    finally:
        store.close()
    again = DuckDBStore(tmp_path)
    try:
        assert again.hours_compacted_upto_us == this_month and again.compact_hours() == 0
    finally:
        again.close()
