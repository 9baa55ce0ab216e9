"""The agent's own parts, without a server: what it reads from a /proc tree (CPU from two
readings, memory, network rates, only real filesystems, each device once), how it cuts its
backlog into batches the server takes, and how it backs off."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from pathlib import Path

import pytest

from core import agent
from core.models.agents import MAX_REPORT_BYTES, decode_reports

STAT = "cpu  {u} 0 {s} {i} {w} 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
MEMINFO = """MemTotal:       16000000 kB
MemFree:         1000000 kB
MemAvailable:    6000000 kB
Buffers:          100000 kB
SwapTotal:       2000000 kB
SwapFree:        1500000 kB
"""
NET = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier
    lo: {lo} 10 0 0 0 0 0 0 {lo} 10 0 0 0 0 0 0
  eth0: {rx} 10 0 0 0 0 0 0 {tx} 10 0 0 0 0 0 0
"""


def fake_proc(root: Path, *, u: int, s: int, i: int, w: int, rx: int, tx: int, lo: int) -> None:
    (root / "net").mkdir(parents=True, exist_ok=True)
    (root / "self").mkdir(exist_ok=True)
    (root / "stat").write_text(STAT.format(u=u, s=s, i=i, w=w))
    (root / "meminfo").write_text(MEMINFO)
    (root / "net" / "dev").write_text(NET.format(rx=rx, tx=tx, lo=lo))
    (root / "uptime").write_text("12345.67 999.0\n")
    for pid in ("1", "42", "4242"):
        (root / pid).mkdir(exist_ok=True)
    (root / "self" / "mounts").write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "/dev/sda1 /srv/bind ext4 rw 0 0\n"  # the same device again (a bind mount): once
        "tmpfs /run tmpfs rw 0 0\n"
        "overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n"
        "proc /proc proc rw 0 0\n"
        "server:/export /mnt/nfs nfs4 rw 0 0\n"
        "/dev/sdb1 /does/not/exist xfs rw 0 0\n")  # (not there: statvfs fails, skipped)


def test_proc_sampler_reads_rates_memory_and_real_filesystems(tmp_path: Path) -> None:
    fake_proc(tmp_path, u=100, s=100, i=700, w=100, rx=1000, tx=500, lo=10**9)
    sampler = agent.ProcSampler(str(tmp_path))
    sampler._at -= 2.0  # two seconds between the readings
    fake_proc(tmp_path, u=160, s=140, i=780, w=120, rx=5000, tx=2500, lo=2 * 10**9)
    report = sampler.sample()
    # busy 100 of 200 jiffies (idle and iowait are not busy)
    assert report["cpuPercent"] == pytest.approx(50.0, abs=0.01)
    assert report["memory"] == {"usedBytes": 10_000_000 * 1024, "totalBytes": 16_000_000 * 1024}
    assert report["swap"] == {"usedBytes": 500_000 * 1024, "totalBytes": 2_000_000 * 1024}
    # loopback left out; bytes a second over the two seconds (a little more: time passed)
    assert 1900 <= report["network"]["rxBytesPerS"] <= 2000 and 950 <= report["network"]["txBytesPerS"] <= 1000
    assert [d["mount"] for d in report["disks"]] == ["/"]
    assert report["processes"] == 3 and report["uptimeS"] == 12345
    assert len(report["load"]) == 3
    report.update(ts=time.time(), hostname="h", os="o", version=agent.VERSION)
    assert decode_reports(json.dumps(report).encode())[0].cpu_percent == report["cpuPercent"]


class Collector(http.server.ThreadingHTTPServer):
    """A loopback server that takes agents' posts (HTTP/1.1, keep-alive): the bodies and the
    connections they came on. ``drop_idle``: it closes each connection right after its answer,
    without saying so (as a server does to an idle kept connection)."""

    def __init__(self, drop_idle: bool = False) -> None:
        self.bodies: list[bytes] = []
        self.peers: list[tuple[str, int]] = []
        self.drop_idle = drop_idle
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                collector.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                collector.peers.append(self.client_address)
                answer = b'{"data": {"stored": 1, "duplicates": 0, "interval": 30}}'
                self.send_response(202)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                self.close_connection = collector.drop_idle

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        super().__exit__(*exc)


def test_the_backlog_goes_in_batches_the_server_takes_and_stays_bounded() -> None:
    with Collector() as server:
        a = agent.Agent(server.url, "tok-12345678", 30.0, backlog=300)
        big = {"cpuPercent": 1.0, "memory": {"usedBytes": 1, "totalBytes": 2},
               "disks": [{"mount": f"/m{i:03d}", "usedBytes": 1, "totalBytes": 2} for i in range(12)]}
        for _ in range(350):
            a.backlog.append(dict(big))
        assert len(a.backlog) == 300  # the oldest went first
        assert a.flush() is True and not a.backlog
        a.close()
    sent = server.bodies
    batches = [json.loads(body) for body in sent]
    assert sum(len(b) for b in batches) == 300 and all(1 <= len(b) <= agent.MAX_BATCH for b in batches)
    assert all(len(body) < MAX_REPORT_BYTES for body in sent) and len(sent) >= 3
    assert [len(decode_reports(body)) for body in sent] == [len(b) for b in batches]  # the server takes them
    assert len(set(server.peers)) == 1  # every batch over one kept connection


def test_a_kept_connection_the_server_closed_is_replaced_without_losing_a_report(
        capsys: pytest.CaptureFixture[str]) -> None:
    with Collector(drop_idle=True) as server:
        a = agent.Agent(server.url, "tok-12345678", 30.0, backlog=10)
        for n in range(3):
            a.backlog.append({"cpuPercent": float(n)})
            assert a.flush() is True  # (each flush finds the connection it kept closed)
            time.sleep(0.05)
        a.close()
    assert [json.loads(b)["cpuPercent"] for b in server.bodies] == [0.0, 1.0, 2.0]
    assert len(set(server.peers)) == 3 and a.failures == 0
    assert "cannot report" not in capsys.readouterr().err


def test_an_unreachable_server_keeps_the_report_for_the_next_try() -> None:
    a = agent.Agent("http://127.0.0.1:9", "tok-12345678", 30.0, backlog=10)
    a.backlog.append({"cpuPercent": 1.0})
    assert a.flush() is False and a.failures == 1 and len(a.backlog) == 1  # (kept for the next try)


def test_a_failed_send_backs_off_with_jitter_up_to_five_minutes() -> None:
    a = agent.Agent("http://127.0.0.1:9", "tok-12345678", 30.0, backlog=10)
    waits = []
    for _ in range(12):
        before = time.monotonic()
        a._failed("refused")
        waits.append(a.retry_at - before)
    assert 1.0 <= waits[0] <= 3.1  # 2 s, jittered by half either way
    assert 2.0 <= waits[1] <= 6.1
    assert all(w <= agent.BACKOFF_MAX * 1.5 + 0.1 for w in waits) and waits[-1] >= agent.BACKOFF_MAX * 0.5
    a._failed("429", 7.0)  # the server's Retry-After is taken as it is
    assert 6.9 <= a.retry_at - time.monotonic() <= 7.0


def test_the_agent_is_one_file_of_the_standard_library() -> None:
    """The file served at /agent/xuptime-agent.py imports nothing outside the standard library."""
    import ast
    import sys

    tree = ast.parse(Path(agent.__file__).read_text())
    names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert names - sys.stdlib_module_names == {"psutil"}  # (only when there is no /proc, and optional)
    assert os.access(agent.__file__, os.R_OK)
