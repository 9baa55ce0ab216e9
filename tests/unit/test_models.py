"""Monitor validation: every bad field named, nothing built from a bad definition."""

from __future__ import annotations

import msgspec
import pytest

from core.models import Monitor, MonitorValidationError, monitor_to_wire, parse_monitor, parse_status_ranges


def fields_of(data: object) -> set[str]:
    with pytest.raises(MonitorValidationError) as info:
        parse_monitor(data)
    return {e.field for e in info.value.errors}


def test_valid_http_monitor_defaults() -> None:
    m = parse_monitor({"name": "site", "type": "http", "url": "https://example.com/health"})
    assert m.type == "http" and m.interval == 60 and m.spec.method == "GET"
    assert m.spec.expected_status == ["200-299"] and m.spec.verify_tls and not m.spec.keep_alive
    assert m.effective_timeout == 30.0


def test_tls_monitor_defaults() -> None:
    monitor = parse_monitor({"name": "cert", "type": "tls", "host": "example.com"})
    assert monitor.type == "tls" and monitor.spec.port == 443 and monitor.spec.min_days_valid == 14
    assert monitor_to_wire(monitor)["minDaysValid"] == 14


def test_dns_monitor_defaults_and_resolvers() -> None:
    from core.models import parse_resolver

    monitor = parse_monitor({"name": "ns", "type": "dns", "host": "example.com"})
    assert (monitor.spec.record_type, monitor.spec.expected_value, monitor.spec.resolver) == ("A", None, None)
    assert [parse_resolver(v) for v in ("10.0.0.1", "10.0.0.1:5353", "[::1]:53", "::1", "x:1")] == [
        ("10.0.0.1", 53), ("10.0.0.1", 5353), ("::1", 53), ("::1", 53), None]


def test_push_tokens_are_generated_and_kept() -> None:
    first = parse_monitor({"name": "job", "type": "push"})
    second = parse_monitor({"name": "job", "type": "push"})
    assert first.spec.push_token != second.spec.push_token and len(first.spec.push_token) >= 16
    patched = parse_monitor({"grace": 30}, partial_of=first)
    assert patched.spec.push_token == first.spec.push_token and patched.spec.grace == 30


def test_every_bad_field_is_named_at_once() -> None:
    bad = {"name": "", "type": "http", "url": "ftp://x", "interval": 0, "timeout": "soon", "retries": -1,
           "headers": {"Bad Name": "v"}, "expectedStatus": ["abc"], "method": "FETCH", "colour": "red"}
    assert fields_of(bad) == {"name", "url", "interval", "timeout", "retries", "headers.Bad Name",
                              "expectedStatus", "method", "colour"}


@pytest.mark.parametrize(("data", "field"), [
    ({"name": "x", "type": "tcp", "host": "h", "port": 70000}, "port"),
    ({"name": "x", "type": "tcp", "host": "h", "port": 0}, "port"),
    ({"name": "x", "type": "tcp", "host": "h"}, "port"),
    ({"name": "x", "type": "smtp"}, "type"),
    ({"name": "x"}, "type"),
    ({"name": "x", "type": "http", "url": "http://h:99999/"}, "url"),
    ({"name": "x", "type": "http", "url": "http:///nohost"}, "url"),
    ({"name": "x", "type": "http", "url": "http://h/", "interval": 86401}, "interval"),
    ({"name": "x", "type": "http", "url": "http://h/", "interval": 10, "timeout": 20}, "timeout"),
    ({"name": "x", "type": "http", "url": "http://h/", "interval": "60"}, "interval"),
    ({"name": "x", "type": "http", "url": "http://h/", "id": 5}, "id"),
    ({"name": "x", "type": "tls", "host": "h", "minDaysValid": -1}, "minDaysValid"),
    ({"name": "x", "type": "tls", "host": "bad host"}, "host"),
    ({"name": "x", "type": "tls", "port": 443}, "host"),
    ({"name": "x", "type": "dns", "host": "a.example", "recordType": "ZZZ"}, "recordType"),
    ({"name": "x", "type": "dns", "host": "a.example", "resolver": "dns.google"}, "resolver"),
    ({"name": "x", "type": "dns", "host": "a.example", "resolver": "10.0.0.1:99999"}, "resolver"),
    ({"name": "x", "type": "ping", "host": "http://a/"}, "host"),
    ({"name": "x", "type": "ping"}, "host"),
    ({"name": "x", "type": "push", "pushToken": "short"}, "pushToken"),
    ({"name": "x", "type": "tcp", "host": "a" * 64 + ".example", "port": 1}, "host"),  # a label over 63
    ({"name": "x", "type": "http", "url": "http://" + "a" * 64 + ".example/"}, "url"),
    ({"name": "x", "type": "dns", "host": "10.0.0.1"}, "host"),
    ({"name": "x", "type": "push", "pushToken": "has spaces in it"}, "pushToken"),
    ({"name": "x", "type": "push", "grace": -1}, "grace"),
    ({"name": "x", "type": "http", "url": "http://h/", "jsonPath": "a..b"}, "jsonPath"),
    ({"name": "x", "type": "http", "url": "http://h/", "expectedValue": "ok"}, "expectedValue"),
])
def test_single_bad_field(data: dict, field: str) -> None:
    assert field in fields_of(data)


def test_not_an_object() -> None:
    assert fields_of([1, 2]) == {"body"}


def test_wire_round_trip_and_msgpack() -> None:
    m = parse_monitor({"name": "db", "type": "tcp", "host": "10.0.0.5", "port": 5432, "tags": ["prod"]})
    again = parse_monitor({k: v for k, v in monitor_to_wire(m).items() if k not in ("id", "status")})
    assert again == m
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(m), type=Monitor) == m


def test_patch_keeps_other_fields_and_type() -> None:
    m = parse_monitor({"name": "a", "type": "http", "url": "http://h/", "interval": 30})
    m.id = 9
    patched = parse_monitor({"interval": 10}, partial_of=m)
    assert patched.interval == 10 and patched.spec.url == "http://h/" and patched.id == 9
    with pytest.raises(MonitorValidationError):
        parse_monitor({"type": "tcp"}, partial_of=m)


def test_status_ranges() -> None:
    assert parse_status_ranges(["200-299", "301", "4xx"]) == [(200, 299), (301, 301), (400, 499)]
    for bad in (["99"], ["300-200"], ["abc"], []):
        with pytest.raises(ValueError):
            parse_status_ranges(bad)


def test_private_addresses_and_targets() -> None:
    from core.models import is_private_address, private_target

    private = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.1.1", "100.64.0.1", "0.0.0.0", "::1",
               "fe80::1", "fc00::1", "::ffff:127.0.0.1", "224.0.0.1", "[::1]"]
    public = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "example.com"]
    assert all(is_private_address(a) for a in private) and not any(is_private_address(a) for a in public)
    for data, found in [
        ({"type": "http", "url": "http://127.0.0.1:8080/"}, ("url", "127.0.0.1")),
        ({"type": "http", "url": "https://LOCALHOST/"}, ("url", "localhost")),
        ({"type": "tcp", "host": "db.localhost", "port": 5432}, ("host", "db.localhost")),
        ({"type": "ping", "host": "10.0.0.1"}, ("host", "10.0.0.1")),
        ({"type": "http", "url": "https://example.com/"}, None),
        ({"type": "dns", "host": "example.com"}, None),
    ]:
        assert private_target(parse_monitor({"name": "x", **data})) == found


def test_every_kind_names_its_target_one_way() -> None:
    """``Spec.target()`` is the one answer for the CLI's list (from the flat wire form too)
    and for alert messages, where a push or agent monitor's token-bearing URL is left out."""
    from core.models import KINDS, wire_target
    from core.storage.duckdb.integrations import alert_target

    cases = {
        "http": ({"url": "https://example.com/x"}, "https://example.com/x"),
        "tcp": ({"host": "db.example.com", "port": 5432}, "db.example.com:5432"),
        "tls": ({"host": "example.com"}, "example.com:443"),
        "dns": ({"host": "example.com", "recordType": "MX"}, "example.com MX"),
        "ping": ({"host": "192.0.2.7"}, "192.0.2.7"),
        "push": ({"pushToken": "tok-12345678"}, "/api/push/tok-12345678"),
        "agent": ({"agentToken": "tok-12345678"}, "/api/agent/tok-12345678/report"),
    }
    assert set(cases) == set(KINDS)
    for kind, (fields, target) in cases.items():
        monitor = parse_monitor({"name": "x", "type": kind, **fields})
        assert monitor.spec is not None and monitor.spec.target() == target
        assert wire_target(monitor_to_wire(monitor)) == target
        spec_json = msgspec.json.encode(monitor.spec).decode()
        assert alert_target(kind, spec_json) == ("" if kind in ("push", "agent") else target)
