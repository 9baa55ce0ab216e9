"""Engine worker process: owns one shard (``monitor_id % shards``), never touches DuckDB.

Run as ``python -m core.engine.worker --fd N --shard I --shards K``; ``N`` is its end of a
Unix socket pair to the main process. It receives ``Upsert``/``Delete``/``Shutdown`` frames
and sends ``Results`` (columnar) and ``Stats``. On ``Shutdown`` (or SIGTERM) it stops
scheduling, flushes, sends ``Bye`` and exits. If the main process goes away (EOF) it exits.

Back-pressure: if the main process does not read (a slow database), result frames wait in
the socket's write buffer up to ``MAX_PENDING_BYTES``; beyond that a batch is dropped and
counted in ``Stats.dropped`` (never silently). Checks keep their schedule meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import resource
import signal
import socket
import sys

import uvloop

from core.engine.scheduler import Scheduler
from core.engine.transport import (
    AgentResults,
    Bye,
    Channel,
    Delete,
    Hello,
    Push,
    Results,
    Shutdown,
    Stats,
    StreamChannel,
    Upsert,
    frame_from_batch,
)

log = logging.getLogger("xuptime.worker")
MAX_PENDING_BYTES = 128 * 1024 * 1024


def default_max_inflight(workers: int) -> int:
    """Size the in-flight bound from the open-file limit (raised to the hard limit first)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    usable = max(64, int(soft) - 256)
    return max(16, min(65_536, usable * 3 // 4))


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class Worker:
    """One shard's process: a scheduler fed by the channel's frames, whose flushed results
    go back over the channel (dropped and counted, never blocking checks, when it backs up)."""

    def __init__(self, channel: Channel, shard: int, shards: int, max_inflight: int) -> None:
        self.channel = channel
        self.shard = shard
        self.shards = shards
        self.dropped_batches = 0
        self.dropped_rows = 0
        self.scheduler = Scheduler(self._on_flush, max_inflight=max_inflight)
        self.stopping = asyncio.Event()

    def _on_flush(self, batch: dict, transitions: list) -> None:
        if self.channel.buffered() > MAX_PENDING_BYTES:
            self.dropped_batches += 1
            self.dropped_rows += len(batch["monitor_id"])
            log.warning("main process is not keeping up: dropped %d results", len(batch["monitor_id"]))
            return
        self.channel.send_nowait(frame_from_batch(batch, transitions))

    def stats(self) -> Stats:
        s = self.scheduler
        return Stats(shard=self.shard, monitors=s.count, checks=s.checks, inflight=s.busy,
                     queued=len(s.queue) + (s.fast.queued if s.fast is not None else 0), skipped_overlap=s.overlaps,
                     dropped=self.dropped_rows + s.buffer.dropped, lateness_ms=s.lateness.tobytes(),
                     rss_bytes=rss_bytes(), limit=s.limit,
                     tls_handshakes=s.fast.handshakes if s.fast is not None else 0,
                     tls_resumed=s.fast.resumed if s.fast is not None else 0,
                     handed_over=s.fast.fallbacks if s.fast is not None else 0,
                     detours=s.fast.detours if s.fast is not None else 0)

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.channel.send_nowait(self.stats())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # Ctrl-C goes to main, which tells us
        await self.channel.send(Hello(shard=self.shard, shards=self.shards, pid=os.getpid()))
        self.scheduler.start(loop)
        stats = loop.create_task(self._stats_loop())
        reader = loop.create_task(self._read())
        stop = loop.create_task(self.stopping.wait())
        await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
        stats.cancel()
        await self.scheduler.stop()
        try:
            self.channel.send_nowait(self.stats())
            await self.channel.send(Bye())
        except (ConnectionError, RuntimeError):
            pass
        reader.cancel()
        stop.cancel()
        await self.channel.aclose()

    async def _read(self) -> None:
        while True:
            frame = await self.channel.recv()
            if frame is None:
                log.info("main process went away; exiting")
                return
            if isinstance(frame, Upsert):
                for monitor, packed in frame.decoded():
                    try:
                        self.scheduler.upsert(monitor, packed)
                    except Exception:
                        log.exception("cannot schedule monitor %d", monitor.id)
                # Monitors live long: move them out of the collector's sight so that its
                # full passes do not rescan 100k objects while checks allocate.
                gc.freeze()
            elif isinstance(frame, Delete):
                for mid in frame.ids:
                    self.scheduler.remove(mid)
            elif isinstance(frame, Push):
                self.scheduler.push(frame.monitor_id, frame.ts, frame.ok, frame.msg, frame.ping_ms)
            elif isinstance(frame, AgentResults):
                for mid, ts, ok, reason in frame.results:
                    self.scheduler.report(mid, ts, ok, reason)
            elif isinstance(frame, Shutdown):
                self.stopping.set()
                return
            elif isinstance(frame, Results):
                log.warning("unexpected results frame from main")


async def _main(args: argparse.Namespace) -> None:
    # Checks allocate short-lived acyclic objects at a high rate; collect young garbage less
    # often (the default threshold of 700 runs a gen-0 pass every few dozen checks).
    gc.set_threshold(50_000, 20, 100)
    sock = socket.socket(fileno=args.fd)
    channel = await StreamChannel.from_socket(sock)
    worker = Worker(channel, args.shard, args.shards, args.max_inflight or default_max_inflight(args.shards))
    await worker.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="xuptime-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--shard", type=int, required=True)
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("--max-inflight", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("XUPTIME_LOG_LEVEL", "INFO"),
                        format=f"%(asctime)s worker[{args.shard}] %(levelname)s %(message)s", stream=sys.stderr)
    uvloop.run(_main(args))


if __name__ == "__main__":
    main()
