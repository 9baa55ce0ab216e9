"""HTTPS on the compiled path (``ext._fasthttp`` through OpenSSL) against the general checker.

As in ``test_compiled_http``: one scheduler on the real clock runs a monitor per server below
for a few seconds, then the same with the compiled path off; each monitor must get the same
outcomes both ways (ok, status, error code and text), the compiled path must have carried
those meant for it, and the TLS phase must be measured. The servers: good certificates (by
name, by IP SAN, kept alive or a connection a check, with and without session resumption),
self-signed, expired, issued for another name or by a CA nobody trusts, a server that speaks
only TLS 1.0, ones that stall or reset mid-handshake, a plain HTTP port, and redirects: within
a server, to the same server by another name (verified against the name it is sent to), and
from plain HTTP to HTTPS.

The trust store is the system's, extended the way users extend it: ``SSL_CERT_FILE`` names
the test CA's bundle, read by both paths' contexts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
import struct
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import trustme
import uvloop

from core.engine.scheduler import Scheduler
from core.models import ErrorCode, Monitor, parse_monitor
from tests.servers import (
    Handler,
    Peer,
    QuietHandler,
    ThreadedHttp,
    http_handler,
    read_request,
    redirect_handler,
    respond,
    self_signed_context,
)

NOW = dt.datetime.now(dt.UTC)


def _server(cert: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


def _redirect_to(url: Callable[[int], str]) -> Handler:
    """``GET /start`` is a 302 to ``url(this server's port)``; anything else a 200 (keep-alive)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        while True:
            request = await read_request(reader)
            moved = request.startswith(b"GET /start ")
            writer.write(respond(302, b"", {"Location": url(port)}, "Found") if moved else respond(200, b"landed"))
            await writer.drain()
            if b"connection: close" in request.lower():
                return

    return handle


class _Ok(QuietHandler):
    def do_GET(self) -> None:
        self.reply(200, b"hello")


class _Tls10Only:
    """A server that speaks only TLS 1.0, handshaking in blocking OpenSSL calls (asyncio's
    server side drops the connection without the alert OpenSSL writes here); ``Peer``'s
    interface."""

    def __init__(self, cert: trustme.LeafCert) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.ctx.minimum_version = self.ctx.maximum_version = ssl.TLSVersion.TLSv1
        self.ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        cert.configure_cert(self.ctx)
        self.connections = 0
        self.server: ThreadedHttp | None = None

    async def __aenter__(self) -> _Tls10Only:
        self.server = ThreadedHttp(_Ok)
        self.server.server.socket = self.ctx.wrap_socket(self.server.server.socket, server_side=True)
        self.port = self.server.server.server_address[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await asyncio.to_thread(self.server.close)

    def url(self, path: str = "/", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


def _noting_resumption(handler: Any, reused: list[bool]) -> Any:
    """``handler``, noting for each connection whether its TLS session was resumed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reused.append(writer.get_extra_info("ssl_object").session_reused)
        await handler(reader, writer)

    return handle


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Takes the connection, answers nothing (a ClientHello waits for ever)."""
    await asyncio.sleep(30)


async def _half_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the ClientHello, starts a ServerHello record, then stalls mid-handshake."""
    await reader.read(1)
    writer.write(b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03" + b"\x11" * 16)
    await writer.drain()
    await asyncio.sleep(30)


async def _reset_in_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _close_in_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.close()


async def _plain_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A plain HTTP server that answers the ClientHello's bytes with a 400."""
    await reader.read(1)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ca, stranger = trustme.CA(), trustme.CA()
    bundle = tmp_path_factory.mktemp("trust") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return {
        "bundle": bundle,
        "ca": ca,
        "good": ca.issue_cert("localhost", "127.0.0.1"),
        "expired": ca.issue_cert("localhost", "127.0.0.1", not_before=NOW - dt.timedelta(days=30),
                                 not_after=NOW - dt.timedelta(days=1)),
        "other_name": ca.issue_cert("example.org"),
        "stranger": stranger.issue_cert("localhost", "127.0.0.1"),
        "name_only": ca.issue_cert("localhost"),
    }


def _cases(pki: dict[str, Any]) -> dict[str, tuple[Any, ssl.SSLContext | None, dict[str, Any], str, bool]]:
    """name -> (handler, server TLS context, monitor fields, URL host, carried on the compiled path)."""
    good = _server(pki["good"])
    return {
        "keep_alive": (http_handler(), good, {"keepAlive": True}, "127.0.0.1", True),
        "new_connection": (_noting_resumption(http_handler(), pki["resumed"]), good, {}, "127.0.0.1", True),
        "no_resume": (_noting_resumption(http_handler(), pki["not_resumed"]), good, {"tlsResume": False},
                      "127.0.0.1", True),
        "by_name": (http_handler(), good, {}, "localhost", True),
        "status": (http_handler(503), good, {"keepAlive": True}, "127.0.0.1", True),
        "head": (http_handler(), good, {"method": "HEAD"}, "127.0.0.1", True),
        "self_signed": (http_handler(), self_signed_context(), {}, "localhost", True),
        "self_signed_unverified": (http_handler(), self_signed_context(), {"verifyTls": False}, "localhost", True),
        "expired": (http_handler(), _server(pki["expired"]), {}, "localhost", True),
        "other_name": (http_handler(), _server(pki["other_name"]), {}, "localhost", True),
        "other_ip": (http_handler(), _server(pki["other_name"]), {}, "127.0.0.1", True),
        "stranger": (http_handler(), _server(pki["stranger"]), {}, "127.0.0.1", True),
        "tls10_only": (_Tls10Only(pki["good"]), None, {}, "127.0.0.1", True),
        "silent": (_silent, None, {"timeout": 0.3}, "127.0.0.1", True),
        "half_hello": (_half_hello, None, {"timeout": 0.3}, "127.0.0.1", True),
        "reset_in_hello": (_reset_in_hello, None, {}, "127.0.0.1", True),
        "close_in_hello": (_close_in_hello, None, {}, "127.0.0.1", True),
        "plain_port": (_plain_banner, None, {}, "127.0.0.1", True),
        "redirect": (redirect_handler, good, {"keepAlive": True}, "127.0.0.1", True),
        # to the same server by name: another origin, looked up (that check handed over) and verified by its name
        "redirect_by_name": (_redirect_to(lambda port: f"https://localhost:{port}/final"), good, {}, "127.0.0.1",
                             True),
        # from a name its certificate holds to an address it does not
        "redirect_by_ip": (_redirect_to(lambda port: f"https://127.0.0.1:{port}/final"), _server(pki["name_only"]),
                           {}, "localhost", True),
    }


def _monitor(mid: int, url: str, fields: dict[str, Any]) -> Monitor:
    m = parse_monitor({"name": f"m{mid}", "type": "http", "url": url, "interval": 1, **fields})
    m.id = mid
    return m


async def _run(cases: dict[str, Any], compiled: bool, seconds: float, good_cert: trustme.LeafCert
               ) -> tuple[dict[str, list[tuple]], dict[str, list[int]], Scheduler]:
    rows: dict[int, list[tuple]] = {}
    tls_us: dict[int, list[int]] = {}

    def sink(batch: dict[str, Any], _: list[Any]) -> None:
        errors = dict(zip(batch["error_rows"].tolist(), batch["error_texts"], strict=True))
        for i, mid in enumerate(batch["monitor_id"].tolist()):
            rows.setdefault(mid, []).append((bool(batch["ok"][i]), int(batch["status_code"][i]),
                                             int(batch["error_code"][i]), errors.get(i)))
            tls_us.setdefault(mid, []).append(int(batch["tls_us"][i]))

    s = Scheduler(sink, compiled_http=compiled)
    peers = {name: handler if isinstance(handler, _Tls10Only) else Peer(handler, ctx)
             for name, (handler, ctx, _, _, _) in cases.items()}
    # A plain HTTP server that sends to the HTTPS one kept alive ("from_http"), and an HTTPS
    # one that sends to the plain one ("to_http").
    plain = Peer(_redirect_to(lambda _: peers["keep_alive"].url("/final", scheme="https")))
    back = Peer(_redirect_to(lambda _: plain.url("/final")), _server(good_cert))
    async with contextlib.AsyncExitStack() as serving:
        for peer in (*peers.values(), plain, back):
            await serving.enter_async_context(peer)
        for mid, (name, (_, _, fields, host, _)) in enumerate(cases.items(), start=1):
            path = "/start" if name.startswith("redirect") else "/"
            s.upsert(_monitor(mid, peers[name].url(path, scheme="https", host=host), fields))
        s.upsert(_monitor(len(cases) + 1, plain.url("/start"), {}))
        s.upsert(_monitor(len(cases) + 2, back.url("/start", scheme="https"), {}))
        s.start(asyncio.get_running_loop())
        await asyncio.sleep(seconds)
        await s.stop()
    names = [*cases, "from_http", "to_http"]
    return ({name: rows.get(mid, []) for mid, name in enumerate(names, start=1)},
            {name: tls_us.get(mid, []) for mid, name in enumerate(names, start=1)}, s)


def test_https_on_the_compiled_path_gives_the_general_checkers_results(pki: dict[str, Any],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["bundle"]))
    pki["resumed"], pki["not_resumed"] = [], []
    cases = _cases(pki)

    async def main() -> None:
        fast, fast_tls, s = await _run(cases, True, 3.6, pki["good"])
        n = len(pki["resumed"])  # connections the compiled run made to "new_connection"
        assert s.fast is not None
        assert [name for mid, name in enumerate(cases, start=1) if s.fast.takes(mid)] == [
            name for name, case in cases.items() if case[4]]
        assert s.fast.takes(len(cases) + 1) and s.fast.takes(len(cases) + 2)  # ("from_http", "to_http")
        assert s.fast.fallbacks == sum(1 for case in cases.values() if not case[4])
        assert s.fast.detours == 1  # ("redirect_by_name": its first check, while "localhost" was looked up)
        general, general_tls, g = await _run(cases, False, 3.6, pki["good"])
        assert g.fast is None
        for name in [*cases, "from_http", "to_http"]:
            got, want = fast[name], general[name]
            assert len(got) >= 3 and len(want) >= 3, (name, got, want)
            assert set(got) == set(want), (name, got, want)
        ok = (True, 200, 0, None)
        for name in ("keep_alive", "new_connection", "no_resume", "by_name", "head", "self_signed_unverified",
                     "redirect", "redirect_by_name", "from_http", "to_http"):
            assert set(fast[name]) == {ok}, name
        assert set(fast["redirect_by_ip"]) == {
            (False, 0, ErrorCode.TLS, "TLS: IP address mismatch, certificate is not valid for '127.0.0.1'.")}
        assert set(fast["status"]) == {(False, 503, ErrorCode.STATUS, "status 503, expected 200-299")}
        tls = ErrorCode.TLS
        assert set(fast["self_signed"]) == {(False, 0, tls, "TLS: self-signed certificate")}
        assert set(fast["expired"]) == {(False, 0, tls, "TLS: certificate has expired")}
        assert set(fast["other_name"]) == {
            (False, 0, tls, "TLS: Hostname mismatch, certificate is not valid for 'localhost'.")}
        assert set(fast["other_ip"]) == {
            (False, 0, tls, "TLS: IP address mismatch, certificate is not valid for '127.0.0.1'.")}
        assert set(fast["stranger"]) == {(False, 0, tls, "TLS: unable to get local issuer certificate")}
        assert set(fast["tls10_only"]) == {(False, 0, tls, "TLS: TLSV1_ALERT_PROTOCOL_VERSION")}
        for name in ("silent", "half_hello"):
            assert set(fast[name]) == {(False, 0, ErrorCode.TIMEOUT, "timed out after 0.3 s (tls)")}, name
        for name in ("reset_in_hello", "close_in_hello"):
            assert set(fast[name]) == {(False, 0, ErrorCode.RESET, "connection reset by peer")}, name
        assert set(fast["plain_port"]) == {(False, 0, tls, "TLS: WRONG_VERSION_NUMBER")}
        # The handshake is timed: every check on a new connection, the first of a kept one.
        for name in ("new_connection", "no_resume", "by_name"):
            assert all(t >= 0 for t in fast_tls[name]) and all(t >= 0 for t in general_tls[name]), name
        assert fast_tls["keep_alive"][0] >= 0 and -1 in fast_tls["keep_alive"][1:]
        # A redirected check's phases are its last hop's, both ways: a handshake there or none.
        for tls_us in (fast_tls, general_tls):
            assert all(t >= 0 for t in tls_us["from_http"]) and set(tls_us["to_http"]) == {-1}, tls_us
        # Sessions are resumed where asked (every connection after the first), never where not
        # (as the servers saw it), and the general checker never resumes.
        resumed, not_resumed = pki["resumed"], pki["not_resumed"]
        assert n >= 3 and resumed[:n] == [False] + [True] * (n - 1), resumed
        assert len(resumed) >= n + 3 and not any(resumed[n:]), resumed
        assert len(not_resumed) >= 6 and not any(not_resumed)
        assert s.fast.handshakes > s.fast.resumed >= len(fast["new_connection"]) - 1
        # No chain was taken as verified: the servers gave sessions, and "no_resume" (whose
        # chain is the same every time) takes no shortcut.
        assert s.fast.verify_skipped == 0

    uvloop.run(main())


@pytest.mark.parametrize("tickets", [True, False], ids=["resumed", "same-chain"])
def test_no_shortcut_outlives_the_certificate(pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                               tickets: bool) -> None:
    """A resumed handshake verifies nothing, and a full one that meets the chain its origin
    verified last skips verifying it again; neither outlives the certificate: once it has
    expired, the next check makes a full handshake and reports the expiry, as the general
    checker's would. (The certificate expires a few seconds into the run; the server, with
    tickets or without, would go on accepting the session or the handshake.)"""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["bundle"]))
    short = pki["ca"].issue_cert("127.0.0.1", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3))
    server = _server(short)
    if not tickets:
        server.options |= ssl.OP_NO_TICKET
        server.num_tickets = 0

    async def main() -> None:
        rows: list[tuple[int, bool, int]] = []

        def sink(batch: dict[str, Any], _: list[Any]) -> None:
            rows.extend(zip(batch["ts_us"].tolist(), batch["ok"].tolist(), batch["error_code"].tolist(), strict=True))

        async with Peer(http_handler(), server) as peer:
            s = Scheduler(sink, compiled_http=True)
            s.upsert(_monitor(1, peer.url(scheme="https"), {}))
            s.start(asyncio.get_running_loop())
            await asyncio.sleep(6)
            await s.stop()
            if tickets:
                assert s.fast.resumed >= 1 and s.fast.verify_skipped == 0
            else:
                assert s.fast.resumed == 0 and s.fast.verify_skipped >= 1
        rows.sort()
        assert rows[0][1:] == (True, 0), rows
        assert [(ok, code) for _, ok, code in rows[-2:]] == [(False, ErrorCode.TLS)] * 2, rows

    uvloop.run(main())


def test_a_monitor_without_resumption_verifies_every_handshake(pki: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``tlsResume: false``: no session offered and no chain taken as verified, on a server
    whose chain never changes (and that gives no sessions)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["bundle"]))
    server = _server(pki["good"])
    server.options |= ssl.OP_NO_TICKET
    server.num_tickets = 0

    async def main() -> None:
        oks: list[bool] = []
        async with Peer(http_handler(), server) as peer:
            s = Scheduler(lambda batch, _: oks.extend(batch["ok"].tolist()), compiled_http=True)
            s.upsert(_monitor(1, peer.url(scheme="https"), {"tlsResume": False}))
            s.start(asyncio.get_running_loop())
            await asyncio.sleep(3.3)
            await s.stop()
            assert len(oks) >= 3 and all(oks) and s.fast.handshakes >= 3
            assert s.fast.resumed == 0 and s.fast.verify_skipped == 0

    uvloop.run(main())


def test_kept_sessions_are_capped_the_longest_unused_dropped_first(pki: dict[str, Any]) -> None:
    """Past ``max_sessions`` the session given or offered longest ago is dropped, whatever its
    origin: its next check makes a full handshake, the others still resume."""
    import time

    import numpy as np

    from core.checkers.http import compiled_spec, prepare, tls_settings
    from core.engine.scheduler import raw_sockaddr
    from ext import HttpEngine, ResultBuffer

    async def main() -> None:
        loop = asyncio.get_running_loop()
        buffer = ResultBuffer(64)
        engine = HttpEngine(buffer, lambda count, notable: None, lambda mid, for_good: None)
        engine.set_clock(time.monotonic_ns(), np.zeros(10, dtype=np.int64))
        engine.configure_tls(*tls_settings(ssl.create_default_context()), cafile=str(pki["bundle"]))
        engine.max_sessions = 3
        loop.add_reader(engine.fileno(), engine.on_ready)

        async def check(mid: int) -> bool:
            """Whether the check resumed a session."""
            resumed = engine.resumed
            assert engine.start(mid) == 1
            while engine.inflight:
                await asyncio.sleep(0.002)
            return engine.resumed > resumed

        async with Peer(http_handler(), _server(pki["good"])) as peer:
            origins = {}
            for mid in range(1, 6):  # five origins of one server (as five accounts would have)
                origins[mid] = origin = engine.origin(("127.0.0.1", peer.port, mid))
                engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", peer.port)))
                engine.set_tls(origin, "127.0.0.1", True, True)
                spec = compiled_spec(prepare(_monitor(mid, peer.url(scheme="https"), {}).spec))
                assert spec is not None
                engine.add(mid, origin, spec.request, spec.table, spec.expected, 2.0, False, False, True, spec.max_body)
            for mid in range(1, 6):
                assert not await check(mid)
            await asyncio.sleep(0.05)  # (TLS 1.3 tickets come after the handshake)
            assert engine.sessions == 3
            assert [engine.has_session(origins[mid]) for mid in range(1, 6)] == [False, False, True, True, True]
            assert await check(3)  # offered: now the most recent
            assert not await check(1)  # a full handshake; its session drops 4's, the longest unused
            await asyncio.sleep(0.05)
            assert [engine.has_session(origins[mid]) for mid in range(1, 6)] == [True, False, True, False, True]
            assert await check(5) and not await check(4)  # (4's session drops 3's)
            await asyncio.sleep(0.05)
            engine.forget_session(origins[1])
            assert engine.sessions == 2
            assert [engine.has_session(origins[mid]) for mid in range(1, 6)] == [False, False, False, True, True]
        loop.remove_reader(engine.fileno())
        engine.close()
        assert buffer.flush()["ok"].all()

    uvloop.run(main())


def test_the_session_cap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XUPTIME_TLS_SESSIONS", "250")
    assert Scheduler(lambda batch, _: None, compiled_http=True).fast.max_sessions == 250
    monkeypatch.setenv("XUPTIME_TLS_SESSIONS", "lots")  # (not a count: the default, with a warning)
    assert Scheduler(lambda batch, _: None, compiled_http=True).fast.max_sessions == 100_000
