"""Monitors at scale: what 1k, 10k, 100k and 1M monitors cost one box.

For each size, a fresh data dir gets that many HTTP monitors (a new connection per check, 300 s
interval, bulk-loaded into DuckDB as ``bench.engine`` does) pointing at one local nginx (CPU 0),
each at a URL of its own (``/?m=<i>``: nothing a monitor holds is shared with another by chance),
and ``xuptime serve --workers 2`` starts pinned to CPU 1 (main and both workers share it, as
on the issue's run). Measured:

- **start**: seconds from the process start until ``/healthz`` answers and every worker holds
  its whole shard, twice: the **first start** after the bulk load (rows written by SQL carry no
  packed bytes, so every monitor is decoded, checked and packed, and its bytes stored, as after
  an upgrade), then, after a stop, the **start** that is measured on (what a restart costs
  once monitors were created through the API or started once);
- a **window** of ``--window`` seconds after a warm-up: successful checks per second counted
  as rows in DuckDB (never from counters), lateness p50/p99 from the workers' histograms, and
  the CPU share of the main process and of the workers (from /proc);
- **RSS** of the main process and of each worker at the end of the window, and the total
  sampled every 0.5 s through it: its median and its maximum (at a million monitors in a
  first round the main process moves by 60 MB within seconds: DuckDB's UPDATE of the
  first ``up`` statuses every 2 s);
- the **monitors list** (``GET /api/v1/monitors?limit=25``, wrk, one connection, 5 s): p50/p99.

Issue 15's targets: 1M monitors in <= 1 GB RSS in total, ready in <= 60 s, and a flat cost
per monitor from 10k to 1M. Usage: ``python -m bench.scale [--quick] [--sizes 1000,...]``
(``--quick``: 1k, 10k and 100k). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.api import wrk
from bench.engine import (
    Nginx,
    Xuptime,
    _dist_version,
    ensure_tools,
    log,
)

INTERVAL = 300


def run(workdir: Path, nginx: Nginx, monitors: int, window: int) -> dict[str, Any]:
    from core.cli import control_request

    x = Xuptime(workdir, f"scale-{monitors}")
    x.load([nginx.url()], monitors, INTERVAL, keep_alive=False, distinct=True)
    try:
        first_s = _start(x, monitors)
    finally:
        x.stop()
    log(f"{monitors:,} monitors: first start ready in {first_s:.1f} s")
    try:
        ready_s = _start(x, monitors)
        log(f"{monitors:,} monitors: ready in {ready_s:.1f} s")
        time.sleep(min(30, window))  # (warm-up: the first checks spread over the interval)
        w = x.window(window, rss_every=0.5)
        key = control_request(x.data_dir, "keys.create", {"name": "bench"})["secret"]
        listing = wrk(f"http://127.0.0.1:{x.port}/api/v1/monitors?limit=25", key, 5, connections=1)
    finally:
        x.stop()
    rows, ok = x.rows_between(w["t0"], w["t1"])
    seconds = (w["t1"] - w["t0"]) / 1e6
    total_rss = w["main_rss"] + sum(w["workers_rss"])
    return {"monitors": monitors, "first_start_s": round(first_s, 1), "ready_s": round(ready_s, 1),
            "cps": round(ok / seconds), "rows": rows,
            "ok_share": ok / rows if rows else 0.0, "expected_cps": round(monitors / INTERVAL),
            "lateness_p50_ms": w["lateness_p50_ms"], "lateness_p99_ms": w["lateness_p99_ms"],
            "main_cpu": round(w["main_cpu_s"] / seconds, 3), "workers_cpu": round(w["workers_cpu_s"] / seconds, 3),
            "main_rss_mb": round(w["main_rss"] / 2**20, 1),
            "workers_rss_mb": [round(r / 2**20, 1) for r in w["workers_rss"]],
            "total_rss_mb": round(total_rss / 2**20, 1), "bytes_per_monitor": round(total_rss / monitors),
            "total_rss_median_mb": round(statistics.median(w["rss_samples"]) / 2**20, 1),
            "total_rss_max_mb": round(max(w["rss_samples"]) / 2**20, 1), "rss_samples": len(w["rss_samples"]),
            "list_p50_ms": listing.get("p50"), "list_p99_ms": listing.get("p99"), "list_rps": listing.get("rps")}


def _start(x: Xuptime, monitors: int) -> float:
    """Start ``x``; seconds until every worker holds its shard and ``/healthz`` answers."""
    started = time.monotonic()
    x.start(workers=2)
    assert x.proc is not None
    x.wait_loaded(monitors, timeout=600)
    while True:  # (and the HTTP side answers)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{x.port}/healthz", timeout=5).read()
            break
        except OSError:
            time.sleep(0.25)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1k, 10k and 100k monitors, 30 s windows")
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--window", type=int, default=60, help="seconds measured per size")
    args = parser.parse_args()
    ensure_tools()
    sizes = [1000, 10_000, 100_000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    window = 30 if args.quick else args.window
    runs = []
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-scale-") as tmp:
        workdir = Path(tmp)
        nginx = Nginx(workdir)
        nginx.start()
        try:
            for monitors in sizes:
                runs.append(run(workdir, nginx, monitors, window))
                log(json.dumps(runs[-1]))
        finally:
            nginx.stop()
    print(f"\nbench.scale on {platform.processor() or platform.machine()} ({os.cpu_count()} CPUs), Python "
          f"{platform.python_version()}, duckdb {_dist_version('duckdb')}; HTTP monitors, new connection per check, "
          f"every {INTERVAL} s; serve --workers 2 on one CPU; {window} s windows")
    print(f"{'monitors':>10} {'first s':>8} {'ready s':>8} {'checks/s':>9} {'expected':>9} {'late p99':>9} "
          f"{'main CPU':>9} {'workers CPU':>11} {'main MB':>8} {'workers MB':>14} {'total MB':>9} {'median':>7} "
          f"{'max':>7} {'B/monitor':>10} {'list p99':>9}")
    for r in runs:
        print(f"{r['monitors']:10,} {r['first_start_s']:8.1f} {r['ready_s']:8.1f} {r['cps']:9,} {r['expected_cps']:9,} "
              f"{r['lateness_p99_ms']:9.0f} {r['main_cpu']:9.0%} {r['workers_cpu']:11.0%} {r['main_rss_mb']:8.0f} "
              f"{' + '.join(f'{w:.0f}' for w in r['workers_rss_mb']):>14} {r['total_rss_mb']:9.0f} "
              f"{r['total_rss_median_mb']:7.0f} {r['total_rss_max_mb']:7.0f} "
              f"{r['bytes_per_monitor']:10,} {r['list_p99_ms']:9.2f}")
    print(json.dumps({"bench": "scale", "interval_s": INTERVAL, "window_s": window, "runs": runs}))


if __name__ == "__main__":
    main()
