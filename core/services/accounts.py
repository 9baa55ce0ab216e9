"""Accounts and API keys, and each account's monthly request quota.

Authentication never waits on the database: the service keeps the hash of every unrevoked
key in memory and reloads it after every change to keys or accounts (whichever face made
it). The quota counts in memory on the event loop (exact under concurrency, see
``core.services.usage``) and is written behind by the serve process's ``save_usage`` job.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from core.models import KEY_SCOPES, Account, ApiKey, FieldError, NewApiKey, hash_api_key
from core.services.access import Actor, account_of
from core.services.context import StoreThreads
from core.services.errors import Conflict, Invalid, NotFound
from core.services.usage import Quota, ReadBudget, month_bounds

if TYPE_CHECKING:
    from core.storage.base import Store

__all__ = ["AccountService"]

LAST_USED_EVERY_S = 60.0  # a key's lastUsedAt is written at most this often
DEFAULT_ACCOUNT = "default"  # ``accounts`` row 1: the CLI's monitors and keys, unless told otherwise


class AccountService:
    """Accounts, their keys, and their request quota. Every store call
    here runs on the writer thread: these tables are read through the writer's connection,
    and they are small."""

    def __init__(self, store: Store, threads: StoreThreads) -> None:
        self.store = store
        self.threads = threads
        self.quota = Quota()
        self.reads = ReadBudget()
        #: sha256 of every unrevoked key -> (account, key id, scope)
        self._keys: dict[str, tuple[int, int, str]] = {}
        #: Keys used since their last-use time was written (key id -> when), and when each was
        #: last written: a key's ``lastUsedAt`` is written at most once a minute.
        self._used: dict[int, dt.datetime] = {}
        self._written: dict[int, float] = {}

    async def load(self) -> None:
        """Read the keys, the limits and this month's usage (at start, and after changes)."""
        self._keys = await self.threads.write(self.store.api_key_map)
        limits = await self.threads.write(self.store.account_limits)
        if self.quota.month:
            self.quota.limits = limits
        else:
            month, _ = month_bounds(dt.datetime.now(dt.UTC))
            self.quota.load(month, await self.threads.write(self.store.usage_for_month, month), limits)

    # authentication and quota --------------------------------------------------------------
    def authenticate(self, secret: str | None) -> int | None:
        """The account of an unrevoked key (of any scope); None for a missing, unknown or
        revoked one. The key's use is noted (written behind, at most once a minute per key)."""
        found = self.authenticate_key(secret)
        return None if found is None else found[0]

    def authenticate_key(self, secret: str | None) -> tuple[int, int, str] | None:
        """``(account id, key id, scope)`` of an unrevoked key, as ``authenticate``."""
        found = self._keys.get(hash_api_key(secret)) if secret else None
        if found is None:
            return None
        key_id = found[1]
        now = time.monotonic()
        if now - self._written.get(key_id, -LAST_USED_EVERY_S) >= LAST_USED_EVERY_S:
            self._written[key_id] = now
            self._used[key_id] = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return found

    def take(self, account_id: int) -> tuple[bool, dict[str, str], int]:
        """Count one request if the month allows it: ``(allowed, quota headers, retry after s)``."""
        return self.quota.take(account_id)

    def take_read(self, key_id: int) -> tuple[bool, dict[str, str], int]:
        """Count one request of a read-only key against its minute's budget, not the month's."""
        return self.reads.take(key_id, time.time())

    def usage(self, actor: Actor) -> dict[str, Any]:
        """This month's requests against the account's limit."""
        return self.quota.usage(account_of(actor))

    async def save_usage(self) -> None:
        """Write the counts changed since the last save (absolute counts: idempotent), and
        when keys were last used."""
        month, counts = self.quota.take_dirty()
        if counts:
            await self.threads.write(self.store.save_usage, month, counts)
        if self._used:
            used, self._used = self._used, {}
            await self.threads.write(self.store.touch_api_keys, used)

    # accounts ------------------------------------------------------------------------------
    async def create_account(self, name: Any, monthly_limit: Any = None) -> Account:
        name = str(name or "").strip()
        if not name or len(name) > 100:
            raise Invalid("An account name of 1 to 100 characters is required")
        if monthly_limit is not None and (not isinstance(monthly_limit, int) or isinstance(monthly_limit, bool)
                                          or monthly_limit < 0):
            raise Invalid("The monthly limit must be a whole number >= 0")
        account = await self.threads.write(self._create_account, name, monthly_limit)
        await self.load()
        return account

    def _create_account(self, name: str, monthly_limit: int | None) -> Account:
        if self.store.get_account(name) is not None:
            raise Conflict(f"An account named {name!r} already exists")
        return self.store.create_account(name, monthly_limit)

    async def accounts(self) -> list[Account]:
        return await self.threads.write(self.store.list_accounts)

    async def account_id(self, name: Any) -> int:
        """The id of the account with this name (the default account's without one)."""
        name = str(name or DEFAULT_ACCOUNT)
        account = await self.threads.write(self.store.get_account, name)
        if account is None:
            raise NotFound(f"No account named {name!r} (create it with `xuptime accounts create {name}`)")
        return account.id

    # keys ----------------------------------------------------------------------------------
    async def keys(self, actor: Actor) -> list[ApiKey]:
        """The account's keys: prefix, name, created, last used, revoked (never a secret)."""
        return await self.threads.write(self.store.list_api_keys, account_of(actor, "admin"))

    async def create_key(self, actor: Actor, name: Any = "default", scope: Any = "full") -> NewApiKey:
        """A new key; the answer is the only time its ``secret`` is shown. ``scope``: ``full``,
        or ``read`` (GET and HEAD only, outside the monthly quota: for dashboards)."""
        account_id = account_of(actor, "admin")
        label = name.strip() if isinstance(name, str) else None
        errors = []
        if not label or len(label) > 100:
            errors.append(FieldError("name", "must be a string of 1 to 100 characters"))
        if scope not in KEY_SCOPES:
            errors.append(FieldError("scope", f"must be one of {', '.join(KEY_SCOPES)}"))
        if errors:
            raise Invalid("Invalid API key", errors)
        key = await self.threads.write(self.store.create_api_key, account_id, label, scope)
        await self.load()
        return key

    async def revoke_key(self, actor: Actor, key_id: Any) -> None:
        """Revoke a key at once (the next request with it is a 401)."""
        account_id = account_of(actor, "admin")
        if not isinstance(key_id, int) or isinstance(key_id, bool) \
                or not await self.threads.write(self.store.revoke_api_key, account_id, key_id):
            raise NotFound(f"No active key {key_id} in that account")
        await self.load()
