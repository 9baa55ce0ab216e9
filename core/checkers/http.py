"""HTTP(S) checker: a raw ``asyncio.Protocol`` on the running loop (uvloop), parsed by
httptools. HTTP/1.1 over TCP or TLS (verification on by default, SNI from the URL host).

Phases, like blackbox_exporter's ``probe_http_duration_seconds{phase}``: ``dns`` (skipped for
IP literals), ``connect``, ``tls`` (``start_tls`` on the connected socket, so it is timed
apart from connect) and ``ttfb`` (request written to first response byte); ``latency`` is
the whole check including redirects. Phases are those of the last hop.

Connections: by default one per check, closed with an RST (``SO_LINGER`` 0) so that many
checks per second leave no TIME_WAIT sockets behind. With ``keepAlive`` the connection goes
back to a pool per origin (account, host, port, TLS, verification) shared by that account's
keep-alive monitors of the origin, and is reused while the server allows and nothing unread
waits on it; a reused connection that turns out dead before any response byte is replaced
once by a fresh one (not counted as a failure).

Limits: response headers 64 KiB in total, interim (1xx) responses included (``bad_response``
beyond); the body is read up to ``maxBodyBytes`` and the keyword searched in that prefix; a
longer body stops the read there and the connection is not reused.

What a response must be (RFC 9112), else the check fails with ``bad_response``: a status line
``HTTP/1.0`` or ``HTTP/1.1`` with a status from 100 to 999 and a reason phrase without control
bytes; header lines ended by CRLF (no bare CR or LF, no NUL or other control byte), names of
token bytes followed at once by the colon, no obs-fold; at most one ``Content-Length`` of
digits and not beside ``Transfer-Encoding``; well-formed chunks. A body framed by the close
must end with a clean close (FIN): a reset there is ``reset``, not a complete body. A
``Transfer-Encoding`` whose last coding is not ``chunked`` (``identity``, ``chunked, gzip``)
makes the body end at the close (RFC 9112 section 6.3, item 4).

Decided (RFC 9112 section 6.3 lets a client discard them, as curl does with a warning): bytes
after the end of a response (a body longer than its ``Content-Length``, a body on a 204 or
a HEAD answer, a second response nobody asked for) do not change the verdict on the response,
which is judged as framed; the connection is never reused after them. The compiled path
(``ext._fasthttp``) judges the same way or hands the check here.
"""

from __future__ import annotations

import _ssl
import asyncio
import functools
import re
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

import httptools
import msgspec

from core.checkers.base import CheckContext, abort_with_reset, classify_os_error, fail, now_us
from core.models import (
    FRAMING_HEADERS,
    CheckResult,
    ErrorCode,
    HttpSpec,
    is_ip_literal,
    parse_json_path,
    parse_status_ranges,
)

__all__ = ["CompiledSpec", "JsonTest", "PreparedHttp", "check", "compiled_spec", "json_problem", "prepare", "start",
           "tls_settings", "url_of_head"]

MAX_HEADER_BYTES = 64 * 1024
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_FIELD = rb"[\t\x20-\x7e\x80-\xff]"
#: One response head as RFC 9112 writes it (llhttp lets through a control byte in the reason
#: phrase and versions other than 1.0 and 1.1; the rest it refuses itself).
_STRICT_HEAD = re.compile(rb"HTTP/1\.[01] [0-9]{3}(?: " + _FIELD + rb"*)?\r\n(?:" + _TCHAR + rb"+:" + _FIELD
                          + rb"*\r\n)*\r\n")


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing; the reason is in ``proto.error``."""


_NOT_SENT = FRAMING_HEADERS | {"host"}


#: A URL that ``urlsplit`` would take apart as plainly as this pattern does: a lowercase
#: scheme, a host of letters, digits, dots and dashes, a port of digits, and a path and a
#: query of unreserved, sub-delimiter and percent characters (no userinfo, brackets,
#: fragment, backslash, space or control character). Anything else goes to ``urlsplit``.
_PLAIN_URL = re.compile(r"(https?)://([A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?"
                        r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*)?(?:\?([A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*))?")


def split_url(url: str) -> tuple[str, str, str | None, int | None, str, str]:
    """``(scheme, netloc, hostname, port, path, query)`` as ``urlsplit`` gives them (the same
    for every URL: ``tests/unit/test_hostile_parsers.py`` holds the two side by side), in a
    fifth of its time for a plain URL (it parses the netloc again at each ``hostname`` and
    ``port``, about 6 µs a URL: most of preparing a plain monitor)."""
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None:
        scheme, host, port, path, query = plain.groups()
        if port is None or int(port) <= 65535:
            netloc = host if port is None else f"{host}:{port}"
            return scheme, netloc, host.lower(), None if port is None else int(port), path or "", query or ""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.hostname, parts.port, parts.path, parts.query


class _Target:
    """One request target (a URL) with its request bytes prebuilt."""

    __slots__ = ("host", "ip", "method", "port", "request", "sni", "tls", "url")

    def __init__(self, url: str, method: str, headers: dict[str, str], body: str | None,
                 keep_alive: bool, user_agent: bytes, own_host: bool = True) -> None:
        scheme, netloc, host, port, path, query = split_url(url)
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"unsupported URL {url!r}")
        self.url = url
        self.tls = scheme == "https"
        self.host = host
        self.port = port or (443 if self.tls else 80)
        self.ip = is_ip_literal(self.host)
        self.sni = self.host  # an IP is verified against IP SANs; ssl then sends no SNI
        self.method = method
        path = path or "/"
        if query:
            path += "?" + query
        default_port = (self.tls and self.port == 443) or (not self.tls and self.port == 80)
        host_header = netloc.rsplit("@", 1)[-1] if not default_port else (
            f"[{self.host}]" if ":" in self.host else self.host)
        # The monitor's own Host header is honoured towards its URL's origin (a virtual host
        # behind an IP), never towards another origin a redirect leads to.
        own = next((v.strip() for k, v in headers.items() if k.lower() == "host"), None) if own_host else None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {own or host_header}"]
        names = {k.lower() for k in headers}
        if "user-agent" not in names:
            lines.append(f"User-Agent: {user_agent.decode()}")
        if "accept" not in names:
            lines.append("Accept: */*")
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        # (framing headers are refused when a monitor is saved; one stored before that rule is
        # still never sent beside the engine's own)
        lines.extend(f"{k}: {v}" for k, v in headers.items() if k.lower() not in _NOT_SENT)
        payload = body.encode() if body is not None else b""
        if payload or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(payload)}")
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + payload


def url_of_head(head: bytes | None) -> str | None:
    """The ``http`` URL a request's own part names (its request line and ``Host``, as
    ``_Target`` writes them): ``http://`` + Host + the request target; None when ``head`` is
    not such a part. Equal to the monitor's URL only when that URL can be rebuilt from it
    (no custom Host, no userinfo, no fragment, the port as written...): callers compare."""
    if not head:
        return None
    line, _, rest = head.partition(b"\r\n")
    host = rest.split(b"\r\n", 1)[0]
    words = line.split(b" ")
    if len(words) != 3 or not host.startswith(b"Host: "):
        return None
    return "http://" + host[6:].decode("latin-1") + words[1].decode("latin-1")


class PreparedHttp:
    """An ``HttpSpec`` turned into what the hot path needs, built once per monitor change."""

    __slots__ = ("expected", "first", "follow", "headers", "json_test", "keep_alive", "keep_body", "keyword",
                 "max_body", "max_redirects", "spec", "user_agent", "verify")

    def __init__(self, spec: HttpSpec, user_agent: bytes = b"xuptime/0.1") -> None:
        self.spec = spec
        self.user_agent = user_agent
        self.headers = spec.headers
        self.keep_alive = spec.keep_alive
        self.first = _Target(spec.url, spec.method.upper(), self.headers, spec.body, spec.keep_alive, user_agent)
        self.expected = _status_table(tuple(spec.expected_status))
        self.keyword = spec.keyword.encode() if spec.keyword else None
        self.json_test = (JsonTest(spec.json_path, tuple(parse_json_path(spec.json_path)), spec.expected_value,
                                   spec.max_body_bytes) if spec.json_path is not None else None)
        self.keep_body = self.keyword is not None or self.json_test is not None
        self.follow = spec.follow_redirects
        self.max_redirects = spec.max_redirects
        self.max_body = spec.max_body_bytes
        self.verify = spec.verify_tls

    def redirect(self, current: _Target, location: bytes, status: int) -> _Target:
        url = urljoin(current.url, location.decode("latin-1").strip())
        method = current.method
        if status == 303 or (status in (301, 302) and method == "POST"):
            method = "GET"
        body = self.spec.body if method == current.method else None
        same_origin = urlsplit(url).netloc.rsplit("@", 1)[-1] == urlsplit(self.first.url).netloc.rsplit("@", 1)[-1]
        return _Target(url, method, self.headers, body, False, self.user_agent, own_host=same_origin)


@functools.lru_cache(maxsize=1024)
def _status_table(expected: tuple[str, ...]) -> bytes:
    """status -> 1 when accepted: one index per check. Shared by every monitor with the same
    ``expectedStatus`` (a table per monitor was 40% of a monitor's memory)."""
    table = bytearray(1000)
    for lo, hi in parse_status_ranges(list(expected)):
        table[lo: hi + 1] = b"\x01" * (hi - lo + 1)
    return bytes(table)


def prepare(spec: HttpSpec) -> PreparedHttp:
    return PreparedHttp(spec)


class CompiledSpec(NamedTuple):
    """What the compiled engine (``ext._fasthttp.HttpEngine``) needs of a monitor."""

    host: str
    port: int
    request: bytes
    table: bytes
    expected: str  # the expected statuses as text, for a failure's message
    keep_alive: bool
    head: bool
    follow: bool
    max_body: int
    tls: int  # 0: plain TCP; 1: TLS without verification; 2: TLS, verified
    resume: bool
    keyword: bytes | None
    json: JsonTest | None
    max_redirects: int


def compiled_spec(prepared: PreparedHttp) -> CompiledSpec | None:
    """What the compiled engine needs for this monitor; None when only this module can check
    it: TLS to a name that is not ASCII (IDNA is Python's to encode), a keyword of more than
    1024 bytes (1024 characters, some of several bytes)."""
    first = prepared.first
    if ((first.tls and not first.host.isascii())
            or (prepared.keyword is not None and len(prepared.keyword) > 1024)):
        return None
    return CompiledSpec(first.host.strip("[]"), first.port, first.request, prepared.expected,
                        _expected_text(tuple(prepared.spec.expected_status)), prepared.keep_alive,
                        first.method == "HEAD", prepared.follow, prepared.max_body,
                        (2 if prepared.verify else 1) if first.tls else 0, prepared.spec.tls_resume,
                        prepared.keyword, prepared.json_test, prepared.max_redirects)


def tls_settings(ctx: ssl.SSLContext) -> tuple[bytes, int, int, int, int, bool]:
    """What ``HttpEngine.configure_tls`` needs to make its contexts as ``ctx`` was made (this
    checker's, ``ssl.create_default_context()``): the cipher string Python sets on every new
    context (``_ssl._DEFAULT_CIPHERS``: it has no getter), options, protocol bounds, verify
    flags, whether a name may match the subject's common name."""
    return (_ssl._DEFAULT_CIPHERS.encode(), int(ctx.options), int(ctx.minimum_version), int(ctx.maximum_version),
            int(ctx.verify_flags), ctx.hostname_checks_common_name)


@functools.lru_cache(maxsize=1024)
def _expected_text(expected: tuple[str, ...]) -> str:
    return ",".join(expected)  # one string for every monitor with the same statuses


class _Response(asyncio.Protocol):
    """Receives one response at a time; ``begin`` arms it for the next request."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.parser: Any = None
        self.clean = False  # the last response was parsed to its end: the parser can go on
        self.used = False  # a request was sent on this connection
        self.early = b""  # bytes (or a close) that came before the first request was armed
        self.waiter: asyncio.Future[None] | None = None
        self.lost = False
        self.lost_exc: BaseException | None = None
        self.begin(None, 0, False)

    def begin(self, waiter: asyncio.Future[None] | None, max_body: int, keep_body: bool,
              head: bool = False, notify: Callable[[], None] | None = None) -> None:
        """Arm for one response; completion sets ``waiter`` or calls ``notify`` (once). On a
        kept-alive connection whose last response ended cleanly the parser is reused: llhttp
        goes on to the next message by itself."""
        if not self.clean or self.parser is None:
            self.parser = httptools.HttpResponseParser(self)
        self.clean = False
        if waiter is not None or notify is not None:
            self.used = True
        self.notify = notify
        self.head_only = head  # a HEAD response has no body whatever its Content-Length says
        self.waiter = waiter
        self.max_body = max_body
        self.body: bytearray | None = bytearray() if keep_body else None
        self.body_len = 0
        self.head = bytearray()  # raw bytes up to the end of the headers (one scan, no per-header callbacks)
        self.head_at = 0  # where the current response's headers start in ``head`` (after any 1xx)
        self.status = 0
        self.location: bytes | None = None
        self.framed = False  # Content-Length or chunked: the body does not end at EOF
        self.headers_done = False
        self.complete = False
        self.truncated = False
        self.stopped = False  # parsing stopped on purpose (body cap, HEAD), not an error
        self.keep_alive = False
        self.first_byte_ns = 0
        self.error: tuple[ErrorCode, str] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.first_byte_ns:
            self.first_byte_ns = time.perf_counter_ns()
        if (self.waiter is None or self.waiter.done()) and self.notify is None:
            if not self.used and len(self.early) < MAX_HEADER_BYTES:
                # A peer that speaks first (a banner) can beat the checker's coroutine to the
                # loop; those bytes are its answer and are replayed by ``arm_early``.
                self.early += data
            else:
                self.lost = True  # unsolicited bytes on an idle connection: never reuse it
            return
        if self.complete:  # bytes after the response, in a later read: judged already
            self._excess()
            return
        if not self.headers_done:
            self.head += data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish((ErrorCode.BAD_RESPONSE, "unexpected protocol upgrade"))
        except httptools.HttpParserCallbackError:
            if not self.stopped:
                self._finish(self.error or (ErrorCode.INTERNAL, "parser callback failed"))
        except httptools.HttpParserError as exc:
            if self.complete:
                self._excess()  # what follows the response is no response: judged already
            elif self.stopped:
                self._finish(None)
            else:
                self._finish((ErrorCode.BAD_RESPONSE, f"malformed HTTP response: {exc}"))
        # Still in the headers after all of it: the head so far (1xx responses included) is
        # everything buffered, so its size is bounded here, once per read.
        if not self.headers_done and len(self.head) > MAX_HEADER_BYTES and self.error is None:
            self._finish((ErrorCode.BAD_RESPONSE, "response headers larger than 64 KiB"))

    def _excess(self) -> None:
        """Bytes came after the response: it stands as judged, the connection is not reused."""
        self.lost = True
        self.clean = False

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        self.lost_exc = exc
        if (self.waiter is None or self.waiter.done()) and self.notify is None:
            if self.used:
                self.parser = None  # break the parser <-> protocol cycle: freed by refcount
            return
        self.parser = None
        self._on_lost(exc)

    def replay_early(self) -> None:
        """After ``begin`` on a fresh connection: deliver what arrived before it."""
        early, self.early = self.early, b""
        if early:
            self.data_received(early)
        if self.lost and not self._settled():
            self._on_lost(self.lost_exc)

    def _settled(self) -> bool:
        return (self.waiter is None or self.waiter.done()) and self.notify is None

    def _on_lost(self, exc: BaseException | None) -> None:
        reset = isinstance(exc, ConnectionResetError) or (exc is not None and "reset" in str(exc).lower())
        if self.headers_done and not self.framed and not reset:
            self.complete = True  # body delimited by a clean close
            self._finish(None)
        elif reset:
            self._finish((ErrorCode.RESET, "connection reset by peer"))
        elif self.headers_done:
            self._finish((ErrorCode.CLOSED, "connection closed before the body was complete"))
        elif exc is not None:
            self._finish(classify_os_error(exc))
        else:
            self._finish((ErrorCode.CLOSED, "connection closed before a response"))

    # httptools callbacks (no on_header: a Python call per header costs more than one scan)
    def on_message_begin(self) -> None:
        if self.complete:  # a second response in the same read: nobody asked for it
            self._excess()
            self.stopped = True
            raise _Stop

    def on_headers_complete(self) -> None:
        self.status = status = self.parser.get_status_code()
        start = self.head_at
        end = self.head.find(b"\r\n\r\n", start)
        if end < 0:
            end = len(self.head)
        if end + 4 > MAX_HEADER_BYTES:  # (interim heads before it count)
            self.stopped = True
            self._finish((ErrorCode.BAD_RESPONSE, "response headers larger than 64 KiB"))
            raise _Stop
        if status < 100 or _STRICT_HEAD.fullmatch(self.head, start, end + 4) is None:
            self.stopped = True
            self._finish((ErrorCode.BAD_RESPONSE, "malformed HTTP response: "
                          + (f"status {status:03d}" if status < 100 else "invalid status line or header")))
            raise _Stop
        if status < 200:  # interim (1xx): the final response's headers follow
            self.head_at = end + 4
            return
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True
        raw = bytes(self.head[start:end])
        block = raw.lower()
        self.head = bytearray()
        if status in (204, 304) or b"\ncontent-length:" in block or _chunked(block):
            self.framed = True
        if 300 <= status < 400:
            at = block.find(b"\nlocation:")
            if at >= 0:
                stop = block.find(b"\r\n", at + 1)
                self.location = raw[at + 10: stop if stop >= 0 else len(raw)].strip()
        if self.head_only:
            self.complete = self.framed = self.stopped = True
            self._finish(None)
            raise _Stop

    def on_body(self, chunk: bytes) -> None:
        self.body_len += len(chunk)
        body = self.body
        if body is not None and len(body) < self.max_body:
            body += chunk[: self.max_body - len(body)]
        if self.body_len > self.max_body:
            self.truncated = self.stopped = True
            self._finish(None)
            raise _Stop

    def on_message_complete(self) -> None:
        if not self.headers_done:
            return  # an interim 1xx response ended; the same parser goes on to the final one
        self.complete = True
        self.clean = self.error is None
        self._finish(None)

    def _finish(self, error: tuple[ErrorCode, str] | None) -> None:
        if error is not None and self.error is None:
            self.error = error
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        notify = self.notify
        if notify is not None:
            self.notify = None
            notify()


async def _open(target: _Target, ctx: CheckContext, prepared: PreparedHttp) -> tuple[Any, _Response]:
    loop = ctx.env.loop
    host = target.host
    family = 0
    if not target.ip:
        ctx.phase = "dns"
        t = now_us()
        infos = await loop.getaddrinfo(host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        ctx.dns_us = now_us() - t
        family, _, _, _, sockaddr = infos[0]
        host = sockaddr[0]
    else:
        host = host.strip("[]")
    ctx.env.check_address(host)
    ctx.phase = "connect"
    t = now_us()
    transport, proto = await loop.create_connection(_Response, host, target.port, family=family)
    ctx.connect_us = now_us() - t
    if target.tls:
        ctx.phase = "tls"
        t = now_us()
        sslctx = ctx.env.verify_ctx if prepared.verify else ctx.env.noverify_ctx
        try:
            tls_transport = await loop.start_tls(transport, proto, sslctx, server_hostname=target.sni,
                                                 ssl_handshake_timeout=600)
        except BaseException:
            abort_with_reset(transport)
            raise
        if tls_transport is None:
            abort_with_reset(transport)
            raise ConnectionResetError("connection closed during the TLS handshake")
        transport = tls_transport
        proto.transport = transport
        ctx.tls_us = now_us() - t
    return transport, proto


async def _exchange(target: _Target, ctx: CheckContext, prepared: PreparedHttp, reuse: bool) -> _Response:
    """Send one request and wait for its response; errors are left in ``proto.error``."""
    env = ctx.env
    loop = env.loop
    origin = (ctx.account, target.host, target.port, target.tls, prepared.verify)
    conn = env.take_idle(origin) if reuse else None
    for attempt in (0, 1):
        if conn is None:
            transport, proto = await _open(target, ctx, prepared)
            fresh = True
        else:
            transport, proto = conn
            fresh = False
        try:
            waiter = loop.create_future()
            proto.begin(waiter, prepared.max_body, prepared.keep_body, target.method == "HEAD")
            ctx.phase = "waiting for the response"
            sent = time.perf_counter_ns()
            if fresh:
                proto.replay_early()
            if not waiter.done():
                transport.write(target.request)
                await waiter
            if not fresh and attempt == 0 and proto.error is not None and not proto.first_byte_ns:
                abort_with_reset(transport)
                transport = None
                conn = None
                continue  # a stale keep-alive connection: retry once on a new one
            if proto.first_byte_ns:
                ctx.ttfb_us = (proto.first_byte_ns - sent) // 1000
            if (reuse and proto.error is None and proto.complete and not proto.truncated
                    and proto.keep_alive and not proto.lost):
                proto.waiter = None
                env.give_idle(origin, (transport, proto))
                transport = None
            return proto
        finally:
            if transport is not None:
                abort_with_reset(transport)
    raise AssertionError("unreachable")


def _evaluate(prepared: PreparedHttp, ctx: CheckContext, proto: _Response, target: _Target,
              hops: int) -> CheckResult | _Target:
    """The result of a response, or the next target when a redirect is to be followed."""
    if proto.error is not None:
        code, message = proto.error
        return fail(ctx, code, message, proto.status)
    status = proto.status
    if prepared.follow and status in _REDIRECTS and proto.location:
        if hops + 1 > prepared.max_redirects:
            return fail(ctx, ErrorCode.REDIRECTS, f"more than {prepared.max_redirects} redirects", status)
        try:
            return prepared.redirect(target, proto.location, status)
        except ValueError:
            return fail(ctx, ErrorCode.BAD_RESPONSE, "redirect to an unsupported location", status)
    if not (0 <= status < 1000 and prepared.expected[status]):
        expected = ",".join(prepared.spec.expected_status)
        return fail(ctx, ErrorCode.STATUS, f"status {status}, expected {expected}", status)
    if prepared.keyword is not None and prepared.keyword not in (proto.body or b""):
        return fail(ctx, ErrorCode.KEYWORD, "keyword not found in the response body", status)
    if prepared.json_test is not None:
        problem = json_problem(prepared.json_test, proto.body or b"", proto.truncated)
        if problem is not None:
            return fail(ctx, ErrorCode.JSON, problem, status)
    return ctx.result(True, status)


def _chunked(block: bytes) -> bool:
    """The (lowercased) header block frames its body by chunks: the last transfer coding is
    ``chunked``. Any other coding last means the body ends at the close."""
    if b"\ntransfer-encoding:" not in block:
        return False
    codings = [coding.strip() for line in block.split(b"\r\n")[1:] if line.startswith(b"transfer-encoding:")
               for coding in line[18:].split(b",")]
    return bool(codings) and codings[-1] == b"chunked"


def _json_text(value: Any) -> str:
    """A JSON value as ``expectedValue`` is written: strings bare, the rest as JSON."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


class JsonTest(NamedTuple):
    """A monitor's ``jsonPath``/``expectedValue`` test, as both paths judge a body by it."""

    path: str  # as written, for messages
    steps: tuple[str | int, ...]
    expected: str | None
    max_body: int


def json_problem(test: JsonTest, body: bytes, truncated: bool) -> str | None:
    """Why ``body`` (the first ``maxBodyBytes``; ``truncated``: there was more) fails the
    test, or None if it passes. The compiled path calls it with the body it gathered."""
    if truncated:
        return f"JSON: the body is larger than maxBodyBytes ({test.max_body})"
    try:
        value: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "JSON: the body is not JSON"
    path = test.path
    for step in test.steps:
        in_list = isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value)
        in_object = isinstance(step, str) and isinstance(value, dict) and step in value
        if not (in_list or in_object):
            return f"JSON: {path} not found"
        value = value[step]
    expected = test.expected
    if expected is None:
        return f"JSON: {path} is null" if value is None else None
    actual = _json_text(value)
    if actual != expected:
        shown = actual if len(actual) <= 80 else actual[:77] + "..."
        return f"JSON: {path} is {shown!r}, expected {expected!r}"
    return None


async def check(prepared: PreparedHttp, ctx: CheckContext) -> CheckResult:
    """Run one HTTP check; every failure is a result, never an exception (but cancellation)."""
    return await _check_from(prepared, ctx, prepared.first, 0)


async def _check_from(prepared: PreparedHttp, ctx: CheckContext, target: _Target, hops: int) -> CheckResult:
    try:
        while True:
            if hops:  # (the phases are the last hop's: none of an earlier hop's is left)
                ctx.dns_us = ctx.connect_us = ctx.tls_us = ctx.ttfb_us = -1
            proto = await _exchange(target, ctx, prepared, prepared.keep_alive and hops == 0)
            outcome = _evaluate(prepared, ctx, proto, target, hops)
            if isinstance(outcome, CheckResult):
                return outcome
            target, hops = outcome, hops + 1
    except (OSError, ValueError) as exc:
        code, message = classify_os_error(exc)
        return fail(ctx, code, message)


def start(prepared: PreparedHttp, ctx: CheckContext, done: Callable[[CheckResult], None],
          timeout: float) -> _FastCheck | None:
    """Start a keep-alive check on an idle pooled connection without a task or coroutine.

    Returns None when that is not possible (not keep-alive, no idle connection); the caller
    then runs ``check``. Otherwise ``done(result)`` is called exactly once, within
    ``timeout`` seconds, unless the returned job is cancelled first. A stale connection or a
    redirect continues on the ``check`` path inside the job, under the same deadline.
    """
    if not prepared.keep_alive:
        return None
    target = prepared.first
    origin = (ctx.account, target.host, target.port, target.tls, prepared.verify)
    conn = ctx.env.take_idle(origin)
    if conn is None:
        return None
    return _FastCheck(prepared, ctx, done, timeout, origin, conn)


class _FastCheck:
    """One in-flight fast-path check; ``cancel()`` drops it without calling ``done``."""

    __slots__ = ("ctx", "done", "origin", "prepared", "proto", "sent", "task", "timeout", "timer", "transport")

    def __init__(self, prepared: PreparedHttp, ctx: CheckContext, done: Callable[[CheckResult], None],
                 timeout: float, origin: tuple[int, str, int, bool, bool], conn: tuple[Any, _Response]) -> None:
        self.prepared = prepared
        self.ctx = ctx
        self.done: Callable[[CheckResult], None] | None = done
        self.timeout = timeout
        self.origin = origin
        self.transport, self.proto = conn
        self.task: asyncio.Task[CheckResult] | None = None
        loop = ctx.env.loop
        self.timer = loop.call_later(timeout, self.expire)
        target = prepared.first
        self.proto.begin(None, prepared.max_body, prepared.keep_body, target.method == "HEAD",
                         self._on_response)
        ctx.phase = "waiting for the response"
        self.sent = 0
        ctx.env.send_soon(self)

    def send(self) -> None:
        transport = self.transport
        if transport is not None and self.done is not None:
            self.sent = time.perf_counter_ns()
            transport.write(self.prepared.first.request)

    def _on_response(self) -> None:
        proto, ctx, prepared = self.proto, self.ctx, self.prepared
        transport, self.transport = self.transport, None
        if proto.error is not None and not proto.first_byte_ns:
            abort_with_reset(transport)  # a stale pooled connection: go again on a fresh one
            self._continue(prepared.first, 0)
            return
        if self.sent:
            ctx.ttfb_us = (proto.first_byte_ns - self.sent) // 1000
        if proto.error is None and proto.complete and not proto.truncated and proto.keep_alive and not proto.lost:
            ctx.env.give_idle(self.origin, (transport, proto))
        else:
            abort_with_reset(transport)
        outcome = _evaluate(prepared, ctx, proto, prepared.first, 0)
        if isinstance(outcome, CheckResult):
            self._deliver(outcome)
        else:
            self._continue(outcome, 1)

    def _continue(self, target: _Target, hops: int) -> None:
        self.task = self.ctx.env.loop.create_task(_check_from(self.prepared, self.ctx, target, hops))
        self.task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[CheckResult]) -> None:
        if not task.cancelled() and self.done is not None:
            exc = task.exception()
            if exc is None:
                self._deliver(task.result())
            else:
                self._deliver(self.ctx.result(False, 0, ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}"))

    def _deliver(self, result: CheckResult) -> None:
        done, self.done = self.done, None
        self.timer.cancel()
        if done is not None:
            done(result)

    def expire(self) -> None:
        """The deadline passed: drop the connection and report a timeout."""
        self._drop()
        ctx = self.ctx
        self._deliver(ctx.result(False, 0, ErrorCode.TIMEOUT, f"timed out after {self.timeout:g} s ({ctx.phase})"))

    def cancel(self) -> None:
        self.done = None
        self.timer.cancel()
        self._drop()

    def _drop(self) -> None:
        self.proto.notify = None
        if self.transport is not None:
            abort_with_reset(self.transport)
            self.transport = None
        if self.task is not None:
            self.task.cancel()
