"""``/metrics`` scraped by a real Prometheus: the account's monitors, with an API key."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_alerts import Target
from tests.integration.test_api import assert_error, call, send
from tests.integration.test_serve import Serve, cli, closed_port, wait_for
from tests.servers import ensure_debian_package

pytestmark = pytest.mark.slow  # real xuptime serve processes


def test_prometheus_scrapes_the_accounts_monitors(tmp_path: Path) -> None:
    prometheus = ensure_debian_package("prometheus", "prometheus")
    data_dir = tmp_path / "data"
    cli(data_dir, "accounts", "create", "other")
    server = Serve(data_dir, 1)
    target = Target()
    prom = None
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        other = cli(data_dir, "keys", "create", "--account", "other").stdout.splitlines()[-1]
        base = f"{server.url}/api/v1/monitors"
        web = send(base, "POST", {"name": 'shop "eu"', "type": "http", "url": target.url, "interval": 1}, key)[2]
        dead = send(base, "POST", {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": closed_port(),
                                   "interval": 1}, key)[2]
        send(base, "POST", {"name": "theirs", "type": "tcp", "host": "127.0.0.1", "port": 9}, other)
        web_id, dead_id = web["data"]["id"], dead["data"]["id"]
        wait_for(lambda: [call(f"{base}/{i}", headers={"X-API-Key": key})[2]["data"]["status"]
                          for i in (web_id, dead_id)] == ["up", "down"], 20, "one monitor up, one down")

        assert_error(*call(f"{server.url}/metrics"), 401)
        assert_error(*call(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}), 401)
        with urllib.request.urlopen(urllib.request.Request(f"{server.url}/metrics?api_key={key}"), timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = r.read().decode()
        assert "# TYPE xuptime_monitor_up gauge" in text and "theirs" not in text  # this account's only
        assert f'xuptime_monitor_up{{monitor_id="{web_id}",name="shop \\"eu\\"",type="http"}} 1.0' in text

        port = closed_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: xuptime
    metrics_path: /metrics
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

        wait_for(lambda: len(query("xuptime_monitor_up")) == 2, 60, "Prometheus to scrape xuptime")
        assert query('up{job="xuptime"}')[0]["value"][1] == "1"
        up = {int(s["metric"]["monitor_id"]): s["value"][1] for s in query("xuptime_monitor_up")}
        assert up == {web_id: "1", dead_id: "0"}
        status = query('xuptime_monitor_status{status="down"} == 1')
        assert [s["metric"]["name"] for s in status] == ["db"]
        latency = query(f'xuptime_monitor_latency_seconds{{monitor_id="{web_id}"}}')
        assert 0 < float(latency[0]["value"][1]) < 1
        fresh = query(f'time() - xuptime_monitor_last_check_timestamp_seconds{{monitor_id="{web_id}"}}')
        assert float(fresh[0]["value"][1]) < 10
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(20)
        assert server.stop() == 0
