"""The monitors list's cache of wire forms: used only while a monitor's definition is the one
it was built from, with the live status filled in every time, and bounded."""

from __future__ import annotations

import msgspec

from api.monitors import WireCache, monitor_body
from core.engine.table import MonitorTable
from core.models import HttpSpec, Monitor, MonitorTimes

TIMES = MonitorTimes(created_at="2026-12-01T10:00:00Z", updated_at="2026-12-01T10:00:00Z", status_since=None)


def test_a_changed_definition_is_never_answered_from_the_cache() -> None:
    table = MonitorTable([Monitor(id=1, name="api", spec=HttpSpec(url="http://127.0.0.1:9/"), status="up")])
    cache = WireCache()
    first = monitor_body(table[1], TIMES, None, cache, table.packed(1))
    assert first["name"] == "api" and first["status"] == "up" and len(cache) == 1
    table.set_status(1, "down")  # (a status change keeps the definition: the cached part is used)
    assert monitor_body(table[1], TIMES, None, cache, table.packed(1))["status"] == "down"
    table.put(msgspec.structs.replace(table[1], name="api v2"))
    assert monitor_body(table[1], TIMES, None, cache, table.packed(1))["name"] == "api v2"


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
