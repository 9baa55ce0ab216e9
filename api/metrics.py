"""``GET /metrics``: the account's monitors in the Prometheus text format.

An API key is required (the same three ways as ``/api/v1``) and picks the account: one scrape
shows that account's monitors only. Scrapes are not counted against the monthly quota (a
scrape every 15 s would take 175k requests a month). Served from memory, but for the uptime
of hours already rolled up: one scan of the hourly tier for every monitor at the first scrape,
scanned again in the background when a rollup lands or the hour turns (the scan before serves
meanwhile). Gzipped when the scraper accepts it (Prometheus does).

Per monitor (labels ``monitor_id``, ``name``, ``type``, and with ``?tags=true`` ``tags``: the
monitor's tags joined by commas, with a comma before and after, so ``tags=~".*,prod,.*"``
selects a tag): ``xuptime_monitor_up`` (1 up, 0 otherwise), ``xuptime_monitor_status`` (1 for
the current one of pending/up/down/paused/maintenance, as a ``status`` label),
``xuptime_monitor_paused``, ``xuptime_monitor_latency_seconds`` and
``xuptime_monitor_last_check_timestamp_seconds`` of the newest check,
``xuptime_monitor_interval_seconds``, ``xuptime_monitor_uptime_ratio{window="24h|7d|30d"}``
(the last 24, 168 and 720 hours, the current one so far included; absent without a check),
and the counters ``xuptime_monitor_checks_total`` and ``xuptime_monitor_failures_total``
(since the server started).

blackbox_exporter's names too, so dashboards made for it work: ``probe_success`` (the newest
check's outcome; the monitor's status until its first check since the start),
``probe_duration_seconds``, ``probe_http_status_code``, ``probe_dns_lookup_time_seconds`` and
``probe_http_duration_seconds{phase="resolve|connect|tls|processing|transfer"}`` where the
check measured them, labelled ``instance`` (what is checked: an HTTP URL without user,
password, query or fragment, ``host:port``, or the host; none for push and agent monitors)
beside the labels above. Prometheus renames a scraped ``instance`` label to
``exported_instance`` unless the scrape sets ``honor_labels: true`` (see ``docs/grafana.md``).

Per agent (labels ``monitor_id``, ``name``, ``hostname``), its newest report:
``xuptime_agent_cpu_percent``, ``_load{period}``, ``_memory_used_bytes``/``_total_bytes``,
``_swap_*``, ``_disk_used_bytes{mount}``/``_disk_total_bytes``,
``_network_receive_bytes_per_second``/``_transmit_``, ``_processes``, ``_uptime_seconds`` and
``_last_report_timestamp_seconds``.

The monitors' families are written by hand (``families``): ``prometheus_client`` builds a
sample object per line, which for 100k monitors' two million lines costs seconds
(``bench.metrics`` measures both). The answer is streamed a family at a time, made on a
worker thread: the event loop serves other requests meanwhile.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from litestar import Request, get
from litestar.di import NamedDependency as Named
from litestar.response import Stream
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from api.auth import key_from
from api.errors import ApiError, BadRequest
from core.models import STATUSES, Monitor
from core.services import AccountService, AgentService, HistoryService, MonitorService, SystemService
from core.services.probes import instance_of

__all__ = ["families", "metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: ``xuptime_monitor_uptime_ratio``'s windows: label and hours.
WINDOWS = (("24h", 24), ("7d", 168), ("30d", 720))
#: Gzip level: 1 packs a scrape's text about 8:1 at a fraction of level 6's time.
GZIP_LEVEL = 1


class _Unauthorized(ApiError):
    status_code = 401


def _escape(value: str) -> str:
    """A label value as the text format quotes it."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


#: Sample values written as ``prometheus_client`` writes them (``floatToGoString``: ``1.0``,
#: ``200.0``, ``1.8e+09``), so a scrape reads the same as before the text was written here.
ONE, ZERO = "1.0", "0.0"
_go = floatToGoString


def _family(name: str, kind: str, text: str, samples: Iterable[str]) -> str:
    """One family in the text format: its help and type lines, then its samples (a family's
    samples together, as the format requires)."""
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n" + "".join(samples)


def families(monitors: Iterable[Monitor], figures: dict[str, np.ndarray], ratios: np.ndarray,
             with_tags: bool = False) -> Iterator[str]:
    """The monitors' families in the text format, one family at a time (a scrape of 100k
    monitors is 200 MB of text: held a family at a time, not whole). ``figures`` and
    ``ratios`` are aligned with ``monitors`` (``MonitorService.probe_figures``,
    ``HistoryService.uptime_ratios`` over ``WINDOWS``)."""
    monitors = list(monitors)  # (decoded here: on the thread that writes the text)
    labels: list[str] = []
    probe: list[str] = []  # (the labels with ``instance`` first, where the monitor has one)
    for m in monitors:
        label = f'monitor_id="{m.id}",name="{_escape(m.name)}",type="{m.type}"'
        if with_tags:
            label += f',tags="{_escape("," + ",".join(m.tags) + "," if m.tags else "")}"'
        labels.append(label)
        instance = instance_of(m)
        probe.append(label if instance is None else f'instance="{_escape(instance)}",{label}')
    statuses = [m.status for m in monitors]
    ts, latency = figures["ts"].tolist(), figures["latency"].tolist()
    seen = [i for i, t in enumerate(ts) if t]
    ok, code = figures["ok"].tolist(), figures["code"].tolist()
    phases = figures["phases"].tolist()
    http = [i for i, m in enumerate(monitors) if m.type == "http"]

    def each(name: str, values: Iterator[tuple[int, str]], which: list[str] = labels) -> Iterator[str]:
        return (f"{name}{{{which[i]}}} {v}\n" for i, v in values)

    yield _family("xuptime_monitor_up", "gauge", "1 if the monitor is up, else 0",
               each("xuptime_monitor_up", ((i, ONE if s == "up" else ZERO) for i, s in enumerate(statuses))))
    yield _family("xuptime_monitor_status", "gauge", "1 for the monitor's current status",
               (f'xuptime_monitor_status{{{label},status="{name}"}} {ONE if s == name else ZERO}\n'
                for label, s in zip(labels, statuses, strict=True) for name in STATUSES))
    yield _family("xuptime_monitor_paused", "gauge", "1 if the monitor is paused",
               each("xuptime_monitor_paused", ((i, ONE if m.paused else ZERO) for i, m in enumerate(monitors))))
    yield _family("xuptime_monitor_latency_seconds", "gauge", "latency of the newest check",
               each("xuptime_monitor_latency_seconds", ((i, _go(latency[i] / 1e6)) for i in seen)))
    yield _family("xuptime_monitor_last_check_timestamp_seconds", "gauge", "Unix time of the newest check",
               each("xuptime_monitor_last_check_timestamp_seconds", ((i, _go(ts[i] / 1e6)) for i in seen)))
    yield _family("xuptime_monitor_interval_seconds", "gauge", "how often the monitor is checked",
               each("xuptime_monitor_interval_seconds", ((i, _go(m.interval)) for i, m in enumerate(monitors))))
    rows = ratios.tolist()
    yield _family("xuptime_monitor_uptime_ratio", "gauge",
               "share of checks up over the window (checks in maintenance left out)",
               (f'xuptime_monitor_uptime_ratio{{{labels[i]},window="{window}"}} {_go(row[w])}\n'
                for i, row in enumerate(rows) for w, (window, _) in enumerate(WINDOWS) if row[w] == row[w]))
    yield _family("xuptime_monitor_checks_total", "counter", "checks stored since the server started",
               each("xuptime_monitor_checks_total", enumerate(map(_go, figures["checks"].tolist()))))
    yield _family("xuptime_monitor_failures_total", "counter", "failed checks stored since the server started",
               each("xuptime_monitor_failures_total", enumerate(map(_go, figures["failures"].tolist()))))

    def success(i: int) -> str | None:
        if ok[i] >= 0:
            return ONE if ok[i] else ZERO
        return {"up": ONE, "down": ZERO}.get(statuses[i])

    yield _family("probe_success", "gauge", "1 if the newest check succeeded (blackbox_exporter's name)",
               each("probe_success", ((i, v) for i in range(len(monitors)) if (v := success(i)) is not None), probe))
    yield _family("probe_duration_seconds", "gauge", "how long the newest check took",
               each("probe_duration_seconds", ((i, _go(latency[i] / 1e6)) for i in seen), probe))
    yield _family("probe_http_status_code", "gauge", "the HTTP status of the newest check's response",
               each("probe_http_status_code", ((i, _go(code[i])) for i in http if code[i]), probe))
    yield _family("probe_dns_lookup_time_seconds", "gauge", "the newest check's name resolution",
               each("probe_dns_lookup_time_seconds", ((i, _go(phases[i][0] / 1e6)) for i in seen
                                                      if phases[i][0] >= 0), probe))

    def http_phases(i: int) -> Iterator[str]:
        dns, connect, tls, ttfb = phases[i]
        known = [("resolve", dns), ("connect", connect), ("tls", tls), ("processing", ttfb)]
        for name, us in known:
            if us >= 0:
                yield f'probe_http_duration_seconds{{{probe[i]},phase="{name}"}} {_go(us / 1e6)}\n'
        if ttfb >= 0:
            rest = latency[i] - sum(us for _, us in known if us >= 0)
            yield f'probe_http_duration_seconds{{{probe[i]},phase="transfer"}} {_go(max(0, rest) / 1e6)}\n'

    yield _family("probe_http_duration_seconds", "gauge", "the newest HTTP check's phases",
               (line for i in http if ts[i] for line in http_phases(i)))


class _Agents(Collector):
    """The newest report of each of the account's agents (the host's own figures)."""

    def __init__(self, agents: AgentService, account_id: int) -> None:
        self.agents = agents
        self.account_id = account_id

    def collect(self) -> Iterator[Metric]:
        labels = ["monitor_id", "name", "hostname"]

        def gauge(name: str, text: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"xuptime_agent_{name}", text, labels=[*labels, *extra])

        cpu = gauge("cpu_percent", "CPU busy, percent")
        load = gauge("load", "load average", ("period",))
        mem_used, mem_total = gauge("memory_used_bytes", "memory in use"), gauge("memory_total_bytes", "memory")
        swap_used, swap_total = gauge("swap_used_bytes", "swap in use"), gauge("swap_total_bytes", "swap")
        disk_used = gauge("disk_used_bytes", "filesystem space in use", ("mount",))
        disk_total = gauge("disk_total_bytes", "filesystem size", ("mount",))
        rx = gauge("network_receive_bytes_per_second", "received over every interface but loopback")
        tx = gauge("network_transmit_bytes_per_second", "sent over every interface but loopback")
        procs, uptime = gauge("processes", "processes running"), gauge("uptime_seconds", "time since boot")
        last = gauge("last_report_timestamp_seconds", "Unix time of the newest report")
        for monitor, ts_us, r in self.agents.gauges(self.account_id):
            values = [str(monitor.id), monitor.name, r.hostname or ""]
            cpu.add_metric(values, r.cpu_percent)
            mem_used.add_metric(values, float(r.memory.used_bytes))
            mem_total.add_metric(values, float(r.memory.total_bytes))
            last.add_metric(values, ts_us / 1e6)
            if r.load is not None:
                for period, value in zip(("1m", "5m", "15m"), r.load, strict=True):
                    load.add_metric([*values, period], value)
            if r.swap is not None:
                swap_used.add_metric(values, float(r.swap.used_bytes))
                swap_total.add_metric(values, float(r.swap.total_bytes))
            for d in r.disks:
                disk_used.add_metric([*values, d.mount], float(d.used_bytes))
                disk_total.add_metric([*values, d.mount], float(d.total_bytes))
            if r.network is not None:
                rx.add_metric(values, r.network.rx_bytes_per_s)
                tx.add_metric(values, r.network.tx_bytes_per_s)
            if r.processes is not None:
                procs.add_metric(values, float(r.processes))
            if r.uptime_s is not None:
                uptime.add_metric(values, float(r.uptime_s))
        yield from (cpu, load, mem_used, mem_total, swap_used, swap_total, disk_used, disk_total, rx, tx, procs,
                    uptime, last)


class _Results(Collector):
    """The process's result keeping (the same for every account: no monitor named)."""

    def __init__(self, system: SystemService) -> None:
        self.system = system

    def collect(self) -> Iterator[Metric]:
        figures = self.system.ingest()
        yield GaugeMetricFamily("xuptime_results_waiting", "check results kept in memory while the disk is full",
                                value=figures.get("rowsSpilled", 0))
        yield CounterMetricFamily("xuptime_results_dropped", "check results the store could not take",
                                  value=figures.get("rowsDropped", 0))


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any], monitors: Named[MonitorService], accounts: Named[AccountService],
                  system: Named[SystemService], agents: Named[AgentService], history: Named[HistoryService]) -> Stream:
    """The account's monitors for Prometheus (API key required), its agents, and whether
    results are being kept: waiting in memory for a full disk, or dropped."""
    account_id = accounts.authenticate(key_from(request))
    if account_id is None:
        raise _Unauthorized("API key missing or invalid", headers={"WWW-Authenticate": "Bearer"})
    tags = request.query_params.get("tags", "false").lower()
    if tags not in ("true", "false", "1", "0"):
        raise BadRequest("Invalid query parameter", [{"field": "tags", "message": "must be true or false"}])
    listed, figures = monitors.probe_figures(account_id)
    ratios = await history.uptime_ratios(account_id, figures["ids"], [hours for _, hours in WINDOWS])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Agents(agents, account_id))
    registry.register(_Results(system))
    tail = generate_latest(registry)
    zipped = "gzip" in request.headers.get("accept-encoding", "")

    def body() -> Iterator[bytes]:
        # (Litestar pulls a sync iterator on a worker thread: the text is made off the loop, a
        # family at a time, and gzipped as it goes)
        packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if zipped else None
        for text in families(listed, figures, ratios, tags in ("true", "1")):
            data = text.encode()
            if packer is None:
                yield data
            elif packed := packer.compress(data):
                yield packed
        yield tail if packer is None else packer.compress(tail) + packer.flush()

    headers = {"Vary": "Accept-Encoding", **({"Content-Encoding": "gzip"} if zipped else {})}
    return Stream(body(), media_type=CONTENT_TYPE, headers=headers)
