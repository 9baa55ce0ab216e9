"""Who may do what, decided in one place for every face.

A service method takes an ``Actor``: a bare account id is the account acting with every right
(an API key, made by an admin; the box's owner at the CLI), a ``Principal`` is a signed-in
user acting with their role. ``account_of`` returns the account to scope the call to, or
raises ``Forbidden`` when the role is too weak, before anything is read or changed.
"""

from __future__ import annotations

from core.models import Principal
from core.services.errors import Forbidden

__all__ = ["Actor", "account_of"]

Actor = int | Principal

#: What each role adds, for the refusal's words.
_NEEDS = {"viewer": "signing in", "editor": "the editor or admin role", "admin": "the admin role"}


def account_of(actor: Actor, role: str = "viewer") -> int:
    """The actor's account, if its role is ``role`` or stronger; else ``Forbidden``."""
    if isinstance(actor, Principal):
        if not actor.may(role):
            raise Forbidden(f"Your role ({actor.role}) cannot do this: it needs {_NEEDS[role]}")
        return actor.account_id
    return actor
