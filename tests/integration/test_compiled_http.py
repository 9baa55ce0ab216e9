"""The compiled HTTP path (``ext._fasthttp``) against the general checker it stands in for.

One scheduler on the real clock runs a monitor per behaviour below, each against its own
loopback server, for a few seconds; then the same with the compiled path off. Every monitor
must get the same outcomes (ok, status, error code and text) both ways, the compiled path must
have carried the checks it is meant to, and handed over the ones it is not.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine.scheduler import Scheduler
from core.models import ErrorCode, Monitor, Transition, parse_monitor
from ext import HttpEngine
from tests.servers import Peer, http_handler, read_request, redirect_handler, respond


def test_the_compiled_path_is_built() -> None:
    """The compiled path is part of the product: a build without it fails here (and the tests
    below fail with it), never skips."""
    assert HttpEngine is not None, "ext._fasthttp did not build (see setup.py and the build log)"


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(30)


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _raw(payload: bytes, *, close: bool = False, pieces: int = 0) -> Any:
    """Answer every request with ``payload`` (in ``pieces`` slow writes), closing after it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            if pieces:
                step = max(1, len(payload) // pieces)
                for i in range(0, len(payload), step):
                    writer.write(payload[i:i + step])
                    await writer.drain()
                    await asyncio.sleep(0.01)
            else:
                writer.write(payload)
                await writer.drain()
            if close:
                return

    return handle


def _answering(answer: Callable[[bytes, int], bytes]) -> Any:
    """Answer each request with ``answer(request, this server's port)``, keeping the connection
    unless the request asks to close it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        while True:
            request = await read_request(reader)
            writer.write(answer(request, port))
            await writer.drain()
            if b"connection: close" in request.lower():
                return

    return handle


def _to(location: str, status: int = 302, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    return respond(status, body, {"Location": location, **(headers or {})}, "Moved")


def _routes(table: dict[bytes, bytes], otherwise: bytes = respond(404, b"no")) -> Any:
    """Answer by the request line's start (``b"GET /a "``)."""
    return _answering(lambda request, _: next((v for k, v in table.items() if request.startswith(k)), otherwise))


def _unique() -> Any:
    """``/`` sends to a new place each time (``/n1``, ``/n2``...), each of which is a 200."""
    count = itertools.count(1)
    return _answering(lambda request, _: _to(f"/n{next(count)}") if request.startswith(b"GET / ")
                      else respond(200, b"landed"))


LANDED = respond(200, b"landed")
JSON = b'{"status": "ok", "items": [1, 2, {"deep": null}]}'
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
#: A keyword split across chunks, sizes in both cases, and a zero-padded size.
CHUNKS = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3\r\nthe\r\n4\r\n nee\r\n00A\r\ndle in hay\r\n"
          b"0\r\n\r\n")

#: name -> (handler, monitor fields, path, compiled: carried on the compiled path to the end)
CASES: dict[str, tuple[Any, dict[str, Any], str, bool]] = {
    "ok": (http_handler(), {"keepAlive": True}, "/", True),
    "status": (http_handler(503), {"keepAlive": True}, "/", True),
    "hang": (_hang, {"keepAlive": True, "timeout": 0.3}, "/", True),
    "reset": (_reset, {}, "/", True),
    "garbage": (_raw(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"), {"keepAlive": True}, "/", False),
    "redirect": (redirect_handler, {"keepAlive": True}, "/start", True),
    # to another origin, by name: looked up (that check handed over), then followed here
    "redirect_named": (_answering(lambda r, port: _to(f"http://localhost:{port}/final") if r.startswith(b"GET /start ")
                                  else LANDED), {"keepAlive": True}, "/start", True),
    "redirect_absolute": (_answering(lambda r, port: _to(f"http://127.0.0.1:{port}/b?x=1", 301)
                                     if r.startswith(b"GET /a ") else LANDED), {}, "/a", True),
    "redirect_chain": (_routes({b"GET /a ": _to("/b", 307), b"GET /b ": _to("c", 308), b"GET /c ": LANDED}),
                       {"keepAlive": True, "maxRedirects": 2}, "/a", True),
    "redirect_loop": (_routes({b"GET /": _to("/again")}), {"maxRedirects": 3}, "/", True),
    "redirect_zero": (redirect_handler, {"maxRedirects": 0}, "/start", True),
    "redirect_post": (_routes({b"POST /start ": _to("/final", 303), b"GET /final ": LANDED}, respond(405, b"")),
                      {"method": "POST", "body": "x"}, "/start", True),
    "redirect_post_307": (_routes({b"POST /start ": _to("/final", 307), b"POST /final ": LANDED}),
                          {"method": "POST", "body": "x"}, "/start", True),
    "redirect_head": (_routes({b"HEAD /start ": _to("/final", 301, b"x" * 99)[:-99],  # (no body to a HEAD)
                               b"HEAD /final ": respond(200, b"hello")[:-5]}),
                      {"method": "HEAD"}, "/start", True),
    "redirect_keyword": (_routes({b"GET /start ": _to("/final", body=b"no word here"),
                                  b"GET /final ": respond(200, b"the needle")}), {"keyword": "needle"}, "/start", True),
    # (the keyword is looked for in the last response only)
    "redirect_keyword_first": (_routes({b"GET /start ": _to("/final", body=b"the needle"),
                                        b"GET /final ": respond(200, b"nothing")}), {"keyword": "needle"}, "/start",
                               True),
    "redirect_chunked": (_routes({b"GET /start ": b"HTTP/1.1 302 Found\r\nLocation: /final\r\nTransfer-Encoding: "
                                                 b"chunked\r\n\r\n4\r\nmove\r\n0\r\n\r\n",
                                  b"GET /final ": CHUNKED}), {"keepAlive": True}, "/start", True),
    "redirect_to_failure": (_routes({b"GET /start ": _to("/final"), b"GET /final ": respond(500, b"")}), {},
                            "/start", True),
    "redirect_unsupported": (_routes({b"GET /": _to("ftp://example.com/x")}), {}, "/", True),
    "redirect_not_followed": (redirect_handler, {"followRedirects": False}, "/start", True),
    "redirect_empty": (_routes({b"GET /": respond(302, b"", {"Location": ""})}), {}, "/", True),
    "redirect_unique": (_unique(), {"keepAlive": True}, "/", True),
    "chunked": (_raw(CHUNKED), {"keepAlive": True}, "/", True),
    "chunks_keyword": (_raw(CHUNKS, pieces=7), {"keepAlive": True, "keyword": "needle"}, "/", True),
    "chunks_no_keyword": (_raw(CHUNKS), {"keepAlive": True, "keyword": "needles"}, "/", True),
    "chunk_extension": (_raw(CHUNKED.replace(b"5\r\n", b"5;x=1\r\n")), {"keepAlive": True}, "/", False),
    "chunk_trailer": (_raw(CHUNKED.replace(b"0\r\n\r\n", b"0\r\nX-T: 1\r\n\r\n")), {"keepAlive": True}, "/",
                      False),
    "bad_chunk": (_raw(CHUNKED.replace(b"5\r\nhello", b"5\r\nhello!")), {"keepAlive": True}, "/", False),
    "keyword": (http_handler(body=b"all is well"), {"keepAlive": True, "keyword": "is well"}, "/", True),
    "no_keyword": (http_handler(body=b"all is well"), {"keyword": "is ill"}, "/", True),
    "keyword_trickle": (_raw(respond(200, b"a" * 300 + b"needle" + b"b" * 300), pieces=40),
                        {"keepAlive": True, "keyword": "needle"}, "/", True),
    "keyword_past_cap": (http_handler(body=b"x" * 2000 + b"needle"), {"keyword": "needle", "maxBodyBytes": 2003},
                         "/", True),
    "keyword_at_cap": (http_handler(body=b"x" * 2000 + b"needle"), {"keyword": "needle", "maxBodyBytes": 2006},
                       "/", True),
    "keyword_eof": (_raw(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nneedle at the end", close=True),
                    {"keyword": "the end"}, "/", True),
    "keyword_head": (http_handler(), {"method": "HEAD", "keyword": "hello"}, "/", True),
    "keyword_status": (http_handler(500, body=b"needle"), {"keyword": "needle"}, "/", True),
    "json": (http_handler(body=JSON), {"keepAlive": True, "jsonPath": "$.status", "expectedValue": "ok"}, "/", True),
    "json_other": (http_handler(body=JSON), {"jsonPath": "$.status", "expectedValue": "fine"}, "/", True),
    "json_missing": (http_handler(body=JSON), {"jsonPath": "$.items[5]"}, "/", True),
    "json_not_json": (http_handler(body=b"<html>ok</html>"), {"jsonPath": "$.status"}, "/", True),
    "json_too_big": (http_handler(body=JSON), {"jsonPath": "$.status", "maxBodyBytes": 10}, "/", True),
    "json_chunked": (_raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\": [\r\n"
                          b"5\r\n1, 2]\r\n1\r\n}\r\n0\r\n\r\n", pieces=3),
                     {"keepAlive": True, "jsonPath": "$.a[1]", "expectedValue": "2", "keyword": "1, 2"}, "/", True),
    "closes": (_raw(respond(200, b"bye", {"Connection": "close"}), close=True), {"keepAlive": True}, "/", True),
    "eof_body": (_raw(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", close=True), {}, "/", True),
    "silent_close": (_raw(respond(200, b"ok"), close=True), {"keepAlive": True}, "/", True),
    "head": (http_handler(), {"keepAlive": True, "method": "HEAD"}, "/", True),
    "trickle": (_raw(respond(200, b"x" * 300, {"X-Pad": "y" * 200}), pieces=12), {"keepAlive": True}, "/", True),
    "new_connection": (http_handler(), {}, "/", True),
    "big_body": (http_handler(body=b"z" * 200_000), {"keepAlive": True, "maxBodyBytes": 1024}, "/", True),
    "http10": (_raw(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", close=True), {"keepAlive": True}, "/", True),
    "not_accepted": (http_handler(204, body=b""), {"keepAlive": True, "expectedStatus": ["200"]}, "/", True),
    "host_name": (http_handler(), {"keepAlive": True}, "localhost", True),  # looked up off the hot path
}


def _monitor(mid: int, url: str, fields: dict[str, Any]) -> Monitor:
    m = parse_monitor({"name": f"m{mid}", "type": "http", "url": url, "interval": 1, **fields})
    m.id = mid
    return m


async def _run(compiled: bool, seconds: float) -> tuple[dict[str, list[tuple]], dict[str, int], Scheduler,
                                                         list[Transition], dict[str, int]]:
    """Outcomes by case, connections each server took, the scheduler, the status changes, and
    how many times each case's redirects were routed (built in Python) on the compiled path."""
    rows: dict[int, list[tuple]] = {}
    transitions: list[Transition] = []
    routed: collections.Counter[int] = collections.Counter()

    def sink(batch: dict[str, Any], changes: list[Transition]) -> None:
        transitions.extend(changes)
        errors = dict(zip(batch["error_rows"].tolist(), batch["error_texts"], strict=True))
        for i, mid in enumerate(batch["monitor_id"].tolist()):
            rows.setdefault(mid, []).append((bool(batch["ok"][i]), int(batch["status_code"][i]),
                                             int(batch["error_code"][i]), errors.get(i)))

    s = Scheduler(sink, compiled_http=compiled)
    if s.fast is not None:
        route = s.fast.route

        def counted(mid: int, *args: Any) -> Any:
            routed[mid] += 1
            return route(mid, *args)

        s.fast.route = counted
    peers = {name: Peer(handler) for name, (handler, _, _, _) in CASES.items()}
    async with contextlib.AsyncExitStack() as serving:
        for peer in peers.values():
            await serving.enter_async_context(peer)
        names = list(CASES)
        for mid, name in enumerate(names, start=1):
            path = CASES[name][2]
            url = peers[name].url(host="localhost") if path == "localhost" else peers[name].url(path)
            s.upsert(_monitor(mid, url, CASES[name][1]))
        s.upsert(_monitor(len(names) + 1, "http://127.0.0.1:9/", {"keepAlive": True}))  # nothing listens
        names.append("refused")
        s.start(asyncio.get_running_loop())
        await asyncio.sleep(seconds)
        await s.stop()
    by_name = {name: rows.get(mid, []) for mid, name in enumerate(names, start=1)}
    connections = {name: peer.connections for name, peer in peers.items()}
    return by_name, connections, s, transitions, {name: routed[mid] for mid, name in enumerate(names, start=1)}


def test_the_compiled_path_gives_the_general_checkers_results() -> None:
    async def main() -> None:
        fast, fast_conns, s, fast_changes, routed = await _run(True, 3.6)
        assert s.fast is not None
        assert s.fast.fallbacks == sum(1 for c in CASES.values() if not c[3])
        # Those meant for it stayed on the compiled path (and "localhost" was looked up).
        assert [name for mid, name in enumerate(CASES, start=1) if s.fast.takes(mid)] == [
            name for name, case in CASES.items() if case[3]]
        general, general_conns, g, _, _ = await _run(False, 3.6)
        assert g.fast is None
        for name in [*CASES, "refused"]:
            got, want = fast[name], general[name]
            assert len(got) >= 3 and len(want) >= 3, (name, got, want)
            # The same outcome every time, both ways (compare the distinct outcomes).
            assert set(got) == set(want), (name, got, want)
        assert fast["ok"][0] == (True, 200, 0, None)
        assert fast["status"][0] == (False, 503, ErrorCode.STATUS, "status 503, expected 200-299")
        assert fast["hang"][0] == (False, 0, ErrorCode.TIMEOUT, "timed out after 0.3 s (waiting for the response)")
        assert fast["reset"][0] == (False, 0, ErrorCode.RESET, "connection reset by peer")
        assert fast["refused"][0] == (False, 0, ErrorCode.REFUSED, "connection refused")
        assert fast["garbage"][0][2] == ErrorCode.BAD_RESPONSE
        assert fast["not_accepted"][0] == (False, 204, ErrorCode.STATUS, "status 204, expected 200")
        missing = "keyword not found in the response body"
        for name in ("chunks_no_keyword", "no_keyword", "keyword_past_cap", "keyword_head"):
            assert set(fast[name]) == {(False, 200, ErrorCode.KEYWORD, missing)}, name
        assert set(fast["keyword_status"]) == {(False, 500, ErrorCode.STATUS, "status 500, expected 200-299")}
        assert fast["bad_chunk"][0][2] == ErrorCode.BAD_RESPONSE
        json_failures = {"json_other": "JSON: $.status is 'ok', expected 'fine'",
                         "json_missing": "JSON: $.items[5] not found", "json_not_json": "JSON: the body is not JSON",
                         "json_too_big": "JSON: the body is larger than maxBodyBytes (10)"}
        for name, text in json_failures.items():
            assert set(fast[name]) == {(False, 200, ErrorCode.JSON, text)}, name
        for name in ("redirect", "chunked", "closes", "eof_body", "silent_close", "head", "trickle",
                     "new_connection", "big_body", "http10", "host_name", "chunks_keyword", "keyword",
                     "keyword_trickle", "keyword_at_cap", "keyword_eof", "chunk_extension", "chunk_trailer", "json",
                     "json_chunked", "redirect_named", "redirect_absolute", "redirect_chain", "redirect_post",
                     "redirect_post_307", "redirect_head", "redirect_keyword", "redirect_chunked", "redirect_unique"):
            assert set(fast[name]) == {(True, 200, 0, None)}, name
        # Redirects: failures worded as the general checker words them, and each place a
        # monitor is sent from routed once (a server naming a new place each time: every time).
        moved, redirects = (302, ErrorCode.REDIRECTS)
        assert set(fast["redirect_loop"]) == {(False, moved, redirects, "more than 3 redirects")}
        assert set(fast["redirect_zero"]) == {(False, moved, redirects, "more than 0 redirects")}
        assert set(fast["redirect_to_failure"]) == {(False, 500, ErrorCode.STATUS, "status 500, expected 200-299")}
        assert set(fast["redirect_unsupported"]) == {
            (False, moved, ErrorCode.BAD_RESPONSE, "redirect to an unsupported location")}
        for name in ("redirect_not_followed", "redirect_empty"):
            assert set(fast[name]) == {(False, moved, ErrorCode.STATUS, "status 302, expected 200-299")}, name
        assert set(fast["redirect_keyword_first"]) == {(False, 200, ErrorCode.KEYWORD, missing)}
        hops = {"redirect_chain": 2, "redirect_loop": 2, "redirect_zero": 0, "redirect_not_followed": 0,
                "redirect_empty": 0}
        for name in CASES:
            if name.startswith("redirect") and name not in ("redirect_unique", "redirect_unsupported"):
                assert routed[name] == hops.get(name, 1), (name, routed[name])
        assert routed["redirect_unique"] == len(fast["redirect_unique"])
        assert routed["redirect_unsupported"] == len(fast["redirect_unsupported"])  # (not kept)
        # A redirect to a name not looked up yet hands its first check over, once.
        assert s.fast.detours == 1
        # Keep-alive is kept where the server allows it, and only there.
        assert fast_conns["ok"] == general_conns["ok"] == 1
        # A connection per check (a check still in flight when the run stops has connected
        # but not reported: at most one more connection than results).
        for name in ("new_connection", "closes", "big_body"):  # a cut body leaves the connection unusable
            assert len(fast[name]) <= fast_conns[name] <= len(fast[name]) + 1, (name, fast_conns[name], fast[name])
        # Status changes come through the state machine as on the general path.
        kinds = {(t.monitor_id, t.old, t.new) for t in fast_changes}
        names = [*CASES, "refused"]
        assert (names.index("ok") + 1, "pending", "up") in kinds
        assert (names.index("status") + 1, "pending", "down") in kinds

    uvloop.run(main())


def test_error_codes_agree_with_the_models() -> None:
    from ext._fasthttp import CODES

    assert {name: int(ErrorCode[name]) for name in CODES} == CODES


def test_socket_errors_are_worded_as_the_general_checker_words_them() -> None:
    """The compiled leaf imports nothing from ``core``: its own words for every errno must be
    the general checker's (``classify_os_error``)."""
    import errno
    import os

    from core.checkers.base import classify_os_error
    from ext._fasthttp import classify_errno

    for err in range(0, 134):
        exc = OSError(err, os.strerror(err)) if err else ConnectionResetError(errno.ECONNRESET, "reset")
        code, message = classify_os_error(exc)
        assert classify_errno(err) == (int(code), message), err


def test_engine_queue_overlap_removal_and_lateness() -> None:
    """``HttpEngine`` on its own: the in-flight limit queues (FIFO), a monitor still running
    or waiting is skipped, a removed one leaves no row, and lateness is counted per start."""
    import time

    import numpy as np

    from core.checkers.http import compiled_spec, prepare
    from core.engine.scheduler import raw_sockaddr
    from ext import ResultBuffer

    async def main() -> None:
        loop = asyncio.get_running_loop()
        buffer = ResultBuffer(64)
        finished: list[int] = []
        engine = HttpEngine(buffer, lambda count, notable: finished.append(count), lambda mid, for_good: None)
        lateness = np.zeros(100, dtype=np.int64)
        origin_ns = time.monotonic_ns() - 5_000_000_000  # the scheduler's clock started 5 s ago
        engine.set_clock(origin_ns, lateness)
        loop.add_reader(engine.fileno(), engine.on_ready)
        async with Peer(http_handler()) as ok, Peer(_hang) as hang:
            for port, mids in ((ok.port, (1, 2, 3)), (hang.port, (4,))):
                origin = engine.origin(("127.0.0.1", port))
                engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", port)))
                for mid in mids:
                    spec = compiled_spec(prepare(_monitor(mid, f"http://127.0.0.1:{port}/", {}).spec))
                    assert spec is not None
                    _, _, request, table, text, keep_alive, head, follow, max_body = spec[:9]
                    engine.add(mid, origin, request, table, text, 5.0, keep_alive, head, follow, max_body, 1000)
            engine.limit = 2
            now_ms = (time.monotonic_ns() - origin_ns) // 1_000_000
            rest = engine.start_due([4, 1, 2, 3, 99], now_ms, {}, set())
            assert rest == [99]  # not registered here: the general path's
            assert (engine.inflight, engine.queued) == (2, 2)  # 4 (hangs) and 1 run; 2 and 3 wait
            assert engine.start_due([2, 4], now_ms, {}, {3}) == [] and engine.skipped_overlap == 2
            engine.remove(3)  # waiting: dropped from the queue
            for _ in range(100):
                await asyncio.sleep(0.01)
                engine.expire()
                if engine.queued == 0 and engine.inflight == 1:
                    break
            assert engine.queued == 0 and engine.inflight == 1  # only the hanging check is left
            engine.remove(4)  # in flight: dropped, no row
            assert engine.inflight == 0
        loop.remove_reader(engine.fileno())
        engine.close()
        batch = buffer.flush()
        assert sorted(batch["monitor_id"].tolist()) == [1, 2] and batch["ok"].all()
        assert sum(finished) == 2
        assert int(lateness.sum()) == 3  # started: 4, 1, then 2 from the queue

    uvloop.run(main())


def test_engine_finds_exactly_its_monitors_among_thousands_added_and_removed() -> None:
    """The engine's id -> slot map (``ext/_idmap.pxd``, shared with the timing wheel) through
    growth and deletions, with ids that collide in its table: ``takes`` answers for exactly
    the monitors registered, and a re-added one is found again."""
    import random

    from core.checkers.http import compiled_spec, prepare
    from core.engine.scheduler import raw_sockaddr
    from ext import ResultBuffer

    engine = HttpEngine(ResultBuffer(16), lambda count, notable: None, lambda mid, for_good: None)
    origin = engine.origin(("127.0.0.1", 9))
    engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", 9)))
    spec = compiled_spec(prepare(_monitor(1, "http://127.0.0.1:9/", {}).spec))
    assert spec is not None
    _, _, request, table, text, keep_alive, head, follow, max_body = spec[:9]
    rnd = random.Random(15)
    ids = [i * 1024 for i in range(1, 3001)] + [rnd.randrange(1, 2**62) for _ in range(3000)]
    held: set[int] = set()
    try:
        for step in range(3):
            for mid in ids:
                engine.add(mid, origin, request, table, text, 2.0, keep_alive, head, follow, max_body, 1000)
                held.add(mid)
            for mid in rnd.sample(ids, len(ids) // 2 + step * 500):
                engine.remove(mid)
                held.discard(mid)
            assert [mid for mid in ids if engine.takes(mid)] == [mid for mid in ids if mid in held]
            assert not engine.takes(5) and not engine.takes(2**63 - 1)
    finally:
        engine.close()


def test_engine_sends_every_request_whole_through_compaction_and_partial_writes() -> None:
    """The engine keeps a request as its own part (request line and Host, in one arena for
    all monitors) and a rest that monitors share (kept once). The peer must still get each
    monitor's request byte for byte: after churn that compacts the arena (thousands of
    monitors added, put to sleep with their packed definitions, woken and removed), and when
    a request is far larger than the socket buffers (several sends across both parts, the
    peer reading late). Asleep monitors' packed definitions come back as given; once every
    monitor is gone, nothing of theirs is kept."""
    from core.checkers.http import compiled_spec, prepare
    from core.engine.scheduler import raw_sockaddr
    from ext import ResultBuffer

    got: dict[bytes, bytes] = {}

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.3)  # (the big request fills the socket buffers meanwhile)
        request = await read_request(reader)
        got[request.split(b" ", 2)[1]] = request
        writer.write(respond(200, b"ok", {"Connection": "close"}))
        await writer.drain()
        writer.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        buffer = ResultBuffer(64)
        engine = HttpEngine(buffer, lambda count, notable: None, lambda mid, for_good: None)
        loop.add_reader(engine.fileno(), engine.on_ready)
        async with Peer(record) as peer:
            origin = engine.origin(("127.0.0.1", peer.port))
            engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", peer.port)))

            def spec(path: str, fields: dict[str, Any]) -> tuple[Any, ...]:
                found = compiled_spec(prepare(_monitor(1, peer.url(path), fields).spec))
                assert found is not None
                return found

            body = bytes(range(256)) * (4 * 4096)  # 4 MiB
            big = (f"POST /big HTTP/1.1\r\nHost: 127.0.0.1:{peer.port}\r\nContent-Length: {len(body)}\r\n"
                   f"Connection: close\r\n\r\n").encode() + body
            sent = {1: spec("/one", {}), 2: spec("/two", {}), 3: spec("/three", {"headers": {"X-Own": "three"}}),
                    4: (*spec("/big", {})[:2], big, *spec("/big", {})[3:])}
            for mid, (_, _, request, table, text, keep_alive, head, follow, max_body, *_) in sent.items():
                engine.add(mid, origin, request, table, text, 10.0, keep_alive, head, follow, max_body, 1000)
                engine.sleep(mid, b"packed-%d" % mid * 50, 1, 0, 0, 0, 1)
            _, _, filler, table, text, *_ = spec("/filler", {})
            assert engine.memory()["tails"] == 3  # 1 and 2 share theirs
            for round_ in range(3):  # churn: over a megabyte of garbage each round
                for mid in range(100, 20_100):
                    engine.add(mid, origin, filler + b"x" * round_, table, text, 1.0, False, False, False, 0, 1000)
                    engine.sleep(mid, b"%d" % mid * 10, 0, 0, 0, 0, 1)
                for mid in range(100, 20_100, 2):
                    assert engine.wake(mid) is not None
                for mid in range(100, 20_100):
                    engine.remove(mid)
            assert engine.memory()["garbage"] < 2 * engine.memory()["arena"] + (1 << 20)  # compacted
            for mid in sent:
                assert engine.packed(mid) == b"packed-%d" % mid * 50
                assert engine.start(mid) == 1
            for _ in range(500):
                await asyncio.sleep(0.01)
                engine.expire()
                if len(buffer) >= len(sent):
                    break
            batch = buffer.flush()
            assert sorted(batch["monitor_id"].tolist()) == sorted(sent) and batch["ok"].all()
            assert got == {request.split(b" ", 2)[1]: request for _, _, request, *_ in sent.values()}
            for mid in sent:
                engine.remove(mid)
            assert engine.memory() | {"garbage": 0} == {"arena": 0, "garbage": 0, "tails": 0, "tables": 0, "hops": 0,
                                                         "routes": 0}
        loop.remove_reader(engine.fileno())
        engine.close()

    uvloop.run(main())


def test_a_failed_status_quotes_the_monitors_own_expected_statuses() -> None:
    """Status tables are kept once for the monitors that share them, and two lists make one
    table ("200-299" and "200-250, 251-299"): a failure still quotes each monitor's own list,
    as the general checker does (kept by that list, not by the table)."""
    from core.checkers.http import compiled_spec, prepare
    from core.engine.scheduler import raw_sockaddr
    from ext import ResultBuffer

    async def main() -> dict[int, str]:
        loop = asyncio.get_running_loop()
        buffer = ResultBuffer(16)
        engine = HttpEngine(buffer, lambda count, notable: None, lambda mid, for_good: None)
        loop.add_reader(engine.fileno(), engine.on_ready)
        async with Peer(http_handler(503)) as peer:
            origin = engine.origin(("127.0.0.1", peer.port))
            engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", peer.port)))
            for mid, statuses in ((1, ["200-299"]), (2, ["200-250", "251-299"])):
                spec = compiled_spec(prepare(_monitor(mid, peer.url(), {"expectedStatus": statuses}).spec))
                assert spec is not None
                _, _, request, table, text, keep_alive, head, follow, max_body = spec[:9]
                engine.add(mid, origin, request, table, text, 5.0, keep_alive, head, follow, max_body, 1000)
                assert engine.start(mid) == 1
            for _ in range(300):
                await asyncio.sleep(0.01)
                engine.expire()
                if len(buffer) >= 2:
                    break
        loop.remove_reader(engine.fileno())
        engine.close()
        batch = buffer.flush()
        errors = dict(zip(batch["error_rows"].tolist(), batch["error_texts"], strict=True))
        return {mid: errors[i] for i, mid in enumerate(batch["monitor_id"].tolist())}

    assert uvloop.run(main()) == {1: "status 503, expected 200-299", 2: "status 503, expected 200-250,251-299"}


_HEADER_NAMES = ["Server", "X-Trace", "content-type", "CONNECTION", "Connection", "Cache-Control", "x-long-" + "n" * 40]
_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=24)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.sampled_from([200, 201, 204, 299, 300, 304, 404, 418, 500, 503]),
       headers=st.lists(st.tuples(st.sampled_from(_HEADER_NAMES), _VALUE), max_size=6),
       body=st.binary(max_size=3000), pieces=st.integers(1, 5), close=st.booleans(),
       method=st.sampled_from(["GET", "HEAD"]), length_name=st.sampled_from(["Content-Length", "content-length"]),
       minor=st.sampled_from(["1", "0"]))
def test_the_compiled_parser_agrees_with_the_general_checker(status: int, headers: list[tuple[str, str]],
                                                             body: bytes, pieces: int, close: bool, method: str,
                                                             length_name: str, minor: str) -> None:
    """Well-formed responses of every shape the compiled path judges, in pieces: the same
    outcome from both paths, and no hand-over."""
    from core.checkers import REGISTRY, CheckContext, Env
    from core.checkers.http import compiled_spec, prepare
    from core.engine.scheduler import raw_sockaddr, run_with_deadline
    from ext import ResultBuffer

    if status in (204, 304):
        body = b""
    lines = [f"HTTP/1.{minor} {status} Whatever", f"{length_name}: {len(body)}",
             *(f"{name}: {value}" for name, value in headers)]
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            payload = head if request.startswith(b"HEAD ") else head + body
            step = max(1, -(-len(payload) // pieces))
            for i in range(0, len(payload), step):
                writer.write(payload[i:i + step])
                await writer.drain()
                await asyncio.sleep(0)
            if close or minor == "0":
                return

    async def main() -> None:
        loop = asyncio.get_running_loop()
        buffer = ResultBuffer(8)
        handed: list[int] = []
        engine = HttpEngine(buffer, lambda count, notable: None, lambda mid, for_good: handed.append(mid))
        loop.add_reader(engine.fileno(), engine.on_ready)
        async with Peer(serve) as peer:
            monitor = _monitor(1, peer.url(), {"keepAlive": True, "method": method})
            origin = engine.origin(("127.0.0.1", peer.port))
            engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", peer.port)))
            spec = compiled_spec(prepare(monitor.spec))
            assert spec is not None
            _, _, request, table, text, keep_alive, head_only, follow, max_body = spec[:9]
            engine.add(1, origin, request, table, text, 2.0, keep_alive, head_only, follow, max_body, 1000)
            compiled = []
            for _ in range(2):  # twice: the second may reuse the connection
                assert engine.start(1) == 1
                while engine.inflight:
                    await asyncio.sleep(0.002)
                    engine.expire()
                batch = buffer.flush()
                assert not handed and batch is not None
                compiled.append((bool(batch["ok"][0]), int(batch["status_code"][0]), int(batch["error_code"][0])))
            env = Env(loop)
            checker = REGISTRY["http"]
            general = []
            for _ in range(2):
                result = await run_with_deadline(checker, checker.prepare(monitor.spec), CheckContext(env, 1), 2.0)
                general.append((result.ok, result.status_code, result.error_code))
            env.close()
        loop.remove_reader(engine.fileno())
        engine.close()
        assert compiled == general

    uvloop.run(main())


def test_host_names_are_looked_up_a_bounded_number_at_a_time_and_only_while_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import core.engine.scheduler as scheduler_module

    monkeypatch.setattr(scheduler_module, "RESOLVE_EVERY", 0.2)

    async def main() -> None:
        s = Scheduler(lambda batch, transitions: None)
        for mid in range(1, 301):  # 300 monitors on 150 hosts
            s.upsert(_monitor(mid, f"http://host{mid % 150}.example/", {"interval": 60}))
        looked_up: list[str] = []
        running = peak = 0

        async def fake_resolve(key: tuple[str, int]) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            looked_up.append(key[0])
            await asyncio.sleep(0.01)
            running -= 1

        s._resolve = fake_resolve  # type: ignore[method-assign]
        s.start(asyncio.get_running_loop())
        await asyncio.sleep(0.15)
        assert sorted(set(looked_up)) == sorted(f"host{i}.example" for i in range(150))
        assert len(looked_up) == 150 and peak <= scheduler_module.RESOLVE_AT_ONCE
        for mid in range(1, 301):
            if mid % 150 >= 10:
                s.remove(mid)  # hosts 10..149 lose every monitor
        looked_up.clear()
        await asyncio.sleep(0.5)  # two more rounds for the hosts still in use, none for the rest
        assert set(looked_up) == {f"host{i}.example" for i in range(10)}
        await s.stop()

    uvloop.run(main())


def test_a_host_names_lookup_is_timed_and_its_failure_shows_at_the_next_check() -> None:
    """The compiled path looks an origin's name up every interval of its most frequent
    monitor: the check after a lookup reports its time as the DNS phase, and once the name
    stops resolving the next check says so (the general checker, handed the check, words it).
    The resolver answers for ``flaky.invalid`` while the test lets it (the general checker's
    own lookup of that name fails for real)."""
    import time

    async def main() -> None:
        rows: list[tuple[int, bool, int, int]] = []

        def sink(batch: dict[str, Any], _: list[Transition]) -> None:
            rows.extend(zip(batch["ts_us"].tolist(), batch["ok"].tolist(), batch["error_code"].tolist(),
                            batch["dns_us"].tolist(), strict=True))

        resolving = True
        async with Peer(http_handler()) as peer:
            s = Scheduler(sink)

            async def lookup(host: str, port: int) -> list[tuple[Any, ...]]:
                assert host == "flaky.invalid"
                await asyncio.sleep(0.005)
                if not resolving:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", peer.port))]

            s._lookup = lookup  # type: ignore[method-assign]
            s.upsert(_monitor(1, peer.url(host="flaky.invalid"), {"keepAlive": True}))
            s.start(asyncio.get_running_loop())
            await asyncio.sleep(3.2)
            resolving, flipped_us = False, time.time_ns() // 1000
            await asyncio.sleep(3.2)
            await s.stop()
        up = [row for row in rows if row[0] < flipped_us]
        assert sum(1 for _, ok, _, dns in up if ok and dns >= 5000) >= 2, up
        assert all(ok for _, ok, _, _ in up[1:]), up
        # The name fails from the flip on: a check more than an interval (and its lookup) later
        # is a DNS failure, every one.
        late = [row for row in rows if row[0] > flipped_us + 1_100_000]
        assert len(late) >= 2 and all((ok, code) == (False, ErrorCode.DNS) for _, ok, code, _ in late), rows

    uvloop.run(main())


def test_idle_connections_are_capped_over_all_origins() -> None:
    """Past ``max_idle`` the longest idle keep-alive connection is closed, whatever its origin."""
    import time

    import numpy as np

    from core.checkers.http import compiled_spec, prepare
    from core.engine.scheduler import raw_sockaddr
    from ext import ResultBuffer

    async def main() -> None:
        loop = asyncio.get_running_loop()
        buffer = ResultBuffer(64)
        engine = HttpEngine(buffer, lambda count, notable: None, lambda mid, for_good: None)
        engine.set_clock(time.monotonic_ns(), np.zeros(10, dtype=np.int64))
        engine.max_idle = 1
        loop.add_reader(engine.fileno(), engine.on_ready)

        async def check(mid: int) -> None:
            assert engine.start(mid) == 1
            while engine.inflight:
                await asyncio.sleep(0.002)

        async with Peer(http_handler()) as a, Peer(http_handler()) as b:
            for mid, peer in ((1, a), (2, b)):
                origin = engine.origin(("127.0.0.1", peer.port))
                engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", peer.port)))
                spec = compiled_spec(prepare(_monitor(mid, peer.url(), {"keepAlive": True}).spec))
                assert spec is not None
                _, _, request, table, text, keep_alive, head_only, follow, max_body = spec[:9]
                engine.add(mid, origin, request, table, text, 2.0, keep_alive, head_only, follow, max_body, 1000)
            await check(1)
            await check(1)  # reused
            assert (a.connections, engine.idle) == (1, 1)
            await check(2)  # parking b's connection closes a's, the longer idle
            assert engine.idle == 1
            await check(1)
            await check(2)  # a's new connection parked, so b's went: b connects again
            assert (a.connections, b.connections) == (2, 2)
        loop.remove_reader(engine.fileno())
        engine.close()
        assert buffer.flush()["ok"].all()

    uvloop.run(main())


def test_redirect_hops_are_routed_once_a_place_kept_within_bounds_and_given_back() -> None:
    """The engine asks ``route`` once per place a monitor is sent from, and keeps the answers
    for at most 16 places (a server naming a new place at each check is routed every time, and
    kept no more); a hop to an origin without an address hands that one check over, no route
    hands the monitor over for good; what the hops hold is given back when monitors go."""
    import time

    import numpy as np

    from core.checkers.http import compiled_spec, prepare
    from core.engine.scheduler import raw_sockaddr
    from ext import ResultBuffer

    async def main() -> None:
        loop = asyncio.get_running_loop()
        buffer = ResultBuffer(256)
        handed: list[tuple[int, bool]] = []
        engine = HttpEngine(buffer, lambda count, notable: None, lambda mid, for_good: handed.append((mid, for_good)))
        engine.set_clock(time.monotonic_ns(), np.zeros(10, dtype=np.int64))
        loop.add_reader(engine.fileno(), engine.on_ready)
        nowhere = engine.origin("no address yet")
        calls: collections.Counter[int] = collections.Counter()
        prepared: dict[int, tuple[Any, int]] = {}

        def route(mid: int, current: Any, status: int, location: bytes) -> Any:
            calls[mid] += 1
            if mid == 4:
                return None
            spec, origin = prepared[mid]
            target = spec.redirect(current if current is not None else spec.first, location, status)
            return target, nowhere if mid == 3 else origin, target.request

        engine.route = route

        async def check(mid: int) -> None:
            assert engine.start(mid) == 1
            while engine.inflight:
                await asyncio.sleep(0.002)

        async with Peer(_unique()) as unique, Peer(redirect_handler) as stable:
            for mid, peer, path in ((1, unique, "/"), (2, stable, "/start"), (3, stable, "/start"),
                                    (4, stable, "/start")):
                origin = engine.origin(("127.0.0.1", peer.port))
                engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", peer.port)))
                prepared[mid] = (prepare(_monitor(mid, peer.url(path), {}).spec), origin)
                spec = compiled_spec(prepared[mid][0])
                assert spec is not None
                engine.add(mid, origin, spec.request, spec.table, spec.expected, 2.0, spec.keep_alive, spec.head,
                           spec.follow, spec.max_body, 1000, max_redirects=spec.max_redirects)
            for _ in range(40):
                await check(1)
                await check(2)
            assert calls == {1: 40, 2: 1}
            assert engine.memory()["routes"] == 16 + 1 and engine.memory()["hops"] == 16 + 1
            await check(3)
            assert (handed, engine.detours, engine.takes(3)) == ([(3, False)], 1, True)
            await check(4)
            assert (handed[1:], engine.fallbacks, engine.takes(4)) == ([(4, True)], 1, False)
            for mid in (1, 2, 3, 4):
                engine.remove(mid)
            assert (engine.memory()["routes"], engine.memory()["hops"]) == (0, 0)
        loop.remove_reader(engine.fileno())
        engine.close()
        batch = buffer.flush()
        assert len(batch["ok"]) == 80 and batch["ok"].all()

    uvloop.run(main())


def test_a_monitors_redirects_make_a_bounded_number_of_origins() -> None:
    """A server sending to a new host at each check would make an origin (and a lookup) each
    time: past 16 origins for one monitor, its redirects are left to the general checker; the
    origins go with the monitor."""
    s = Scheduler(lambda batch, _: None, compiled_http=True)
    s.upsert(_monitor(1, "http://127.0.0.1:9/start", {}))
    hops = [s._fast_route(1, None, 302, f"http://host{n}.example:8080/".encode()) for n in range(20)]
    assert all(isinstance(hop, tuple) for hop in hops[:16]) and hops[16:] == [None] * 4
    assert s._fast_route(1, None, 302, b"http://host3.example:8080/") is not None  # (one it knows)
    assert len(s._named) == 16
    s.remove(1)
    assert not s._named and not s._origin_users


def test_a_long_location_is_followed_but_not_kept() -> None:
    """A location over 1 KiB is routed at each check (what a monitor keeps stays small)."""
    import time

    import numpy as np

    from core.checkers.http import compiled_spec, prepare
    from core.engine.scheduler import raw_sockaddr
    from ext import ResultBuffer

    long = "/final?" + "x" * 2000
    handler = _routes({b"GET /start ": _to(long), b"GET /final?": LANDED})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        buffer = ResultBuffer(16)
        engine = HttpEngine(buffer, lambda count, notable: None, lambda mid, for_good: None)
        engine.set_clock(time.monotonic_ns(), np.zeros(10, dtype=np.int64))
        loop.add_reader(engine.fileno(), engine.on_ready)
        calls: list[bytes] = []
        async with Peer(handler) as peer:
            origin = engine.origin(("127.0.0.1", peer.port))
            engine.set_address(origin, socket.AF_INET, raw_sockaddr(socket.AF_INET, ("127.0.0.1", peer.port)))
            prepared = prepare(_monitor(1, peer.url("/start"), {}).spec)
            spec = compiled_spec(prepared)
            assert spec is not None
            engine.add(1, origin, spec.request, spec.table, spec.expected, 2.0, False, False, True, spec.max_body)

            def route(mid: int, current: Any, status: int, location: bytes) -> Any:
                calls.append(location)
                target = prepared.redirect(prepared.first, location, status)
                return target, origin, target.request

            engine.route = route
            for _ in range(3):
                assert engine.start(1) == 1
                while engine.inflight:
                    await asyncio.sleep(0.002)
            assert calls == [long.encode()] * 3 and engine.memory()["routes"] == 0
        loop.remove_reader(engine.fileno())
        engine.close()
        assert buffer.flush()["ok"].tolist() == [True] * 3

    uvloop.run(main())
