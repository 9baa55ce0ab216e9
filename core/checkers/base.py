"""What every checker shares: the per-worker environment and the per-check context.

A checker is ``async def check(prepared, ctx) -> CheckResult``. It never sleeps, retries or
sets its own deadline: the caller wraps it in a timeout and, on expiry, builds the ``timeout``
result from ``ctx.phase`` and the phase timings recorded so far. On cancellation a checker
must release its socket (``finally``) and let the CancelledError propagate.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.models import CheckResult, ErrorCode, is_private_address

__all__ = ["CheckContext", "Env", "abort_with_reset", "classify_os_error", "fail", "now_us"]

_LINGER_RESET = struct.pack("ii", 1, 0)


def now_us() -> int:
    return time.perf_counter_ns() // 1000


@dataclass
class Env:
    """Per-worker state shared by checks: TLS contexts and the keep-alive pool."""

    loop: asyncio.AbstractEventLoop
    verify_ctx: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    noverify_ctx: ssl.SSLContext = field(init=False)
    #: Idle keep-alive connections per origin ``(account, host, port, tls, verify)``, most
    #: recent last. Keep-alive monitors of one account and origin share them, so open
    #: connections scale with checks in flight, not with monitors (the open-file limit would
    #: cap the latter); accounts never share one (a request one account wrote could make the
    #: server answer twice, and the second answer land on another account's check).
    idle: dict[tuple[int, str, int, bool, bool], list[tuple[Any, Any]]] = field(default_factory=dict)
    max_idle_per_origin: int = 1024
    user_agent: bytes = b"xuptime/0.1"
    #: Requests to send at the end of this loop iteration, back to back (see ``send_soon``).
    pending_sends: list[Any] = field(default_factory=list)
    #: Push monitors: monitor id -> (wall time s, ok, message, ping ms) of the latest push,
    #: and -> wall time of its previous check (see ``core.checkers.push``).
    pushes: dict[int, tuple[float, bool, str | None, float | None]] = field(default_factory=dict)
    push_checked: dict[int, float] = field(default_factory=dict)
    #: Agent monitors: monitor id -> wall time of the newest report, of the first time this
    #: worker watched it, and of its last ``agent_silent`` result (see ``core.checkers.agent``).
    reports: dict[int, float] = field(default_factory=dict)
    watching: dict[int, float] = field(default_factory=dict)
    silent: dict[int, float] = field(default_factory=dict)
    #: Wall time in seconds: the scheduler's clock (a test's fake one), for the kinds judged
    #: against the calendar (cron heartbeats, agents' silence).
    now: Callable[[], float] = time.time
    #: ``serve --deny-private-targets`` (shared installs): refuse to connect to private,
    #: loopback and link-local addresses, whatever name led there (set for the workers).
    deny_private: bool = field(default_factory=lambda: os.environ.get("XUPTIME_DENY_PRIVATE") == "1")

    def check_address(self, address: str) -> None:
        """Raise PermissionError when this server may not connect to ``address``."""
        if self.deny_private and is_private_address(address):
            raise PermissionError(errno.EACCES, f"{address} is a private address, denied on this server")

    def send_soon(self, job: Any) -> None:
        """Queue ``job.send()`` for the end of the current loop iteration.

        Writes from one burst of callbacks then reach the kernel together: on loopback and
        in VMs a write that wakes a sleeping peer costs several times one to a busy peer
        (measured here: 10.9 us per write spread out vs a few us back to back).
        """
        if not self.pending_sends:
            self.loop.call_soon(self._send_pending)
        self.pending_sends.append(job)

    def _send_pending(self) -> None:
        jobs, self.pending_sends = self.pending_sends, []
        for job in jobs:
            job.send()

    def __post_init__(self) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.noverify_ctx = ctx

    def take_idle(self, origin: tuple[int, str, int, bool, bool]) -> tuple[Any, Any] | None:
        """The most recently used live idle connection to ``origin``, if any: not closing, and
        (plain TCP) with nothing unread in the kernel. Bytes nobody asked for, or the peer's
        close, may not have reached the protocol yet; taken for the next request's answer,
        they would put one check's status on another."""
        pool = self.idle.get(origin)
        while pool:
            transport, proto = pool.pop()
            if not transport.is_closing() and not proto.lost and (origin[3] or not _unread(transport)):
                return transport, proto
            abort_with_reset(transport)
        return None

    def give_idle(self, origin: tuple[int, str, int, bool, bool], conn: tuple[Any, Any]) -> None:
        pool = self.idle.setdefault(origin, [])
        if len(pool) >= self.max_idle_per_origin:
            abort_with_reset(conn[0])
        else:
            pool.append(conn)

    def idle_count(self) -> int:
        return sum(len(pool) for pool in self.idle.values())

    def close(self) -> None:
        for pool in self.idle.values():
            for transport, _ in pool:
                abort_with_reset(transport)
        self.idle.clear()


def _unread(transport: asyncio.BaseTransport) -> bool:
    """The socket under ``transport`` has bytes to read or reached EOF (a peek, no read)."""
    pseudo = transport.get_extra_info("socket")
    if pseudo is None:
        return False
    sock = socket.socket(pseudo.family, socket.SOCK_STREAM, 0, pseudo.fileno())
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.detach()
    return True


class CheckContext:
    """One check's bookkeeping, readable by the caller after a timeout. ``account`` keys the
    keep-alive pool: connections are never shared between accounts."""

    __slots__ = ("account", "connect_us", "dns_us", "env", "monitor_id", "phase", "started_us", "tls_us", "ttfb_us")

    def __init__(self, env: Env, monitor_id: int, account: int = 0) -> None:
        self.env = env
        self.monitor_id = monitor_id
        self.account = account
        self.started_us = now_us()
        self.phase = "start"
        self.dns_us = -1
        self.connect_us = -1
        self.tls_us = -1
        self.ttfb_us = -1

    def result(self, ok: bool, status_code: int = 0, code: ErrorCode = ErrorCode.OK,
               error: str | None = None) -> CheckResult:
        return CheckResult(ok, now_us() - self.started_us, status_code, int(code), error,
                           self.dns_us, self.connect_us, self.tls_us, self.ttfb_us)


def fail(ctx: CheckContext, code: ErrorCode, error: str, status_code: int = 0) -> CheckResult:
    return ctx.result(False, status_code, code, error[:300])


def abort_with_reset(transport: asyncio.BaseTransport | None) -> None:
    """Close with an RST instead of a FIN so that checks at scale leave no TIME_WAIT."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()  # type: ignore[attr-defined]


def classify_os_error(exc: BaseException) -> tuple[ErrorCode, str]:
    """Map a connect/read failure to an error code and a short message."""
    if isinstance(exc, socket.gaierror):
        return ErrorCode.DNS, f"DNS: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ErrorCode.TLS, f"TLS: {exc.verify_message or exc.reason or exc}"
    if isinstance(exc, ssl.SSLError):
        return ErrorCode.TLS, f"TLS: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return ErrorCode.REFUSED, "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return ErrorCode.RESET, "connection reset by peer"
    if isinstance(exc, OSError) and exc.errno in (101, 113):  # ENETUNREACH, EHOSTUNREACH
        return ErrorCode.UNREACHABLE, f"unreachable: {exc.strerror}"
    if isinstance(exc, OSError):
        return ErrorCode.CONNECT, f"connect: {exc.strerror or exc}"
    return ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}"
