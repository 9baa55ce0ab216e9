"""The history answer cache: served only at the version it was computed at, bounded, and one
computation for a crowd of identical requests."""

from __future__ import annotations

import asyncio

from api.history import AnswerCache


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

