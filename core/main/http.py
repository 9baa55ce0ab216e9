"""Hosting an ASGI app on the serve process's own loop: the listening socket is bound first
(a busy port fails before anything starts), then served by the embedded server chosen
(uvicorn by default; granian for comparison, see ``bench.api``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

__all__ = ["HttpHost", "bind"]


def bind(host: str, port: int) -> tuple[socket.socket, str]:
    """A listening socket, and the base URL it answers on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"xuptime: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    bound, bound_port = sock.getsockname()[:2]
    return sock, f"http://{'[' + bound + ']' if ':' in bound else bound}:{bound_port}"


class HttpHost:
    """One embedded ASGI server on this loop; ``stop`` lets open requests finish (5 s)."""

    def __init__(self, kind: str, keep_alive_s: float = 75.0) -> None:
        self.kind = kind
        #: How long an idle connection is kept (uvicorn): agents reporting more often than
        #: this hold one connection instead of opening one per report (see ``bench.agents``).
        self.keep_alive_s = keep_alive_s
        self.server: Any = None

    def start(self, app: Any, listener: socket.socket) -> asyncio.Task[None]:
        if self.kind == "granian":
            return self._start_granian(app, listener)
        import uvicorn

        class _Embedded(uvicorn.Server):
            def capture_signals(self) -> contextlib.AbstractContextManager[None]:
                return contextlib.nullcontext()  # the process's own SIGTERM/SIGINT handling stays

        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        # An application may serve some connections itself (``api.agents.ReportPath``: agents'
        # reports), handing the others to uvicorn's protocol.
        http = app.http_protocol(HttpToolsProtocol) if hasattr(app, "http_protocol") else HttpToolsProtocol
        # A request still open at shutdown (a client that never sends its body) gets 5 s.
        config = uvicorn.Config(app, http=http, lifespan="on", log_level="warning", access_log=False,
                                server_header=False, date_header=True, timeout_graceful_shutdown=5,
                                timeout_keep_alive=self.keep_alive_s)
        self.server = _Embedded(config)
        return asyncio.get_running_loop().create_task(self.server.serve(sockets=[listener]))

    def _start_granian(self, app: Any, listener: socket.socket) -> asyncio.Task[None]:
        try:
            from granian.constants import Interfaces
            from granian.server.embed import Server as Granian
        except ImportError:
            raise SystemExit("xuptime: --http-server granian needs granian: pip install granian") from None
        host, port = listener.getsockname()[:2]
        listener.close()  # granian binds its own socket (same address, SO_REUSEADDR)
        self.server = Granian(app, address=host, port=port, interface=Interfaces.ASGI, backlog=1024,
                              runtime_threads=1, log_enabled=False)
        return asyncio.get_running_loop().create_task(self.server.serve())

    def stop(self) -> None:
        if self.kind == "granian":
            self.server.stop()
        else:
            self.server.should_exit = True
