"""The checking engine against its ceiling and its peers, in one run, on one target.

Topology (2 cores): nginx with one worker pinned to CPU 0 is the target: one HTTP port that
every contender uses, HTTPS on a second (TLS session resumption off: no cache, no tickets) and
a third (resumption on: tickets). Every contender runs in its own processes pinned to CPU 1,
and gets the same warm-up before its measured window:

- ``wrk`` keep-alive and ``Connection: close`` (HTTP and HTTPS): the physical ceiling.
- a naive aiohttp checker (keep-alive and new connection per check): what a Python user writes.
- Prometheus ``blackbox_exporter`` (Debian package) probing nginx, driven by wrk at its
  ``/probe`` endpoint from CPU 0 (beside nginx, not beside the exporter): its maximum probe
  rate (a new connection per probe).
- ``xuptime serve --workers 1`` end to end: monitors bulk-loaded into DuckDB, scheduled by the
  wheel at a 1 s interval, checked, state machine applied, results ingested; checks per second
  are counted from DuckDB rows in the measurement window after a graceful stop, never from
  in-memory counters. More monitors than the engine can check per second saturate it, so the
  count is its capacity. New connections are measured closed with xuptime's RST and with an
  ordinary FIN (``XUPTIME_CLOSE=fin``), as wrk closes. HTTPS: a new connection per check with
  a full handshake each time on the port without resumption (as wrk): with the default
  ``tlsResume`` (the chain verified once, then recognised), with it off (every chain
  verified), and unverified (as wrk); then resumed (the port with tickets); then kept alive.
  Redirects: monitors of ``/moved``, a 302 to ``/`` (kept alive to the first, a new
  connection to the second, as the general checker follows them), beside new connections.
  A separate steady run at 20k monitors/s
  measures lateness, and a run with 100k monitors at 60 s measures memory once every monitor
  has been checked twice (steady state).

Only successful checks count in a checks/s figure (wrk: 2xx answers; the naive checker: 200s;
xuptime: rows with ``ok``), every run prints its ok share, and a run below 99.9% fails the
bench: its figure would flatter.

Needs nginx, wrk and prometheus-blackbox-exporter; installs them with apt-get when missing.
Usage: ``python -m bench.engine [--quick]``. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_CPU = "0"
CONTENDER_CPU = "1"


def log(msg: str) -> None:
    print(f"[bench.engine {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def ensure_tools() -> None:
    needed = {"nginx": "nginx-light", "wrk": "wrk", "prometheus-blackbox-exporter": "prometheus-blackbox-exporter"}
    missing = [pkg for tool, pkg in needed.items()
               if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if not missing:
        return
    log(f"installing {', '.join(missing)} from Debian's packages")
    install_debian_packages(missing)


def install_debian_packages(packages: list[str]) -> None:
    """apt-get install ``packages`` (as root), without letting them start system services."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env, timeout=600)
    finally:
        if created:
            policy.unlink()


def pinned(cpu: str, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *args]


def version_of(args: list[str]) -> str:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return text[0] if text else "unknown"


# the target --------------------------------------------------------------------------------

class Nginx:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "nginx"
        self.dir.mkdir()
        self.http_ports = [free_port() for _ in range(4)]
        self.https_port = free_port()
        self.resume_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import trustme

        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        leaf.private_key_and_cert_chain_pem.write_to_path(str(self.dir / "server.pem"))
        ca.cert_pem.write_to_path(str(self.dir / "ca.pem"))
        self._write_conf(200)
        d = self.dir
        self.proc = subprocess.Popen(["nginx", "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in [*self.http_ports, self.https_port, self.resume_port]:
            wait_port(port)

    def set_status(self, status: int) -> None:
        """Answer every request with ``status`` from now on (a configuration reload)."""
        self._write_conf(status)
        subprocess.run(["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-s", "reload"],
                       check=True, stderr=subprocess.DEVNULL)

    def _write_conf(self, status: int) -> None:
        body = "ok" if status == 200 else f"status {status}"
        listens = "\n".join(f"listen 127.0.0.1:{p} backlog=4096;" for p in self.http_ports)
        d = self.dir
        conf = f"""
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 19000; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    # /flap answers 200 in even seconds and 500 in odd ones: monitors that change state (bench.web)
    map $msec $flap {{ "~[13579][.]" 1; default 0; }}
    server {{
        {listens}
        location /flap {{ if ($flap) {{ return 500 "flap\\n"; }} return 200 "ok\\n"; }}
        # /moved sends to / (a redirect to follow: two requests a check)
        location /moved {{ absolute_redirect off; return 302 /; }}
        location / {{ return {status} "{body}\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{self.https_port} ssl backlog=4096;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server.pem;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / {{ return {status} "{body}\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{self.resume_port} ssl backlog=4096;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server.pem;
        ssl_session_tickets on;
        ssl_session_timeout 1h;
        location / {{ return {status} "{body}\\n"; }}
    }}
}}
"""
        (d / "nginx.conf").write_text(conf)

    def url(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.http_ports[i % len(self.http_ports)]}/"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/"

    @property
    def resume_url(self) -> str:
        """HTTPS with session resumption (tickets)."""
        return f"https://127.0.0.1:{self.resume_port}/"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# contenders ----------------------------------------------------------------------------------

WARMUP = 4.0  # s every contender runs before its measured window


def wrk(url: str, seconds: int, connections: int = 64, close: bool = False, cpu: str = CONTENDER_CPU,
        warmup: float = WARMUP) -> tuple[float, float]:
    """(successful requests per second, ok share) after ``warmup`` seconds of the same load."""
    args = ["wrk", "-t1", f"-c{connections}", "--latency"]
    if close:
        args += ["-H", "Connection: close"]
    if warmup:
        subprocess.run(pinned(cpu, [*args, f"-d{warmup:g}s", url]), capture_output=True, check=True)
    out = subprocess.run(pinned(cpu, [*args, f"-d{seconds}s", url]), capture_output=True, text=True,
                         check=True).stdout
    total = rps = None
    bad = 0
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(parts[1])
        elif "requests in" in line:
            total = int(parts[0])
        elif "Non-2xx" in line:
            bad += int(parts[-1])
        elif line.strip().startswith("Socket errors:"):
            bad += sum(int(p.rstrip(",")) for p in parts[3::2])
    if rps is None or not total:
        raise RuntimeError(f"unexpected wrk output: {out}")
    ok_share = max(0, total - bad) / total
    return rps * ok_share, ok_share


NAIVE = """
import asyncio, sys, time, aiohttp
url, keepalive, seconds, concurrency = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3]), int(sys.argv[4])
warmup = float(sys.argv[5])
async def main():
    done = failed = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=not keepalive)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        begin = time.monotonic() + warmup
        stop = begin + seconds
        async def checker():
            nonlocal done, failed
            while time.monotonic() < stop:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                if time.monotonic() >= begin:
                    done += ok
                    failed += not ok
        await asyncio.gather(*(checker() for _ in range(concurrency)))
        print(done / seconds, done / max(1, done + failed))
asyncio.run(main())
"""


def aiohttp_naive(url: str, seconds: int, keepalive: bool, concurrency: int = 64) -> tuple[float, float]:
    """(200s per second, ok share) of the naive checker after the common warm-up."""
    out = subprocess.run(pinned(CONTENDER_CPU, [sys.executable, "-c", NAIVE, url, "1" if keepalive else "0",
                                                str(seconds), str(concurrency), str(WARMUP)]),
                         capture_output=True, text=True, check=True).stdout
    rate, share = out.split()
    return float(rate), float(share)


def blackbox(nginx: Nginx, workdir: Path, seconds: int) -> tuple[float, float]:
    port = free_port()
    config = workdir / "blackbox.yml"
    config.write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
                      "    http:\n      preferred_ip_protocol: ip4\n")
    proc = subprocess.Popen(pinned(CONTENDER_CPU, ["prometheus-blackbox-exporter", f"--config.file={config}",
                                                   f"--web.listen-address=127.0.0.1:{port}"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        target = nginx.url().rstrip("/")
        probe = f"http://127.0.0.1:{port}/probe?target={target}/&module=http_2xx"
        check = subprocess.run(["curl", "-s", probe], capture_output=True, text=True) if shutil.which("curl") else None
        if check is not None and "probe_success 1" not in check.stdout:
            raise RuntimeError(f"blackbox_exporter probe failed: {check.stdout[-500:]}")
        # (a failed probe is still a 200 from the exporter: its ok share is checked apart)
        rate, share = wrk(probe, seconds, connections=32, cpu=TARGET_CPU)
        return rate, share
    finally:
        proc.terminate()
        proc.wait(10)


class Xuptime:
    """``xuptime serve`` on a bulk-loaded data dir, pinned to the contender CPU."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.data_dir = workdir / name
        self.proc: subprocess.Popen[bytes] | None = None

    def load(self, urls: list[str], count: int, interval: int, keep_alive: bool, timeout: float = 1.0,
             verify: bool = True, distinct: bool = False, fields: dict[str, Any] | None = None) -> None:
        """``distinct``: each monitor's URL its own (``?m=<i>`` added), as a user's monitors are;
        else the ``urls`` in turn."""
        from core.storage.duckdb import DuckDBStore

        store = DuckDBStore(self.data_dir)
        url_list = "[" + ", ".join(f"'{u}'" for u in urls) + "]"
        url = f"{url_list}[(i % {len(urls)}) + 1]" + (" || '?m=' || i" if distinct else "")
        given = {"keepAlive": keep_alive, "verifyTls": verify, **(fields or {})}
        more = "".join(f", '{k}', {json.dumps(v) if not isinstance(v, str) else repr(v)}" for k, v in given.items())
        store.con.execute(f"""
            INSERT INTO monitors (account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,
                                  paused, status, tags)
            SELECT 1, 'bench-' || i, 'http',
                   json_object('type', 'http', 'url', {url}{more}),
                   {interval}, {timeout}, 0, 1, false, 'pending', []
            FROM range({count}) t(i)""")
        store.close()

    def start(self, workers: int = 1, env: dict[str, str] | None = None, extra: Sequence[str] = ()) -> None:
        """Start serving on a free port (``self.port``), with ``extra`` arguments to ``serve``."""
        self.port = free_port()
        args = [sys.executable, "-m", "core.cli", "serve", "--data-dir", str(self.data_dir),
                "--workers", str(workers), "--log-level", "WARNING", "--port", str(self.port), *extra]
        self.log = open(self.data_dir / "serve.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(pinned(CONTENDER_CPU, args), stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, cwd=ROOT)

    def stats(self) -> dict[str, Any]:
        from core.cli import control_request

        return control_request(self.data_dir, "stats", {"histogram": True})

    def wait_loaded(self, count: int, timeout: float = 120) -> None:
        from core.cli import ServerNotRunning

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"xuptime exited: {(self.data_dir / 'serve.log').read_text()[-2000:]}")
            with contextlib.suppress(ServerNotRunning, OSError, ValueError):
                s = self.stats()
                if all(w["ready"] for w in s["workers"]) and sum(w["monitors"] for w in s["workers"]) >= count:
                    return
            time.sleep(0.5)
        raise RuntimeError("monitors did not load in time")

    def window(self, seconds: float, rss_every: float | None = None) -> dict[str, Any]:
        """Measure ``seconds`` of the running server: the window's bounds (µs), stats at both
        ends, CPU seconds of the main process and of the workers over it, lateness p50/p99 from
        the workers' histograms, RSS of the main process and of each worker at its end; with
        ``rss_every``, also the total RSS (main + workers) sampled that often through the
        window (``rss_samples``: it moves by tens of MB within seconds at a million monitors)."""
        assert self.proc is not None
        s0 = self.stats()
        workers = [w["pid"] for w in s0["workers"]]
        cpu0 = (cpu_seconds([self.proc.pid]), cpu_seconds(workers))
        t0 = time.time_ns() // 1000
        samples: list[int] = []
        end = time.monotonic() + seconds
        while rss_every is not None and time.monotonic() + rss_every < end:
            samples.append(sum(_main_rss(pid) for pid in [self.proc.pid, *workers]))
            time.sleep(rss_every)
        time.sleep(max(0.0, end - time.monotonic()))
        t1 = time.time_ns() // 1000
        cpu1 = (cpu_seconds([self.proc.pid]), cpu_seconds(workers))
        s1 = self.stats()
        hist = np.array(s1["latenessHistogram"]) - np.array(s0["latenessHistogram"])
        cumulative, total = np.cumsum(hist), int(hist.sum())

        def pct(q: float) -> float:
            return float(np.searchsorted(cumulative, q * total)) if total else 0.0

        return {"t0": t0, "t1": t1, "s0": s0, "s1": s1, "main_cpu_s": cpu1[0] - cpu0[0],
                "workers_cpu_s": cpu1[1] - cpu0[1], "lateness_p50_ms": pct(0.5), "lateness_p99_ms": pct(0.99),
                "main_rss": _main_rss(self.proc.pid), "workers_rss": [_main_rss(pid) for pid in workers],
                "rss_samples": samples}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def rows_between(self, t0_us: int, t1_us: int) -> tuple[int, int]:
        import duckdb

        con = duckdb.connect(str(self.data_dir / "xuptime.duckdb"), read_only=True)
        try:
            row = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE ok) FROM checks"
                " WHERE ts >= make_timestamp(?) AND ts < make_timestamp(?)", [t0_us, t1_us]).fetchone()
        finally:
            con.close()
        assert row is not None
        return int(row[0]), int(row[1])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes, from /proc (clock ticks)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _main_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_engine(workdir: Path, name: str, urls: list[str], monitors: int, seconds: int, keep_alive: bool,
               warmup: float = WARMUP, interval: int = 1, env: dict[str, str] | None = None,
               fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load, start, warm up, measure a window, stop gracefully, count rows in DuckDB."""
    x = Xuptime(workdir, name)
    x.load(urls, monitors, interval, keep_alive, fields=fields)
    x.start(env=env)
    try:
        x.wait_loaded(monitors)
        time.sleep(warmup)
        win = x.window(seconds)
    finally:
        x.stop()
    t0, t1, s0, s1 = win["t0"], win["t1"], win["s0"], win["s1"]
    rows, ok = x.rows_between(t0, t1)
    shutil.rmtree(x.data_dir, ignore_errors=True)
    return {"cps": ok / ((t1 - t0) / 1e6), "rows": rows, "ok_share": ok / rows if rows else 0.0,
            "lateness_p50_ms": win["lateness_p50_ms"], "lateness_p99_ms": win["lateness_p99_ms"],
            "skipped_overlap": s1["skippedOverlap"] - s0["skippedOverlap"], "dropped": s1["dropped"],
            "workers_rss_mb": s1["rssBytes"] / 2**20, "main_rss_mb": win["main_rss"] / 2**20, "monitors": monitors,
            "main_cpu_share": win["main_cpu_s"] / ((t1 - t0) / 1e6),
            "workers_cpu_share": win["workers_cpu_s"] / ((t1 - t0) / 1e6),
            "inflight_limit": sum(w.get("inflightLimit", 0) for w in s1["workers"]),
            "tls_handshakes": s1.get("tlsHandshakes", 0) - s0.get("tlsHandshakes", 0),
            "tls_resumed": s1.get("tlsResumed", 0) - s0.get("tlsResumed", 0),
            "handed_over": s1.get("handedOver", 0)}


def memory_run(workdir: Path, nginx: Nginx, monitors: int, rounds: int = 2) -> dict[str, Any]:
    """RSS once every monitor has been checked ``rounds`` times (all of them at 60 s: two
    minutes and more), not while the first round is still under way."""
    x = Xuptime(workdir, "memory")
    x.load([nginx.url()], monitors, 60, False)
    x.start()
    try:
        x.wait_loaded(monitors, timeout=300)
        deadline = time.monotonic() + 60 * (rounds + 1) + 60
        while (s := x.stats())["checks"] < rounds * monitors:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {s['checks']:,} checks of {monitors:,} monitors after {rounds + 1} minutes")
            time.sleep(2)
        assert x.proc is not None
        main_rss = _main_rss(x.proc.pid)
    finally:
        x.stop()
    shutil.rmtree(x.data_dir, ignore_errors=True)
    return {"monitors": monitors, "workers_rss_mb": s["rssBytes"] / 2**20, "main_rss_mb": main_rss / 2**20,
            "checks": s["checks"], "rounds": rounds}


@contextlib.contextmanager
def target(workdir: Path) -> Iterator[Nginx]:
    nginx = Nginx(workdir)
    nginx.start()
    try:
        yield nginx
    finally:
        nginx.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer monitors")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench.engine needs 2 CPUs (target on one, contender on the other)")
    ensure_tools()
    seconds = 4 if args.quick else 10
    sizes = {"keepalive": 150_000 if args.quick else 200_000, "newconn": 50_000 if args.quick else 60_000,
             "tls": 3_000 if args.quick else 5_000, "tls_resume": 10_000 if args.quick else 20_000,
             "tls_keepalive": 60_000 if args.quick else 100_000, "redirect": 30_000 if args.quick else 40_000,
             "steady": 20_000, "memory": 100_000}
    out: dict[str, Any] = {"bench": "engine", "quick": args.quick, "seconds": seconds}
    shares: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-") as tmp, target(Path(tmp)) as nginx:
        workdir = Path(tmp)
        urls = [nginx.url()]  # the one port every contender uses
        log("wrk (the ceiling)")
        out["wrk_keepalive_rps"], shares["wrk_keepalive"] = wrk(nginx.url(), seconds)
        out["wrk_close_rps"], shares["wrk_close"] = wrk(nginx.url(), seconds, close=True)
        out["wrk_https_close_rps"], shares["wrk_https_close"] = wrk(nginx.https_url, seconds, close=True)
        out["wrk_https_keepalive_rps"], shares["wrk_https_keepalive"] = wrk(nginx.https_url, seconds)
        log("naive aiohttp checker")
        out["aiohttp_naive_keepalive_cps"], shares["aiohttp_keepalive"] = aiohttp_naive(nginx.url(), seconds, True)
        out["aiohttp_naive_cps"], shares["aiohttp_newconn"] = aiohttp_naive(nginx.url(), seconds, False)
        log("blackbox_exporter")
        out["blackbox_cps"], shares["blackbox"] = blackbox(nginx, workdir, seconds)
        log(f"xuptime keep-alive, {sizes['keepalive']} monitors at 1 s")
        ka = run_engine(workdir, "ka", urls, sizes["keepalive"], seconds, keep_alive=True)
        log(f"xuptime keep-alive with a keyword test, {sizes['keepalive']} monitors at 1 s")
        kw = run_engine(workdir, "kw", urls, sizes["keepalive"], seconds, keep_alive=True, fields={"keyword": "ok"})
        log(f"xuptime new connection per check (RST close), {sizes['newconn']} monitors at 1 s")
        nc = run_engine(workdir, "nc", urls, sizes["newconn"], seconds, keep_alive=False)
        log(f"xuptime new connection per check (FIN close), {sizes['newconn']} monitors at 1 s")
        fin = run_engine(workdir, "fin", urls, sizes["newconn"], seconds, keep_alive=False,
                         env={"XUPTIME_CLOSE": "fin"})
        log(f"xuptime redirect followed (keep-alive, then a new connection), {sizes['redirect']} monitors at 1 s")
        moved = run_engine(workdir, "redirect", [nginx.url() + "moved"], sizes["redirect"], seconds, keep_alive=True)
        log(f"xuptime HTTPS new connection per check (no resumption), {sizes['tls']} monitors at 1 s")
        ca = str(nginx.dir / "ca.pem")
        tls = run_engine(workdir, "tls", [nginx.https_url], sizes["tls"], seconds, keep_alive=False,
                         env={"SSL_CERT_FILE": ca})
        log(f"xuptime HTTPS new connection per check, verifying every chain, {sizes['tls']} monitors at 1 s")
        every = run_engine(workdir, "tls_every", [nginx.https_url], sizes["tls"], seconds, keep_alive=False,
                           env={"SSL_CERT_FILE": ca}, fields={"tlsResume": False})
        log(f"xuptime HTTPS new connection per check, unverified (as wrk), {sizes['tls']} monitors at 1 s")
        unverified = run_engine(workdir, "tls_noverify", [nginx.https_url], sizes["tls"], seconds, keep_alive=False,
                                fields={"tlsResume": False, "verifyTls": False})
        log(f"xuptime HTTPS new connection per check with resumption, {sizes['tls_resume']} monitors at 1 s")
        resumed = run_engine(workdir, "tls_resume", [nginx.resume_url], sizes["tls_resume"], seconds, keep_alive=False,
                             env={"SSL_CERT_FILE": ca})
        log(f"xuptime HTTPS keep-alive, {sizes['tls_keepalive']} monitors at 1 s")
        tls_ka = run_engine(workdir, "tls_ka", [nginx.https_url], sizes["tls_keepalive"], seconds, keep_alive=True,
                            env={"SSL_CERT_FILE": ca})
        log(f"xuptime steady load, {sizes['steady']} monitors at 1 s (keep-alive)")
        steady = run_engine(workdir, "steady", urls, sizes["steady"], seconds, keep_alive=True)
        log(f"xuptime memory, {sizes['memory']} monitors at 60 s, after two rounds")
        memory = memory_run(workdir, nginx, sizes["memory"])
    for name, run in (("xuptime_keepalive", ka), ("xuptime_keyword", kw), ("xuptime_newconn", nc),
                      ("xuptime_newconn_fin", fin), ("xuptime_redirect", moved),
                      ("xuptime_https", tls), ("xuptime_https_every", every), ("xuptime_https_unverified", unverified),
                      ("xuptime_https_resumed", resumed), ("xuptime_https_keepalive", tls_ka),
                      ("xuptime_steady", steady)):
        shares[name] = run["ok_share"]

    out.update({
        "engine_keepalive_cps": round(ka["cps"]),
        "engine_keyword_cps": round(kw["cps"]),
        "keyword_vs_plain": round(kw["cps"] / ka["cps"], 3),
        "engine_newconn_cps": round(nc["cps"]),
        "engine_newconn_fin_cps": round(fin["cps"]),
        "engine_redirect_cps": round(moved["cps"]),
        "redirect_vs_newconn": round(moved["cps"] / nc["cps"], 3),
        "engine_https_newconn_cps": round(tls["cps"]),
        "engine_https_every_cps": round(every["cps"]),
        "engine_https_unverified_cps": round(unverified["cps"]),
        "engine_https_resumed_cps": round(resumed["cps"]),
        "engine_https_keepalive_cps": round(tls_ka["cps"]),
        "https_resumed_share": round(resumed["tls_resumed"] / max(1, resumed["tls_handshakes"]), 4),
        "steady_cps": round(steady["cps"]),
        "lateness_p50_ms": steady["lateness_p50_ms"],
        "lateness_p99_ms": steady["lateness_p99_ms"],
        "engine_rss_mb": round(memory["workers_rss_mb"], 1),
        "engine_main_rss_mb": round(memory["main_rss_mb"], 1),
        "keepalive_vs_wrk": round(ka["cps"] / out["wrk_keepalive_rps"], 3),
        "newconn_vs_wrk_close": round(nc["cps"] / out["wrk_close_rps"], 3),
        "newconn_fin_vs_wrk_close": round(fin["cps"] / out["wrk_close_rps"], 3),
        "https_newconn_vs_wrk": round(tls["cps"] / out["wrk_https_close_rps"], 3),
        "https_every_vs_wrk": round(every["cps"] / out["wrk_https_close_rps"], 3),
        "https_unverified_vs_wrk": round(unverified["cps"] / out["wrk_https_close_rps"], 3),
        "https_resumed_vs_full": round(resumed["cps"] / tls["cps"], 2),
        "https_keepalive_vs_wrk": round(tls_ka["cps"] / out["wrk_https_keepalive_rps"], 3),
        "newconn_vs_aiohttp_naive": round(nc["cps"] / out["aiohttp_naive_cps"], 2),
        "newconn_vs_blackbox": round(nc["cps"] / out["blackbox_cps"], 2),
        "ok_shares": {k: round(v, 5) for k, v in shares.items()},
        "runs": {"keepalive": ka, "keyword": kw, "newconn": nc, "newconn_fin": fin, "redirect": moved, "https": tls,
                 "https_every": every, "https_unverified": unverified, "https_resumed": resumed,
                 "https_keepalive": tls_ka, "steady": steady,
                 "memory": memory},
    })
    for key in ("wrk_keepalive_rps", "wrk_close_rps", "wrk_https_close_rps", "wrk_https_keepalive_rps",
                "aiohttp_naive_keepalive_cps",
                "aiohttp_naive_cps", "blackbox_cps"):
        out[key] = round(out[key])
    out["versions"] = {
        "python": platform.python_version(), "cpu": _cpu_model(), "cpus": os.cpu_count(),
        "nginx": version_of(["nginx", "-v"]), "wrk": version_of(["wrk", "-v"]),
        "blackbox_exporter": version_of(["prometheus-blackbox-exporter", "--version"]),
        "aiohttp": _dist_version("aiohttp"), "uvloop": _dist_version("uvloop"),
        "httptools": _dist_version("httptools"), "duckdb": _dist_version("duckdb"),
    }
    print_table(out)
    print(json.dumps(out))
    low = {k: v for k, v in shares.items() if v < 0.999}
    if low:
        raise SystemExit(f"bench.engine: ok share below 99.9% in {low}: those figures are not valid")


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def print_table(o: dict[str, Any]) -> None:
    r = o["runs"]
    rows = [
        ("wrk keep-alive (ceiling)", f"{o['wrk_keepalive_rps']:,} req/s", ""),
        ("wrk Connection: close", f"{o['wrk_close_rps']:,} req/s", ""),
        ("wrk HTTPS Connection: close", f"{o['wrk_https_close_rps']:,} req/s", ""),
        ("aiohttp naive, keep-alive", f"{o['aiohttp_naive_keepalive_cps']:,} checks/s", ""),
        ("aiohttp naive, new connection", f"{o['aiohttp_naive_cps']:,} checks/s", ""),
        ("blackbox_exporter (new conn)", f"{o['blackbox_cps']:,} probes/s", ""),
        ("xuptime keep-alive", f"{o['engine_keepalive_cps']:,} checks/s",
         f"{o['keepalive_vs_wrk']:.2f} x wrk keep-alive ({r['keepalive']['monitors']:,} monitors)"),
        ("xuptime keep-alive + keyword", f"{o['engine_keyword_cps']:,} checks/s",
         f"{o['keyword_vs_plain']:.2f} x the same without a keyword"),
        ("xuptime new connection (RST)", f"{o['engine_newconn_cps']:,} checks/s",
         f"{o['newconn_vs_wrk_close']:.2f} x wrk close, {o['newconn_vs_aiohttp_naive']:.1f} x aiohttp, "
         f"{o['newconn_vs_blackbox']:.1f} x blackbox"),
        ("xuptime new connection (FIN)", f"{o['engine_newconn_fin_cps']:,} checks/s",
         f"{o['newconn_fin_vs_wrk_close']:.2f} x wrk close (which closes with a FIN too)"),
        ("xuptime redirect followed", f"{o['engine_redirect_cps']:,} checks/s",
         f"{o['redirect_vs_newconn']:.2f} x new connection (RST); two requests a check, the second on a new "
         f"connection; {r['redirect']['handed_over']:,} monitors handed over"),
        ("wrk HTTPS keep-alive", f"{o['wrk_https_keepalive_rps']:,} req/s", ""),
        ("xuptime HTTPS new connection", f"{o['engine_https_newconn_cps']:,} checks/s",
         f"{o['https_newconn_vs_wrk']:.2f} x wrk HTTPS close (full handshakes, the chain verified once); "
         f"{r['https']['tls_resumed']:,} resumed"),
        ("xuptime HTTPS verifying each", f"{o['engine_https_every_cps']:,} checks/s",
         f"{o['https_every_vs_wrk']:.2f} x wrk HTTPS close (tlsResume false: every chain verified)"),
        ("xuptime HTTPS unverified", f"{o['engine_https_unverified_cps']:,} checks/s",
         f"{o['https_unverified_vs_wrk']:.2f} x wrk HTTPS close (full handshakes, no verification, as wrk)"),
        ("xuptime HTTPS resumed", f"{o['engine_https_resumed_cps']:,} checks/s",
         f"{o['https_resumed_vs_full']:.2f} x full handshakes; {o['https_resumed_share']:.1%} resumed"),
        ("xuptime HTTPS keep-alive", f"{o['engine_https_keepalive_cps']:,} checks/s",
         f"{o['https_keepalive_vs_wrk']:.2f} x wrk HTTPS keep-alive ({r['https_keepalive']['monitors']:,} monitors)"),
        ("xuptime steady 20k monitors/s", f"{o['steady_cps']:,} checks/s",
         f"lateness p50 {o['lateness_p50_ms']:.0f} ms, p99 {o['lateness_p99_ms']:.0f} ms"),
        ("xuptime 100k monitors at 60 s", f"{o['engine_rss_mb']:.0f} MB RSS (workers)",
         f"main process {o['engine_main_rss_mb']:.0f} MB; after {r['memory']['checks']:,} checks (2 rounds)"),
    ]
    print(f"{'contender':<32} {'rate (ok only)':>22}  notes")
    for name, rate, note in rows:
        print(f"{name:<32} {rate:>22}  {note}")
    print("ok shares: " + ", ".join(f"{k} {v:.2%}" for k, v in o["ok_shares"].items()))


if __name__ == "__main__":
    main()
