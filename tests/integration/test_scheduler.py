"""The scheduler with a fake clock driving the wheel and real loopback targets."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import numpy as np
import uvloop

from core.clock import FakeClock
from core.engine.scheduler import Scheduler, phase_offset
from core.models import Monitor, Transition, parse_monitor
from tests.servers import Peer, http_handler, read_request


def monitor(mid: int, url: str, **extra: Any) -> Monitor:
    m = parse_monitor({"name": f"m{mid}", "type": "http", "url": url, **extra})
    m.id = mid
    return m


class Sink:
    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []
        self.transitions: list[Transition] = []

    def __call__(self, batch: dict[str, Any], transitions: list[Transition]) -> None:
        self.batches.append(batch)
        self.transitions.extend(transitions)

    def rows(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([b[k] for b in self.batches]) for k in ("monitor_id", "ok", "status_code")}


async def settle(s: Scheduler) -> None:
    while s.inflight:
        await asyncio.sleep(0.01)


def test_phase_spread_of_many_monitors() -> None:
    clock = FakeClock()
    s = Scheduler(Sink(), clock=clock)
    for mid in range(1, 10_001):
        s.upsert(monitor(mid, "http://127.0.0.1:9/", interval=60))
    deadlines = np.array([s.wheel.deadline(mid) for mid in range(1, 10_001)])
    assert deadlines.min() >= 0 and deadlines.max() < 60_000
    per_second = np.bincount(deadlines // 1000, minlength=60)
    assert per_second.max() < 2 * per_second.mean()  # no thundering herd
    assert phase_offset(5, 60_000) == s.wheel.deadline(5)  # deterministic from the id


def test_results_transitions_overlap_and_inflight_bound() -> None:
    async def main() -> None:
        clock = FakeClock()
        sink = Sink()
        s = Scheduler(sink, clock=clock, max_inflight=2)
        s.start(asyncio.get_running_loop())
        async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(30)

        async with Peer(http_handler()) as ok, Peer(hang) as slow:
            s.upsert(monitor(1, ok.url(), interval=1))
            s.upsert(monitor(2, f"http://127.0.0.1:{slow.port}/", interval=1, timeout=1))
            s.upsert(monitor(3, "http://127.0.0.1:9/", interval=1))  # nothing listens on port 9
            clock.advance(1000)
            s.run_due()
            assert len(s.inflight) == 2 and len(s.queue) == 1  # bounded: one waits
            await asyncio.sleep(0.3)
            assert 2 in s.inflight  # still hanging
            clock.advance(1000)
            s.run_due()
            assert s.skipped_overlap >= 1  # monitor 2 was due again while running
            await settle(s)
            s.flush()
        rows = sink.rows()
        by_id = {int(mid): (bool(okv), int(code)) for mid, okv, code in
                 zip(rows["monitor_id"], rows["ok"], rows["status_code"], strict=True)}
        assert by_id[1] == (True, 200) and by_id[2][0] is False and by_id[3][0] is False
        kinds = {(t.monitor_id, t.old, t.new) for t in sink.transitions}
        assert {(1, "pending", "up"), (2, "pending", "down"), (3, "pending", "down")} <= kinds
        assert int(s.lateness.sum()) == s.checks + len(s.inflight)
        await s.stop()

    uvloop.run(main())


def test_paused_and_removed_monitors_do_not_run() -> None:
    async def main() -> None:
        clock = FakeClock()
        sink = Sink()
        s = Scheduler(sink, clock=clock)
        s.start(asyncio.get_running_loop())
        async with Peer(http_handler()) as ok:
            s.upsert(monitor(1, ok.url(), interval=1, paused=True))
            s.upsert(monitor(2, ok.url(), interval=1))
            s.remove(2)
            clock.advance(5000)
            s.run_due()
            await settle(s)
            s.flush()
            assert ok.connections == 0 and sink.batches == []
        await s.stop()

    uvloop.run(main())


def test_keep_alive_fast_path_reuse_timeout_redirect_and_removal() -> None:
    from tests.servers import read_request, redirect_handler, respond

    async def second_request_hangs(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(respond(200, b"first"))
        await writer.drain()
        await read_request(reader)
        await asyncio.sleep(30)  # never answers the second request on this connection

    async def main() -> None:
        clock = FakeClock()
        sink = Sink()
        s = Scheduler(sink, clock=clock)
        s.start(asyncio.get_running_loop())

        async def tick(expect_fast: int | None = None) -> None:
            clock.advance(1000)
            s.run_due()
            if expect_fast is not None:
                assert type(s.inflight[expect_fast]).__name__ == "_FastCheck"
            await asyncio.sleep(0.05)  # let writes, responses and timeouts run
            await settle(s)

        async with Peer(http_handler()) as ok, Peer(second_request_hangs) as hang, Peer(redirect_handler) as redir:
            s.upsert(monitor(1, ok.url(), interval=1, keepAlive=True))
            await tick()  # first check opens the connection (task path)
            for _ in range(3):
                await tick(expect_fast=1)  # then reuses it without a task
            assert ok.connections == 1
            s.remove(1)

            s.upsert(monitor(2, hang.url(), interval=1, timeout=0.2, keepAlive=True))
            await tick()
            await tick(expect_fast=2)
            s.remove(2)

            s.upsert(monitor(3, redir.url("/start"), interval=1, keepAlive=True, keyword="landed"))
            await tick()
            await tick(expect_fast=3)
            s.remove(3)

            s.upsert(monitor(4, ok.url(), interval=1, keepAlive=True))
            await tick()
            clock.advance(1000)
            s.run_due()
            assert type(s.inflight[4]).__name__ == "_FastCheck"
            s.remove(4)  # while in flight: no result, slot freed
            assert 4 not in s.inflight
            await asyncio.sleep(0.05)
            s.flush()
        rows = {}
        for b in sink.batches:
            for mid, okv, code, err in zip(b["monitor_id"], b["ok"], b["status_code"], b["error_code"], strict=True):
                rows.setdefault(int(mid), []).append((bool(okv), int(code), int(err)))
        assert rows[1] == [(True, 200, 0)] * 4
        assert rows[2] == [(True, 200, 0), (False, 0, 1)]  # the reused connection hung: timeout
        assert rows[3] == [(True, 200, 0)] * 2  # redirect followed from the fast path
        assert rows[4] == [(True, 200, 0)]  # the removed in-flight check left no row
        await s.stop()

    uvloop.run(main())


#: One check per step: the target's answer, then the status the monitor must have after it,
#: with retries=2 (down on the third failure in a row) and recoveryThreshold=3 (up on the
#: third success in a row). Swapping the two numbers anywhere changes the statuses.
_STEPS = [(200, "up"), (500, "up"), (500, "up"), (200, "up"), (500, "up"), (500, "up"), (500, "down"),
          (500, "down"), (200, "down"), (200, "down"), (500, "down"), (200, "down"), (200, "down"),
          (200, "up"), (500, "up")]


def _switch() -> tuple[list[int], Any]:
    """A keep-alive HTTP server whose status the test sets (``status[0]``)."""
    status = [200]
    return status, http_handler(lambda: status[0], b"switch")


def test_retries_and_recovery_threshold_on_the_general_path() -> None:
    async def main() -> None:
        clock = FakeClock()
        sink = Sink()
        s = Scheduler(sink, clock=clock)
        s.start(asyncio.get_running_loop())
        status, handle = _switch()
        seen = []
        async with Peer(handle) as peer:
            s.upsert(monitor(1, peer.url(), interval=1, retries=2, recoveryThreshold=3))
            for code, _ in _STEPS:
                status[0] = code
                clock.advance(1000)
                s.run_due()
                await settle(s)
                seen.append(s.monitor(1).status)
        await s.stop()
        assert seen == [want for _, want in _STEPS]
        assert [(t.old, t.new) for t in sink.transitions] == [("pending", "up"), ("up", "down"), ("down", "up")]
        assert sink.transitions[1].cause == "status 500, expected 200-299"

    uvloop.run(main())


def test_retries_and_recovery_threshold_on_the_compiled_path() -> None:
    async def main() -> None:
        sink = Sink()
        s = Scheduler(sink)  # the real clock: the compiled path on
        assert s.fast is not None
        status, handle = _switch()
        seen = []
        async with Peer(handle) as peer:
            given = monitor(1, peer.url(), interval=60, retries=2, recoveryThreshold=3, keepAlive=True)
            s.upsert(given)
            s.wheel.cancel(1)  # checks start when this test says, not on the wheel
            s.start(asyncio.get_running_loop())
            for code, _ in _STEPS:
                status[0] = code
                assert s.fast.start(1) == 1
                while s.fast.inflight:
                    await asyncio.sleep(0.002)
                seen.append(s.monitor(1).status)
            assert s.fast.takes(1) and peer.connections == 1  # all of it on the compiled path
            # (asleep in the engine all along: no object held for it, its counters kept there)
            assert 1 not in s.entries and s.fast.asleep == 1 and s.count == 1
            # (held as the bytes it came in: the monitor given, with its live status)
            assert msgspec.structs.replace(s.monitor(1), status=given.status) == given
        await s.stop()
        assert seen == [want for _, want in _STEPS]
        assert [(t.old, t.new) for t in sink.transitions] == [("pending", "up"), ("up", "down"), ("down", "up")]

    uvloop.run(main())


async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A peer whose answer only the general checker judges (a chunk extension): a hand-over."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                 b"5;name=value\r\nhello\r\n0\r\n\r\n")
    await writer.drain()
    writer.close()


def test_a_monitor_asleep_in_the_engine_keeps_its_state_when_replaced_removed_or_handed_over() -> None:
    async def main() -> None:
        sink = Sink()
        s = Scheduler(sink)  # the real clock: the compiled path on
        assert s.fast is not None
        status, handle = _switch()

        async def check(mid: int) -> None:
            assert s.fast.start(mid) == 1
            while s.fast.inflight or s.inflight:
                await asyncio.sleep(0.002)

        async with Peer(handle) as peer, Peer(chunked) as odd:
            given = monitor(1, peer.url(), interval=60, retries=0, recoveryThreshold=3, keepAlive=True)
            s.upsert(given)
            s.wheel.cancel(1)
            s.start(asyncio.get_running_loop())
            status[0] = 500
            await check(1)
            status[0] = 200
            await check(1)
            await check(1)  # down, two successes of the three it needs
            assert s.monitor(1).status == "down" and s.fast.asleep == 1 and not s.entries
            # The serve process sends the monitor again (edited), with the status it knows:
            # the counters stand, so the next success is the third.
            s.upsert(msgspec.structs.replace(given, name="renamed", status="down"))
            s.wheel.cancel(1)
            assert s.fast.asleep == 1 and not s.entries and s.monitor(1).name == "renamed"
            await check(1)
            assert s.monitor(1).status == "up"
            s.flush()
            assert [(t.old, t.new) for t in sink.transitions] == [("pending", "down"), ("down", "up")]
            s.remove(1)
            assert s.monitor(1) is None and s.count == 0 and s.fast.asleep == 0 and not s.fast.takes(1)

            # A response only the general checker judges wakes the monitor for good.
            s.upsert(monitor(2, odd.url(), interval=60))
            s.wheel.cancel(2)
            assert s.fast.asleep == 1
            await check(2)
            assert 2 in s.entries and s.fast.asleep == 0 and not s.fast.takes(2) and s.count == 1
            assert s.monitor(2).status == "up"
        await s.stop()
        rows = sink.rows()
        assert rows["monitor_id"].tolist() == [1, 1, 1, 1, 2] and rows["ok"].tolist() == [False, True, True, True, True]

    uvloop.run(main())


def test_a_monitor_asleep_without_its_url_comes_back_whole() -> None:
    """A compiled monitor whose URL its request line and Host give back exactly is kept
    asleep without it (the URL is most of its bytes); any other keeps it. Either way, read,
    woken by an edit, or handed to the general checker, it comes back as given."""
    async def main() -> None:
        s = Scheduler(Sink())  # the real clock: the compiled path on
        assert s.fast is not None
        async with Peer(chunked) as odd:
            port = odd.url().split(":")[2].split("/")[0]
            urls = {1: odd.url() + "status?x=1&y=%20z",  # rebuilt: left out
                    2: f"http://127.0.0.1:{port}/a#fragment",  # (not sent: kept)
                    3: "http://127.0.0.1:80/explicit-default-port",  # (Host: without it: kept)
                    4: f"http://127.0.0.1:{port}",  # (sent as "/": kept)
                    5: f"http://127.0.0.1:{port}/h"}  # (its own Host header: kept)
            given = {mid: monitor(mid, url, interval=60, **({"headers": {"Host": "vhost"}} if mid == 5 else {}))
                     for mid, url in urls.items()}
            for m in given.values():
                s.upsert(m)
                s.wheel.cancel(m.id)
            assert s.fast.asleep == 5 and not s.entries
            for mid, m in given.items():
                assert s.monitor(mid) == m
                kept = s.fast.packed(mid)
                assert (urls[mid].encode() in kept) == (mid != 1), mid
            assert len(s.fast.packed(1)) < len(s.fast.packed(2)) - len(urls[1]) // 2
            # woken by an edit (its counters carried), then asleep again as the edit
            s.upsert(msgspec.structs.replace(given[1], name="renamed"))
            s.wheel.cancel(1)
            assert s.monitor(1) == msgspec.structs.replace(given[1], name="renamed") and not s.entries
            assert urls[1].encode() not in s.fast.packed(1)
            # handed to the general checker: held whole from then on
            s.start(asyncio.get_running_loop())
            assert s.fast.start(1) == 1
            while s.fast.inflight or s.inflight:
                await asyncio.sleep(0.002)
            assert 1 in s.entries and s.monitor(1).spec.url == urls[1]
            assert s.entries[1].prepared.first.url == urls[1]
        await s.stop()

    uvloop.run(main())
