"""``xuptime serve`` as a user runs it: real processes, a real DuckDB file, the CLI.

Covers results landing in DuckDB with the right outcome, a ``kill -9`` of a worker (it is
restarted with its shard), a ``kill -9`` of the main process (a restart finds monitors and
results up to the last flush), graceful shutdown (everything flushed), and the CLI against
a stopped data dir.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "core.cli", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"xuptime {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def sql(data_dir: Path, query: str) -> list[list[Any]]:
    """A read-only query as ``xuptime sql`` runs it (through the running server's socket, else
    on the file), in this process: polling with a new CLI process each time cost seconds."""
    from core.cli import _run

    return json.loads(json.dumps(_run(data_dir, "sql", {"sql": query})["rows"], default=str))  # as the CLI prints


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class _Target(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 500 if self.path.startswith("/fail") else 200
        body = b"target says hello" if status == 200 else b"broken"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def garbage_port() -> Iterator[int]:
    """A TCP server that answers every connection with bytes that are not HTTP."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    server.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    def __init__(self, data_dir: Path, workers: int = 2, *extra: str) -> None:
        self.data_dir = data_dir
        self.log = open(data_dir.parent / f"serve-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
        self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "serve", "--data-dir", str(data_dir), "--workers", str(workers),
             "--port", str(self.port), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(self._ready, 30, "the server to answer")
        except BaseException:
            self.kill_everything()  # never leave a server (and its workers) behind
            raise

    def _ready(self) -> bool:
        from core.cli import CommandError, ServerNotRunning, control_request

        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}: {self.output()}")
        try:
            status = control_request(self.data_dir, "stats", timeout=10)
        except (ServerNotRunning, CommandError, OSError, ValueError):
            return False
        return all(w["ready"] for w in status["workers"])

    def status(self) -> dict[str, Any]:
        """What ``xuptime status --json`` prints, asked in this process."""
        from core.cli import control_request

        return control_request(self.data_dir, "stats", timeout=10)

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop the server with ``sig`` and return its exit code; one that does not exit in
        ``timeout`` is killed with its workers, and the test fails."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_everything()
            raise AssertionError(f"serve did not exit within {timeout} s of signal {sig}") from None
        self.log.close()
        return code

    def kill_everything(self) -> None:
        """SIGKILL the server's whole process group (its workers too), whatever state it is in."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def add(data_dir: Path, *args: str) -> int:
    out = cli(data_dir, "monitors", "add", *args).stdout
    return int(out.split()[2].rstrip(":"))


def counts(data_dir: Path) -> dict[int, int]:
    return {int(mid): int(n) for mid, n in sql(data_dir, "SELECT monitor_id, count(*) FROM checks GROUP BY 1")}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of a killed parent is reaped by init shortly; treat zombies as dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_results_land_in_duckdb_with_the_right_outcome(data_dir: Path, target: str, garbage_port: int) -> None:
    ok = add(data_dir, "ok", "--url", f"{target}/health", "--interval", "1", "--keyword", "hello")
    server = Serve(data_dir)
    try:
        fail = add(data_dir, "fail", "--url", f"{target}/fail", "--interval", "1")  # added while running
        refused = add(data_dir, "refused", "--url", f"http://127.0.0.1:{closed_port()}/", "--interval", "1")
        tcp = add(data_dir, "tcp", "--type", "tcp", "--host", "127.0.0.1", "--port", target.rsplit(":", 1)[1],
                  "--interval", "1")
        garbage = add(data_dir, "garbage", "--url", f"http://127.0.0.1:{garbage_port}/", "--interval", "1")
        wait_for(lambda: all(counts(data_dir).get(m, 0) >= 2 for m in (ok, fail, refused, tcp, garbage)), 20,
                 "two results per monitor")
        rows = {int(r[0]): r[1:] for r in sql(
            data_dir, "SELECT monitor_id, bool_and(ok), bool_or(ok), max(status_code), max(error_code),"
                      " min(latency_us) FROM checks GROUP BY 1")}
        assert rows[ok][:3] == [True, True, 200]
        assert rows[fail][:4] == [False, False, 500, 7]  # status
        assert rows[refused][:4] == [False, False, None, 3]  # refused
        assert rows[tcp][:2] == [True, True]
        assert rows[garbage][:2] == [False, False] and rows[garbage][3] == 6  # bad_response
        assert all(w["restarts"] == 0 for w in server.status()["workers"])  # nothing crashed
        assert all(r[4] > 0 for r in rows.values())

        statuses = wait_for(lambda: (lambda s: s if s[fail] == "down" and s[ok] == "up" else None)(
            {m["id"]: m["status"] for m in json.loads(cli(data_dir, "monitors", "list", "--json").stdout)}),
            10, "statuses to settle")
        assert statuses[refused] == "down" and statuses[tcp] == "up"
        incidents = sql(data_dir, "SELECT monitor_id, resolved_at IS NULL, cause FROM incidents ORDER BY 1")
        assert [(i[0], i[1]) for i in incidents if i[0] != garbage] == [(fail, True), (refused, True)]
        assert incidents[0][2] == "status 500, expected 200-299"
        assert garbage in {i[0] for i in sql(data_dir, "SELECT monitor_id FROM incidents")}

        cli(data_dir, "monitors", "remove", str(fail))
        assert not sql(data_dir, f"SELECT 1 FROM monitors WHERE id = {fail}")
        stats = server.status()
        assert stats["dropped"] == 0 and stats["checks"] >= 8
    finally:
        assert server.stop() == 0


def test_worker_kill9_is_survived(data_dir: Path, target: str) -> None:
    ids = [add(data_dir, f"m{i}", "--url", f"{target}/m{i}", "--interval", "1") for i in range(4)]
    server = Serve(data_dir)
    try:
        wait_for(lambda: all(counts(data_dir).get(m, 0) >= 1 for m in ids), 15, "first results")
        victim = server.status()["workers"][1]
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for(lambda: server.status()["workers"][1]["restarts"] >= 1 and server.status()["workers"][1]["ready"],
                 20, "the worker to be restarted")
        assert server.proc.poll() is None
        before = counts(data_dir)
        shard = [m for m in ids if m % 2 == 1]
        wait_for(lambda: all(counts(data_dir)[m] >= before[m] + 2 for m in shard), 15,
                 "results from the restarted shard")
    finally:
        assert server.stop() == 0


def test_main_kill9_then_restart_keeps_monitors_and_results(data_dir: Path, target: str) -> None:
    """After a ``kill -9`` of the main process everything older than the flush interval is
    there as it was: monitors with their statuses and times, incidents, the outbox, results."""
    ids = [add(data_dir, f"m{i}", "--url", f"{target}/k{i}", "--interval", "1") for i in range(3)]
    server = Serve(data_dir)
    try:
        _kill9_and_restart(data_dir, target, server, ids)
    finally:
        if server.proc.poll() is None:  # a failure before the kill: leave nothing running
            server.kill_everything()


def _kill9_and_restart(data_dir: Path, target: str, server: Serve, ids: list[int]) -> None:
    key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
    request = urllib.request.Request(  # a default channel nobody answers: its outbox rows stay
        f"{server.url}/api/v1/integrations", method="POST", headers={"X-API-Key": key,
                                                                      "Content-Type": "application/json"},
        data=json.dumps({"name": "void", "type": "webhook", "isDefault": True,
                         "config": {"url": f"http://127.0.0.1:{closed_port()}/hook"}}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    # (added once the channel exists: an outage that began before it has nobody to tell)
    failing = add(data_dir, "failing", "--url", f"{target}/fail", "--interval", "1")
    workers = [w["pid"] for w in server.status()["workers"]]
    wait_for(lambda: sum(counts(data_dir).values()) >= 8, 15, "results")
    wait_for(lambda: sql(data_dir, "SELECT count(*) FROM outbox")[0][0] >= 1, 15, "the outage in the outbox")

    def state() -> tuple[Any, ...]:
        return (sql(data_dir, "SELECT id, status, status_since FROM monitors ORDER BY id"),
                sql(data_dir, "SELECT id, monitor_id, started_at, resolved_at, cause FROM incidents ORDER BY id"),
                sql(data_dir, "SELECT id, integration_id, monitor_id, incident_id, event, dedupe_key FROM outbox"
                              " ORDER BY id"))

    before = state()
    assert [row[1] for row in before[0]] == ["up", "up", "up", "down"]
    assert [(row[1], row[3]) for row in before[1]] == [(failing, None)]
    seen = sum(counts(data_dir).values())
    time.sleep(1.5)  # everything read above is older than the flush interval now
    server.proc.send_signal(signal.SIGKILL)  # only the main process
    server.proc.wait(10)
    wait_for(lambda: not any(pid_alive(p) for p in workers), 10, "orphaned workers to exit")
    server.log.close()

    listed = json.loads(cli(data_dir, "monitors", "list", "--json").stdout)  # stopped: direct, read-only
    assert sorted(m["id"] for m in listed) == [*ids, failing]
    assert sum(counts(data_dir).values()) >= seen
    assert state() == before

    again = Serve(data_dir)
    try:
        after = sum(counts(data_dir).values())
        wait_for(lambda: sum(counts(data_dir).values()) >= after + 3, 15, "results after the restart")
        assert state()[1] == before[1]  # the same open incident, not a second one
    finally:
        assert again.stop() == 0


def test_graceful_shutdown_flushes_every_result(data_dir: Path, target: str) -> None:
    for i in range(5):
        add(data_dir, f"g{i}", "--url", f"{target}/g{i}", "--interval", "1")
    server = Serve(data_dir)
    wait_for(lambda: server.status()["checks"] >= 10, 15, "checks")
    checked = server.status()["checks"]
    assert server.stop(signal.SIGINT) == 0  # Ctrl-C
    assert "stopped;" in server.output()
    assert sum(counts(data_dir).values()) >= checked


def test_cli_on_a_stopped_data_dir(data_dir: Path) -> None:
    bad = cli(data_dir, "monitors", "add", "x", "--url", "ftp://nowhere", "--interval", "0", check=False)
    assert bad.returncode == 2
    assert "url:" in bad.stderr and "interval:" in bad.stderr
    assert json.loads(cli(data_dir, "monitors", "list", "--json").stdout) == []

    mid = add(data_dir, "db", "--type", "tcp", "--host", "127.0.0.1", "--port", "5432", "--tag", "prod")
    listed = json.loads(cli(data_dir, "monitors", "list", "--json").stdout)
    assert [(m["id"], m["type"], m["port"], m["tags"], m["status"]) for m in listed] == [
        (mid, "tcp", 5432, ["prod"], "pending")]
    assert "paused" in cli(data_dir, "monitors", "pause", str(mid)).stdout
    refused = cli(data_dir, "sql", "DELETE FROM monitors", check=False)
    assert refused.returncode == 2 and "only SELECT" in refused.stderr
    assert len(sql(data_dir, "SELECT * FROM monitors")) == 1
    cli(data_dir, "monitors", "remove", str(mid))
    assert cli(data_dir, "monitors", "remove", str(mid), check=False).returncode == 2
    env_dir = subprocess.run([sys.executable, "-m", "core.cli", "monitors", "list", "--json"], capture_output=True,
                             text=True, env={**os.environ, "XUPTIME_DATA_DIR": str(data_dir)}, timeout=60)
    assert json.loads(env_dir.stdout) == []
    add(data_dir, "before", "--url", "http://127.0.0.1:9/")
    # ``--data-dir`` before the command counts too (it used to fall back to ./xuptime-data)
    before = subprocess.run([sys.executable, "-m", "core.cli", "--data-dir", str(data_dir), "monitors", "list",
                             "--json"], capture_output=True, text=True, timeout=60, cwd=data_dir.parent)
    assert [m["name"] for m in json.loads(before.stdout)] == ["before"]
    assert not (data_dir.parent / "xuptime-data").exists()


def test_an_invalid_stored_monitor_does_not_stop_the_server(data_dir: Path, target: str) -> None:
    good = add(data_dir, "good", "--url", f"{target}/fine", "--interval", "1")
    import duckdb

    con = duckdb.connect(str(data_dir / "xuptime.duckdb"))
    con.execute("""INSERT INTO monitors (account_id, name, type, spec, interval_s, timeout_s)
                   VALUES (1, 'broken by hand', 'http', '{"type": "http", "url": "ftp://x"}', 1, 1)""")
    con.close()
    server = Serve(data_dir)
    try:
        wait_for(lambda: counts(data_dir).get(good, 0) >= 1, 15, "the valid monitor to run")
        assert "is invalid and is skipped" in server.output()
    finally:
        assert server.stop() == 0


def test_accounts_and_keys_through_a_running_server(data_dir: Path) -> None:
    server = Serve(data_dir, workers=1)
    try:
        assert "created account 2: acme" in cli(data_dir, "accounts", "create", "acme", "--monthly-limit", "50").stdout
        dup = cli(data_dir, "accounts", "create", "acme", check=False)
        assert dup.returncode == 2 and "already exists" in dup.stderr
        out = cli(data_dir, "keys", "create", "--account", "acme", "--name", "ci").stdout.splitlines()
        secret = out[-1]
        assert secret.startswith("xup_") and len(secret) == 36
        keys = json.loads(cli(data_dir, "keys", "list", "--account", "acme", "--json").stdout)
        assert [(k["name"], k["prefix"], k["revokedAt"]) for k in keys] == [("ci", secret[:12], None)]
        cli(data_dir, "keys", "revoke", str(keys[0]["id"]), "--account", "acme")
    finally:
        assert server.stop() == 0
    assert secret not in server.output()
    assert secret.encode() not in (data_dir / "xuptime.duckdb").read_bytes()
    keys = json.loads(cli(data_dir, "keys", "list", "--account", "acme", "--json").stdout)  # stopped: direct
    assert keys[0]["revokedAt"] is not None


class _Switch(http.server.BaseHTTPRequestHandler):
    """Answers with the status in ``STATUS[0]``, which the test flips."""

    STATUS = [200]

    def do_GET(self) -> None:
        body = b"switch"
        self.send_response(self.STATUS[0])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _expected_transitions(oks: list[bool], retries: int, recovery: int) -> list[tuple[int, str]]:
    """(index of the check, new status) of every change, by the rules of DESIGN.md and
    ``core.state``, written out again by brute force."""
    status, failures, successes, out = "pending", 0, 0, []
    for i, ok in enumerate(oks):
        if ok:
            failures, successes = 0, successes + 1
            if status == "pending" or (status == "down" and successes >= recovery):
                status = "up"
                out.append((i, "up"))
        else:
            failures, successes = failures + 1, 0
            if status != "down" and failures > retries:
                status = "down"
                out.append((i, "down"))
    return out


def test_retries_and_recovery_threshold_through_serve(data_dir: Path) -> None:
    """A monitor on each path (the compiled one; a keyword test keeps the other on the general
    checker) with retries=2 and recoveryThreshold=3, against a target that fails for a while:
    the incident opens at the third failure in a row and closes at the third success."""
    server_ = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Switch)
    server_.daemon_threads = True
    threading.Thread(target=server_.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server_.server_address[1]}/"
    _Switch.STATUS[0] = 200
    fields = {"type": "http", "url": url, "interval": 1, "retries": 2, "recoveryThreshold": 3}
    fast = add(data_dir, "--json", json.dumps({"name": "compiled", **fields}))
    general = add(data_dir, "--json", json.dumps({"name": "general", "keyword": "switch", **fields}))
    ids = (fast, general)

    def count(code: int) -> dict[int, int]:
        return {int(m): int(n) for m, n in sql(
            data_dir, f"SELECT monitor_id, count(*) FROM checks WHERE status_code = {code} GROUP BY 1")}

    server = Serve(data_dir)
    try:
        wait_for(lambda: all(count(200).get(m, 0) >= 2 for m in ids), 20, "checks while up")
        _Switch.STATUS[0] = 500
        wait_for(lambda: all(count(500).get(m, 0) >= 5 for m in ids), 20, "checks while failing")
        _Switch.STATUS[0] = 200
        before = count(200)
        wait_for(lambda: all(count(200).get(m, 0) >= before[m] + 4 for m in ids), 20, "checks after recovery")
    finally:
        assert server.stop() == 0
        server_.shutdown()
    for mid in ids:
        checks = sql(data_dir, f"SELECT ts, ok FROM checks WHERE monitor_id = {mid} ORDER BY ts")
        want = _expected_transitions([bool(ok) for _, ok in checks], 2, 3)
        assert [new for _, new in want] == ["up", "down", "up"], (mid, checks)
        incidents = sql(data_dir, f"SELECT started_at, resolved_at FROM incidents WHERE monitor_id = {mid}")
        assert incidents == [[checks[want[1][0]][0], checks[want[2][0]][0]]], (mid, checks, incidents)
        status = sql(data_dir, f"SELECT status, status_since FROM monitors WHERE id = {mid}")
        assert status == [["up", checks[want[2][0]][0]]]
