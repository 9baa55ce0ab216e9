"""``/metrics``' hand-written text against the format's own parser: hostile names and targets,
monitors never checked, and what ``instance`` may show of a target."""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import families
from core.models import parse_monitor
from core.services.probes import PHASES, ProbeTable, instance_of


def _monitors() -> list[Any]:
    wire = [
        {"name": 'a "quoted" \\ name\nwith a line', "type": "http", "tags": ["prod", "eu"],
         "url": "https://example.com:8443/health?token=abc#frag"},
        {"name": "v6", "type": "tcp", "host": "2001:db8::1", "port": 5432},
        {"name": "beat", "type": "push"},
        {"name": "never", "type": "dns", "host": "example.org"},
    ]
    monitors = [parse_monitor(w) for w in wire]
    for i, m in enumerate(monitors):
        m.id = i + 1
    monitors[0].status, monitors[1].status, monitors[2].status = "up", "down", "up"
    return monitors


def test_instance_shows_the_target_without_its_secrets() -> None:
    http, tcp, push, dns = _monitors()
    assert instance_of(http) == "https://example.com:8443/health"
    assert instance_of(tcp) == "[2001:db8::1]:5432"
    assert instance_of(push) is None and instance_of(dns) == "example.org"


def test_the_text_parses_and_says_what_memory_holds() -> None:
    monitors = _monitors()
    table = ProbeTable()
    batch = {"monitor_id": np.array([1, 2, 1]), "ok": np.array([True, False, True]),
             "status_code": np.array([500, 0, 200]), "dns_us": np.array([-1, -1, 1_000]),
             "connect_us": np.array([2_000, 3_000, 2_000]), "tls_us": np.array([-1, -1, 5_000]),
             "ttfb_us": np.array([9_000, -1, 9_000])}
    table.note(batch)
    ids = np.array([m.id for m in monitors])
    figures = table.gather(ids)
    figures["ts"] = np.array([1_800_000_000_000_000, 1_800_000_000_500_000, 0, 0])
    figures["latency"] = np.array([20_000, 3_000, 0, 0])
    ratios = np.array([[1.0, 0.5, np.nan], [0.0, 0.0, 0.0], [np.nan] * 3, [np.nan] * 3])
    got: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families("".join(families(monitors, figures, ratios, with_tags=True))):
        for s in family.samples:
            got.setdefault(s.name, []).append(s)

    def of(name: str, monitor_id: int) -> list[Any]:
        return [s for s in got.get(name, []) if s.labels["monitor_id"] == str(monitor_id)]

    first = of("xuptime_monitor_up", 1)[0]
    assert first.labels["name"] == 'a "quoted" \\ name\nwith a line' and first.labels["tags"] == ",prod,eu,"
    assert first.value == 1 and of("xuptime_monitor_up", 2)[0].labels["tags"] == ""
    assert [s.value for s in of("xuptime_monitor_checks_total", 1)] == [2]
    assert [s.value for s in of("xuptime_monitor_failures_total", 2)] == [1]
    success = {s.labels["monitor_id"]: (s.value, s.labels.get("instance")) for s in got["probe_success"]}
    # (the push monitor never checked since the start: its status stands in; the dns one: nothing)
    assert success == {"1": (1, "https://example.com:8443/health"), "2": (0, "[2001:db8::1]:5432"), "3": (1, None)}
    assert [s.value for s in of("probe_http_status_code", 1)] == [200]
    phases = {s.labels["phase"]: s.value for s in of("probe_http_duration_seconds", 1)}
    assert phases.keys() == {"resolve", "connect", "tls", "processing", "transfer"}
    assert abs(phases["processing"] - 0.009) < 1e-5 and abs(phases["transfer"] - 0.003) < 1e-5
    assert [s.value for s in of("probe_dns_lookup_time_seconds", 1)] == [phases["resolve"]]
    windows = {s.labels["window"]: s.value for s in of("xuptime_monitor_uptime_ratio", 1)}
    assert windows == {"24h": 1.0, "7d": 0.5}  # (no check in 30 days: no sample, not a NaN)
    assert of("xuptime_monitor_latency_seconds", 4) == [] and len(of("xuptime_monitor_status", 4)) == 5
    assert len(PHASES) == 4 and table.gather(np.array([4_000]))["ok"].tolist() == [-1]  # (ids past the end)
