"""The live feed of open pages: a page subscribing after the mark it was rendered with gets
what was published in between, in order and once; a mark the feed cannot serve (too old, of
another run of the server, not a mark) is a ``resync``, never a silent gap."""

from __future__ import annotations

import asyncio
from typing import Any

from core.services.live import REPLAY, RESYNC, LiveFeed


def drain(queue: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def status(monitor_id: int, value: str) -> dict[str, Any]:
    return {"event": "status", "id": monitor_id, "status": value}


def test_a_page_gets_what_changed_between_its_render_and_its_stream() -> None:
    feed = LiveFeed()
    feed.publish(1, status(7, "down"))
    rendered = feed.mark(1)  # (the page shows 7 down)
    feed.publish(1, status(7, "up"))  # while the page loads
    feed.publish(2, status(9, "up"))  # another account's: not this page's
    with feed.subscribe(1, rendered) as queue:
        feed.publish(1, status(8, "down"))
        got = drain(queue)
    assert [(e["id"], e["status"]) for e in got] == [(7, "up"), (8, "down")]
    assert [e["seq"] for e in got] == [2, 3]
    with feed.subscribe(1, feed.mark(1)) as queue:
        assert drain(queue) == []  # (nothing since: nothing replayed)
    with feed.subscribe(1) as queue:
        assert drain(queue) == []  # (no mark: from now on)


def test_a_reconnecting_page_continues_from_its_last_event() -> None:
    feed = LiveFeed()
    with feed.subscribe(1, feed.mark(1)) as queue:
        feed.publish(1, status(1, "up"))
        last = drain(queue)[-1]
    feed.publish(1, status(1, "down"))  # (while the page was disconnected)
    with feed.subscribe(1, f"{feed.boot}.{last['seq']}") as queue:  # (its Last-Event-ID)
        assert [e["status"] for e in drain(queue)] == ["down"]


def test_marks_the_feed_cannot_serve_are_a_resync() -> None:
    feed = LiveFeed()
    old = feed.mark(1)
    for i in range(REPLAY + 1):
        feed.publish(1, status(i, "up"))
    for after in (old, f"other.{0}", f"{feed.boot}.{10**6}", f"{feed.boot}.x", f"{feed.boot}.{'9' * 5000}",
                  f"{feed.boot}.\u00b2", "nonsense"):
        with feed.subscribe(1, after) as queue:
            assert drain(queue) == [RESYNC], after
    with feed.subscribe(1, f"{feed.boot}.{REPLAY + 1 - REPLAY}") as queue:  # (just within the ring)
        assert len(drain(queue)) == REPLAY
