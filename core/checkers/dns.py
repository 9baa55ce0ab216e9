"""DNS checker (dnspython's asyncio resolver): ``host`` must have ``recordType`` records and,
with ``expectedValue``, one of them must equal it.

Values compare as DNS prints them, without the trailing dot and case-insensitively for
names: an address (``A``/``AAAA``), a name (``CNAME``/``NS``/``PTR``), ``10 mail.example.com``
or just ``mail.example.com`` for ``MX``, the joined strings of a ``TXT`` record. The query time
is the result's DNS phase. Failures: ``dns`` (no such name, no such record, no answer, no
resolver), ``expect`` (records, but not the expected one), ``timeout`` (the caller's deadline).
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from core.checkers.base import CheckContext, fail, now_us
from core.models import CheckResult, DnsSpec, ErrorCode, parse_resolver

__all__ = ["PreparedDns", "check", "prepare", "record_values"]


class PreparedDns:
    __slots__ = ("expected", "host", "rdtype", "resolver", "server", "spec")

    def __init__(self, spec: DnsSpec) -> None:
        self.spec = spec
        self.host = spec.host.rstrip(".") + "."
        self.rdtype = dns.rdatatype.from_text(spec.record_type.upper())
        self.expected = _normal(spec.expected_value) if spec.expected_value is not None else None
        self.server = parse_resolver(spec.resolver) if spec.resolver else None
        self.resolver: dns.asyncresolver.Resolver | None = None  # made on first use


def prepare(spec: DnsSpec) -> PreparedDns:
    return PreparedDns(spec)


def _normal(value: str) -> str:
    return value.strip().rstrip(".").lower()


def record_values(rdata: object) -> set[str]:
    """The forms of one record that ``expectedValue`` may be written as (normalised)."""
    text = rdata.to_text()  # type: ignore[attr-defined]
    forms = {_normal(text)}
    if hasattr(rdata, "exchange"):  # MX: "10 mail.example.com" or "mail.example.com"
        forms.add(_normal(rdata.exchange.to_text()))
    if hasattr(rdata, "strings"):  # TXT: the strings joined, unquoted
        forms.add(b"".join(rdata.strings).decode("utf-8", "replace").strip().lower())
    if hasattr(rdata, "target"):  # SRV: "0 5 5060 sip.example.com" or the target alone
        forms.add(_normal(rdata.target.to_text()))
    return forms


def _resolver(prepared: PreparedDns) -> dns.asyncresolver.Resolver:
    if prepared.resolver is None:
        if prepared.server is not None:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [prepared.server[0]]
            resolver.port = prepared.server[1]
        else:
            resolver = dns.asyncresolver.Resolver()  # the system's (/etc/resolv.conf)
        resolver.cache = None  # every check asks
        prepared.resolver = resolver
    return prepared.resolver


async def check(prepared: PreparedDns, ctx: CheckContext) -> CheckResult:
    ctx.phase = "dns"
    try:
        resolver = _resolver(prepared)
    except dns.resolver.NoResolverConfiguration:
        return fail(ctx, ErrorCode.DNS, "DNS: no resolver configured on this machine; set resolver")
    t = now_us()
    try:
        # The caller owns the deadline; the lifetime only stops dnspython giving up sooner.
        answer = await resolver.resolve(prepared.host, prepared.rdtype, lifetime=3600, search=False)
    except dns.resolver.NXDOMAIN:
        return fail(ctx, ErrorCode.DNS, f"DNS: {prepared.spec.host} does not exist")
    except dns.resolver.NoAnswer:
        return fail(ctx, ErrorCode.DNS, f"DNS: no {prepared.spec.record_type.upper()} record")
    except dns.resolver.NoNameservers as exc:
        return fail(ctx, ErrorCode.DNS, f"DNS: no server answered ({str(exc)[:120]})")
    except dns.exception.DNSException as exc:
        return fail(ctx, ErrorCode.DNS, f"DNS: {type(exc).__name__}: {str(exc)[:120]}")
    ctx.dns_us = now_us() - t
    if prepared.expected is None:
        return ctx.result(True)
    seen = [rdata.to_text() for rdata in answer]
    if any(prepared.expected in record_values(rdata) for rdata in answer):
        return ctx.result(True)
    shown = ", ".join(seen[:5]) + (" ..." if len(seen) > 5 else "")
    return fail(ctx, ErrorCode.EXPECT, f"expected {prepared.spec.expected_value}, got {shown}")
