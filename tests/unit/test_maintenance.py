"""Maintenance windows with a fake clock: when they are (across DST changes), which monitors
they cover, and what the service refuses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.models import Maintenance, Principal
from core.services import Forbidden, Invalid, Services
from core.services.maintenance import occurrences
from core.storage.duckdb import DuckDBStore
from tests.services import run_services

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_a_daily_window_keeps_its_local_time_across_dst() -> None:
    nightly = Maintenance(name="n", schedule="0 3 * * *", duration=3600, timezone="Europe/Berlin")
    starts = [s for s, _ in occurrences(nightly, at(2026, 3, 27), at(2026, 3, 31))]
    assert starts == [at(2026, 3, 27, 2), at(2026, 3, 28, 2), at(2026, 3, 29, 1), at(2026, 3, 30, 1)]
    # 02:30 does not exist on 29 March: the next time that does; on 25 October it happens twice: once
    skipped = Maintenance(name="s", schedule="30 2 * * *", duration=3600, timezone="Europe/Berlin")
    assert [s for s, _ in occurrences(skipped, at(2026, 3, 29), at(2026, 3, 30))] == [at(2026, 3, 29, 1)]
    assert [s for s, _ in occurrences(skipped, at(2026, 10, 25), at(2026, 10, 26))] == [at(2026, 10, 25, 0, 30)]


def test_occurrences_overlapping_the_range_and_one_off_windows() -> None:
    weekly = Maintenance(name="w", schedule="0 22 * * 0", duration=4 * 3600, timezone="UTC")
    # a Sunday-night window still running at Monday 01:00 is returned for a range starting then
    assert occurrences(weekly, at(2026, 12, 7, 1), at(2026, 12, 7, 2)) == [(at(2026, 12, 6, 22), at(2026, 12, 7, 2))]
    once = Maintenance(name="o", starts_at="2026-12-24T02:00:00Z", ends_at="2026-12-24T04:00:00Z")
    assert occurrences(once, at(2026, 12, 24), at(2026, 12, 25)) == [(at(2026, 12, 24, 2), at(2026, 12, 24, 4))]
    assert occurrences(once, at(2026, 12, 24, 4), at(2026, 12, 25)) == []  # (the end is not in it)


run = run_services


def test_the_service_validates_covers_by_tag_and_says_what_is_active(tmp_path: Path) -> None:
    async def body(s: Services) -> None:
        db, _ = await s.monitors.create(1, {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432,
                                            "tags": ["db"]})
        web, _ = await s.monitors.create(1, {"name": "web", "type": "http", "url": "http://127.0.0.1/"})
        with pytest.raises(Invalid) as bad:
            await s.maintenance.create(1, {"name": "", "monitors": [999], "schedule": "every night",
                                           "duration": 5, "timezone": "Mars/Olympus", "colour": 1})
        assert {e.field for e in bad.value.errors or []} == {"name", "monitors", "schedule", "duration", "timezone",
                                                             "colour"}
        with pytest.raises(Invalid) as both:
            await s.maintenance.create(1, {"name": "x", "tags": ["db"], "startsAt": "2026-12-24T02:00:00Z",
                                           "endsAt": "2026-12-24T04:00:00Z", "schedule": "0 3 * * *"})
        assert [e.field for e in both.value.errors or []] == ["schedule"]
        with pytest.raises(Invalid) as naive:
            await s.maintenance.create(1, {"name": "x", "tags": ["db"], "startsAt": "2026-12-24T02:00:00",
                                           "endsAt": "2026-12-24T01:00:00Z"})
        assert {e.field for e in naive.value.errors or []} == {"startsAt"}
        with pytest.raises(Forbidden):
            await s.maintenance.create(Principal(account_id=1, role="viewer"), {"name": "x", "tags": ["db"],
                                                                               "startsAt": "2026-12-24T02:00:00Z",
                                                                               "endsAt": "2026-12-24T03:00:00Z"})
        nightly = await s.maintenance.create(1, {"name": "Nightly", "tags": ["db"], "schedule": "0 3 * * *",
                                                 "duration": 3600, "timezone": "Europe/Berlin"})
        once = await s.maintenance.create(1, {"name": "Move", "monitors": [web.id],
                                              "startsAt": "2026-12-24T03:00:00+01:00",
                                              "endsAt": "2026-12-24T05:00:00+01:00"})
        assert once.starts_at == "2026-12-24T02:00:00Z"
        assert s.maintenance.active(at(2026, 12, 24, 2, 30)) == {db.id: at(2026, 12, 24, 3),
                                                                 web.id: at(2026, 12, 24, 4)}
        assert s.maintenance.active(at(2026, 12, 24, 3, 30)) == {web.id: at(2026, 12, 24, 4)}
        assert s.maintenance.active(at(2026, 12, 24, 4)) == {}
        upcoming = s.maintenance.schedule_of(1, {db.id}, at(2026, 12, 24, 2, 30), dt.timedelta(days=2))
        assert [(w["name"], w["active"]) for w in upcoming] == [("Nightly", True), ("Nightly", False),
                                                                ("Nightly", False)]
        changed = await s.maintenance.update(1, nightly.id, {"duration": 7200})
        assert changed.duration == 7200 and changed.schedule == "0 3 * * *"
        await s.maintenance.delete(1, once.id)
        assert [w.name for w in s.maintenance.list(1)] == ["Nightly"]
        assert s.maintenance.list(2) == []

    run(tmp_path, body)
    # written through: another process reading the file sees the same windows
    store = DuckDBStore(tmp_path)
    try:
        assert [(w.name, w.duration, w.timezone) for w in store.list_maintenance()] == [
            ("Nightly", 7200, "Europe/Berlin")]
    finally:
        store.close()


def test_the_gate_holds_a_window_and_ends_it_with_what_the_engine_said(tmp_path: Path) -> None:
    from core.models import Transition
    from core.services.maintenance import MaintenanceGate

    async def body(s: Services) -> None:
        db, _ = await s.monitors.create(1, {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432,
                                            "tags": ["db"]})
        quiet, _ = await s.monitors.create(1, {"name": "q", "type": "tcp", "host": "127.0.0.1", "port": 1,
                                               "tags": ["db"], "paused": True})
        await s.maintenance.create(1, {"name": "Upgrade", "tags": ["db"], "startsAt": "2026-12-24T02:00:00Z",
                                       "endsAt": "2026-12-24T03:00:00Z"})
        live = s.monitors.engine.monitors
        live.set_status(db.id, "up")
        gate = MaintenanceGate(s.maintenance, live)
        assert gate.tick(at(2026, 12, 24, 1, 59)) == []
        entered = gate.tick(at(2026, 12, 24, 2))
        assert [(t.monitor_id, t.old, t.new) for t in entered] == [(db.id, "up", "maintenance")]  # (paused: left)
        assert gate.tick(at(2026, 12, 24, 2, 30)) == []
        # what the engine says meanwhile is held back, and remembered
        held = [Transition(db.id, 1, "up", "down", "refused")]
        assert gate.filter(held) == []
        other = [Transition(quiet.id, 2, "pending", "down", "x")]
        assert gate.filter(other) == other
        left = gate.tick(at(2026, 12, 24, 3))
        assert [(t.monitor_id, t.old, t.new) for t in left] == [(db.id, "maintenance", "down")]
        assert gate.filter(held) == held  # (outside a window, everything passes)
        # a restart inside a window: the stored status says so; the engine has said nothing yet
        live.set_status(db.id, "maintenance")
        restarted = MaintenanceGate(s.maintenance, live)
        restarted.load(live)
        assert restarted.tick(at(2026, 12, 24, 2, 45)) == []
        assert [(t.old, t.new) for t in restarted.tick(at(2026, 12, 24, 3))] == [("maintenance", "pending")]

    run(tmp_path, body)


def test_a_window_resolves_the_open_incident_silently_and_a_down_after_it_alerts_afresh(tmp_path: Path) -> None:
    from core.models import Transition
    from tests.services import store_with_hook

    store, monitor = store_with_hook(tmp_path, {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432})
    try:
        t0 = 1_800_000_000_000_000
        for i, (old, new) in enumerate([("up", "down"), ("down", "maintenance"), ("maintenance", "down")]):
            store.apply_transitions([Transition(monitor.id, t0 + i * 10**6, old, new, "refused")])
        incidents = store.query("SELECT id, resolved_at IS NOT NULL FROM incidents ORDER BY id")[1]
        assert [done for _, done in incidents] == [True, False]  # the window closed the first, a new one opened
        sent = store.query("SELECT incident_id, event FROM outbox ORDER BY id")[1]
        assert sent == [(incidents[0][0], "down"), (incidents[1][0], "down")]  # no "up" for the window
        store.apply_transitions([Transition(monitor.id, t0 + 9 * 10**6, "down", "maintenance", None),
                                 Transition(monitor.id, t0 + 10 * 10**6, "maintenance", "up", None)])
        assert store.query("SELECT count(*) FROM outbox")[1] == [(2,)]  # leaving up: nothing to say
        assert store.query(f"SELECT status FROM monitors WHERE id = {monitor.id}")[1] == [("up",)]
    finally:
        store.close()


def test_checks_made_in_maintenance_are_left_out_of_uptime_and_day_bars(tmp_path: Path) -> None:
    """Ingest notes the rows of monitors in a window (the gate says which); the uptime of any
    window and the status page's days leave them out, the checks themselves stay."""
    import time

    import numpy as np

    from core.main.ingest import Ingest
    from core.models import parse_monitor
    from core.services import Catalog
    from ext import ResultBuffer

    store = DuckDBStore(tmp_path)
    try:
        monitor = store.create_monitor(parse_monitor({"name": "db", "type": "tcp", "host": "127.0.0.1",
                                                      "port": 5432}))
        hour = (time.time_ns() // 1000 - 7200 * 10**6) // 3_600_000_000 * 3_600_000_000
        buf = ResultBuffer(64)
        for i in range(40):  # 20 good, then 20 failing while in maintenance
            buf.append(monitor.id, hour + i * 60 * 10**6, i < 20, 1000)
        batch = buf.flush()

        class Gate:
            inside = {monitor.id: "down"}

        ingest = Ingest(store, None, Catalog(), lambda: None)  # type: ignore[arg-type]
        ingest.gate = Gate()  # type: ignore[assignment]
        held = ingest._held(batch)
        assert held is not None and held[0].tolist() == [True] * 40
        # (in the real process only the window's rows are held; here: the last 20)
        mask = np.arange(40) >= 20
        store.ingest(batch, held=(mask, {"ids": [monitor.id], "hours_us": [hour], "checks": [20], "up": [0]}))
        assert store.query("SELECT count(*) FROM checks")[1] == [(40,)]
        found = store.uptime(monitor.id, [("24h", 86400)], time.time_ns() // 1000)["24h"]
        assert (found.checks, found.uptime) == (20, 1.0)
        now = dt.datetime.now(UTC).replace(tzinfo=None)
        store.rollup(time.time_ns() // 1000)
        days = store.daily_uptime([monitor.id], 2, now)[monitor.id]
        assert [(d[1], d[2]) for d in days] == [(20, 20)]
        # every monitor's rolled-up hours from several starts at once (``/metrics``' uptime)
        ids, checks, up = store.uptime_counts([hour - 3 * 3_600_000_000, hour, hour + 3_600_000_000],
                                              store.rollup_upto_us)
        assert ids.tolist() == [monitor.id] and checks.tolist() == [[20, 20, 0]] and up.tolist() == [[20, 20, 0]]
    finally:
        store.close()
