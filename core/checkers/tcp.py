"""TCP checker: connect, and optionally send ``send`` and expect ``expect`` in the reply.

The connection is always closed with an RST (no TIME_WAIT). Without ``expect`` a successful
connect is success; with it, bytes are read until ``expect`` appears (success), the peer
closes (``expect`` failure) or the caller's deadline expires (``timeout``). At most 64 KiB
are kept while looking for ``expect``.
"""

from __future__ import annotations

import asyncio
import socket

from core.checkers.base import CheckContext, abort_with_reset, classify_os_error, fail, now_us
from core.models import CheckResult, ErrorCode, TcpSpec, is_ip_literal

__all__ = ["PreparedTcp", "check", "prepare"]

_MAX_READ = 64 * 1024


class PreparedTcp:
    __slots__ = ("expect", "host", "ip", "port", "send", "spec")

    def __init__(self, spec: TcpSpec) -> None:
        self.spec = spec
        self.host = spec.host.strip("[]")
        self.ip = is_ip_literal(self.host)
        self.port = spec.port
        self.send = spec.send.encode() if spec.send else None
        self.expect = spec.expect.encode() if spec.expect else None


def prepare(spec: TcpSpec) -> PreparedTcp:
    return PreparedTcp(spec)


class _Reader(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.expect: bytes | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

    def data_received(self, data: bytes) -> None:
        if len(self.data) < _MAX_READ:
            self.data += data[: _MAX_READ - len(self.data)]
        if self.expect is not None and self.expect in self.data:
            self._wake()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def check(prepared: PreparedTcp, ctx: CheckContext) -> CheckResult:
    loop = ctx.env.loop
    host, family = prepared.host, 0
    transport = None
    try:
        if not prepared.ip:
            ctx.phase = "dns"
            t = now_us()
            infos = await loop.getaddrinfo(host, prepared.port, type=socket.SOCK_STREAM)
            ctx.dns_us = now_us() - t
            family, host = infos[0][0], infos[0][4][0]
        ctx.env.check_address(host)
        ctx.phase = "connect"
        t = now_us()
        transport, proto = await loop.create_connection(_Reader, host, prepared.port, family=family)
        ctx.connect_us = now_us() - t
        if prepared.expect is None:
            if prepared.send:
                transport.write(prepared.send)
            return ctx.result(True)
        proto.expect = prepared.expect
        proto.waiter = loop.create_future()
        ctx.phase = "waiting for the expected reply"
        sent = now_us()
        if prepared.send:
            transport.write(prepared.send)
        if prepared.expect not in proto.data and not proto.closed:
            await proto.waiter
        if proto.data:
            ctx.ttfb_us = now_us() - sent
        if prepared.expect in proto.data:
            return ctx.result(True)
        return fail(ctx, ErrorCode.EXPECT, "expected reply not received before the connection closed")
    except OSError as exc:
        code, message = classify_os_error(exc)
        return fail(ctx, code, message)
    finally:
        abort_with_reset(transport)
