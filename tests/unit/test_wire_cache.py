"""The monitors list's cache of wire forms: used only while a monitor's definition is the one
it was built from, with the live status filled in every time, and bounded."""

from __future__ import annotations

from pathlib import Path

from api.monitors import WireCache, listed_bodies, monitor_body
from core.services import Services
from tests.services import run_services


def test_a_changed_definition_is_never_answered_from_the_cache(tmp_path: Path) -> None:
    async def body(s: Services) -> None:
        created, _ = await s.monitors.create(1, {"name": "api", "type": "http", "url": "http://127.0.0.1:9/"})
        mid = created.id
        cache = WireCache()
        first = listed_bodies(s.monitors, [mid], cache)[0]
        assert first == monitor_body(*await s.monitors.get(1, mid), None) and first["status"] == "pending"
        assert len(cache) == 1
        s.monitors.engine.monitors.set_status(mid, "down")  # (the definition stays: its cached part is used)
        assert listed_bodies(s.monitors, [mid], cache)[0]["status"] == "down"
        await s.monitors.update(1, mid, {"name": "api v2"})
        again = listed_bodies(s.monitors, [mid], cache)[0]
        assert again["name"] == "api v2" and again == monitor_body(*await s.monitors.get(1, mid), None)

    run_services(tmp_path, body)


def test_the_least_recently_used_leave_past_its_size() -> None:
    cache = WireCache(size=2)
    revisions = [object() for _ in range(3)]
    cache.put(1, revisions[0], {"id": 1})
    cache.put(2, revisions[1], {"id": 2})
    assert cache.get(1, revisions[0]) == {"id": 1}  # (1 is now the most recent)
    cache.put(3, revisions[2], {"id": 3})
    assert len(cache) == 2 and cache.get(2, revisions[1]) is None and cache.get(1, revisions[0]) == {"id": 1}
    assert cache.get(1, object()) is None  # (another revision: not this entry)
    cache.pop(1)
    cache.pop(1)
    assert len(cache) == 1
