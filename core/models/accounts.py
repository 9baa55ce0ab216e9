"""Accounts, their API keys and the people who sign in: who acts, with which rights."""

from __future__ import annotations

import hashlib

import msgspec

__all__ = ["ROLES", "Account", "ApiKey", "NewApiKey", "Principal", "User", "hash_api_key"]


class Account(msgspec.Struct, kw_only=True, rename="camel"):
    """A tenant: monitors, channels and keys belong to one; ``monthly_request_limit`` bounds
    its API requests per UTC calendar month."""

    id: int
    name: str
    monthly_request_limit: int
    created_at: str | None


class ApiKey(msgspec.Struct, kw_only=True, rename="camel"):
    """A key as kept: its first characters (``prefix``) and its life, never its secret."""

    id: int
    name: str
    prefix: str
    created_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    #: ``full``, or ``read``: GET and HEAD only, outside the monthly quota (``KEY_SCOPES``).
    scope: str = "full"


class NewApiKey(ApiKey, kw_only=True, rename="camel"):
    """A key just made: the only time its ``secret`` exists outside the caller's hands."""

    secret: str


#: What a key may do: everything its account may, or read only (see ``core.services.usage``).
KEY_SCOPES = ("full", "read")

#: A user's role, weakest first: ``viewer`` reads; ``editor`` also changes monitors, status
#: pages, incident posts and maintenance; ``admin`` also manages users, API
#: keys and notification channels.
ROLES = ("viewer", "editor", "admin")


class User(msgspec.Struct, kw_only=True, rename="camel"):
    """A person who signs in to the dashboard: one account, one role."""

    id: int
    account_id: int
    email: str
    role: str
    created_at: str | None


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who asks a service for something: an account acting with a role. An API key acts as
    its account's ``admin`` (keys are made by admins and carry their rights); a signed-in
    user acts with their own role."""

    account_id: int
    role: str = "admin"
    user_id: int | None = None

    def may(self, role: str) -> bool:
        """Whether this principal's role is ``role`` or stronger."""
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_api_key(secret: str) -> str:
    """Keys are 192 random bits, so a plain SHA-256 is enough to store them (a slow KDF is
    for guessable passwords); only the hash and a short visible prefix are kept."""
    return hashlib.sha256(secret.encode()).hexdigest()
