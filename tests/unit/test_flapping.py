"""Flapping with a fake clock: the change that crosses the threshold starts a spell (one
"flapping" message, quiet transitions from then on), a window without a change settles it."""

from __future__ import annotations

from pathlib import Path

from core.models import Transition
from core.services.flapping import FlapGuard

S = 1_000_000  # µs


def flip(monitor: int, at_s: int, n: int) -> Transition:
    old, new = ("up", "down") if n % 2 == 0 else ("down", "up")
    return Transition(monitor, at_s * S, old, new, "refused" if new == "down" else None)


def test_a_spell_starts_past_the_threshold_and_settles_after_a_quiet_window() -> None:
    guard = FlapGuard(changes=5, window_s=600)
    out = guard.observe([flip(1, 10 * i, i) for i in range(5)])
    assert [t.quiet for t in out] == [False] * 5 and guard.tick(45 * S) == []  # five changes: not yet
    sixth = guard.observe([flip(1, 50, 5)])
    assert [t.quiet for t in sixth] == [True] and guard.flapping(1)
    assert guard.tick(51 * S) == [(1, "flapping", 50 * S, 6, "up")]
    later = guard.observe([flip(1, 60, 6), flip(1, 70, 7)])
    assert [t.quiet for t in later] == [True, True]  # (stored, not announced)
    assert guard.tick(600 * S) == []  # (the last change was at 70 s)
    assert guard.tick(670 * S) == [(1, "settled", 50 * S, 8, "up")]
    assert not guard.flapping(1)
    # after settling, it takes more than five changes in a window again
    again = guard.observe([flip(1, 700 + i, i) for i in range(5)])
    assert not any(t.quiet for t in again)


def test_slow_changes_and_other_transitions_do_not_count() -> None:
    guard = FlapGuard(changes=5, window_s=600)
    slow = guard.observe([flip(2, 200 * i, i) for i in range(10)])  # every 200 s: at most 3 in a window
    assert not any(t.quiet for t in slow) and guard.tick(3000 * S) == []
    other = [Transition(3, 1, "pending", "up"), Transition(3, 2, "up", "maintenance"),
             Transition(3, 3, "maintenance", "down")] * 4
    assert not any(t.quiet for t in guard.observe(other)) and not guard.flapping(3)


def test_quiet_transitions_are_stored_without_messages_and_a_spell_is_announced_once(tmp_path: Path) -> None:
    from tests.services import store_with_hook

    store, monitor = store_with_hook(tmp_path, {"name": "m", "type": "tcp", "host": "127.0.0.1", "port": 1})
    try:
        quiet = [Transition(monitor.id, i * S, *(("up", "down") if i % 2 == 0 else ("down", "up")), None, True)
                 for i in range(4)]
        store.apply_transitions(quiet)
        assert store.query("SELECT count(*) FROM incidents")[1] == [(2,)]  # (the history is kept)
        assert store.query("SELECT count(*) FROM outbox")[1] == [(0,)]
        for _ in range(2):  # (a replay queues nothing twice)
            store.queue_flap_events([(monitor.id, "flapping", 0, 6, "down")])
        store.queue_flap_events([(monitor.id, "settled", 0, 9, "up")])
        rows = store.query("SELECT event, incident_id, context FROM outbox ORDER BY id")[1]
        assert [(r[0], r[1]) for r in rows] == [("flapping", None), ("settled", None)]
        assert '"changes":9' in rows[1][2] and '"status":"up"' in rows[1][2]
    finally:
        store.close()
