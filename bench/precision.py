"""What a stored check's time and latencies cost at each precision, and what no codec can beat.

**Generated data.** ``--monitors`` monitors checked every ``--interval`` seconds for ``--days``
days, each at its own phase, each check late by a gamma-distributed lateness (mean 1 ms); a
check's phases drawn independently, as on a real network: connect log-normal around 8 ms, the
server's time to first byte log-normal around 25 ms, the transfer log-normal around 0.5 ms
(``ttfb = connect + server``, ``latency = ttfb + transfer``). The rows are written sorted by
``(monitor_id, ts)``, as the upkeep rewrites a closed day, into a DuckDB file holding only
``monitor_id``, ``ts`` and the three latencies at a given precision; bytes per check = the
file's size after a ``CHECKPOINT`` / rows.

The floor: the empirical entropy of what each check carries at µs precision (the lateness,
connect, server and transfer times, independent by construction, so their entropies add). It
is what an ideal entropy coder would need at best, whatever the layout.

Usage: ``python -m bench.precision [--quick]``. Prints a table, then one JSON line.
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

# (name, DDL of ts and the three latencies, how each is made from µs integers)
LAYOUTS = [
    ("µs timestamps, µs latencies (the schema today)",
     "ts TIMESTAMP, latency_us BIGINT, connect_us BIGINT, ttfb_us BIGINT",
     "make_timestamp(ts), lat, conn, ttfb"),
    ("µs timestamps, 10 µs latencies", "ts TIMESTAMP, latency INTEGER, connect INTEGER, ttfb INTEGER",
     "make_timestamp(ts), lat // 10, conn // 10, ttfb // 10"),
    ("ms timestamps, 100 µs latencies", "ts TIMESTAMP_MS, latency INTEGER, connect INTEGER, ttfb INTEGER",
     "make_timestamp(ts)::TIMESTAMP_MS, lat // 100, conn // 100, ttfb // 100"),
    ("ms timestamps, ms latencies", "ts TIMESTAMP_MS, latency INTEGER, connect INTEGER, ttfb INTEGER",
     "make_timestamp(ts)::TIMESTAMP_MS, lat // 1000, conn // 1000, ttfb // 1000"),
]


def generate(monitors: int, interval_s: int, days: int, seed: int = 15) -> dict[str, np.ndarray]:
    """The checks, sorted by (monitor_id, ts), µs integers, and the parts they were made of."""
    rng = np.random.default_rng(seed)
    per = days * 86400 // interval_s
    n = monitors * per
    start = (time.time_ns() // 1000 // 86_400_000_000 - days) * 86_400_000_000
    grid = np.tile(np.arange(per, dtype=np.int64) * interval_s * 10**6, monitors)
    phase = np.repeat(rng.integers(0, interval_s * 10**6, monitors), per)
    late = rng.gamma(2.0, 500.0, n).astype(np.int64)
    conn = rng.lognormal(np.log(8_000), 0.3, n).astype(np.int64)
    server = rng.lognormal(np.log(25_000), 0.5, n).astype(np.int64)
    transfer = rng.lognormal(np.log(500), 0.8, n).astype(np.int64)
    return {"monitor_id": np.repeat(np.arange(1, monitors + 1, dtype=np.int64), per),
            "ts": start + grid + phase + late, "conn": conn, "ttfb": conn + server,
            "lat": conn + server + transfer, "late": late, "server": server, "transfer": transfer}


def entropy_bits(values: np.ndarray) -> float:
    """Plug-in (empirical) Shannon entropy of the values, bits each (biased low)."""
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def file_bytes(columns: dict[str, np.ndarray], ddl: str, select: str) -> int:
    """Size of a DuckDB file holding the rows in ``ddl``'s layout, after a checkpoint."""
    import duckdb
    import pyarrow as pa

    table = pa.table({k: columns[k] for k in ("monitor_id", "ts", "lat", "conn", "ttfb")})
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-precision-") as tmp:
        path = Path(tmp) / "checks.duckdb"
        con = duckdb.connect(str(path))
        try:
            con.execute(f"CREATE TABLE checks (monitor_id BIGINT, {ddl})")
            con.register("rows", table)
            con.execute(f"INSERT INTO checks SELECT monitor_id, {select} FROM rows")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="50 monitors, 4 days")
    parser.add_argument("--monitors", type=int, default=200)
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--days", type=int, default=8)
    args = parser.parse_args()
    if args.quick:
        args.monitors, args.days = 50, 4
    started = time.monotonic()
    columns = generate(args.monitors, args.interval, args.days)
    n = len(columns["ts"])
    log(f"{n:,} checks generated")
    empty = file_bytes({k: v[:0] for k, v in columns.items()}, LAYOUTS[0][1], LAYOUTS[0][2])
    results: list[dict[str, Any]] = []
    for name, ddl, select in LAYOUTS:
        size = file_bytes(columns, ddl, select) - empty
        results.append({"layout": name, "bytes_per_check": round(size / n, 3)})
        log(f"{name}: {size / n:.2f} B/check")
    floor = {part: round(entropy_bits(columns[part]) / 8, 3) for part in ("late", "conn", "server", "transfer")}
    print(f"\nbench.precision on {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"duckdb {_dist_version('duckdb')}; GENERATED data: {args.monitors} monitors every {args.interval} s for "
          f"{args.days} days = {n:,} checks, sorted by (monitor_id, ts); {time.monotonic() - started:.0f} s to run")
    print(f"{'layout (timestamp and three latencies)':<50} {'B/check':>8}")
    for r in results:
        print(f"{r['layout']:<50} {r['bytes_per_check']:8.2f}")
    print(f"{'entropy at µs (no codec does better)':<50} {sum(floor.values()):8.2f}   "
          + ", ".join(f"{k} {v:.2f}" for k, v in floor.items()))
    print(json.dumps({"bench": "precision", "generated": True, "checks": n, "monitors": args.monitors,
                      "interval_s": args.interval, "days": args.days, "layouts": results,
                      "entropy_bytes_at_us": floor}))


if __name__ == "__main__":
    main()
