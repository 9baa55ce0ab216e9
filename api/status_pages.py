"""``/api/v1/status-pages``: pages (CRUD), and the incidents people post on them with their
updates. The public pages themselves (``/status/{slug}``) are the web face's."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency as Named
from litestar.params import FromPath

from api.monitors import id_page, json_body
from api.schemas import ERROR_RESPONSES, WRITE_RESPONSES
from core.services import StatusPageService

__all__ = ["StatusPageController"]


class StatusPageController(Controller):
    path = "/status-pages"
    tags = ["status-pages"]

    @get("/", operation_id="listStatusPages", responses=ERROR_RESPONSES)
    async def list_pages(self, request: Request[int, Any, Any], pages: Named[StatusPageService]) -> dict[str, Any]:
        """The account's status pages, oldest first."""
        return id_page(request, pages.list(request.user))

    @post("/", operation_id="createStatusPage", status_code=201, responses=WRITE_RESPONSES)
    async def create_page(self, request: Request[int, Any, Any], pages: Named[StatusPageService]) -> dict[str, Any]:
        """Create a page: ``slug`` (unique; lowercase letters, digits, dashes), ``title``,
        ``description``, ``sections`` (``[{"name", "monitors": [ids]}]``, the account's
        monitors), ``public`` (default true). Shown at ``/status/{slug}`` while public."""
        return {"data": await pages.create(request.user, await json_body(request))}

    @get("/{page_id:int}", operation_id="getStatusPage", responses=ERROR_RESPONSES)
    async def get_page(self, request: Request[int, Any, Any], pages: Named[StatusPageService], page_id: FromPath[int]
                       ) -> dict[str, Any]:
        return {"data": pages.get(request.user, page_id)}

    @patch("/{page_id:int}", operation_id="updateStatusPage", responses=WRITE_RESPONSES)
    async def update_page(self, request: Request[int, Any, Any], pages: Named[StatusPageService], page_id: FromPath[int]
                          ) -> dict[str, Any]:
        """Change some fields; absent fields keep their values."""
        return {"data": await pages.update(request.user, page_id, await json_body(request))}

    @delete("/{page_id:int}", operation_id="deleteStatusPage", status_code=200, responses=ERROR_RESPONSES)
    async def delete_page(self, request: Request[int, Any, Any], pages: Named[StatusPageService], page_id: FromPath[int]
                          ) -> dict[str, Any]:
        """Delete a page with its posted incidents; its public address is gone at once."""
        await pages.delete(request.user, page_id)
        return {"data": {"id": page_id, "deleted": True}}

    @get("/{page_id:int}/incidents", operation_id="listPageIncidents", responses=ERROR_RESPONSES)
    async def list_incidents(self, request: Request[int, Any, Any], pages: Named[StatusPageService],
                             page_id: FromPath[int]
                             ) -> dict[str, Any]:
        """The page's posted incidents, newest first (the latest 50), each with its updates."""
        return {"data": await pages.incidents(request.user, page_id)}

    @post("/{page_id:int}/incidents", operation_id="postPageIncident", status_code=201,
          responses=ERROR_RESPONSES)
    async def post_incident(self, request: Request[int, Any, Any], pages: Named[StatusPageService],
                            page_id: FromPath[int]
                            ) -> dict[str, Any]:
        """Post an incident: ``title``, ``status`` (investigating, identified, monitoring,
        resolved) and ``message`` (its first update)."""
        return {"data": await pages.post_incident(request.user, page_id, await json_body(request))}

    @post("/{page_id:int}/incidents/{incident_id:int}/updates", operation_id="postPageIncidentUpdate",
          status_code=201, responses=ERROR_RESPONSES)
    async def post_update(self, request: Request[int, Any, Any], pages: Named[StatusPageService],
                          page_id: FromPath[int],
                          incident_id: FromPath[int]) -> dict[str, Any]:
        """Add an update (``status``, ``message``); the incident takes its status."""
        return {"data": await pages.add_update(request.user, page_id, incident_id, await json_body(request))}

    @delete("/{page_id:int}/incidents/{incident_id:int}", operation_id="deletePageIncident", status_code=200,
            responses=ERROR_RESPONSES)
    async def delete_incident(self, request: Request[int, Any, Any], pages: Named[StatusPageService],
                              page_id: FromPath[int],
                              incident_id: FromPath[int]) -> dict[str, Any]:
        await pages.delete_incident(request.user, page_id, incident_id)
        return {"data": {"id": incident_id, "deleted": True}}
