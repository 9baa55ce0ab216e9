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

__all__ = ["Quota", "month_bounds"]


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
