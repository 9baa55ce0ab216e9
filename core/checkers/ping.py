"""Ping checker: one ICMP echo request (icmplib), answered before the caller's deadline.

ICMP needs a raw socket (root, as ``xuptime serve`` usually runs in its container) or the
kernel's unprivileged ping sockets (``net.ipv4.ping_group_range``); whichever this process
may use is used. Failures: ``dns``, ``timeout`` (no echo reply in time), ``unreachable``
(an ICMP error came back), ``connect`` (ICMP is not allowed to this process).
"""

from __future__ import annotations

import os
import socket

import icmplib

from core.checkers.base import CheckContext, classify_os_error, fail, now_us
from core.models import CheckResult, ErrorCode, PingSpec, is_ip_literal

__all__ = ["PreparedPing", "check", "prepare"]

_PRIVILEGED = os.geteuid() == 0


class PreparedPing:
    __slots__ = ("host", "ip", "spec")

    def __init__(self, spec: PingSpec) -> None:
        self.spec = spec
        self.host = spec.host.strip("[]")
        self.ip = is_ip_literal(self.host)


def prepare(spec: PingSpec) -> PreparedPing:
    return PreparedPing(spec)


async def check(prepared: PreparedPing, ctx: CheckContext) -> CheckResult:
    address = prepared.host
    try:
        if not prepared.ip:
            ctx.phase = "dns"
            t = now_us()
            infos = await ctx.env.loop.getaddrinfo(prepared.host, None, type=socket.SOCK_RAW)
            ctx.dns_us = now_us() - t
            address = infos[0][4][0]
        ctx.env.check_address(address)
        ctx.phase = "waiting for the echo reply"
        # The caller owns the deadline: icmplib's own timeout is only a backstop.
        host = await icmplib.async_ping(address, count=1, timeout=3600, privileged=_PRIVILEGED)
    except icmplib.SocketPermissionError:
        return fail(ctx, ErrorCode.CONNECT, "ICMP is not allowed here: run as root or set net.ipv4.ping_group_range")
    except icmplib.ICMPLibError as exc:
        return fail(ctx, ErrorCode.UNREACHABLE, f"ping: {exc}")
    except OSError as exc:
        code, message = classify_os_error(exc)
        return fail(ctx, code, message)
    if not host.is_alive:
        return fail(ctx, ErrorCode.TIMEOUT, "no echo reply")
    ctx.ttfb_us = int(host.avg_rtt * 1000)
    return ctx.result(True)
