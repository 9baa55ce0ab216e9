"""Hostile HTTP responses, and the two judges of them.

``responses()`` is a Hypothesis strategy of ``Case``s: a response as it arrives (pieces, then a
close, a reset, or silence), well formed or with one field broken, and the verdict a strict
HTTP/1.1 client gives it (``valid`` and the final ``status``). The broken ones are what a
monitored server can send: conflicting or negative ``Content-Length``, both it and
``Transfer-Encoding``, bad chunk sizes, bare CR or LF, NUL and space in header names, obs-fold,
control bytes in the reason phrase, other versions, status 000-099, floods of 1xx, a close or
reset at any offset, bytes after the body.

``judge_general`` runs the general checker's protocol (``core.checkers.http``) on the pieces,
``judge_compiled`` the compiled parser (``ext._fasthttp``, through ``HttpEngine.feed_test``)
and, when it hands the check over, the general checker, as the scheduler does. Both work in
memory, so thousands of cases run in seconds; ``test_hostile_http.py`` also sends them over
real sockets.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from core.checkers import http
from core.checkers.base import CheckContext, Env
from core.models import ErrorCode, Monitor, parse_monitor

#: One outcome: ok, status, error code, error text.
Outcome = tuple[bool, int, int, str | None]
TIMEOUT: Outcome = (False, 0, int(ErrorCode.TIMEOUT), "timed out")


@dataclass
class Case:
    pieces: list[bytes]
    end: str  # "fin", "rst" or "none" (the server says nothing more)
    valid: bool  # a strict HTTP/1.1 client accepts the response
    status: int  # its final status, when valid
    head_only: bool = False  # the request was HEAD
    why: str = ""  # the mutation, for failure messages
    keyword: str | None = None  # the monitor's keyword test
    body: bytes = b""  # the body as sent (before chunking), for the keyword's verdict
    max_body: int | None = None  # the monitor's maxBodyBytes (None: the default)
    json_path: str | None = None  # the monitor's JSON test (the fuzz target's only: no oracle for it)

    @property
    def payload(self) -> bytes:
        return b"".join(self.pieces)

    def expected_ok(self) -> bool:
        found = self.keyword is None or (not self.head_only and self.keyword.encode() in self.body)
        return self.valid and 200 <= self.status <= 299 and found


def monitor(head_only: bool = False, url: str = "http://127.0.0.1:9/", keyword: str | None = None,
            max_body: int | None = None, json_path: str | None = None) -> Monitor:
    """The monitor every case is judged for: default statuses (200-299); redirects followed, at
    most 0 of them (a redirect then fails without a next request: both parsers read it to its end)."""
    fields: dict[str, Any] = {"keyword": keyword} if keyword is not None else {}
    if max_body is not None:
        fields["maxBodyBytes"] = max_body
    if json_path is not None:
        fields["jsonPath"] = json_path
    m = parse_monitor({"name": "hostile", "type": "http", "url": url, "method": "HEAD" if head_only else "GET",
                       "followRedirects": True, "maxRedirects": 0, "keepAlive": True, "interval": 1, **fields})
    m.id = 1
    return m


def case_monitor(case: Case) -> Monitor:
    return monitor(case.head_only, keyword=case.keyword, max_body=case.max_body, json_path=case.json_path)


class _Transport:
    """Enough of a transport for the protocol to run without a socket."""

    def __init__(self) -> None:
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def write(self, data: bytes) -> None:
        pass


def judge_general(case: Case) -> Outcome:
    """The general checker's verdict on ``case`` (in memory)."""
    prepared = http.prepare(case_monitor(case).spec)  # type: ignore[arg-type]
    ctx = CheckContext(Env.__new__(Env), 1)
    done: list[bool] = []
    proto = http._Response()
    proto.connection_made(_Transport())
    proto.begin(None, prepared.max_body, prepared.keep_body, case.head_only, lambda: done.append(True))
    for piece in case.pieces:
        if done:
            break
        proto.data_received(piece)
    if not done:
        if case.end == "fin":
            proto.eof_received()
            proto.connection_lost(None)
        elif case.end == "rst":
            proto.connection_lost(ConnectionResetError(104, "Connection reset by peer"))
    if not done:
        return TIMEOUT
    result = http._evaluate(prepared, ctx, proto, prepared.first, 0)
    assert not isinstance(result, http._Target)
    return (result.ok, result.status_code, result.error_code, result.error)


class CompiledJudge:
    """One ``HttpEngine`` with the case's monitor registered; ``__call__`` judges a case."""

    def __init__(self) -> None:
        from ext import HttpEngine, ResultBuffer

        assert HttpEngine is not None, "ext._fasthttp is not built"
        self.buffer = ResultBuffer(8)
        self.handed: list[int] = []
        self.engine = HttpEngine(self.buffer, lambda count, notable: None,
                                 lambda mid, for_good: self.handed.append(mid))
        self.engine.json_judge = http.json_problem
        self.origin = self.engine.origin(("127.0.0.1", 9, 0))
        self.hand_overs = 0

    def __call__(self, case: Case) -> Outcome:
        spec = http.compiled_spec(http.prepare(case_monitor(case).spec))  # type: ignore[arg-type]
        assert spec is not None
        _, _, request, table, text, keep_alive, head, follow, max_body = spec[:9]
        self.engine.add(1, self.origin, request, table, text, 2.0, keep_alive, head, follow, max_body, 1000,
                        keyword=spec.keyword, json=spec.json, max_redirects=spec.max_redirects)
        self.handed.clear()
        fd = socket.socket().detach()
        ended = self.engine.feed_test(1, fd, list(case.pieces), {"none": 0, "fin": 1, "rst": 2}[case.end])
        batch = self.buffer.flush()
        if self.handed:
            assert batch is None
            self.hand_overs += 1
            return judge_general(case)  # what the scheduler does with a hand-over
        if not ended:
            assert batch is None
            return TIMEOUT
        assert batch is not None and len(batch["ok"]) == 1
        error = batch["error_texts"][0] if len(batch["error_rows"]) else None
        return (bool(batch["ok"][0]), int(batch["status_code"][0]), int(batch["error_code"][0]), error)


# -- the cases ------------------------------------------------------------------------------

_NAMES = ["Server", "X-Trace", "content-type", "Cache-Control", "ETag", "x-" + "n" * 30, "Location", "location"]
_VALUES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(str.strip)
_REASONS = st.sampled_from(["OK", "", "Whatever it is", "N\xe9e"])
_STATUSES = st.sampled_from([200, 201, 204, 299, 301, 302, 304, 308, 404, 418, 500, 503, 999])

MUTATIONS = [
    "none", "none", "none", "conflicting_cl", "duplicate_cl", "negative_cl", "space_in_cl", "cl_and_te",
    "bad_chunk", "bare_cr", "bare_lf", "bare_lf_before_cl", "nul_in_name", "space_before_colon", "obs_fold",
    "ctl_in_reason", "ctl_in_value", "bad_version", "status_0xx", "interim", "interim_flood", "extra_after",
    "pipelined_1xx", "cut", "reset",
]


def _chunks(body: bytes, sizes: list[int]) -> bytes:
    out, at = [], 0
    for size in sizes:
        if at >= len(body):
            break
        part = body[at:at + size]
        out.append(b"%x\r\n%s\r\n" % (len(part), part))
        at += len(part)
    if at < len(body):
        out.append(b"%x\r\n%s\r\n" % (len(body) - at, body[at:]))
    return b"".join(out) + b"0\r\n\r\n"


@st.composite
def responses(draw: st.DrawFn) -> Case:
    """A response and the verdict a strict client gives it (see the module docstring)."""
    mutation = draw(st.sampled_from(MUTATIONS))
    head_only = draw(st.booleans()) if mutation not in ("bad_chunk", "cl_and_te") else False
    minor = draw(st.sampled_from([b"1", b"0"]))
    status = draw(_STATUSES)
    reason = draw(_REASONS).encode("latin-1")
    if mutation in ("bad_chunk", "cl_and_te", "conflicting_cl", "duplicate_cl", "negative_cl", "space_in_cl",
                    "bare_lf_before_cl") and status in (204, 304):
        status = 200  # these need a body to break
    no_body = head_only or status in (204, 304)
    framing = "none" if no_body else draw(st.sampled_from(["cl", "chunked", "eof"]))
    if mutation in ("bad_chunk", "cl_and_te"):
        framing = "chunked"
    if mutation in ("conflicting_cl", "duplicate_cl", "negative_cl", "space_in_cl", "bare_lf_before_cl"):
        framing = "cl" if not no_body else framing
    body = draw(st.binary(max_size=600)) if framing != "none" else b""
    keyword = draw(st.none() | st.text(alphabet="abcxyz\xe9", min_size=1, max_size=6))
    if keyword is not None and body and draw(st.booleans()):
        at = draw(st.integers(0, len(body)))
        body = body[:at] + keyword.encode() + body[at:]
    sent = body
    headers = [(name.encode(), value.encode()) for name, value in
               draw(st.lists(st.tuples(st.sampled_from(_NAMES), _VALUES), max_size=4))]
    if draw(st.booleans()):
        headers.append((b"Connection", draw(st.sampled_from([b"close", b"keep-alive"]))))
    if framing == "cl":
        headers.insert(draw(st.integers(0, len(headers))), (b"Content-Length", str(len(body)).encode()))
    elif framing == "chunked":
        headers.append((b"Transfer-Encoding", b"chunked"))
        body = _chunks(body, draw(st.lists(st.integers(1, 200), max_size=4)))
    elif framing == "eof" and draw(st.booleans()):
        headers.append((b"Transfer-Encoding", draw(st.sampled_from([b"identity", b"chunked, gzip"]))))
    elif head_only and draw(st.booleans()):
        headers.append((b"Content-Length", str(draw(st.integers(0, 5000))).encode()))
    valid = True
    version = b"HTTP/1." + minor
    status_text = b"%03d" % status

    def header_lines() -> list[bytes]:
        return [name + b": " + value for name, value in headers]

    lines = header_lines()
    interim = b""
    extra = b""
    if mutation == "conflicting_cl" and framing == "cl":
        lines.insert(draw(st.integers(0, len(lines))), b"Content-Length: %d" % (len(body) + draw(st.integers(1, 9))))
        valid = False
    elif mutation == "duplicate_cl" and framing == "cl":
        lines.append(b"Content-Length: %d" % len(body))  # llhttp and this client refuse even equal ones
        valid = False
    elif mutation == "negative_cl" and framing == "cl":
        lines = [b"Content-Length: -%d" % max(1, len(body)) if line.startswith(b"Content-Length") else line
                 for line in lines]
        valid = False
    elif mutation == "space_in_cl" and framing == "cl":
        lines = [b"Content-Length: 1 %d" % len(body) if line.startswith(b"Content-Length") else line
                 for line in lines]
        valid = False
    elif mutation == "cl_and_te" and framing == "chunked":
        lines.insert(0, b"Content-Length: %d" % len(body))
        valid = False
    elif mutation == "bad_chunk" and framing == "chunked":
        bad = draw(st.sampled_from([b"zz", b"-1", b"1 2", b"", b"ffffffffffffffffff"]))
        body = bad + b"\r\n" + body
        valid = False
    elif mutation in ("bare_cr", "bare_lf", "nul_in_name", "space_before_colon", "obs_fold", "ctl_in_value"):
        broken = {
            "bare_cr": b"X-Broken: a\rb",
            "bare_lf": b"X-Broken: a\nX-Other: b",
            "nul_in_name": b"X\x00 Y: a",
            "space_before_colon": b"Content-Length : 9" if framing == "cl" else b"X-Broken : a",
            "obs_fold": b"X-Broken: a\r\n folded",
            "ctl_in_value": b"X-Broken: a\x01b",
        }[mutation]
        lines.insert(draw(st.integers(0, len(lines))), broken)
        valid = False
    elif mutation == "bare_lf_before_cl" and framing == "cl":
        lines = [line for line in lines if not line.startswith(b"Content-Length")]
        lines.append(b"X-Before: a\nContent-Length: %d" % len(body))
        valid = False
    elif mutation == "ctl_in_reason":
        reason = b"O\x01K"
        valid = False
    elif mutation == "bad_version":
        version = draw(st.sampled_from([b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"http/1.1", b"HTTP/1.1 "]))
        valid = False
    elif mutation == "status_0xx":
        status_text = b"%03d" % draw(st.integers(0, 99))
        valid = False
    elif mutation == "interim":
        interim = b"".join(draw(st.lists(st.sampled_from([b"HTTP/1.1 100 Continue\r\n\r\n",
                                                          b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"]),
                                         min_size=1, max_size=3)))
    elif mutation == "interim_flood":
        interim = b"HTTP/1.1 100 Continue\r\n\r\n" * (64 * 1024 // 25 + draw(st.integers(1, 50)))
        valid = False
    elif mutation == "extra_after" and framing != "eof":
        extra = draw(st.sampled_from([b"garbage", b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", b"\r\n"]))
    elif mutation == "pipelined_1xx" and framing != "eof":
        extra = b"HTTP/1.1 100 Continue\r\n\r\n"

    head = version + b" " + status_text + (b" " + reason if reason or draw(st.booleans()) else b"") + b"\r\n"
    head += b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    payload = interim + head + (b"" if head_only else body)
    complete_at = len(payload)
    payload += extra
    end = "fin" if framing == "eof" else draw(st.sampled_from(["fin", "fin", "rst", "none"]))
    if framing == "eof" and draw(st.integers(0, 4)) == 0:
        end = "rst"
    if valid and framing == "eof" and end == "rst":
        valid = False  # a body framed by the close, cut by a reset: incomplete
    if mutation in ("cut", "reset"):
        at = draw(st.integers(0, len(payload)))
        payload = payload[:at]
        end = "fin" if mutation == "cut" else "rst"
        head_end = len(interim) + len(head)
        # A body framed by the close is whole at any clean close after the head.
        valid = (at >= head_end and mutation == "cut") if framing == "eof" else at >= complete_at
    elif valid and end == "none" and framing == "eof":
        end = "fin"
    if valid and framing != "eof" and end == "none" and len(payload) < complete_at:
        valid = False
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=6)))
    pieces, last = [], 0
    for at in [*cuts, len(payload)]:
        if at > last:
            pieces.append(payload[last:at])
            last = at
    if not valid and status_text.startswith(b"0"):
        status = 0
    return Case(pieces, end, valid, status, head_only, mutation, keyword, sent)
