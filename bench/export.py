"""Exports against DuckDB's own ``COPY ... TO`` of the same rows, in one run.

The data set is ``bench.history``'s (``--rows`` checks of ``--monitors`` monitors over 30 days,
written in arrival order, then the server's rollup and upkeep: closed days sorted). Measured,
each ``--repeat`` times (median), Parquet (zstd) and CSV:

- ``COPY (SELECT <the export's columns> FROM checks) TO ...`` in this process, on the file
  (the server stopped): DuckDB's own writer, the ceiling;
- ``xuptime export --all`` through a running ``xuptime serve`` (its control socket, an Arrow
  IPC stream, written by the CLI a batch at a time), with the serve process's RSS sampled
  every 0.1 s (peak above its level before the export: the constant-memory claim);
- ``xuptime export --all`` on the stopped data dir;
- ``GET /api/v1/monitors/{id}/history?format=parquet`` of one monitor's 30 days.

Target (issue 16): rows/s exported >= 0.5 x ``COPY``'s. Usage: ``python -m bench.export
[--quick] [--rows N]``. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.engine import ROOT, _dist_version, _main_rss, free_port, log


def copy_to(db: Path, out: Path, fmt: str) -> float:
    """Seconds DuckDB's ``COPY`` takes to write every check to ``out``."""
    import duckdb

    from core.storage.duckdb.query import CHECK_COLUMNS

    con = duckdb.connect(str(db), read_only=True)
    try:
        options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER"
        t0 = time.perf_counter()
        con.execute(f"COPY (SELECT monitor_id AS monitorId, {CHECK_COLUMNS} FROM checks) TO '{out}' ({options})")
        return time.perf_counter() - t0
    finally:
        con.close()


def cli_export(data_dir: Path, out: Path, fmt: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core.cli", "export", "--all", "--format", fmt, "--out", str(out),
                    "--data-dir", str(data_dir)], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def sample(pid: int, peak: list[int], done: threading.Event) -> None:
    """``peak[0]``: the highest RSS of ``pid`` seen every 0.1 s until ``done``."""
    while not done.wait(0.1):
        peak[0] = max(peak[0], _main_rss(pid))


def rows_of(path: Path, fmt: str) -> int:
    import duckdb

    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    row = duckdb.sql(f"SELECT count(*) FROM {reader}('{path}')").fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1M rows, one repeat")
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--monitors", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 1e6, 1
    rows = int(args.rows)
    from bench.history import build
    from core.cli import control_request
    from core.storage.duckdb import DB_FILE

    started = time.monotonic()
    results: dict[str, Any] = {"rows": rows, "monitors": args.monitors}
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-export-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        ids, timings = build(data_dir, rows, args.monitors)
        log(f"{rows:,} checks written and kept up in {sum(timings.values()):.0f} s")
        times: dict[str, list[float]] = {}
        for fmt in ("parquet", "csv"):
            for _ in range(args.repeat):
                out = workdir / f"copy.{fmt}"
                times.setdefault(f"copy_{fmt}", []).append(copy_to(data_dir / DB_FILE, out, fmt))
                assert rows_of(out, fmt) == rows
                out.unlink()
                out = workdir / f"offline.{fmt}"
                times.setdefault(f"offline_{fmt}", []).append(cli_export(data_dir, out, fmt))
                assert rows_of(out, fmt) == rows, "the stopped data dir's export lost rows"
                out.unlink()
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--data-dir", str(data_dir),
                                   "--workers", "1", "--port", str(port), "--log-level", "WARNING"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        peaks: list[int] = []
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    control_request(data_dir, "ping")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            key = control_request(data_dir, "keys.create", {"name": "bench"})["secret"]
            time.sleep(2)
            for fmt in ("parquet", "csv"):
                for _ in range(args.repeat):
                    before = _main_rss(server.pid)
                    peak = [before]
                    done = threading.Event()
                    sampler = threading.Thread(target=sample, args=(server.pid, peak, done))
                    sampler.start()
                    out = workdir / f"served.{fmt}"
                    try:
                        times.setdefault(f"served_{fmt}", []).append(cli_export(data_dir, out, fmt))
                    finally:
                        done.set()
                        sampler.join()
                    peaks.append(peak[0] - before)
                    assert rows_of(out, fmt) == rows, "the served export lost rows"
                    out.unlink()
            one = []
            api_peaks = []
            for _ in range(args.repeat):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/monitors/{ids[0]}/history?format=parquet&from=0",
                    headers={"X-API-Key": key})
                before = _main_rss(server.pid)
                peak = [before]
                done = threading.Event()
                sampler = threading.Thread(target=sample, args=(server.pid, peak, done))
                sampler.start()
                t0 = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=1800) as r:
                        size = 0
                        while chunk := r.read(1 << 20):
                            size += len(chunk)
                finally:
                    done.set()
                    sampler.join()
                one.append(time.perf_counter() - t0)
                api_peaks.append(peak[0] - before)
            results["api_one_monitor_s"] = round(statistics.median(one), 3)
            results["api_one_monitor_bytes"] = size
            results["api_one_monitor_rows"] = rows // args.monitors
            results["api_rss_growth_max_mb"] = round(max(api_peaks) / 2**20, 1)
        finally:
            server.terminate()
            server.wait(120)
    for name, values in times.items():
        results[f"{name}_s"] = round(statistics.median(values), 2)
        results[f"{name}_rows_per_s"] = round(rows / statistics.median(values))
    results["served_rss_growth_max_mb"] = round(max(peaks) / 2**20, 1)
    for fmt in ("parquet", "csv"):
        for how in ("served", "offline"):
            results[f"{how}_{fmt}_ratio"] = round(results[f"{how}_{fmt}_rows_per_s"]
                                                  / results[f"copy_{fmt}_rows_per_s"], 2)
    print(f"\nbench.export on {platform.processor() or platform.machine()} ({os.cpu_count()} CPUs), Python "
          f"{platform.python_version()}, duckdb {_dist_version('duckdb')}, pyarrow {_dist_version('pyarrow')}; "
          f"{rows:,} checks of {args.monitors:,} monitors; medians of {args.repeat}; "
          f"{time.monotonic() - started:.0f} s")
    print(f"{'export of every check':<46} {'parquet rows/s':>15} {'ratio':>6} {'csv rows/s':>12} {'ratio':>6}")
    for how, text in (("copy", "DuckDB COPY ... TO (the ceiling)"), ("served", "xuptime export, server running"),
                      ("offline", "xuptime export, data dir stopped")):
        pr, cr = results[f"{how}_parquet_rows_per_s"], results[f"{how}_csv_rows_per_s"]
        print(f"{text:<46} {pr:15,} {pr / results['copy_parquet_rows_per_s']:6.2f} {cr:12,} "
              f"{cr / results['copy_csv_rows_per_s']:6.2f}")
    print(f"serve process RSS growth during an export: at most {results['served_rss_growth_max_mb']} MB; "
          f"one monitor's 30 days over the API ({results['api_one_monitor_rows']:,} checks, parquet, "
          f"{results['api_one_monitor_bytes']:,} bytes): {results['api_one_monitor_s']} s, RSS growth at most "
          f"{results['api_rss_growth_max_mb']} MB (target: ratio >= 0.5)")
    print(json.dumps({"bench": "export", **results}))


if __name__ == "__main__":
    main()
