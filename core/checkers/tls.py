"""TLS certificate checker: connect, handshake with verification (chain, host name, dates),
then require the certificate to stay valid for ``minDaysValid`` more days.

A certificate that verifies but expires sooner fails with ``cert_expiring`` and says how many
days are left; one that does not verify (expired, self-signed, wrong name) fails with ``tls``.
Phases: DNS, connect, TLS. The connection is closed with a reset.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

from core.checkers.base import CheckContext, abort_with_reset, classify_os_error, fail, now_us
from core.models import CheckResult, ErrorCode, TlsSpec, is_ip_literal

__all__ = ["PreparedTls", "check", "prepare"]


class PreparedTls:
    __slots__ = ("host", "ip", "min_days", "port", "spec")

    def __init__(self, spec: TlsSpec) -> None:
        self.spec = spec
        self.host = spec.host.strip("[]")
        self.ip = is_ip_literal(self.host)
        self.port = spec.port
        self.min_days = spec.min_days_valid


def prepare(spec: TlsSpec) -> PreparedTls:
    return PreparedTls(spec)


async def check(prepared: PreparedTls, ctx: CheckContext) -> CheckResult:
    loop = ctx.env.loop
    address, family = prepared.host, 0
    transport: asyncio.BaseTransport | None = None
    try:
        if not prepared.ip:
            ctx.phase = "dns"
            t = now_us()
            infos = await loop.getaddrinfo(prepared.host, prepared.port, type=socket.SOCK_STREAM)
            ctx.dns_us = now_us() - t
            family, address = infos[0][0], infos[0][4][0]
        ctx.env.check_address(address)
        ctx.phase = "connect"
        t = now_us()
        transport, proto = await loop.create_connection(asyncio.Protocol, address, prepared.port, family=family)
        ctx.connect_us = now_us() - t
        ctx.phase = "tls"
        t = now_us()
        # An IP host is verified against the certificate's IP addresses (and sends no SNI).
        transport = await loop.start_tls(transport, proto, ctx.env.verify_ctx, server_hostname=prepared.host,
                                         ssl_handshake_timeout=600)
        ctx.tls_us = now_us() - t
        cert = transport.get_extra_info("peercert") if transport is not None else None
        if not cert or "notAfter" not in cert:
            return fail(ctx, ErrorCode.TLS, "TLS: the server sent no certificate")
        days = (ssl.cert_time_to_seconds(cert["notAfter"]) - time.time()) / 86400
        if days < prepared.min_days:
            return fail(ctx, ErrorCode.CERT_EXPIRING,
                        f"certificate expires in {days:.1f} days (at least {prepared.min_days} required)")
        return ctx.result(True)
    except OSError as exc:
        code, message = classify_os_error(exc)
        return fail(ctx, code, message)
    finally:
        abort_with_reset(transport)
