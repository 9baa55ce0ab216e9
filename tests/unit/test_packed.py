"""Monitors held as bytes (``core.models.packed``) and the main process's table of them
(``core.engine.table``): every field of every kind comes back, and the table answers what
faces ask (filters, counts, owners) from its columns with the live status."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine.table import MonitorTable, _Arena
from core.engine.transport import AnyFrame, Upsert
from core.models import (
    KINDS,
    AgentSpec,
    AgentThresholds,
    DnsSpec,
    HttpSpec,
    Monitor,
    PingSpec,
    PushSpec,
    TcpSpec,
    TlsSpec,
)
from core.models.packed import pack, unpack, without_url

#: One spec of each kind with every field away from its default.
SPECS = {
    "http": HttpSpec(url="https://example.com:8443/a?b=c", method="POST", headers={"X-A": "1", "Host": "h"},
                     body='{"x": 1}', expected_status=["200", "301-302"], keyword="welcome",
                     follow_redirects=False, max_redirects=3, verify_tls=False, keep_alive=True,
                     max_body_bytes=4096, json_path="$.status", expected_value="ok", tls_resume=False),
    "tcp": TcpSpec(host="db.internal", port=5432, send="PING\r\n", expect="+PONG"),
    "tls": TlsSpec(host="example.com", port=8443, min_days_valid=30),
    "dns": DnsSpec(host="example.com", record_type="MX", expected_value="mail.example.com", resolver="9.9.9.9"),
    "ping": PingSpec(host="10.0.0.1"),
    "push": PushSpec(push_token="tok-push-12345678", grace=600, schedule="0 3 * * *", timezone="Europe/Paris"),
    "agent": AgentSpec(agent_token="tok-agent-12345678", thresholds=AgentThresholds(cpu_percent=90.5, disk_percent=80),
                       for_reports=3, grace=120),
}


def _full(kind: str, mid: int = 41) -> Monitor:
    return Monitor(id=mid, account_id=7, name=f"every field — {kind} \"quoted\"", interval=45, timeout=2.5, retries=2,
                   recovery_threshold=3, paused=True, tags=["db", "eu"], integrations=[3, 9], spec=SPECS[kind],
                   status="down")


def _not_default(value: object, field: msgspec.structs.FieldInfo) -> bool:
    if field.default is not msgspec.NODEFAULT:
        return value != field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return value != field.default_factory()
    return True


def test_the_examples_set_every_field_of_every_kind() -> None:
    """(So that a field added later is packed by the tests below, not assumed.)"""
    assert set(SPECS) == set(KINDS)
    for kind, spec in SPECS.items():
        for field in msgspec.structs.fields(spec):
            assert _not_default(getattr(spec, field.name), field), f"{kind}.{field.name} is left at its default"
    monitor = _full("http")
    for field in msgspec.structs.fields(Monitor):
        assert _not_default(getattr(monitor, field.name), field), f"Monitor.{field.name} is left at its default"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_field_of_every_kind_comes_back(kind: str) -> None:
    from core.models.packed import pack, unpack

    monitor = _full(kind)
    packed = pack(monitor)
    assert unpack(packed) == monitor
    assert unpack(packed, "up") == msgspec.structs.replace(monitor, status="up")
    # (and smaller than msgspec's own form, which names every field)
    assert len(packed) < len(msgspec.msgpack.encode(monitor))


def test_a_plain_monitor_is_a_fraction_of_its_named_form() -> None:
    from core.models.packed import pack, unpack

    plain = Monitor(id=123_456, name="bench-123456", spec=HttpSpec(url="http://127.0.0.1:8080/"))
    assert unpack(pack(plain)) == plain
    # (values every monitor shares are not written: about 60 bytes, where msgspec takes 300)
    assert len(pack(plain)) * 5 < len(msgspec.msgpack.encode(plain))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_monitor_left_at_every_default_comes_back_with_fresh_defaults(kind: str) -> None:
    from core.models.packed import pack, unpack

    spec = msgspec.convert({f.encode_name: getattr(SPECS[kind], f.name) for f in msgspec.structs.fields(SPECS[kind])
                            if f.required}, type(SPECS[kind]))
    bare = Monitor(id=7, name="bare", spec=spec)
    first, second = unpack(pack(bare)), unpack(pack(bare), "down")
    assert first == bare and second == msgspec.structs.replace(bare, status="down")
    first.tags.append("mine")  # (a default list is a new one each time, never shared)
    assert second.tags == [] and unpack(pack(bare)).tags == []


def test_the_table_keeps_each_name_once_and_gives_monitors_back_whole() -> None:
    """``MonitorTable`` packs monitors without their names (it keeps names in an arena of
    their own, for search): what it gives back has the name, and what it packed is that much
    smaller."""
    from core.models.packed import pack, unpack

    monitor = _full("http", 5)
    monitor.name = "a rather long monitor name, as people give them"
    nameless = pack(monitor, name=False)
    assert unpack(nameless) == msgspec.structs.replace(monitor, name="")
    assert len(pack(monitor)) - len(nameless) >= len(monitor.name.encode())
    table = MonitorTable([monitor])
    assert table[5] == monitor and table.packed(5) == nameless and table.name(5) == monitor.name


def test_upsert_frames_carry_packed_monitors_and_their_live_statuses() -> None:
    monitors = [_full(kind, mid) for mid, kind in enumerate(sorted(KINDS), start=1)]
    monitors[0].status = "up"
    frame = msgspec.msgpack.Decoder(AnyFrame).decode(msgspec.msgpack.encode(
        Upsert.from_table(MonitorTable(monitors), [m.id for m in monitors])))
    assert isinstance(frame, Upsert)
    # (without their names, which the main process keeps apart and a worker never needs)
    assert [monitor for monitor, _ in frame.decoded()] == [msgspec.structs.replace(m, name="") for m in monitors]
    broken = Upsert(monitors=frame.monitors, statuses=frame.statuses[:-1])
    with pytest.raises(ValueError):
        list(broken.decoded())


def _table() -> tuple[MonitorTable, list[Monitor]]:
    rows = [
        Monitor(id=5, account_id=1, name="Checkout API", spec=SPECS["http"], status="up", tags=["shop"]),
        Monitor(id=2, account_id=1, name="db primary", spec=SPECS["tcp"], status="down", tags=["db", "shop"]),
        Monitor(id=9, account_id=2, name="Other account's API", spec=SPECS["http"], status="up"),
        Monitor(id=3, account_id=1, name="nightly backup", spec=SPECS["push"], status="paused", paused=True),
        Monitor(id=2000, account_id=1, name="api edge", spec=SPECS["http"], status="pending"),
    ]
    return MonitorTable(rows), rows


def test_the_table_gives_back_each_monitor_with_its_live_status() -> None:
    table, rows = _table()
    assert len(table) == 5 and list(table) == [2, 3, 5, 9, 2000] and table.ids() == [2, 3, 5, 9, 2000]
    assert all(table[m.id] == m for m in rows)
    assert 4 not in table and 10**9 not in table and -1 not in table and table.get(4) is None
    with pytest.raises(KeyError):
        table[4]
    table.set_status(5, "down")
    assert table[5].status == "down" and table.status(5) == "down"
    table[5].name = "changed through a copy"  # (what is read is a copy)
    assert table[5].name == "Checkout API" and table.name(5) == "Checkout API"
    table.set_status(4, "up")  # (not held: nothing happens)
    assert 4 not in table
    changed = msgspec.structs.replace(rows[0], name="Checkout API v2", tags=[], status="up")
    table.put(changed)
    assert table[5] == changed and table.tags(5) == () and len(table) == 5
    assert table.pop(2) == rows[1] and 2 not in table and len(table) == 4 and table.pop(2) is None
    assert (table.account(9), table.kind(3), table.paused(3), table.top()) == (2, "push", True, 2000)


def test_the_table_filters_and_counts_from_its_columns() -> None:
    table, _ = _table()
    mine = [2, 3, 5, 2000]
    assert table.select(mine, status="up") == [5]
    assert table.select(mine, kind="http") == [5, 2000] and table.select(mine, kind="nope") == []
    assert table.select(mine, tag="shop") == [2, 5] and table.select(mine, tag="db", status="down") == [2]
    assert table.select(mine, q="API") == [5, 2000] and table.select([*mine, 7], q="") == mine
    assert table.status_counts(mine) == {"up": 1, "down": 1, "paused": 1, "pending": 1}
    assert table.status_counts([]) == {}
    assert {a: ids.tolist() for a, ids in table.ids_by_account().items()} == {1: [2, 3, 5, 2000], 2: [9]}
    assert table.of_kinds(["push", "agent"]) == [3]
    table.set_status(2000, "quarantined")  # (a status no release writes: still held and counted)
    assert table[2000].status == "quarantined" and table.select(mine, status="quarantined") == [2000]
    assert table.status_counts(mine) == {"up": 1, "down": 1, "paused": 1, "quarantined": 1}
    table.set_status(2000, "up")
    assert table.status_counts(mine) == {"up": 2, "down": 1, "paused": 1}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.one_of(st.none(), st.binary(max_size=60))), max_size=300))
def test_the_tables_byte_arena_keeps_every_live_string_through_replacements_and_compactions(
        ops: list[tuple[int, bytes | None]]) -> None:
    """Strings by id in one buffer: whatever was put last for an id comes back, popped ids
    give None, and the buffer stays within twice the live bytes (over the compaction floor)."""
    arena = _Arena()
    arena._COMPACT_ABOVE = 64  # (compact often)
    arena.fit(41)
    model: dict[int, bytes] = {}
    for i, data in ops:
        if data is None:
            arena.pop(i)
            model.pop(i, None)
        else:
            arena.put(i, data)
            model[i] = data
        assert len(arena._buf) <= max(2 * sum(map(len, model.values())), 64) + 60 + 64
    assert {i: arena.get(i) for i in range(41) if arena.get(i) is not None} == model
    assert arena.get(41) is None and arena.get(-1) is None


def test_a_replaced_monitor_gets_a_new_revision_and_its_name_is_searched() -> None:
    table = MonitorTable()
    table.put(Monitor(id=3, name="Ünïcode shop", spec=SPECS["http"]))
    (first,), _ = table.revisions_and_statuses([3])
    table.set_status(3, "up")
    assert table.revisions_and_statuses([3]) == ([first], ["up"])  # (a status is not a revision)
    table.put(Monitor(id=3, name="Ünïcode shop 2", spec=SPECS["http"], status="up"))
    (second,), _ = table.revisions_and_statuses([3])
    assert second != first and table.name(3) == "Ünïcode shop 2"
    assert table.select([3], q="ïCODE") == [3] and table.select([3], q="nope") == []


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_the_url_is_left_out_of_packed_bytes_as_packing_without_it_does(kind: str) -> None:
    for full in (_full(kind), Monitor(id=3, name="", spec=SPECS[kind]), _full(kind, mid=70_000)):
        for named in (True, False):
            packed = pack(full, name=named)
            short = without_url(packed, getattr(full.spec, "url", ""))
            if kind != "http":
                assert short is None  # (no URL to leave out)
                continue
            assert short == pack(full, name=named, url=False)
            assert unpack(short).spec.url == "" and without_url(packed, "http://another.example/") is None
            assert msgspec.structs.replace(unpack(short), spec=full.spec) == unpack(packed)
    # (a tag spelled like the kind, before the spec in the bytes)
    tagged = Monitor(id=9, name="", tags=["http"], spec=HttpSpec(url="http://x.example/"))
    assert without_url(pack(tagged), "http://x.example/") == pack(tagged, url=False)
