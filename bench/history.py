"""Uncached history answers at scale: how they compare with the trivial endpoint, and how they
grow from 1M to 100M check rows.

Setup, per size (a fresh data dir each): 1,000 monitors (paused: no new rows arrive while it
is measured; their interval is the one the rows imply, 26 s at 100M), and ``rows`` checks
over the last 30 days **in arrival order** (every monitor interleaved, as the engine writes
them; latency 20-200 ms, 2% failures), written by SQL. Then
the server's own jobs run once over the month before the server starts, as they would have
run while it was collected: the hourly rollup and the upkeep (daily rollups, the rewrite of
each closed day sorted by ``(monitor_id, ts)``); the time they took is printed. Then
``xuptime serve --workers 1`` starts on CPU 1 (wrk on CPU 0) and wrk runs, 1 and 32
connections, on:

- ``trivial``: ``GET /api/v1/account/usage`` (authenticated and counted, no database);
- ``hourly``: 1 h buckets over 30 days (``interval=1h&limit=1000&from=...``);
- ``raw``: the newest 100 raw checks (``limit=100&from=...``);
- ``again`` (32 connections only): ``hourly`` once more, each ``from`` a second later than in
  its run at 32 connections: new answers, over what that run left in memory (the checks of the
  first hours, read in blocks of 6 hours: a time picker refreshing its range);
- ``cached`` (32 connections only): one monitor's ``hourly`` question asked the same way every
  time: after the first, every answer comes from the answer cache. Not a history claim (the
  targets are the uncached runs'): it is what the server pays to send an answer of that size,
  beside what computing one costs.

Every history request asks about another monitor with a ``from`` one second later than the
last (``bench/moving_monitor.lua``), and no run repeats another's questions: every answer is
computed, none cached (the server's cache hit rate is printed to show it).

With ``--across-rollup``, the largest size then waits for the next hour's turn and runs
``hourly`` at 32 connections in 10 s runs from 90 s after it until the server's rollup has
rolled the closed hour up (``rollupUptoUs`` moved) and once more: what a page costs while the
rollup runs and memory refills the hours it rolled up (at most 25 minutes of waiting).

Targets (issue 15): at 100M rows, uncached p99 at 32 clients <= 3 x the trivial p99,
uncached req/s >= 0.25 x the trivial req/s, and p99 at 100M rows <= 1.5 x p99 at 1M rows.
Usage: ``python -m bench.history [--quick] [--rows 1000000,10000000,100000000] [--across-rollup]``.
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

from bench.api import ROOT, _hit_rate, failures, serving, wrk
from bench.engine import _dist_version, ensure_tools, log

DAY_US = 86400 * 10**6
MONITORS = 1000


def build(data_dir: Path, rows: int, monitors: int) -> tuple[list[int], dict[str, float]]:
    """The data set, then the server's jobs over it; returns the monitor ids and seconds taken."""
    from core.storage.duckdb import DuckDBStore

    store = DuckDBStore(data_dir)
    timings: dict[str, float] = {}
    try:
        con = store.con
        con.execute("UPDATE accounts SET monthly_request_limit = 1000000000000 WHERE name = 'default'")
        every_s = max(1, round(30 * 86400 * monitors / rows))  # (the interval the rows were checked at)
        con.execute(f"""
            INSERT INTO monitors (account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,
                                  paused, status, tags)
            SELECT 1, 'history-' || i, 'http', json_object('type', 'http', 'url', 'http://127.0.0.1:9/'),
                   {every_s}, 1.0, 0, 1, true, 'pending', ['bench'] FROM range({monitors}) t(i)""")
        ids = [int(r[0]) for r in con.execute("SELECT id FROM monitors ORDER BY id").fetchall()]
        now_us = time.time_ns() // 1000
        span_us = 30 * DAY_US
        t = time.monotonic()
        con.execute(
            """INSERT INTO checks
               SELECT ids[(i % len(ids)) + 1], make_timestamp(? - ? + CAST(CAST(i AS HUGEINT) * ? // ? AS BIGINT)),
                      (i % 50) <> 0, 20000 + hash(i) % 180000,
                      CASE WHEN (i % 50) <> 0 THEN 200 END, CASE WHEN (i % 50) <> 0 THEN 0 ELSE 7 END,
                      CASE WHEN (i % 50) = 0 THEN 'status 500, expected 200-299' END, NULL, 300, NULL, 15000, NULL
               FROM range(?) t(i), (SELECT ?::BIGINT[] AS ids)""", [now_us, span_us, span_us, rows, rows, ids])
        timings["write_s"] = time.monotonic() - t
        store.close()
        store = DuckDBStore(data_dir)  # (it reads the time range of the rows at open)
        t = time.monotonic()
        store.rollup(now_us)
        timings["rollup_s"] = time.monotonic() - t
        t = time.monotonic()
        store.upkeep(now_us)
        timings["upkeep_s"] = time.monotonic() - t
        store.con.execute("CHECKPOINT")
    finally:
        store.close()
    return ids, timings


def across_rollup(data_dir: Path, base: str, key: str, lua: Path, env_ids: str, path: str,
                  offsets: Any) -> list[dict[str, Any]]:
    """Hour pages in 10 s runs from 90 s after the next hour's turn until one run after the
    one in which the server rolled the closed hour up."""
    from core.cli import control_request

    wait = 3600 - time.time() % 3600 + 90
    if wait > 25 * 60:
        log(f"the next hour's turn is {wait / 60:.0f} minutes away: not measured across a rollup")
        return []
    log(f"waiting {wait:.0f} s for the hour's turn (and 90 s)")
    time.sleep(wait)
    parts: list[dict[str, Any]] = []
    upto = control_request(data_dir, "stats")["rollupUptoUs"]
    rolled_at = None
    while len(parts) < 30 and (rolled_at is None or len(parts) <= rolled_at + 1):
        asked = {"XUPTIME_SINCE": str(next(offsets)), "XUPTIME_PATH": path, "XUPTIME_IDS": env_ids}
        pages = control_request(data_dir, "stats")["hourPages"]
        at = time.strftime("%H:%M:%S", time.gmtime())
        result = wrk(base, key, 10, 32, lua, asked)
        stats = control_request(data_dir, "stats")
        rolled = stats["rollupUptoUs"] != upto
        upto = stats["rollupUptoUs"]
        if rolled and rolled_at is None:
            rolled_at = len(parts)
        parts.append({"at": at, "seconds": 10, "p50": result["p50"], "p99": result["p99"], "rps": result["rps"],
                      "rolled": rolled, "pages": {k: stats["hourPages"][k] - pages[k] for k in ("memory", "store")}})
        log(json.dumps(parts[-1]))
    return parts


def main() -> None:
    from core.cli import control_request

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1M and 10M rows, 4 s runs")
    parser.add_argument("--rows", default="1000000,10000000,100000000")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--across-rollup", action="store_true",
                        help="at the largest size, also run hourly pages across the next hourly rollup")
    args = parser.parse_args()
    ensure_tools()
    sizes = [1_000_000, 10_000_000] if args.quick else [int(float(s)) for s in args.rows.split(",")]
    seconds = 4 if args.quick else args.seconds
    lua = ROOT / "bench" / "moving_monitor.lua"
    runs: list[dict[str, Any]] = []
    offsets = iter(range(int(time.time()) - 30 * 86400, 10**12, 100_000))
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="xuptime-bench-history-") as tmp:
            workdir = Path(tmp)
            data_dir = workdir / "data"
            log(f"building {rows:,} checks of {MONITORS} monitors over 30 days")
            ids, timings = build(data_dir, rows, MONITORS)
            log("built: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
            size = (data_dir / "xuptime.duckdb").stat().st_size
            run: dict[str, Any] = {"rows": rows, "file_bytes": size, **{k: round(v, 1) for k, v in timings.items()}}
            with serving(data_dir, workdir) as (base, key):
                env_ids = ",".join(map(str, ids))
                hours = "/api/v1/monitors/MON/history?interval=1h&limit=1000&from=FROM"
                sinces: dict[str, int] = {}
                # (``again``: the hourly run at 32 clients once more, each ``from`` a second
                # later than there: new answers, over the blocks of first hours the run kept)
                plan = [(name, path, c) for name, path in (("trivial", "/api/v1/account/usage"), ("hourly", hours),
                                                           ("raw", "/api/v1/monitors/MON/history?limit=100&from=FROM"))
                        for c in (1, 32)] + [("again", hours, 32), ("cached", hours, 32)]
                for name, path, connections in plan:
                    label = f"{name}_c{connections}"
                    log(f"{rows:,} rows: wrk {label}")
                    since = sinces["hourly_c32"] + 1 if name == "again" else next(offsets)
                    sinces[label] = since
                    asked = {"XUPTIME_SINCE": str(since), "XUPTIME_PATH": path, "XUPTIME_IDS": env_ids}
                    if name == "cached":  # (one question, every time)
                        asked.update(XUPTIME_PATH=path.replace("FROM", str(since)), XUPTIME_IDS=str(ids[0]))
                    stats = control_request(data_dir, "stats")
                    # pages answered from memory (``RecentChecks``, ``RecentHours``) and from the store
                    source = {"raw": "rawPages", "hourly": "hourPages", "again": "hourPages",
                              "cached": "hourPages"}.get(name)
                    before, pages = stats["historyCache"], stats[source] if source else None
                    kept = stats["hourRows"]
                    result = wrk(base, key, seconds, connections, lua, asked)
                    stats = control_request(data_dir, "stats")
                    result["hit_rate"] = _hit_rate(before, stats["historyCache"])["hit_rate"]
                    result["pages"] = {k: stats[source][k] - pages[k] for k in ("memory", "store")} if source else None
                    # the first hour's checks of a range that starts inside one: kept or read
                    result["hour_rows"] = {k: stats["hourRows"][k] - kept[k] for k in ("hits", "reads", "ahead")}
                    problems = failures(f"{rows} {label}", result)
                    if problems:
                        raise SystemExit("bench.history: " + "; ".join(problems))
                    run[label] = result
                if args.across_rollup and rows == sizes[-1]:
                    run["across_rollup"] = across_rollup(data_dir, base, key, lua, env_ids, hours, offsets)
            runs.append(run)
    print(f"\nbench.history on {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"duckdb {_dist_version('duckdb')}, litestar {_dist_version('litestar')}; {MONITORS} monitors, "
          f"30 days in arrival order; every history answer uncached; {seconds} s per run")
    print(f"{'rows':>12} {'question':>8} {'c1 p50':>8} {'c1 p99':>8} {'c32 p50':>8} {'c32 p99':>8} {'c32 req/s':>10} "
          f"{'÷ trivial p99':>13} {'÷ trivial req/s':>15}")
    for run in runs:
        for name in ("trivial", "hourly", "raw", "again", "cached"):
            c1, c32, trivial = run.get(f"{name}_c1", {"p50": float("nan"), "p99": float("nan")}), run[f"{name}_c32"], \
                run["trivial_c32"]
            print(f"{run['rows']:12,} {name:>8} {c1['p50']:8.2f} {c1['p99']:8.2f} {c32['p50']:8.2f} "
                  f"{c32['p99']:8.2f} {c32['rps']:10,.0f} {c32['p99'] / trivial['p99']:13.2f} "
                  f"{c32['rps'] / trivial['rps']:15.3f}")
        for name in ("hourly", "raw"):
            memory, store = (sum(run[f"{name}_c{c}"]["pages"][k] for c in (1, 32)) for k in ("memory", "store"))
            print(f"{'':12} {name} pages from memory: {memory:,}, from the store: {store:,}")
        for label in ("hourly_c1", "hourly_c32", "again_c32"):
            kept = run[label]["hour_rows"]
            print(f"{'':12} {label}: the hour a range starts in, checks kept {kept['hits']:,} times, "
                  f"read {kept['reads']:,} times (statements a page waited for; {kept['ahead']:,} read ahead)")
        print(f"{'':12} file {run['file_bytes'] / 2**20:.0f} MiB ({run['file_bytes'] / run['rows']:.2f} B/check); "
              f"write {run['write_s']} s, rollup {run['rollup_s']} s, upkeep {run['upkeep_s']} s")
    for run in runs:
        for part in run.get("across_rollup", []):
            print(f"{run['rows']:12,} hourly at {part['at']} (32 clients, {part['seconds']} s): p50 {part['p50']:.2f}, "
                  f"p99 {part['p99']:.2f} ms, {part['rps']:,.0f} req/s, pages from the store "
                  f"{part['pages']['store']:,}{', the rollup ran' if part['rolled'] else ''}")
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        for name in ("hourly", "raw"):
            print(f"{name}: p99 at 32 clients, {last['rows']:,} rows ÷ {first['rows']:,} rows = "
                  f"{last[f'{name}_c32']['p99'] / first[f'{name}_c32']['p99']:.2f} (target <= 1.5)")
    print(json.dumps({"bench": "history", "monitors": MONITORS, "seconds": seconds, "runs": runs}))


if __name__ == "__main__":
    main()
