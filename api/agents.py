"""Server agents on the wire: ``POST /api/agent/{token}/report`` (the agent's), the agent itself
at ``/agent/xuptime-agent.py``, and ``GET /api/v1/monitors/{id}/metrics`` (the series).

The report route is public like ``/api/push/{token}``: the token is the credential, so no API
key and no quota. It answers 202 ``{"data": {"stored", "duplicates", "interval"}}`` once the
reports are on disk; 400 (a field named), 404 (unknown token), 413 (over 64 KiB), 415 (not
JSON) and 429 (too many requests for this token, with ``Retry-After``) in the error shape.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency as Named
from litestar.params import FromPath

import core.agent
from api.history import series_query
from api.monitors import encode_cursor
from api.schemas import ERROR_RESPONSES
from core.clock import iso_ms
from core.models.agents import MAX_REPORT_BYTES, used_percent
from core.services import AgentService, Limited, NotFound, ServiceError, Unavailable

__all__ = ["ReportPath", "ReportProtocol", "agent_metrics", "agent_script"]

log = logging.getLogger("xuptime.api")

_SCRIPT = Path(core.agent.__file__).read_bytes()


class ReportPath:
    """ASGI in front of the application: ``POST /api/agent/{token}/report`` is answered here,
    without the framework's routing, injection and response objects, which cost more than the
    rest of a report together (a fleet of 10k agents at 30 s is 333 of these a second,
    measured in ``bench.agents``); everything else goes on to ``app``. The rules are the ones
    of the module's docstring; errors are the API's error shape."""

    def __init__(self, app: Any, agents: AgentService, body_timeout: float) -> None:
        self.app = app
        self.agents = agents
        self.body_timeout = body_timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # (the application's state, its OpenAPI schema...)

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/api/agent/") and path.endswith("/report"):
            token = path[len("/api/agent/"):-len("/report")]
            if token and "/" not in token:
                if scope["method"] != "POST":
                    await _send(send, 405, _error(405, "Method not allowed"), [(b"allow", b"POST")])
                    return
                status, body, headers = await self._report(token, scope, receive)
                await _send(send, status, body, headers)
                return
        await self.app(scope, receive, send)

    def http_protocol(self, fallback: Callable[..., asyncio.Protocol]) -> Callable[..., asyncio.Protocol]:
        """A protocol factory for the embedded server (uvicorn's ``http=``): connections whose
        requests are agents' reports are answered by ``ReportProtocol``; any other request
        hands its connection to ``fallback`` (uvicorn's own protocol, taking the same
        arguments)."""
        return functools.partial(ReportProtocol, self, fallback)

    async def _report(self, token: str, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]]
                      ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        headers = dict(scope["headers"])
        refused = self.admit(token, headers.get(b"content-type", b""), headers.get(b"content-length"))
        if refused is not None:
            return refused
        try:
            async with asyncio.timeout(self.body_timeout):  # (a timer, not a task as wait_for makes)
                body = await _read(receive)
        except TimeoutError:
            return _TIMED_OUT
        if body is None:
            return 413, _error(413, TOO_LARGE), []
        return await self.take(token, body)

    def admit(self, token: str, content_type: bytes, length: bytes | None) -> Answer | None:
        """The answer to a report refused before its body is read (unknown token, not JSON,
        too large), or None."""
        try:
            self.agents.monitor_of(token)  # (an unknown token is a 404 before anything is read)
        except ServiceError as exc:
            return _refusal(exc)
        if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
            return 415, _error(415, "Send the report as application/json"), []
        if length is not None and (not length.isdigit() or len(length) > 9 or int(length) > MAX_REPORT_BYTES):
            return 413, _error(413, TOO_LARGE), []
        return None

    async def take(self, token: str, body: bytes) -> Answer:
        """The answer to a report's body: 202 once stored, or the error."""
        try:
            ack = await self.agents.report(token, body)
            return 202, b'{"data":' + msgspec.json.encode(ack) + b"}", []
        except ServiceError as exc:
            return _refusal(exc)
        except Exception:
            log.exception("unhandled error on an agent's report")
            return 500, _error(500, "Internal server error"), []


Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


def _refusal(exc: ServiceError) -> Answer:
    status = (404 if isinstance(exc, NotFound) else 429 if isinstance(exc, Limited)
              else 503 if isinstance(exc, Unavailable) else 400)
    errors = [{"field": e.field, "message": e.message} for e in exc.errors] if exc.errors else None
    extra = [(b"retry-after", str(exc.retry_after).encode())] if isinstance(exc, Limited) else []
    return status, _error(status, exc.reason, errors), extra


_PREFIX, _SUFFIX = b"POST /api/agent/", b"/report"
_TOKEN = re.compile(rb"[A-Za-z0-9_-]{1,128}")
HEAD_MAX = 8192
#: Headers that need more than this path does (chunked bodies, 100-continue, upgrades): such a
#: request goes to the embedded server whole, where ``ReportPath`` answers it.
_HAND_OVER = frozenset((b"transfer-encoding", b"expect", b"upgrade"))


class ReportProtocol(asyncio.Protocol):
    """One connection, served here while its requests are plain agents' reports (HTTP/1.x,
    ``POST /api/agent/{token}/report`` with a ``Content-Length``); at the first request that is
    anything else it is handed, with every byte of that request, to the embedded server's own
    protocol for good. The answers are ``ReportPath``'s (``admit``, ``take``). A report is
    taken only whole; one at a time per connection, in order. An idle connection is closed
    after the server's keep-alive; a request not whole ``body_timeout`` after it began gets
    408 and the connection is closed.

    Why: an agent holds one connection and posts on it every 30 s. Through the ASGI server
    each report costs several times what it costs here (``bench.agents``), and a fleet of 10k
    agents is 333 of them a second."""

    def __init__(self, path: ReportPath, fallback: Callable[..., asyncio.Protocol], **server: Any) -> None:
        self.path, self.fallback, self.server = path, fallback, server
        self.state = server["server_state"]
        self.keep_alive_s: float = server["config"].timeout_keep_alive
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.pending: tuple[str, bool, int, int] | None = None  # (the report whose head is read)
        self.busy = False  # (a report is being taken: its answer comes before anything else)
        self.closing = False  # (close once the answer in progress is written)
        self.paused = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections.add(self)
        self._arm(self.keep_alive_s, self._idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self._disarm()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.busy:
            if len(self.buffer) > HEAD_MAX + MAX_REPORT_BYTES and self.transport and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        self._next()

    def shutdown(self) -> None:
        """The server is stopping: close now, or once the answer in progress is written."""
        if self.busy:
            self.closing = True
        elif self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:  # (answers are a few hundred bytes)
        pass

    def resume_writing(self) -> None:
        pass

    def _next(self) -> None:
        """Serve the request at the head of the buffer once it is whole; hand the connection
        over at one that is not ours."""
        buf = self.buffer
        if not buf:
            self._arm(self.keep_alive_s, self._idle)
            return
        if self.pending is None:
            end = buf.find(b"\r\n\r\n", 0, HEAD_MAX)
            if end < 0:
                if len(buf) >= HEAD_MAX or not (buf.startswith(_PREFIX) or _PREFIX.startswith(buf)):
                    self._hand_over()
                else:
                    self._deadline()
                return
            self.pending = self._head(bytes(buf[:end]), end + 4)
            if self.pending is None:
                return  # (handed over, or refused)
        token, keep_alive, start, size = self.pending
        if len(buf) < size:
            self._deadline()
            return
        body = bytes(buf[start:size])
        del buf[:size]
        self.pending = None
        self._disarm()
        self.busy = True
        self.state.total_requests += 1
        task = self.loop.create_task(self._take(token, body, keep_alive))
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)

    def _head(self, head: bytes, start: int) -> tuple[str, bool, int, int] | None:
        """A report's (token, keep-alive, body start, request end) from its head, admitted; or
        None once the connection is handed over or the report refused."""
        lines = head.split(b"\r\n")
        if any(b"\n" in line or b"\r" in line for line in lines):
            self._hand_over()  # (a bare CR or LF: the full parser decides)
            return None
        parts = lines[0].split(b" ")
        if (len(parts) != 3 or parts[0] != b"POST" or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0")
                or not parts[1].startswith(_PREFIX[5:]) or not parts[1].endswith(_SUFFIX)
                or not _TOKEN.fullmatch(parts[1][len(_PREFIX) - 5:-len(_SUFFIX)])):
            self._hand_over()
            return None
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            name = name.lower()
            if not colon or not name or name != name.strip() or name in headers or name in _HAND_OVER:
                self._hand_over()  # (odd or repeated headers: the full parser decides)
                return None
            headers[name] = value.strip()
        length = headers.get(b"content-length")
        if length is None or not length.isdigit():
            self._hand_over()
            return None
        keep = headers.get(b"connection", b"").lower()
        keep_alive = keep != b"close" if parts[2] == b"HTTP/1.1" else keep == b"keep-alive"
        token = parts[1][len(_PREFIX) - 5:-len(_SUFFIX)].decode()
        refused = self.path.admit(token, headers.get(b"content-type", b""), length)
        if refused is not None:
            self._answer(refused, keep_alive=False)  # (the body is not read)
            return None
        return token, keep_alive, start, start + int(length)

    def _deadline(self) -> None:
        """The request begun must be whole ``body_timeout`` after it began (not after its last byte)."""
        if self.timer is None or self.timer.when() > self.loop.time() + self.path.body_timeout:
            self._arm(self.path.body_timeout, self._timed_out)

    async def _take(self, token: str, body: bytes, keep_alive: bool) -> None:
        self._answer(await self.path.take(token, body), keep_alive)

    def _answer(self, answer: Answer, keep_alive: bool) -> None:
        self.busy = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        status, body, extra = answer
        close = not keep_alive or self.closing
        head = [b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())]
        for name, value in (*self.state.default_headers, *_JSON, (b"content-length", b"%d" % len(body)), *extra,
                            *((b"connection", b"close"),) * close):
            head.append(name + b": " + value + b"\r\n")
        head.append(b"\r\n")
        transport.write(b"".join(head) + body)
        if close:
            transport.close()
            return
        if self.paused:
            self.paused = False
            transport.resume_reading()
        self._next()

    def _hand_over(self) -> None:
        """The embedded server's protocol takes the connection, from the buffer on."""
        self._disarm()
        self.state.connections.discard(self)
        transport, self.transport = self.transport, None
        if transport is None or transport.is_closing():
            return
        protocol = self.fallback(**self.server)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.paused:
            transport.resume_reading()
        if self.buffer:
            protocol.data_received(bytes(self.buffer))
        self.buffer = bytearray()

    def _idle(self) -> None:
        self.timer = None
        if self.transport is not None and not self.busy:
            self.transport.close()

    def _timed_out(self) -> None:
        self.timer = None
        if not self.busy:
            self._answer(_TIMED_OUT, keep_alive=False)

    def _arm(self, seconds: float, then: Callable[[], None]) -> None:
        self._disarm()
        self.timer = self.loop.call_later(seconds, then)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


TOO_LARGE = f"Report larger than {MAX_REPORT_BYTES // 1024} KiB"
_JSON = [(b"content-type", b"application/json")]


async def _read(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes | None:
    """The request body, or None once it passes ``MAX_REPORT_BYTES`` (not read further)."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError  # (the client went away: nothing to answer)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REPORT_BYTES:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


def _error(status: int, reason: str, errors: list[dict[str, str]] | None = None) -> bytes:
    data: dict[str, Any] = {"reason": reason}
    if errors is not None:
        data["errors"] = errors
    return msgspec.json.encode({"statusCode": status, "statusMessage": HTTPStatus(status).phrase, "data": data})


_TIMED_OUT: Answer = (408, _error(408, "The report did not arrive in time",
                                  [{"field": "body", "message": "send the whole body at once"}]), [])


async def _send(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, body: bytes,
                headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON, (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


@get("/agent/xuptime-agent.py", include_in_schema=False, media_type="text/x-python; charset=utf-8",
     cache_control=None)
async def agent_script() -> Response[bytes]:
    """The agent as one file (Python 3.8+, standard library only): what ``xuptime agent`` runs."""
    return Response(_SCRIPT, media_type="text/x-python; charset=utf-8",
                    headers={"Content-Disposition": 'inline; filename="xuptime-agent.py"'})


def _pct(used: Any, total: Any) -> float | None:
    return _round(used_percent(used, total))


def _raw(r: tuple) -> dict[str, Any]:
    ts, cpu, mem_used, mem_total, swap_used, swap_total, l1, l5, l15, rx, tx, procs, uptime, disks = r
    return {"ts": iso_ms(ts), "cpuPercent": round(cpu, 2),
            "memory": {"usedBytes": mem_used, "totalBytes": mem_total, "percent": _pct(mem_used, mem_total)},
            "swap": None if swap_total is None else {"usedBytes": swap_used, "totalBytes": swap_total,
                                                      "percent": _pct(swap_used, swap_total)},
            "load": None if l1 is None else [round(l1, 2), round(l5, 2), round(l15, 2)],
            "disks": [{"mount": d["mount"], "usedBytes": d["used"], "totalBytes": d["total"],
                       "percent": _pct(d["used"], d["total"])} for d in disks or []],
            "network": None if rx is None else {"rxBytesPerS": round(rx, 1), "txBytesPerS": round(tx, 1)},
            "processes": procs, "uptimeS": uptime}


def _round(value: Any) -> float | None:
    return None if value is None else round(value, 2)


def _bucket(r: tuple) -> dict[str, Any]:
    ts, n, cpu, cpu_max, mem, mem_max, swap, l1, l1_max, rx, tx, procs, disks = r
    return {"ts": iso_ms(ts), "reports": n, "cpuPercent": {"avg": _round(cpu), "max": _round(cpu_max)},
            "memoryPercent": {"avg": _round(mem), "max": _round(mem_max)}, "swapPercent": _round(swap),
            "load1": None if l1 is None else {"avg": _round(l1), "max": _round(l1_max)},
            "network": None if rx is None else {"rxBytesPerS": round(rx, 1), "txBytesPerS": round(tx, 1)},
            "processes": procs,
            "disks": [{"mount": d[0], "percentMax": _round(d[1]), "usedBytes": d[2], "totalBytes": d[3]}
                      for d in disks]}


@get("/monitors/{monitor_id:int}/metrics", operation_id="getMonitorMetrics", tags=["history"],
     responses=ERROR_RESPONSES)
async def agent_metrics(request: Request[int, Any, Any], agents: Named[AgentService],
                        monitor_id: FromPath[int]) -> Response[bytes]:
    """An agent monitor's reports (``interval=raw``, the default) or buckets (``1m``, ``5m``,
    ``1h``, ``1d``: averages and maxima, each disk's fullest), newest first."""
    interval, limit, start, end, before = series_query(request.query_params, "metrics")
    if before is not None:  # (a cursor is the oldest time shown: exclusive)
        end = before - 1 if end is None else min(end, before - 1)
    rows, more = await agents.series(request.user, monitor_id, interval, start, end, limit)
    data = [_raw(r) for r in rows] if interval == "raw" else [_bucket(r) for r in rows]
    pagination = {"limit": limit, "nextCursor": encode_cursor(rows[-1][0]) if more and rows else None}
    return Response(msgspec.json.encode({"data": data, "pagination": pagination}), media_type=MediaType.JSON)
