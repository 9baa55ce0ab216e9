"""The least an ASGI application can do with a POST: read the body, answer 202 with a small
JSON body. ``bench.agents`` serves it with the embedded server's settings to measure what the
HTTP server alone costs per request (the floor under any route's cost)."""

from __future__ import annotations

from typing import Any

ANSWER = b'{"data":{"stored":1,"duplicates":0,"interval":30}}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]})
    await send({"type": "http.response.body", "body": ANSWER})
