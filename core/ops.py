"""Operations that only touch the store, shared by the running server (control socket) and
the CLI on a stopped data dir, so both paths behave the same.

Each takes ``(store, args)`` and returns JSON-ready data, or raises ``OpError`` with a message
for the user. Monitor operations are not here: on a running server they also have to reach
the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.storage.duckdb import DuckDBStore, DuplicateError

__all__ = ["STORE_OPS", "OpError"]


class OpError(ValueError):
    """A store operation refused its input; the message is for the user."""


def _account_id(store: DuckDBStore, args: dict[str, Any]) -> int:
    name = args.get("account") or "default"
    account = store.get_account(str(name))
    if account is None:
        raise OpError(f"no account named {name!r} (create it with `xuptime accounts create {name}`)")
    return int(account["id"])


def _accounts_create(store: DuckDBStore, args: dict[str, Any]) -> dict[str, Any]:
    name = str(args.get("name") or "").strip()
    if not name or len(name) > 100:
        raise OpError("an account name of 1 to 100 characters is required")
    limit = args.get("monthlyLimit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise OpError("the monthly limit must be a whole number >= 0")
    try:
        return store.create_account(name, limit)
    except DuplicateError:
        raise OpError(f"an account named {name!r} already exists") from None


def _keys_create(store: DuckDBStore, args: dict[str, Any]) -> dict[str, Any]:
    label = str(args.get("name") or "default").strip()
    if not label or len(label) > 100:
        raise OpError("a key name of 1 to 100 characters is required")
    return store.create_api_key(_account_id(store, args), label)


def _keys_list(store: DuckDBStore, args: dict[str, Any]) -> list[dict[str, Any]]:
    return store.list_api_keys(_account_id(store, args))


def _keys_revoke(store: DuckDBStore, args: dict[str, Any]) -> dict[str, Any]:
    key_id = args.get("id")
    if not isinstance(key_id, int) or not store.revoke_api_key(_account_id(store, args), key_id):
        raise OpError(f"no active key {key_id} in that account")
    return {"id": key_id, "revoked": True}


STORE_OPS: dict[str, Callable[[DuckDBStore, dict[str, Any]], Any]] = {
    "accounts.create": _accounts_create,
    "accounts.list": lambda store, args: store.list_accounts(),
    "keys.create": _keys_create,
    "keys.list": _keys_list,
    "keys.revoke": _keys_revoke,
}

#: Operations that only read: the CLI opens a stopped data dir read-only for them.
READ_ONLY_OPS = frozenset({"accounts.list", "keys.list"})
