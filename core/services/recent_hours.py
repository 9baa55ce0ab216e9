"""Each monitor's rolled-up hours of the last month, in memory: what a dashboard's month of
1 h buckets is made of, without a statement.

``checks_hourly`` holds a row per monitor and closed hour (``core.storage.rollups``); here the
newest ``hours`` of them sit in arrays indexed by monitor id and wall-clock hour (slot
``hour % hours``, shared by every monitor as in ``RecentWindow``). They are filled from the
store at start and after each rollup: the hours it closed are read once for every monitor, and
a recomputed hour (the rollup's generation moved) reloads the lot.

Invariant: while ``upto`` and ``generation`` equal the store's ``rollup_upto_us`` and rollup
generation, the arrays hold exactly the store's rolled-up rows of every monitor for the hours
``[upto - hours, upto)`` (a slot with no checks: no row). Hours the store marks stale (a late
row landed in them) differ from what the store would answer until it recomputes them; the
caller reads those from the store.

Memory: ``HOUR_BYTES`` a monitor-hour, ``hours`` sized from the budget (at most ``MAX_HOURS``,
off below ``MIN_HOURS``): a month for up to ~3,000 monitors with the default budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.storage.rollups import HOUR_US
from ext._history import rolled_items

__all__ = ["BUDGET", "HOUR_BYTES", "HOUR_US", "MAX_HOURS", "MIN_HOURS", "RecentHours", "RolledItems"]

BUDGET = 128 << 20
MAX_HOURS = 32 * 24
MIN_HOURS = 48
HOUR_BYTES = 56  # checks 4, up 4, latency sum, min, max 8 each, three percentiles 8 each


class RolledItems:
    """Rolled-up hours of one monitor, encoded (``RecentHours.items``): ``taken`` items in
    ``items``, item ``i`` ending at byte ``ends[i]`` and starting its hour at ``starts[i]`` µs;
    ``held``: the range's hours with checks, taken or not; ``first``: where the hours held in
    memory start (older ones are not here)."""

    __slots__ = ("ends", "first", "held", "items", "starts", "taken")

    def __init__(self, items: bytes, taken: int, held: int, ends: np.ndarray, starts: np.ndarray, first: int) -> None:
        self.items, self.taken, self.held, self.ends, self.starts, self.first = items, taken, held, ends, starts, first

    def head(self, n: int) -> tuple[bytes, int, int | None]:
        """The first ``n`` items at most: ``(items, taken, oldest hour µs or None)``."""
        n = min(n, self.taken)
        if n <= 0:
            return b"", 0, None
        items = self.items if n == self.taken else self.items[:int(self.ends[n - 1])]
        return items, n, int(self.starts[n - 1])


class RecentHours:
    """The newest rolled-up hours of every monitor (see the module's docstring). Event-loop
    only."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self.hours = MAX_HOURS
        self.upto: int | None = None  # (µs) nothing held until the first fill
        self.generation: int | None = None
        self._alloc(0)

    def _alloc(self, size: int) -> None:
        h = self.hours
        self._checks = np.zeros((size, h), dtype=np.int32)
        self._up = np.zeros((size, h), dtype=np.int32)
        self._sum = np.zeros((size, h), dtype=np.int64)
        self._min = np.zeros((size, h), dtype=np.int64)
        self._max = np.zeros((size, h), dtype=np.int64)
        self._q = np.zeros((3, size, h), dtype=np.float64)
        self._size = size

    @property
    def on(self) -> bool:
        return self.hours > 0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._checks, self._up, self._sum, self._min, self._max, self._q))

    def fit(self, top: int) -> None:
        """Room for monitor ids up to ``top``. New ids are monitors without rolled-up hours;
        when the budget makes the month shorter, everything is dropped and refilled."""
        if top < self._size or not self.on:
            return
        size = max(top + 1, 2 * self._size, 1024)
        hours = min(self.hours, self.budget // (size * HOUR_BYTES))
        if hours < MIN_HOURS:
            self.hours, self.upto, self.generation = 0, None, None
            self._alloc(0)
            return
        if hours != self.hours:
            self.hours, self.upto, self.generation = hours, None, None
            self._alloc(size)
            return
        old = (self._checks, self._up, self._sum, self._min, self._max, self._q)
        n = self._size
        self._alloc(size)
        for new, was in zip((self._checks, self._up, self._sum, self._min, self._max), old[:5], strict=True):
            new[:n] = was
        self._q[:, :n] = old[5]

    def checks_between(self, start: int, end: int) -> int | None:
        """Every monitor's checks in the rolled-up hours [start, end) (µs, whole hours), or None
        when those hours are not all held."""
        if not self.on or self.upto is None or start < self.upto - self.hours * HOUR_US or end > self.upto:
            return None
        slots = [h % self.hours for h in range(start // HOUR_US, end // HOUR_US)]
        return int(self._checks[:, slots].sum(dtype=np.int64)) if slots else 0

    def current(self, upto: int | None, generation: int) -> bool:
        return self.on and upto is not None and self.upto == upto and self.generation == generation

    def wanted(self, upto: int, generation: int) -> int:
        """Where a fill up to the store's ``upto`` (µs) at its ``generation`` starts: where the
        arrays end, or a whole window back when they are empty, too far behind, or some hour
        was recomputed since (a new generation)."""
        first = upto - self.hours * HOUR_US
        if self.upto is None or self.upto < first or self.upto > upto or self.generation != generation:
            return first
        return self.upto

    def fill(self, rows: dict[str, Any], start: int, upto: int, generation: int) -> None:
        """Take the store's rolled-up rows of every monitor for the hours [start, upto) (µs,
        ``start`` from ``wanted``), made at ``generation``."""
        if not self.on:
            return
        ids = np.asarray(rows["monitor_id"], dtype=np.int64)
        if len(ids):
            self.fit(int(ids.max()))
            if not self.on:  # (too many monitors for the budget: off from now on)
                return
        if start <= upto - self.hours * HOUR_US or self.upto is None or start != self.upto \
                or generation != self.generation:
            self._alloc(self._size)  # (fresh zeros: pages no row lands in are never touched)
            start = max(start, upto - self.hours * HOUR_US)
        else:
            slots = [h % self.hours for h in range(start // HOUR_US, upto // HOUR_US)]
            for array in (self._checks, self._up, self._sum, self._min, self._max):
                array[:, slots] = 0
            self._q[:, :, slots] = 0
        hour = np.asarray(rows["hour"], dtype=np.int64)
        keep = (hour >= start) & (hour < upto)
        ids, slot = ids[keep], hour[keep] // HOUR_US % self.hours
        self._checks[ids, slot] = np.asarray(rows["checks"])[keep]
        self._up[ids, slot] = np.asarray(rows["up"])[keep]
        self._sum[ids, slot] = np.asarray(rows["latency_sum"])[keep]
        self._min[ids, slot] = np.asarray(rows["latency_min"])[keep]
        self._max[ids, slot] = np.asarray(rows["latency_max"])[keep]
        for k, name in enumerate(("p50", "p95", "p99")):
            self._q[k, ids, slot] = np.asarray(rows[name])[keep]
        self.upto, self.generation = upto, generation

    def items(self, monitor_id: int, a: int | None, b: int, limit: int) -> RolledItems | None:
        """``rolled``'s hours encoded as the API's items, at most ``limit`` of them, in one
        compiled pass over the arrays (a snapshot: the arrays may be refilled later); None if
        the monitor is not held."""
        if not self.on or self.upto is None or not 0 <= monitor_id < self._size:
            return None
        first = self.upto - self.hours * HOUR_US
        lo = first if a is None else max(a, first)
        room = min(limit, self.hours)
        ends, starts = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64)
        items, taken, held = rolled_items(self._checks, self._up, self._sum, self._min, self._max, self._q,
                                          monitor_id, lo // HOUR_US, (b - HOUR_US) // HOUR_US, ends, starts)
        return RolledItems(items, taken, held, ends, starts, first)

    def rolled(self, monitor_id: int, a: int | None, b: int) -> tuple[dict[str, np.ndarray], int] | None:
        """The monitor's rolled-up hours within [a, b) (µs, whole hours; ``b <= upto``) that
        hold checks, newest first, as columns, and where what is held starts (hours before
        it are not here); None if the monitor is not held."""
        if not self.on or self.upto is None or not 0 <= monitor_id < self._size:
            return None
        first = self.upto - self.hours * HOUR_US
        lo = first if a is None else max(a, first)
        hours = np.arange((b - HOUR_US) // HOUR_US, lo // HOUR_US - 1, -1, dtype=np.int64)
        slots = hours % self.hours
        checks = self._checks[monitor_id, slots]
        held = checks > 0
        slots = slots[held]
        m = monitor_id
        return {"hour": hours[held] * HOUR_US, "checks": checks[held].astype(np.int64),
                "up": self._up[m, slots].astype(np.int64), "latency_sum": self._sum[m, slots],
                "latency_min": self._min[m, slots], "latency_max": self._max[m, slots],
                "p50": self._q[0, m, slots], "p95": self._q[1, m, slots], "p99": self._q[2, m, slots]}, first
