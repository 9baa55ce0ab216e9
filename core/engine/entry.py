"""A worker's monitor held as an object (``Entry``), and the statuses the compiled engine
keeps for a monitor asleep there (``core.engine.scheduler`` puts monitors to sleep and wakes
them)."""

from __future__ import annotations

from typing import Any

from core.checkers import Checker
from core.models import Monitor
from core.models.packed import pack, unpack
from core.state import MonitorState

__all__ = ["STATUS_CODES", "STATUS_NAMES", "Entry"]

#: State machine statuses as the compiled engine keeps them for a monitor asleep there.
STATUS_CODES = {"pending": 0, "up": 1, "down": 2}
STATUS_NAMES = ("pending", "up", "down")

_shared_values: dict[float, float] = {}


def _shared(value: float) -> float:
    """One object per distinct interval or timeout (a few hundred at most in practice) instead
    of one per monitor."""
    if len(_shared_values) < 10_000:
        return _shared_values.setdefault(value, value)
    return value


class Entry(MonitorState):
    """One monitor of the shard that the scheduler holds as an object, and its state
    machine's counters (it is its own ``MonitorState``: one object a monitor, not two).

    A monitor on the compiled path is usually not held at all: it is *asleep* in the engine
    (``Scheduler._sleep``), which keeps its packed definition and its counters; the results
    that could change its status are judged on a scratch state (``Scheduler._fast_done``).
    It is woken into an entry (``Scheduler._entry``) when the scheduler needs the monitor as
    an object: an upsert replacing it, its removal, a check on the general path (while its
    origin's address is being looked up, or handed over). Such an entry holds the bytes it
    came in (``packed``) and rebuilds its ``Monitor`` and prepared spec when asked for."""

    __slots__ = ("_monitor", "_prepared", "account_id", "checker", "compiled", "due_ms", "interval_ms", "origin",
                 "packed", "paused", "recovery", "retries", "short", "timeout")

    def __init__(self, monitor: Monitor, checker: Checker, packed: bytes | None = None) -> None:
        self._monitor: Monitor | None = monitor
        self.packed = packed
        #: What the compiled engine keeps of it asleep, when not ``packed``: the bytes without
        #: its URL (``Scheduler._compile``).
        self.short: bytes | None = None
        self.checker = checker
        self.account_id = monitor.account_id
        self._prepared: Any = checker.prepare(monitor if checker.next_due is not None else monitor.spec)
        MonitorState.__init__(self, monitor.status)
        self.timeout = _shared(monitor.effective_timeout)
        self.interval_ms = int(_shared(monitor.interval * 1000))
        self.paused = monitor.paused
        self.retries = monitor.retries
        self.recovery = monitor.recovery_threshold
        self.compiled = False  # registered with the compiled HTTP engine
        self.origin: tuple[str, int, int] | None = None  # its origin there
        #: A timed monitor's armed deadline (monotonic ms), None while it is periodic.
        self.due_ms: int | None = None

    def carry(self, old: Entry) -> None:
        """Take over ``old``'s status and counters (a replaced monitor whose status stands)."""
        self.status, self.failures, self.successes = old.status, old.failures, old.successes

    @property
    def monitor(self) -> Monitor:
        """The monitor as last upserted, with its live status."""
        monitor = self._monitor if self._monitor is not None else unpack(self.packed)
        if not monitor.paused:
            monitor.status = self.status
        return monitor

    @property
    def prepared(self) -> Any:
        """The prepared spec; rebuilt for each check of a compiled monitor that runs on the
        general path (while its origin's address is being looked up), never kept."""
        if self._prepared is not None:
            return self._prepared
        monitor = self.monitor
        return self.checker.prepare(monitor if self.checker.next_due is not None else monitor.spec)

    def hold(self) -> None:
        """Keep the monitor and its prepared spec as objects (it left the compiled path)."""
        if self._monitor is None:
            self._monitor = unpack(self.packed)
        if self._prepared is None:
            self._prepared = self.prepared

    def shed(self) -> None:
        """Drop the objects the compiled path does not need (``packed`` rebuilds them)."""
        if self.packed is None:
            self.packed = pack(self._monitor)
        self._monitor = self._prepared = None
