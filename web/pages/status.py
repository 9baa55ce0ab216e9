"""The public face: status pages (``/status/{slug}``, ``.json``, ``/feed.atom``) and badges
(``/badge/{monitor}/status.svg``, ``uptime.svg``, ``latency.svg``, ``shields.json``). No
sign-in; names and states only (the view comes from ``StatusPageService.view``, which holds
nothing else). Every answer carries an ``ETag`` and a short ``Cache-Control``; a matching
``If-None-Match`` is a 304 with no body, so a crowd at an outage costs little."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency as Named
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from core.services import HistoryService, MonitorService, StatusPageService
from web.render import CSP, fragment, public_page

__all__ = ["HANDLERS", "Rendered"]

MAX_AGE = 5  # seconds a browser or proxy may reuse a status page (the view is recomputed as often)
BADGE_MAX_AGE = 60
WINDOWS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}
_COLORS = {"up": "#2e9e44", "down": "#d73a3a", "pending": "#9f9f9f", "paused": "#9f9f9f", "maintenance": "#6d28d9"}


class Rendered:
    """Each page's answers as bytes (and gzipped) with their ETag, made once per view
    (``StatusPageService`` recomputes a view at most every few seconds): a crowd's requests,
    and their 304s, cost a lookup and a comparison, not a render. The ETag is the view's
    without its ``updatedAt``: while nothing on the page changes it stays the same, so a
    client that has the page gets a 304."""

    def __init__(self) -> None:
        self._answers: dict[tuple[int, str], tuple[int, bytes, bytes, str]] = {}

    def get(self, page_id: int, kind: str, view: dict[str, Any], make: Callable[[], bytes]
            ) -> tuple[bytes, bytes, str]:
        """``(body, gzipped body, etag)`` of this view's ``kind`` of answer."""
        found = self._answers.get((page_id, kind))
        if found is not None and found[0] == id(view):
            return found[1], found[2], found[3]
        body = make()
        state = msgspec.json.encode({k: v for k, v in view.items() if k != "updatedAt"})
        etag = '"' + kind + "-" + hashlib.blake2b(state, digest_size=12).hexdigest() + '"'
        answer = (id(view), body, gzip.compress(body, 6), etag)
        self._answers[(page_id, kind)] = answer
        return answer[1], answer[2], answer[3]


def _cached(request: Request[Any, Any, Any], body: bytes, media_type: str, max_age: int,
            etag: str | None = None, gzipped: bytes | None = None) -> Response[bytes]:
    etag = etag or '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": CSP, "Vary": "Accept-Encoding"}
    if etag in (request.headers.get("if-none-match") or "").replace("W/", "").split(", "):
        return Response(b"", status_code=304, headers=headers)
    if gzipped is not None and "gzip" in (request.headers.get("accept-encoding") or ""):
        return Response(gzipped, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(body, media_type=media_type, headers=headers)


@get("/status/{name:str}", include_in_schema=False)
async def status_page(request: Request[Any, Any, Any], name: FromPath[str], pages: Named[StatusPageService],
                      rendered: Named[Rendered]) -> Response[bytes]:
    """The page in HTML, or with ``.json`` after the slug as data."""
    as_json = name.endswith(".json")
    page = pages.by_slug(name.removesuffix(".json"))
    if page is None:
        raise NotFoundException("There is no such status page.")
    view = await pages.view(page)
    if as_json:
        body, gzipped, etag = rendered.get(page.id, "json", view, lambda: msgspec.json.encode(view))
        return _cached(request, body, "application/json", MAX_AGE, etag, gzipped)
    body, gzipped, etag = rendered.get(page.id, "html", view, lambda: public_page(
        request, "status.html", title=view["page"]["title"], view=view).encode())
    return _cached(request, body, "text/html", MAX_AGE, etag, gzipped)


@get("/status/{slug:str}/feed.atom", include_in_schema=False)
async def status_feed(request: Request[Any, Any, Any], slug: FromPath[str],
                      pages: Named[StatusPageService]) -> Response[bytes]:
    """The page's posted incidents and their updates, newest first, as an Atom feed."""
    page = pages.by_slug(slug)
    if page is None:
        raise NotFoundException("There is no such status page.")
    view = await pages.view(page)
    base = str(request.base_url).rstrip("/")
    body = fragment("feed.atom", view=view, base=base, updated=view["updatedAt"], slug=slug).encode()
    return _cached(request, body, "application/atom+xml; charset=utf-8", MAX_AGE)


def _badge(label: str, message: str, color: str) -> bytes:
    """A flat badge in the Shields style (widths from an average glyph width)."""
    def width(text: str) -> int:
        return int(len(text) * 6.6) + 12

    lw, mw = width(label), width(message)
    label, message = escape(label), escape(message)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{lw + mw}" height="20" role="img" '
            f'aria-label="{label}: {message}"><title>{label}: {message}</title>'
            f'<rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{mw}" height="20" fill="{color}"/>'
            f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
            f'<text x="{lw / 2}" y="14">{label}</text><text x="{lw + mw / 2}" y="14">{message}</text></g></svg>'
            ).encode()


def _public(pages: StatusPageService, monitor_id: int) -> Any:
    monitor = pages.public_monitor(monitor_id)
    if monitor is None:  # (not on a public page: the same 404 as a monitor that does not exist)
        raise NotFoundException("No such badge.")
    return monitor


@get("/badge/{monitor_id:int}/status.svg", include_in_schema=False)
async def status_badge(request: Request[Any, Any, Any], monitor_id: FromPath[int],
                       pages: Named[StatusPageService]) -> Response[bytes]:
    monitor = _public(pages, monitor_id)
    return _cached(request, _badge(monitor.name, monitor.status, _COLORS.get(monitor.status, "#9f9f9f")),
                   "image/svg+xml", BADGE_MAX_AGE)


async def _uptime(history: HistoryService, monitor: Any, window: str) -> float | None:
    found = await history.uptime(monitor.account_id, monitor.id, [(window, WINDOWS[window])])
    return found[window].uptime


def _uptime_color(ratio: float | None) -> str:
    if ratio is None:
        return "#9f9f9f"
    return "#2e9e44" if ratio >= 0.999 else "#a4a61d" if ratio >= 0.99 else "#dfb317" if ratio >= 0.95 else "#d73a3a"


@get("/badge/{monitor_id:int}/uptime.svg", include_in_schema=False)
async def uptime_badge(request: Request[Any, Any, Any], monitor_id: FromPath[int], pages: Named[StatusPageService],
                       history: Named[HistoryService], window: str = "30d") -> Response[bytes]:
    monitor = _public(pages, monitor_id)
    if window not in WINDOWS:
        raise NotFoundException(f"window must be one of {', '.join(WINDOWS)}")
    ratio = await _uptime(history, monitor, window)
    text = "no data" if ratio is None else f"{ratio * 100:.2f}%"
    return _cached(request, _badge(f"uptime {window}", text, _uptime_color(ratio)), "image/svg+xml", BADGE_MAX_AGE)


@get("/badge/{monitor_id:int}/latency.svg", include_in_schema=False)
async def latency_badge(request: Request[Any, Any, Any], monitor_id: FromPath[int], pages: Named[StatusPageService],
                        monitors: Named[MonitorService]) -> Response[bytes]:
    """The average latency of the monitor's recent good checks."""
    monitor = _public(pages, monitor_id)
    bars, _ = monitors.recent(monitor)
    good = [lat for ok, lat in bars if ok]
    if good:
        ms = sum(good) / len(good) / 1000
        text, color = f"{ms:.0f} ms", "#2e9e44" if ms < 300 else "#dfb317" if ms < 1000 else "#d73a3a"
    else:
        text, color = "no data", "#9f9f9f"
    return _cached(request, _badge("latency", text, color), "image/svg+xml", BADGE_MAX_AGE)


@get("/badge/{monitor_id:int}/shields.json", include_in_schema=False)
async def shields_endpoint(request: Request[Any, Any, Any], monitor_id: FromPath[int], pages: Named[StatusPageService]
                           ) -> Response[bytes]:
    """The Shields.io endpoint schema (``https://img.shields.io/endpoint?url=...``): the
    monitor's status."""
    monitor = _public(pages, monitor_id)
    color = {"up": "brightgreen", "down": "red", "maintenance": "blueviolet"}.get(monitor.status, "lightgrey")
    body = msgspec.json.encode({"schemaVersion": 1, "label": monitor.name, "message": monitor.status,
                                "color": color, "cacheSeconds": BADGE_MAX_AGE})
    return _cached(request, body, "application/json", BADGE_MAX_AGE)


HANDLERS = [status_page, status_feed, status_badge, uptime_badge, latency_badge, shields_endpoint]
