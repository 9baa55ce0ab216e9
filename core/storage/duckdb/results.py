"""Check results in (columnar ingest) and status transitions into incidents and the outbox."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from core.models import (
    Transition,
)
from core.storage.duckdb.common import (
    utcnow,
)
from core.storage.duckdb.integrations import OUTBOX_DOWN, OUTBOX_UP
from core.storage.rollups import HOUR_US

__all__ = ["ResultStore"]


class ResultStore:
    """Check results in (columnar ingest) and status transitions into incidents and the outbox."""

    con: duckdb.DuckDBPyConnection

    def _note_ingest(self, ts_us: np.ndarray, monitor_ids: np.ndarray) -> None:
        """Called once a batch is committed: track the stored time range and which monitors
        changed, and mark rolled-up (or being rolled-up) hours that a late row lands in, so the
        next ``rollup`` recomputes them."""
        self._batches += 1
        self._changed.update(dict.fromkeys(np.unique(monitor_ids).tolist(), self._batches))
        lo, hi = int(ts_us.min()), int(ts_us.max())
        self._ts_range = (lo, hi) if self._ts_range is None else (min(lo, self._ts_range[0]),
                                                                  max(hi, self._ts_range[1]))
        with self._rollup_lock:
            guard = max(self.rollup_upto_us or 0, self._rolling_to)
            if lo < guard:
                self._late += 1
                late = ts_us[ts_us < guard]
                for hour in np.unique(late // HOUR_US * HOUR_US).tolist():
                    self._dirty[hour] = self._dirty.get(hour, 0) + 1

    def last_checks(self) -> dict[int, tuple[int, int]]:
        """monitor id -> (ts µs, latency µs) of its newest stored check (loaded at startup)."""
        rows = self.con.execute(
            "SELECT monitor_id, epoch_us(max(ts)), arg_max(latency_us, ts) FROM checks GROUP BY 1").fetchall()
        return {int(m): (int(ts), int(lat)) for m, ts, lat in rows}

    # results ----------------------------------------------------------------------------
    def ingest(self, batch: dict[str, Any], region: str | None = None,
               held: tuple[Any, dict[str, list[int]]] | None = None) -> int:
        """Append one flushed result batch (columns as numpy arrays); returns rows written.
        ``held``: the rows made in maintenance and their counts per monitor and hour, noted in
        ``maintenance_checks`` by the same call."""
        n = len(batch["monitor_id"])
        if n == 0:
            return 0
        errors = np.full(n, None, dtype=object)
        if len(batch["error_rows"]):
            errors[batch["error_rows"]] = batch["error_texts"]

        def phase(name: str) -> pa.Array:
            values = batch[name]
            return pa.array(values, type=pa.int64(), mask=values < 0)

        status = batch["status_code"]
        table = pa.table({
            "monitor_id": pa.array(batch["monitor_id"], type=pa.int64()),
            "ts": pa.array(batch["ts_us"], type=pa.int64()).cast(pa.timestamp("us")),
            "ok": pa.array(batch["ok"].astype(bool)),
            "latency_us": pa.array(batch["latency_us"], type=pa.int64()),
            "status_code": pa.array(status, type=pa.int16(), mask=status == 0),
            "error_code": pa.array(batch["error_code"], type=pa.uint8()),
            "error": pa.array(errors, type=pa.string()),
            "dns_us": phase("dns_us"),
            "connect_us": phase("connect_us"),
            "tls_us": phase("tls_us"),
            "ttfb_us": phase("ttfb_us"),
            "region": pa.nulls(n, pa.string()) if region is None else pa.array([region] * n, pa.string()),
        })
        self.con.register("_xuptime_batch", table)
        try:
            self.con.execute("INSERT INTO checks SELECT * FROM _xuptime_batch")
        finally:
            self.con.unregister("_xuptime_batch")
        if held is not None:
            self.note_maintenance_checks(**held[1])  # type: ignore[attr-defined]
        self._note_ingest(batch["ts_us"], batch["monitor_id"])
        return n

    def apply_statuses(self, transitions: list[Transition]) -> int:
        """Persist the statuses of transitions that open, resolve and notify nothing (a first
        ``up``, which every monitor has once after it starts), in one statement, each only
        over an older stored status (a newer change, stored meanwhile, stands). An UPDATE
        costs DuckDB about the same for 400 scattered monitors as for 20,000 (0.2 s among 1M
        monitors: it is the vectors touched that cost), so these are gathered and stored
        together (``core.main.ingest``) instead of one statement per batch. Returns rows."""
        latest: dict[int, Transition] = {}
        for t in transitions:
            if t.monitor_id not in latest or latest[t.monitor_id].ts_us <= t.ts_us:
                latest[t.monitor_id] = t
        if not latest:
            return 0
        table = pa.table({
            "monitor_id": pa.array(list(latest), pa.int64()),
            "ts": pa.array([t.ts_us for t in latest.values()], pa.int64()).cast(pa.timestamp("us")),
            "new": pa.array([t.new for t in latest.values()], pa.string()),
        })
        self.con.register("_xuptime_statuses", table)
        try:
            row = self.con.execute(
                """UPDATE monitors SET status = t.new, status_since = t.ts FROM _xuptime_statuses t
                   WHERE monitors.id = t.monitor_id AND NOT monitors.paused
                     AND (monitors.status_since IS NULL OR monitors.status_since <= t.ts)""").fetchone()
        finally:
            self.con.unregister("_xuptime_statuses")
        return int(row[0]) if row else 0

    def apply_transitions(self, transitions: list[Transition]) -> None:
        """Persist status changes and open/resolve incidents, set-based, in one transaction.

        Transitions are applied in rounds; round k holds each monitor's k-th transition of the
        batch, so a monitor that went down and up again within one batch is replayed in order
        while thousands of monitors changing at once cost three statements per round.
        Paused or deleted monitors are left alone.

        The same transaction writes the outbox: one row per (transition, channel) for a monitor
        that went down (an incident opened) or recovered (its incident resolved), to its own
        channels and its account's defaults, each keyed ``incident:event:channel`` so that a
        replay cannot queue a message twice. A first result that is ``up`` queues nothing.
        """
        if not transitions:
            return
        rounds: list[list[Transition]] = []
        seen: dict[int, int] = {}
        for t in transitions:
            k = seen.get(t.monitor_id, 0)
            seen[t.monitor_id] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(t)
        now = utcnow()
        self.con.execute("BEGIN TRANSACTION")
        try:
            for batch in rounds:
                table = pa.table({
                    "monitor_id": pa.array([t.monitor_id for t in batch], pa.int64()),
                    "ts": pa.array([t.ts_us for t in batch], pa.int64()).cast(pa.timestamp("us")),
                    "old": pa.array([t.old for t in batch], pa.string()),
                    "new": pa.array([t.new for t in batch], pa.string()),
                    "cause": pa.array([t.cause for t in batch], pa.string()),
                    "quiet": pa.array([t.quiet for t in batch], pa.bool_()),
                })
                # (each statement below joins the whole monitors table: one whose rows cannot
                # match is not run, and most batches hold no down and no recovery)
                down = any(t.new == "down" for t in batch)
                recovered = any(t.old == "down" for t in batch)
                self.con.register("_xuptime_transitions", table)
                try:
                    self.con.execute(
                        """UPDATE monitors SET status = t.new, status_since = t.ts FROM _xuptime_transitions t
                           WHERE monitors.id = t.monitor_id AND NOT monitors.paused""")
                    if down:
                        self.con.execute(
                            """INSERT INTO incidents (account_id, monitor_id, started_at, cause)
                               SELECT m.account_id, t.monitor_id, t.ts, t.cause
                               FROM _xuptime_transitions t JOIN monitors m ON m.id = t.monitor_id
                               WHERE t.new = 'down' AND NOT m.paused AND NOT EXISTS (SELECT 1 FROM incidents i
                                   WHERE i.monitor_id = t.monitor_id AND i.resolved_at IS NULL)""")
                        self.con.execute(OUTBOX_DOWN, [now, now])
                    if recovered:
                        self.con.execute(
                            """UPDATE incidents SET resolved_at = t.ts FROM _xuptime_transitions t
                               WHERE incidents.monitor_id = t.monitor_id AND incidents.resolved_at IS NULL
                                 AND t.old = 'down' AND t.new IN ('up', 'maintenance')""")
                        self.con.execute(OUTBOX_UP, [now, now])
                finally:
                    self.con.unregister("_xuptime_transitions")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
