"""The dashboard under load, beside the API, in one run.

1. **The monitors page.** A data dir with 10,000 monitors: 2,000 checking a local nginx every
   second (keep-alive), 8,000 hourly. ``xuptime serve --workers 1`` on CPU 1; wrk (1 thread,
   32 connections) and nginx on CPU 0. A signed-in session asks ``GET /monitors`` (the first
   page: 25 rows with status, last check, 24 h uptime and heartbeat bars, server-rendered),
   an API key asks ``GET /api/v1/monitors?limit=25``; three rounds each, alternated, medians
   reported. wrk's latency is to the last byte of each answer. Target: the page's p99 <= 2 x
   the API list's p99.
2. **Live streams.** A data dir with 20,000 monitors checked every second (the engine at
   20k checks/s), 20 of them against nginx's ``/flap`` (200 in even seconds, 500 in odd
   ones), so status changes flow to every open page. ``GET /api/v1/account/usage`` (the
   trivial endpoint) is measured with no page open and with 200 open ``/live`` streams (held
   by one process on CPU 0 that counts the events it receives), alternated three times.
   Target: the API's p99 with 200 streams < 1.5 x without.

3. **A status page under a crowd.** A public page of 100 monitors (five sections of 20),
   the engine checking 5,000 monitors every second (1,250 with ``--quick``): ``GET
   /status/{slug}`` (32 connections), the same with ``If-None-Match`` (304s), and the trivial
   API endpoint, three rounds; the engine's checks/s measured idle and while the page is
   hammered. Targets: the page's rate >= 0.5 x the trivial endpoint's; checks/s hammered >=
   0.9 x idle.

Every wrk run must answer 2xx (or 304) only. Usage: ``python -m bench.web [--quick]``. Prints a table,
then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.api import ROOT, failures, serving, wrk
from bench.engine import TARGET_CPU, Nginx, _dist_version, ensure_tools, log, version_of

EMAIL, PASSWORD = "bench@example.com", "bench-password"


def build(data_dir: Path, urls: list[str], fast: int, slow: int, flapping: int, flap_url: str) -> None:
    """Monitors written straight into a new data dir (``fast`` at 1 s against ``urls``,
    ``slow`` hourly, ``flapping`` at 1 s against ``flap_url``), and the bench's user."""
    from core.storage.duckdb import DuckDBStore

    store = DuckDBStore(data_dir)
    store.con.execute("UPDATE accounts SET monthly_request_limit = 1000000000000 WHERE name = 'default'")
    url_list = "[" + ", ".join(f"'{u}'" for u in urls) + "]"
    for name, count, interval, target in (("fast", fast, 1, None), ("slow", slow, 3600, None),
                                          ("flap", flapping, 1, flap_url)):
        if not count:
            continue
        url = f"'{target}'" if target else f"{url_list}[(i % {len(urls)}) + 1]"
        store.con.execute(f"""
            INSERT INTO monitors (account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,
                                  paused, status, tags)
            SELECT 1, '{name}-' || i, 'http', json_object('type', 'http', 'url', {url}, 'keepAlive', true),
                   {interval}, 1.0, 0, 1, false, 'pending', ['{name}'] FROM range({count}) t(i)""")
    store.close()
    subprocess.run([sys.executable, "-m", "core.cli", "users", "create", EMAIL, "--role", "admin", "--password",
                    PASSWORD, "--data-dir", str(data_dir)], check=True, capture_output=True, cwd=ROOT)


def sign_in(base: str) -> str:
    """A session cookie (``name=value``), through the sign-in form as a browser does it."""
    jar: dict[str, str] = {}

    def cookies(response: Any) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            jar[name] = rest.split(";", 1)[0]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(base + "/login", timeout=10) as page:
        cookies(page)
        token = re.search(r'name="_csrf" value="([^"]+)"', page.read().decode())
    assert token is not None
    form = urllib.parse.urlencode({"_csrf": token.group(1), "email": EMAIL, "password": PASSWORD}).encode()
    request = urllib.request.Request(base + "/login", data=form,
                                     headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
    try:
        opener.open(request, timeout=30)
    except urllib.error.HTTPError as redirect:  # the 303 to /monitors
        assert redirect.code == 303, redirect.code
        cookies(redirect)
    return f"xuptime_session={jar['xuptime_session']}"


def hold_streams(url: str, cookie: str, count: int) -> None:
    """Hold ``count`` SSE streams open until SIGTERM; then print the events received as JSON."""
    parsed = urllib.parse.urlsplit(url)
    events = 0
    opened = 0

    async def one() -> None:
        nonlocal events, opened
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        writer.write(f"GET /live HTTP/1.1\r\nHost: {parsed.netloc}\r\nAccept: text/event-stream\r\n"
                     f"Cookie: {cookie}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n", 1)[0], head[:100]
        opened += 1
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"event: status"):
                events += 1

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        print(json.dumps({"streams": opened, "events": events}), flush=True)

    asyncio.run(main())


def rounds(runs: list[dict[str, float]]) -> dict[str, float]:
    """Medians of each figure over the rounds; the worst count of failures."""
    out = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
    out["non_2xx"] = max(r.get("non_2xx", 0) for r in runs)
    out["socket_errors"] = max(r.get("socket_errors", 0) for r in runs)
    return out


def checks_per_s(data_dir: Path, seconds: float) -> float:
    from core.cli import control_request

    before = control_request(data_dir, "stats")["checks"]
    time.sleep(seconds)
    return (control_request(data_dir, "stats")["checks"] - before) / seconds


def status_page_phase(workdir: Path, urls: list[str], seconds: int, engine_monitors: int) -> dict[str, Any]:
    """A public status page of 100 monitors under a crowd, beside the trivial API endpoint,
    with the engine checking ``engine_monitors`` every second; checks/s idle and hammered."""
    from core.cli import control_request

    data_dir = workdir / "status"
    build(data_dir, urls, engine_monitors, 0, 0, "")
    out: dict[str, Any] = {}
    with serving(data_dir, workdir, ready=lambda _: True, settle=5) as (base, key):
        page = {"slug": "bench", "title": "Bench status",
                "sections": [{"name": f"Group {g}", "monitors": list(range(1 + g * 20, 21 + g * 20))}
                             for g in range(5)]}
        request = urllib.request.Request(base + "/api/v1/status-pages", data=json.dumps(page).encode(),
                                         headers={"Authorization": f"Bearer {key}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as created:
            assert created.status == 201
        with urllib.request.urlopen(base + "/status/bench", timeout=30) as first:
            etag = first.headers["ETag"]
        idle, hammered, status, cond, trivial = [], [], [], [], []

        def counted(run: Callable[[], Any]) -> tuple[Any, float]:
            """``run()``'s result and the engine's checks/s over it."""
            before, t0 = control_request(data_dir, "stats")["checks"], time.monotonic()
            result = run()
            return result, (control_request(data_dir, "stats")["checks"] - before) / (time.monotonic() - t0)

        for _ in range(3):
            idle.append(counted(lambda: time.sleep(seconds))[1])
            log("wrk /status/bench")
            result, rate = counted(lambda: wrk(base + "/status/bench", "", seconds, cookie="none=1"))
            status.append(result)
            hammered.append(rate)
            log("wrk /status/bench with If-None-Match")
            cond.append(wrk(base + "/status/bench", "", seconds, cookie="none=1",
                            extra_headers=[f"If-None-Match: {etag}"]))
            log("wrk trivial")
            trivial.append(wrk(base + "/api/v1/account/usage", key, seconds))
        out["status_page"], out["status_page_304"], out["status_trivial"] = rounds(status), rounds(cond), rounds(
            trivial)
        out["checks_idle"], out["checks_hammered"] = statistics.median(idle), statistics.median(hammered)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="4 s runs, 5k-monitor engine load")
    parser.add_argument("--hold-streams", nargs=3, metavar=("URL", "COOKIE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold_streams:
        url, cookie, count = args.hold_streams
        hold_streams(url, cookie, int(count))
        return
    ensure_tools()
    seconds = 4 if args.quick else 10
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="xuptime-bench-web-") as tmp:
        workdir = Path(tmp)
        nginx = Nginx(workdir)
        nginx.start()
        try:
            urls = [nginx.url(i) for i in range(4)]
            data_dir = workdir / "page"
            build(data_dir, urls, 2000, 8000, 0, "")
            with serving(data_dir, workdir, ready=lambda _: True) as (base, key):
                cookie = sign_in(base)
                page, api = [], []
                for _ in range(3):
                    log("wrk /monitors (page)")
                    page.append(wrk(base + "/monitors", "", seconds, cookie=cookie))
                    log("wrk /api/v1/monitors?limit=25")
                    api.append(wrk(base + "/api/v1/monitors?limit=25", key, seconds))
                results["page"], results["api_list"] = rounds(page), rounds(api)
                results["page_checks_per_s"] = checks_per_s(data_dir, 2)

            data_dir = workdir / "live"
            engine_monitors = 5000 if args.quick else 20000
            build(data_dir, urls, engine_monitors - 20, 0, 20, nginx.url(0) + "flap")
            with serving(data_dir, workdir, ready=lambda _: True, settle=5) as (base, key):
                cookie = sign_in(base)
                quiet, busy, held = [], [], []
                for _ in range(3):
                    log("wrk trivial, no streams")
                    quiet.append(wrk(base + "/api/v1/account/usage", key, seconds))
                    holder = subprocess.Popen(["taskset", "-c", TARGET_CPU, sys.executable, "-m", "bench.web",
                                               "--hold-streams", base, cookie, "200"],
                                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
                    time.sleep(2)
                    log("wrk trivial, 200 streams")
                    busy.append(wrk(base + "/api/v1/account/usage", key, seconds))
                    holder.send_signal(signal.SIGTERM)
                    out, _ = holder.communicate(timeout=30)
                    held.append(json.loads(out))
                results["no_streams"], results["streams_200"] = rounds(quiet), rounds(busy)
                results["streams"] = held
                results["live_checks_per_s"] = checks_per_s(data_dir, 3)

            results |= status_page_phase(workdir, urls, seconds, engine_monitors // 4)
        finally:
            nginx.stop()
    page, api = results["page"], results["api_list"]
    quiet, busy = results["no_streams"], results["streams_200"]
    print(f"\nbench.web on {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"litestar {_dist_version('litestar')}, {version_of(['wrk', '--version']).split(' [')[0]}")
    print(f"{'run':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in (("GET /monitors (page, 25 rows)", page), ("GET /api/v1/monitors?limit=25", api),
                    ("trivial API, no page open", quiet), ("trivial API, 200 live streams", busy)):
        print(f"{name:34} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f}")
    ratio_page = page["p99"] / api["p99"]
    ratio_live = busy["p99"] / quiet["p99"]
    print(f"page p99 / API list p99: {ratio_page:.2f} (target <= 2.0) at {results['page_checks_per_s']:.0f} checks/s")
    print(f"API p99 with 200 streams / without: {ratio_live:.2f} (target < 1.5) at "
          f"{results['live_checks_per_s']:.0f} checks/s; streams held {[h['streams'] for h in results['streams']]}, "
          f"status events received {[h['events'] for h in results['streams']]}")
    sp, sp304, st = results["status_page"], results["status_page_304"], results["status_trivial"]
    print(f"{'GET /status/{slug} (100 monitors)':34} {sp['rps']:9.0f} {sp['p50']:8.2f} {sp['p99']:8.2f}")
    print(f"{'  the same, If-None-Match (304)':34} {sp304['rps']:9.0f} {sp304['p50']:8.2f} {sp304['p99']:8.2f}")
    print(f"{'  trivial API, same server':34} {st['rps']:9.0f} {st['p50']:8.2f} {st['p99']:8.2f}")
    ratio_status = sp["rps"] / st["rps"]
    ratio_checks = results["checks_hammered"] / results["checks_idle"]
    print(f"status page rate / trivial API rate: {ratio_status:.2f} (target >= 0.5); engine checks/s while "
          f"hammered / idle: {results['checks_hammered']:.0f} / {results['checks_idle']:.0f} = {ratio_checks:.2f} "
          f"(target >= 0.9)")
    results["ratios"] = {"page_vs_api_p99": ratio_page, "streams_vs_none_p99": ratio_live,
                         "status_vs_trivial_rps": ratio_status, "checks_hammered_vs_idle": ratio_checks}
    print(json.dumps(results))
    problems = [p for name in ("page", "api_list", "no_streams", "streams_200", "status_page", "status_trivial")
                for p in failures(name, results[name])]
    if any(h["streams"] < 200 for h in results["streams"]):
        problems.append("not every stream opened")
    if problems:
        raise SystemExit("bench.web: " + "; ".join(problems))


if __name__ == "__main__":
    main()
