"""The monthly quota across a month boundary, on an injected clock."""

from __future__ import annotations

import datetime as dt

from core.services.usage import Quota, month_bounds


def test_the_count_starts_again_at_the_first_second_of_a_month() -> None:
    quota = Quota()
    quota.load("2026-12", {7: 2}, {7: 3})  # as read back at startup: two used already
    last = dt.datetime(2026, 12, 31, 23, 59, 59, 900_000, tzinfo=dt.UTC)
    new_year = int(dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp())
    allowed, headers, _ = quota.take(7, last)
    assert allowed and headers == {"X-API-Limit": "3", "X-API-Remaining": "0", "X-API-Reset": str(new_year)}
    allowed, headers, retry_after = quota.take(7, last)
    assert not allowed and headers["X-API-Remaining"] == "0" and retry_after == 1
    assert quota.take_dirty() == ("2026-12", {7: 3})

    first = dt.datetime(2027, 1, 1, 0, 0, 0, tzinfo=dt.UTC)
    allowed, headers, _ = quota.take(7, first)
    february = int(dt.datetime(2027, 2, 1, tzinfo=dt.UTC).timestamp())
    assert allowed and headers == {"X-API-Limit": "3", "X-API-Remaining": "2", "X-API-Reset": str(february)}
    assert quota.usage(7, first) == {"month": "2027-01", "limit": 3, "used": 1, "remaining": 2, "reset": february,
                                     "resetAt": "2027-02-01T00:00:00Z"}
    assert quota.take_dirty() == ("2027-01", {7: 1})  # written behind under the new month


def test_month_bounds_at_the_turn_of_the_year_and_in_february() -> None:
    assert month_bounds(dt.datetime(2026, 12, 15, tzinfo=dt.UTC)) == (
        "2026-12", int(dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()))
    assert month_bounds(dt.datetime(2028, 2, 29, 23, 59, tzinfo=dt.UTC)) == (
        "2028-02", int(dt.datetime(2028, 3, 1, tzinfo=dt.UTC).timestamp()))
