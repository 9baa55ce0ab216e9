"""Grafana dashboards for what ``/metrics`` exposes, built in code with grafana-foundation-sdk:
``overview`` (every monitor: status table, uptime, latency heatmap), ``monitor`` (one monitor,
chosen by a variable: its phases and uptime windows) and ``host`` (one server agent's figures).

Served at ``GET /grafana/dashboards/{name}.json`` without a key: they hold queries, no data.
The same JSON is committed under ``docs/grafana/`` for import by file (``python -m api.grafana
docs/grafana`` writes it; a test holds the committed files equal to this code's). Every panel
reads the Prometheus data source chosen in the ``datasource`` variable, and every query is run
against a real Prometheus scraping a real server by ``tests/integration/test_grafana.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, DataTransformerConfig, VariableRefresh
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from litestar import Response, get
from litestar.params import FromPath

from api.errors import NotFound

__all__ = ["DASHBOARDS", "dashboard_json", "grafana_dashboard"]

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${datasource}")


def _query(expr: str, legend: str | None = None, *, instant: bool = False, as_table: bool = False) -> Dataquery:
    q = Dataquery().expr(expr).datasource(PROMETHEUS)
    if legend is not None:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    if as_table:
        q = q.format(PromQueryFormat.TABLE)
    return q


def _base(uid: str, title: str, description: str) -> Dashboard:
    return (Dashboard(title).uid(uid).description(description).tags(["xuptime"]).refresh("30s")
            .time("now-6h", "now").timezone("browser")
            .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus")))


#: Picks a monitor's id (the value) and name (the text shown) out of ``query_result``'s lines:
#: queries select by the id, which a name's quotes or backslashes cannot break.
MONITOR_REGEX = r'/monitor_id="(?<value>\d+)",\s*name="(?<text>(?:[^"\\]|\\.)*)"/'


def _monitor_variable(name: str, metric: str, text: str) -> QueryVariable:
    return (QueryVariable(name).label(text).datasource(PROMETHEUS).query(f"query_result({metric})")
            .regex(MONITOR_REGEX).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(1))


def overview() -> Dashboard:
    status = (table.Panel().title("Monitors").span(24).height(10)
              .with_target(_query("xuptime_monitor_up", as_table=True, instant=True).ref_id("up"))
              .with_target(_query('xuptime_monitor_uptime_ratio{window="24h"}', as_table=True, instant=True)
                           .ref_id("uptime24h"))
              .with_target(_query("probe_duration_seconds", as_table=True, instant=True).ref_id("latency"))
              .with_transformation(DataTransformerConfig(id_val="merge", options={})))
    return (_base("xuptime-overview", "xuptime / Overview", "Every monitor of the account: status, uptime, latency.")
            .with_row(Row("Now"))
            .with_panel(stat.Panel().title("Up").span(6).height(4)
                        .with_target(_query("sum(xuptime_monitor_up)", instant=True)))
            .with_panel(stat.Panel().title("Down").span(6).height(4)
                        .with_target(_query('sum(xuptime_monitor_status{status="down"})', instant=True)))
            .with_panel(stat.Panel().title("Uptime, last 24 h (all monitors)").unit("percentunit").span(6).height(4)
                        .with_target(_query('avg(xuptime_monitor_uptime_ratio{window="24h"})', instant=True)))
            .with_panel(stat.Panel().title("Failed checks, last hour").span(6).height(4)
                        .with_target(_query("sum(increase(xuptime_monitor_failures_total[1h]))", instant=True)))
            .with_panel(status)
            .with_row(Row("Over time"))
            .with_panel(heatmap.Panel().title("Latency of every monitor").span(24).height(9).calculate(True)
                        .with_target(_query("probe_duration_seconds", "{{name}}")))
            .with_panel(timeseries.Panel().title("Uptime, last 24 h").unit("percentunit").span(12).height(8)
                        .with_target(_query('xuptime_monitor_uptime_ratio{window="24h"}', "{{name}}")))
            .with_panel(timeseries.Panel().title("Failed checks a second").span(12).height(8)
                        .with_target(_query("sum by (name) (rate(xuptime_monitor_failures_total[$__rate_interval]))",
                                            "{{name}}"))))


def monitor() -> Dashboard:
    one = '{monitor_id="$monitor"}'
    uptime = stat.Panel().title("Uptime").unit("percentunit").decimals(3).span(12).height(4)
    for window in ("24h", "7d", "30d"):
        uptime = uptime.with_target(_query(f'xuptime_monitor_uptime_ratio{{monitor_id="$monitor",window="{window}"}}',
                                           window, instant=True))
    return (_base("xuptime-monitor", "xuptime / Monitor", "One monitor: its phases, status and uptime windows.")
            .with_variable(_monitor_variable("monitor", "xuptime_monitor_up", "Monitor"))
            .with_panel(stat.Panel().title("Newest check").span(6).height(4)
                        .with_target(_query(f"probe_success{one}", instant=True)))
            .with_panel(stat.Panel().title("HTTP status").span(6).height(4)
                        .with_target(_query(f"probe_http_status_code{one}", instant=True)))
            .with_panel(uptime)
            .with_panel(timeseries.Panel().title("Phases of the newest check").unit("s").span(24).height(9)
                        .with_target(_query(f"probe_http_duration_seconds{one}", "{{phase}}")))
            .with_panel(timeseries.Panel().title("Latency").unit("s").span(12).height(8)
                        .with_target(_query(f"probe_duration_seconds{one}", "latency")))
            .with_panel(timeseries.Panel().title("Checks and failures a second").span(12).height(8)
                        .with_target(_query(f"rate(xuptime_monitor_checks_total{one}[$__rate_interval])", "checks"))
                        .with_target(_query(f"rate(xuptime_monitor_failures_total{one}[$__rate_interval])",
                                            "failures"))))


def host() -> Dashboard:
    one = '{monitor_id="$host"}'
    return (_base("xuptime-host", "xuptime / Host", "One server agent's newest reports.")
            .with_variable(_monitor_variable("host", "xuptime_agent_cpu_percent", "Host"))
            .with_panel(timeseries.Panel().title("CPU").unit("percent").span(12).height(8)
                        .with_target(_query(f"xuptime_agent_cpu_percent{one}", "busy")))
            .with_panel(timeseries.Panel().title("Load").span(12).height(8)
                        .with_target(_query(f"xuptime_agent_load{one}", "{{period}}")))
            .with_panel(timeseries.Panel().title("Memory").unit("bytes").span(12).height(8)
                        .with_target(_query(f"xuptime_agent_memory_used_bytes{one}", "used"))
                        .with_target(_query(f"xuptime_agent_memory_total_bytes{one}", "total")))
            .with_panel(timeseries.Panel().title("Disk used").unit("percentunit").span(12).height(8)
                        .with_target(_query(f"xuptime_agent_disk_used_bytes{one} / xuptime_agent_disk_total_bytes{one}",
                                            "{{mount}}")))
            .with_panel(timeseries.Panel().title("Network").unit("Bps").span(24).height(8)
                        .with_target(_query(f"xuptime_agent_network_receive_bytes_per_second{one}", "received"))
                        .with_target(_query(f"xuptime_agent_network_transmit_bytes_per_second{one}", "sent"))))


DASHBOARDS: dict[str, Callable[[], Dashboard]] = {"overview": overview, "monitor": monitor, "host": host}


def dashboard_json(name: str) -> str:
    """The dashboard's JSON as Grafana imports it (keys sorted: the committed files diff well)."""
    return json.dumps(DASHBOARDS[name]().build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


@get("/grafana/dashboards/{name:str}", include_in_schema=False, sync_to_thread=False)
def grafana_dashboard(name: FromPath[str]) -> Response[str]:
    """One dashboard's JSON (``name``: ``overview.json``, ``monitor.json`` or ``host.json``)."""
    stem = name.removesuffix(".json")
    if not name.endswith(".json") or stem not in DASHBOARDS:
        raise NotFound(f"No dashboard {name!r}: there are {', '.join(f'{n}.json' for n in DASHBOARDS)}")
    return Response(dashboard_json(stem), media_type="application/json")


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/grafana")
    out.mkdir(parents=True, exist_ok=True)
    for dashboard_name in DASHBOARDS:
        (out / f"{dashboard_name}.json").write_text(dashboard_json(dashboard_name))
