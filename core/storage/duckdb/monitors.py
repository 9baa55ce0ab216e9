"""Monitors: create (many in one statement), update, pause, delete, read back."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import duckdb
import msgspec
import numpy as np

from core.models import (
    Monitor,
    MonitorTimes,
    MonitorValidationError,
    parse_monitor,
)
from core.storage.duckdb.common import (
    SPEC_TYPES,
    iso,
    utcnow,
)

__all__ = ["MonitorStore"]

_NEW_ROW = ('{"id": "BIGINT", "account_id": "BIGINT", "name": "VARCHAR", "type": "VARCHAR", "spec": "VARCHAR",'
            ' "interval_s": "INTEGER", "timeout_s": "DOUBLE", "retries": "INTEGER", "recovery_threshold": "INTEGER",'
            ' "paused": "BOOLEAN", "status": "VARCHAR", "tags": "VARCHAR[]", "integrations": "BIGINT[]"}')
_INSERT_MONITORS = f"""
    INSERT INTO monitors (id, account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold, paused,
                          status, tags, integrations, created_at, updated_at)
    SELECT r.id, r.account_id, r.name, r.type, r.spec, r.interval_s, r.timeout_s, r.retries, r.recovery_threshold,
           r.paused, r.status, r.tags, r.integrations, $now, $now
    FROM (SELECT unnest(from_json($rows, '[{_NEW_ROW}]')) AS r)"""

log = logging.getLogger("xuptime.storage")


class MonitorStore:
    """Monitors: create (many in one statement), update, pause, delete, read back."""

    con: duckdb.DuckDBPyConnection

    # monitors ---------------------------------------------------------------------------
    def create_monitor(self, monitor: Monitor) -> Monitor:
        return self.create_monitors([monitor])[0][0]

    def create_monitors(self, monitors: list[Monitor]) -> list[tuple[Monitor, MonitorTimes]]:
        """Insert monitors (all or none) and return each (the objects given, with their new
        id and status) with its timestamps, in the order given (ids ascending in that order).
        Two statements whatever the count: the ids drawn from the sequence, then the rows in
        one insert. The times are the ones written and nothing is read back (the monitors were
        validated before; decoding them again cost more than the insert). The rows travel as
        one JSON parameter, unnested by DuckDB: an Arrow table cost 1.6 ms to scan however
        small, and a VALUES list 300 µs a row to bind."""
        if not monitors:
            return []
        now = utcnow()
        ids = self._take_monitor_ids(len(monitors))  # (a failed insert leaves a gap: harmless)
        rows = [{"id": mid, "account_id": m.account_id, "name": m.name, "type": m.type,
                 "spec": msgspec.json.encode(m.spec).decode(), "interval_s": m.interval, "timeout_s": m.timeout,
                 "retries": m.retries, "recovery_threshold": m.recovery_threshold, "paused": m.paused,
                 "status": "paused" if m.paused else "pending", "tags": m.tags, "integrations": m.integrations}
                for mid, m in zip(ids, monitors, strict=True)]
        self.con.execute(_INSERT_MONITORS, {"rows": msgspec.json.encode(rows).decode(), "now": now})
        stamp = iso(now)
        out = []
        for monitor, row in zip(monitors, rows, strict=True):
            monitor.id, monitor.status = row["id"], row["status"]
            out.append((monitor, MonitorTimes(created_at=stamp, updated_at=stamp, status_since=None)))
        return out

    def _take_monitor_ids(self, count: int) -> list[int]:
        """``count`` new monitor ids, ascending, from the sequence. One writer draws from it,
        so one statement's values are consecutive: only their bounds are read (checked), not
        a row per id. (Ids are never taken ahead: the CLI's ``added monitor N`` must go on
        counting one by one.)"""
        row = self.con.execute("SELECT min(v), max(v), count(*) FROM (SELECT nextval('monitors_id_seq') AS v"
                               " FROM range(?))", [count]).fetchone()
        assert row is not None
        low, high, drawn = int(row[0]), int(row[1]), int(row[2])
        if high - low + 1 != drawn or drawn != count:
            raise RuntimeError("monitor ids were drawn from the sequence by another writer")
        return list(range(low, high + 1))

    def update_monitor(self, monitor: Monitor, paused_changed: bool = False
                       ) -> tuple[Monitor, MonitorTimes] | None:
        """Store a changed monitor (a change of ``paused`` resets its status to ``paused`` or
        ``pending``) and return it as stored with its timestamps: one statement."""
        return self._update(monitor, paused_changed, utcnow())

    def update_monitors(self, changes: list[tuple[Monitor, bool]]) -> list[tuple[Monitor, MonitorTimes] | None]:
        """``update_monitor`` for each ``(monitor, paused_changed)``, in one transaction (all
        or none, one commit): each as stored, or None for one that no longer exists."""
        if len(changes) == 1:
            return [self.update_monitor(*changes[0])]
        now = utcnow()
        self.con.execute("BEGIN TRANSACTION")
        try:
            found = [self._update(monitor, paused_changed, now) for monitor, paused_changed in changes]
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return found

    def _update(self, monitor: Monitor, paused_changed: bool, now: Any) -> tuple[Monitor, MonitorTimes] | None:
        status = ", paused = ?, status = ?, status_since = ?" if paused_changed else ""
        extra = [monitor.paused, "paused" if monitor.paused else "pending", now] if paused_changed else []
        row = self.con.execute(
            f"""UPDATE monitors SET name = ?, spec = ?, interval_s = ?, timeout_s = ?, retries = ?,
                    recovery_threshold = ?, tags = ?, integrations = ?, updated_at = ?{status} WHERE id = ?
                RETURNING {self._MONITOR_COLUMNS}, created_at, updated_at, status_since""",
            [monitor.name, msgspec.json.encode(monitor.spec).decode(), monitor.interval, monitor.timeout,
             monitor.retries, monitor.recovery_threshold, monitor.tags, monitor.integrations, now, *extra,
             monitor.id],
        ).fetchone()
        return None if row is None else self._with_times(row)

    def _with_times(self, row: tuple) -> tuple[Monitor, MonitorTimes]:
        n = self._MONITOR_WIDTH
        return self._monitor_from_row(row[:n]), MonitorTimes(created_at=iso(row[n]), updated_at=iso(row[n + 1]),
                                                             status_since=iso(row[n + 2]))

    def set_paused(self, monitor_id: int, paused: bool) -> Monitor | None:
        """Pause (status ``paused``) or resume (``pending``) a monitor: the monitor as stored."""
        monitor = self.get_monitor(monitor_id)
        if monitor is None:
            return None
        found = self.update_monitor(msgspec.structs.replace(monitor, paused=paused), True)
        return None if found is None else found[0]

    def delete_monitor(self, monitor_id: int) -> bool:
        """Remove a monitor with its incidents (one transaction); its rows in the big tables
        (checks, rollups, agents' reports) are noted in ``purge`` in the same transaction and
        deleted by the upkeep job (``UpkeepStore``), not here on the writer."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            row = self.con.execute("DELETE FROM monitors WHERE id = ? RETURNING id", [monitor_id]).fetchone()
            if row is not None:
                self.con.execute("DELETE FROM incidents WHERE monitor_id = ?", [monitor_id])
                self.con.execute("DELETE FROM agents WHERE monitor_id = ?", [monitor_id])
                self.con.execute("INSERT OR IGNORE INTO purge VALUES (?, now() AT TIME ZONE 'UTC')", [monitor_id])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        if row is not None:
            self._batches += 1
            self._changed[monitor_id] = self._batches
        return row is not None

    _MONITOR_COLUMNS = ("id, account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold,"
                        " paused, status, tags, coalesce(integrations, [])")
    _MONITOR_WIDTH = 13

    def _monitor_from_row(self, row: tuple) -> Monitor:
        """Decode a stored monitor in one msgspec call (types and ranges still checked); only a
        row that fails goes through ``parse_monitor``, to name what is wrong with it."""
        (mid, account_id, name, kind, spec, interval, timeout, retries, recovery, paused, status, tags,
         integrations) = row
        try:
            spec_obj = msgspec.json.decode(spec, type=SPEC_TYPES[kind])
            monitor = msgspec.convert(
                {"name": name, "interval": interval, "timeout": timeout, "retries": retries,
                 "recoveryThreshold": recovery, "paused": paused, "tags": list(tags),
                 "integrations": list(integrations)}, Monitor)
        except (KeyError, msgspec.ValidationError, msgspec.DecodeError):
            return self._monitor_from_row_slow(row)
        if spec_obj.check_fields():  # the rules msgspec cannot express (URL scheme, headers, ...)
            return self._monitor_from_row_slow(row)
        monitor.spec = spec_obj
        monitor.id = int(mid)
        monitor.account_id = int(account_id)
        monitor.status = status
        return monitor

    def _monitor_from_row_slow(self, row: tuple) -> Monitor:
        (mid, account_id, name, kind, spec, interval, timeout, retries, recovery, paused, status, tags,
         integrations) = row
        wire = {**json.loads(spec), "type": kind, "name": name, "interval": interval, "retries": retries,
                "recoveryThreshold": recovery, "paused": paused, "tags": list(tags),
                "integrations": list(integrations)}
        if timeout is not None:
            wire["timeout"] = timeout
        monitor = parse_monitor(wire)
        monitor.id = int(mid)
        monitor.account_id = int(account_id)
        monitor.status = status
        return monitor

    def get_monitor(self, monitor_id: int) -> Monitor | None:
        row = self.con.execute(
            f"SELECT {self._MONITOR_COLUMNS} FROM monitors WHERE id = ?", [monitor_id]
        ).fetchone()
        return None if row is None else self._monitor_from_row(row)

    def each_monitor(self, account_id: int | None = None) -> Iterator[Monitor]:
        """Every stored monitor (of one account), in the order stored; a row that is not a
        valid monitor is logged and skipped."""
        sql = f"SELECT {self._MONITOR_COLUMNS} FROM monitors"
        params: list[Any] = []
        if account_id is not None:
            sql += " WHERE account_id = ?"
            params.append(account_id)
        result = self.con.execute(sql, params)
        # (in chunks: every row at once as Python tuples cost 0.4 KB a monitor more at peak,
        # which the process keeps: 400 MB more resident for a million monitors)
        while rows := result.fetchmany(10_000):
            for row in rows:
                try:
                    yield self._monitor_from_row(row)
                except MonitorValidationError as exc:
                    # A row written by an older version (or by hand) must not stop the server.
                    log.error("monitor %s is invalid and is skipped: %s", row[0], exc)

    def list_monitors(self, account_id: int | None = None) -> list[Monitor]:
        monitors = list(self.each_monitor(account_id))
        # By id. Rows come in insertion order, which is id order (ids are drawn as they are
        # inserted), so this is a pass over the list; an ORDER BY had DuckDB sort every row
        # first, which cost 0.2 KB a monitor more resident and 1.4 s at a million.
        if any(monitors[i].id > monitors[i + 1].id for i in range(len(monitors) - 1)):
            monitors.sort(key=lambda m: m.id)
        return monitors

    def monitor_times(self) -> dict[str, np.ndarray]:
        """Every monitor's createdAt, updatedAt and statusSince (loaded at startup; every write
        returns its monitor's times after that) as columns: ``id`` and whole seconds since the
        epoch in ``created``, ``updated``, ``since`` (int64 min where null)."""
        none = np.iinfo(np.int64).min
        cols = self.con.execute(
            f"""SELECT id, coalesce(epoch_us(created_at) // 1000000, {none}) AS created,
                       coalesce(epoch_us(updated_at) // 1000000, {none}) AS updated,
                       coalesce(epoch_us(status_since) // 1000000, {none}) AS since
                FROM monitors""").fetchnumpy()
        return {name: np.asarray(cols[name], dtype=np.int64) for name in ("id", "created", "updated", "since")}
