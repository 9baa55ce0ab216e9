"""HTTP and TCP checkers against real loopback servers, healthy and misbehaving.

Every failure must come back as a result with the right error code, never an exception.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import threading
from typing import Any

import pytest
import trustme
import uvloop

from core.checkers import REGISTRY, CheckContext, Env
from core.engine.scheduler import run_with_deadline
from core.models import CheckResult, ErrorCode, parse_monitor
from tests.integration.test_serve import closed_port
from tests.servers import FakeDns, Peer, http_handler, read_request, respond, self_signed_context


def run(coro: Any) -> Any:
    return uvloop.run(coro)


async def check(env: Env, data: dict[str, Any], timeout: float = 2.0, monitor_id: int = 1) -> CheckResult:
    monitor = parse_monitor({"name": "t", **data})
    checker = REGISTRY[monitor.type]
    return await run_with_deadline(checker, checker.prepare(monitor.spec), CheckContext(env, monitor_id), timeout)


def http(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "http", "url": url, **extra}


def time_wait_count(port: int) -> int:
    """Sockets in TIME_WAIT involving ``port`` on this machine (from /proc/net/tcp)."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            ports = {int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)}
            if state == "06" and port in ports:
                count += 1
    return count


# healthy ---------------------------------------------------------------------------------

def test_healthy_server_with_phases_and_keyword() -> None:
    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        requests: list[bytes] = []
        async with Peer(http_handler(body=b"<h1>all systems go</h1>", record=requests)) as peer:
            r = await check(env, http(peer.url("/health?x=1"), keyword="systems go"))
            assert r.ok and r.status_code == 200 and r.error_code == ErrorCode.OK
            assert r.connect_us >= 0 and r.ttfb_us >= 0 and r.latency_us >= r.ttfb_us
            assert r.dns_us == -1 and r.tls_us == -1  # IP literal, plain HTTP
            assert requests[0].startswith(b"GET /health?x=1 HTTP/1.1\r\n")
            assert f"Host: 127.0.0.1:{peer.port}".encode() in requests[0]

            r = await check(env, http(peer.url(), keyword="absent"))
            assert not r.ok and r.error_code == ErrorCode.KEYWORD and r.status_code == 200

    run(main())


def test_post_with_headers_and_body_and_head() -> None:
    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        requests: list[bytes] = []
        async with Peer(http_handler(record=requests)) as peer:
            r = await check(env, http(peer.url("/hook"), method="POST", body='{"a":1}',
                                      headers={"X-Token": "abc"}))
            assert r.ok
            assert requests[-1].startswith(b"POST /hook HTTP/1.1\r\n")
            assert b"X-Token: abc\r\n" in requests[-1] and requests[-1].endswith(b'{"a":1}')
            r = await check(env, http(peer.url(), method="HEAD", keepAlive=True))
            assert r.ok and r.status_code == 200
            r = await check(env, http(peer.url(), method="HEAD", keepAlive=True))  # reused after a HEAD
            assert r.ok

    run(main())


def test_expected_status_ranges() -> None:
    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(http_handler(status=503, body=b"maintenance")) as peer:
            r = await check(env, http(peer.url()))
            assert not r.ok and r.error_code == ErrorCode.STATUS and r.status_code == 503
            assert "503" in (r.error or "")
            r = await check(env, http(peer.url(), expectedStatus=["200-299", "5xx"]))
            assert r.ok and r.status_code == 503

    run(main())


def test_interim_1xx_responses_are_skipped() -> None:
    async def early_hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)  # the final response arrives in a later segment
        writer.write(respond(302, b"", {"Location": "/Final?Case=Kept", "Connection": "close"}, "Found"))
        await writer.drain()

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        requests: list[bytes] = []
        async with Peer(early_hints) as peer:
            r = await check(env, http(peer.url(), followRedirects=False))
            assert not r.ok and r.status_code == 302 and r.error_code == ErrorCode.STATUS
        async with Peer(http_handler(record=requests)) as final:
            async def one_chunk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await read_request(reader)  # 100 Continue and a redirect in one segment
                location = f"http://127.0.0.1:{final.port}/Final?Case=Kept"
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n"
                             + respond(301, b"", {"Location": location, "Connection": "close"}))
                await writer.drain()

            async with Peer(one_chunk) as peer:
                r = await check(env, http(peer.url()))
                assert r.ok and r.status_code == 200
                assert requests[-1].startswith(b"GET /Final?Case=Kept HTTP/1.1")  # Location case kept

    run(main())


def test_chunked_and_eof_delimited_bodies() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        await writer.drain()

    async def until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nbody until close")
        await writer.drain()
        writer.close()

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(chunked) as a, Peer(until_eof) as b:
            assert (await check(env, http(a.url(), keyword="hello world"))).ok
            assert (await check(env, http(b.url(), keyword="until close"))).ok

    run(main())


# misbehaving -----------------------------------------------------------------------------

def test_server_that_hangs_times_out_naming_the_phase() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(hang) as peer:
            r = await check(env, http(peer.url()), timeout=0.3)
            assert not r.ok and r.error_code == ErrorCode.TIMEOUT
            assert "response" in (r.error or "") and r.connect_us >= 0

    run(main())


def test_server_that_resets() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        import socket
        import struct

        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(reset) as peer:
            r = await check(env, http(peer.url()))
            assert not r.ok and r.error_code == ErrorCode.RESET

    run(main())


def test_closed_before_response() -> None:
    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(close) as peer:
            r = await check(env, http(peer.url()))
            assert not r.ok and r.error_code == ErrorCode.CLOSED

    run(main())


@pytest.mark.parametrize("payload", [
    b"SSH-2.0-OpenSSH_9.2\r\n",
    b"HTTP/1.1 abc\r\n\r\n",
    b"\x00\xff\x10garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
])
def test_garbage_is_bad_response(payload: bytes) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(payload)
        await writer.drain()
        await asyncio.sleep(5)

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(garbage) as peer:
            r = await check(env, http(peer.url()))
            assert not r.ok and r.error_code == ErrorCode.BAD_RESPONSE, r

    run(main())


class ThreadedPeer:
    """A blocking server in its own thread: it can write the instant it accepts, racing the
    client's event loop (a peer on the same loop never can)."""

    def __init__(self, on_accept: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.on_accept = on_accept
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.on_accept(conn)

    def __enter__(self) -> ThreadedPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def _banner_then_close(conn: socket.socket) -> None:
    with conn:
        conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n")


def _close_at_once(conn: socket.socket) -> None:
    conn.close()


def test_server_that_speaks_first_is_bad_response() -> None:
    """Bytes that arrive before the request is written (a banner) are the answer, not noise."""

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        with ThreadedPeer(_banner_then_close) as peer:
            for _ in range(50):  # the race is per connection: try it many times
                r = await check(env, http(f"http://127.0.0.1:{peer.port}/"), timeout=2)
                assert not r.ok and r.error_code == ErrorCode.BAD_RESPONSE, r

    run(main())


def test_server_that_closes_at_once_is_closed_not_timeout() -> None:
    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        with ThreadedPeer(_close_at_once) as peer:
            for _ in range(50):
                r = await check(env, http(f"http://127.0.0.1:{peer.port}/"), timeout=2)
                assert not r.ok and r.error_code in (ErrorCode.CLOSED, ErrorCode.RESET), r

    run(main())


def test_oversized_headers_are_bad_response() -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(200):
            writer.write(f"X-Filler-{i}: {'a' * 1000}\r\n".encode())
        writer.write(b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(huge) as peer:
            r = await check(env, http(peer.url()))
            assert not r.ok and r.error_code == ErrorCode.BAD_RESPONSE and "64 KiB" in (r.error or "")

    run(main())


def test_slowloris_trickle_times_out() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(trickle) as peer:
            r = await check(env, http(peer.url()), timeout=0.4)
            assert not r.ok and r.error_code == ErrorCode.TIMEOUT and "response" in (r.error or "")

    run(main())


def test_redirects_followed_and_loops_stopped() -> None:
    async def redirector(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        path = request.split(b" ")[1]
        if path == b"/loop":
            writer.write(respond(302, b"", {"Location": "/loop", "Connection": "close"}, "Found"))
        elif path == b"/start":
            writer.write(respond(301, b"", {"Location": "/final", "Connection": "close"}, "Moved"))
        else:
            writer.write(respond(200, b"landed", {"Connection": "close"}))
        await writer.drain()

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(redirector) as peer:
            r = await check(env, http(peer.url("/start"), keyword="landed"))
            assert r.ok and r.status_code == 200
            r = await check(env, http(peer.url("/start"), followRedirects=False))
            assert not r.ok and r.error_code == ErrorCode.STATUS and r.status_code == 301
            r = await check(env, http(peer.url("/loop"), maxRedirects=5))
            assert not r.ok and r.error_code == ErrorCode.REDIRECTS

    run(main())


def test_unresolvable_and_refused() -> None:
    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        r = await check(env, http("http://no-such-host.invalid/"))
        assert not r.ok and r.error_code == ErrorCode.DNS
        async with Peer(http_handler()) as peer:
            port = peer.port
        r = await check(env, http(f"http://127.0.0.1:{port}/"))
        assert not r.ok and r.error_code == ErrorCode.REFUSED

    run(main())


def test_body_cap_stops_reading() -> None:
    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(http_handler(body=b"x" * 500_000 + b"needle")) as peer:
            r = await check(env, http(peer.url(), keyword="needle", maxBodyBytes=1000))
            assert not r.ok and r.error_code == ErrorCode.KEYWORD
            r = await check(env, http(peer.url(), maxBodyBytes=1000))
            assert r.ok

    run(main())


# TLS -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_ctx(cert: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


def test_tls_valid_self_signed_and_expired(ca: trustme.CA) -> None:
    good = ca.issue_cert("localhost", "127.0.0.1")
    expired = ca.issue_cert("localhost", not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
                            not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(http_handler(), self_signed_context()) as peer:
            r = await check(env, http(peer.url(scheme="https", host="localhost")))
            assert not r.ok and r.error_code == ErrorCode.TLS and "self-signed" in (r.error or "").replace(" ", "-")
            r = await check(env, http(peer.url(scheme="https", host="localhost"), verifyTls=False))
            assert r.ok and r.tls_us >= 0
        async with Peer(http_handler(), _server_ctx(good)) as peer:
            r = await check(env, http(peer.url(scheme="https", host="localhost")))
            assert not r.ok and r.error_code == ErrorCode.TLS  # issued by a CA nobody trusts
            ca.configure_trust(env.verify_ctx)
            r = await check(env, http(peer.url(scheme="https", host="localhost")))
            assert r.ok and r.tls_us >= 0 and r.dns_us >= 0 and r.connect_us >= 0
            r = await check(env, http(peer.url(scheme="https")))  # verified against the IP SAN
            assert r.ok and r.dns_us == -1
        async with Peer(http_handler(), _server_ctx(expired)) as peer:
            r = await check(env, http(peer.url(scheme="https", host="localhost")))
            assert not r.ok and r.error_code == ErrorCode.TLS and "expired" in (r.error or "")
        async with Peer(http_handler()) as plain:  # TLS to a plain port that waits for a request line
            r = await check(env, http(plain.url(scheme="https")), timeout=0.5)
            assert not r.ok and r.error_code == ErrorCode.TIMEOUT and "(tls)" in (r.error or "")

    run(main())


# connections -----------------------------------------------------------------------------

def test_keep_alive_reuses_one_connection() -> None:
    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(http_handler()) as peer:
            for monitor_id in range(5):  # five monitors, one origin: one pooled connection
                assert (await check(env, http(peer.url(), keepAlive=True), monitor_id=monitor_id)).ok
            assert peer.connections == 1
            # Concurrent checks need concurrent connections; they all go back to the pool.
            results = await asyncio.gather(*(check(env, http(peer.url(), keepAlive=True)) for _ in range(4)))
            assert all(r.ok for r in results) and peer.connections == 4 and env.idle_count() == 4
            for _ in range(3):
                assert (await check(env, http(peer.url()), monitor_id=2)).ok
            assert peer.connections == 7
            env.close()
            assert env.idle_count() == 0

    run(main())


def test_new_connection_checks_leave_no_time_wait() -> None:
    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(http_handler()) as peer:
            for _ in range(20):
                assert (await check(env, http(peer.url()))).ok
            await asyncio.sleep(0.1)
            assert time_wait_count(peer.port) == 0

    run(main())


def test_stale_keep_alive_connection_is_replaced_once() -> None:
    async def one_shot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(respond(200, b"ok", {"Connection": "keep-alive"}))
        await writer.drain()
        # and then the server silently drops the idle connection

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(one_shot) as peer:
            assert (await check(env, http(peer.url(), keepAlive=True))).ok
            await asyncio.sleep(0.05)
            assert (await check(env, http(peer.url(), keepAlive=True))).ok
            assert peer.connections == 2

    run(main())


# tcp -------------------------------------------------------------------------------------

def test_tcp_connect_send_expect() -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        writer.write(b"+PONG\r\n" if line == b"PING\r\n" else b"-ERR\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(banner) as peer:
            tcp = {"type": "tcp", "host": "127.0.0.1", "port": peer.port}
            assert (await check(env, tcp)).ok
            r = await check(env, {**tcp, "send": "PING\r\n", "expect": "PONG"})
            assert r.ok and r.connect_us >= 0
            r = await check(env, {**tcp, "send": "HELLO\r\n", "expect": "PONG"}, timeout=0.3)
            assert not r.ok and r.error_code == ErrorCode.TIMEOUT
            port = peer.port
        r = await check(env, {"type": "tcp", "host": "127.0.0.1", "port": port})
        assert not r.ok and r.error_code == ErrorCode.REFUSED
        r = await check(env, {"type": "tcp", "host": "nothing.invalid", "port": 80})
        assert not r.ok and r.error_code == ErrorCode.DNS

    run(main())


def test_tls_certificate_days_left(ca: trustme.CA) -> None:
    """A ``tls`` monitor: verified handshake, then at least ``minDaysValid`` days to go."""
    now = dt.datetime.now(dt.UTC)
    long_lived = ca.issue_cert("localhost", "127.0.0.1", not_after=now + dt.timedelta(days=90))
    short_lived = ca.issue_cert("localhost", "127.0.0.1", not_after=now + dt.timedelta(days=5))
    expired = ca.issue_cert("localhost", not_after=now - dt.timedelta(days=1), not_before=now - dt.timedelta(days=30))

    def tls(port: int, host: str = "localhost", **extra: Any) -> dict[str, Any]:
        return {"type": "tls", "host": host, "port": port, **extra}

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(http_handler(), _server_ctx(long_lived)) as peer:
            r = await check(env, tls(peer.port))
            assert not r.ok and r.error_code == ErrorCode.TLS  # nobody trusts this CA yet
            ca.configure_trust(env.verify_ctx)
            r = await check(env, tls(peer.port))
            assert r.ok and r.dns_us >= 0 and r.connect_us >= 0 and r.tls_us >= 0
            r = await check(env, tls(peer.port, host="127.0.0.1", minDaysValid=30))  # by IP SAN
            assert r.ok and r.dns_us == -1
            r = await check(env, tls(peer.port, minDaysValid=120))
            assert not r.ok and r.error_code == ErrorCode.CERT_EXPIRING and "at least 120" in (r.error or "")
        async with Peer(http_handler(), _server_ctx(short_lived)) as peer:
            r = await check(env, tls(peer.port))  # default minimum: 14 days
            assert not r.ok and r.error_code == ErrorCode.CERT_EXPIRING
            assert "expires in 4." in (r.error or "") or "expires in 5.0" in (r.error or "")
            assert (await check(env, tls(peer.port, minDaysValid=3))).ok
        async with Peer(http_handler(), _server_ctx(expired)) as peer:
            r = await check(env, tls(peer.port))
            assert not r.ok and r.error_code == ErrorCode.TLS and "expired" in (r.error or "")
        async with Peer(http_handler()) as plain:  # not TLS at all: the handshake never completes
            r = await check(env, tls(plain.port), timeout=0.5)
            assert not r.ok and r.error_code == ErrorCode.TIMEOUT and "(tls)" in (r.error or "")
        r = await check(env, tls(closed_port()))
        assert not r.ok and r.error_code == ErrorCode.REFUSED

    run(main())


def test_dns_records_and_expected_values() -> None:
    zone = {("shop.example.", "A"): ["127.0.0.9", "127.0.0.10"], ("shop.example.", "MX"): ["10 mail.shop.example."],
            ("shop.example.", "TXT"): ['"v=spf1 -all"'], ("www.shop.example.", "CNAME"): ["shop.example."]}

    def dns_check(server: str, host: str, **extra: Any) -> dict[str, Any]:
        return {"type": "dns", "host": host, "resolver": server, **extra}

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with FakeDns(zone, silent=frozenset({"slow.example."})) as server:
            at = f"127.0.0.1:{server.port}"
            r = await check(env, dns_check(at, "shop.example"))
            assert r.ok and r.dns_us >= 0
            assert (await check(env, dns_check(at, "shop.example", expectedValue="127.0.0.10"))).ok
            r = await check(env, dns_check(at, "shop.example", expectedValue="127.0.0.99"))
            assert not r.ok and r.error_code == ErrorCode.EXPECT and "127.0.0.9" in (r.error or "")
            for value in ("mail.shop.example", "10 mail.shop.example.", "MAIL.shop.example"):
                assert (await check(env, dns_check(at, "shop.example", recordType="MX", expectedValue=value))).ok
            assert (await check(env, dns_check(at, "shop.example", recordType="txt", expectedValue="v=spf1 -all"))).ok
            assert (await check(env, dns_check(at, "www.shop.example", recordType="CNAME",
                                               expectedValue="shop.example"))).ok
            r = await check(env, dns_check(at, "nowhere.example"))
            assert not r.ok and r.error_code == ErrorCode.DNS and "does not exist" in (r.error or "")
            r = await check(env, dns_check(at, "shop.example", recordType="AAAA"))
            assert not r.ok and r.error_code == ErrorCode.DNS and "no AAAA record" in (r.error or "")
            r = await check(env, dns_check(at, "slow.example"), timeout=0.5)
            assert not r.ok and r.error_code == ErrorCode.TIMEOUT and "(dns)" in (r.error or "")

    run(main())


def test_ping_answers_and_silence() -> None:
    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        r = await check(env, {"type": "ping", "host": "127.0.0.1"})
        assert r.ok and r.ttfb_us >= 0 and r.dns_us == -1
        r = await check(env, {"type": "ping", "host": "localhost"})
        assert r.ok and r.dns_us >= 0
        r = await check(env, {"type": "ping", "host": "::1"})
        assert r.ok
        r = await check(env, {"type": "ping", "host": "nowhere.invalid"})
        assert not r.ok and r.error_code == ErrorCode.DNS
        r = await check(env, {"type": "ping", "host": "203.0.113.7"}, timeout=0.5)  # TEST-NET-3: no one answers
        assert not r.ok and r.error_code == ErrorCode.TIMEOUT and "echo reply" in (r.error or "")

    run(main())


def test_json_path_and_expected_value() -> None:
    body = (b'{"status": "ok", "healthy": true, "version": 3, "db": {"lag": 0.5, "primary": null},'
            b' "items": [{"state": "up"}, {"state": "down"}], "odd key": "x"}')

    async def main() -> None:
        env = Env(asyncio.get_running_loop())
        async with Peer(http_handler(body=body)) as peer:
            for path, value in (("$.status", "ok"), ("healthy", "true"), ("$.version", "3"), ("$.db.lag", "0.5"),
                                ("$.items[1].state", "down"), ("$.items[-1].state", "down"),
                                ('$["odd key"]', "x"), ("$.db.primary", "null")):
                r = await check(env, http(peer.url(), jsonPath=path, expectedValue=value))
                assert r.ok, (path, r.error)
            assert (await check(env, http(peer.url(), jsonPath="$.items[0]"))).ok  # exists, any value
            for extra, message in (
                ({"jsonPath": "$.status", "expectedValue": "degraded"}, "JSON: $.status is 'ok', expected 'degraded'"),
                ({"jsonPath": "$.nothing"}, "JSON: $.nothing not found"),
                ({"jsonPath": "$.items[5].state"}, "JSON: $.items[5].state not found"),
                ({"jsonPath": "$.db.primary"}, "JSON: $.db.primary is null"),
                ({"jsonPath": "$.status", "maxBodyBytes": 10}, "JSON: the body is larger than maxBodyBytes (10)"),
            ):
                r = await check(env, http(peer.url(), **extra))
                assert not r.ok and r.error_code == ErrorCode.JSON and r.error == message, r.error
            r = await check(env, http(peer.url(), keepAlive=True, jsonPath="$.status", expectedValue="ok"))
            assert r.ok  # the keep-alive fast path reads the body too
        async with Peer(http_handler(body=b"<html>not json</html>")) as peer:
            r = await check(env, http(peer.url(), jsonPath="$.status"))
            assert not r.ok and r.error == "JSON: the body is not JSON"

    run(main())


def test_private_targets_refused_when_the_server_says_so() -> None:
    """``--deny-private-targets``: whatever name leads to a private address, no connection."""
    async def main() -> None:
        env = Env(asyncio.get_running_loop(), deny_private=True)
        async with Peer(http_handler()) as peer:
            for data in (http(peer.url()), http(f"http://localhost:{peer.port}/"),
                         {"type": "tcp", "host": "localhost", "port": peer.port},
                         {"type": "tls", "host": "127.0.0.1", "port": peer.port},
                         {"type": "ping", "host": "localhost"}):
                r = await check(env, data)
                assert not r.ok and r.error_code == ErrorCode.CONNECT and "denied on this server" in (r.error or "")
            assert peer.connections == 0
            env.deny_private = False
            assert (await check(env, http(peer.url()))).ok

    run(main())
