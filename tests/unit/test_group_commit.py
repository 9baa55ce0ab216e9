"""``GroupCommit``: writes that arrive together are stored together, each caller still gets
its own answer, and one bad item fails alone. The store call here is a plain function on the
real writer thread (``StoreThreads``): what is under test is the batching around it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.services.context import GroupCommit, StoreThreads


def test_concurrent_items_are_stored_in_batches_and_answered_each() -> None:
    calls: list[list[int]] = []
    afters: list[list[str]] = []
    writer: set[str] = set()

    def store_many(items: list[int]) -> list[str]:
        writer.add(threading.current_thread().name)
        calls.append(list(items))
        return [f"stored {i}" for i in items]

    async def after(out: list[str]) -> None:
        afters.append(out)

    async def main() -> None:
        threads = StoreThreads(1)
        group: GroupCommit[int, str] = GroupCommit(threads, store_many, after, batch=16)
        try:
            answers = await asyncio.gather(*(group.one(i) for i in range(40)))
            assert answers == [f"stored {i}" for i in range(40)]
            assert group.stored == 40 and group.commits == len(calls) < 40
            assert sorted(i for call in calls for i in call) == list(range(40))
            assert [a for batch in afters for a in batch] == [f"stored {i}" for call in calls for i in call]
            assert await group.many([100, 101]) == ["stored 100", "stored 101"]
            assert calls[-1] == [100, 101] and afters[-1] == ["stored 100", "stored 101"]
        finally:
            threads.shutdown()

    asyncio.run(main())
    assert writer and all(name.startswith("duckdb") for name in writer)  # the writer thread, not the loop's


def test_a_bad_item_fails_alone() -> None:
    def store_many(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("13 is refused")
        return [i * 2 for i in items]

    async def after(out: list[int]) -> None:
        return None

    async def main() -> None:
        threads = StoreThreads(1)
        group: GroupCommit[int, int] = GroupCommit(threads, store_many, after, batch=32)
        try:
            results = await asyncio.gather(*(group.one(i) for i in range(20)), return_exceptions=True)
        finally:
            threads.shutdown()
        for i, result in enumerate(results):
            if i == 13:
                assert isinstance(result, ValueError)
            else:
                assert result == i * 2
        assert group.stored == 19

    asyncio.run(main())


def test_nothing_waits_without_writes() -> None:
    async def main() -> None:
        threads = StoreThreads(1)
        group: GroupCommit[int, int] = GroupCommit(threads, lambda items: items, _nothing)
        try:
            assert await group.one(7) == 7
            await asyncio.sleep(0.01)
            assert group._task is None and not group._pending  # the drain ended with its work
        finally:
            threads.shutdown()

    asyncio.run(main())


async def _nothing(out: list[int]) -> None:
    return None


@pytest.mark.parametrize("size", [1, 1000])
def test_many_is_one_store_call(size: int) -> None:
    calls: list[int] = []

    def store_many(items: list[int]) -> list[int]:
        calls.append(len(items))
        return items

    async def main() -> None:
        threads = StoreThreads(1)
        group: GroupCommit[int, int] = GroupCommit(threads, store_many, _nothing)
        try:
            assert await group.many(list(range(size))) == list(range(size))
        finally:
            threads.shutdown()

    asyncio.run(main())
    assert calls == [size]


def test_reads_behind_run_at_a_low_priority_and_reads_at_the_normal_one() -> None:
    """A read nobody waits for (``read_behind``: the history's reads ahead) runs on a thread
    at nice 10, so it yields the core to requests and checks; an ordinary read does not."""
    import os
    import threading

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    async def main() -> tuple[int, int]:
        threads = StoreThreads(1)
        try:
            return await threads.read(nice), await threads.read_behind(nice)
        finally:
            threads.shutdown()

    base = os.getpriority(os.PRIO_PROCESS, 0)
    normal, behind = asyncio.run(main())
    assert normal == base and behind >= max(base, 10)
