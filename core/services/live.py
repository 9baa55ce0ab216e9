"""Status changes for open pages: one subscription per page (a Server-Sent Events stream),
never one per monitor.

Publishers (the ingest loop after a transition is stored, the monitor service after a
create, change or delete) call ``publish`` on the event loop; it costs one dict lookup when
nobody of that account is watching. Each subscriber has a bounded queue: a page that cannot
keep up is told to ``resync`` (reload what it shows) instead of holding memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["LiveFeed"]

QUEUE = 1000  # events a slow page may lag behind before it is told to resync
RESYNC: dict[str, Any] = {"event": "resync"}


class LiveFeed:
    """Per-account fan-out of small event dicts (``{"event": "status", "id", "status", ...}``)."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = {}
        self.published = 0
        self.resyncs = 0

    def watching(self, account_id: int) -> bool:
        return bool(self._subscribers.get(account_id))

    def publish(self, account_id: int, event: dict[str, Any]) -> None:
        queues = self._subscribers.get(account_id)
        if not queues:
            return
        self.published += 1
        for queue in queues:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.resyncs += 1
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(RESYNC)

    @contextlib.contextmanager
    def subscribe(self, account_id: int) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        queues = self._subscribers.setdefault(account_id, set())
        queues.add(queue)
        try:
            yield queue
        finally:
            queues.discard(queue)
            if not queues:
                self._subscribers.pop(account_id, None)

    def stats(self) -> dict[str, Any]:
        return {"live": {"streams": sum(len(q) for q in self._subscribers.values()),
                         "published": self.published, "resyncs": self.resyncs}}
