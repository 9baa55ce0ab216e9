"""Server agents end to end: a real ``xuptime agent`` process reporting to a real ``xuptime
serve`` on loopback. Its metrics are stored and served; a threshold breached ``forReports``
times and a silence are down with their reasons and a notification at a local webhook sink;
the server stopped and started again while the agent runs gets the backlog, nothing twice;
the file served at ``/agent/xuptime-agent.py`` runs on its own (standard library only)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_serve import Serve, cli, sql, wait_for
from tests.servers import QuietHandler, ThreadedHttp

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


class _Sink(QuietHandler):
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.lock:
            self.received.append(json.loads(body))
        self.reply(200, b"ok")


@pytest.fixture
def sink() -> Iterator[ThreadedHttp]:
    _Sink.received = []
    server = ThreadedHttp(_Sink)
    yield server
    server.close()


def api(base: str, key: str, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(f"{base}{path}", method=method, headers={
        "X-API-Key": key, "Content-Type": "application/json"},
        data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def start_agent(server_url: str, token: str, *extra: str, script: Path | None = None) -> subprocess.Popen[str]:
    """The agent as a user starts it: ``xuptime agent``, or the served file with ``python3 -I``
    (isolated: nothing of this project on its path), the token in the environment."""
    command = [sys.executable, "-I", str(script)] if script is not None else [sys.executable, "-m", "core.cli",
                                                                                "agent"]
    return subprocess.Popen([*command, "--server", server_url, *extra],
                            env={**os.environ, "XUPTIME_AGENT_TOKEN": token}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.communicate(timeout=10)[1]


def test_an_agent_reports_breaches_falls_silent_and_survives_a_server_restart(tmp_path: Path,
                                                                             sink: ThreadedHttp) -> None:
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1)
    agent: subprocess.Popen[str] | None = None
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        base = server.url
        assert api(base, key, "/api/v1/integrations", "POST", {"name": "sink", "type": "webhook", "isDefault": True,
                                                               "config": {"url": sink.url}})[0] == 201
        status, created = api(base, key, "/api/v1/monitors", "POST", {
            "name": "db1", "type": "agent", "interval": 2, "grace": 2, "forReports": 2})
        assert status == 201, created
        mid, token = created["data"]["id"], created["data"]["agentToken"]
        agent = start_agent(base, token, "--interval", "1")

        def monitor() -> dict[str, Any]:
            return api(base, key, f"/api/v1/monitors/{mid}")[1]["data"]

        wait_for(lambda: monitor()["status"] == "up", 20, "the agent's first reports")
        raw = wait_for(lambda: (d := api(base, key, f"/api/v1/monitors/{mid}/metrics?limit=5")[1]["data"])
                       and len(d) >= 2 and d, 20, "two reports")
        newest = raw[0]
        assert 0 <= newest["cpuPercent"] <= 100 and newest["memory"]["totalBytes"] > 0
        assert newest["load"] is not None and len(newest["load"]) == 3 and newest["processes"] > 0
        assert newest["disks"] and all(d["totalBytes"] > 0 for d in newest["disks"])
        assert not any(d["mount"].startswith(("/proc", "/sys", "/dev/shm", "/run")) for d in newest["disks"])
        assert raw[0]["ts"] > raw[1]["ts"]  # newest first
        first = api(base, key, f"/api/v1/monitors/{mid}/metrics?limit=1")[1]
        cursor = first["pagination"]["nextCursor"]
        second = api(base, key, f"/api/v1/monitors/{mid}/metrics?limit=1&cursor={cursor}")[1]["data"]
        assert cursor and len(second) == 1 and second[0]["ts"] < first["data"][0]["ts"]
        buckets = api(base, key, f"/api/v1/monitors/{mid}/metrics?interval=1m")[1]["data"]
        assert sum(b["reports"] for b in buckets) >= 2  # (two minutes when the reports straddle one's end)
        assert all(b["cpuPercent"]["max"] >= b["cpuPercent"]["avg"] and b["disks"] for b in buckets)
        metrics = urllib.request.urlopen(urllib.request.Request(f"{base}/metrics", headers={"X-API-Key": key}),
                                         timeout=10).read().decode()
        assert f'xuptime_agent_cpu_percent{{hostname="{os.uname().nodename}",monitor_id="{mid}",name="db1"}}' in metrics
        assert 'xuptime_agent_disk_total_bytes{' in metrics and 'period="15m"' in metrics

        # A threshold that every report breaches: one breach is not down (forReports 2), two are.
        assert api(base, key, f"/api/v1/monitors/{mid}", "PATCH", {"thresholds": {"memoryPercent": 0.01}})[0] == 200
        wait_for(lambda: monitor()["status"] == "down", 20, "down after two breaching reports")
        history = api(base, key, f"/api/v1/monitors/{mid}/history?limit=1")[1]["data"]
        assert history[0]["error"].startswith("memory at ") and history[0]["error"].endswith("% > 0.01%")
        down = wait_for(lambda: [m for m in _Sink.received if m["event"] == "down"], 20, "a down notification")
        assert down[0]["monitor"]["id"] == mid and down[0]["reason"].startswith("memory at ")
        assert token not in json.dumps(down[0])  # (its target would be the token's URL)
        assert api(base, key, f"/api/v1/monitors/{mid}", "PATCH", {"thresholds": {}})[0] == 200
        wait_for(lambda: monitor()["status"] == "up", 20, "up again within the thresholds")

        # The server goes away for a few seconds while the agent keeps sampling.
        port = server.port
        assert server.stop() == 0
        stopped_at = time.time()
        time.sleep(4)
        server = Serve(data_dir, 1, "--port", str(port))
        wait_for(lambda: sql(data_dir, f"SELECT count(*) FROM agent_reports WHERE monitor_id = {mid} AND "
                                       f"epoch(ts) > {stopped_at + 3}")[0][0] > 0, 30, "the backlog")
        time.sleep(2)
        total, distinct = sql(data_dir, f"SELECT count(*), count(DISTINCT ts) FROM agent_reports "
                                        f"WHERE monitor_id = {mid}")[0]
        assert total == distinct  # nothing stored twice
        during = sql(data_dir, f"SELECT count(*) FROM agent_reports WHERE monitor_id = {mid} AND "
                               f"epoch(ts) BETWEEN {stopped_at + 0.5} AND {stopped_at + 3.5}")[0][0]
        assert during >= 2  # measured while the server was down, sent when it came back
        assert "cannot report" in "".join(_drain(agent))

        # Silence: interval + grace without a report is down, with a notification.
        stop(agent)
        agent = None
        wait_for(lambda: monitor()["status"] == "down", 20, "down when the agent falls silent")
        history = api(base, key, f"/api/v1/monitors/{mid}/history?limit=1")[1]["data"]
        assert history[0]["error"].startswith("no report from the agent for ")
        wait_for(lambda: any(m["event"] == "down" and m["reason"].startswith("no report from the agent")
                             for m in _Sink.received), 20, "a notification of the silence")
    finally:
        if agent is not None:
            stop(agent)
        server.stop()


def _drain(proc: subprocess.Popen[str]) -> list[str]:
    """What the agent has said on stderr so far (it keeps running)."""
    os.set_blocking(proc.stderr.fileno(), False)  # type: ignore[union-attr]
    lines = []
    while line := proc.stderr.readline():  # type: ignore[union-attr]
        lines.append(line)
    return lines


def test_the_served_agent_runs_alone_and_a_wrong_token_ends_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        with urllib.request.urlopen(f"{server.url}/agent/xuptime-agent.py", timeout=10) as answer:
            served = answer.read()
            assert answer.headers["Content-Type"].startswith("text/x-python")
        assert served == (ROOT / "core" / "agent.py").read_bytes()
        script = tmp_path / "elsewhere" / "xuptime-agent.py"
        script.parent.mkdir()
        script.write_bytes(served)
        status, created = api(server.url, key, "/api/v1/monitors", "POST", {"name": "web1", "type": "agent"})
        assert status == 201, created
        mid, token = created["data"]["id"], created["data"]["agentToken"]
        once = start_agent(server.url, token, "--once", script=script)
        assert once.wait(30) == 0, once.communicate()[1]
        stored = api(server.url, key, f"/api/v1/monitors/{mid}/metrics")[1]["data"]
        assert len(stored) == 1 and stored[0]["memory"]["usedBytes"] > 0

        wrong = start_agent(server.url, "no-such-token-000", "--interval", "1", script=script)
        assert wrong.wait(30) == 2
        assert "does not know this token" in wrong.communicate()[1]
        assert server.stop() == 0
        # (saved every minute and at exit: the host name is there for the next start)
        assert sql(data_dir, f"SELECT report->>'hostname' FROM agents WHERE monitor_id = {mid}") == [
            [os.uname().nodename]]
    finally:
        server.stop()


def test_reports_are_refused_clearly(tmp_path: Path) -> None:
    """Bad reports change nothing and say why; a flood from one token is a 429."""
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        token = api(server.url, key, "/api/v1/monitors", "POST", {"name": "x", "type": "agent"})[1]["data"][
            "agentToken"]

        def post(body: bytes, content_type: str = "application/json", to: str = token) -> tuple[int, Any]:
            request = urllib.request.Request(f"{server.url}/api/agent/{to}/report", data=body, method="POST",
                                             headers={"Content-Type": content_type})
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())

        good = {"cpuPercent": 5, "memory": {"usedBytes": 1, "totalBytes": 2}, "ts": time.time()}
        cases = [
            (json.dumps({**good, "cpuPercent": 101}).encode(), 400, "cpuPercent"),
            (json.dumps({"cpuPercent": 5}).encode(), 400, "memory"),
            (json.dumps({**good, "disks": [{"mount": "/"}]}).encode(), 400, "disks[0].usedBytes"),
            (json.dumps([good, {**good, "memory": {"usedBytes": -1, "totalBytes": 2}}]).encode(), 400,
             "[1].memory.usedBytes"),
            (json.dumps({**good, "ts": time.time() + 3600}).encode(), 400, "ts"),
            (json.dumps({**good, "shell": "rm -rf /"}).encode(), 400, "shell"),
            (b"{not json", 400, "body"),
        ]
        for body, code, field in cases:
            status, answer = post(body)
            assert status == code and answer["statusCode"] == code, (body, answer)
            assert answer["data"]["errors"][0]["field"] == field, answer
        assert post(json.dumps(good).encode(), "text/plain")[0] == 415
        assert post(b" " * (65 * 1024))[0] == 413
        status, answer = post(json.dumps(good).encode(), to="not-a-token-at-all")
        assert status == 404 and answer["data"]["reason"] == "Unknown agent token"
        assert sql(data_dir, "SELECT count(*) FROM agent_reports")[0][0] == 0  # nothing of that was stored

        for query, field in (("?interval=2m", "interval"), ("?limit=0", "limit"), ("?from=yesterday", "from")):
            status, answer = api(server.url, key, f"/api/v1/monitors/1/metrics{query}")
            assert status == 400 and answer["data"]["errors"][0]["field"] == field, answer
        http_id = api(server.url, key, "/api/v1/monitors", "POST", {"name": "site", "type": "http",
                                                                   "url": "http://127.0.0.1:9/"})[1]["data"]["id"]
        assert api(server.url, key, f"/api/v1/monitors/{http_id}/metrics")[0] == 404  # (no agent: no metrics)
        assert post(json.dumps(good).encode()) == (202, {"data": {"stored": 1, "duplicates": 0, "interval": 60}})
        assert post(json.dumps(good).encode()) == (202, {"data": {"stored": 0, "duplicates": 1, "interval": 60}})
        statuses = [post(json.dumps({**good, "ts": time.time()}).encode())[0] for _ in range(40)]
        assert 429 in statuses and statuses[0] == 202
    finally:
        server.stop()


def _exchange(sock: socket.socket, request: bytes, answers: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``request`` (one or more requests) and read ``answers`` HTTP answers off ``sock``:
    (status, headers, body) each, or fewer when the server closes."""
    sock.sendall(request)
    out: list[tuple[int, dict[str, str], bytes]] = []
    buf = b""
    while len(out) < answers:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        status = int(lines[0].split()[1])
        if status == 100:
            continue
        length = int(headers.get("content-length", 0))
        while len(buf) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            buf += chunk
        out.append((status, headers, buf[:length]))
        buf = buf[length:]
    return out


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_report_connections_are_kept_and_anything_else_goes_to_the_full_server(tmp_path: Path) -> None:
    """Agents' reports on one kept connection (as the agent sends them), pipelined, HTTP/1.0,
    chunked and with ``Expect: 100-continue``; the same connection then asking for a page is
    answered by the full server, and reports after that still are; a body that does not
    arrive is a 408, an unknown token a 404, and both close the connection."""
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1, "--body-timeout", "1")
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        token = api(server.url, key, "/api/v1/monitors", "POST", {"name": "x", "type": "agent"})[1]["data"][
            "agentToken"]
        clock = iter(range(10**6))

        def report(to: str = token, version: str = "HTTP/1.1", extra: str = "") -> bytes:
            body = json.dumps({"cpuPercent": 5, "memory": {"usedBytes": 1, "totalBytes": 2},
                               "ts": time.time() - 600 + next(clock)}).encode()
            return (f"POST /api/agent/{to}/report {version}\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body

        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for _ in range(2):
                [(status, headers, body)] = _exchange(sock, report())
                assert status == 202 and json.loads(body)["data"]["stored"] == 1, body
                assert headers["content-type"] == "application/json" and "date" in headers
            pipelined = _exchange(sock, report() + report(), answers=2)
            assert [(s, json.loads(b)["data"]["stored"]) for s, _, b in pipelined] == [(202, 1), (202, 1)]
            [(status, _, body)] = _exchange(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 200, body  # (a page: the full server took the connection over)
            [(status, _, body)] = _exchange(sock, report())
            assert status == 202 and json.loads(body)["data"]["stored"] == 1
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            [(status, headers, _)] = _exchange(sock, report(version="HTTP/1.0"))
            assert status == 202 and headers.get("connection") == "close" and _closed(sock)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            full = report()
            head, body = full.split(b"\r\n\r\n", 1)
            head = head.replace(f"Content-Length: {len(body)}".encode(), b"Transfer-Encoding: chunked")
            chunked = head + b"\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
            [(status, _, answer)] = _exchange(sock, chunked)
            assert status == 202 and json.loads(answer)["data"]["stored"] == 1, answer
            expecting = report(extra="Expect: 100-continue\r\n")
            head, body = expecting.split(b"\r\n\r\n", 1)
            sock.sendall(head + b"\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 100")
            [(status, _, answer)] = _exchange(sock, body)
            assert status == 202 and json.loads(answer)["data"]["stored"] == 1, answer
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            [(status, _, body)] = _exchange(sock, report()[:-10])  # (the body's end never comes)
            assert status == 408 and json.loads(body)["statusCode"] == 408 and _closed(sock)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            huge = re.sub(rb"Content-Length: \d+", b"Content-Length: " + b"9" * 5000, report())
            [(status, _, body)] = _exchange(sock, huge)
            assert status == 413 and json.loads(body)["statusCode"] == 413 and _closed(sock)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            [(status, _, body)] = _exchange(sock, report(to="no-such-token"))
            assert status == 404 and json.loads(body)["data"]["reason"] == "Unknown agent token"
            assert _closed(sock)
        assert sql(data_dir, "SELECT count(*) FROM agent_reports")[0][0] == 8
    finally:
        server.stop()
