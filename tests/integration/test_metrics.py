"""``/metrics`` scraped by a real Prometheus: the account's monitors, with an API key; and the
Grafana dashboards served beside it, every query of theirs run against that Prometheus."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.grafana import DASHBOARDS
from tests.integration.test_agents import start_agent, stop
from tests.integration.test_alerts import Target
from tests.integration.test_api import assert_error, call, send
from tests.integration.test_serve import Serve, cli, closed_port, wait_for
from tests.servers import ensure_debian_package

pytestmark = pytest.mark.slow  # real xuptime serve processes
ROOT = Path(__file__).resolve().parents[2]


def test_prometheus_scrapes_the_accounts_monitors(tmp_path: Path) -> None:
    prometheus = ensure_debian_package("prometheus", "prometheus")
    data_dir = tmp_path / "data"
    cli(data_dir, "accounts", "create", "other")
    server = Serve(data_dir, 1)
    target = Target()
    prom = agent = None
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        other = cli(data_dir, "keys", "create", "--account", "other").stdout.splitlines()[-1]
        base = f"{server.url}/api/v1/monitors"
        web = send(base, "POST", {"name": 'shop "eu"', "type": "http", "url": target.url, "interval": 1,
                                   "tags": ["shop", "eu"]}, key)[2]
        dead = send(base, "POST", {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": closed_port(),
                                   "interval": 1}, key)[2]
        send(base, "POST", {"name": "theirs", "type": "tcp", "host": "127.0.0.1", "port": 9}, other)
        host = send(base, "POST", {"name": "host1", "type": "agent", "interval": 1}, key)[2]["data"]
        agent = start_agent(server.url, host["agentToken"], "--interval", "1")
        web_id, dead_id = web["data"]["id"], dead["data"]["id"]
        wait_for(lambda: [call(f"{base}/{i}", headers={"X-API-Key": key})[2]["data"]["status"]
                          for i in (web_id, dead_id)] == ["up", "down"], 20, "one monitor up, one down")

        assert_error(*call(f"{server.url}/metrics"), 401)
        assert_error(*call(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}), 401)
        assert_error(*call(f"{server.url}/metrics?tags=maybe", headers={"X-API-Key": key}), 400)
        text = scrape(f"{server.url}/metrics?api_key={key}")
        assert "theirs" not in text  # this account's only
        assert f'xuptime_monitor_up{{monitor_id="{web_id}",name="shop \\"eu\\"",type="http"}} 1.0\n' in text
        got = samples(text)  # (and the whole text parses)
        web_labels = {"monitor_id": str(web_id), "name": 'shop "eu"', "type": "http"}
        dead_labels = {"monitor_id": str(dead_id), "name": "db", "type": "tcp"}
        web_probe = {**web_labels, "instance": target.url}
        dead_probe = {**dead_labels, "instance": f"127.0.0.1:{dead['data']['port']}"}
        assert value(got, "xuptime_monitor_up", web_labels) == 1 and value(got, "xuptime_monitor_up", dead_labels) == 0
        assert value(got, "probe_success", web_probe) == 1 and value(got, "probe_success", dead_probe) == 0
        assert value(got, "probe_http_status_code", web_probe) == 200
        assert 0 < value(got, "probe_duration_seconds", web_probe) < 1
        phases = {s.labels["phase"] for s in got["probe_http_duration_seconds"]
                  if s.labels["monitor_id"] == str(web_id)}
        assert {"connect", "processing", "transfer"} <= phases and "tls" not in phases
        assert value(got, "xuptime_monitor_checks_total", web_labels) >= 1
        assert value(got, "xuptime_monitor_failures_total", web_labels) == 0
        assert value(got, "xuptime_monitor_failures_total", dead_labels) >= 1
        for window in ("24h", "7d", "30d"):
            assert value(got, "xuptime_monitor_uptime_ratio", {**web_labels, "window": window}) == 1
            assert value(got, "xuptime_monitor_uptime_ratio", {**dead_labels, "window": window}) == 0

        request = urllib.request.Request(f"{server.url}/metrics?tags=true", headers={
            "X-API-Key": key, "Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            tagged = samples(gzip.decompress(r.read()).decode())
        assert value(tagged, "xuptime_monitor_up", {**web_labels, "tags": ",shop,eu,"}) == 1
        assert value(tagged, "xuptime_monitor_up", {**dead_labels, "tags": ""}) == 0

        port = closed_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: xuptime
    metrics_path: /metrics
    honor_labels: true
    authorization: {{type: Bearer, credentials: "{key}"}}
    static_configs: [{{targets: ["{server.url.removeprefix('http://')}"]}}]
""")
        prom = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def query(expr: str) -> list[dict[str, Any]]:
            url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(expr)}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return json.loads(response.read())["data"]["result"]
            except OSError:
                return []

        wait_for(lambda: len(query("xuptime_monitor_up")) == 3, 60, "Prometheus to scrape xuptime")
        assert query('up{job="xuptime"}')[0]["value"][1] == "1"
        up = {int(s["metric"]["monitor_id"]): s["value"][1] for s in query("xuptime_monitor_up")
              if s["metric"]["type"] != "agent"}
        assert up == {web_id: "1", dead_id: "0"}
        status = query('xuptime_monitor_status{status="down"} == 1')
        assert [s["metric"]["name"] for s in status] == ["db"]
        latency = query(f'xuptime_monitor_latency_seconds{{monitor_id="{web_id}"}}')
        assert 0 < float(latency[0]["value"][1]) < 1
        fresh = query(f'time() - xuptime_monitor_last_check_timestamp_seconds{{monitor_id="{web_id}"}}')
        assert float(fresh[0]["value"][1]) < 10
        # blackbox_exporter's names, with the target as ``instance`` (``honor_labels``)
        success = {s["metric"]["instance"]: s["value"][1] for s in query('probe_success{type!="agent"}')}
        assert success == {target.url: "1", dead_probe["instance"]: "0"}
        wait_for(lambda: query(f'increase(xuptime_monitor_checks_total{{monitor_id="{web_id}"}}[30s]) > 0'), 30,
                 "the checks counter to grow between scrapes")
        ratio = query('xuptime_monitor_uptime_ratio{window="7d",type!="agent"}')
        assert {s["metric"]["name"]: s["value"][1] for s in ratio} == {'shop "eu"': "1", "db": "0"}

        # The dashboards: served without a key, as committed, and every query answers.
        assert_error(*call(f"{server.url}/grafana/dashboards/nope.json"), 404)
        wait_for(lambda: query(f'rate(xuptime_agent_network_receive_bytes_per_second{{monitor_id="{host["id"]}"}}'
                               "[1m]) >= 0"), 60, "the agent's reports to be scraped twice")
        for name in DASHBOARDS:
            status, headers, dashboard = call(f"{server.url}/grafana/dashboards/{name}.json")
            assert status == 200 and headers["content-type"].startswith("application/json")
            assert dashboard == json.loads((ROOT / "docs" / "grafana" / f"{name}.json").read_text())
            values = {"monitor": str(web_id), "host": str(host["id"])}
            for variable in dashboard["templating"]["list"]:
                if variable["type"] != "query":
                    continue
                inner = re.fullmatch(r"query_result\((.*)\)", variable["query"])
                assert inner is not None, variable["query"]
                lines = [series_line(s["metric"]) for s in query(inner.group(1))]
                pattern = re.compile(variable["regex"].strip("/").replace("(?<", "(?P<"))
                found = {m["value"]: m["text"] for line in lines if (m := pattern.search(line))}
                assert values[variable["name"]] in found, (variable["name"], lines)
            for expr in dashboard_queries(dashboard):
                concrete = expr.replace("$__rate_interval", "1m")
                for variable, chosen in values.items():
                    concrete = concrete.replace(f"${variable}", chosen)
                assert "$" not in concrete, expr
                assert promql(port, concrete), f"{name}: {expr} gave no series"
    finally:
        if agent is not None:
            stop(agent)
        if prom is not None:
            prom.terminate()
            prom.wait(20)
        assert server.stop() == 0


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels (rows' panels included)."""
    panels = [*dashboard["panels"], *(p for row in dashboard["panels"] for p in row.get("panels", []))]
    exprs = [t["expr"] for p in panels for t in p.get("targets", []) if "expr" in t]
    assert exprs
    return exprs


def series_line(labels: dict[str, str]) -> str:
    """A series as Grafana's ``query_result`` shows it to a variable's regex."""
    name = labels.get("__name__", "")
    inside = ", ".join(f'{k}="{json.dumps(v)[1:-1]}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inside}}}"


def promql(port: int, expr: str) -> list[dict[str, Any]]:
    """The series an instant query returns (the query must parse: a 400 fails the test)."""
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(expr)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def scrape(url: str) -> str:
    with urllib.request.urlopen(urllib.request.Request(url), timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert r.headers.get("Content-Encoding") is None  # (not asked for)
        return r.read().decode()


def samples(text: str) -> dict[str, list[Any]]:
    """Every sample of a scrape by name, parsed by ``prometheus_client``'s parser (which
    refuses text out of the format)."""
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def value(got: dict[str, list[Any]], name: str, labels: dict[str, str]) -> float:
    """The one sample of ``name`` with exactly these labels."""
    matching = [s.value for s in got.get(name, []) if s.labels == labels]
    assert len(matching) == 1, (name, labels, [s.labels for s in got.get(name, [])])
    return matching[0]
