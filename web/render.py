"""HTML from Jinja2 templates, autoescaped: every piece of user text (monitor names, tags,
errors, e-mail addresses) is escaped wherever a template prints it; the only markup built
in Python (``bars``) is made of numbers and fixed words.

Pages carry a Content-Security-Policy that allows scripts and styles from this origin only
(no inline script, no inline style attribute): a name that slipped past escaping still could
not run.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jinja2
from litestar import Request, Response
from markupsafe import Markup, escape

__all__ = ["CSP", "bars", "day_bars", "fragment", "page", "public_page"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store"}

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          autoescape=True, trim_blocks=True, lstrip_blocks=True, auto_reload=False)


def _ago(iso: str | None) -> str:
    """``2026-12-01T10:00:00Z`` -> ``5 min ago`` (the exact time is in the element's title)."""
    if not iso:
        return "never"
    try:
        then = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    seconds = int((dt.datetime.now(dt.UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{max(seconds, 0)} s ago"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return "100%" if value >= 1 else f"{value * 100:.2f}%"


def bars(items: list[tuple[bool, int]]) -> Markup:
    """A heartbeat bar (a monitor's last checks: ok, latency µs), built here rather than
    in a template loop (a list page of 25 monitors has 750 of them; Jinja took 5 ms). Only
    numbers and fixed words go in, so the markup needs no escaping."""
    good = sum(1 for ok, _ in items if ok)
    cells = "".join(f'<i class="{"ok" if ok else "bad"}" title="{"ok" if ok else "failed"} · {_ms(lat / 1000)}"></i>'
                    for ok, lat in items)
    return Markup(f'<span class="bars" role="img" aria-label="Last {len(items)} checks: {good} good">{cells}</span>')


def day_bars(name: str, days: list[dict[str, Any]]) -> Markup:
    """A monitor's 90 daily bars on a status page, each focusable with its figures (shown on
    hover or tap). Built here, not in a template loop: a page of 100 monitors has 9,000 bars.
    ``name`` is the only text from a user, and it is escaped."""
    cells = []
    for d in days:
        ratio = d["uptime"]
        kind = "none" if ratio is None else "ok" if ratio >= 0.999 else "warn" if ratio >= 0.99 else "bad"
        tip = f'{d["date"]}: {"no data" if ratio is None else f"{ratio * 100:.2f}% up"}'
        if d["incidents"]:
            tip += f', {d["incidents"]} incident(s), {d["downtimeSeconds"] // 60} min down'
        cells.append(f'<i class="d-{kind}" role="listitem" tabindex="0" aria-label="{tip}"></i>')
    label = escape(f"{name}: daily uptime, last {len(days)} days")
    return Markup(f'<div class="days" role="list" aria-label="{label}">{"".join(cells)}</div>')


_env.globals.update(day_bars=day_bars)
def _bytes(value: float | None) -> str:
    """1536 -> "1.5 KiB" (binary units, as free and df -h show them)."""
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # (not reached)


def _duration(value: float | None) -> str:
    """93784 -> "1 d 2 h" (an uptime, to the two largest units)."""
    if value is None:
        return "-"
    seconds = int(value)
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "min")]
    shown = [f"{n} {u}" for n, u in parts if n][:2]
    return " ".join(shown) or f"{seconds} s"


_env.filters.update(ago=_ago, ms=_ms, pct=_pct, bytes=_bytes, duration=_duration,
                    tojson_attr=lambda v: json.dumps(v, separators=(",", ":")))


def page(request: Request[Any, Any, Any], template: str, *, status: int = 200, **context: Any) -> Response[str]:
    """Render ``template`` for this request (its session, CSRF token and path are known to
    every template)."""
    state = request.scope.get("state") or {}
    html = _env.get_template(template).render(session=state.get("web_session"), path=request.url.path,
                                              csrf=state.get("web_csrf", ""), live=state.get("web_live", ""),
                                              **context)
    return Response(html, status_code=status, media_type="text/html; charset=utf-8", headers=_HEADERS)


def fragment(template: str, **context: Any) -> Markup:
    """A part of a page, rendered on its own (autoescaped like a page), to be cached or
    printed into one."""
    return Markup(_env.get_template(template).render(**context))


def public_page(request: Request[Any, Any, Any], template: str, **context: Any) -> str:
    """A public page's HTML (no session, no CSRF token: it is the same for every visitor and
    may be cached by anyone)."""
    return _env.get_template(template).render(session=None, path=request.url.path, csrf="", **context)
