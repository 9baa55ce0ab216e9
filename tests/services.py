"""The services over a real DuckDB file and the real writer thread, with a dormant engine:
how service-level tests run a body of calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from core.services import DormantEngine, Services, StoreThreads
from core.storage.duckdb import READERS, DuckDBStore


def run_services(data_dir: Path, body: Callable[[Services], Awaitable[Any]]) -> Any:
    """``body(services)`` on ``data_dir``'s store, which is closed afterwards."""
    async def main() -> Any:
        threads = StoreThreads(READERS)
        store = await threads.write(DuckDBStore, data_dir)
        try:
            services = Services.build(store, threads, DormantEngine([]))
            await services.load([])
            return await body(services)
        finally:
            await threads.write(store.close)
            threads.shutdown()

    return asyncio.run(main())
