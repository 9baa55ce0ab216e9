"""The one door between every face (API, pages, CLI) and the store and engine: typed service
objects that validate, check ownership, run store calls on the right thread, tell the engine,
and return domain Structs. Faces never reach past them.

Monitors and notification channels go through here; keys, accounts and history are still
reached through the serve process by the API (issue 10, in progress).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.services.errors import Conflict, Invalid, NotFound, ServiceError
from core.services.integrations import IntegrationService
from core.services.monitors import MonitorService

__all__ = ["Conflict", "IntegrationService", "Invalid", "MonitorService", "NotFound", "ServiceError", "Services"]


@dataclass(frozen=True)
class Services:
    """Every service of one serve process; faces get them injected."""

    monitors: MonitorService
    integrations: IntegrationService
