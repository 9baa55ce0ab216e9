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
   rate, at random times, for ``--seconds``, and the main process's CPU time (utime + stime
   from ``/proc``) over the window is compared with as long idle. Target: < 10% of a core for
   10k agents. Two ways of connecting, each measured: every agent holding its own connection
   (10k open connections; what the agent does) and a new connection per report (an agent
   behind a proxy that closes). Alternated with each (three rounds each, medians), the same
   fleet against ``bench.bare_asgi`` (read the body, answer 202) under uvicorn on the same
   CPU: what an ASGI server alone costs.

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

KEEP_ALIVE = 75  # (serve's default --keep-alive)
MODES = {"keep_alive": "each agent holding its connection (as the agent does)",
         "new_connection": "a new connection per report (as behind a proxy that closes)"}
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


def fleet(base: str, agents: int, keep_alive: bool) -> None:
    """Windows on command: for each line ``RATE SECONDS`` read from stdin, one JSON line of
    what was sent. Open loop: ``rate`` reports a second on average, at random times (exponential gaps, as
    independent agents arrive), agents in turn, each request at its intended time (late ones
    are sent at once and counted late). With ``keep_alive`` each agent holds its own
    connection and reuses it, as the agent does (10k agents: 10k open connections, opened by
    the warm-up); otherwise each report opens a new connection (an agent whose interval is
    longer than the server's keep-alive, or behind a proxy that closes). Run on CPU 0 in its
    own process, which lives across windows so that the connections do."""
    host, port = base.removeprefix("http://").split(":")
    body = json.dumps(REPORT).encode()
    head = (f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nHost: {host}:{port}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n").encode()

    conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
    limit = asyncio.Semaphore(1000)

    async def window(rate: float, seconds: float) -> dict[str, Any]:
        statuses: dict[int, int] = {}
        late = reconnects = 0

        async def exchange(agent: int) -> int:
            nonlocal reconnects
            request = f"POST /api/agent/bench-agent-{agent:07d}/report HTTP/1.1\r\n".encode() + head + body
            for attempt in range(2):
                reused = agent in conns
                if not reused:
                    conns[agent] = await asyncio.open_connection(host, int(port))
                reader, writer = conns[agent]
                try:
                    writer.write(request)
                    status_line = await reader.readline()
                    if not status_line:
                        raise ConnectionResetError
                    length = 0
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    await reader.readexactly(length)
                except (OSError, asyncio.IncompleteReadError):
                    conns.pop(agent)[1].close()
                    if not reused or attempt:
                        raise
                    reconnects += 1  # (the server closed an idle connection: the agent sends again)
                    continue
                if not keep_alive:
                    conns.pop(agent)[1].close()
                return int(status_line.split()[1])
            raise AssertionError("unreachable")

        async def one(i: int) -> None:
            async with limit:
                status = await exchange(i % agents)
            statuses[status] = statuses.get(status, 0) + 1

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
        return {"sent": total, "statuses": statuses, "late": late, "reconnects": reconnects,
                "seconds": loop.time() - start, "open": len(conns)}

    async def run() -> None:
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            rate, seconds = map(float, line.split())
            print(json.dumps(await window(rate, seconds)), flush=True)
        for _, writer in conns.values():
            writer.close()

    import uvloop

    uvloop.run(run())


class Fleet:
    """A fleet's client (``fleet``) in its own process on CPU 0, holding its connections."""

    def __init__(self, base: str, agents: int, keep_alive: bool) -> None:
        self.agents = agents
        self.proc = subprocess.Popen(["taskset", "-c", TARGET_CPU, sys.executable, "-m", "bench.agents", "--fleet",
                                      base, str(agents), "1" if keep_alive else "0"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def send(self, rate: float, seconds: float) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{rate} {seconds}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fleet's client exited")
        return json.loads(line)

    def warm_up(self) -> None:
        """One report from every agent (opening its connection)."""
        self.send(2000.0, self.agents / 2000)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(60)


@contextlib.contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    """``bench.bare_asgi`` under uvicorn (as ``serve`` embeds it: uvloop, httptools, no access
    log) on the server's CPU: (base URL, pid)."""
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", CONTENDER_CPU, sys.executable, "-m", "uvicorn", "bench.bare_asgi:app",
                             "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                             "--log-level", "warning", "--no-server-header",
                             "--timeout-keep-alive", str(KEEP_ALIVE)], cwd=ROOT)
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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cost(pid: int, fleet: Fleet, seconds: float) -> dict[str, Any]:
    """A fleet's window: the share of a core ``pid`` used, and what was sent."""
    before, started = cpu_seconds(pid), time.monotonic()
    sent = fleet.send(fleet.agents / 30, seconds)
    return {"core": (cpu_seconds(pid) - before) / (time.monotonic() - started), **sent}


def fleet_phase(base: str, data_dir: Path, agents: int, seconds: float, rounds: int) -> dict[str, Any]:
    """The main process's CPU idle; then, for each way of connecting (each agent holding its
    connection, as the agent does; a new connection per report), once every agent has
    reported (a first report is a status change, pending -> up, which a steady fleet does not
    have, and opens the agent's connection), ``rounds`` fleet windows against xuptime
    alternated with as many against the bare ASGI app (the floor); medians."""
    pid = main_pid(data_dir)
    before = cpu_seconds(pid)
    time.sleep(seconds)
    idle = (cpu_seconds(pid) - before) / seconds
    out: dict[str, Any] = {"rate": agents / 30, "idle_core": idle, "rss_mb_before": rss_mb(pid)}
    with bare_server() as (bare, bare_pid):
        for mode, keep_alive in (("keep_alive", True), ("new_connection", False)):
            fleets = Fleet(base, agents, keep_alive), Fleet(bare, agents, keep_alive)
            try:
                log(f"warm-up ({mode}): one report from each of the {agents} agents, to xuptime and the bare app")
                for f in fleets:
                    f.warm_up()
                time.sleep(3)
                if keep_alive:
                    out["rss_mb_connected"] = rss_mb(pid)
                ours, floor = [], []
                for _ in range(rounds):
                    log(f"fleet ({mode}): {agents} agents every 30 s for {seconds:g} s against xuptime")
                    ours.append(cost(pid, fleets[0], seconds))
                    log(f"the same fleet ({mode}) against a bare ASGI app under uvicorn")
                    floor.append(cost(bare_pid, fleets[1], seconds))
            finally:
                for f in fleets:
                    f.close()
            busy = statistics.median(r["core"] for r in ours)
            out[mode] = {
                "busy_core": busy, "cost_core": busy - idle, "bare_core": statistics.median(r["core"] for r in floor),
                "rounds": [{"xuptime": a["core"], "bare": b["core"]} for a, b in zip(ours, floor, strict=True)],
                "statuses": {k: sum(r["statuses"].get(k, 0) for r in ours + floor)
                             for k in {k for r in ours + floor for k in r["statuses"]}},
                "sent": sum(r["sent"] for r in ours), "late": sum(r["late"] for r in ours + floor),
                "reconnects": sum(r["reconnects"] for r in ours + floor)}
    return out


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
    parser.add_argument("--fleet", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fleet:
        base, agents, keep_alive = args.fleet
        fleet(base, int(agents), keep_alive == "1")
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
            for mode in MODES:
                if set(results["fleet"][mode]["statuses"]) != {"202"}:  # (the bare app answers 202 too)
                    problems.append(f"fleet ({mode}): answers {results['fleet'][mode]['statuses']}")
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
    sent = (sum(r["rps"] for r in reports) * seconds + sum(results["fleet"][m]["sent"] for m in MODES)
            + args.agents * len(MODES))  # (+ the warm-ups)
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
    print(f"fleet of {args.agents} at 30 s ({fl['rate']:.0f} reports/s; main process idle {fl['idle_core'] * 100:.1f}% "
          f"of a core; RSS {fl['rss_mb_before']:.0f} MB, {fl['rss_mb_connected']:.0f} MB with every agent connected):")
    for mode, what in MODES.items():
        m = fl[mode]
        print(f"  {what}: main process {m['busy_core'] * 100:.1f}% of a core = {m['cost_core'] * 100:.1f}% for the "
              f"reports (target < 10%); the same fleet against a bare ASGI app under uvicorn (the HTTP server "
              f"alone): {m['bare_core'] * 100:.1f}%; {m['late']} sent late, {m['reconnects']} reconnects; "
              f"rounds (xuptime, bare): " + ", ".join(f"({r['xuptime'] * 100:.1f}, {r['bare'] * 100:.1f})"
                                                      for r in m["rounds"]))
    for problem in problems:
        print(f"INVALID RUN: {problem}")
    print(json.dumps({"bench": "agents", "http_server": args.http_server, "ratio_reports_trivial": round(ratio, 3),
                      "fleet_cost_core": round(fl["keep_alive"]["cost_core"], 4), **results}))


if __name__ == "__main__":
    main()
