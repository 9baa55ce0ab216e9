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

from bench.api import _ms
from bench.engine import CONTENDER_CPU, TARGET_CPU, _dist_version, ensure_tools, free_port, log, wait_port

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


class Target:
    """nginx answering every request with ``status``; ``flip`` reloads it with another."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "nginx"
        self.dir.mkdir()
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def _write(self, status: int) -> None:
        d = self.dir
        (d / "nginx.conf").write_text(f"""
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{ listen 127.0.0.1:{self.port} backlog=4096; location / {{ return {status} "status {status}\\n"; }} }}
}}
""")

    def start(self) -> None:
        self._write(200)
        self.proc = subprocess.Popen(["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                                      "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def flip(self, status: int) -> None:
        self._write(status)
        subprocess.run(["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-s", "reload"],
                       check=True, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


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


def sql_count(data_dir: Path, query: str) -> int:
    from core.cli import control_request

    return int(control_request(data_dir, "sql", {"sql": query})["rows"][0][0])


def wrk(url: str, key: str, seconds: int, out: dict[str, Any]) -> None:
    args = ["taskset", "-c", TARGET_CPU, "wrk", "-t1", "-c8", f"-d{seconds}s", "--latency",
            "-H", f"Authorization: Bearer {key}", url]
    text = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            out["rps"] = float(parts[1])
        elif parts and parts[0] in ("50%", "99%"):
            out["p" + parts[0].rstrip("%")] = _ms(parts[1])


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
    from core.cli import ServerNotRunning, control_request

    with tempfile.TemporaryDirectory(prefix="xuptime-bench-alerts-") as tmp:
        workdir = Path(tmp)
        target = Target(workdir)
        target.start()
        sink_port = free_port()
        sink = subprocess.Popen(["taskset", "-c", TARGET_CPU, sys.executable, "-m", "bench.alerts", "--sink",
                                 str(sink_port)], cwd=ROOT)
        server = None
        try:
            wait_port(sink_port)
            data_dir = workdir / "data"
            build(data_dir, monitors, f"http://127.0.0.1:{target.port}/", f"http://127.0.0.1:{sink_port}/hook")
            port = free_port()
            with open(workdir / "serve.log", "w") as serve_log:
                server = subprocess.Popen(["taskset", "-c", CONTENDER_CPU, sys.executable, "-m", "core.cli", "serve",
                                           "--data-dir", str(data_dir), "--workers", "1", "--port", str(port),
                                           "--alert-retry-base", "1", "--log-level", "WARNING"],
                                          stdout=serve_log, stderr=subprocess.STDOUT, cwd=ROOT)
            for _ in range(240):
                if server.poll() is not None:
                    raise RuntimeError((workdir / "serve.log").read_text()[-2000:])
                try:
                    if sql_count(data_dir, "SELECT count(*) FROM monitors WHERE status = 'up'") == monitors:
                        break
                except (ServerNotRunning, OSError, ValueError):
                    pass
                time.sleep(0.5)
            else:
                raise RuntimeError("the monitors did not all come up")
            key = control_request(data_dir, "keys.create", {"name": "bench"})["secret"]
            url = f"http://127.0.0.1:{port}/api/v1/monitors?limit=25"
            idle: dict[str, Any] = {}
            log(f"{monitors:,} monitors up; wrk idle")
            wrk(url, key, seconds, idle)
            storm: dict[str, Any] = {}
            during = threading.Thread(target=wrk, args=(url, key, seconds, storm))
            log("flip: the target answers 503")
            flipped = time.time()
            target.flip(503)
            during.start()
            stats: dict[str, Any] = {}
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with urllib.request.urlopen(f"http://127.0.0.1:{sink_port}/stats", timeout=5) as response:
                    stats = json.loads(response.read())
                if stats["unique"] >= monitors:
                    break
                time.sleep(0.2)
            during.join()
            down = sql_count(data_dir, "SELECT count(*) FROM monitors WHERE status = 'down'")
            failed = sql_count(data_dir, "SELECT count(*) FROM outbox WHERE status = 'failed'")
        finally:
            if server is not None and server.poll() is None:
                server.terminate()
                server.wait(60)
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
