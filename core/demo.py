"""``xuptime serve --demo``: a local demo target and a few monitors pointed at it.

The target is an aiohttp server on 127.0.0.1 (a free port each run) with a healthy page, a
slow page, an endpoint that fails, and one that fails one minute in three. Demo monitors are
tagged ``demo`` and named ``[demo] ...``; each start re-points them at the new port.
"""

from __future__ import annotations

import asyncio
import socket
import time

from aiohttp import web

from core.models import parse_monitor
from core.storage.duckdb import DuckDBStore

__all__ = ["DemoTarget", "ensure_monitors", "start_target"]


class DemoTarget:
    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def _home(_: web.Request) -> web.Response:
    return web.Response(text="xuptime demo target: all good\n")


async def _slow(_: web.Request) -> web.Response:
    await asyncio.sleep(0.4)
    return web.Response(text="slow but fine\n")


async def _broken(_: web.Request) -> web.Response:
    return web.Response(status=500, text="demo: internal server error\n")


async def _flaky(_: web.Request) -> web.Response:
    if int(time.time() // 60) % 3 == 0:
        return web.Response(status=503, text="demo: down this minute\n")
    return web.Response(text="up this minute\n")


async def start_target() -> DemoTarget:
    app = web.Application()
    app.add_routes([web.get("/", _home), web.get("/slow", _slow), web.get("/broken", _broken),
                    web.get("/flaky", _flaky)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    return DemoTarget(runner, sock.getsockname()[1])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_monitors(store: DuckDBStore, base_url: str) -> None:
    """Create the demo monitors, or re-point existing ones at this run's target."""
    wanted = [
        {"name": "[demo] healthy page", "type": "http", "url": f"{base_url}/", "keyword": "all good"},
        {"name": "[demo] slow page", "type": "http", "url": f"{base_url}/slow"},
        {"name": "[demo] server error", "type": "http", "url": f"{base_url}/broken"},
        {"name": "[demo] flaky", "type": "http", "url": f"{base_url}/flaky", "retries": 1},
        {"name": "[demo] closed port", "type": "tcp", "host": "127.0.0.1", "port": _closed_port()},
    ]
    existing = {m.name: m for m in store.list_monitors() if "demo" in m.tags}
    for data in wanted:
        data = {**data, "interval": 10, "tags": ["demo"]}
        current = existing.get(data["name"])
        if current is None:
            store.create_monitor(parse_monitor(data))
        else:
            updated = parse_monitor(data)
            updated.id = current.id
            store.update_monitor(updated)
