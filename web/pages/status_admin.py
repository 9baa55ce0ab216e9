"""Status pages in the dashboard: the list, the editor (with a live preview of the public
page as it would look, unsaved), and posting incidents and their updates."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency as Named
from litestar.params import FromPath
from litestar.response import Redirect

from core.models import INCIDENT_STATES, StatusPage
from core.services import MonitorService, ServiceError, StatusPageService
from web.forms import field_errors
from web.render import fragment, page
from web.session import principal

__all__ = ["HANDLERS"]

SECTION_SLOTS = 1  # empty sections offered beyond the page's own (a name left empty is no section)


def form_to_page(form: FormMultiDict) -> dict[str, Any]:
    """The editor's form as the API's object (inputs named like the API's fields:
    ``sections[0].name``, ``sections[0].monitors``)."""
    sections = []
    i = 0
    while f"sections[{i}].name" in form:
        name = str(form.get(f"sections[{i}].name") or "").strip()
        monitors = [int(m) for m in form.getall(f"sections[{i}].monitors", []) if str(m).isdigit()]
        if name or monitors:
            sections.append({"name": name, "monitors": monitors})
        i += 1
    description = str(form.get("description") or "").strip()
    return {"slug": str(form.get("slug") or "").strip(), "title": str(form.get("title") or "").strip(),
            "description": description or None, "sections": sections, "public": form.get("public") in ("on", "true")}


def _values(status_page: StatusPage | None) -> dict[str, Any]:
    if status_page is None:
        return {"slug": "", "title": "", "description": "", "public": True, "sections": []}
    return {"slug": status_page.slug, "title": status_page.title, "description": status_page.description or "",
            "public": status_page.public,
            "sections": [{"name": s.name, "monitors": s.monitors} for s in status_page.sections]}



async def _editor(request: Request[Any, Any, Any], pages: StatusPageService, monitors: MonitorService, *,
                  status_page: StatusPage | None, values: dict[str, Any], errors: dict[str, str],
                  status: int = 200, notice: str | None = None) -> Response[str]:
    who = principal(request)
    incidents = await pages.incidents(who, status_page.id) if status_page is not None else []
    sections = [*values["sections"], *({"name": "", "monitors": []} for _ in range(SECTION_SLOTS))]
    title = f"Status page {status_page.title}" if status_page is not None else "New status page"
    return page(request, "status_page_form.html", status=status, title=title, status_page=status_page,
                values=values, sections=sections, errors=errors, monitors=monitors.account_monitors(who),
                incidents=incidents, states=INCIDENT_STATES, notice=notice)


@get("/status-pages", include_in_schema=False)
async def status_page_list(request: Request[Any, Any, Any], pages: Named[StatusPageService]) -> Response[str]:
    return page(request, "status_pages.html", title="Status pages", pages=pages.list(principal(request)))


@get("/status-pages/new", include_in_schema=False)
async def new_status_page(request: Request[Any, Any, Any], pages: Named[StatusPageService],
                          monitors: Named[MonitorService]) -> Response[str]:
    return await _editor(request, pages, monitors, status_page=None, values=_values(None), errors={})


@post("/status-pages/new", include_in_schema=False)
async def create_status_page(request: Request[Any, Any, Any], pages: Named[StatusPageService],
                             monitors: Named[MonitorService]) -> Response[Any]:
    data = form_to_page(await request.form())
    try:
        created = await pages.create(principal(request), data)
    except ServiceError as exc:
        return await _editor(request, pages, monitors, status_page=None, values=data, errors=field_errors(exc),
                             status=400)
    return Redirect(f"/status-pages/{created.id}", status_code=303)


@get("/status-pages/{page_id:int}", include_in_schema=False)
async def edit_status_page(request: Request[Any, Any, Any], page_id: FromPath[int], pages: Named[StatusPageService],
                           monitors: Named[MonitorService]) -> Response[str]:
    current = pages.get(principal(request), page_id)
    return await _editor(request, pages, monitors, status_page=current, values=_values(current), errors={})


@post("/status-pages/{page_id:int}", include_in_schema=False)
async def update_status_page(request: Request[Any, Any, Any], page_id: FromPath[int], pages: Named[StatusPageService],
                             monitors: Named[MonitorService]) -> Response[Any]:
    who = principal(request)
    current = pages.get(who, page_id)
    data = form_to_page(await request.form())
    try:
        await pages.update(who, page_id, data)
    except ServiceError as exc:
        return await _editor(request, pages, monitors, status_page=current, values=data, errors=field_errors(exc),
                             status=400)
    return Redirect(f"/status-pages/{page_id}", status_code=303)


@post("/status-pages/{page_id:int}/delete", include_in_schema=False)
async def delete_status_page(request: Request[Any, Any, Any], page_id: FromPath[int],
                             pages: Named[StatusPageService]) -> Redirect:
    await pages.delete(principal(request), page_id)
    return Redirect("/status-pages", status_code=303)


@post("/status-pages/preview", include_in_schema=False)
async def preview_status_page(request: Request[Any, Any, Any], pages: Named[StatusPageService]) -> Response[str]:
    """The public page as the editor's form would make it (htmx swaps it in as they type)."""
    form = await request.form()
    page_id = form.get("id")
    try:
        view = await pages.preview(principal(request), form_to_page(form),
                                   int(page_id) if isinstance(page_id, str) and page_id.isdigit() else None)
    except ServiceError as exc:
        errors = field_errors(exc)
        return Response(fragment("_preview_errors.html", errors=errors), media_type="text/html")
    return Response(fragment("_status_body.html", view=view), media_type="text/html")


@post("/status-pages/{page_id:int}/incidents", include_in_schema=False)
async def post_incident(request: Request[Any, Any, Any], page_id: FromPath[int], pages: Named[StatusPageService],
                        monitors: Named[MonitorService]) -> Response[Any]:
    who = principal(request)
    current = pages.get(who, page_id)
    form = await request.form()
    try:
        await pages.post_incident(who, page_id, {"title": form.get("title", ""), "status": form.get("status"),
                                                 "message": form.get("message", "")})
    except ServiceError as exc:
        return await _editor(request, pages, monitors, status_page=current, values=_values(current),
                             errors={f"incident.{k}": v for k, v in field_errors(exc).items()}, status=400)
    return Redirect(f"/status-pages/{page_id}#incidents", status_code=303)


@post("/status-pages/{page_id:int}/incidents/{incident_id:int}/updates", include_in_schema=False)
async def post_update(request: Request[Any, Any, Any], page_id: FromPath[int], incident_id: FromPath[int],
                      pages: Named[StatusPageService],
                      monitors: Named[MonitorService]) -> Response[Any]:
    who = principal(request)
    current = pages.get(who, page_id)
    form = await request.form()
    try:
        await pages.add_update(who, page_id, incident_id, {"status": form.get("status"),
                                                          "message": form.get("message", "")})
    except ServiceError as exc:
        return await _editor(request, pages, monitors, status_page=current, values=_values(current),
                             errors={f"update{incident_id}.{k}": v for k, v in field_errors(exc).items()}, status=400)
    return Redirect(f"/status-pages/{page_id}#incidents", status_code=303)


HANDLERS = [status_page_list, new_status_page, create_status_page, edit_status_page, update_status_page,
            delete_status_page, preview_status_page, post_incident, post_update]
