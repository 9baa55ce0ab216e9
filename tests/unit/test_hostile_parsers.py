"""Both HTTP parsers against hostile responses, in memory (see ``tests/hostile.py``).

The oracle is the verdict a strict HTTP/1.1 client gives each generated response; the general
checker must give it, and the compiled path (with its hand-overs) must give exactly the
general checker's outcome: ok, status, error code and text.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.hostile import Case, CompiledJudge, judge_general, responses

_judge = CompiledJudge()


def _agree(case: Case) -> None:
    general = judge_general(case)
    compiled = _judge(case)
    assert compiled == general, (case.why, case.pieces, case.end, case.keyword, case.max_body)
    if case.max_body is not None:
        return  # (a body cut short is judged on its prefix: the strict client's verdict is moot)
    ok, status = general[0], general[1]
    if case.valid:
        assert ok == case.expected_ok(), (case.why, case.pieces, case.end, general)
        assert status == case.status, (case.why, case.pieces, general)
    else:
        assert not ok, (case.why, case.pieces, case.end, general)


# The rows of the issue that found these, as fixed examples.
_CL_TWICE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length : 9\r\n\r\nhi"
_NUL_NAME = b"HTTP/1.1 200 OK\r\nX\x00 Y: a\r\nContent-Length: 2\r\n\r\nhi"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(Case([b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody"], "fin", True, 200, why="eof body"))
@example(Case([b"HTTP/1.0 200 OK\r\n\r\nbody"], "fin", True, 200, why="http/1.0 eof body"))
@example(Case([b"HTTP/1.1 200 OK\r\n\r\nbody"], "rst", False, 200, why="eof body, reset"))
@example(Case([_CL_TWICE], "fin", False, 0, why="Content-Length twice"))
@example(Case([_NUL_NAME], "fin", False, 0, why="NUL in a name"))
@example(Case([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", b"HTTP/1.1 100 Continue\r\n\r\n"], "none", True,
              200, why="a 1xx after the response"))
@example(Case([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 100 Continue\r\n\r\n"], "none", True, 200,
              why="a 1xx after the response, same read"))
@example(Case([b"HTTP/1.1 050 Odd\r\nContent-Length: 0\r\n\r\n"], "none", False, 0, why="status 050"))
@example(Case([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nbody"], "fin", True, 200, why="identity"))
@example(Case([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nbody"], "fin", True, 200,
              why="chunked, gzip"))
@example(Case([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhello"], "fin", True, 200, why="body too long"))
@example(Case([b"HTTP/1.1 204 No Content\r\n\r\nhello"], "fin", True, 204, why="204 with a body"))
@example(Case([b"HTTP/1.1 200 OK\r\nX: a\nContent-Length: 5\r\n\r\nhello"], "fin", False, 0, why="bare LF"))
@example(Case([b"HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n"], "fin", False, 0, why="CTL in the reason"))
@example(Case([b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"], "fin", False, 0, why="HTTP/2.0"))
@given(case=responses())
def test_both_parsers_give_a_strict_clients_verdict(case: Case) -> None:
    _agree(case)


def test_the_compiled_path_judges_what_it_can_and_hands_over_the_rest() -> None:
    """The compiled path must not hand everything over (that would make agreement trivial)."""
    judge = CompiledJudge()
    plain = Case([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"], "none", True, 200)
    assert judge(plain) == (True, 200, 0, None) and judge.hand_overs == 0
    cut = Case([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi"], "fin", False, 200)
    assert judge(cut) == judge_general(cut) == (False, 200, 12, "connection closed before the body was complete")
    assert judge.hand_overs == 0
    assert judge(Case([_CL_TWICE], "fin", False, 0))[0] is False and judge.hand_overs == 1
    # Chunks and keywords are judged here, across pieces; a chunk extension is handed over.
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhay \r\n7\r\nneedle!\r\n0\r\n\r\n"
    for keyword, outcome in (("y need", (True, 200, 0, None)),
                             ("needles", (False, 200, 8, "keyword not found in the response body"))):
        case = Case([chunked[:50], chunked[50:53], chunked[53:]], "none", True, 200, keyword=keyword,
                    body=b"hay needle!")
        assert judge(case) == judge_general(case) == outcome and judge.hand_overs == 1
    extension = Case([chunked.replace(b"4\r\n", b"4;a=b\r\n")], "none", True, 200)
    assert judge(extension) == judge_general(extension) == (True, 200, 0, None) and judge.hand_overs == 2


def test_a_dripped_head_is_judged() -> None:
    """63 KB of headers one byte per read (each read used to rescan the whole head)."""
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * 63_000 + b"\r\nContent-Length: 0\r\n\r\n"
    case = Case([head[i:i + 1] for i in range(len(head))], "none", True, 200)
    assert _judge(case) == judge_general(case) == (True, 200, 0, None)


def test_fuzz_findings_and_seeds_stay_agreed() -> None:
    """Every input ``make fuzz`` found (and its seed corpus): both paths give one outcome."""
    from pathlib import Path

    from tests.fuzz.cases import decode

    folder = Path(__file__).parent.parent / "fuzz"
    files = sorted((folder / "regressions").iterdir()) + sorted((folder / "corpus").iterdir())
    assert len(files) >= 8
    for path in files:
        case = decode(path.read_bytes())
        assert _judge(case) == judge_general(case), path.name


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=responses(), max_body=st.integers(0, 700))
def test_both_paths_cut_a_body_at_max_body_bytes_alike(case: Case, max_body: int) -> None:
    """A small ``maxBodyBytes``: the keyword is looked for in the same prefix both ways, and
    the response ends there both ways (whatever follows is not read)."""
    case.max_body = max_body
    _agree(case)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noise=st.binary(max_size=300), prefix=st.sampled_from([b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 "]),
       end=st.sampled_from(["none", "fin", "rst"]), cuts=st.lists(st.integers(0, 320), max_size=4))
def test_random_bytes_get_one_verdict_and_never_ok(noise: bytes, prefix: bytes, end: str, cuts: list[int]) -> None:
    """Arbitrary bytes (after nothing, a status line, or half of one): the same outcome from
    both paths, and never a passing check (random bytes are no complete response)."""
    payload = prefix + noise
    points = sorted({min(c, len(payload)) for c in cuts} | {len(payload)})
    pieces, last = [], 0
    for at in points:
        if at > last:
            pieces.append(payload[last:at])
            last = at
    case = Case(pieces, end, False, 0, why="random bytes")
    general = judge_general(case)
    assert _judge(case) == general, (payload, end)
    if b"\r\n\r\n" not in payload:  # no head ended: nothing could have passed
        assert not general[0], (payload, end)


# URLs: the checker's quick split must take every URL apart exactly as ``urlsplit`` does
# (where it differs, a check would go to another host, port or path than the one validated).
_URL_CHARS = "aAzZ09.-_~!$&'()*+,;=:@%/?#[]\\ \t\x00\x7féЯ"


def _urlsplit_view(url: str) -> tuple[object, ...]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.hostname, parts.port, parts.path, parts.query


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(["http://", "https://", "HTTP://", "http:", "ftp://", "http:///", ""]),
       st.text(_URL_CHARS, max_size=12), st.sampled_from(["", ":", ":80", ":0", ":65535", ":65536", ":099999", ":8a"]),
       st.text(_URL_CHARS, max_size=20))
@example("http://", "Example.COM", ":8080", "/a/b?x=1&y=%20")
@example("http://", "127.0.0.1", ":80", "")
@example("http://", "h", ":99999", "/")
@example("http://", "h", "", "?q#f")
def test_the_quick_url_split_is_urlsplit(scheme: str, host: str, port: str, rest: str) -> None:
    from core.checkers.http import split_url

    url = scheme + host + port + rest
    try:
        expected: tuple[object, ...] | type[Exception] = _urlsplit_view(url)
    except ValueError:
        expected = ValueError
    try:
        got: tuple[object, ...] | type[Exception] = split_url(url)
    except ValueError:
        got = ValueError
    assert got == expected, url
