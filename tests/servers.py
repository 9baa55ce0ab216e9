"""Real loopback servers for tests: well-behaved and misbehaving HTTP/TCP peers.

Each ``Peer`` is an asyncio server on 127.0.0.1, port 0, running on the test's own loop. It
counts accepted connections so tests can assert connection reuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import ssl
import threading
from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Peer:
    def __init__(self, handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_ctx = ssl_ctx
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Peer:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.ssl_ctx)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    def url(self, path: str = "/", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request head and its Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head + body


def respond(status: int = 200, body: bytes = b"hello", headers: dict[str, str] | None = None,
            reason: str = "OK") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def redirect_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """``GET /start`` is a 302 to ``/final``; anything else is a 200 ``landed`` (keep-alive)."""
    while True:
        request = await read_request(reader)
        if request.startswith(b"GET /start "):
            writer.write(respond(302, b"", {"Location": "/final"}, "Found"))
        else:
            writer.write(respond(200, b"landed"))
        await writer.drain()


def http_handler(status: int | Callable[[], int] = 200, body: bytes = b"hello", headers: dict[str, str] | None = None,
                 record: list[bytes] | None = None) -> Handler:
    """A keep-alive capable HTTP/1.1 server answering every request the same way (with
    ``status()`` when it is a function: a status the test switches)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if record is not None:
                record.append(request)
            payload = respond(status() if callable(status) else status, body, headers)
            if request.startswith(b"HEAD "):
                payload = payload[: payload.index(b"\r\n\r\n") + 4]
            writer.write(payload)
            await writer.drain()
            if b"connection: close" in request.lower():
                return

    return handle


def self_signed_context(host: str = "localhost") -> ssl.SSLContext:
    """A server context with a genuinely self-signed certificate (subject == issuer)."""
    import datetime as dt
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
        f.flush()
        ctx.load_cert_chain(f.name)
    return ctx


class FakeDns(asyncio.DatagramProtocol):
    """A DNS server on 127.0.0.1 (UDP) answering from ``zone``: (name, type) -> record texts.
    Names in ``silent`` get no answer at all; other unknown names get NXDOMAIN."""

    def __init__(self, zone: dict[tuple[str, str], list[str]], silent: frozenset[str] = frozenset()) -> None:
        self.zone = zone
        self.silent = silent
        self.queries = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    async def __aenter__(self) -> FakeDns:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.port = self.transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.transport is not None
        self.transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        self.queries += 1
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text()
        if name in self.silent:
            return
        response = dns.message.make_response(query)
        kind = dns.rdatatype.to_text(question.rdtype)
        if (name, kind) in self.zone:
            response.answer.append(dns.rrset.from_text_list(name, 60, "IN", kind, self.zone[(name, kind)]))
        elif not any(n == name for n, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


def ensure_debian_package(binary: str, package: str) -> str:
    """The path of ``binary``, installing ``package`` from Debian's archive when it is missing
    (tests run as root on Debian; the package's service is not started)."""
    import shutil

    from bench.engine import install_debian_packages

    found = shutil.which(binary)
    if found is None:
        install_debian_packages([package])
        found = shutil.which(binary)
    assert found, f"{package} did not install {binary}"
    return found


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers in one call."""

    def reply(self, status: int, raw: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


class ThreadedHttp:
    """A threaded HTTP server on 127.0.0.1 (port 0) serving ``handler`` from its own thread,
    for fakes that the code under test calls from another process or loop."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
