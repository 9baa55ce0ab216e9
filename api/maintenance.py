"""``/api/v1/maintenance``: maintenance windows, one-off or recurring (CRUD)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency as Named
from litestar.params import FromPath

from api.monitors import id_page, json_body
from api.schemas import ERROR_RESPONSES, WRITE_RESPONSES
from core.services import MaintenanceService

__all__ = ["MaintenanceController"]


class MaintenanceController(Controller):
    path = "/maintenance"
    tags = ["maintenance"]

    @get("/", operation_id="listMaintenance", responses=ERROR_RESPONSES)
    async def list_windows(self, request: Request[int, Any, Any], maintenance: Named[MaintenanceService]
                           ) -> dict[str, Any]:
        """The account's maintenance windows, oldest first."""
        return id_page(request, maintenance.list(request.user))

    @post("/", operation_id="createMaintenance", status_code=201, responses=WRITE_RESPONSES)
    async def create_window(self, request: Request[int, Any, Any], maintenance: Named[MaintenanceService]
                            ) -> dict[str, Any]:
        """A window over ``monitors`` (ids) and/or ``tags``: once (``startsAt``, ``endsAt``) or
        recurring (``schedule`` cron, ``duration`` seconds, IANA ``timezone``)."""
        return {"data": await maintenance.create(request.user, await json_body(request))}

    @get("/{window_id:int}", operation_id="getMaintenance", responses=ERROR_RESPONSES)
    async def get_window(self, request: Request[int, Any, Any], maintenance: Named[MaintenanceService],
                         window_id: FromPath[int]
                         ) -> dict[str, Any]:
        return {"data": maintenance.get(request.user, window_id)}

    @patch("/{window_id:int}", operation_id="updateMaintenance", responses=WRITE_RESPONSES)
    async def update_window(self, request: Request[int, Any, Any], maintenance: Named[MaintenanceService],
                            window_id: FromPath[int]
                            ) -> dict[str, Any]:
        """Change some fields; to switch between once and recurring, send the other kind's
        fields and null for this kind's."""
        return {"data": await maintenance.update(request.user, window_id, await json_body(request))}

    @delete("/{window_id:int}", operation_id="deleteMaintenance", status_code=200, responses=ERROR_RESPONSES)
    async def delete_window(self, request: Request[int, Any, Any], maintenance: Named[MaintenanceService],
                            window_id: FromPath[int]
                            ) -> dict[str, Any]:
        await maintenance.delete(request.user, window_id)
        return {"data": {"id": window_id, "deleted": True}}
