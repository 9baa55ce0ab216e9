"""Per-monitor status machine. Pure: no I/O, no clock; results in, transitions out.

Rules (the same as Uptime Kuma's "retries" and Gatus' thresholds):

- ``pending`` is a new (or resumed) monitor's status until its first result. A success makes
  it ``up`` at once; it becomes ``down`` after ``retries + 1`` consecutive failures.
- ``up`` becomes ``down`` after ``retries + 1`` consecutive failures. While retrying it stays
  ``up`` (a single blip is not an outage).
- ``down`` becomes ``up`` after ``recovery_threshold`` consecutive successes.

Every status change is returned as a ``Transition`` carrying the failing check's error as its
cause; the store persists it and opens (``-> down``) or resolves (``down -> up``) an incident.
"""

from __future__ import annotations

from core.models import Transition

__all__ = ["MonitorState", "observe"]


_STATUSES = {"pending": "pending", "up": "up", "down": "down"}


class MonitorState:
    """The mutable per-monitor counters the machine needs between results."""

    __slots__ = ("failures", "status", "successes")

    def __init__(self, status: str = "pending") -> None:
        self.status = _STATUSES.get(status, "pending")  # (the literal: not a decoded copy a monitor)
        self.failures = 0
        self.successes = 0


def observe(
    state: MonitorState,
    monitor_id: int,
    ok: bool,
    ts_us: int,
    retries: int,
    recovery_threshold: int,
    cause: str | None = None,
) -> Transition | None:
    """Feed one result; mutates ``state`` and returns the transition it caused, if any."""
    if ok:
        state.failures = 0
        state.successes += 1
        if state.status == "pending" or (
            state.status == "down" and state.successes >= recovery_threshold
        ):
            old, state.status = state.status, "up"
            return Transition(monitor_id, ts_us, old, "up", None)
        return None
    state.successes = 0
    state.failures += 1
    if state.status != "down" and state.failures > retries:
        old, state.status = state.status, "down"
        return Transition(monitor_id, ts_us, old, "down", cause)
    return None
