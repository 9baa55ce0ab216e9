"""Who is asking, for every page: the session cookie, the CSRF check, and the way back to
sign-in.

The session id travels in ``xuptime_session`` (``HttpOnly``, ``SameSite=Lax``, ``Secure`` when
the page was asked for over HTTPS); the server keeps only its hash (``core.services.users``).
Every state-changing request of a signed-in page carries the session's CSRF token, as the
form field ``_csrf`` or the ``X-CSRF-Token`` header, compared in constant time; the sign-in and
setup forms, which have no session yet, carry a double-submit token from ``xuptime_csrf``.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect

from core.models import Principal
from core.services import MonitorService, Session, UserService
from web.render import page

__all__ = ["SESSION_COOKIE", "guard", "login_csrf", "principal", "safe_next", "session_cookie"]

SESSION_COOKIE = "xuptime_session"
LOGIN_CSRF_COOKIE = "xuptime_csrf"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def session_cookie(request: Request[Any, Any, Any], token: str | None, max_age: int = 0) -> Cookie:
    """The session cookie to set (``token``) or to clear (None)."""
    return Cookie(key=SESSION_COOKIE, value=token or "", max_age=max_age if token else 0, path="/",
                  httponly=True, samesite="lax", secure=request.url.scheme == "https")


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a path of this site only (never ``//host`` or a URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/monitors"
    return value


def principal(request: Request[Any, Any, Any]) -> Principal:
    """The signed-in user's principal (set by ``guard``)."""
    session: Session = request.state.web_session
    return session.principal


def guard(users: UserService, monitors: MonitorService):  # type: ignore[no-untyped-def]
    """A ``before_request`` hook for the signed-in pages: no session sends the visitor to
    sign in (and back here afterwards); a state change without the session's CSRF token is a
    403 and changes nothing. The account's live mark is taken here, before the page reads
    anything, so that its stream (``/live?after=``) brings every change since."""

    async def before(request: Request[Any, Any, Any]) -> Response[Any] | None:
        session = users.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method not in _SAFE or request.headers.get("accept", "").startswith("text/event-stream"):
                target = "/monitors"
            return Redirect(f"/login?next={quote(target, safe='/')}", status_code=303)
        request.state.web_session = session
        request.state.web_csrf = session.csrf
        request.state.web_live = monitors.live_mark(session.principal)
        if request.method not in _SAFE:
            sent = request.headers.get("x-csrf-token")
            if sent is None:
                form = await request.form()
                sent = form.get("_csrf")
            if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                return page(request, "error.html", status=403, title="Forbidden",
                            message="This form has expired or did not come from this site (no valid CSRF token). "
                                    "Go back, reload the page and try again.")
        return None

    return before


def login_csrf(request: Request[Any, Any, Any]) -> tuple[str, Cookie | None]:
    """The double-submit token for the sign-in and setup forms: the one in the visitor's
    cookie, or a new one to set."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE)
    if token and len(token) >= 32:
        return token, None
    token = secrets.token_urlsafe(32)
    return token, Cookie(key=LOGIN_CSRF_COOKIE, value=token, path="/", httponly=True, samesite="strict",
                         secure=request.url.scheme == "https")


def login_csrf_ok(request: Request[Any, Any, Any], sent: Any) -> bool:
    token = request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(token) and isinstance(sent, str) and hmac.compare_digest(sent.encode(), token.encode())
