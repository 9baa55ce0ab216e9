"""Notification channels and their outbox: messages due, attempts, the delivery log."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb
import msgspec
import pyarrow as pa

from core.models import (
    TOKEN_KINDS,
    Delivery,
    Integration,
)
from core.storage.duckdb.common import (
    SPEC_TYPES,
    iso,
    utcnow,
)

__all__ = ["OUTBOX_DOWN", "OUTBOX_UP", "IntegrationStore", "alert_target"]


class IntegrationStore:
    """Notification channels and their outbox: messages due, attempts, the delivery log."""

    con: duckdb.DuckDBPyConnection

    # notification channels ----------------------------------------------------------------
    _INTEGRATION_COLUMNS = ("id, account_id, name, type, config, template, is_default, reminder_interval_s,"
                            " created_at, updated_at")

    @staticmethod
    def _integration(row: tuple) -> Integration:
        return Integration(id=int(row[0]), account_id=int(row[1]), name=row[2], type=row[3],
                           config=json.loads(row[4]), template=row[5], is_default=bool(row[6]),
                           reminder_interval=row[7], created_at=iso(row[8]), updated_at=iso(row[9]))

    def create_integration(self, integration: Integration) -> Integration:
        now = utcnow()
        row = self.con.execute(
            f"""INSERT INTO integrations (account_id, name, type, config, template, is_default, reminder_interval_s,
                                          created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {self._INTEGRATION_COLUMNS}""",
            [integration.account_id, integration.name, integration.type, json.dumps(integration.config),
             integration.template, integration.is_default, integration.reminder_interval, now, now]).fetchone()
        assert row is not None
        return self._integration(row)

    def update_integration(self, integration: Integration) -> Integration | None:
        row = self.con.execute(
            f"""UPDATE integrations SET name = ?, config = ?, template = ?, is_default = ?, reminder_interval_s = ?,
                       updated_at = ? WHERE id = ? AND account_id = ? RETURNING {self._INTEGRATION_COLUMNS}""",
            [integration.name, json.dumps(integration.config), integration.template, integration.is_default,
             integration.reminder_interval, utcnow(), integration.id, integration.account_id]).fetchone()
        return None if row is None else self._integration(row)

    def reseal_integration(self, integration: Integration) -> None:
        """Store a channel's config again as given (its secrets sealed anew), nothing else
        changed: not a change anyone made, so ``updated_at`` stays."""
        self.con.execute("UPDATE integrations SET config = ? WHERE id = ?",
                         [json.dumps(integration.config), integration.id])

    def delete_integration(self, account_id: int, integration_id: int) -> list[int] | None:
        """Delete a channel and detach it from monitors (its queued messages fail as
        deleted); returns the ids of the monitors it was detached from, None if not found."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            row = self.con.execute("DELETE FROM integrations WHERE id = ? AND account_id = ? RETURNING id",
                                   [integration_id, account_id]).fetchone()
            touched: list[int] = []
            if row is not None:
                touched = [int(r[0]) for r in self.con.execute(
                    """UPDATE monitors SET integrations = list_filter(integrations, x -> x <> ?)
                       WHERE list_contains(integrations, ?) RETURNING id""",
                    [integration_id, integration_id]).fetchall()]
                self.con.execute(
                    """UPDATE outbox SET status = 'failed', last_response = 'channel deleted'
                       WHERE integration_id = ? AND status = 'pending'""", [integration_id])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return None if row is None else touched

    def list_integrations(self, account_id: int | None = None) -> list[Integration]:
        where = "" if account_id is None else " WHERE account_id = ?"
        rows = self.con.execute(f"SELECT {self._INTEGRATION_COLUMNS} FROM integrations{where} ORDER BY id",
                                [] if account_id is None else [account_id]).fetchall()
        return [self._integration(r) for r in rows]

    def queue_flap_events(self, events: list[tuple[int, str, int, int, str]]) -> None:
        """Queue each ``(monitor id, "flapping" | "settled", spell start µs, changes, status)``
        for the monitor's channels, in one statement."""
        if not events:
            return
        table = pa.table({
            "monitor_id": pa.array([e[0] for e in events], pa.int64()),
            "event": pa.array([e[1] for e in events], pa.string()),
            "since": pa.array([e[2] for e in events], pa.int64()).cast(pa.timestamp("us")),
            "changes": pa.array([e[3] for e in events], pa.int64()),
            "status": pa.array([e[4] for e in events], pa.string()),
        })
        now = utcnow()
        self.con.register("_xuptime_flaps", table)
        try:
            self.con.execute(OUTBOX_FLAPS, [now, now])
        finally:
            self.con.unregister("_xuptime_flaps")

    def queue_reminders(self, now: dt.datetime) -> int:
        """Queue a reminder for each open incident and each of its channels with a reminder
        interval, once per elapsed interval (keyed by its number, so calling this often is
        harmless); returns how many were queued. Paused monitors get none."""
        row = self.con.execute(_OUTBOX_REMINDERS, [now, now, now]).fetchone()
        return int(row[0]) if row else 0

    def prune_outbox(self, before: dt.datetime) -> int:
        """Forget finished messages (sent or failed) created before ``before``, with their
        attempts; pending ones stay whatever their age. Returns messages removed."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(
                """DELETE FROM deliveries WHERE outbox_id IN
                       (SELECT id FROM outbox WHERE status <> 'pending' AND created_at < ?)""", [before])
            row = self.con.execute("DELETE FROM outbox WHERE status <> 'pending' AND created_at < ? RETURNING id",
                                   [before]).fetchall()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return len(row)

    def due_outbox(self, now: dt.datetime, limit: int) -> list[tuple]:
        """Pending messages whose next attempt is due, oldest first:
        (id, integration_id, monitor_id, incident_id, event, context, attempts)."""
        with self._reading() as cur:
            return cur.execute(
                """SELECT id, integration_id, monitor_id, incident_id, event, context, attempts FROM outbox
                   WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?""", [now, limit]).fetchall()

    def record_deliveries(self, attempts: list[dict[str, Any]]) -> None:
        """Write attempt outcomes in one transaction: each is ``id, attempt, at, ok, status,
        response, state ('sent'|'pending'|'failed'), next_at``."""
        if not attempts:
            return
        table = pa.table({
            "id": pa.array([a["id"] for a in attempts], pa.int64()),
            "attempt": pa.array([a["attempt"] for a in attempts], pa.int32()),
            "attempted_at": pa.array([a["at"] for a in attempts], pa.timestamp("us")),
            "ok": pa.array([a["ok"] for a in attempts], pa.bool_()),
            "status": pa.array([a["status"] for a in attempts], pa.int32()),
            "response": pa.array([a["response"] for a in attempts], pa.string()),
            "state": pa.array([a["state"] for a in attempts], pa.string()),
            "next_at": pa.array([a["next_at"] for a in attempts], pa.timestamp("us")),
        })
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.register("_xuptime_attempts", table)
            self.con.execute(
                """UPDATE outbox SET status = a.state, attempts = a.attempt, next_attempt_at = a.next_at,
                          last_status = a.status, last_response = a.response,
                          delivered_at = CASE WHEN a.ok THEN a.attempted_at END
                   FROM _xuptime_attempts a WHERE outbox.id = a.id AND outbox.status = 'pending'""")
            self.con.execute(
                "INSERT INTO deliveries SELECT id, attempt, attempted_at, ok, status, response FROM _xuptime_attempts")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister("_xuptime_attempts")

    def outbox_page(self, account_id: int, integration_id: int, status: str | None, before_id: int | None,
                    limit: int) -> tuple[list[Delivery], bool]:
        """A channel's messages newest first, with the provider's last answer."""
        where, params = ["account_id = ?", "integration_id = ?"], [account_id, integration_id]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        with self._reading() as cur:
            rows = cur.execute(
                f"""SELECT id, monitor_id, incident_id, event, status, attempts, created_at, delivered_at,
                           next_attempt_at, last_status, last_response
                    FROM outbox WHERE {" AND ".join(where)} ORDER BY id DESC LIMIT ?""",
                [*params, limit + 1]).fetchall()
        page = [Delivery(id=int(r[0]), monitor_id=int(r[1]), incident_id=r[2], event=r[3], status=r[4],
                         attempts=int(r[5]), created_at=iso(r[6]), delivered_at=iso(r[7]),
                         next_attempt_at=iso(r[8]) if r[4] == "pending" else None, last_status=r[9],
                         last_response=r[10]) for r in rows[:limit]]
        return page, len(rows) > limit


_ISO = "'%Y-%m-%dT%H:%M:%S.%gZ'"
_TARGET = "xuptime_target(m.type, CAST(m.spec AS VARCHAR))"
# A monitor's own channels, and its account's default channels unless the monitor is tagged
# ``demo`` (``serve --demo``'s monitors must not page anyone through the defaults).
_CHANNELS = ("JOIN integrations g ON g.account_id = m.account_id"
             " AND ((g.is_default AND NOT list_contains(m.tags, 'demo')) OR list_contains(m.integrations, g.id))")
_OUTBOX_INSERT = """INSERT INTO outbox (account_id, integration_id, monitor_id, incident_id, event, context, dedupe_key,
                                        next_attempt_at, created_at)"""
OUTBOX_DOWN = f"""{_OUTBOX_INSERT}
    SELECT m.account_id, g.id, m.id, i.id, 'down',
           json_object('monitor', json_object('id', m.id, 'name', m.name, 'type', m.type, 'target', {_TARGET}),
                       'reason', i.cause, 'started', strftime(i.started_at, {_ISO}), 'incident_id', i.id),
           i.id || ':down:' || g.id, ?, ?
    FROM _xuptime_transitions t JOIN monitors m ON m.id = t.monitor_id
    JOIN incidents i ON i.monitor_id = t.monitor_id AND i.resolved_at IS NULL {_CHANNELS}
    WHERE t.new = 'down' AND t.old <> 'down' AND NOT m.paused AND NOT t.quiet
    ON CONFLICT DO NOTHING"""
OUTBOX_UP = f"""{_OUTBOX_INSERT}
    SELECT m.account_id, g.id, m.id, i.id, 'up',
           json_object('monitor', json_object('id', m.id, 'name', m.name, 'type', m.type, 'target', {_TARGET}),
                       'reason', i.cause, 'started', strftime(i.started_at, {_ISO}),
                       'resolved', strftime(i.resolved_at, {_ISO}), 'incident_id', i.id,
                       'duration_seconds', (epoch_us(i.resolved_at) - epoch_us(i.started_at)) / 1e6),
           i.id || ':up:' || g.id, ?, ?
    FROM _xuptime_transitions t JOIN monitors m ON m.id = t.monitor_id
    JOIN incidents i ON i.monitor_id = t.monitor_id AND i.resolved_at = t.ts {_CHANNELS}
    WHERE t.old = 'down' AND t.new = 'up' AND NOT m.paused AND NOT t.quiet
    ON CONFLICT DO NOTHING"""

#: A flapping monitor's own messages ("flapping" once, "settled" once), from a registered
#: table ``_xuptime_flaps(monitor_id, event, since, changes, status)``; keyed by the flapping
#: spell so a replay queues nothing twice.
OUTBOX_FLAPS = f"""{_OUTBOX_INSERT}
    SELECT m.account_id, g.id, m.id, NULL, f.event,
           json_object('monitor', json_object('id', m.id, 'name', m.name, 'type', m.type, 'target', {_TARGET}),
                       'started', strftime(f.since, {_ISO}), 'changes', f.changes, 'status', f.status),
           'flap:' || m.id || ':' || epoch_us(f.since) || ':' || f.event || ':' || g.id, ?, ?
    FROM _xuptime_flaps f JOIN monitors m ON m.id = f.monitor_id {_CHANNELS}
    WHERE NOT m.paused
    ON CONFLICT DO NOTHING"""


_OUTBOX_REMINDERS = f"""{_OUTBOX_INSERT}
    SELECT account_id, integration_id, monitor_id, incident_id, 'reminder', context,
           incident_id || ':reminder-' || k || ':' || integration_id, ?, ?
    FROM (SELECT m.account_id, g.id AS integration_id, m.id AS monitor_id, i.id AS incident_id,
                 json_object('monitor', json_object('id', m.id, 'name', m.name, 'type', m.type, 'target', {_TARGET}),
                             'reason', i.cause, 'started', strftime(i.started_at, {_ISO}), 'incident_id', i.id)
                     AS context,
                 CAST(floor((epoch_us(CAST(? AS TIMESTAMP)) - epoch_us(i.started_at))
                            / (g.reminder_interval_s * 1e6)) AS BIGINT) AS k
          FROM incidents i JOIN monitors m ON m.id = i.monitor_id {_CHANNELS}
          WHERE i.resolved_at IS NULL AND NOT m.paused AND g.reminder_interval_s IS NOT NULL)
    WHERE k >= 1
    ON CONFLICT DO NOTHING"""


def alert_target(kind: str, spec: str) -> str:
    """``Spec.target()`` for alert messages (SQL ``xuptime_target(type, spec)``); a push or
    agent monitor's is empty, as its URL holds the token that lets anyone report it up."""
    if kind in TOKEN_KINDS:
        return ""
    return msgspec.json.decode(spec, type=SPEC_TYPES[kind]).target()
