"""Cron heartbeats and agents' silence in the scheduler, driven by a fake clock: runs judged at
their local time across both DST changes, late runs recovering at once, agents down after
``interval + grace`` without a report and while over their thresholds ``forReports`` times."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo
from typing import Any

import numpy as np

from core.clock import FakeClock
from core.engine.scheduler import Scheduler
from core.models import ErrorCode, Monitor, Transition, parse_monitor

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


class Sink:
    def __init__(self) -> None:
        self.rows: list[tuple[int, bool, int, str | None]] = []  # (ts s, ok, error code, error)
        self.transitions: list[Transition] = []

    def __call__(self, batch: dict[str, Any], transitions: list[Transition]) -> None:
        texts = dict(zip(batch["error_rows"].tolist(), batch["error_texts"], strict=True))
        for i, (ts, ok, code) in enumerate(zip(batch["ts_us"].tolist(), batch["ok"].tolist(),
                                               batch["error_code"].tolist(), strict=True)):
            self.rows.append((ts // 1_000_000, bool(ok), int(code), texts.get(i)))
        self.transitions.extend(transitions)


def berlin(*parts: int) -> int:
    """A Berlin wall-clock time as Unix seconds."""
    return int(dt.datetime(*parts, tzinfo=BERLIN).timestamp())  # type: ignore[misc]


def local(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, BERLIN).strftime("%m-%d %H:%M")


def make(mid: int, **fields: Any) -> Monitor:
    m = parse_monitor({"name": f"m{mid}", **fields})
    m.id = mid
    return m


class Drive:
    """A scheduler on a running loop whose clock moves in steps, each followed by its checks."""

    def __init__(self, start_s: int) -> None:
        self.clock = FakeClock(0, start_s * 1_000_000)
        self.sink = Sink()
        self.s = Scheduler(self.sink, clock=self.clock)
        self.start_s = start_s

    @property
    def now(self) -> int:
        return self.clock.wall_us() // 1_000_000

    async def until(self, ts: int, step_s: int = 30) -> None:
        while self.now < ts:
            self.clock.advance(min(step_s, ts - self.now) * 1000)
            self.s.run_due()
            await asyncio.sleep(0)  # (the heartbeat checkers answer on the next loop turn)
            await asyncio.sleep(0)
        self.s.flush()


def test_a_daily_cron_heartbeat_is_judged_at_its_local_time_across_dst() -> None:
    """03:00 Europe/Berlin with 5 minutes' grace, from the Saturday before clocks go forward
    (28 March 2026) to the Tuesday: every run is judged at 03:05 local, an hour earlier in UTC
    after the change; a missing run is down naming it; a late ping recovers at once; an early
    one within the grace counts."""
    async def main() -> Sink:
        d = Drive(berlin(2026, 3, 27, 12))
        d.s.start(asyncio.get_running_loop())
        d.s.upsert(make(1, type="push", schedule="0 3 * * *", timezone="Europe/Berlin", grace=300))
        await d.until(berlin(2026, 3, 28, 3, 0, 30))
        d.s.push(1, d.now, True, None, 1500.0)  # Saturday: on time (and took 1.5 s)
        await d.until(berlin(2026, 3, 29, 3, 20))  # Sunday, the first day of summer time: no ping ...
        d.s.push(1, d.now, True, None, None)  # ... until 03:20: late, and up at once
        await d.until(berlin(2026, 3, 30, 2, 58))
        d.s.push(1, d.now, True, None, None)  # Monday: two minutes early, within the grace
        await d.until(berlin(2026, 3, 31, 12))
        await d.s.stop()
        return d.sink

    sink = asyncio.run(main())
    judged = [(local(ts), ok, code) for ts, ok, code, _ in sink.rows]
    assert judged == [
        ("03-28 03:05", True, 0),
        ("03-29 03:05", False, int(ErrorCode.NO_PUSH)),
        ("03-29 03:20", True, 0),  # the late ping, at once
        ("03-30 03:05", True, 0),
        ("03-31 03:05", False, int(ErrorCode.NO_PUSH)),
    ]
    assert sink.rows[0][0] == berlin(2026, 3, 28, 3, 5) and sink.rows[1][0] == berlin(2026, 3, 29, 3, 5)
    assert sink.rows[1][0] - sink.rows[0][0] == 23 * 3600  # the short day
    assert sink.rows[1][3] == "the run due at 2026-03-29 03:00 CEST did not ping by 03:05:00"
    assert [(t.old, t.new) for t in sink.transitions] == [("pending", "up"), ("up", "down"), ("down", "up"),
                                                          ("up", "down")]


def test_a_run_at_a_repeated_local_time_is_judged_once() -> None:
    """02:30 happens twice on 25 October 2026 in Berlin; cron runs the job once, so it is
    due once (at the first), and the run at 02:30 the next day is the next one."""
    async def main() -> Sink:
        d = Drive(berlin(2026, 10, 24, 12))
        d.s.start(asyncio.get_running_loop())
        d.s.upsert(make(1, type="push", schedule="30 2 * * *", timezone="Europe/Berlin", grace=60))
        await d.until(berlin(2026, 10, 26, 12), step_s=20)
        await d.s.stop()
        return d.sink

    sink = asyncio.run(main())
    assert [local(ts) for ts, *_ in sink.rows] == ["10-25 02:31", "10-26 02:31"]
    assert sink.rows[1][0] - sink.rows[0][0] == 25 * 3600  # the long day, once


def test_a_watch_that_began_inside_a_runs_window_records_nothing_for_it() -> None:
    """A server started at 03:02 for a 03:00 job with 5 minutes' grace cannot know whether
    the job pinged at 03:01: that run is not judged; the next one is."""
    async def main() -> Sink:
        d = Drive(berlin(2026, 5, 4, 3, 2))
        d.s.start(asyncio.get_running_loop())
        d.s.upsert(make(1, type="push", schedule="0 3 * * *", timezone="Europe/Berlin", grace=300))
        await d.until(berlin(2026, 5, 5, 4))
        await d.s.stop()
        return d.sink

    sink = asyncio.run(main())
    assert [(local(ts), ok) for ts, ok, *_ in sink.rows] == [("05-05 03:05", False)]


def test_an_agent_is_down_after_its_silence_and_over_its_thresholds_for_reports_times() -> None:
    async def main() -> tuple[Sink, int]:
        d = Drive(1_800_000_000)
        t0 = d.now
        d.s.start(asyncio.get_running_loop())
        d.s.upsert(make(7, type="agent", interval=10, grace=5, forReports=2, thresholds={"cpuPercent": 90}))
        await d.until(t0 + 34, step_s=1)  # silent from the start: down at +15, again at +25
        d.s.report(7, d.now, True, None)  # +34: back
        await d.until(t0 + 40, step_s=1)
        d.s.report(7, d.now, False, "cpu at 97% > 90%")  # one breach: not yet down
        await d.until(t0 + 45, step_s=1)
        d.s.report(7, d.now, False, "cpu at 98% > 90%")  # the second in a row: down
        await d.until(t0 + 48, step_s=1)
        d.s.report(7, d.now, True, None)
        await d.until(t0 + 70, step_s=1)  # silent again after +48: down at +63
        await d.s.stop()
        return d.sink, t0

    sink, t0 = asyncio.run(main())
    rows = [(ts - t0, ok, code) for ts, ok, code, _ in sink.rows]
    silent, breach = int(ErrorCode.AGENT_SILENT), int(ErrorCode.AGENT_THRESHOLD)
    assert rows == [(15, False, silent), (25, False, silent), (34, True, 0), (40, False, breach),
                    (45, False, breach), (48, True, 0), (63, False, silent)]
    assert sink.rows[0][3] == "no report from the agent for 15 s (none since the server started)"
    assert sink.rows[-1][3] == "no report from the agent for 15 s"
    changes = [(t.ts_us // 1_000_000 - t0, t.new, t.cause) for t in sink.transitions]
    assert changes == [(15, "down", sink.rows[0][3]), (34, "up", None), (45, "down", "cpu at 98% > 90%"),
                       (48, "up", None), (63, "down", "no report from the agent for 15 s")]
    assert np.all(np.diff([ts for ts, *_ in sink.rows]) >= 0)


def test_a_resumed_agent_gets_its_full_allowance_again() -> None:
    """Reports are ignored while an agent monitor is paused; resumed a day later, it is
    watched from then on, not judged silent at once for the day it was paused."""
    async def main() -> tuple[Sink, int]:
        d = Drive(1_800_000_000)
        t0 = d.now
        d.s.start(asyncio.get_running_loop())
        m = make(7, type="agent", interval=10, grace=5)
        d.s.upsert(m)
        d.s.report(7, d.now, True, None)
        await d.until(t0 + 5, step_s=1)
        paused = make(7, type="agent", interval=10, grace=5, paused=True)
        paused.status = "up"
        d.s.upsert(paused)
        await d.until(t0 + 86400, step_s=600)
        resumed = make(7, type="agent", interval=10, grace=5)
        resumed.status = "up"
        d.s.upsert(resumed)
        await d.until(t0 + 86400 + 14, step_s=1)
        d.s.report(7, d.now, True, None)
        await d.until(t0 + 86400 + 20, step_s=1)
        await d.s.stop()
        return d.sink, t0

    sink, t0 = asyncio.run(main())
    assert [(ts - t0, ok) for ts, ok, *_ in sink.rows] == [(0, True), (86414, True)]
