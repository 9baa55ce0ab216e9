"""Results into the store: the workers' batches are queued (bounded: a full queue stops
reading the workers, which then buffer and, past their own bound, drop and count) and written
by one task that coalesces queued batches into one Arrow insert. Workers flush every 250 ms
and this writes at once, so a result is in DuckDB's WAL well within 1 s of its check.

Transitions are applied after their batch's rows (incidents and outbox rows in the store),
then the engine's live statuses and the catalog's ``status_since`` follow, and the alert
dispatcher is woken. A monitor's first ``up`` (``pending -> up``: no incident, no message) is
live at once but stored with the others of the last ``STATUS_EVERY_S``: when a million monitors
start, each has one, and one UPDATE per batch of them cost the writer most of a core (DuckDB
pays per vector of the table an UPDATE touches, not per row). A crash may lose the stored form
of those two seconds of first ``up``s: those monitors start ``pending`` again and say ``up``
again with their next check.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from core.clock import iso_seconds
from core.models import Transition
from core.services import Catalog, StoreThreads, Unavailable
from core.services.flapping import FlapGuard
from core.services.maintenance import MaintenanceGate
from core.services.recent import HOUR_US
from ext import COLUMNS

if TYPE_CHECKING:
    from core.engine.supervisor import Engine
    from core.storage.base import Store

__all__ = ["Ingest", "merge_batches"]

log = logging.getLogger("xuptime.ingest")
#: One line per stored status change (``serve --log-format`` decides its shape).
transitions_log = logging.getLogger("xuptime.transitions")
MAX_COALESCED_ROWS = 200_000
MAX_SPILL_ROWS = 2_000_000  # results kept in memory while the disk is full (~100 s of 20k checks/s)
RETRY_S = 1.0  # how often a full disk is tried again
STATUS_EVERY_S = 2.0  # first ``up``s are stored together at most this often (``ResultStore.apply_statuses``)
WARN_EVERY_S = 60.0


def merge_batches(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """One columnar batch of several (error rows renumbered into the merged batch)."""
    if len(batches) == 1:
        return batches[0]
    merged: dict[str, Any] = {name: np.concatenate([b[name] for b in batches]) for name in COLUMNS}
    rows, texts, offset = [], [], 0
    for b in batches:
        rows.append(b["error_rows"] + offset)
        texts.extend(b["error_texts"])
        offset += len(b["monitor_id"])
    merged["error_rows"] = np.concatenate(rows).astype(np.int32)
    merged["error_texts"] = texts
    return merged


class Ingest:
    """The queue between the engine and the store, and the one task that drains it.
    ``close`` ends the task after everything queued before it is written (or spilled).

    When the disk is full, nothing acknowledged is lost quietly: a batch the store cannot take
    is kept in memory (the spill, up to ``MAX_SPILL_ROWS`` rows) and written, oldest first,
    as soon as the store takes writes again (tried every ``RETRY_S``); past the bound the
    oldest batches are dropped and counted. ``stats`` reports both, and the log says so once
    a minute while it lasts. A batch refused for any other reason is dropped, counted and
    logged (it would be refused again)."""

    def __init__(self, store: Store, threads: StoreThreads, catalog: Catalog, wake_alerts: Callable[[], None]
                 ) -> None:
        self.store = store
        self.threads = threads
        self.catalog = catalog
        self.wake_alerts = wake_alerts
        self.engine: Engine | None = None  # set once the engine exists (it feeds this queue)
        self.rows_written = 0
        self.rows_dropped = 0
        self._queue: asyncio.Queue[tuple[dict[str, Any], list[Transition]] | None] = asyncio.Queue(maxsize=64)
        self._spill: collections.deque[tuple[dict[str, Any] | None, list[Transition]]] = collections.deque()
        self._spilled_rows = 0
        self._warned_at = -WARN_EVERY_S
        #: First ``up``s (pending -> up) applied in memory whose stored status waits for the
        #: next ``_store_statuses``: all a monitor's first round costs the store.
        self._statuses: list[Transition] = []
        self._statuses_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        #: The maintenance gate: sees every batch's transitions before they are stored (and
        #: holds back those of monitors in a window), and says which monitors are in one.
        self.gate: MaintenanceGate | None = None
        #: Marks the transitions of flapping monitors quiet (``core.services.flapping``).
        self.flaps: FlapGuard | None = None

    async def put(self, batch: dict[str, Any], transitions: list[Transition]) -> None:
        """The engine's results handler (``batch`` may be ``{}``: transitions alone)."""
        await self._queue.put((batch, transitions))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Write everything queued (what the store cannot take stays counted as dropped), then stop."""
        await self._queue.put(None)
        if self._task is not None:
            await self._task

    def stats(self) -> dict[str, Any]:
        return {"rowsWritten": self.rows_written, "rowsSpilled": self._spilled_rows, "rowsDropped": self.rows_dropped}

    async def _run(self) -> None:
        done = False
        while not done:
            try:
                item = await (asyncio.wait_for(self._queue.get(), RETRY_S if self._spill else STATUS_EVERY_S)
                              if self._spill or self._statuses else self._queue.get())
            except TimeoutError:
                item = ({}, [])  # nothing new: try the spill again
            if item is None:
                done = True
                item = ({}, [])
            batches = [item[0]] if item[0] else []
            transitions = list(item[1])
            rows = len(item[0]["monitor_id"]) if item[0] else 0
            while rows < MAX_COALESCED_ROWS and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    done = True
                    break
                if nxt[0]:
                    batches.append(nxt[0])
                    rows += len(nxt[0]["monitor_id"])
                transitions.extend(nxt[1])
            if self.gate is not None and transitions:
                transitions = self.gate.filter(transitions)
            if self.flaps is not None and transitions:
                transitions = self.flaps.observe(transitions)
            if rows or transitions:  # (a batch of no rows is not written: only its transitions)
                self._spill.append((merge_batches(batches) if rows else None, transitions))
                self._spilled_rows += rows
            await self._drain()
            if self._statuses and (done or time.monotonic() - self._statuses_at >= STATUS_EVERY_S):
                await self._store_statuses()
        if self._spilled_rows:
            self.rows_dropped += self._spilled_rows
            log.error("stopping with %d results the store could not take; they are lost", self._spilled_rows)

    async def _drain(self) -> None:
        """Write the spill, oldest first, until it is empty or the store refuses."""
        while self._spill:
            batch, transitions = self._spill[0]
            rows = len(batch["monitor_id"]) if batch is not None else 0
            try:
                if batch is not None:
                    held = self._held(batch)
                    self.rows_written += await self.threads.write(self.store.ingest, batch, held=held)
                    self.catalog.last_checks.note(batch)
                    self.catalog.probes.note(batch)
                    self.catalog.recent.note(batch, held[0] if held is not None else None)
                    self.catalog.recent_checks.note(batch)
                    self._spill[0] = (None, transitions)  # (written: its transitions may still wait)
                    self._spilled_rows -= rows
                if transitions:
                    first_up = [t for t in transitions if t.old == "pending" and t.new == "up"]
                    rest = [t for t in transitions if not (t.old == "pending" and t.new == "up")]
                    if rest:
                        await self.threads.write(self.store.apply_transitions, rest)
                        self.wake_alerts()
                    self._statuses += first_up
                    self._follow(transitions)
            except Unavailable:
                self._bound()
                self._warn()
                return
            except Exception:
                log.exception("ingest of %d rows failed; they are dropped", rows)
                self.rows_dropped += rows if self._spill[0][0] is not None else 0
                self._spilled_rows -= rows if self._spill[0][0] is not None else 0
            self._spill.popleft()

    async def _store_statuses(self) -> None:
        """Store the first ``up``s gathered so far (kept for the next try if the disk is full:
        they are statuses only, every one already live in memory)."""
        try:
            await self.threads.write(self.store.apply_statuses, self._statuses)
        except Unavailable:
            return
        except Exception:
            log.exception("storing %d statuses failed; they stay live in memory", len(self._statuses))
        self._statuses = []
        self._statuses_at = time.monotonic()

    def _held(self, batch: dict[str, Any]) -> tuple[np.ndarray, dict[str, list[int]]] | None:
        """Which of the batch's rows were checks of monitors in maintenance, and their counts
        per monitor and hour (what uptime leaves out); None when no monitor is in one."""
        inside = self.gate.inside if self.gate is not None else None
        if not inside:
            return None
        ids = batch["monitor_id"]
        mask = np.isin(ids, np.fromiter(inside, dtype=np.int64, count=len(inside)))
        if not mask.any():
            return None
        hours = batch["ts_us"][mask] // HOUR_US * HOUR_US
        keys, index = np.unique(np.stack([ids[mask].astype(np.int64), hours]), axis=1, return_inverse=True)
        index = index.reshape(-1)
        checks = np.bincount(index, minlength=keys.shape[1])
        up = np.bincount(index, weights=batch["ok"][mask].astype(np.int64), minlength=keys.shape[1])
        return mask, {"ids": keys[0].tolist(), "hours_us": keys[1].tolist(), "checks": checks.tolist(),
                      "up": up.astype(np.int64).tolist()}

    def _bound(self) -> None:
        while self._spilled_rows > MAX_SPILL_ROWS and len(self._spill) > 1:
            batch, _ = self._spill.popleft()  # the oldest go first (their transitions with them)
            rows = len(batch["monitor_id"]) if batch is not None else 0
            self._spilled_rows -= rows
            self.rows_dropped += rows

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("the data dir is out of space: %d results wait in memory (up to %d), %d dropped so far",
                        self._spilled_rows, MAX_SPILL_ROWS, self.rows_dropped)

    def _follow(self, transitions: list[Transition]) -> None:
        assert self.engine is not None
        times, live, monitors = self.catalog.times, self.catalog.live, self.engine.monitors
        self.catalog.generation += 1
        for t in transitions:
            self.engine.set_status(t.monitor_id, t.new)
            since = iso_seconds(t.ts_us)
            times.status_changed(t.monitor_id, t.ts_us)
            if t.monitor_id not in monitors:
                continue
            transitions_log.info("monitor %d %s: %s -> %s%s", t.monitor_id, _quoted(monitors.name(t.monitor_id)),
                                 t.old, t.new, f" ({t.cause})" if t.cause else "",
                                 extra={"monitor_id": t.monitor_id, "old": t.old, "new": t.new, "cause": t.cause})
            live.publish(monitors.account(t.monitor_id), {"event": "status", "id": t.monitor_id, "status": t.new,
                                                          "since": since})


def _quoted(name: str) -> str:
    """A monitor's name for a log line: quoted, control characters escaped (one line each)."""
    return repr(name[:200])
