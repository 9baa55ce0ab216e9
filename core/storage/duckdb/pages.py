"""Status pages, the incidents people post on them and their updates, and the daily figures
the public pages show (from the hourly rollups, never a scan of ``checks``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import duckdb
import msgspec

from core.models import PageIncident, PageSection, PageUpdate, StatusPage
from core.storage.duckdb.common import DuplicateError, iso, utcnow

__all__ = ["StatusPageStore"]

_SCHEMA = 6  # the version that added status pages
_PAGE = "id, account_id, slug, title, description, sections, public, created_at, updated_at"
_SECTIONS = msgspec.json.Decoder(list[PageSection])


def _page(row: tuple) -> StatusPage:
    return StatusPage(id=int(row[0]), account_id=int(row[1]), slug=row[2], title=row[3], description=row[4],
                      sections=_SECTIONS.decode(row[5]), public=bool(row[6]), created_at=iso(row[7]),
                      updated_at=iso(row[8]))


class StatusPageStore:
    con: duckdb.DuckDBPyConnection
    schema_version: Callable[[], int]  # (StoreBase's)

    def list_status_pages(self) -> list[StatusPage]:
        if self.schema_version() < _SCHEMA:  # (an older file, opened read-only by the CLI)
            return []
        return [_page(r) for r in self.con.execute(f"SELECT {_PAGE} FROM status_pages ORDER BY id").fetchall()]

    def create_status_page(self, page: StatusPage) -> StatusPage:
        """Store a new page; ``DuplicateError`` when its slug is taken."""
        if self.con.execute("SELECT 1 FROM status_pages WHERE slug = ?", [page.slug]).fetchone():
            raise DuplicateError(page.slug)
        now = utcnow()
        row = self.con.execute(
            f"""INSERT INTO status_pages (account_id, slug, title, description, sections, public, created_at,
                                          updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_PAGE}""",
            [page.account_id, page.slug, page.title, page.description, msgspec.json.encode(page.sections).decode(),
             page.public, now, now]).fetchone()
        assert row is not None
        return _page(row)

    def update_status_page(self, page: StatusPage) -> StatusPage | None:
        if self.con.execute("SELECT 1 FROM status_pages WHERE slug = ? AND id <> ?", [page.slug, page.id]).fetchone():
            raise DuplicateError(page.slug)
        row = self.con.execute(
            f"""UPDATE status_pages SET slug = ?, title = ?, description = ?, sections = ?, public = ?, updated_at = ?
                WHERE id = ? AND account_id = ? RETURNING {_PAGE}""",
            [page.slug, page.title, page.description, msgspec.json.encode(page.sections).decode(), page.public,
             utcnow(), page.id, page.account_id]).fetchone()
        return None if row is None else _page(row)

    def delete_status_page(self, account_id: int, page_id: int) -> bool:
        found = self.con.execute("DELETE FROM status_pages WHERE id = ? AND account_id = ? RETURNING id",
                                 [page_id, account_id]).fetchone()
        if found is None:
            return False
        incidents = [r[0] for r in self.con.execute("DELETE FROM page_incidents WHERE page_id = ? RETURNING id",
                                                    [page_id]).fetchall()]
        if incidents:
            self.con.execute("DELETE FROM page_incident_updates WHERE incident_id IN (SELECT unnest(?))", [incidents])
        return True

    # posted incidents --------------------------------------------------------------------
    def page_incidents(self, page_id: int, limit: int = 50) -> list[PageIncident]:
        """The page's posted incidents, newest first, each with its updates (newest first)."""
        rows = self.con.execute(
            """SELECT id, page_id, title, status, created_at, updated_at, resolved_at FROM page_incidents
               WHERE page_id = ? ORDER BY id DESC LIMIT ?""", [page_id, limit]).fetchall()
        if not rows:
            return []
        updates: dict[int, list[PageUpdate]] = {}
        for u in self.con.execute(
                """SELECT incident_id, id, status, message, created_at FROM page_incident_updates
                   WHERE incident_id IN (SELECT unnest(?)) ORDER BY id DESC""", [[r[0] for r in rows]]).fetchall():
            updates.setdefault(int(u[0]), []).append(PageUpdate(id=int(u[1]), status=u[2], message=u[3],
                                                                created_at=iso(u[4])))
        return [PageIncident(id=int(r[0]), page_id=int(r[1]), title=r[2], status=r[3], created_at=iso(r[4]),
                             updated_at=iso(r[5]), resolved_at=iso(r[6]), updates=updates.get(int(r[0]), []))
                for r in rows]

    def post_page_incident(self, page_id: int, title: str, status: str, message: str) -> PageIncident:
        now = utcnow()
        row = self.con.execute(
            """INSERT INTO page_incidents (page_id, title, status, created_at, updated_at, resolved_at)
               VALUES (?, ?, ?, ?, ?, ?) RETURNING id""",
            [page_id, title, status, now, now, now if status == "resolved" else None]).fetchone()
        assert row is not None
        self.con.execute("INSERT INTO page_incident_updates (incident_id, status, message, created_at) "
                         "VALUES (?, ?, ?, ?)", [row[0], status, message, now])
        return next(i for i in self.page_incidents(page_id) if i.id == int(row[0]))

    def update_page_incident(self, page_id: int, incident_id: int, status: str, message: str) -> PageIncident | None:
        now = utcnow()
        found = self.con.execute(
            """UPDATE page_incidents SET status = ?, updated_at = ?,
                      resolved_at = CASE WHEN ? = 'resolved' THEN coalesce(resolved_at, ?) ELSE NULL END
               WHERE id = ? AND page_id = ? RETURNING id""",
            [status, now, status, now, incident_id, page_id]).fetchone()
        if found is None:
            return None
        self.con.execute("INSERT INTO page_incident_updates (incident_id, status, message, created_at) "
                         "VALUES (?, ?, ?, ?)", [incident_id, status, message, now])
        return next((i for i in self.page_incidents(page_id, 1000) if i.id == incident_id), None)

    def delete_page_incident(self, page_id: int, incident_id: int) -> bool:
        found = self.con.execute("DELETE FROM page_incidents WHERE id = ? AND page_id = ? RETURNING id",
                                 [incident_id, page_id]).fetchone()
        if found is not None:
            self.con.execute("DELETE FROM page_incident_updates WHERE incident_id = ?", [incident_id])
        return found is not None

    # what the public pages show ----------------------------------------------------------
    def daily_uptime(self, monitor_ids: list[int], days: int, now: dt.datetime) -> dict[int, list[tuple]]:
        """Per monitor, per UTC day of the last ``days`` (today included) that has rolled-up
        checks: ``(day, checks, up, incidents started, downtime seconds)``. Today's open hours
        are not rolled up yet: the caller adds them from memory."""
        if not monitor_ids:
            return {}
        start = (now - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        with self._reading() as cur:  # type: ignore[attr-defined]
            checks = cur.execute(
                """SELECT monitor_id, CAST(hour AS DATE) AS day, sum(checks), sum(up) FROM checks_hourly
                   WHERE monitor_id IN (SELECT unnest($ids)) AND hour >= $start GROUP BY ALL""",
                {"ids": monitor_ids, "start": start}).fetchall()
            incidents = cur.execute(
                """SELECT monitor_id, CAST(started_at AS DATE), count(*),
                          sum(epoch(coalesce(resolved_at, $now)) - epoch(started_at))
                   FROM incidents WHERE monitor_id IN (SELECT unnest($ids)) AND started_at >= $start GROUP BY ALL""",
                {"ids": monitor_ids, "start": start, "now": now}).fetchall()
            held = cur.execute(
                """SELECT monitor_id, CAST(hour AS DATE) AS day, sum(checks), sum(up) FROM maintenance_checks
                   WHERE monitor_id IN (SELECT unnest($ids)) AND hour >= $start GROUP BY ALL""",
                {"ids": monitor_ids, "start": start}).fetchall()
        out: dict[int, dict[Any, list[Any]]] = {}
        for monitor_id, day, n, up in checks:
            out.setdefault(int(monitor_id), {})[day] = [day, int(n), int(up), 0, 0.0]
        for monitor_id, day, n, up in held:  # (checks made in maintenance are left out)
            entry = out.get(int(monitor_id), {}).get(day)
            if entry is not None:
                entry[1], entry[2] = max(0, entry[1] - int(n)), max(0, entry[2] - int(up))
        for monitor_id, day, n, down_s in incidents:
            entry = out.setdefault(int(monitor_id), {}).setdefault(day, [day, 0, 0, 0, 0.0])
            entry[3], entry[4] = int(n), float(down_s or 0)
        return {m: [tuple(v) for _, v in sorted(days_.items())] for m, days_ in out.items()}

