"""Dashboard users (Argon2id hashes, made by the services) and their sessions (SHA-256 of the
session id only, like API keys)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import duckdb

from core.models import User
from core.storage.duckdb.common import DuplicateError, iso, utcnow

__all__ = ["UserStore"]

_COLUMNS = "id, account_id, email, role, created_at"
_SCHEMA = 5  # the version that added sessions and users.created_at


def _user(row: tuple) -> User:
    return User(id=int(row[0]), account_id=int(row[1]), email=row[2], role=row[3], created_at=iso(row[4]))


class UserStore:
    """Users by account, and the server-side half of each session."""

    con: duckdb.DuckDBPyConnection
    schema_version: Callable[[], int]  # (StoreBase's)

    def count_users(self) -> int:
        row = self.con.execute("SELECT count(*) FROM users").fetchone()
        return int(row[0]) if row else 0

    def create_user(self, account_id: int, email: str, password_hash: str, role: str) -> User:
        """A new user; ``DuplicateError`` when the e-mail address is taken (in any account)."""
        if self.find_user(email) is not None:
            raise DuplicateError(email)
        row = self.con.execute(
            f"""INSERT INTO users (account_id, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)
                RETURNING {_COLUMNS}""", [account_id, email, password_hash, role, utcnow()]).fetchone()
        assert row is not None
        return _user(row)

    def find_user(self, email: str) -> tuple[User, str] | None:
        """The user with this (lower-cased) address and their password hash."""
        row = self.con.execute(f"SELECT {_COLUMNS}, password_hash FROM users WHERE email = ?", [email]).fetchone()
        return None if row is None else (_user(row), row[5])

    def get_user(self, user_id: int) -> User | None:
        row = self.con.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", [user_id]).fetchone()
        return None if row is None else _user(row)

    def list_users(self, account_id: int | None = None) -> list[User]:
        # (a database opened read-only by the CLI may predate users.created_at: schema v5)
        columns = _COLUMNS if self.schema_version() >= _SCHEMA else _COLUMNS.replace("created_at", "NULL")
        if account_id is None:
            rows = self.con.execute(f"SELECT {columns} FROM users ORDER BY id").fetchall()
        else:
            rows = self.con.execute(f"SELECT {columns} FROM users WHERE account_id = ? ORDER BY id",
                                    [account_id]).fetchall()
        return [_user(r) for r in rows]

    def update_user(self, user_id: int, *, password_hash: str | None = None, role: str | None = None) -> bool:
        """Change a password hash or a role; a new password ends the user's sessions."""
        if password_hash is not None:
            row = self.con.execute("UPDATE users SET password_hash = ? WHERE id = ? RETURNING id",
                                   [password_hash, user_id]).fetchone()
            self.con.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])
        else:
            row = self.con.execute("UPDATE users SET role = ? WHERE id = ? RETURNING id", [role, user_id]).fetchone()
        return row is not None

    def delete_user(self, user_id: int) -> bool:
        """Remove a user and end their sessions."""
        self.con.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])
        return self.con.execute("DELETE FROM users WHERE id = ? RETURNING id", [user_id]).fetchone() is not None

    # sessions ------------------------------------------------------------------------------
    def create_session(self, sha256: str, user_id: int, csrf: str, expires_at: dt.datetime) -> None:
        self.con.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", [sha256, user_id, csrf, utcnow(), expires_at])

    def delete_session(self, sha256: str) -> None:
        self.con.execute("DELETE FROM sessions WHERE sha256 = ?", [sha256])

    def live_sessions(self, now: dt.datetime) -> list[tuple[str, int, str, dt.datetime]]:
        """Every unexpired session: (sha256, user id, CSRF token, expires at)."""
        if self.schema_version() < _SCHEMA:
            return []
        return [(r[0], int(r[1]), r[2], r[3]) for r in self.con.execute(
            "SELECT sha256, user_id, csrf, expires_at FROM sessions WHERE expires_at > ?", [now]).fetchall()]

    def prune_sessions(self, now: dt.datetime) -> None:
        self.con.execute("DELETE FROM sessions WHERE expires_at <= ?", [now])
