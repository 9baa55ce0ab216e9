"""The ``Channel`` protocol is all the worker needs: a channel of another kind (here frames on
in-memory queues, encoded and decoded as on the wire, as a NATS channel would carry them)
stands in for the socket pair, and the real worker runs checks over it."""

from __future__ import annotations

import asyncio

import msgspec
import uvloop

from core.engine.table import MonitorTable
from core.engine.transport import (
    AnyFrame,
    Bye,
    Channel,
    Frame,
    Hello,
    Results,
    Shutdown,
    Stats,
    Upsert,
    batch_from_frame,
)
from core.engine.worker import Worker
from core.models import parse_monitor
from tests.servers import Peer, http_handler


class QueueChannel:
    """One end of a pair of queues; every frame goes through msgpack both ways."""

    def __init__(self, inbox: asyncio.Queue[bytes | None], outbox: asyncio.Queue[bytes | None]) -> None:
        self.inbox, self.outbox = inbox, outbox
        self.closed = False

    async def send(self, frame: Frame) -> None:
        self.send_nowait(frame)
        await asyncio.sleep(0)

    def send_nowait(self, frame: Frame) -> None:
        if self.closed:
            raise ConnectionError("closed")
        self.outbox.put_nowait(msgspec.msgpack.encode(frame))

    async def recv(self) -> Frame | None:
        payload = await self.inbox.get()
        return None if payload is None else msgspec.msgpack.decode(payload, type=AnyFrame)

    def buffered(self) -> int:
        return self.outbox.qsize()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(None)

    async def aclose(self) -> None:
        self.close()


def test_the_worker_runs_over_any_channel() -> None:
    async def main() -> None:
        to_worker: asyncio.Queue[bytes | None] = asyncio.Queue()
        from_worker: asyncio.Queue[bytes | None] = asyncio.Queue()
        worker_end = QueueChannel(to_worker, from_worker)
        main_end = QueueChannel(from_worker, to_worker)
        channel: Channel = worker_end  # (type-checked: the protocol is complete)
        worker = Worker(channel, shard=0, shards=1, max_inflight=16)
        async with Peer(http_handler()) as peer:
            task = asyncio.create_task(worker.run())
            hello = await main_end.recv()
            assert isinstance(hello, Hello) and hello.shards == 1
            monitor = parse_monitor({"name": "over a queue", "type": "http", "url": peer.url(), "interval": 1})
            monitor.id = 7
            await main_end.send(Upsert.from_table(MonitorTable([monitor]), [monitor.id]))
            rows = 0
            while rows < 2:
                frame = await asyncio.wait_for(main_end.recv(), 10)
                if isinstance(frame, Results) and frame.rows:
                    batch = batch_from_frame(frame)
                    assert batch["monitor_id"].tolist() == [7] * frame.rows and batch["ok"].all()
                    rows += frame.rows
                else:
                    assert isinstance(frame, Stats)
            await main_end.send(Shutdown())
            kinds = []
            while (frame := await asyncio.wait_for(main_end.recv(), 10)) is not None:
                kinds.append(type(frame))
            await task
        assert kinds[-1] is Bye and worker_end.closed

    uvloop.run(main())
