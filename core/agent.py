#!/usr/bin/env python3
"""xuptime agent: reports this server's health to an xuptime server.

One file, standard library only (Python 3.8+), runs unprivileged. ``xuptime agent`` runs it,
and every xuptime server serves it at ``/agent/xuptime-agent.py`` for hosts without the
package::

    curl -fsSO http://xuptime.example:8080/agent/xuptime-agent.py
    XUPTIME_AGENT_TOKEN=... python3 xuptime-agent.py --server http://xuptime.example:8080

Every ``--interval`` seconds (default: the monitor's interval, as the server tells it; 30 until
it has) it samples CPU busy time (two readings of ``/proc/stat``), load, memory and swap, every
local filesystem (no tmpfs, overlay or other pseudo filesystems; a device mounted twice counted
once), network throughput (all interfaces but loopback), the number of processes and the
uptime, and posts them to ``/api/agent/{token}/report``. On Linux it reads ``/proc``; elsewhere
it uses psutil when importable.

Reports the server has not acknowledged wait in a bounded backlog (``--backlog``, oldest
dropped first) and are sent, oldest first and in batches, when the server answers again;
failed sends are retried with exponential backoff and jitter. The server skips reports it
already has, so a batch sent twice is stored once. Reports go over one kept-open connection
(the server keeps an idle one 75 s by default, so an agent reporting every 30 or 60 s does not
open one a report); a kept connection the server has closed meanwhile is replaced and the
batch sent again at once. Through a proxy (``https_proxy``/``http_proxy``, unless
``no_proxy`` names the server) each report is its own request, as urllib sends it. An
unknown token (404) ends the agent with a clear message (exit status 2): retrying cannot help. The token may be given in
``XUPTIME_AGENT_TOKEN`` (or ``--token-file``) rather than on the command line, where other
local users could read it.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import platform
import random
import signal
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

VERSION = "1"
MAX_BODY = 60 * 1024  # under the server's 64 KiB
MAX_BATCH = 100
BACKOFF_FIRST, BACKOFF_MAX = 2.0, 300.0
#: Filesystems that are not storage: memory, kernel views, containers' layers, images.
PSEUDO = frozenset([
    "tmpfs", "devtmpfs", "ramfs", "overlay", "overlayfs", "aufs", "proc", "sysfs", "cgroup", "cgroup2", "devpts",
    "mqueue", "debugfs", "tracefs", "securityfs", "pstore", "bpf", "configfs", "fusectl", "hugetlbfs", "autofs",
    "binfmt_misc", "rpc_pipefs", "nsfs", "squashfs", "iso9660", "efivarfs", "selinuxfs", "fuse.lxcfs",
    "fuse.gvfsd-fuse", "fuse.portal", "nfsd"])
#: Network filesystems: a stalled server would stall the agent's statvfs().
REMOTE = frozenset(["nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "fuse.sshfs", "9p", "afs"])


def log(message: str) -> None:
    print(f"xuptime-agent: {message}", file=sys.stderr, flush=True)


class ProcSampler:
    """Linux, from /proc: counters kept between samples for CPU and network rates."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._cpu = self._cpu_times()
        self._net = self._net_bytes()
        self._at = time.monotonic()

    def _read(self, name: str) -> str:
        with open(os.path.join(self.proc, name)) as f:
            return f.read()

    def _cpu_times(self) -> tuple:
        fields = [int(v) for v in self._read("stat").split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        total = sum(fields[:8])  # (guest time is already in user and nice)
        return total, idle

    def _net_bytes(self) -> tuple:
        rx = tx = 0
        for line in self._read("net/dev").splitlines()[2:]:
            name, _, data = line.partition(":")
            if name.strip() == "lo":
                continue
            values = data.split()
            if len(values) >= 9:
                rx += int(values[0])
                tx += int(values[8])
        return rx, tx

    def _memory(self) -> dict:
        info = {}
        for line in self._read("meminfo").splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                info[key] = int(parts[0]) * 1024
        total = info.get("MemTotal", 0)
        available = info.get("MemAvailable", info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0))
        swap_total = info.get("SwapTotal", 0)
        return {"memory": {"usedBytes": max(0, total - available), "totalBytes": total},
                "swap": {"usedBytes": max(0, swap_total - info.get("SwapFree", 0)), "totalBytes": swap_total}}

    def _disks(self) -> list:
        out, seen = [], set()
        for line in self._read("self/mounts").splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            device, mount, kind = parts[0], parts[1].replace("\\040", " "), parts[2]
            if kind in PSEUDO or kind in REMOTE or device in seen or (not device.startswith(("/", "UUID=", "LABEL=")) \
                    and kind not in ("zfs", "btrfs")):
                continue
            try:
                st = os.statvfs(mount)
            except OSError:
                continue
            total = st.f_blocks * st.f_frsize
            if total <= 0:
                continue
            seen.add(device)
            out.append({"mount": mount[:256], "usedBytes": (st.f_blocks - st.f_bfree) * st.f_frsize,
                        "totalBytes": total})
            if len(out) == 64:
                break
        return out

    def sample(self) -> dict:
        now = time.monotonic()
        cpu, net = self._cpu_times(), self._net_bytes()
        elapsed = max(now - self._at, 1e-6)
        busy_total = cpu[0] - self._cpu[0]
        busy = busy_total - (cpu[1] - self._cpu[1])
        report = {
            "cpuPercent": round(min(100.0, max(0.0, 100.0 * busy / busy_total)) if busy_total > 0 else 0.0, 2),
            "load": [round(v, 2) for v in os.getloadavg()],
            "disks": self._disks(),
            "network": {"rxBytesPerS": round(max(0, net[0] - self._net[0]) / elapsed, 1),
                        "txBytesPerS": round(max(0, net[1] - self._net[1]) / elapsed, 1)},
            "processes": sum(1 for name in os.listdir(self.proc) if name.isdigit()),
            "uptimeS": int(float(self._read("uptime").split()[0])),
        }
        report.update(self._memory())
        self._cpu, self._net, self._at = cpu, net, now
        return report


class PsutilSampler:
    """Other systems, through psutil."""

    def __init__(self, psutil: object) -> None:
        self.ps = psutil
        self.ps.cpu_percent(interval=None)  # type: ignore[attr-defined]
        self._net = self._net_bytes()
        self._at = time.monotonic()

    def _net_bytes(self) -> tuple:
        counters = self.ps.net_io_counters(pernic=True)  # type: ignore[attr-defined]
        rx = sum(c.bytes_recv for name, c in counters.items() if not name.startswith(("lo", "Loopback")))
        tx = sum(c.bytes_sent for name, c in counters.items() if not name.startswith(("lo", "Loopback")))
        return rx, tx

    def sample(self) -> dict:
        ps = self.ps
        now, net = time.monotonic(), self._net_bytes()
        elapsed = max(now - self._at, 1e-6)
        memory, swap = ps.virtual_memory(), ps.swap_memory()  # type: ignore[attr-defined]
        disks, seen = [], set()
        for part in ps.disk_partitions(all=False):  # type: ignore[attr-defined]
            if part.fstype in PSEUDO or part.fstype in REMOTE or part.device in seen:
                continue
            try:
                usage = ps.disk_usage(part.mountpoint)  # type: ignore[attr-defined]
            except OSError:
                continue
            seen.add(part.device)
            disks.append({"mount": part.mountpoint[:256], "usedBytes": usage.used, "totalBytes": usage.total})
        report = {
            "cpuPercent": round(ps.cpu_percent(interval=None), 2),  # type: ignore[attr-defined]
            "memory": {"usedBytes": memory.total - memory.available, "totalBytes": memory.total},
            "swap": {"usedBytes": swap.used, "totalBytes": swap.total},
            "disks": disks[:64],
            "network": {"rxBytesPerS": round(max(0, net[0] - self._net[0]) / elapsed, 1),
                        "txBytesPerS": round(max(0, net[1] - self._net[1]) / elapsed, 1)},
            "processes": len(ps.pids()),  # type: ignore[attr-defined]
            "uptimeS": int(time.time() - ps.boot_time()),  # type: ignore[attr-defined]
        }
        if hasattr(os, "getloadavg"):
            report["load"] = [round(v, 2) for v in os.getloadavg()]
        self._net, self._at = net, now
        return report


def make_sampler() -> object:
    if os.path.exists("/proc/stat") and os.path.exists("/proc/meminfo"):
        return ProcSampler()
    try:
        import psutil  # type: ignore[import-not-found]
    except ImportError:
        raise SystemExit("xuptime-agent: this system has no /proc; install psutil (pip install psutil)") from None
    return PsutilSampler(psutil)


def describe_os() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return f"{line.split('=', 1)[1].strip().strip(chr(34))} ({platform.system()} {platform.release()})"
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


class TokenRefused(Exception):
    """The server does not know this token (404)."""


class Refused(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, detail: str, retry_after: str | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.detail, self.retry_after = status, detail, retry_after


#: A kept-open connection the server closed while it was idle shows as one of these on reuse.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class Agent:
    def __init__(self, server: str, token: str, interval: float | None, backlog: int, timeout: float = 10.0) -> None:
        self.url = f"{server.rstrip('/')}/api/agent/{token}/report"
        parts = urllib.parse.urlsplit(self.url)
        self.origin = (parts.scheme, parts.hostname or "", parts.port)
        self.path = parts.path
        #: Through a proxy from the environment, urllib's own requests (no kept connection).
        self.proxied = parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(
            parts.hostname or "")
        self.conn: http.client.HTTPConnection | None = None
        self.interval = interval or 30.0
        self.fixed_interval = interval is not None
        self.backlog: collections.deque = collections.deque(maxlen=backlog)
        self.timeout = timeout
        self.failures = 0
        self.retry_at = 0.0
        self.host = socket.gethostname()[:256]
        self.os = describe_os()[:256]
        self.dropped = 0

    def collect(self, sampler: object) -> None:
        report = sampler.sample()  # type: ignore[attr-defined]
        report.update(ts=round(time.time(), 3), hostname=self.host, os=self.os, version=VERSION)
        if len(self.backlog) == self.backlog.maxlen:
            self.dropped += 1
        self.backlog.append(report)

    def _post(self, batch: list) -> dict:
        """The server's answer to one batch; raises Refused on an error status, OSError or
        http.client.HTTPException when there is no answer."""
        body = json.dumps(batch if len(batch) > 1 else batch[0], separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"xuptime-agent/{VERSION}"}
        if self.proxied:
            request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    return json.loads(answer.read() or b"{}")
            except urllib.error.HTTPError as exc:
                raise Refused(exc.code, exc.read()[:500].decode("utf-8", "replace"),
                              exc.headers.get("Retry-After")) from None
        for attempt in (1, 2):
            reused = self.conn is not None
            if self.conn is None:
                scheme, host, port = self.origin
                kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
                self.conn = kind(host, port, timeout=self.timeout)
            try:
                self.conn.request("POST", self.path, body, headers)
                answer = self.conn.getresponse()
                data = answer.read()
            except _STALE:
                self.close()
                if reused and attempt == 1:
                    continue  # (closed by the server while idle: once more on a new connection)
                raise
            except BaseException:
                self.close()
                raise
            if answer.will_close:
                self.close()
            if answer.status >= 400:
                raise Refused(answer.status, data[:500].decode("utf-8", "replace"), answer.getheader("Retry-After"))
            return json.loads(data or b"{}")
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _batch(self) -> list:
        batch, size = [], 2
        for report in self.backlog:
            size += len(json.dumps(report, separators=(",", ":"))) + 1
            if batch and (size > MAX_BODY or len(batch) == MAX_BATCH):
                break
            batch.append(report)
        return batch

    def flush(self) -> bool:
        """Send what waits, oldest first, until it is all sent or a send fails; True when the
        backlog is empty. Raises TokenRefused on a 404."""
        while self.backlog:
            if time.monotonic() < self.retry_at:
                return False
            batch = self._batch()
            try:
                answer = self._post(batch)
            except Refused as exc:
                if exc.status == 404:
                    raise TokenRefused(exc.detail) from None
                if exc.status in (400, 413, 415):  # this batch will never be taken: drop it, keep going
                    log(f"the server refused {len(batch)} report(s) ({exc.status}): {exc.detail}")
                    for _ in batch:
                        self.backlog.popleft()
                    continue
                wait = exc.retry_after if exc.status == 429 else None
                self._failed(f"HTTP {exc.status}", float(wait) if wait and wait.isdigit() else None)
                return False
            except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, reset, timed out, bad answer
                self._failed(str(getattr(exc, "reason", exc)))
                return False
            for _ in batch:
                self.backlog.popleft()
            if self.failures:
                log(f"the server answers again; sent {len(batch)} report(s)")
            self.failures = 0
            interval = (answer.get("data") or {}).get("interval")
            if not self.fixed_interval and isinstance(interval, (int, float)) and 1 <= interval <= 86400:
                self.interval = float(interval)
        return True

    def _failed(self, why: str, wait: float | None = None) -> None:
        self.failures += 1
        if wait is None:
            wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1)) * random.uniform(0.5, 1.5)
        self.retry_at = time.monotonic() + wait
        if self.failures == 1 or self.failures % 10 == 0:
            log(f"cannot report ({why}); {len(self.backlog)} waiting, next try in {wait:.0f} s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, help="the xuptime server's URL, e.g. http://xuptime.lan:8080")
    parser.add_argument("--token", help="the agent monitor's agentToken (default: $XUPTIME_AGENT_TOKEN; on the "
                                        "command line it is visible to other local users)")
    parser.add_argument("--token-file", help="read the token from this file instead")
    parser.add_argument("--interval", type=float, help="seconds between reports (default: the monitor's interval)")
    parser.add_argument("--backlog", type=int, default=2880,
                        help="reports kept while the server is unreachable (default 2880: a day at 30 s)")
    parser.add_argument("--once", action="store_true", help="send one report and exit (0 when it was stored)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Complete ``args`` (the token from a file or the environment) or exit with usage."""
    if args.token_file:
        try:
            with open(args.token_file) as f:
                args.token = f.read().strip()
        except OSError as exc:
            parser.error(f"cannot read --token-file: {exc.strerror}")
    args.token = args.token or os.environ.get("XUPTIME_AGENT_TOKEN", "").strip()
    if not args.token:
        parser.error("no token: give --token, --token-file or XUPTIME_AGENT_TOKEN")
    if not args.server.startswith(("http://", "https://")):
        parser.error("--server must be an http:// or https:// URL")
    if args.interval is not None and not 1 <= args.interval <= 86400:
        parser.error("--interval must be 1 to 86400 seconds")
    if args.backlog < 1:
        parser.error("--backlog must be at least 1")


def parse_args(argv: list | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="xuptime-agent", description="Report this server's health to xuptime.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    return args


def run(args: argparse.Namespace) -> int:
    agent = Agent(args.server, args.token, args.interval, args.backlog)
    sampler = make_sampler()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        if args.once:
            time.sleep(1.0)  # (CPU and network rates need two readings)
            agent.collect(sampler)
            if agent.flush():
                return 0
            log("the report was not stored")
            return 1
        log(f"reporting to {args.server} every {agent.interval:g} s")
        next_at = time.monotonic() + min(agent.interval, 5.0)
        while not stopping:
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(min(pause, 1.0))  # (wakes each second to notice SIGTERM)
                continue
            next_at += agent.interval
            if next_at < time.monotonic():  # (suspended or stalled: do not catch up in a burst)
                next_at = time.monotonic() + agent.interval
            agent.collect(sampler)
            agent.flush()
    except TokenRefused:
        log("the server does not know this token (404): is the agent monitor deleted, or the token mistyped?")
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        agent.close()
    if agent.backlog:
        log(f"stopping with {len(agent.backlog)} report(s) not sent")
    return 0


def main(argv: list | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
