"""``/metrics`` for many monitors against Prometheus' own exposition of as many series.

One run, one machine: ``xuptime serve --workers 2`` with ``--monitors`` HTTP monitors (bulk
loaded, checking nginx every ``--interval`` s, each at least once before the first scrape) and
30 days of generated hourly rollups for each (so the uptime ratios have the hourly tier to
read). Measured, ``--scrapes`` times each, median:

- a scrape right after the hour's uptime scan was dropped (``cold``: the first scrape after an
  hour turns or a rollup lands pays the one scan of the hourly tier for every monitor);
- scrapes after it (``warm``), plain and gzipped, over HTTP on loopback;
- the reference: ``prometheus_client.generate_latest`` of a registry holding the same families,
  label sets and values (parsed back from the scrape), in this process, without HTTP (median
  of three: 20 s each at 100k monitors).

And the serve process's peak RSS from its start to the last scrape.

Target (issue 16): warm scrape <= 2 x the reference. Needs nginx (installed when missing).
Usage: ``python -m bench.metrics [--quick] [--monitors N]``. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.engine import Nginx, Xuptime, _dist_version, _main_rss, ensure_tools, log

_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def hourly_rows(x: Xuptime, monitors: int, days: int) -> None:
    """``days`` of generated hourly rollups for every monitor, the rollup cursor at this hour,
    and the upkeep run over them as a running server would have (else the server's first
    upkeep does a month's merging and rewriting during the measurement)."""
    from core.storage.duckdb import DuckDBStore

    store = DuckDBStore(x.data_dir)
    hour = time.time_ns() // 1000 // 3_600_000_000 * 3_600_000_000
    store.con.execute(f"""
        INSERT INTO checks_hourly
        SELECT m.id, make_timestamp({hour} - h.i * 3600000000), 60, 60 - (hash(m.id, h.i) % 100 = 0)::INT,
               60 * 40000, 20000, 90000, 40000.0, 70000.0, 85000.0, []::USMALLINT[], []::UINTEGER[]
        FROM (SELECT id FROM monitors) m, range(1, {days * 24 + 1}) h(i)""")
    store.con.execute("INSERT OR REPLACE INTO rollup_state VALUES ('hourly', make_timestamp(?))", [hour])
    store.rollup_upto_us = hour
    store.upkeep(hour)  # (days merged, months of hours rewritten: the state a running server keeps)
    store.close()


def scrape(url: str, key: str, gzipped: bool = False) -> tuple[float, bytes]:
    """Seconds from the request to the whole body, and the body (decompressed)."""
    headers = {"X-API-Key": key, **({"Accept-Encoding": "gzip"} if gzipped else {})}
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=600) as r:
        body = r.read()
    took = time.perf_counter() - started
    return took, gzip.decompress(body) if gzipped else body


def reference(text: str) -> tuple[Any, int]:
    """A ``prometheus_client`` registry holding the scrape's families, label sets and values,
    and how many series that is."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector

    families: dict[str, tuple[str, str, list[tuple[list[str], list[str], float]]]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            current = families.setdefault(name, (kind, name, []))
        elif line and not line.startswith("#"):
            m = _SAMPLE.match(line)
            if m is None or current is None:  # (the unlabelled process-wide families)
                continue
            pairs = _LABEL.findall(m.group(2))
            current[2].append(([k for k, _ in pairs], [v.replace('\\"', '"') for _, v in pairs], float(m.group(3))))
    series = sum(len(samples) for _, _, samples in families.values())

    class Same(Collector):
        def collect(self) -> Iterator[Any]:
            for kind, name, samples in families.values():
                if not samples:
                    continue
                cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                family = cls(name.removesuffix("_total") if kind == "counter" else name, "help",
                             labels=samples[0][0])
                for _, values, value in samples:
                    family.add_metric(values, value)
                yield family

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Same())
    return registry, series


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10k monitors, 3 scrapes")
    parser.add_argument("--monitors", type=int, default=100_000)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--days", type=int, default=30, help="days of hourly rollups per monitor")
    parser.add_argument("--scrapes", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.monitors, args.scrapes = 10_000, 3
    ensure_tools()
    from prometheus_client import generate_latest

    from core.cli import control_request

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-metrics-") as tmp:
        workdir = Path(tmp)
        nginx = Nginx(workdir)
        nginx.start()
        x = Xuptime(workdir, "metrics")
        try:
            x.load([nginx.url()], args.monitors, args.interval, keep_alive=False, distinct=True)
            hourly_rows(x, args.monitors, args.days)
            log(f"{args.monitors:,} monitors and {args.days} days of their hours loaded")
            x.start(workers=2)
            assert x.proc is not None
            peak = [0]
            done = threading.Event()

            def sample(pid: int = x.proc.pid) -> None:  # (the serve process's RSS, every 0.25 s)
                while not done.wait(0.25):
                    try:
                        peak[0] = max(peak[0], _main_rss(pid))
                    except OSError:
                        return

            threading.Thread(target=sample, daemon=True).start()
            x.wait_loaded(args.monitors, timeout=600)
            key = control_request(x.data_dir, "keys.create", {"name": "bench"})["secret"]
            url = f"http://127.0.0.1:{x.port}/metrics"
            time.sleep(args.interval + 5)  # (every monitor checked once)
            cold, text = scrape(url, key)
            warm = [scrape(url, key)[0] for _ in range(args.scrapes)]
            zipped = [scrape(url, key, gzipped=True)[0] for _ in range(args.scrapes)]
            size = len(text)
            gz_size = len(gzip.compress(text, 1))
            done.set()
        finally:
            x.stop()
            nginx.stop()
    decoded = text.decode()
    checked = decoded.count("\nprobe_duration_seconds{")
    registry, series = reference(decoded)
    ref = []
    for _ in range(min(3, args.scrapes)):  # (20 s each at 100k: three say enough)
        t0 = time.perf_counter()
        generate_latest(registry)
        ref.append(time.perf_counter() - t0)
    result = {"monitors": args.monitors, "checked": checked, "series": series, "bytes": size, "gzip_bytes": gz_size,
              "cold_s": round(cold, 3), "warm_s": round(statistics.median(warm), 3),
              "gzip_s": round(statistics.median(zipped), 3), "reference_s": round(statistics.median(ref), 3),
              "main_rss_peak_mb": round(peak[0] / 2**20)}
    result["ratio"] = round(result["warm_s"] / result["reference_s"], 2)
    print(f"\nbench.metrics on {platform.processor() or platform.machine()} ({os.cpu_count()} CPUs), Python "
          f"{platform.python_version()}, duckdb {_dist_version('duckdb')}, prometheus_client "
          f"{_dist_version('prometheus-client')}; {args.monitors:,} HTTP monitors ({checked:,} checked), "
          f"{args.days} days of hourly rollups each; medians of {args.scrapes}; {time.monotonic() - started:.0f} s")
    print(f"series {series:,}, body {size / 2**20:.1f} MiB ({gz_size / 2**20:.1f} MiB gzipped); serve process "
          f"RSS peak {result['main_rss_peak_mb']:,} MB (start to last scrape)")
    print(f"{'what':<52} {'seconds':>8}")
    for name, k in (("/metrics, first scrape of the hour (uptime scan)", "cold_s"), ("/metrics", "warm_s"),
                    ("/metrics, gzipped", "gzip_s"),
                    ("prometheus_client generate_latest, same series", "reference_s")):
        print(f"{name:<52} {result[k]:8.3f}")
    print(f"ratio /metrics : prometheus_client = {result['ratio']:.2f} (target <= 2)")
    print(json.dumps({"bench": "metrics", **result}))


if __name__ == "__main__":
    main()
