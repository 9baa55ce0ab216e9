"""The data dir's size over a simulated year at a fixed rate: does retention keep it flat?

**Generated data, compressed time.** Nothing is checked over the network here: each simulated
day, the checks of ``--monitors`` monitors every ``--interval`` seconds are generated (latency
log-normal around 40 ms, phases, 0.2% failures with an error text, in arrival order: every
monitor interleaved, as the engine writes them) and ingested through the store's own columnar
ingest. Then the server's jobs run with that day's end as "now": the hourly rollup, and the
upkeep (daily rollups, retention with the defaults raw=90d, hourly=2y, daily=forever, and the
rewrite of the closed day sorted). Every ``--every`` days the file is checkpointed and its size
read. Bytes per check = file size / checks stored (raw rows; the rollups are in the file too).
Target (issue 15): <= 6 bytes per stored check at steady state, and the size flat once the raw
tier is full (day 90 on).

Usage: ``python -m bench.storage [--quick] [--days 365] [--monitors 200] [--interval 60]``.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.engine import _dist_version, log

DAY_US = 86400 * 10**6


def day_of_checks(rng: np.random.Generator, day_us: int, monitors: int, interval_s: int) -> dict[str, Any]:
    """One day's results, columns as the engine's ``ResultBuffer.flush`` gives them."""
    per = 86400 // interval_s
    ids = np.tile(np.arange(1, monitors + 1, dtype=np.int64), per)
    offsets = (np.repeat(np.arange(per, dtype=np.int64), monitors) * interval_s * 10**6
               + np.tile(rng.integers(0, interval_s * 10**6, monitors), per))  # (each monitor its own phase)
    ts = day_us + offsets
    order = np.argsort(ts, kind="stable")
    ts, ids = ts[order], ids[order]
    n = len(ts)
    latency = rng.lognormal(np.log(40_000), 0.5, n).astype(np.int64)
    failed = rng.random(n) < 0.002
    connect = (latency * 0.2).astype(np.int64)
    error_rows = np.flatnonzero(failed)
    return {
        "monitor_id": ids, "ts_us": ts, "ok": ~failed, "latency_us": latency,
        "status_code": np.where(failed, 0, 200).astype(np.int64),
        "error_code": np.where(failed, 3, 0).astype(np.int64),
        "error_rows": error_rows, "error_texts": ["connection refused"] * len(error_rows),
        "dns_us": np.full(n, -1, np.int64), "connect_us": connect, "tls_us": np.full(n, -1, np.int64),
        "ttfb_us": latency - connect,
    }


def column_bytes(con: Any, table: str) -> list[tuple[str, int]]:
    """Bytes each column of ``table`` takes in the file, largest first: each stored segment's
    extent in its block (up to the next segment in the block, or the block's end: the last
    segment of a block is counted with the block's free tail, so this overstates a little)."""
    rows = con.execute(f"""
        WITH s AS (SELECT column_name, block_id, block_offset FROM pragma_storage_info('{table}')
                   WHERE persistent AND block_id >= 0),
             o AS (SELECT *, lead(block_offset) OVER (PARTITION BY block_id ORDER BY block_offset) AS nxt FROM s)
        SELECT column_name, sum(coalesce(nxt, 262144) - block_offset) AS bytes FROM o
        GROUP BY ALL ORDER BY bytes DESC""").fetchall()
    return [(str(name), int(n)) for name, n in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="120 days of 50 monitors")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--monitors", type=int, default=200)
    parser.add_argument("--interval", type=int, default=60, help="seconds between a monitor's checks")
    parser.add_argument("--every", type=int, default=15, help="days between size readings")
    args = parser.parse_args()
    if args.quick:
        args.days, args.monitors = 120, 50
    from core.storage.duckdb import DB_FILE, DuckDBStore

    rng = np.random.default_rng(15)
    start = (time.time_ns() // 1000 // DAY_US - args.days) * DAY_US
    readings: list[dict[str, Any]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-storage-") as tmp:
        store = DuckDBStore(Path(tmp))
        try:
            upkeep_s = 0.0
            for day in range(args.days):
                day_us = start + day * DAY_US
                store.ingest(day_of_checks(rng, day_us, args.monitors, args.interval))
                now = day_us + DAY_US + 3 * 60 * 10**6  # (the day closed, and its grace passed)
                t0 = time.monotonic()
                store.rollup(now)
                store.upkeep(now)
                upkeep_s += time.monotonic() - t0
                if (day + 1) % args.every == 0 or day + 1 == args.days:
                    store.con.execute("CHECKPOINT")
                    raw = store.con.execute("SELECT count(*) FROM checks").fetchone()[0]
                    hourly = store.con.execute("SELECT count(*) FROM checks_hourly").fetchone()[0]
                    daily = store.con.execute("SELECT count(*) FROM checks_daily").fetchone()[0]
                    size = (Path(tmp) / DB_FILE).stat().st_size
                    readings.append({"day": day + 1, "bytes": size, "raw_rows": int(raw), "hourly_rows": int(hourly),
                                     "daily_rows": int(daily), "bytes_per_check": size / max(1, raw),
                                     "upkeep_s": round(upkeep_s, 1)})
                    log(f"day {day + 1}: {size / 2**20:.1f} MiB, {raw} checks, {size / max(1, raw):.2f} B/check")
            store.con.execute("CHECKPOINT")
            raw = int(store.con.execute("SELECT count(*) FROM checks").fetchone()[0])
            hourly = int(store.con.execute("SELECT count(*) FROM checks_hourly").fetchone()[0])
            columns = {"checks": column_bytes(store.con, "checks"),
                       "checks_hourly": column_bytes(store.con, "checks_hourly")}
        finally:
            store.close()
    per_day = args.monitors * 86400 // args.interval
    steady = [r for r in readings if r["day"] >= 90 + args.every]
    print(f"\nbench.storage on {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"duckdb {_dist_version('duckdb')}; GENERATED data, simulated days (not measured over real time): "
          f"{args.monitors} monitors every {args.interval} s = {per_day:,} checks a day; retention "
          f"raw=90d,hourly=2y,daily=forever; {time.monotonic() - started:.0f} s to run")
    print(f"{'day':>5} {'file MiB':>9} {'raw checks':>12} {'hourly rows':>12} {'daily rows':>11} {'B/check':>8}")
    for r in readings:
        print(f"{r['day']:5d} {r['bytes'] / 2**20:9.1f} {r['raw_rows']:12,} {r['hourly_rows']:12,} "
              f"{r['daily_rows']:11,} {r['bytes_per_check']:8.2f}")
    if steady:
        sizes = [r["bytes"] for r in steady]
        print(f"steady state (day {steady[0]['day']} on): file {min(sizes) / 2**20:.1f}-{max(sizes) / 2**20:.1f} MiB "
              f"(max/min {max(sizes) / min(sizes):.2f}); bytes per stored check "
              f"{steady[-1]['bytes_per_check']:.2f} (target <= 6)")
    print(f"where the bytes are at day {args.days} (each column's segments, per raw check and per hourly row):")
    for table, rows in (("checks", raw), ("checks_hourly", hourly)):
        print(f"  {table}: " + ", ".join(f"{name} {n / max(1, rows):.2f}" for name, n in columns[table]))
    print(json.dumps({"bench": "storage", "generated": True, "columns": columns, "monitors": args.monitors,
                      "interval_s": args.interval,
                      "days": args.days, "readings": readings}))


if __name__ == "__main__":
    main()
