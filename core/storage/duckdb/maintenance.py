"""Maintenance windows (a few per account: read whole at start, written through)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import duckdb

from core.models import Maintenance
from core.storage.duckdb.common import iso, utcnow

__all__ = ["MaintenanceStore"]

_SCHEMA = 7  # the version that added maintenance windows
_COLUMNS = "id, account_id, name, monitors, tags, starts_at, ends_at, schedule, duration_s, timezone, created_at, " \
           "updated_at"


def _window(row: tuple) -> Maintenance:
    return Maintenance(id=int(row[0]), account_id=int(row[1]), name=row[2], monitors=[int(m) for m in row[3]],
                       tags=list(row[4]), starts_at=iso(row[5]), ends_at=iso(row[6]), schedule=row[7],
                       duration=row[8], timezone=row[9], created_at=iso(row[10]), updated_at=iso(row[11]))


def _ts(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


class MaintenanceStore:
    con: duckdb.DuckDBPyConnection
    schema_version: Callable[[], int]  # (StoreBase's)

    def list_maintenance(self) -> list[Maintenance]:
        if self.schema_version() < _SCHEMA:  # (an older file, opened read-only by the CLI)
            return []
        return [_window(r) for r in self.con.execute(f"SELECT {_COLUMNS} FROM maintenance ORDER BY id").fetchall()]

    def save_maintenance(self, window: Maintenance) -> Maintenance | None:
        """Insert (``id`` 0) or replace a window of its account; None when there is none to
        replace."""
        now = utcnow()
        values = [window.name, window.monitors, window.tags, _ts(window.starts_at), _ts(window.ends_at),
                  window.schedule, window.duration, window.timezone]
        if not window.id:
            row = self.con.execute(
                f"""INSERT INTO maintenance (account_id, name, monitors, tags, starts_at, ends_at, schedule,
                                             duration_s, timezone, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}""",
                [window.account_id, *values, now, now]).fetchone()
        else:
            row = self.con.execute(
                f"""UPDATE maintenance SET name = ?, monitors = ?, tags = ?, starts_at = ?, ends_at = ?,
                           schedule = ?, duration_s = ?, timezone = ?, updated_at = ?
                    WHERE id = ? AND account_id = ? RETURNING {_COLUMNS}""",
                [*values, now, window.id, window.account_id]).fetchone()
        return None if row is None else _window(row)

    def delete_maintenance(self, account_id: int, window_id: int) -> bool:
        return self.con.execute("DELETE FROM maintenance WHERE id = ? AND account_id = ? RETURNING id",
                                [window_id, account_id]).fetchone() is not None

    def note_maintenance_checks(self, ids: list[int], hours_us: list[int], checks: list[int], up: list[int]) -> None:
        """Add checks made in maintenance to their monitor's hour (one statement)."""
        if ids:
            self.con.execute(
                """INSERT INTO maintenance_checks SELECT unnest($ids), make_timestamp(unnest($hours)), unnest($checks),
                          unnest($up)
                   ON CONFLICT (monitor_id, hour) DO UPDATE SET checks = checks + excluded.checks,
                                                                up = up + excluded.up""",
                {"ids": ids, "hours": hours_us, "checks": checks, "up": up})
