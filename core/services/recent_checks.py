"""Each monitor's newest checks in full, in memory: what ``GET /monitors/{id}/history`` asks
most (the newest page of raw checks) answered without a statement.

In DuckDB a page of one monitor's newest checks costs a statement that filters that monitor's
rows out of every monitor's recent ones (rows are stored in arrival order): a millisecond and
more of a core however small the page, which caps uncached history answers at a few hundred a
second. Here the rows of each monitor sit in a ring of ``depth`` slots, column by column
(numpy, indexed by monitor id), filled by ingest after each batch is committed and at start
from the store, and a page is a few numpy calls and one compiled encoding (``ext._history``).

Invariant (per monitor): every stored check of the monitor with ``ts >= cover`` is in its
ring. The ring holds its rows in time order; ``cover`` rises past a row when the row leaves
the ring, and past a late row (older than the monitor's newest held) that is not taken. A
page is answered here only when that makes it exact: it holds ``limit + 1`` rows at or after
``cover`` (so nothing newer can be missing), or the asked range starts at or after ``cover``.
Otherwise the caller reads the store.

Memory is bounded by ``budget`` bytes (``ROW_BYTES`` a slot): ``depth`` is the budget over the
monitors, at most ``MAX_DEPTH``; as monitors are added the rings shrink, keeping their newest
rows, and below ``MIN_DEPTH`` (too few for a page) the whole thing is off and answers nothing.
With the default budget that is up to ~3,300 monitors at full depth and ~26,000 at the
minimum; beyond, raw pages come from the store.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ext._history import raw_items

__all__ = ["BUDGET", "MAX_DEPTH", "MIN_DEPTH", "ROW_BYTES", "RecentChecks"]

BUDGET = 128 << 20
MAX_DEPTH = 1024
MIN_DEPTH = 128  # a default page (100) and its "more" row, with room to move
# ts 8, latency 4, ok 1, status 2, error 8 (a reference), four phases 4 each
ROW_BYTES = 39
_NEVER = np.iinfo(np.int64).max
_ALWAYS = np.iinfo(np.int64).min
_I32 = 2**31 - 1


class RecentChecks:
    """The newest checks of every monitor, by monitor id (see the module's docstring).
    Event-loop only: ingest adds committed batches, pages read, no locking."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self.depth = MAX_DEPTH
        self._size = 0
        self._alloc(0, self.depth)

    def _alloc(self, size: int, depth: int) -> None:
        self._ts = np.zeros((size, depth), dtype=np.int64)
        self._latency = np.zeros((size, depth), dtype=np.int32)
        self._ok = np.zeros((size, depth), dtype=np.int8)
        self._status = np.zeros((size, depth), dtype=np.int16)
        self._error = np.full((size, depth), None, dtype=object)
        self._phases = np.full((4, size, depth), -1, dtype=np.int32)
        self._next = np.zeros(size, dtype=np.int64)  # rows taken so far (ring position)
        self._cover = np.full(size, _ALWAYS, dtype=np.int64)
        self._generation = np.zeros(size, dtype=np.int64)
        self._size = size

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._ts, self._latency, self._ok, self._status, self._error, self._phases))

    @property
    def on(self) -> bool:
        return self.depth > 0

    def fit(self, top: int) -> None:
        """Make room for monitor ids up to ``top`` (new ids: monitors whose every check will
        come through ``add``), shrinking the rings to stay within the budget."""
        if top < self._size or not self.on:
            return
        size = max(top + 1, 2 * self._size, 1024)
        depth = min(self.depth, self.budget // (size * ROW_BYTES))
        if depth < MIN_DEPTH:
            self.depth = 0
            self._alloc(0, 0)
            return
        old = (self._ts, self._latency, self._ok, self._status, self._error, self._phases, self._next, self._cover,
               self._generation, self._size, self.depth)
        self._alloc(size, depth)
        ts, latency, ok, status, error, phases, nxt, cover, generation, n, was = old
        self._generation[:n] = generation
        self._cover[:n] = cover
        if not n:
            self.depth = depth
            return
        keep = min(depth, was)
        # each monitor's newest rows (at most ``keep``), oldest first, to slots 0.. of the new
        # rings: positions next-c .. next-1 of the old ring, c = min(next, keep)
        c = np.minimum(nxt, keep)
        j = np.arange(keep)[None, :]
        valid = j < c[:, None]
        slot = (nxt - c)[:, None] + j
        slot = np.where(valid, slot, 0) % was
        rows = np.arange(n)[:, None]
        self._ts[:n, :keep] = np.where(valid, ts[rows, slot], 0)
        self._latency[:n, :keep] = latency[rows, slot]
        self._ok[:n, :keep] = ok[rows, slot]
        self._status[:n, :keep] = status[rows, slot]
        self._error[:n, :keep] = np.where(valid, error[rows, slot], None)
        self._phases[:, :n, :keep] = phases[:, rows, slot]
        self._next[:n] = c
        if keep < was:  # rows that leave the smaller rings: the cover moves past the newest
            gone = np.nonzero(nxt > keep)[0]
            newest_gone = ts[gone, (nxt[gone] - keep - 1) % was]
            self._cover[gone] = np.maximum(self._cover[gone], newest_gone + 1)
        self.depth = depth

    def generation(self, monitor_id: int) -> int:
        """Bumped each time the monitor's rows here change (part of an answer's cache key:
        the store may have committed rows that ``add`` has not taken yet)."""
        return int(self._generation[monitor_id]) if 0 <= monitor_id < self._size else 0

    def cover_from(self, ids: Any, ts_us: int) -> None:
        """At start, for the monitors the store holds: their rows before ``ts_us`` are not
        here (those from then on are loaded by ``add``)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids):
            self.fit(int(ids.max()))
        if self.on and len(ids):
            self._cover[ids] = np.maximum(self._cover[ids], ts_us)

    def note(self, batch: dict[str, Any]) -> None:
        """Take a committed result batch (the store's ingest columns)."""
        errors = np.full(len(batch["monitor_id"]), None, dtype=object)
        if len(batch["error_rows"]):
            errors[batch["error_rows"]] = batch["error_texts"]
        self.add(batch["monitor_id"], batch["ts_us"], batch["ok"], batch["latency_us"], batch["status_code"], errors,
                 batch["dns_us"], batch["connect_us"], batch["tls_us"], batch["ttfb_us"])

    def add(self, ids: Any, ts: Any, ok: Any, latency: Any, status: Any, errors: Any,
            dns: Any, connect: Any, tls: Any, ttfb: Any) -> None:
        """Take stored rows (any order; ``status`` 0 and phases < 0 for null)."""
        if not self.on or not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        self.fit(int(ids.max()))
        if not self.on:
            return
        ts = np.asarray(ts, dtype=np.int64)
        order = np.lexsort((ts, ids))
        ids, ts = ids[order], ts[order]
        latency = np.asarray(latency, dtype=np.int64)[order]
        phases = np.stack([np.asarray(p, dtype=np.int64)[order] for p in (dns, connect, tls, ttfb)])
        # values a slot cannot hold: the row is not kept, so the cover moves past it
        odd = (latency > _I32) | (latency < 0) | (phases > _I32).any(axis=0)
        unique, starts, counts = np.unique(ids, return_index=True, return_counts=True)
        self._generation[unique] += 1
        rank = np.arange(len(ids)) - np.repeat(starts, counts)
        nxt = self._next[ids]
        newest = self._ts[ids, (nxt - 1) % self.depth]
        late = (nxt > 0) & (ts < newest)  # older than a row already held: not taken
        # rows a later row of this batch pushes out of the ring again, and those not taken
        skip = late | odd | (rank < np.repeat(counts, counts) - self.depth)
        if skip.any():
            np.maximum.at(self._cover, ids[skip], ts[skip] + 1)
        take = ~skip
        ids, ts, order, latency, phases = ids[take], ts[take], order[take], latency[take], phases[:, take]
        unique, starts, counts = np.unique(ids, return_index=True, return_counts=True)
        rank = np.arange(len(ids)) - np.repeat(starts, counts)
        pos = self._next[ids] + rank
        slot = pos % self.depth
        evicted = pos >= self.depth  # the slot's row leaves
        if evicted.any():
            np.maximum.at(self._cover, ids[evicted], self._ts[ids[evicted], slot[evicted]] + 1)
        self._ts[ids, slot] = ts
        self._latency[ids, slot] = latency
        self._ok[ids, slot] = np.asarray(ok)[order].astype(np.int8)
        self._status[ids, slot] = np.asarray(status)[order]
        self._error[ids, slot] = np.asarray(errors, dtype=object)[order]
        self._phases[:, ids, slot] = np.maximum(phases, -1)
        self._next[unique] += counts

    def forget(self, monitor_id: int) -> None:
        """A deleted monitor: nothing of it is answered here again."""
        if 0 <= monitor_id < self._size:
            self._next[monitor_id] = 0
            self._ts[monitor_id] = 0
            self._error[monitor_id] = None
            self._cover[monitor_id] = _NEVER
            self._generation[monitor_id] += 1

    def rows(self, monitor_id: int, lo: int, hi: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Every check of the monitor within [lo, hi] (µs, inclusive) as ``(ts, ok, latency)``
        columns, or None when some of them may not be here (``lo`` before the cover)."""
        if not 0 <= monitor_id < self._size or lo < int(self._cover[monitor_id]):
            return None
        held = min(int(self._next[monitor_id]), self.depth)
        ts = self._ts[monitor_id, :held] if held < self.depth else self._ts[monitor_id]
        inside = (ts >= lo) if hi is None else (ts >= lo) & (ts <= hi)
        slots = np.flatnonzero(inside)
        return ts[slots], self._ok[monitor_id, slots], self._latency[monitor_id, slots]

    def page(self, monitor_id: int, lo: int | None, hi: int | None, limit: int
             ) -> tuple[bytes, int | None, bool] | None:
        """The monitor's newest checks within [lo, hi] (µs, inclusive) as the API's items,
        newest first: ``(items, oldest ts on the page, more)``; None when the rings cannot
        answer exactly (see the module's docstring)."""
        if not 0 <= monitor_id < self._size:
            return None
        n = int(self._next[monitor_id])
        cover = int(self._cover[monitor_id])
        start = cover if lo is None else max(lo, cover)
        held = min(n, self.depth)
        slots = (n - 1 - np.arange(held)) % self.depth  # newest first
        ts = self._ts[monitor_id, slots]
        inside = (ts >= start) if hi is None else (ts >= start) & (ts <= hi)
        found = int(np.count_nonzero(inside))
        if found <= limit and (_ALWAYS if lo is None else lo) < cover:
            return None
        slots = slots[inside][:limit]
        if not len(slots):
            return b"", None, False
        m = monitor_id
        items = raw_items(ts[inside][:limit], self._ok[m, slots], self._latency[m, slots].astype(np.int64),
                          self._status[m, slots], self._error[m, slots],
                          *(self._phases[k, m, slots].astype(np.int64) for k in range(4)))
        return items, int(ts[inside][len(slots) - 1]), found > limit
