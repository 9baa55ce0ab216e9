"""An open-loop HTTP load generator: requests at a constant rate, latency from the intended send
time, so a slow server cannot hide its queueing (wrk's closed loop sends the next request only
when an answer came back, which lowers the rate instead of showing the wait).

Request ``i`` is due at ``start + i / rate``; due requests wait in one queue for the first of
``connections`` keep-alive connections, and their latency counts from when they were due. The
path may hold ``{i}``, replaced by ``--base`` plus the request's number (for answers that must
not come from a cache, e.g. ``from={i}`` one second later each time).

Usage: ``python -m bench.openloop URL --rate 2000 --seconds 10 [--header 'Name: value']``.
Prints one JSON line: the rate asked and achieved, latency percentiles (ms), non-2xx answers
and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import numpy as np
import uvloop


async def _connection(host: str, port: int, head: bytes, path: str, base: int,
                      queue: asyncio.Queue[tuple[int, float]], latencies: list[float], counts: dict[str, int]) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        i, due = await queue.get()
        request = f"GET {path.replace('{i}', str(base + i))} HTTP/1.1\r\n".encode() + head
        try:
            for attempt in (0, 1):  # a kept-alive connection the server closed meanwhile: once more, fresh
                fresh = writer is None
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None and writer is not None
                try:
                    writer.write(request)
                    status_head = await reader.readuntil(b"\r\n\r\n")
                    break
                except (OSError, asyncio.IncompleteReadError):
                    writer.close()
                    reader = writer = None
                    if fresh or attempt:
                        raise
            length = 0
            for line in status_head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)
            status = int(status_head[9:12])
            counts["ok" if 200 <= status < 300 else "non_2xx"] += 1
            if b"connection: close" in status_head.lower():
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            counts["errors"] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
        finally:
            queue.task_done()


async def run(url: str, rate: float, seconds: float, connections: int, headers: list[str],
              base: int = 0) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = "".join(f"{h}\r\n" for h in [f"Host: {parts.netloc}", *headers]).encode() + b"\r\n"
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    latencies: list[float] = []
    counts = {"ok": 0, "non_2xx": 0, "errors": 0}
    workers = [asyncio.create_task(_connection(host, port, head, path, base, queue, latencies, counts))
               for _ in range(connections)]
    total = int(rate * seconds)
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0.001:
            await asyncio.sleep(delay)
        queue.put_nowait((i, due))
    try:
        await asyncio.wait_for(queue.join(), timeout=seconds + 30)
    except TimeoutError:
        counts["errors"] += queue.qsize()
    elapsed = time.perf_counter() - start
    for w in workers:
        w.cancel()
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {"rate": rate, "achieved_rps": round(len(latencies) / elapsed, 1), "requests": total,
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "p999_ms": round(float(np.percentile(ms, 99.9)), 2), "max_ms": round(float(ms.max()), 2), **counts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--base", type=int, default=0, help="added to the request number in {i}")
    args = parser.parse_args()
    print(json.dumps(uvloop.run(run(args.url, args.rate, args.seconds, args.connections, args.header, args.base))))


if __name__ == "__main__":
    main()
