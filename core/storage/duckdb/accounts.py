"""Accounts, API keys (hashes only) and monthly API usage."""

from __future__ import annotations

import secrets
from typing import Any

import duckdb
import msgspec

from core.models import (
    Account,
    ApiKey,
    NewApiKey,
    hash_api_key,
)
from core.storage.duckdb.common import (
    API_KEY_PREFIX,
    DuplicateError,
    iso,
    utcnow,
)

__all__ = ["AccountStore"]


class AccountStore:
    """Accounts, API keys (hashes only) and monthly API usage."""

    con: duckdb.DuckDBPyConnection

    def api_key_map(self) -> dict[str, tuple[int, int, str]]:
        """sha256 -> (account id, key id, scope) of every unrevoked key (the authentication map)."""
        rows = self.con.execute(f"SELECT sha256, account_id, id, {self._scope()} FROM api_keys"
                                " WHERE revoked_at IS NULL").fetchall()
        return {h: (int(a), int(k), str(s)) for h, a, k, s in rows}

    def _scope(self) -> str:
        """SQL for a key's scope (an older file opened read-only has no ``scope`` yet: full)."""
        return "coalesce(scope, 'full')" if not self.read_only or self.schema_version() >= 12 else "'full'"

    def touch_api_keys(self, used: dict[int, Any]) -> None:
        """Record when keys were last used (key id -> naive UTC datetime), in one statement."""
        if used:
            self.con.execute(
                """UPDATE api_keys SET last_used_at = u.at
                   FROM (SELECT unnest($ids) AS id, unnest($ats) AS at) u WHERE api_keys.id = u.id""",
                {"ids": list(used), "ats": list(used.values())})

    def account_limits(self) -> dict[int, int]:
        rows = self.con.execute("SELECT id, monthly_request_limit FROM accounts").fetchall()
        return {int(a): int(limit) for a, limit in rows}

    def usage_for_month(self, month: str) -> dict[int, int]:
        rows = self.con.execute("SELECT account_id, requests FROM api_usage WHERE month = ?", [month]).fetchall()
        return {int(a): int(n) for a, n in rows}

    def save_usage(self, month: str, counts: dict[int, int]) -> None:
        """Upsert absolute counts (idempotent: the server's counters are the truth), in one
        statement: the accounts and their counts travel as two list parameters (this runs
        ten times a second while requests come in; a registered Arrow table cost twice as much)."""
        if not counts:
            return
        self.con.execute(
            """INSERT INTO api_usage SELECT unnest($accounts), $month, unnest($counts)
               ON CONFLICT (account_id, month) DO UPDATE SET requests = excluded.requests""",
            {"accounts": list(counts), "counts": list(counts.values()), "month": month})

    # accounts and API keys ----------------------------------------------------------------
    def create_account(self, name: str, monthly_limit: int | None = None) -> Account:
        if self.get_account(name) is not None:
            raise DuplicateError(name)
        if monthly_limit is None:
            self.con.execute("INSERT INTO accounts (name) VALUES (?)", [name])
        else:
            self.con.execute("INSERT INTO accounts (name, monthly_request_limit) VALUES (?, ?)",
                             [name, monthly_limit])
        account = self.get_account(name)
        assert account is not None
        return account

    def get_account(self, name: str) -> Account | None:
        row = self.con.execute(
            "SELECT id, name, monthly_request_limit, created_at FROM accounts WHERE name = ?", [name]).fetchone()
        if row is None:
            return None
        return Account(id=int(row[0]), name=row[1], monthly_request_limit=int(row[2]), created_at=iso(row[3]))

    def list_accounts(self) -> list[Account]:
        rows = self.con.execute("SELECT name FROM accounts ORDER BY id").fetchall()
        return [a for (name,) in rows if (a := self.get_account(name)) is not None]

    def create_api_key(self, account_id: int, name: str, scope: str = "full") -> NewApiKey:
        """A new key for the account; the returned ``secret`` is never stored or shown again."""
        secret = API_KEY_PREFIX + secrets.token_urlsafe(24)
        row = self.con.execute(
            "INSERT INTO api_keys (account_id, name, prefix, sha256, created_at, scope) VALUES (?, ?, ?, ?, ?, ?)"
            " RETURNING id", [account_id, name, secret[:12], hash_api_key(secret), utcnow(), scope]).fetchone()
        assert row is not None
        key = next(k for k in self.list_api_keys(account_id) if k.id == int(row[0]))
        return NewApiKey(**msgspec.structs.asdict(key), secret=secret)

    def list_api_keys(self, account_id: int) -> list[ApiKey]:
        rows = self.con.execute(
            f"""SELECT id, name, prefix, created_at, last_used_at, revoked_at, {self._scope()} FROM api_keys
                WHERE account_id = ? ORDER BY id""", [account_id]).fetchall()
        return [ApiKey(id=int(r[0]), name=r[1], prefix=r[2], created_at=iso(r[3]), last_used_at=iso(r[4]),
                       revoked_at=iso(r[5]), scope=r[6]) for r in rows]

    def revoke_api_key(self, account_id: int, key_id: int) -> bool:
        row = self.con.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL RETURNING id",
            [utcnow(), key_id, account_id]).fetchone()
        return row is not None

    def find_api_key(self, secret: str) -> int | None:
        """The account id of a valid, unrevoked key; None for anything else."""
        if not secret.startswith(API_KEY_PREFIX):
            return None
        row = self.con.execute("SELECT account_id FROM api_keys WHERE sha256 = ? AND revoked_at IS NULL",
                               [hash_api_key(secret)]).fetchone()
        return None if row is None else int(row[0])
