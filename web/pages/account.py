"""Account -> API keys (the secret shown once), users (admins), and the incidents list."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency as Named
from litestar.params import FromPath

from core.models import ROLES
from core.services import AccountService, HistoryService, MonitorService, ServiceError, UserService
from web.render import page
from web.session import principal

__all__ = ["HANDLERS"]


async def _keys_page(request: Request[Any, Any, Any], accounts: AccountService, *, status: int = 200,
                     **context: Any) -> Response[str]:
    who = principal(request)
    keys = await accounts.keys(who)
    return page(request, "api_keys.html", status=status, title="API keys", keys=keys, usage=accounts.usage(who),
                base_url=str(request.base_url).rstrip("/"), **{"new_key": None, "errors": {}, **context})


@get("/account/api-keys", include_in_schema=False)
async def api_keys(request: Request[Any, Any, Any], accounts: Named[AccountService]) -> Response[str]:
    return await _keys_page(request, accounts)


@post("/account/api-keys", include_in_schema=False)
async def create_api_key(request: Request[Any, Any, Any], accounts: Named[AccountService]) -> Response[str]:
    """Make a key and show its secret, this once (the page is ``no-store``: the back button
    does not bring it back from a cache)."""
    form = await request.form()
    try:
        key = await accounts.create_key(principal(request), form.get("name"), form.get("scope") or "full")
    except ServiceError as exc:
        if exc.errors is None:
            raise
        return await _keys_page(request, accounts, status=400, errors={e.field: e.message for e in exc.errors})
    return await _keys_page(request, accounts, status=201, new_key=key)


@post("/account/api-keys/{key_id:int}/revoke", include_in_schema=False)
async def revoke_api_key(request: Request[Any, Any, Any], key_id: FromPath[int],
                         accounts: Named[AccountService]) -> Response[str]:
    await accounts.revoke_key(principal(request), key_id)
    return await _keys_page(request, accounts, notice="The key is revoked: requests with it are refused from now on.")


async def _users_page(request: Request[Any, Any, Any], users: UserService, *, status: int = 200,
                      **context: Any) -> Response[str]:
    return page(request, "users.html", status=status, title="Users", users=users.users(principal(request)),
                roles=ROLES, **{"errors": {}, "values": {"role": "viewer"}, "notice": None, **context})


@get("/account/users", include_in_schema=False)
async def user_list(request: Request[Any, Any, Any], users: Named[UserService]) -> Response[str]:
    return await _users_page(request, users)


@post("/account/users", include_in_schema=False)
async def invite_user(request: Request[Any, Any, Any], users: Named[UserService]) -> Response[str]:
    """Add a user with a first password (given to them by the admin; they may change it)."""
    form = await request.form()
    values = {"email": form.get("email", ""), "role": form.get("role", "viewer")}
    try:
        user = await users.create(principal(request), form.get("email"), form.get("password"), form.get("role"))
    except ServiceError as exc:
        if exc.errors is None:
            raise
        return await _users_page(request, users, status=400, values=values,
                                 errors={e.field: e.message for e in exc.errors})
    return await _users_page(request, users, status=201, notice=f"{user.email} can sign in now as {user.role}.")


@post("/account/users/{user_id:int}/role", include_in_schema=False)
async def set_role(request: Request[Any, Any, Any], user_id: FromPath[int], users: Named[UserService]) -> Response[str]:
    form = await request.form()
    try:
        user = await users.set_role(principal(request), user_id, form.get("role"))
    except ServiceError as exc:
        if exc.errors is None:
            raise
        return await _users_page(request, users, status=409, notice=exc.errors[0].message)
    return await _users_page(request, users, notice=f"{user.email} is now {user.role}.")


@post("/account/users/{user_id:int}/remove", include_in_schema=False)
async def remove_user(request: Request[Any, Any, Any], user_id: FromPath[int],
                      users: Named[UserService]) -> Response[str]:
    try:
        await users.remove(principal(request), user_id)
    except ServiceError as exc:
        if exc.errors is None:
            raise
        return await _users_page(request, users, status=409, notice=exc.errors[0].message)
    return await _users_page(request, users, notice="The user is removed and signed out.")


@get("/incidents", include_in_schema=False)
async def incident_list(request: Request[Any, Any, Any], history: Named[HistoryService],
                        monitors: Named[MonitorService],
                        before: int | None = None) -> Response[str]:
    who = principal(request)
    incidents, total, more = await history.incidents(who, before, 50)
    names = {m.id: m.name for m in monitors.account_monitors(who)}
    return page(request, "incidents.html", title="Incidents", incidents=incidents, total=total, more=more,
                names=names, next_before=incidents[-1].id if incidents and more else None)


HANDLERS = [api_keys, create_api_key, revoke_api_key, user_list, invite_user, set_role, remove_user, incident_list]
