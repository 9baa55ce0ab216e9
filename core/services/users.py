"""Dashboard users and their sessions, the same for the pages and the CLI.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended
setting) on a worker thread, never on the loop. A session is a random 256-bit id in the
visitor's cookie; the server keeps only its SHA-256 (in the store, and in memory so a page
never waits on the database to know who asks), the user, a CSRF token and an absolute expiry
(``SESSION_DAYS``). A sign-in always makes a new session (an id planted before it is worth
nothing after it); sign-out deletes it; a new password or a removed user ends all of theirs.

Failed sign-ins are counted per address and per e-mail address in a sliding window; past the
limit, sign-ins from there (or for that address) are refused with ``Limited`` until the window
moves on, whether or not the password is right.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import argon2
import msgspec

from core.models import ROLES, FieldError, Principal, User
from core.services.access import Actor, account_of
from core.services.context import StoreThreads
from core.services.errors import Conflict, Forbidden, Invalid, Limited, NotFound

if TYPE_CHECKING:
    from core.storage.base import Store

__all__ = ["Session", "UserService"]

SESSION_DAYS = 14
FAIL_WINDOW_S = 15 * 60
FAILS_PER_EMAIL = 5  # failed sign-ins for one e-mail address in the window
FAILS_PER_ADDRESS = 20  # failed sign-ins from one client address in the window
MAX_TRACKED = 100_000  # addresses and e-mails with failures kept before the stale ones are dropped
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class Session(msgspec.Struct, frozen=True):
    """A signed-in visitor: who, with which rights, and the token their forms must carry."""

    user: User
    principal: Principal
    csrf: str
    expires_at: dt.datetime


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserService:
    """Users (by account, with a role) and sessions. ``load`` reads both before the first call."""

    def __init__(self, store: Store, threads: StoreThreads, default_account: int = 1) -> None:
        self.store = store
        self.threads = threads
        self.default_account = default_account
        self._hasher = argon2.PasswordHasher()  # Argon2id
        self._dummy = self._hasher.hash(secrets.token_hex(8))  # verified against for unknown e-mails
        self._users: dict[int, User] = {}
        self._sessions: dict[str, tuple[int, str, dt.datetime]] = {}  # sha256 -> (user id, csrf, expires)
        self._fails: dict[str, collections.deque[float]] = {}
        self._setup_lock = asyncio.Lock()

    async def load(self) -> None:
        self._users = {u.id: u for u in await self.threads.write(self.store.list_users)}
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self._sessions = {sha: (uid, csrf, exp) for sha, uid, csrf, exp
                          in await self.threads.write(self.store.live_sessions, now)}

    # first run and sign-in -----------------------------------------------------------------
    def needs_setup(self) -> bool:
        """True while no user exists: ``/setup`` may make the first admin."""
        return not self._users

    async def setup(self, email: Any, password: Any) -> User:
        """The first admin of the default account; ``Conflict`` once any user exists (two
        visitors racing through ``/setup`` make one admin, not two)."""
        async with self._setup_lock:
            if not self.needs_setup():
                raise Conflict("Setup is done: sign in instead")
            return await self._create(self.default_account, email, password, "admin")

    async def login(self, email: Any, password: Any, address: str) -> tuple[str, Session]:
        """Check the password: ``(session token for the cookie, the session)``. Wrong e-mail or
        password is one ``Invalid`` (which one is not said); too many failures is ``Limited``."""
        email = str(email or "").strip().lower()
        keys = [f"address:{address}", f"email:{email}"]
        self._refuse_if_limited(keys)
        found = await self.threads.write(self.store.find_user, email) if email else None
        stored = found[1] if found is not None else self._dummy
        ok = await asyncio.to_thread(self._verify, stored, str(password or ""))
        if found is None or not ok:
            now = time.monotonic()
            if len(self._fails) > MAX_TRACKED:  # (bounded: an attacker's many addresses age out)
                self._fails = {k: d for k, d in self._fails.items() if d and now - d[-1] <= FAIL_WINDOW_S}
            for key in keys:
                self._fails.setdefault(key, collections.deque()).append(now)
            raise Invalid("Wrong e-mail address or password",
                          [FieldError("password", "wrong e-mail address or password")])
        for key in keys[1:]:  # (the address keeps its count: it may be guessing many e-mails)
            self._fails.pop(key, None)
        user = found[0]
        if self._hasher.check_needs_rehash(stored):
            hashed = await asyncio.to_thread(self._hasher.hash, str(password))
            await self.threads.write(self.store.update_user, user.id, password_hash=hashed)
        return await self._new_session(user)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def _refuse_if_limited(self, keys: list[str]) -> None:
        now = time.monotonic()
        for key, limit in zip(keys, (FAILS_PER_ADDRESS, FAILS_PER_EMAIL), strict=True):
            fails = self._fails.get(key)
            if not fails:
                continue
            while fails and now - fails[0] > FAIL_WINDOW_S:
                fails.popleft()
            if len(fails) >= limit:
                retry = int(FAIL_WINDOW_S - (now - fails[0])) + 1
                raise Limited(f"Too many failed sign-ins: try again in {(retry + 59) // 60} minutes", retry)

    async def _new_session(self, user: User) -> tuple[str, Session]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=SESSION_DAYS)
        sha = _sha(token)
        await self.threads.write(self.store.prune_sessions, expires - dt.timedelta(days=SESSION_DAYS))
        await self.threads.write(self.store.create_session, sha, user.id, csrf, expires)
        self._sessions[sha] = (user.id, csrf, expires)
        return token, self._session(user, csrf, expires)

    @staticmethod
    def _session(user: User, csrf: str, expires: dt.datetime) -> Session:
        return Session(user=user, principal=Principal(account_id=user.account_id, role=user.role, user_id=user.id),
                       csrf=csrf, expires_at=expires)

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie's token, from memory; None when unknown or expired."""
        if not token:
            return None
        found = self._sessions.get(_sha(token))
        if found is None:
            return None
        user_id, csrf, expires = found
        user = self._users.get(user_id)
        if user is None or expires <= dt.datetime.now(dt.UTC).replace(tzinfo=None):
            return None
        return self._session(user, csrf, expires)

    async def logout(self, token: str | None) -> None:
        """End the session (a no-op for an unknown one)."""
        if token and self._sessions.pop(_sha(token), None) is not None:
            await self.threads.write(self.store.delete_session, _sha(token))

    # users ---------------------------------------------------------------------------------
    def users(self, actor: Actor) -> list[User]:
        """The account's users (admins only)."""
        account_id = account_of(actor, "admin")
        return [u for u in self._users.values() if u.account_id == account_id]

    def every(self) -> list[User]:
        """Every account's users (the box's owner, at the CLI)."""
        return sorted(self._users.values(), key=lambda u: u.id)

    async def create(self, actor: Actor, email: Any, password: Any, role: Any = "viewer") -> User:
        """A new user of the actor's account (admins only)."""
        return await self._create(account_of(actor, "admin"), email, password, role)

    async def _create(self, account_id: int, email: Any, password: Any, role: Any) -> User:
        email = str(email or "").strip().lower()
        errors = []
        if not _EMAIL.fullmatch(email) or len(email) > 254:
            errors.append(FieldError("email", "must be an e-mail address"))
        problem = _password_problem(password)
        if problem:
            errors.append(FieldError("password", problem))
        if role not in ROLES:
            errors.append(FieldError("role", f"must be one of {', '.join(ROLES)}"))
        if errors:
            raise Invalid("Invalid user", errors)
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        user = await self.threads.write(self._insert, account_id, email, hashed, role)
        self._users[user.id] = user
        return user

    def _insert(self, account_id: int, email: str, hashed: str, role: str) -> User:
        if self.store.find_user(email) is not None:
            raise Conflict("Invalid user", [FieldError("email", "is used by another user")])
        return self.store.create_user(account_id, email, hashed, role)

    def _own(self, actor: Actor, user_id: Any) -> User:
        account_id = account_of(actor, "admin")
        user = self._users.get(user_id) if isinstance(user_id, int) else None
        if user is None or (isinstance(actor, Principal) and user.account_id != account_id):
            raise NotFound("User not found")
        return user

    def find(self, email: str) -> User | None:
        """The user with this e-mail address (the CLI names users by address)."""
        email = email.strip().lower()
        return next((u for u in self._users.values() if u.email == email), None)

    async def remove(self, actor: Actor, user_id: Any) -> None:
        """Remove a user and end their sessions. An account keeps at least one admin."""
        user = self._own(actor, user_id)
        if isinstance(actor, Principal) and actor.user_id == user.id:
            raise Forbidden("You cannot remove yourself")
        self._keep_an_admin(user, None)
        await self.threads.write(self.store.delete_user, user.id)
        self._users.pop(user.id, None)
        self._forget_sessions(user.id)

    async def set_password(self, actor: Actor, user_id: Any, password: Any) -> None:
        """A new password (the user's sessions end)."""
        user = self._own(actor, user_id)
        problem = _password_problem(password)
        if problem:
            raise Invalid("Invalid password", [FieldError("password", problem)])
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        await self.threads.write(self.store.update_user, user.id, password_hash=hashed)
        self._forget_sessions(user.id)

    async def set_role(self, actor: Actor, user_id: Any, role: Any) -> User:
        user = self._own(actor, user_id)
        if role not in ROLES:
            raise Invalid("Invalid user", [FieldError("role", f"must be one of {', '.join(ROLES)}")])
        self._keep_an_admin(user, role)
        await self.threads.write(self.store.update_user, user.id, role=role)
        changed = msgspec.structs.replace(user, role=role)
        self._users[user.id] = changed
        return changed

    def _keep_an_admin(self, user: User, new_role: str | None) -> None:
        if user.role != "admin" or new_role == "admin":
            return
        admins = [u for u in self._users.values() if u.account_id == user.account_id and u.role == "admin"]
        if len(admins) <= 1:
            raise Conflict("An account keeps at least one admin", [FieldError("role", "is the account's last admin")])

    def _forget_sessions(self, user_id: int) -> None:
        for sha in [sha for sha, (uid, _, _) in self._sessions.items() if uid == user_id]:
            del self._sessions[sha]


def _password_problem(password: Any) -> str | None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
    return None
