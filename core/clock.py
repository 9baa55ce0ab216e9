"""Clocks, and the one way instants are written down. The scheduler reads time only through a
``Clock`` so tests can drive it. Every instant shown to people or sent on the wire is ISO 8601
in UTC with a ``Z``: ``iso_seconds`` for record times, ``iso_ms`` for check times."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "MonotonicClock", "instant_us", "iso_ms", "iso_seconds", "iso_utc"]

_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def instant_us(text: str) -> int:
    """A time as the API reads one, in µs since the epoch: ISO 8601 (a missing zone means
    UTC), Unix seconds, or Unix milliseconds (10^11 and more: Grafana's ``${__from}``; seconds
    reach it in the year 5138). ``ValueError`` for anything else."""
    try:
        if _NUMBER.fullmatch(text):
            number = float(text)
            return int(number * 1000) if abs(number) >= 1e11 else int(number * 1_000_000)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1_000_000)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None


def iso_seconds(ts_us: int) -> str:
    """µs since the epoch as ``2026-12-01T17:30:11Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_us // 1_000_000))


def iso_ms(ts_us: int) -> str:
    """µs since the epoch as ``2026-12-01T17:30:11.042Z``."""
    seconds, us = divmod(ts_us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{us // 1000:03d}Z"


def iso_utc(value: dt.datetime | None) -> str | None:
    """A naive UTC datetime (what DuckDB's TIMESTAMP columns hold) as ``iso_seconds`` does."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


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
