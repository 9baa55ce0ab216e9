"""What the public sees: status pages, the incidents people post on them, and maintenance
windows."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["INCIDENT_STATES", "Maintenance", "PageIncident", "PageSection", "PageUpdate", "StatusPage"]


class PageSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A group of monitors on a status page, shown under ``name``."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    monitors: Annotated[list[Annotated[int, msgspec.Meta(ge=1)]], msgspec.Meta(max_length=500)]


class StatusPage(msgspec.Struct, kw_only=True, rename="camel"):
    """A public status page: sections of the account's monitors, shown at ``/status/{slug}``
    (when ``public``) by name and state only."""

    id: int = 0
    account_id: int = 0
    slug: str
    title: str
    description: str | None = None
    sections: list[PageSection] = []
    public: bool = True
    created_at: str | None = None
    updated_at: str | None = None

    def monitor_ids(self) -> list[int]:
        return [m for section in self.sections for m in section.monitors]


class Maintenance(msgspec.Struct, kw_only=True, rename="camel"):
    """A maintenance window over ``monitors`` and monitors with any of ``tags``: one-off
    (``starts_at`` to ``ends_at``, UTC) or recurring (``schedule``, a five-field cron
    expression in ``timezone``, each time lasting ``duration`` seconds)."""

    id: int = 0
    account_id: int = 0
    name: str
    monitors: list[int] = []
    tags: list[str] = []
    starts_at: str | None = None
    ends_at: str | None = None
    schedule: str | None = None
    duration: int | None = None
    timezone: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


#: What people say about an incident they post, in the order it usually goes.
INCIDENT_STATES = ("investigating", "identified", "monitoring", "resolved")


class PageUpdate(msgspec.Struct, kw_only=True, rename="camel"):
    """One message on a posted incident, with the state it moved the incident to."""

    id: int
    status: str
    message: str
    created_at: str | None


class PageIncident(msgspec.Struct, kw_only=True, rename="camel"):
    """An incident posted by people on a status page (not a monitor's automatic one)."""

    id: int
    page_id: int
    title: str
    status: str
    created_at: str | None
    updated_at: str | None
    resolved_at: str | None
    updates: list[PageUpdate] = []
