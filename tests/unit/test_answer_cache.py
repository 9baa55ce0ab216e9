"""The history answer cache: served only at the version it was computed at, bounded, and one
computation for a crowd of identical requests; and the answers' items the store encodes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from api.history import AnswerCache
from core.clock import iso_ms as iso_us
from core.models import parse_monitor
from core.models.retention import Retention
from core.storage.duckdb import DuckDBStore
from ext import ResultBuffer


def test_an_answer_is_served_only_at_its_version() -> None:
    cache = AnswerCache()
    cache.put("k", 1, b"old")
    assert cache.get("k", 1) == b"old"
    assert cache.get("k", 2) is None
    assert cache.get("k", 1) is None  # the stale entry is gone, not kept for an older reader
    assert cache.size == 0


def test_least_recently_used_answers_go_beyond_the_budget() -> None:
    cache = AnswerCache(max_bytes=400)
    for key in "abcd":
        cache.put(key, 0, key.encode() * 100)
    assert cache.get("a", 0) is not None  # used: now the most recent
    cache.put("e", 0, b"e" * 100)
    assert cache.get("b", 0) is None and cache.size == 400
    assert [cache.get(k, 0) is not None for k in "acde"] == [True] * 4
    cache.put("huge", 0, b"x" * 101)  # over a quarter of the budget: never kept
    assert cache.get("huge", 0) is None and cache.size == 400


def test_a_crowd_of_misses_shares_one_computation_and_survives_a_cancelled_caller() -> None:
    async def main() -> None:
        cache = AnswerCache()
        calls = 0
        release = asyncio.Event()

        async def make() -> bytes:
            nonlocal calls
            calls += 1
            await release.wait()
            return b"answer"

        waiters = [asyncio.ensure_future(cache.fill("k", 1, make)) for _ in range(32)]
        await asyncio.sleep(0)
        waiters[0].cancel()  # a client that went away
        newer = asyncio.ensure_future(cache.fill("k", 2, make))  # a newer version never waits on an older one
        await asyncio.sleep(0)
        release.set()
        assert await asyncio.gather(*waiters[1:], newer) == [b"answer"] * 32
        assert calls == 2 and waiters[0].cancelled()
        assert cache.get("k", 2) == b"answer"

    asyncio.run(main())


def test_a_failed_computation_reaches_every_waiter_and_is_not_kept() -> None:
    async def main() -> None:
        cache = AnswerCache()

        async def make() -> bytes:
            await asyncio.sleep(0)
            raise RuntimeError("database gone")

        results = await asyncio.gather(cache.fill("k", 1, make), cache.fill("k", 1, make), return_exceptions=True)
        assert [type(r) for r in results] == [RuntimeError, RuntimeError]
        assert cache.get("k", 1) is None

    asyncio.run(main())



def test_store_encoded_answers_are_the_api_encoding(tmp_path: Path) -> None:
    """Raw checks and hour buckets come encoded by DuckDB; each item must be what the API
    would build from the store's rows in Python: rolled-up, open and stale hours alike, nulls
    and phases included."""
    hour = 3_600_000_000
    base = 1_700_000_000_000_000 - 1_700_000_000_000_000 % (24 * hour)
    store = DuckDBStore(tmp_path)
    store.set_retention(Retention(raw=None, hourly=None, daily=None))  # (rows of 2023)
    try:
        mid = store.create_monitor(parse_monitor({"name": "h", "type": "http", "url": "http://h/"})).id
        buf = ResultBuffer(64)
        for h in range(5):
            for k in range(4):
                buf.append(mid, base + h * hour + k * 1_234_567, k != 3, 1000 + 37 * h + 3 * k + (k == 2),
                           200 if k != 3 else 0, 0 if k != 3 else 3, connect_us=250 + k, ttfb_us=-1 if k else 700,
                           error="refused \"quoted\"" if k == 3 else None)
        store.ingest(buf.flush())
        store.rollup(base + 4 * hour, grace_us=0)  # hours 0-3 rolled up, hour 4 open

        def hours() -> list[dict]:
            encoded, more = store.history_hours_json(mid, None, None, None, 100)
            rows, more2 = store.history_buckets(mid, 3600, None, None, None, 100)
            assert more == more2 and [e[0] for e in encoded] == [r[0] for r in rows]
            data = [msgspec.json.decode(e[1]) for e in encoded]
            assert data == [{"ts": iso_us(r[0]), "checks": r[1], "up": r[2], "uptime": r[2] / r[1],
                             "latencyMs": {"avg": round(r[3] / 1000, 3), "min": round(r[4] / 1000, 3),
                                           "max": round(r[5] / 1000, 3), "p50": round(r[6][0] / 1000, 3),
                                           "p95": round(r[6][1] / 1000, 3), "p99": round(r[6][2] / 1000, 3)}}
                            for r in rows]
            return data

        assert [b["checks"] for b in hours()] == [4] * 5
        late = ResultBuffer(4)
        late.append(mid, base + hour + 500, True, 5000, 200, 0)  # a late row in rolled-up hour 1: stale
        store.ingest(late.flush())
        assert [b["checks"] for b in hours()] == [4, 4, 4, 5, 4]
        page, more = store.history_hours_json(mid, None, None, None, 2)
        assert more and [p[0] for p in page] == [base + 4 * hour, base + 3 * hour]

        def ms(us: int | None) -> float | None:
            return None if us is None else round(us / 1000, 3)

        encoded, more = store.history_raw_json(mid, None, None, None, 15)
        rows, more2 = store.history_raw(mid, None, None, None, 15)
        assert more and more2 and [e[0] for e in encoded] == [r[0] for r in rows]
        assert [msgspec.json.decode(e[1]) for e in encoded] == [
            {"ts": iso_us(r[0]), "ok": r[1], "latencyMs": ms(r[2]), "statusCode": r[3], "error": r[4],
             "phases": {"dnsMs": ms(r[5]), "connectMs": ms(r[6]), "tlsMs": ms(r[7]), "ttfbMs": ms(r[8])}}
            for r in rows]
        assert any(r[4] is not None for r in rows) and any(r[8] is not None for r in rows)
    finally:
        store.close()
