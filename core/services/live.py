"""Status changes for open pages: one subscription per page (a Server-Sent Events stream),
never one per monitor.

Publishers (the ingest loop after a transition is stored, the monitor service after a
create, change or delete) call ``publish`` on the event loop; with nobody of that account
watching it costs a counter and a place in a short ring. Each subscriber has a bounded queue:
a page that cannot keep up is told to ``resync`` (reload what it shows) instead of holding
memory without bound.

Every event of an account has a mark (``seq`` in the event, ``"{boot}.{seq}"`` as text). A page
is rendered with the mark of its account at that moment and subscribes ``after`` it; what was
published in between (the page's own new monitor turning up while it loaded) comes first, from
the ring. The SSE stream sends each mark as the event's id, so a reconnecting page continues
where it was. A mark the ring no longer reaches, or one of another run of the server, is a
``resync``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

__all__ = ["LiveFeed"]

QUEUE = 1000  # events a slow page may lag behind before it is told to resync
REPLAY = 256  # events of an account kept for pages subscribing after their mark
RESYNC: dict[str, Any] = {"event": "resync"}


class LiveFeed:
    """Per-account fan-out of small event dicts (``{"event": "status", "id", "status", ...}``)."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._seq: dict[int, int] = {}  # account -> its newest event's seq
        self._recent: dict[int, collections.deque[dict[str, Any]]] = {}  # account -> its last REPLAY events
        self.boot = secrets.token_hex(4)  # (marks of an earlier run of the server mean nothing now)
        self.published = 0
        self.resyncs = 0

    def watching(self, account_id: int) -> bool:
        return bool(self._subscribers.get(account_id))

    def mark(self, account_id: int) -> str:
        """Where the account's events are now: what a page rendered now subscribes after."""
        return f"{self.boot}.{self._seq.get(account_id, 0)}"

    def publish(self, account_id: int, event: dict[str, Any]) -> None:
        seq = self._seq.get(account_id, 0) + 1
        self._seq[account_id] = seq
        event["seq"] = seq
        recent = self._recent.get(account_id)
        if recent is None:
            recent = self._recent[account_id] = collections.deque(maxlen=REPLAY)
        recent.append(event)
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
    def subscribe(self, account_id: int, after: str | None = None) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of the account's events from now on; with ``after`` (a ``mark``), those
        published since that mark first, or a ``resync`` when they cannot all be had."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        if after is not None:
            for event in self._since(account_id, after):
                queue.put_nowait(event)
        queues = self._subscribers.setdefault(account_id, set())
        queues.add(queue)
        try:
            yield queue
        finally:
            queues.discard(queue)
            if not queues:
                self._subscribers.pop(account_id, None)

    def _since(self, account_id: int, after: str) -> list[dict[str, Any]]:
        boot, _, seq = after.partition(".")
        newest = self._seq.get(account_id, 0)
        if boot != self.boot or not (seq.isascii() and seq.isdigit() and len(seq) < 19) or int(seq) > newest:
            self.resyncs += 1
            return [RESYNC]
        missed = [event for event in self._recent.get(account_id, ()) if event["seq"] > int(seq)]
        if len(missed) != newest - int(seq):  # (the ring no longer reaches back that far)
            self.resyncs += 1
            return [RESYNC]
        return missed

    def stats(self) -> dict[str, Any]:
        return {"live": {"streams": sum(len(q) for q in self._subscribers.values()),
                         "published": self.published, "resyncs": self.resyncs}}
