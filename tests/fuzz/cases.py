"""The fuzz input format, shared by the atheris target and the regression test.

One input is: a flags byte (``end`` = flags % 3: nothing more, FIN, RST; bit 2: the request was
HEAD; bits 3-4: the monitor's keyword, none, ``o``, ``ok`` or ``needle``; bit 5: a
``maxBodyBytes`` of 16; bit 6: a JSON test, ``$.a``), a count byte ``n`` (at most 8 is used),
``n`` big-endian 16-bit cut offsets, then the response bytes, split at the cuts into the
pieces that arrive.
"""

from __future__ import annotations

from tests.hostile import Case

ENDS = ("none", "fin", "rst")
KEYWORDS = (None, "o", "ok", "needle")


def decode(data: bytes) -> Case:
    if len(data) < 2:
        return Case([data], "none", True, 0)
    flags, count = data[0], min(data[1], 8)
    at = 2 + 2 * count
    cuts = sorted({int.from_bytes(data[2 + 2 * i: 4 + 2 * i], "big") for i in range(count)})
    payload = data[at:]
    pieces, last = [], 0
    for cut in [*cuts, len(payload)]:
        cut = min(cut, len(payload))
        if cut > last:
            pieces.append(payload[last:cut])
            last = cut
    return Case(pieces, ENDS[flags % 3], True, 0, bool(flags & 4), keyword=KEYWORDS[(flags >> 3) & 3],
                max_body=16 if flags & 32 else None, json_path="$.a" if flags & 64 else None)


def encode(payload: bytes, end: str = "fin", head_only: bool = False, cuts: tuple[int, ...] = (),
           keyword: str | None = None, small_body: bool = False, json: bool = False) -> bytes:
    high = (4 if head_only else 0) | KEYWORDS.index(keyword) << 3 | (32 if small_body else 0) | (64 if json else 0)
    flags = high | (ENDS.index(end) - high) % 3  # (the low two bits make ``flags % 3`` the end)
    return bytes([flags, len(cuts)]) + b"".join(c.to_bytes(2, "big") for c in cuts) + payload
