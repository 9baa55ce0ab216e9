"""The scheduler's in-flight limit: capped by rate x latency only while the worker is CPU-bound."""

from __future__ import annotations

import pytest


def test_in_flight_cap_follows_rate_and_latency_only_when_cpu_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.engine.scheduler as scheduler_module
    from core.clock import FakeClock
    from core.engine.scheduler import Scheduler

    cpu = [0.0]
    monkeypatch.setattr(scheduler_module.time, "process_time", lambda: cpu[0])
    s = Scheduler(lambda batch, transitions: None, clock=FakeClock(), max_inflight=4096)
    s._latency_cap(0.0)  # the first window starts here

    def window(now: float, checks: int, mean_us: int, cpu_s: float) -> int | None:
        s.checks += checks
        s._latency_sum += checks * mean_us
        cpu[0] += cpu_s
        return s._latency_cap(now)

    assert window(0.1, 10_000, 1000, 0.02) is None  # CPU to spare: no cap (slow targets need many)
    assert window(0.2, 10_000, 1000, 0.09) == 200  # busy: 2 x 100k/s x 1 ms
    assert window(0.3, 10_000, 20_000, 0.09) == 200  # queueing inflates latency; the floor stays
    assert window(0.4, 10, 1000, 0.09) is None  # too few checks to judge
    s.limit, s.lag_ewma = 2000, 0.0
    s.checks += 10_000
    s._latency_sum += 10_000 * 20_000
    cpu[0] += 0.09
    s._adapt(0.5)  # far above the cap: shrinks toward it, never below it
    assert s.limit == 1500
