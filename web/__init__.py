"""The web face: the signed-in dashboard, and the public status pages and badges.
Litestar handlers render Jinja2 templates (autoescaped) and call services only; htmx and a
little script of ours make pages live over one Server-Sent Events stream; uPlot draws charts.
Vendored JS/CSS lives under ``static/vendor`` with its licences: nothing loads from a CDN.

``routes(services)`` gives the handlers to compose beside the API (``api.create_app(services,
pages=web.routes(services))``): api and web never import each other.
"""

from __future__ import annotations

from web.app import error_page, routes

__all__ = ["error_page", "routes"]
