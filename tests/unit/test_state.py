"""The pure status machine: retries, recovery threshold, transitions with causes."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from core.state import MonitorState, observe


def feed(state: MonitorState, outcomes: str, retries: int = 0, recovery: int = 1) -> list[tuple[str, str]]:
    out = []
    for i, ch in enumerate(outcomes):
        t = observe(state, 7, ch == "+", i, retries, recovery, None if ch == "+" else f"fail {i}")
        if t is not None:
            out.append((t.old, t.new))
    return out


def test_first_success_is_up_first_failure_down_without_retries() -> None:
    assert feed(MonitorState(), "+") == [("pending", "up")]
    assert feed(MonitorState(), "-") == [("pending", "down")]


def test_retries_delay_down_and_recovery_threshold_delays_up() -> None:
    s = MonitorState()
    assert feed(s, "+--", retries=2) == [("pending", "up")]
    assert s.status == "up"
    assert feed(s, "-", retries=2) == [("up", "down")]
    assert feed(s, "++", recovery=3) == []
    assert feed(s, "+", recovery=3) == [("down", "up")]


def test_a_success_resets_the_failure_count() -> None:
    s = MonitorState("up")
    assert feed(s, "-+-+-+", retries=1) == []
    assert s.status == "up"


def test_cause_is_the_failing_checks_error() -> None:
    s = MonitorState("up")
    t = observe(s, 3, False, 99, 0, 1, "connection refused")
    assert t is not None and t.monitor_id == 3 and t.ts_us == 99 and t.cause == "connection refused"


@given(st.text(alphabet="+-", max_size=60), st.integers(0, 4), st.integers(1, 4))
def test_transitions_match_a_brute_force_model(outcomes: str, retries: int, recovery: int) -> None:
    s = MonitorState()
    transitions = feed(s, outcomes, retries, recovery)
    for (_, new), (old, _) in itertools.pairwise(transitions):
        assert new == old  # each transition starts where the previous ended
    # Model: look back over the whole history at every step.
    status, expected = "pending", []
    for i in range(1, len(outcomes) + 1):
        seen = outcomes[:i]
        fails = len(seen) - len(seen.rstrip("-"))
        oks = len(seen) - len(seen.rstrip("+"))
        new = status
        if seen[-1] == "-" and status != "down" and fails > retries:
            new = "down"
        elif seen[-1] == "+" and (status == "pending" or (status == "down" and oks >= recovery)):
            new = "up"
        if new != status:
            expected.append((status, new))
            status = new
    assert transitions == expected
    assert s.status == status
