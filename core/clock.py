"""Clocks. The scheduler reads time only through a ``Clock`` so tests can drive it."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "MonotonicClock"]


class Clock(Protocol):
    def monotonic_ms(self) -> int:
        """Milliseconds on a clock that never goes backwards (scheduling)."""
        ...

    def wall_us(self) -> int:
        """Microseconds since the Unix epoch, UTC (result timestamps)."""
        ...


class MonotonicClock:
    def __init__(self) -> None:
        #: ``time.monotonic_ns()`` at this clock's zero (the compiled HTTP engine shares it).
        self.origin_ns = time.monotonic_ns()

    def monotonic_ms(self) -> int:
        return (time.monotonic_ns() - self.origin_ns) // 1_000_000

    def wall_us(self) -> int:
        return time.time_ns() // 1000


class FakeClock:
    """Moves only when told to."""

    def __init__(self, start_ms: int = 0, wall_start_us: int = 1_700_000_000_000_000) -> None:
        self.ms = start_ms
        self._wall0 = wall_start_us - start_ms * 1000

    def monotonic_ms(self) -> int:
        return self.ms

    def wall_us(self) -> int:
        return self._wall0 + self.ms * 1000

    def advance(self, ms: int) -> None:
        self.ms += ms
