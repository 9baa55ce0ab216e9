"""Hostile responses over real loopback sockets, through both HTTP paths.

The in-memory test (``tests/unit/test_hostile_parsers.py``) covers the parsers; this one covers
what only sockets show: a FIN or RST in the same segment as the last bytes (edge-triggered
events raise no second wake-up), bytes that arrive with the connect completion, and bytes a
server sends on an idle keep-alive connection.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest
import uvloop
from hypothesis import HealthCheck, given, settings

from core.checkers import REGISTRY, CheckContext, Env, http
from core.engine.scheduler import Scheduler, raw_sockaddr, run_with_deadline
from core.models import ErrorCode, Monitor, parse_monitor
from ext import HttpEngine, ResultBuffer
from tests.hostile import TIMEOUT, Case, Outcome, monitor, responses
from tests.servers import Peer, read_request, respond

TIMEOUT_S = 0.3


def _send_script(case: Case) -> Any:
    """A handler that answers the first request with ``case``: each piece in its own segment,
    the last one corked with the FIN (one segment), or followed by a reset."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pieces = case.pieces or [b""]
        for piece in pieces[:-1]:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.001)
        if case.end == "fin":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            writer.write(pieces[-1])
            writer.write_eof()  # leaves with the corked bytes: data and FIN in one segment
            await asyncio.sleep(0.05)
        elif case.end == "rst":
            writer.write(pieces[-1])
            await writer.drain()
            await asyncio.sleep(0.002)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.write(pieces[-1])
            await writer.drain()
            await asyncio.sleep(1)

    return handle


async def _compiled(engine: Any, buffer: Any, handed: list[int], peer: Peer, m: Monitor) -> Outcome | None:
    """One check on the compiled path; None when it was handed over."""
    origin = engine.origin(("127.0.0.1", peer.port, 0))
    engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", peer.port)))
    spec = http.compiled_spec(http.prepare(m.spec))  # type: ignore[arg-type]
    assert spec is not None
    _, _, request, table, text, keep_alive, head, follow, max_body = spec[:9]
    engine.add(m.id, origin, request, table, text, TIMEOUT_S, keep_alive, head, follow, max_body, 1000,
               keyword=spec.keyword)
    handed.clear()
    assert engine.start(m.id) == 1
    while engine.inflight:
        await asyncio.sleep(0.002)
        engine.expire()
    engine.remove(m.id)
    batch = buffer.flush()
    if handed:
        return None
    assert batch is not None
    error = batch["error_texts"][0] if len(batch["error_rows"]) else None
    outcome = (bool(batch["ok"][0]), int(batch["status_code"][0]), int(batch["error_code"][0]), error)
    return TIMEOUT if outcome[2] == ErrorCode.TIMEOUT else outcome


async def _general(env: Env, m: Monitor) -> Outcome:
    checker = REGISTRY["http"]
    result = await run_with_deadline(checker, checker.prepare(m.spec), CheckContext(env, m.id), TIMEOUT_S)
    outcome = (result.ok, result.status_code, result.error_code, result.error)
    return TIMEOUT if outcome[2] == ErrorCode.TIMEOUT else outcome


def _with_engine(body: Callable[[Any, Any, list[int], Env], Any]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        buffer = ResultBuffer(8)
        handed: list[int] = []
        engine = HttpEngine(buffer, lambda count, notable: None, lambda mid, for_good: handed.append(mid))
        loop.add_reader(engine.fileno(), engine.on_ready)
        env = Env(loop)
        try:
            await body(engine, buffer, handed, env)
        finally:
            loop.remove_reader(engine.fileno())
            engine.close()
            env.close()

    uvloop.run(main())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=responses())
def test_hostile_responses_over_sockets(case: Case) -> None:
    """Both paths, each on a fresh connection, give the same outcome, and the strict verdict."""

    async def body(engine: Any, buffer: Any, handed: list[int], env: Env) -> None:
        async with Peer(_send_script(case)) as peer:
            m = monitor(case.head_only, peer.url(), keyword=case.keyword)
            m.spec.keep_alive = False  # type: ignore[union-attr]
            compiled = await _compiled(engine, buffer, handed, peer, m)
            general = await _general(env, m)
            if compiled is None:
                compiled = await _general(env, m)  # the hand-over, as the scheduler runs it
        assert compiled == general, (case.why, case.pieces, case.end)
        if case.valid:
            assert general[:2] == (case.expected_ok(), case.status), (case.why, case.pieces, case.end, general)
        else:
            assert not general[0], (case.why, case.pieces, case.end, general)

    _with_engine(body)


@pytest.mark.parametrize("payload", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe body ends at the close",
    b"HTTP/1.0 200 OK\r\n\r\nthe body ends at the close",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
], ids=["http11-close", "http10", "length-then-close"])
def test_a_fin_in_the_last_segment_ends_the_check(payload: bytes) -> None:
    """The first row of the issue: every check of a valid response that ends with the
    server's close is up (it timed out on the compiled path when the FIN came with the data)."""
    case = Case([payload], "fin", True, 200)

    async def body(engine: Any, buffer: Any, handed: list[int], env: Env) -> None:
        outcomes = []
        async with Peer(_send_script(case)) as peer:
            for i in range(20):
                m = monitor(False, peer.url())
                m.id = i + 1
                m.spec.keep_alive = False  # type: ignore[union-attr]
                outcomes.append(await _compiled(engine, buffer, handed, peer, m))
        assert outcomes == [(True, 200, 0, None)] * 20

    _with_engine(body)


def test_bytes_with_the_connect_completion_are_read() -> None:
    """A server that speaks first (its banner arrives with the connect completion) is
    answered at once, not at the deadline, on both paths."""

    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        await writer.drain()
        await asyncio.sleep(1)

    async def body(engine: Any, buffer: Any, handed: list[int], env: Env) -> None:
        async with Peer(banner) as peer:
            m = monitor(False, peer.url())
            m.spec.keep_alive = False  # type: ignore[union-attr]
            compiled = [await _compiled(engine, buffer, handed, peer, m) for _ in range(5)]
            general = await _general(env, m)
        assert general == (True, 200, 0, None)
        assert compiled == [general] * 5

    _with_engine(body)


def _poisoning_server(poison: asyncio.Event, after: Callable[[], None]) -> Any:
    """Answers each request with a 200; after the first, once ``poison`` is set, sends an
    unsolicited 500 on the idle connection and calls ``after`` in the same callback (before
    the client's loop has seen the bytes)."""

    done: list[bool] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(respond(200, b"ok"))
            await writer.drain()
            if not done:
                done.append(True)
                await poison.wait()
                writer.write(respond(500, b"unsolicited"))  # on loopback: in the client's socket now
                after()

    return handle


def test_unsolicited_bytes_on_an_idle_connection_never_reach_the_next_check_compiled() -> None:
    async def body(engine: Any, buffer: Any, handed: list[int], env: Env) -> None:
        poison = asyncio.Event()
        started: list[int] = []
        async with Peer(_poisoning_server(poison, lambda: started.append(engine.start(2)))) as peer:
            origin = engine.origin(("127.0.0.1", peer.port, 0))
            engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", peer.port)))
            for mid in (1, 2):
                m = monitor(False, peer.url())
                spec = http.compiled_spec(http.prepare(m.spec))  # type: ignore[arg-type]
                assert spec is not None
                _, _, request, table, text, keep_alive, head, follow, max_body = spec[:9]
                engine.add(mid, origin, request, table, text, 2.0, keep_alive, head, follow, max_body, 1000)
            assert engine.start(1) == 1
            while engine.inflight:
                await asyncio.sleep(0.002)
            assert engine.idle == 1  # monitor 1's connection is parked
            poison.set()
            while not started or engine.inflight:
                await asyncio.sleep(0.002)
                engine.expire()
            assert started == [1]
        batch = buffer.flush()
        rows = list(zip(batch["monitor_id"].tolist(), batch["status_code"].tolist(), strict=True))
        assert rows == [(1, 200), (2, 200)]  # not (2, 500)
        assert peer.connections == 2  # the poisoned connection was not reused

    _with_engine(body)


def test_unsolicited_bytes_on_an_idle_connection_never_reach_the_next_check_general() -> None:
    async def body(engine: Any, buffer: Any, handed: list[int], env: Env) -> None:
        poison = asyncio.Event()
        results: list[Any] = []
        jobs: list[Any] = []
        m = monitor(False)

        def start_second() -> None:
            prepared = http.prepare(m.spec)  # type: ignore[arg-type]
            jobs.append(http.start(prepared, CheckContext(env, 2), results.append, 2.0))

        async with Peer(_poisoning_server(poison, start_second)) as peer:
            m = monitor(False, peer.url())
            first = await _general(env, m)
            assert first == (True, 200, 0, None) and env.idle_count() == 1
            poison.set()
            while not jobs:
                await asyncio.sleep(0.002)
            if jobs[0] is None:  # the pooled connection was refused: the check runs fresh
                results.append(await run_with_deadline(REGISTRY["http"], http.prepare(m.spec), CheckContext(env, 2),
                                                       2.0))
            while not results:
                await asyncio.sleep(0.002)
        assert (results[0].ok, results[0].status_code) == (True, 200)
        assert peer.connections == 2

    _with_engine(body)


def test_accounts_never_share_a_keep_alive_connection() -> None:
    """Monitors of one account share an origin's idle connections; two accounts never do, on
    the compiled path as on the general one."""
    from tests.servers import http_handler

    def make(mid: int, account: int, url: str, https_like: bool) -> Monitor:
        fields: dict[str, Any] = {"keepAlive": True, "interval": 1}
        if https_like:
            fields["keyword"] = "hello"  # a body test: the general path
        m = parse_monitor({"name": f"m{mid}", "type": "http", "url": url, **fields})
        m.id, m.account_id = mid, account
        return m

    async def run(general: bool) -> int:
        s = Scheduler(lambda batch, transitions: None)
        async with Peer(http_handler()) as peer:
            for mid, account in ((1, 1), (2, 1), (3, 2), (4, 2)):
                s.upsert(make(mid, account, peer.url(), general))
            s.start(asyncio.get_running_loop())
            while s.checks < 8:
                await asyncio.sleep(0.05)
            await s.stop()
        return peer.connections

    async def main() -> None:
        assert await run(general=False) == 2
        assert await run(general=True) == 2

    uvloop.run(main())
