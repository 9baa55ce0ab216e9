"""First run, sign-in and sign-out.

``/`` sends a fresh install to ``/setup``, a signed-out visitor to ``/login`` and everyone else
to ``/monitors``. ``/setup`` exists only while no user does.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency as Named
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from core.services import Invalid, Limited, ServiceError, UserService
from core.services.users import SESSION_DAYS
from web.render import page
from web.session import SESSION_COOKIE, login_csrf, login_csrf_ok, safe_next, session_cookie

__all__ = ["HANDLERS"]

Form = Body(media_type=RequestEncodingType.URL_ENCODED)


@get("/", include_in_schema=False)
async def root(request: Request[Any, Any, Any], users: Named[UserService]) -> Redirect:
    if users.needs_setup():
        return Redirect("/setup", status_code=303)
    if users.session(request.cookies.get(SESSION_COOKIE)) is None:
        return Redirect("/login", status_code=303)
    return Redirect("/monitors", status_code=303)


def _form_page(request: Request[Any, Any, Any], template: str, status: int = 200, **context: Any) -> Response[str]:
    context.setdefault("title", "Set up xuptime" if template == "setup.html" else "Sign in")
    token, cookie = login_csrf(request)
    request.state.web_csrf = token
    response = page(request, template, status=status, **context)
    if cookie is not None:
        response.set_cookie(cookie)
    return response


@get("/setup", include_in_schema=False)
async def setup_form(request: Request[Any, Any, Any], users: Named[UserService]) -> Response[Any]:
    if not users.needs_setup():
        return Redirect("/login", status_code=303)
    return _form_page(request, "setup.html", title="Set up xuptime", values={}, errors={})


@post("/setup", include_in_schema=False)
async def setup(request: Request[Any, Any, Any], users: Named[UserService],
                data: dict[str, str] = Form) -> Response[Any]:
    if not users.needs_setup():
        return Redirect("/login", status_code=303)
    values = {"email": data.get("email", "")}
    if not login_csrf_ok(request, data.get("_csrf")):
        return _form_page(request, "setup.html", status=403, values=values,
                          errors={"form": "The form expired: try again."})
    try:
        await users.setup(data.get("email"), data.get("password"))
        token, _ = await users.login(data.get("email"), data.get("password"), _address(request))
    except ServiceError as exc:
        return _form_page(request, "setup.html", status=400, values=values, errors=_field_errors(exc))
    response = Redirect("/monitors", status_code=303)
    response.set_cookie(session_cookie(request, token, SESSION_DAYS * 86400))
    return response


@get("/login", include_in_schema=False)
async def login_form(request: Request[Any, Any, Any], users: Named[UserService],
                     next: str | None = None) -> Response[Any]:
    if users.needs_setup():
        return Redirect("/setup", status_code=303)
    return _form_page(request, "login.html", values={}, errors={}, next=safe_next(next))


@post("/login", include_in_schema=False)
async def login(request: Request[Any, Any, Any], users: Named[UserService],
                data: dict[str, str] = Form) -> Response[Any]:
    target = safe_next(data.get("next"))
    values = {"email": data.get("email", "")}
    if not login_csrf_ok(request, data.get("_csrf")):
        return _form_page(request, "login.html", status=403, values=values, next=target,
                          errors={"form": "The form expired: try again."})
    try:
        token, _ = await users.login(data.get("email"), data.get("password"), _address(request))
    except Limited as exc:
        response = _form_page(request, "login.html", status=429, values=values, next=target,
                              errors={"form": exc.reason})
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Invalid as exc:
        return _form_page(request, "login.html", status=400, values=values, next=target,
                          errors={"form": exc.reason})
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await users.logout(old)  # (a new id at every sign-in: a planted one is worth nothing)
    response = Redirect(target, status_code=303)
    response.set_cookie(session_cookie(request, token, SESSION_DAYS * 86400))
    return response


@post("/logout", include_in_schema=False)
async def logout(request: Request[Any, Any, Any], users: Named[UserService]) -> Response[Any]:
    """Sign out (the guard checked the CSRF token: a cross-site form cannot sign anyone out)."""
    await users.logout(request.cookies.get(SESSION_COOKIE))
    response = Redirect("/login", status_code=303)
    response.set_cookie(session_cookie(request, None))
    return response


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _field_errors(exc: ServiceError) -> dict[str, str]:
    errors = {e.field: e.message for e in exc.errors or []}
    if not errors:
        errors["form"] = exc.reason
    return errors


PUBLIC = [root, setup_form, setup, login_form, login]
HANDLERS = [logout]
