"""Monthly request quota per account, exact under concurrency.

The main process serves every request on one event loop, and ``take`` checks and counts
without awaiting, so 200 racing requests against a limit of 100 see exactly 100 successes.
Counts are per UTC calendar month; they are written behind to ``api_usage`` every 100 ms and
at shutdown, and read back at startup (a ``kill -9`` can forget at most the last 100 ms).
"""

from __future__ import annotations

import calendar
import datetime as dt

from core.clock import iso_seconds

__all__ = ["READS_PER_MINUTE", "Quota", "ReadBudget", "month_bounds"]

#: Requests a minute a read-only key may make (a dashboard of 20 panels refreshed every 10 s
#: makes 120): what bounds a read key instead of the monthly quota.
READS_PER_MINUTE = 600


def month_bounds(now: dt.datetime) -> tuple[str, int]:
    """``('YYYY-MM', reset)``: the UTC month of ``now`` and the Unix second it ends."""
    year, month = now.year, now.month
    nxt = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.UTC)
    return f"{year:04d}-{month:02d}", calendar.timegm(nxt.utctimetuple())


class Quota:
    """Per-account request counts of the current UTC month against each account's limit.
    ``dirty`` names the accounts counted since the last ``take_dirty`` (to be saved)."""

    def __init__(self) -> None:
        self.month = ""
        self.counts: dict[int, int] = {}
        self.limits: dict[int, int] = {}
        self.dirty: set[int] = set()

    def load(self, month: str, counts: dict[int, int], limits: dict[int, int]) -> None:
        self.month, self.counts, self.limits = month, dict(counts), dict(limits)

    def take(self, account_id: int, now: dt.datetime | None = None) -> tuple[bool, dict[str, str], int]:
        """Count one request if the month allows it: ``(allowed, headers, retry_after_s)``."""
        now = now or dt.datetime.now(dt.UTC)
        month, reset = month_bounds(now)
        if month != self.month:  # a new month: everyone starts again
            self.month, self.counts = month, {}
        limit = self.limits.get(account_id, 0)
        used = self.counts.get(account_id, 0)
        allowed = used < limit
        if allowed:
            used += 1
            self.counts[account_id] = used
            self.dirty.add(account_id)
        headers = {"X-API-Limit": str(limit), "X-API-Remaining": str(max(0, limit - used)), "X-API-Reset": str(reset)}
        return allowed, headers, max(1, reset - int(now.timestamp()))

    def usage(self, account_id: int, now: dt.datetime | None = None) -> dict[str, object]:
        now = now or dt.datetime.now(dt.UTC)
        month, reset = month_bounds(now)
        used = self.counts.get(account_id, 0) if month == self.month else 0
        limit = self.limits.get(account_id, 0)
        return {"month": month, "limit": limit, "used": used, "remaining": max(0, limit - used), "reset": reset,
                "resetAt": iso_seconds(reset * 1_000_000)}

    def take_dirty(self) -> tuple[str, dict[int, int]]:
        dirty, self.dirty = self.dirty, set()
        return self.month, {a: self.counts[a] for a in dirty if a in self.counts}


class ReadBudget:
    """Requests of each read-only key in the current UTC minute, against ``per_minute``: what
    a dashboard's refreshes spend instead of the account's monthly quota. Kept in memory only
    (a restart starts the minute again: at most one extra minute's worth)."""

    def __init__(self, per_minute: int = READS_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self.minute = 0
        self.counts: dict[int, int] = {}

    def take(self, key_id: int, now: float) -> tuple[bool, dict[str, str], int]:
        """Count one request of the key if its minute allows it: ``(allowed, headers,
        retry_after_s)``, the headers those of the quota (``X-API-Reset``: the minute's end)."""
        minute = int(now // 60)
        if minute != self.minute:
            self.minute, self.counts = minute, {}
        used = self.counts.get(key_id, 0)
        allowed = used < self.per_minute
        if allowed:
            used += 1
            self.counts[key_id] = used
        reset = (minute + 1) * 60
        headers = {"X-API-Limit": str(self.per_minute), "X-API-Remaining": str(max(0, self.per_minute - used)),
                   "X-API-Reset": str(reset)}
        return allowed, headers, max(1, reset - int(now))
