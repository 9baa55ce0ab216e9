"""The fuzz input format, shared by the atheris target and the regression test.

One input is: a flags byte (``end`` = flags % 3: nothing more, FIN, RST; bit 2: the request was
HEAD), a count byte ``n`` (at most 8 is used), ``n`` big-endian 16-bit cut offsets, then the
response bytes, split at the cuts into the pieces that arrive.
"""

from __future__ import annotations

from tests.hostile import Case

ENDS = ("none", "fin", "rst")


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
    return Case(pieces, ENDS[flags % 3], True, 0, bool(flags & 4))


def encode(payload: bytes, end: str = "fin", head_only: bool = False, cuts: tuple[int, ...] = ()) -> bytes:
    flags = ENDS.index(end) | (4 if head_only else 0)
    return bytes([flags, len(cuts)]) + b"".join(c.to_bytes(2, "big") for c in cuts) + payload
