"""The in-memory recent window (heartbeat bars, 24 h uptime) against a plain model: for any
batches of checks, each monitor's bars are its last ``BARS`` checks in time order and its
counts are those of the last ``HOURS`` hours."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.services.recent import BARS, HOUR_US, HOURS, RecentWindow, decode_latency, encode_latency

START = 1_800_000_000 * 10**6


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 3 * HOUR_US), st.booleans()), max_size=80),
                max_size=12))
def test_bars_and_hours_match_a_model(batches: list[list[tuple[int, int, bool]]]) -> None:
    window = RecentWindow()
    seen: list[tuple[int, int, bool, int]] = []
    clock = START
    for batch in batches:
        # a batch holds later checks than the one before (one worker per monitor, in order)
        # (and never two checks of one monitor at the same microsecond: its checks run in turn)
        rows = list({(m, clock + dt): (m, clock + dt, ok) for m, dt, ok in batch}.values())
        if not rows:
            continue
        clock = max(ts for _, ts, _ in rows) + 1
        lat = list(range(len(seen), len(seen) + len(rows)))
        window.add(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                   np.array([r[2] for r in rows], dtype=np.uint8), np.array(lat))
        seen += [(m, ts, ok, latency) for (m, ts, ok), latency in zip(rows, lat, strict=True)]
    newest_hour = max((ts for _, ts, _, _ in seen), default=0) // HOUR_US
    for monitor in range(1, 7):
        mine = sorted((ts, ok, lat) for m, ts, ok, lat in seen if m == monitor)
        assert window.bars(monitor) == [(ok, lat) for _, ok, lat in mine[-BARS:]]
        recent = [ok for ts, ok, _ in mine if ts // HOUR_US > newest_hour - HOURS]
        assert window.uptime(monitor) == (len(recent), sum(recent))
    for hour in (START, START + HOUR_US, START + 3 * HOUR_US):  # every monitor at once, as one by one
        checks, up = window.since_all(hour)
        for monitor in range(1, 7):
            one = window.since(monitor, hour)
            assert (int(checks[monitor]), int(up[monitor])) == one if monitor < len(checks) else one == (0, 0)


def test_hours_leave_the_window_and_deleted_monitors_are_forgotten() -> None:
    window = RecentWindow()
    window.add(np.array([7, 7]), np.array([START, START + 1]), np.array([1, 0]), np.array([5, 6]))
    assert window.uptime(7) == (2, 1)
    window.add(np.array([8]), np.array([START + HOURS * HOUR_US]), np.array([1]), np.array([1]))
    assert window.uptime(7) == (0, 0)  # a day later: its hours left the window
    assert len(window.bars(7)) == 2  # (bars are the last checks, however old)
    window.forget(7)
    assert window.bars(7) == [] and window.bars(10_000) == [] and window.uptime(10_000) == (0, 0)


def test_checks_held_for_maintenance_join_the_bars_but_not_the_counts() -> None:
    window = RecentWindow()
    window.add(np.array([4, 4, 4]), np.array([START, START + 1, START + 2]), np.array([1, 0, 0]),
               np.array([1, 2, 3]), held=np.array([False, True, True]))
    assert len(window.bars(4)) == 3 and window.uptime(4) == (1, 1)
    assert window.since(4, START) == (1, 1)


def test_hourly_counts_saturate_instead_of_wrapping() -> None:
    """Counts are 16-bit: a monitor checked more than 65,535 times in an hour reads as
    65,535, never as a small number after a wrap."""
    window = RecentWindow()
    window.load_hours(np.array([3, 3]), np.array([START, START]), np.array([60_000, 10]), np.array([59_000, 10]))
    assert window.uptime(3) == (60_010, 59_010)
    n = 6_000
    window.add(np.full(n, 3), START + np.arange(n), np.ones(n, dtype=np.uint8), np.arange(n))
    # (failed checks are counted, up = checks - failed: 1,000 of the 65,535 counted failed)
    assert window.uptime(3) == (65_535, 64_535) and len(window.bars(3)) == BARS
    checks, up = window.since_all(START)  # (its wide row and its failures, all monitors at once)
    assert (checks[3], up[3]) == (65_535, 64_535) and checks.sum() == 65_535


def test_latencies_are_kept_exact_below_3_ms_and_within_0_017_percent_and_a_microsecond_above() -> None:
    small = np.arange(0, 2_999)
    assert (decode_latency(encode_latency(small)) == small).all()
    large = np.r_[np.geomspace(2_999, 2**31 - 1, 50_000).astype(np.int64), 2**31 - 1]
    back = decode_latency(encode_latency(large))
    assert (np.abs(back - large) <= large * 0.00017 + 1).all()
    assert decode_latency(encode_latency(np.array([2**40, -5]))).tolist() == [2**31 - 1, 0]  # (clipped)
    window = RecentWindow()
    window.add(np.array([2, 2]), np.array([START, START + 1]), np.array([0, 1]), np.array([61_234_567, 1_500]))
    (ok1, slow), (ok2, fast) = window.bars(2)
    assert (ok1, ok2, fast) == (False, True, 1_500) and abs(slow - 61_234_567) <= 61_234_567 * 0.00017


def test_failure_rows_are_held_only_while_failures_are_in_the_window() -> None:
    window = RecentWindow()
    window.add(np.array([5, 5, 6]), np.array([START, START + 1, START]), np.array([0, 1, 1]), np.array([1, 1, 1]))
    assert window.uptime(5) == (2, 1) and window.uptime(6) == (1, 1)
    assert int((window._fail_of >= 0).sum()) == 1  # (only the monitor that failed has a row)
    later = START + (HOURS - 1) * HOUR_US
    window.add(np.array([7]), np.array([later]), np.array([0]), np.array([1]))
    assert window.uptime(5) == (2, 1) and int((window._fail_of >= 0).sum()) == 2
    window.add(np.array([6]), np.array([later + HOUR_US]), np.array([1]), np.array([1]))
    # monitor 5's hour left the window: its row was given back (and is what 8 gets)
    assert window.uptime(5) == (0, 0) and int((window._fail_of >= 0).sum()) == 1
    window.add(np.array([8, 8]), np.array([later + HOUR_US, later + HOUR_US + 1]), np.array([0, 0]), np.array([1, 1]))
    assert window.uptime(8) == (2, 0) and window.uptime(7) == (1, 0) and len(window._fail_of) == 64
    window.forget(8)
    assert window.uptime(8) == (0, 0) and int((window._fail_of >= 0).sum()) == 1
    window.add(np.array([8]), np.array([later + HOUR_US + 2]), np.array([1]), np.array([1]))
    assert window.uptime(8) == (1, 1) and window.since(7, later) == (1, 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 30 * HOUR_US), st.integers(1, 400), st.booleans()),
                max_size=25))
def test_monitors_checked_more_than_255_times_an_hour_count_exactly(bursts: list[tuple[int, int, int, bool]]) -> None:
    """Checks an hour are a byte a monitor until one hour holds more than 255; the counts,
    up and the checks an hour of all monitors stay exact through the switch and back."""
    window = RecentWindow()
    seen: list[tuple[int, int, bool]] = []
    clock = START
    for monitor, dt, count, ok in sorted(bursts, key=lambda b: b[1]):
        at = max(clock, START + dt)
        ts = at + np.arange(count)
        clock = at + count
        window.add(np.full(count, monitor), ts, np.full(count, int(ok)), np.ones(count, dtype=np.int64))
        seen += [(monitor, int(t), ok) for t in ts]
    newest_hour = max((ts for _, ts, _ in seen), default=0) // HOUR_US
    recent = [(m, ok) for m, ts, ok in seen if ts // HOUR_US > newest_hour - HOURS]
    for monitor in range(1, 4):
        mine = [ok for m, ok in recent if m == monitor]
        assert window.uptime(monitor) == (len(mine), sum(mine))
    assert window.checks_per_hour() == len(recent) / HOURS


def test_a_busy_monitor_counts_in_a_wide_row_until_its_busy_hours_leave() -> None:
    window = RecentWindow()
    n = 3_600  # (a check a second for an hour)
    window.add(np.r_[np.full(n, 9), [10]], START + np.arange(n + 1), np.ones(n + 1, dtype=np.uint8),
               np.ones(n + 1, dtype=np.int64))
    assert window.uptime(9) == (n, n) and window.uptime(10) == (1, 1)
    assert window._checks.dtype == np.uint8 and int((window._wide_of >= 0).sum()) == 1
    assert window.since(9, START) == (n, n) and window.checks_per_hour() == (n + 1) / HOURS
    next_hour = START + HOUR_US  # (100 more the next hour: kept when the busy hour leaves)
    window.add(np.full(100, 9), next_hour + np.arange(100), np.ones(100, dtype=np.uint8), np.ones(100, dtype=np.int64))
    quiet = START + HOURS * HOUR_US  # (a day later: the busy hour left the window)
    window.add(np.array([9]), np.array([quiet]), np.array([0]), np.array([1]))
    assert window.uptime(9) == (101, 100) and int((window._wide_of >= 0).sum()) == 0
    assert window.checks_per_hour() == 101 / HOURS
    window.add(np.full(300, 11), quiet + 1 + np.arange(300), np.ones(300, dtype=np.uint8), np.ones(300, dtype=np.int64))
    assert window.uptime(11) == (300, 300) and int((window._wide_of >= 0).sum()) == 1
    window.forget(11)
    assert window.uptime(11) == (0, 0) and int((window._wide_of >= 0).sum()) == 0
    assert window.checks_per_hour() == 101 / HOURS
