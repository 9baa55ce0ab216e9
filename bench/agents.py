"""Server agents' reports against one server, in one run.

A data dir with ``--agents`` agent monitors (10,000 by default; tokens ``bench-agent-0000000``
...), written straight into the store. ``xuptime serve --workers 1`` on CPU 1; the load
generators on CPU 0.

1. **Throughput.** wrk (1 thread, 32 connections) posts reports, each request one agent's
   (taken in turn, so no token is rate-limited), a typical report of two disks (~600 bytes):
   every answer must be a 202 with ``stored: 1``. Beside it, the trivial API endpoint
   (``GET /api/v1/account/usage``), three rounds each, alternated; medians reported. The rows
   stored are counted afterwards. Target: reports/s >= 0.5 x the trivial endpoint's.
2. **Cost at a fleet's pace.** Every agent reporting every 30 s is ``agents / 30`` reports a
   second (333/s for 10k): after one report from every agent (a first report changes the
   status, which the steady state does not), an open-loop client on CPU 0 sends them at that
   rate, at random times, each on a new connection as the agent does, for ``--seconds``, and
   the main process's CPU time (utime + stime from ``/proc``) over the window is compared
   with as long idle. Target: < 10% of a core for
   10k agents. Alternated with it (three rounds each, medians), the floor: the same fleet
   against ``bench.bare_asgi`` (read the body, answer 202) under uvicorn on the same CPU,
   which is what the HTTP server alone costs.

Usage: ``python -m bench.agents [--quick] [--agents N] [--seconds S]``. Prints a table, then
one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.api import ROOT, failures, serving, wrk
from bench.engine import CONTENDER_CPU, TARGET_CPU, _dist_version, ensure_tools, free_port, log, version_of

SCRIPT = Path(__file__).with_name("agent_report.lua")
REPORT = {"hostname": "web-17", "os": "Debian GNU/Linux 12 (Linux 6.1.0)", "uptimeS": 864000, "cpuPercent": 23.5,
          "load": [0.52, 0.61, 0.58], "memory": {"usedBytes": 3221225472, "totalBytes": 8589934592},
          "swap": {"usedBytes": 0, "totalBytes": 2147483648},
          "disks": [{"mount": "/", "usedBytes": 21474836480, "totalBytes": 53687091200},
                    {"mount": "/var/lib/postgresql", "usedBytes": 107374182400, "totalBytes": 214748364800}],
          "network": {"rxBytesPerS": 125000.5, "txBytesPerS": 98000.0}, "processes": 187, "version": "1"}


def build(data_dir: Path, agents: int) -> None:
    """``agents`` agent monitors (30 s interval, a disk threshold) written straight into a new data dir.
    Their grace is 300 s: none falls silent while the bench sends to others."""
    from core.storage.duckdb import DuckDBStore

    store = DuckDBStore(data_dir)
    store.con.execute("UPDATE accounts SET monthly_request_limit = 1000000000000 WHERE name = 'default'")
    store.con.execute(f"""
        INSERT INTO monitors (account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,
                              paused, status, tags)
        SELECT 1, 'host-' || i, 'agent', json_object('type', 'agent', 'agentToken', printf('bench-agent-%07d', i),
                                                       'thresholds', json_object('diskPercent', 90), 'grace', 300),
               30, NULL, 0, 1, false, 'pending', ['bench'] FROM range({agents}) t(i)""")
    store.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main_pid(data_dir: Path) -> int:
    from core.cli import control_request

    return int(control_request(data_dir, "ping")["pid"])


def fleet(base: str, agents: int, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop: ``rate`` reports a second on average, at random times (exponential gaps, as
    independent agents arrive), agents in turn, each on a new connection (as the agent sends
    them: it does not hold one open for 30 s), each request at its intended time (late ones
    are sent at once and counted late). Run on CPU 0 in its own process."""
    import aiohttp

    body = json.dumps(REPORT).encode()

    async def run() -> dict[str, Any]:
        statuses: dict[int, int] = {}
        late = 0
        connector = aiohttp.TCPConnector(limit=64, force_close=True)  # (as the agent: a connection a report)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one(i: int) -> None:
                url = f"{base}/api/agent/bench-agent-{i % agents:07d}/report"
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1

            loop = asyncio.get_running_loop()
            start = loop.time()
            tasks = []
            total = int(rate * seconds)
            gaps = random.Random(7)
            due = start
            for i in range(total):
                due += gaps.expovariate(rate)  # agents on their own clocks: arrivals at random (Poisson)
                pause = due - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                elif pause < -0.05:
                    late += 1
                tasks.append(loop.create_task(one(i)))
            await asyncio.gather(*tasks)
            return {"sent": total, "statuses": statuses, "late": late, "seconds": loop.time() - start}

    return asyncio.run(run())


def send(base: str, agents: int, rate: float, seconds: float) -> dict[str, Any]:
    out = subprocess.run(["taskset", "-c", TARGET_CPU, sys.executable, "-m", "bench.agents", "--fleet", base,
                          str(agents), str(rate), str(seconds)], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    return json.loads(out)


@contextlib.contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    """``bench.bare_asgi`` under uvicorn (as ``serve`` embeds it: uvloop, httptools, no access
    log) on the server's CPU: (base URL, pid)."""
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", CONTENDER_CPU, sys.executable, "-m", "uvicorn", "bench.bare_asgi:app",
                             "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                             "--log-level", "warning", "--no-server-header"], cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def cost(pid: int, base: str, agents: int, seconds: float) -> dict[str, Any]:
    """A fleet's window against ``base``: the share of a core ``pid`` used, and what was sent."""
    before, started = cpu_seconds(pid), time.monotonic()
    sent = send(base, agents, agents / 30, seconds)
    return {"core": (cpu_seconds(pid) - before) / (time.monotonic() - started), **sent}


def fleet_phase(base: str, data_dir: Path, agents: int, seconds: float, rounds: int) -> dict[str, Any]:
    """The main process's CPU idle; then, once every agent has reported (a first report is a
    status change, pending -> up, which a steady fleet does not have), ``rounds`` fleet windows
    against xuptime alternated with as many against the bare ASGI app (the floor); medians."""
    pid = main_pid(data_dir)
    before = cpu_seconds(pid)
    time.sleep(seconds)
    idle = (cpu_seconds(pid) - before) / seconds
    log(f"warm-up: one report from each of the {agents} agents")
    send(base, agents, 2000.0, agents / 2000)
    time.sleep(3)
    ours, floor = [], []
    with bare_server() as (bare, bare_pid):
        for _ in range(rounds):
            log(f"fleet: {agents} agents every 30 s for {seconds:g} s against xuptime")
            ours.append(cost(pid, base, agents, seconds))
            log("the same fleet against a bare ASGI app under uvicorn")
            floor.append(cost(bare_pid, bare, agents, seconds))
    busy = statistics.median(r["core"] for r in ours)
    return {"rate": agents / 30, "idle_core": idle, "busy_core": busy, "cost_core": busy - idle,
            "bare_core": statistics.median(r["core"] for r in floor),
            "rounds": [{"xuptime": a["core"], "bare": b["core"]} for a, b in zip(ours, floor, strict=True)],
            "statuses": {k: sum(r["statuses"].get(k, 0) for r in ours + floor)
                         for k in {k for r in ours + floor for k in r["statuses"]}},
            "sent": sum(r["sent"] for r in ours), "late": sum(r["late"] for r in ours + floor)}


def stored(data_dir: Path) -> int:
    from core.cli import _run

    return int(_run(data_dir, "sql", {"sql": "SELECT count(*) FROM agent_reports"})["rows"][0][0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="4 s runs")
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="the fleet's window (and the idle one)")
    parser.add_argument("--http-server", choices=["uvicorn", "granian"], default="uvicorn",
                        help="the embedded HTTP server of xuptime serve (default: uvicorn, serve's own default)")
    parser.add_argument("--fleet", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fleet:
        base, agents, rate, seconds = args.fleet
        print(json.dumps(fleet(base, int(agents), float(rate), float(seconds))))
        return
    ensure_tools()
    seconds = 4 if args.quick else 10
    window = 10.0 if args.quick else args.seconds
    results: dict[str, Any] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-agents-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        build(data_dir, args.agents)
        with serving(data_dir, workdir, args.http_server, ready=lambda _: True, settle=2) as (base, key):
            results["fleet"] = fleet_phase(base, data_dir, args.agents, window, 1 if args.quick else 3)
            if set(results["fleet"]["statuses"]) != {"202"}:  # (the bare app answers 202 too)
                problems.append(f"fleet: answers {results['fleet']['statuses']}")
            reports, trivial = [], []
            for _ in range(3):
                log("wrk agent reports")
                reports.append(wrk(base + "/api/agent/bench-agent-0000000/report", "", seconds,
                                   script=SCRIPT, env={"XUPTIME_AGENTS": str(args.agents)}))
                log("wrk trivial")
                trivial.append(wrk(base + "/api/v1/account/usage", key, seconds))
            for name, runs in (("reports", reports), ("trivial", trivial)):
                for run in runs:
                    problems += failures(name, run)
            time.sleep(1)
            results["stored"] = stored(data_dir)
    results["reports"] = {k: statistics.median(r[k] for r in reports) for k in ("rps", "p50", "p99")}
    results["trivial"] = {k: statistics.median(r[k] for r in trivial) for k in ("rps", "p50", "p99")}
    sent = sum(r["rps"] for r in reports) * seconds + results["fleet"]["sent"] + args.agents  # (+ the warm-up)
    rep, triv, fl = results["reports"], results["trivial"], results["fleet"]
    print(f"\nbench.agents on {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"litestar {_dist_version('litestar')}, duckdb {_dist_version('duckdb')}, "
          f"{version_of(['wrk', '--version']).split(' [')[0]}; {args.agents} agents; serve --http-server "
          f"{args.http_server}")
    print(f"{'run':40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'POST /api/agent/{token}/report':40} {rep['rps']:9.0f} {rep['p50']:8.2f} {rep['p99']:8.2f}")
    print(f"{'GET /api/v1/account/usage (trivial)':40} {triv['rps']:9.0f} {triv['p50']:8.2f} {triv['p99']:8.2f}")
    ratio = rep["rps"] / triv["rps"]
    print(f"reports/s / trivial req/s: {ratio:.2f} (target >= 0.5); rows stored {results['stored']} of about "
          f"{sent:.0f} sent (wrk's count is rounded)")
    print(f"fleet of {args.agents} at 30 s ({fl['rate']:.0f} reports/s, {fl['late']} sent late; medians of "
          f"{len(fl['rounds'])}): main process {fl['busy_core'] * 100:.1f}% of a core vs "
          f"{fl['idle_core'] * 100:.1f}% idle = {fl['cost_core'] * 100:.1f}% for the reports (target < 10%)")
    print(f"  the same fleet against a bare ASGI app under uvicorn (the HTTP server alone): "
          f"{fl['bare_core'] * 100:.1f}% of a core; rounds (xuptime, bare): "
          + ", ".join(f"({r['xuptime'] * 100:.1f}, {r['bare'] * 100:.1f})" for r in fl["rounds"]))
    for problem in problems:
        print(f"INVALID RUN: {problem}")
    print(json.dumps({"bench": "agents", "http_server": args.http_server, "ratio_reports_trivial": round(ratio, 3),
                      "fleet_cost_core": round(fl["cost_core"], 4), **results}))


if __name__ == "__main__":
    main()
