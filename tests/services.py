"""The services over a real DuckDB file and the real writer thread, with a dormant engine:
how service-level tests run a body of calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from core.models import Monitor
from core.services import DormantEngine, Services, StoreThreads
from core.storage.duckdb import READERS, DuckDBStore


def store_with_hook(data_dir: Path, monitor: dict[str, Any]) -> tuple[DuckDBStore, Monitor]:
    """A store holding one monitor (its wire form) and a default webhook channel of the
    default account (to an address nobody listens on): where the outbox's rows can be read."""
    from core.alerting import parse_integration
    from core.models import parse_monitor

    store = DuckDBStore(data_dir)
    channel = parse_integration({"name": "hook", "type": "webhook", "config": {"url": "http://127.0.0.1:9/"},
                                 "isDefault": True})
    channel.account_id = 1
    store.create_integration(channel)
    return store, store.create_monitor(parse_monitor(monitor))


def run_services(data_dir: Path, body: Callable[[Services], Awaitable[Any]]) -> Any:
    """``body(services)`` on ``data_dir``'s store, which is closed afterwards."""
    async def main() -> Any:
        threads = StoreThreads(READERS)
        store = await threads.write(DuckDBStore, data_dir)
        try:
            services = Services.build(store, threads, DormantEngine([]))
            await services.load()
            return await body(services)
        finally:
            await threads.write(store.close)
            threads.shutdown()

    return asyncio.run(main())
