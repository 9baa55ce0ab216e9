"""``GET /metrics``: the account's monitors in the Prometheus text format.

An API key is required (the same three ways as ``/api/v1``) and picks the account: one scrape
shows that account's monitors only. Scrapes are not counted against the monthly quota (a
scrape every 15 s would take 175k requests a month). Served from memory, no database.

Per monitor (labels ``monitor_id``, ``name``, ``type``):
``xuptime_monitor_up`` (1 up, 0 otherwise), ``xuptime_monitor_status`` (1 for the current one
of pending/up/down/paused/maintenance, as a ``status`` label), ``xuptime_monitor_paused``,
``xuptime_monitor_latency_seconds`` and ``xuptime_monitor_last_check_timestamp_seconds`` of
the newest check, and ``xuptime_monitor_interval_seconds``. Per agent (labels ``monitor_id``,
``name``, ``hostname``), its newest report: ``xuptime_agent_cpu_percent``, ``_load{period}``,
``_memory_used_bytes``/``_total_bytes``, ``_swap_*``, ``_disk_used_bytes{mount}``/
``_disk_total_bytes``, ``_network_receive_bytes_per_second``/``_transmit_``, ``_processes``,
``_uptime_seconds`` and ``_last_report_timestamp_seconds``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from litestar import Request, Response, get
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.auth import key_from
from api.errors import ApiError
from core.models import STATUSES
from core.services import AccountService, AgentService, MonitorService, SystemService

__all__ = ["metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Unauthorized(ApiError):
    status_code = 401


class _AccountMonitors(Collector):
    """One account's monitors as gauges, read from memory at scrape time."""

    def __init__(self, monitors: MonitorService, account_id: int) -> None:
        self.monitors = monitors
        self.account_id = account_id

    def collect(self) -> Iterator[Metric]:
        labels = ["monitor_id", "name", "type"]
        up = GaugeMetricFamily("xuptime_monitor_up", "1 if the monitor is up, else 0", labels=labels)
        status = GaugeMetricFamily("xuptime_monitor_status", "1 for the monitor's current status",
                                   labels=[*labels, "status"])
        paused = GaugeMetricFamily("xuptime_monitor_paused", "1 if the monitor is paused", labels=labels)
        latency = GaugeMetricFamily("xuptime_monitor_latency_seconds", "latency of the newest check",
                                    labels=labels)
        last = GaugeMetricFamily("xuptime_monitor_last_check_timestamp_seconds",
                                 "Unix time of the newest check", labels=labels)
        interval = GaugeMetricFamily("xuptime_monitor_interval_seconds", "how often the monitor is checked",
                                     labels=labels)
        for monitor in self.monitors.account_monitors(self.account_id):
            monitor_id = monitor.id
            values = [str(monitor_id), monitor.name, monitor.type]
            up.add_metric(values, 1.0 if monitor.status == "up" else 0.0)
            for name in STATUSES:
                status.add_metric([*values, name], 1.0 if monitor.status == name else 0.0)
            paused.add_metric(values, 1.0 if monitor.paused else 0.0)
            interval.add_metric(values, float(monitor.interval))
            newest = self.monitors.last_check(monitor_id)
            if newest is not None:
                latency.add_metric(values, newest[1] / 1e6)
                last.add_metric(values, newest[0] / 1e6)
        yield from (up, status, paused, latency, last, interval)


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
async def metrics(request: Request[Any, Any, Any], monitors: MonitorService, accounts: AccountService,
                  system: SystemService, agents: AgentService) -> Response[bytes]:
    """The account's monitors for Prometheus (API key required), and whether results are
    being kept: waiting in memory for a full disk, or dropped."""
    account_id = accounts.authenticate(key_from(request))
    if account_id is None:
        raise _Unauthorized("API key missing or invalid", headers={"WWW-Authenticate": "Bearer"})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_AccountMonitors(monitors, account_id))
    registry.register(_Agents(agents, account_id))
    registry.register(_Results(system))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)
