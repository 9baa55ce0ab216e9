"""The control socket: ``xuptime.sock`` in the data dir (mode 0600), one JSON request per
line ``{"op", "args"}``, one JSON answer per line ``{"ok", "data"}`` or ``{"ok": false,
"error", "errors"}``. It is the CLI's door to a running server and answers from the same op
table (``core.ops``) the CLI runs itself on a stopped data dir.

A streamed operation (``core.ops.STREAM_OPS``: exports) answers its line, then an Arrow IPC
stream of its batches, and closes the connection: an export of any size crosses a batch at a
time. A stream cut short (no end-of-stream marker) is an export that failed midway."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
from pathlib import Path

import pyarrow as pa

from core import ops
from core.main import CONTROL_SOCKET
from core.services import ServiceError, Services

__all__ = ["start_control"]

log = logging.getLogger("xuptime.control")


async def start_control(data_dir: Path, services: Services) -> asyncio.AbstractServer:
    path = data_dir / CONTROL_SOCKET
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if request.get("op") in ops.STREAM_OPS:
                        await _stream(services, request.get("op"), request.get("args") or {}, writer)
                        break
                    data = await ops.run(services, request.get("op"), request.get("args") or {})
                    response = {"ok": True, "data": data}
                except (ServiceError, ops.OpError) as exc:
                    response = ops.error_payload(exc)
                except Exception as exc:
                    log.exception("control request failed")
                    response = {"ok": False, "error": f"internal error: {type(exc).__name__}"}
                writer.write(json.dumps(response, default=str).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(serve, path=str(path), limit=16 * 1024 * 1024)
    os.chmod(path, 0o600)
    return server


async def _stream(services: Services, op: str, args: dict, writer: asyncio.StreamWriter) -> None:
    """A streamed operation: its answer line (an error line if it refuses before its first
    batch), then its batches as an Arrow IPC stream."""
    try:
        header, batches = await ops.stream(services, op, args)
        first = await anext(batches, None)
    except (ServiceError, ops.OpError) as exc:
        writer.write(json.dumps(ops.error_payload(exc), default=str).encode() + b"\n")
        return
    writer.write(json.dumps({"ok": True, "data": header}).encode() + b"\n")
    sink = io.BytesIO()
    ipc = pa.ipc.new_stream(sink, first.schema if first is not None else pa.schema([]))

    async def send() -> None:
        writer.write(sink.getvalue())
        sink.seek(0)
        sink.truncate()
        await writer.drain()

    try:
        if first is not None:
            ipc.write_batch(first)
            await send()
        async for batch in batches:
            ipc.write_batch(batch)
            await send()
        ipc.close()  # (the end-of-stream marker: the export is whole)
        await send()
    except Exception:
        log.exception("streaming %s failed; the stream is cut short", op)
        with contextlib.suppress(Exception):
            await batches.aclose()  # type: ignore[attr-defined]
