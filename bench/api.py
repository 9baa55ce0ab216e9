"""The REST API under load, with the engine running, side by side in one run.

Setup: a data dir with 10M check rows for one monitor spread over the last 30 days (built by
SQL, then rolled up into hours by the server as it starts), 2,000 more monitors checking a
local nginx every second (the engine at work), and an account whose monthly limit cannot run
out. ``xuptime serve --workers 1`` is pinned to CPU 1; wrk (1 thread, 32 connections) and nginx
share CPU 0. Each endpoint gets the same wrk run:

- ``trivial``: ``GET /api/v1/account/usage`` (authenticated and counted, no database);
- ``monitors``: ``GET /api/v1/monitors?limit=25``;
- ``history_raw``: the newest 100 raw checks of the big monitor;
- ``history_1h_30d``: hourly buckets over 30 days of the big monitor (10M rows).

Both history queries move ``from`` one second later on every request (``bench/moving_from.lua``,
``{i}`` in the open loop), so every answer is computed: the history claims are made from these
uncached answers only. The same queries asked the same way every time, as a dashboard's viewers
send them (answers are cached until the data changes), are reported apart (``*_cached``) with
the cache hit rate of every run.

Every run must answer 2xx only (non-2xx answers and socket errors are counted and fail the
run); ids are looked up, not assumed. Beside wrk's closed loop (the next request leaves when an
answer came back), ``bench/openloop.py`` sends at a constant rate (60% of what wrk reached) and
measures latency from each request's intended send time, so queueing is not hidden.

Writes, on their own data dir with 20,000 monitors checked every second: single creates
(``POST /api/v1/monitors``, 16 wrk connections, ``bench/create_monitor.lua``) against the
trivial endpoint at 16 connections, and bulk creates (``POST /api/v1/monitors/bulk``, 1,000
monitors a request, 4 clients). Created monitors check hourly, so the load stays the same.

Targets: monitors >= 0.6 x trivial; history 1 h x 30 d p99 < 25 ms (measured at 32 connections
like the rest, and again with one connection: latency without queueing); single creates with
16 clients >= 0.25 x trivial; bulk-created monitors per second >= 10 x single creates.
Usage: ``python -m bench.api [--quick]``. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.engine import CONTENDER_CPU, TARGET_CPU, Nginx, _dist_version, ensure_tools, free_port, log, version_of

ROOT = Path(__file__).resolve().parent.parent


def build_data(data_dir: Path, rows: int, nginx_urls: list[str], monitors: int) -> int:
    """Writes the data set; returns the big monitor's id."""
    from core.models import parse_monitor
    from core.storage.duckdb import DuckDBStore

    store = DuckDBStore(data_dir)
    store.con.execute("UPDATE accounts SET monthly_request_limit = 1000000000000 WHERE name = 'default'")
    big = store.create_monitor(parse_monitor({"name": "big history", "type": "http", "url": "http://127.0.0.1:9/",
                                              "interval": 60, "paused": True}))
    now_us = time.time_ns() // 1000
    span_us = 30 * 86400 * 10**6
    store.con.execute(
        """INSERT INTO checks
           SELECT ?, make_timestamp(? - ? + CAST(CAST(i AS HUGEINT) * ? // ? AS BIGINT)), (i % 50) <> 0,
                  20000 + (i * 7919) % 180000,
                  CASE WHEN (i % 50) <> 0 THEN 200 END, CASE WHEN (i % 50) <> 0 THEN 0 ELSE 7 END,
                  CASE WHEN (i % 50) = 0 THEN 'status 500, expected 200-299' END, NULL, 300, NULL, 15000, NULL
           FROM range(?) t(i)""", [big.id, now_us, span_us, span_us, rows, rows])
    url_list = "[" + ", ".join(f"'{u}'" for u in nginx_urls) + "]"
    store.con.execute(f"""
        INSERT INTO monitors (account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,
                              paused, status, tags)
        SELECT 1, 'load-' || i, 'http',
               json_object('type', 'http', 'url', {url_list}[(i % {len(nginx_urls)}) + 1], 'keepAlive', true),
               1, 1.0, 0, 1, false, 'pending', ['load'] FROM range({monitors}) t(i)""")
    store.close()
    return big.id


def wrk(url: str, key: str, seconds: int, connections: int = 32, script: Path | None = None,
        env: dict[str, str] | None = None, cookie: str | None = None,
        extra_headers: Sequence[str] = ()) -> dict[str, float]:
    auth = ["-H", f"Cookie: {cookie}"] if cookie else ["-H", f"Authorization: Bearer {key}"]
    for header in extra_headers:
        auth += ["-H", header]
    args = ["taskset", "-c", TARGET_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            *auth, *(["-s", str(script)] if script else []), url]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}).stdout
    result: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(parts[1])
        elif parts and parts[0] in ("50%", "99%"):
            result["p" + parts[0].rstrip("%")] = _ms(parts[1])
        elif "Non-2xx" in line:
            result["non_2xx"] = float(parts[-1])
        elif line.strip().startswith("Socket errors:"):  # connect N, read N, write N, timeout N
            result["socket_errors"] = float(sum(int(p.rstrip(",")) for p in parts[3::2]))
    return result


def openloop(url: str, key: str, rate: float, seconds: int, base: int = 0, connections: int = 64) -> dict[str, float]:
    """``bench.openloop`` on the load generators' CPU: latency from the intended send time."""
    out = subprocess.run(["taskset", "-c", TARGET_CPU, sys.executable, "-m", "bench.openloop", url, "--rate",
                          str(round(rate)), "--seconds", str(seconds), "--connections", str(connections),
                          "--base", str(base),
                          "--header", f"Authorization: Bearer {key}"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(out)


def failures(name: str, result: dict[str, float]) -> list[str]:
    """What makes a run's figures meaningless: answers that were not 2xx, or lost requests."""
    bad = int(result.get("non_2xx", 0)) + int(result.get("socket_errors", 0)) + int(result.get("errors", 0))
    return [f"{name}: {bad} requests failed (non-2xx or socket errors)"] if bad else []


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def rolled_up(stats: dict[str, Any]) -> bool:
    """The imported month is rolled up into hours (up to a few hours ago)."""
    upto = stats["rollupUptoUs"]
    return bool(upto) and upto >= (time.time() - 3 * 3600) * 1e6


@contextlib.contextmanager
def serving(data_dir: Path, workdir: Path, http_server: str = "uvicorn", extra: Sequence[str] = (),
            ready: Callable[[dict[str, Any]], bool] = rolled_up, settle: float = 3.0) -> Iterator[tuple[str, str]]:
    """``xuptime serve --workers 1`` on CPU 1 with the given embedded ASGI server (and
    ``extra`` arguments): yields (base URL, a new key) once its workers are ready and
    ``ready(stats)`` holds, ``settle`` seconds later. When it is stopped, the server's
    warnings and errors are printed (slow garbage collections among them)."""
    from core.cli import ServerNotRunning, control_request

    port = free_port()
    with open(workdir / f"serve-{http_server}.log", "w") as serve_log:
        proc = subprocess.Popen(["taskset", "-c", CONTENDER_CPU, sys.executable, "-m", "core.cli", "serve",
                                 "--data-dir", str(data_dir), "--workers", "1", "--port", str(port),
                                 "--http-server", http_server, "--log-level", "WARNING", *extra],
                                stdout=serve_log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            for _ in range(240):
                if proc.poll() is not None:
                    raise RuntimeError(f"xuptime exited: {(workdir / serve_log.name).read_text()[-2000:]}")
                try:
                    stats = control_request(data_dir, "stats")
                    if all(w["ready"] for w in stats["workers"]) and ready(stats):
                        break
                except (ServerNotRunning, OSError, ValueError):
                    pass
                time.sleep(0.5)
            else:
                raise RuntimeError("xuptime did not get ready within 2 minutes")
            key = control_request(data_dir, "keys.create", {"name": "bench"})["secret"]
            time.sleep(settle)  # let the engine settle into its checks
            yield f"http://127.0.0.1:{port}", key
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(60)
            for line in (workdir / serve_log.name).read_text().splitlines():
                if "WARNING" in line or "ERROR" in line:
                    log(f"serve: {line}")


def bulk_rate(base: str, key: str, target: str, seconds: float, clients: int = 4, size: int = 1000) -> dict[str, float]:
    """Monitors created per second by ``clients`` loops of ``POST /monitors/bulk`` (``size`` each)."""
    import concurrent.futures
    import urllib.request

    stop = time.monotonic() + seconds
    counts = {"created": 0, "failed": 0}

    def loop(c: int) -> None:
        batch = 0
        while time.monotonic() < stop:
            batch += 1
            body = json.dumps({"monitors": [{"name": f"bulk-{c}-{batch}-{i}", "type": "http", "url": target,
                                             "interval": 3600} for i in range(size)]}).encode()
            request = urllib.request.Request(f"{base}/api/v1/monitors/bulk", data=body, method="POST",
                                             headers={"Authorization": f"Bearer {key}",
                                                      "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    made = len(json.loads(response.read())["data"])
                counts["created"] += made
            except OSError:
                counts["failed"] += 1

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(loop, range(clients)))
    elapsed = time.monotonic() - start
    return {"monitors_per_s": counts["created"] / elapsed, "errors": float(counts["failed"]),
            "requests": counts["created"] / size}


WRITE_ROUNDS = 3


def writes(workdir: Path, nginx: Nginx, seconds: int, monitors: int) -> dict[str, dict[str, float]]:
    """Single and bulk creates beside the trivial endpoint, with ``monitors`` checked every
    second. Trivial and single-create windows alternate for ``WRITE_ROUNDS`` rounds (the
    engine's load drifts over a minute: side by side, the ratio of each round is fair) and
    the median round is reported; then bulk creates. ``create_c16["batch"]``: monitors per
    create statement."""
    from core.cli import control_request

    data_dir = workdir / "writes"
    build_data(data_dir, 0, [nginx.url(i) for i in range(4)], monitors)
    out: dict[str, dict[str, float]] = {}
    with serving(data_dir, workdir, "uvicorn", ready=lambda stats: sum(w["monitors"] for w in stats["workers"])
                 >= monitors, settle=5.0) as (base, key):
        rounds = []
        for n in range(WRITE_ROUNDS):
            log(f"round {n + 1}/{WRITE_ROUNDS}: wrk trivial, then single creates, 16 connections "
                f"({monitors:,} monitors at 1 s)")
            before = control_request(data_dir, "stats")["creates"]
            trivial = wrk(base + "/api/v1/account/usage", key, seconds, connections=16)
            create = wrk(base, key, seconds, 16, ROOT / "bench" / "create_monitor.lua",
                         {"XUPTIME_TARGET": nginx.url()})
            after = control_request(data_dir, "stats")["creates"]
            create["batch"] = (after["monitors"] - before["monitors"]) / max(1, after["commits"] - before["commits"])
            rounds.append((create["rps"] / trivial["rps"], trivial, create))
        _, out["trivial_c16"], out["create_c16"] = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
        out["rounds"] = {f"ratio_{i + 1}": round(r[0], 3) for i, r in enumerate(rounds)}
        out["every_round"] = {"errors": sum(run.get("non_2xx", 0) + run.get("socket_errors", 0)
                                            for _, *runs in rounds for run in runs)}
        log("bulk creates, 4 clients x 1,000 monitors")
        out["bulk"] = bulk_rate(base, key, nginx.url(), seconds)
    return out


def main() -> None:
    from core.cli import control_request

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1M rows, 4 s runs")
    parser.add_argument("--writes-only", action="store_true", help="only the write-path runs")
    args = parser.parse_args()
    ensure_tools()
    rows = 1_000_000 if args.quick else 10_000_000
    seconds = 4 if args.quick else 10
    results: dict[str, dict[str, float]] = {}
    servers: dict[str, dict[str, float]] = {}
    open_loop: dict[str, dict[str, float]] = {}
    caches: dict[str, dict[str, float]] = {}
    write_runs: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-api-") as tmp:
        workdir = Path(tmp)
        nginx = Nginx(workdir)
        nginx.start()
        data_dir = workdir / "data"
        try:
            write_runs = writes(workdir, nginx, seconds, 20_000)
            if args.writes_only:
                print_writes(write_runs)
                print(json.dumps(write_runs))
                problems = [p for name, r in write_runs.items() for p in failures(name, r)]
                if problems:
                    raise SystemExit("bench.api: " + "; ".join(problems))
                return
            log(f"building {rows:,} check rows over 30 days")
            t = time.monotonic()
            big = build_data(data_dir, rows, [nginx.url(i) for i in range(4)], 2000)
            log(f"built in {time.monotonic() - t:.1f} s")
            since = int(time.time()) - 30 * 86400
            paths = {
                "trivial": "/api/v1/account/usage",
                "monitors": "/api/v1/monitors?limit=25",
                "history_raw_cached": f"/api/v1/monitors/{big}/history?limit=100&from={since}",
                "history_1h_30d_cached": f"/api/v1/monitors/{big}/history?interval=1h&limit=1000&from={since}",
            }
            uncached = {  # FROM: one second later on every request
                "history_raw": f"/api/v1/monitors/{big}/history?limit=100&from=FROM",
                "history_1h_30d": f"/api/v1/monitors/{big}/history?interval=1h&limit=1000&from=FROM",
            }
            lua = ROOT / "bench" / "moving_from.lua"
            # The embedded ASGI servers side by side, on the two cheapest endpoints.
            for http_server in ("uvicorn", "granian"):
                with serving(data_dir, workdir, http_server) as (base, key):
                    for name in ("trivial", "monitors"):
                        log(f"wrk {name} on {http_server}")
                        servers[f"{name}_{http_server}"] = wrk(base + paths[name], key, seconds)
            with serving(data_dir, workdir, "uvicorn") as (base, key):
                def cache() -> dict[str, int]:
                    return control_request(data_dir, "stats")["historyCache"]

                for name, path in paths.items():
                    log(f"wrk {name}")
                    before = cache()
                    results[name] = wrk(base + path, key, seconds)
                    if name.startswith("history"):
                        caches[name] = _hit_rate(before, cache())
                # Each uncached run starts its ``from`` 100,000 s after the last one's, so no run
                # asks what an earlier one asked (that would be a cache hit).
                offsets = iter(range(since, since + 20 * 100_000, 100_000))
                for name, path in uncached.items():
                    for connections, label in ((32, name), (1, name + "_c1")):  # c1: no queueing
                        log(f"wrk {label} (uncached)")
                        before = cache()
                        results[label] = wrk(base, key, seconds, connections, lua,
                                             {"XUPTIME_SINCE": str(next(offsets)), "XUPTIME_PATH": path})
                        caches[label] = _hit_rate(before, cache())
                for name, path in (("trivial", paths["trivial"]), ("monitors", paths["monitors"]),
                                   *uncached.items()):
                    rate = 0.6 * results[name]["rps"]
                    log(f"open loop {name} at {rate:,.0f} req/s")
                    before = cache()
                    open_loop[name] = openloop(base + path.replace("FROM", "{i}"), key, rate, seconds,
                                               next(offsets))
                    if name.startswith("history"):
                        caches["open_" + name] = _hit_rate(before, cache())
        finally:
            nginx.stop()
    problems = [p for name, r in [*servers.items(), *results.items(), *open_loop.items(), *write_runs.items()]
                for p in failures(name, r)]
    out: dict[str, Any] = {
        "bench": "api", "quick": args.quick, "rows": rows, "seconds": seconds, "server": "uvicorn (embedded)",
        "trivial_rps": round(results["trivial"]["rps"]),
        "monitors_rps": round(results["monitors"]["rps"]),
        "monitors_vs_trivial": round(results["monitors"]["rps"] / results["trivial"]["rps"], 3),
        "history_raw_p99_ms": results["history_raw"].get("p99"),
        "history_raw_p99_ms_1conn": results["history_raw_c1"].get("p99"),
        "history_raw_hit_rate": caches["history_raw"]["hit_rate"],
        "history_raw_cached_p99_ms": results["history_raw_cached"].get("p99"),
        "history_1h_30d_rps": round(results["history_1h_30d"]["rps"]),
        "history_1h_30d_p99_ms": results["history_1h_30d"].get("p99"),
        "history_1h_30d_p99_ms_1conn": results["history_1h_30d_c1"].get("p99"),
        "history_1h_30d_hit_rate": caches["history_1h_30d"]["hit_rate"],
        "history_1h_30d_cached_p99_ms": results["history_1h_30d_cached"].get("p99"),
        "history_1h_30d_cached_hit_rate": caches["history_1h_30d_cached"]["hit_rate"],
        "open_loop": open_loop,
        "writes": write_runs,
        "creates_rps_c16": round(write_runs["create_c16"]["rps"]),
        "creates_vs_trivial_c16": round(write_runs["create_c16"]["rps"] / write_runs["trivial_c16"]["rps"], 3),
        "bulk_monitors_per_s": round(write_runs["bulk"]["monitors_per_s"]),
        "bulk_vs_single": round(write_runs["bulk"]["monitors_per_s"] / write_runs["create_c16"]["rps"], 2),
        "granian_vs_uvicorn_trivial": round(servers["trivial_granian"]["rps"] / servers["trivial_uvicorn"]["rps"], 3),
        "granian_vs_uvicorn_monitors": round(servers["monitors_granian"]["rps"] / servers["monitors_uvicorn"]["rps"],
                                             3),
        "results": results, "servers": servers, "caches": caches, "failures": problems,
        "versions": {"python": platform.python_version(), "cpus": os.cpu_count(),
                     "litestar": _dist_version("litestar"), "uvicorn": _dist_version("uvicorn"),
                     "granian": _dist_version("granian"), "duckdb": _dist_version("duckdb"),
                     "wrk": version_of(["wrk", "-v"])},
    }
    print(f"{'endpoint (wrk, closed loop)':<28} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}  failed  cache hits")
    for name, r in [*servers.items(), *results.items()]:
        bad = int(r.get("non_2xx", 0) + r.get("socket_errors", 0))
        hits = f"{caches[name]['hit_rate']:.0%}" if name in caches else ""
        print(f"{name:<28} {r['rps']:>10,.0f} {r.get('p50', 0):>9.2f} {r.get('p99', 0):>9.2f}  {bad:>6}  {hits}")
    print(f"{'endpoint (open loop)':<28} {'rate':>10} {'p50 ms':>9} {'p99 ms':>9}  failed  p99.9 ms")
    for name, r in open_loop.items():
        bad = int(r["non_2xx"]) + int(r["errors"])
        print(f"{name:<28} {r['rate']:>10,.0f} {r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f}  {bad:>6}  {r['p999_ms']:.2f}")
    print_writes(write_runs)
    print(json.dumps(out))
    if problems:
        raise SystemExit("bench.api: the figures above are not valid: " + "; ".join(problems))


def print_writes(runs: dict[str, dict[str, float]]) -> None:
    trivial, single, bulk = runs["trivial_c16"]["rps"], runs["create_c16"]["rps"], runs["bulk"]["monitors_per_s"]
    create = runs["create_c16"]
    rounds = ", ".join(f"{v:.2f}" for v in runs.get("rounds", {}).values())
    print(f"writes, 20k monitors at 1 s, median of rounds ({rounds}): trivial {trivial:,.0f} req/s (16 conn); "
          f"single creates {single:,.0f}/s (16 conn, p99 {create.get('p99', 0):.1f} ms, "
          f"{create.get('batch', 0):.1f} a commit) = {single / trivial:.2f} x trivial; "
          f"bulk {bulk:,.0f} monitors/s = {bulk / single:.1f} x single")


def _hit_rate(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    hits, computed = after["hits"] - before["hits"], after["computed"] - before["computed"]
    return {"hits": hits, "computed": computed, "hit_rate": round(hits / (hits + computed), 4) if hits + computed
            else 0.0}


if __name__ == "__main__":
    main()
