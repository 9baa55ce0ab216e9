"""The control socket: ``xuptime.sock`` in the data dir (mode 0600), one JSON request per
line ``{"op", "args"}``, one JSON answer per line ``{"ok", "data"}`` or ``{"ok": false,
"error", "errors"}``. It is the CLI's door to a running server and answers from the same op
table (``core.ops``) the CLI runs itself on a stopped data dir."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

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
