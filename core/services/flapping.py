"""Flapping: a monitor that keeps changing between up and down sends one "flapping" message
instead of a stream of down/up alerts, and one "settled" message when it calms down.

A monitor is flapping when it changed between up and down more than ``FLAP_CHANGES`` times
within ``FLAP_WINDOW_S`` seconds (5 in 10 minutes: Nagios' flap detection looks at the last
21 checks; this counts changes, which does not depend on the interval). From that change on,
its transitions are still stored (status, incidents: the history stays true) but marked
``quiet``: no down/up notifications. It has settled once ``FLAP_WINDOW_S`` passes without a
change; the "settled" message says its status then and how many changes the spell held.
Changes into or out of ``maintenance`` do not count.

Pure bookkeeping: times come in with the transitions (and ``tick``'s ``now``), so the rules
are tested with a fake clock. The serve process feeds it (``Ingest``) and sends what it
says (``core.main.jobs.flapping``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import msgspec

from core.models import Transition

__all__ = ["FLAP_CHANGES", "FLAP_WINDOW_S", "FlapGuard"]

FLAP_CHANGES = 5
FLAP_WINDOW_S = 600

#: ``(monitor id, "flapping" | "settled", spell start µs, changes, status)``.
FlapEvent = tuple[int, str, int, int, str]


@dataclass
class _Spell:
    since_us: int
    changes: int
    last_us: int
    status: str


class FlapGuard:
    """Per-monitor change times and flapping spells (see the module's docstring)."""

    def __init__(self, changes: int = FLAP_CHANGES, window_s: int = FLAP_WINDOW_S) -> None:
        self.changes = changes
        self.window_s = window_s
        self._recent: dict[int, collections.deque[int]] = {}
        self._spells: dict[int, _Spell] = {}
        self._pending: list[FlapEvent] = []

    def flapping(self, monitor_id: int) -> bool:
        return monitor_id in self._spells

    def observe(self, transitions: list[Transition]) -> list[Transition]:
        """Count each up/down change; those of a flapping monitor come back ``quiet`` (the
        one that starts a spell too: the "flapping" message stands in for it)."""
        window_us = self.window_s * 1_000_000
        out = []
        for t in transitions:
            if {t.old, t.new} != {"up", "down"}:
                out.append(t)
                continue
            recent = self._recent.setdefault(t.monitor_id, collections.deque())
            recent.append(t.ts_us)
            while recent and recent[0] <= t.ts_us - window_us:
                recent.popleft()
            spell = self._spells.get(t.monitor_id)
            if spell is not None:
                spell.changes += 1
                spell.last_us, spell.status = t.ts_us, t.new
            elif len(recent) > self.changes:
                self._spells[t.monitor_id] = _Spell(since_us=t.ts_us, changes=len(recent), last_us=t.ts_us,
                                                    status=t.new)
                self._pending.append((t.monitor_id, "flapping", t.ts_us, len(recent), t.new))
            else:
                out.append(t)
                continue
            out.append(msgspec.structs.replace(t, quiet=True))
        return out

    def tick(self, now_us: int) -> list[FlapEvent]:
        """What to send now: spells that began since the last call, and those that settled
        (no change for the window)."""
        events, self._pending = self._pending, []
        window_us = self.window_s * 1_000_000
        for monitor_id, spell in list(self._spells.items()):
            if now_us - spell.last_us >= window_us:
                del self._spells[monitor_id]
                self._recent.pop(monitor_id, None)
                events.append((monitor_id, "settled", spell.since_us, spell.changes, spell.status))
        return events

    def forget(self, monitor_id: int) -> None:
        self._recent.pop(monitor_id, None)
        self._spells.pop(monitor_id, None)
