"""Users, sessions and roles in the services, over a real DuckDB file and the real writer
thread: the rules every face (pages, CLI, API) gets from one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import argon2
import pytest

from core.models import Principal
from core.services import Conflict, Forbidden, Invalid, Limited, NotFound, Services
from core.services.users import FAILS_PER_EMAIL
from tests.services import run_services

Body = Callable[[Services], Awaitable[Any]]


run = run_services


def test_setup_makes_the_first_admin_once_and_passwords_are_argon2id(tmp_path: Path) -> None:
    async def body(s: Services) -> None:
        assert s.users.needs_setup()
        with pytest.raises(Invalid) as bad:
            await s.users.setup("not-an-address", "short")
        assert {e.field for e in bad.value.errors or []} == {"email", "password"}
        assert s.users.needs_setup()  # (refused: nothing stored)
        admin = await s.users.setup("Admin@Example.com ", "a good password")
        assert (admin.email, admin.role, admin.account_id) == ("admin@example.com", "admin", 1)
        with pytest.raises(Conflict):
            await s.users.setup("second@example.com", "another password")
        stored = await s.users.threads.write(s.users.store.find_user, "admin@example.com")
        assert stored is not None and stored[1].startswith("$argon2id$")
        assert argon2.PasswordHasher().verify(stored[1], "a good password")

    run(tmp_path, body)


def test_sessions_survive_a_restart_and_end_with_logout_or_a_new_password(tmp_path: Path) -> None:
    async def first(s: Services) -> str:
        await s.users.setup("a@example.com", "first password")
        token, session = await s.users.login("a@example.com", "first password", "127.0.0.1")
        assert session.principal == Principal(account_id=1, role="admin", user_id=session.user.id)
        other, _ = await s.users.login("a@example.com", "first password", "127.0.0.1")
        assert other != token  # a new id at every sign-in
        await s.users.logout(other)
        assert s.users.session(other) is None and s.users.session(token) is not None
        return token

    token = run(tmp_path, first)

    async def second(s: Services) -> None:
        found = s.users.session(token)
        assert found is not None and found.user.email == "a@example.com"  # (stored as a hash, reloaded)
        assert s.users.session(token + "x") is None and s.users.session(None) is None
        await s.users.set_password(1, found.user.id, "second password")
        assert s.users.session(token) is None
        with pytest.raises(Invalid):
            await s.users.login("a@example.com", "first password", "127.0.0.2")
        await s.users.login("a@example.com", "second password", "127.0.0.2")

    run(tmp_path, second)
    assert token not in (tmp_path / "xuptime.duckdb").read_bytes().decode("latin-1")


def test_failed_sign_ins_are_limited_per_address_and_email(tmp_path: Path) -> None:
    async def body(s: Services) -> None:
        await s.users.setup("a@example.com", "right password")
        for _ in range(FAILS_PER_EMAIL):
            with pytest.raises(Invalid) as wrong:
                await s.users.login("a@example.com", "wrong password", "10.0.0.1")
            assert wrong.value.reason == "Wrong e-mail address or password"
        with pytest.raises(Limited) as limited:
            await s.users.login("a@example.com", "right password", "10.0.0.2")  # (the e-mail's own limit)
        assert 0 < limited.value.retry_after <= 15 * 60 + 1
        # an unknown address fails the same way as a wrong password (which one is not said)
        with pytest.raises(Invalid) as unknown:
            await s.users.login("nobody@example.com", "whatever", "10.0.0.3")
        assert unknown.value.reason == "Wrong e-mail address or password"

    run(tmp_path, body)


def test_roles_are_enforced_by_the_services(tmp_path: Path) -> None:
    async def body(s: Services) -> None:
        viewer, editor, admin = (Principal(account_id=1, role=r) for r in ("viewer", "editor", "admin"))
        monitor = {"name": "m", "type": "tcp", "host": "127.0.0.1", "port": 9}
        with pytest.raises(Forbidden):
            await s.monitors.create(viewer, monitor)
        created, _ = await s.monitors.create(editor, monitor)
        assert (await s.monitors.get(viewer, created.id))[0].name == "m"
        for change in (s.monitors.update(viewer, created.id, {"name": "n"}), s.monitors.delete(viewer, created.id),
                       s.monitors.set_paused(viewer, created.id, True)):
            with pytest.raises(Forbidden):
                await change
        for admin_only in (s.accounts.create_key(editor, "k"), s.accounts.keys(editor),
                           s.integrations.create(editor, {"name": "c", "type": "webhook",
                                                          "config": {"url": "http://127.0.0.1:9/"}}),
                           s.users.create(editor, "x@example.com", "long enough", "viewer")):
            with pytest.raises(Forbidden):
                await admin_only
        with pytest.raises(Forbidden):
            s.users.users(editor)
        page = {"slug": "p", "title": "P", "sections": [{"name": "s", "monitors": [created.id]}]}
        with pytest.raises(Forbidden):
            await s.pages.create(viewer, page)
        made = await s.pages.create(editor, page)
        with pytest.raises(Forbidden):
            await s.pages.post_incident(viewer, made.id, {"title": "t", "message": "m"})
        assert (await s.pages.post_incident(editor, made.id, {"title": "t", "message": "m"})).status == "investigating"
        key = await s.accounts.create_key(admin, "k")
        assert key.secret
        # another account's monitor is not found, whatever the role
        with pytest.raises(NotFound):
            await s.monitors.get(Principal(account_id=2, role="admin"), created.id)

    run(tmp_path, body)


def test_an_account_keeps_an_admin_and_nobody_removes_themselves(tmp_path: Path) -> None:
    async def body(s: Services) -> None:
        first = await s.users.setup("a@example.com", "a password!")
        me = Principal(account_id=1, role="admin", user_id=first.id)
        second = await s.users.create(me, "b@example.com", "b password!", "editor")
        with pytest.raises(Invalid):
            await s.users.create(me, "c@example.com", "c password!", "owner")
        with pytest.raises(Conflict):
            await s.users.create(me, "B@example.com", "b password!", "viewer")
        with pytest.raises(Forbidden):
            await s.users.remove(me, first.id)
        with pytest.raises(Conflict):
            await s.users.set_role(me, first.id, "viewer")  # the last admin
        await s.users.set_role(me, second.id, "admin")
        await s.users.set_role(me, first.id, "viewer")
        assert {u.email: u.role for u in s.users.every()} == {"a@example.com": "viewer", "b@example.com": "admin"}
        with pytest.raises(NotFound):
            await s.users.remove(Principal(account_id=2, role="admin"), second.id)

    run(tmp_path, body)
