"""Main <-> worker transport: length-prefixed msgspec msgpack frames.

Every frame is a tagged Struct (``t`` names the kind) with a version ``v``, so a reader can
refuse what it does not understand. Results travel columnar: each column is the raw bytes of
a numpy array (dtypes fixed by ``ext.COLUMNS``), never one object per row.

``Channel`` is the interface; ``StreamChannel`` is the local implementation over a Unix
socket pair. A NATS JetStream channel can carry the same frames between machines later.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import msgspec
import numpy as np

from core.engine.table import MonitorTable
from core.models import Monitor, Transition
from core.models.packed import unpack
from ext import COLUMNS, DTYPES

__all__ = [
    "PROTOCOL_VERSION", "AgentResults", "AnyFrame", "Bye", "Channel", "Delete", "Frame", "Hello", "Push", "Results",
    "Shutdown", "Stats", "StreamChannel", "Upsert", "batch_from_frame", "frame_from_batch",
]

PROTOCOL_VERSION = 1
MAX_FRAME = 256 * 1024 * 1024
_HEADER = struct.Struct(">I")


class Frame(msgspec.Struct, tag_field="t", kw_only=True):
    v: int = PROTOCOL_VERSION


class Hello(Frame, tag="hello"):
    shard: int
    shards: int
    pid: int


class Upsert(Frame, tag="upsert"):
    """Monitors to add or replace, each as ``core.models.packed.pack`` wrote it (the main
    process's without its name: a worker needs none), with its live status beside it: a
    worker keeps a compiled monitor as those bytes."""

    monitors: list[bytes]
    statuses: list[str]

    @classmethod
    def from_table(cls, table: MonitorTable, ids: Iterable[int]) -> Upsert:
        """The held ``ids`` of ``table`` as it packed them, with their live statuses."""
        held = [mid for mid in ids if mid in table]
        return cls(monitors=[table.packed(mid) for mid in held], statuses=[table.status(mid) for mid in held])

    def decoded(self) -> Iterator[tuple[Monitor, bytes]]:
        if len(self.statuses) != len(self.monitors):
            raise ValueError("an upsert frame needs one status a monitor")
        for packed, status in zip(self.monitors, self.statuses, strict=True):
            yield unpack(packed, status), packed


class Delete(Frame, tag="delete"):
    ids: list[int]


class Results(Frame, tag="results"):
    rows: int
    columns: dict[str, bytes]
    error_rows: bytes
    error_texts: list[str]
    transitions: list[Transition] = []


class Stats(Frame, tag="stats"):
    shard: int
    monitors: int
    checks: int
    inflight: int
    queued: int
    skipped_overlap: int
    dropped: int
    #: cumulative lateness histogram: count per millisecond, last bucket is "or more".
    lateness_ms: bytes
    rss_bytes: int
    limit: int = 0  # the adaptive in-flight limit
    #: TLS handshakes the compiled path completed since the worker started, and how many of
    #: them resumed a session.
    tls_handshakes: int = 0
    tls_resumed: int = 0
    #: Monitors the compiled path handed to the general checkers for good, and checks it
    #: handed over once (a redirect to a name not looked up yet).
    handed_over: int = 0
    detours: int = 0


class Push(Frame, tag="push"):
    """A heartbeat for a push monitor, from ``/api/push/{token}`` (main -> owning worker)."""

    monitor_id: int
    ts: float  # wall time, seconds
    ok: bool
    msg: str | None = None
    ping_ms: float | None = None


class AgentResults(Frame, tag="agent"):
    """Agents' reports as judged by the serve process, stored: ``(monitor id, ts s, ok,
    reason)`` each, in time order per monitor (main -> owning worker, one frame a commit)."""

    results: list[tuple[int, float, bool, str | None]]


class Shutdown(Frame, tag="shutdown"):
    pass


class Bye(Frame, tag="bye"):
    pass


AnyFrame = Hello | Upsert | Delete | Push | AgentResults | Results | Stats | Shutdown | Bye
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyFrame)


def frame_from_batch(batch: dict[str, Any], transitions: list[Transition]) -> Results:
    return Results(
        rows=len(batch["monitor_id"]),
        columns={name: batch[name].tobytes() for name in COLUMNS},
        error_rows=batch["error_rows"].astype(np.int32).tobytes(),
        error_texts=list(batch["error_texts"]),
        transitions=transitions,
    )


def batch_from_frame(frame: Results) -> dict[str, Any]:
    batch: dict[str, Any] = {name: np.frombuffer(frame.columns[name], dtype=DTYPES[name]) for name in COLUMNS}
    for name in COLUMNS:
        if len(batch[name]) != frame.rows:
            raise ValueError(f"column {name} has {len(batch[name])} rows, expected {frame.rows}")
    batch["error_rows"] = np.frombuffer(frame.error_rows, dtype=np.int32)
    batch["error_texts"] = frame.error_texts
    return batch


class Channel(Protocol):
    """What the worker and the supervisor use of a transport, all of it: a NATS JetStream
    channel carrying the same frames must be able to stand in without touching either. How a
    channel is made (a socket pair here, a connection and subjects there) is the caller's."""

    async def send(self, frame: Frame) -> None:
        """Write a frame and wait while the peer is behind (back-pressure)."""
        ...

    def send_nowait(self, frame: Frame) -> None:
        """Write a frame without waiting (from callbacks); ``buffered`` says how much waits."""
        ...

    async def recv(self) -> Frame | None:
        """The next frame, or None once the peer is gone."""
        ...

    def buffered(self) -> int:
        """Bytes written but not yet delivered."""
        ...

    def close(self) -> None:
        """Close at once; what is buffered may be lost."""
        ...

    async def aclose(self) -> None:
        """Close after everything written so far has been delivered."""
        ...


class StreamChannel:
    """Frames over an asyncio stream pair; ``recv`` returns None at EOF."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, frame: Frame) -> None:
        payload = _encoder.encode(frame)
        self.writer.write(_HEADER.pack(len(payload)) + payload)
        await self.writer.drain()

    def send_nowait(self, frame: Frame) -> None:
        payload = _encoder.encode(frame)
        self.writer.write(_HEADER.pack(len(payload)) + payload)

    async def recv(self) -> Frame | None:
        try:
            header = await self.reader.readexactly(4)
            (size,) = _HEADER.unpack(header)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes exceeds the limit")
            payload = await self.reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        frame = _decoder.decode(payload)
        if frame.v != PROTOCOL_VERSION:
            raise ValueError(f"unsupported frame version {frame.v}")
        return frame

    def buffered(self) -> int:
        transport = self.writer.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def close(self) -> None:
        self.writer.close()

    async def aclose(self) -> None:
        """Close after everything written so far has reached the socket (``drain`` alone
        returns while less than the high-water mark is buffered)."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    @classmethod
    async def from_socket(cls, sock: Any) -> StreamChannel:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_FRAME)
        return cls(reader, writer)
