"""An alert storm: N monitors go down at once; how long until the last message is delivered,
and what the storm does to the API's latency.

Setup: nginx (one worker, CPU 0) serves the monitors' target, ``200`` at first; a webhook sink
(aiohttp, its own process on CPU 0) records each delivery id once; ``xuptime serve --workers 1``
(CPU 1) checks N keep-alive monitors every 2 s with one default webhook channel. Once all are
up, wrk (CPU 0, 8 connections) measures ``GET /api/v1/monitors?limit=25`` idle; then nginx is
reloaded to answer ``503``, every monitor goes down within one interval, and the same wrk runs
during the storm while the sink counts the messages.

Reported: time from the flip to the last unique delivery, deliveries per second, duplicates
(the same delivery id twice), API p99 idle and during the storm. Target: storm p99 < 2 x idle.
Usage: ``python -m bench.alerts [--quick]`` (1,000 monitors instead of 10,000). Prints a table,
then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.api import serving, wrk
from bench.engine import TARGET_CPU, Nginx, _dist_version, ensure_tools, free_port, log, wait_port

ROOT = Path(__file__).resolve().parent.parent


def run_sink(port: int) -> None:
    """The webhook sink: ``POST /hook`` records the first arrival of each delivery id;
    ``GET /stats`` answers ``{"unique", "total", "first", "last"}`` (Unix seconds)."""
    from aiohttp import web

    seen: dict[str, float] = {}
    total = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal total
        await request.read()
        total += 1
        seen.setdefault(request.headers.get("X-Xuptime-Delivery", ""), time.time())
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        times = seen.values()
        return web.json_response({"unique": len(seen), "total": total, "first": min(times, default=None),
                                  "last": max(times, default=None)})

    app = web.Application()
    app.add_routes([web.post("/hook", hook), web.get("/stats", stats)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def build(data_dir: Path, monitors: int, target_url: str, sink_url: str) -> None:
    from core.alerting import parse_integration
    from core.storage.duckdb import DuckDBStore

    store = DuckDBStore(data_dir)
    store.con.execute("UPDATE accounts SET monthly_request_limit = 1000000000000 WHERE name = 'default'")
    channel = parse_integration({"name": "storm sink", "type": "webhook", "config": {"url": sink_url},
                                 "isDefault": True})
    channel.account_id = 1
    store.create_integration(channel)
    store.con.execute(f"""
        INSERT INTO monitors (account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,
                              paused, status, tags)
        SELECT 1, 'storm-' || i, 'http', json_object('type', 'http', 'url', '{target_url}', 'keepAlive', true),
               2, 1.0, 0, 1, false, 'pending', [] FROM range({monitors}) t(i)""")
    store.close()


def wait_for_deliveries(sink_port: int, count: int, timeout: float = 300) -> dict[str, Any]:
    """The sink's stats once it has ``count`` unique deliveries (or the timeout passed)."""
    stats: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{sink_port}/stats", timeout=5) as response:
            stats = json.loads(response.read())
        if stats["unique"] >= count:
            break
        time.sleep(0.2)
    return stats


def sql_count(data_dir: Path, query: str) -> int:
    from core.cli import control_request

    return int(control_request(data_dir, "sql", {"sql": query})["rows"][0][0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 monitors, 5 s wrk runs")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)  # internal: run the sink on this port
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return
    ensure_tools()
    monitors = 1_000 if args.quick else 10_000
    seconds = 5 if args.quick else 10
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-alerts-") as tmp:
        workdir = Path(tmp)
        target = Nginx(workdir)
        target.start()
        sink_port = free_port()
        sink = subprocess.Popen(["taskset", "-c", TARGET_CPU, sys.executable, "-m", "bench.alerts", "--sink",
                                 str(sink_port)], cwd=ROOT)
        try:
            wait_port(sink_port)
            data_dir = workdir / "data"
            build(data_dir, monitors, target.url(), f"http://127.0.0.1:{sink_port}/hook")

            def all_up(stats: dict[str, Any]) -> bool:
                return sql_count(data_dir, "SELECT count(*) FROM monitors WHERE status = 'up'") == monitors

            with serving(data_dir, workdir, extra=["--alert-retry-base", "1"], ready=all_up, settle=0) as (base,
                                                                                                          key):
                url = f"{base}/api/v1/monitors?limit=25"
                log(f"{monitors:,} monitors up; wrk idle")
                idle = wrk(url, key, seconds, connections=8)
                storm: dict[str, Any] = {}
                during = threading.Thread(target=lambda: storm.update(wrk(url, key, seconds, connections=8)))
                log("flip: the target answers 503")
                flipped = time.time()
                target.set_status(503)
                during.start()
                stats = wait_for_deliveries(sink_port, monitors)
                during.join()
                down = sql_count(data_dir, "SELECT count(*) FROM monitors WHERE status = 'down'")
                failed = sql_count(data_dir, "SELECT count(*) FROM outbox WHERE status = 'failed'")
        finally:
            sink.terminate()
            sink.wait(10)
            target.stop()
    last = stats.get("last") or flipped
    out: dict[str, Any] = {
        "bench": "alerts", "quick": args.quick, "monitors": monitors, "delivered": stats.get("unique"),
        "duplicates": (stats.get("total") or 0) - (stats.get("unique") or 0), "failed": failed, "down": down,
        "time_to_last_delivery_s": round(last - flipped, 2),
        "deliveries_per_s": round((stats.get("unique") or 0) / max(1e-9, last - (stats.get("first") or flipped)), 1),
        "api_p99_idle_ms": idle.get("p99"), "api_p99_storm_ms": storm.get("p99"),
        "api_p99_storm_vs_idle": round(storm["p99"] / idle["p99"], 2) if idle.get("p99") and storm.get("p99") else None,
        "api_rps_idle": idle.get("rps"), "api_rps_storm": storm.get("rps"),
        "versions": {"python": platform.python_version(), "cpus": os.cpu_count(), "aiohttp": _dist_version("aiohttp"),
                     "duckdb": _dist_version("duckdb")},
    }
    print(f"monitors down at once          {monitors:>10,}")
    print(f"delivered (unique ids)         {out['delivered']:>10,}   duplicates {out['duplicates']}, "
          f"failed {failed}")
    print(f"flip -> last delivery          {out['time_to_last_delivery_s']:>10.2f} s")
    print(f"deliveries per second          {out['deliveries_per_s']:>10,.1f}")
    print(f"API p99 idle / during storm    {idle.get('p99', 0):>7.2f} ms / {storm.get('p99', 0):.2f} ms "
          f"({out['api_p99_storm_vs_idle']} x)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
