"""Ingest while the upkeep runs: does rewriting and dropping history slow the engine down?

Issue 15 asks that ingest stay >= 0.7 x wrk ``Connection: close`` end to end while compaction
and retention run, in the same bench run. Setup, all in one run: one nginx on CPU 0; wrk with
``Connection: close`` (1 thread, 64 connections, on CPU 1: the ceiling, as in
``bench.engine``); then ``xuptime serve --workers 1`` on CPU 1 with ``--monitors`` HTTP
monitors at 1 s (a new connection per check: the engine at its capacity), three times:

- ``quiet``: a fresh data dir, nothing to keep up;
- ``upkeep``: the same monitors, plus ``--rows`` old checks of 1,000 other (paused) monitors over
  the ``--days`` days before today, in arrival order, rolled up into hours (before the start)
  but never merged into days nor rewritten, and ``serve --retention raw=3d``: from its start
  the server merges days, drops the days past three and rewrites the others sorted, on the
  rollup job's thread, while the engine checks;
- ``quiet`` again (the machine drifts: the two quiet runs bracket the upkeep run).

Each run: warm-up, then a ``--seconds`` window; successful checks per second are counted as rows
in DuckDB with timestamps in the window. During the window the server's stats are read every
0.5 s (in every run alike) for what the rollup job is doing: the share of samples it was busy is
printed beside the figure, and an upkeep run in which it was not busy all window long is
reported as such. Usage: ``python -m bench.upkeep [--quick]``. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.engine import (
    WARMUP,
    Nginx,
    Xuptime,
    _dist_version,
    ensure_tools,
    log,
    wrk,
)

DAY_US = 86400 * 10**6


def preload(data_dir: Path, rows: int, days: int) -> None:
    """``rows`` checks of 1,000 paused monitors over the ``days`` whole days before today."""
    from core.storage.duckdb import DuckDBStore

    store = DuckDBStore(data_dir)
    try:
        con = store.con
        con.execute("""INSERT INTO monitors (account_id, name, type, spec, interval_s, timeout_s, retries,
                                             recovery_threshold, paused, status, tags)
                       SELECT 1, 'old-' || i, 'http', json_object('type', 'http', 'url', 'http://127.0.0.1:9/'),
                              60, 1.0, 0, 1, true, 'pending', [] FROM range(1000) t(i)""")
        ids = [int(r[0]) for r in con.execute("SELECT id FROM monitors WHERE name LIKE 'old-%' ORDER BY id").fetchall()]
        start = (time.time_ns() // 1000 // DAY_US - days) * DAY_US
        span = days * DAY_US
        con.execute("""INSERT INTO checks
                       SELECT ids[(i % len(ids)) + 1], make_timestamp(? + CAST(CAST(i AS HUGEINT) * ? // ? AS BIGINT)),
                              (i % 50) <> 0, 20000 + hash(i) % 180000, 200, 0, NULL, NULL, 300, NULL, 15000, NULL
                       FROM range(?) t(i), (SELECT ?::BIGINT[] AS ids)""", [start, span, rows, rows, ids])
        store.close()
        store = DuckDBStore(data_dir)  # (it reads the rows' time range at open)
        store.rollup(time.time_ns() // 1000)  # (done here: the server's first round is the upkeep alone)
    finally:
        store.close()


def run(workdir: Path, name: str, url: str, monitors: int, seconds: int, old_rows: int = 0,
        days: int = 0) -> dict[str, Any]:
    from core.cli import control_request

    x = Xuptime(workdir, name)
    extra: list[str] = []
    if old_rows:
        log(f"{name}: writing {old_rows:,} old checks over {days} days")
        preload(x.data_dir, old_rows, days)
        extra = ["--retention", "raw=3d"]
    x.load([url], monitors, 1, keep_alive=False)
    started = time.monotonic()
    x.start(extra=extra)
    try:
        x.wait_loaded(monitors)
        ready = time.monotonic() - started
        time.sleep(WARMUP)
        t0 = time.time_ns() // 1000
        busy: list[str | None] = []
        while time.time_ns() // 1000 < t0 + seconds * 10**6:
            busy.append(control_request(x.data_dir, "stats")["upkeep"]["busy"])
            time.sleep(0.5)
        t1 = time.time_ns() // 1000
        after = control_request(x.data_dir, "stats")["upkeep"]
    finally:
        x.stop()
    rows, ok = x.rows_between(t0, t1)
    shutil.rmtree(x.data_dir, ignore_errors=True)
    return {"cps": ok / ((t1 - t0) / 1e6), "ok_share": ok / rows if rows else 0.0, "ready_s": round(ready, 1),
            "busy_share": round(sum(b is not None for b in busy) / max(1, len(busy)), 3),
            "busy": {k: busy.count(k) for k in sorted(set(busy) - {None})}, "samples": len(busy),  # type: ignore[type-var]
            "compacted_upto_us": after["compactedUptoUs"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20M old rows, 10 s windows")
    parser.add_argument("--monitors", type=int, default=60_000)
    parser.add_argument("--rows", type=int, default=60_000_000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.seconds = 20_000_000, 10
    ensure_tools()
    out: dict[str, Any] = {"bench": "upkeep", "monitors": args.monitors, "old_rows": args.rows, "days": args.days,
                           "seconds": args.seconds}
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-upkeep-") as tmp:
        workdir = Path(tmp)
        nginx = Nginx(workdir)
        nginx.start()
        try:
            log("wrk Connection: close (the ceiling)")
            out["wrk_close_rps"], _ = wrk(nginx.url(), args.seconds, close=True)
            out["quiet"] = run(workdir, "quiet", nginx.url(), args.monitors, args.seconds)
            out["upkeep"] = run(workdir, "upkeep", nginx.url(), args.monitors, args.seconds, args.rows, args.days)
            out["quiet_again"] = run(workdir, "quiet2", nginx.url(), args.monitors, args.seconds)
        finally:
            nginx.stop()
    ceiling = out["wrk_close_rps"]
    print(f"\nbench.upkeep on {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"duckdb {_dist_version('duckdb')}; {args.monitors:,} monitors at 1 s, new connection per check; "
          f"upkeep run: {args.rows:,} old checks over {args.days} days, retention raw=3d; {args.seconds} s windows")
    print(f"wrk Connection: close: {ceiling:,.0f} req/s")
    print(f"{'run':>12} {'checks/s':>9} {'÷ wrk close':>11} {'ok share':>9} {'rollup job busy':>16}")
    for name in ("quiet", "upkeep", "quiet_again"):
        r = out[name]
        print(f"{name:>12} {r['cps']:9,.0f} {r['cps'] / ceiling:11.2f} {r['ok_share']:9.4f} "
              f"{r['busy_share']:15.0%}  {r['busy']}")
    if out["upkeep"]["busy_share"] < 1:
        print("NOTE: the rollup job was not busy for the whole upkeep window: its figure is partly a quiet one")
    print(json.dumps(out))
    low = [n for n in ("quiet", "upkeep", "quiet_again") if out[n]["ok_share"] < 0.999]
    if low:
        raise SystemExit(f"bench.upkeep: ok share below 99.9% in {low}: those figures are not valid")


if __name__ == "__main__":
    main()
