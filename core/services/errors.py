"""What a service refuses, for every face to show its own way (the API as its error payload,
the CLI as a message with the bad fields, the pages beside the fields)."""

from __future__ import annotations

from core.models import FieldError

__all__ = ["Conflict", "Forbidden", "Invalid", "Limited", "NotFound", "ServiceError", "Unavailable"]


class ServiceError(Exception):
    """A refused request: ``reason`` for people, ``errors`` naming the fields at fault."""

    def __init__(self, reason: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors


class Invalid(ServiceError):
    """The input is not acceptable; nothing was changed."""


class NotFound(ServiceError):
    """No such thing in the caller's account (another account's is not found either)."""


class Conflict(ServiceError):
    """The input clashes with something that exists (a push token in use)."""


class Unavailable(ServiceError):
    """The store cannot take the change now (its disk is full); nothing was changed."""


class Forbidden(ServiceError):
    """The caller's role may not do this (a viewer's change, an editor's user admin)."""


class Limited(ServiceError):
    """Too many attempts (failed sign-ins); ``retry_after`` seconds until the next is heard."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
