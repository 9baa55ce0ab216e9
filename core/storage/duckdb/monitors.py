"""Monitors: create (many in one statement), update, pause, delete, read back."""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Iterator
from typing import Any

import duckdb
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.models import (
    Monitor,
    MonitorTimes,
    MonitorValidationError,
    parse_monitor,
)
from core.models.packed import LAYOUT, Blobs, MonitorBatch, pack
from core.storage.duckdb.common import (
    SPEC_TYPES,
    iso,
    utcnow,
)

__all__ = ["MonitorStore"]

#: The columns a monitor's packed bytes (``monitors.packed``) are made from, as stored, in the
#: order ``source_hash`` hashes them.
_SOURCE = ("id", "account_id", "type", "spec", "interval_s", "timeout_s", "retries", "recovery_threshold", "paused",
           "tags", "integrations")
_SOURCE_TYPES = ("BIGINT", "BIGINT", "VARCHAR", "JSON", "INTEGER", "DOUBLE", "INTEGER", "INTEGER", "BOOLEAN",
                 "VARCHAR[]", "BIGINT[]")


def source_hash(values: tuple[str, ...] = _SOURCE) -> str:
    """SQL for the hash of a monitor's source columns (``values``: expressions for them, in
    ``_SOURCE``'s order, each cast to its column's type) and of ``$layout``
    (``packed.LAYOUT``): ``monitors.packed`` is the row's monitor while ``packed_of`` equals
    it, whoever changed the row since (an older xuptime, an operator's SQL) and however
    ``pack``'s layout changed."""
    typed = [f"({v})::{t}" for v, t in zip(values, _SOURCE_TYPES, strict=True)]
    return f"hash({', '.join(typed)}, $layout)"


_NEW_ROW = ('{"id": "BIGINT", "account_id": "BIGINT", "name": "VARCHAR", "type": "VARCHAR", "spec": "VARCHAR",'
            ' "interval_s": "INTEGER", "timeout_s": "DOUBLE", "retries": "INTEGER", "recovery_threshold": "INTEGER",'
            ' "paused": "BOOLEAN", "status": "VARCHAR", "tags": "VARCHAR[]", "integrations": "BIGINT[]",'
            ' "packed": "VARCHAR"}')
_INSERT_MONITORS = f"""
    INSERT INTO monitors (id, account_id, name, type, spec, interval_s, timeout_s, retries, recovery_threshold, paused,
                          status, tags, integrations, created_at, updated_at, packed, packed_of)
    SELECT r.id, r.account_id, r.name, r.type, r.spec, r.interval_s, r.timeout_s, r.retries, r.recovery_threshold,
           r.paused, r.status, r.tags, r.integrations, $now, $now, from_base64(r.packed),
           {source_hash(tuple(f"r.{c}" for c in _SOURCE))}
    FROM (SELECT unnest(from_json($rows, '[{_NEW_ROW}]')) AS r)"""
#: The packed bytes made again at start, stored unless the row changed since it was read.
_STORE_PACKED = f"""
    UPDATE monitors SET packed = w.packed, packed_of = w.source FROM _xuptime_packed w
    WHERE monitors.id = w.id AND {source_hash(tuple(f"monitors.{c}" for c in _SOURCE))} = w.source"""


def _blobs(column: pa.Array) -> Blobs:
    """An Arrow string or binary column without nulls as ``Blobs``, without a copy."""
    large = pa.types.is_large_binary(column.type) or pa.types.is_large_string(column.type)
    _, offsets, data = column.buffers()
    at = np.frombuffer(offsets, dtype=np.int64 if large else np.int32)[column.offset:column.offset + len(column) + 1]
    return Blobs(data if data is not None else b"", at)

log = logging.getLogger("xuptime.storage")


class MonitorStore:
    """Monitors: create (many in one statement), update, pause, delete, read back."""

    con: duckdb.DuckDBPyConnection
    read_only: bool
    #: Monitors the last ``monitor_batches`` decoded, checked and packed (not stored bytes).
    repacked: int = 0

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
        rows = []
        for mid, m in zip(ids, monitors, strict=True):
            status = "paused" if m.paused else "pending"
            packed = pack(msgspec.structs.replace(m, id=mid, status=status), name=False)
            rows.append({"id": mid, "account_id": m.account_id, "name": m.name, "type": m.type,
                         "spec": msgspec.json.encode(m.spec).decode(), "interval_s": m.interval,
                         "timeout_s": m.timeout, "retries": m.retries, "recovery_threshold": m.recovery_threshold,
                         "paused": m.paused, "status": status, "tags": m.tags, "integrations": m.integrations,
                         "packed": binascii.b2a_base64(packed, newline=False).decode()})
        self.con.execute(_INSERT_MONITORS, {"rows": msgspec.json.encode(rows).decode(), "now": now,
                                            "layout": LAYOUT})
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
        status = ", paused = $paused, status = $status, status_since = $now" if paused_changed else ""
        params: dict[str, Any] = {
            "id": monitor.id, "name": monitor.name, "spec": msgspec.json.encode(monitor.spec).decode(),
            "interval": monitor.interval, "timeout": monitor.timeout, "retries": monitor.retries,
            "recovery": monitor.recovery_threshold, "tags": monitor.tags, "integrations": monitor.integrations,
            "now": now, "layout": LAYOUT,
            # (the bytes as of this change; the status in them is never read: the live one is)
            "packed": pack(monitor, name=False)}
        if paused_changed:
            params |= {"paused": monitor.paused, "status": "paused" if monitor.paused else "pending"}
        source = source_hash(("id", "account_id", "type", "$spec", "$interval", "$timeout", "$retries", "$recovery",
                              "$paused" if paused_changed else "paused", "$tags", "$integrations"))
        row = self.con.execute(
            f"""UPDATE monitors SET name = $name, spec = $spec, interval_s = $interval, timeout_s = $timeout,
                    retries = $retries, recovery_threshold = $recovery, tags = $tags, integrations = $integrations,
                    updated_at = $now, packed = $packed, packed_of = {source}{status} WHERE id = $id
                RETURNING {self._MONITOR_COLUMNS}, created_at, updated_at, status_since""",
            params,
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

    def monitor_batches(self, rows: int = 65_536) -> Iterator[MonitorBatch]:
        """Every stored monitor, in the order stored, as columns (``MonitorBatch``) of up to
        ``rows`` monitors: what the main process holds them as, read without a ``Monitor``
        built. A row's stored packed bytes are used while its source hash matches; any other
        row is decoded and checked as ``each_monitor`` does (an invalid one is logged and
        skipped), packed, and (unless the store is read-only) its bytes stored for the next
        start, unless the row changed in the meantime."""
        fresh = f"packed IS NOT NULL AND packed_of = {source_hash()}"
        packed = f"CASE WHEN {fresh} THEN packed END"
        if not self._has_packed():  # (a read-only open of an older database)
            fresh, packed = "false", "NULL::BLOB"
        sql = f"""
            SELECT id, account_id, name, type, paused, status, CASE WHEN len(tags) > 0 THEN tags END AS tags,
                   {packed} AS packed,
                   CASE WHEN {fresh} THEN NULL ELSE spec END AS spec, interval_s, timeout_s, retries,
                   recovery_threshold, coalesce(integrations, []) AS integrations,
                   CASE WHEN {fresh} THEN NULL ELSE {source_hash()} END AS source
            FROM monitors"""
        self.repacked = 0
        cursor = self.con.cursor()  # (the writer's connection stores the bytes made while this reads)
        try:
            reader = cursor.execute(sql, {"layout": LAYOUT}).to_arrow_reader(rows)
            for batch in reader:
                if batch.num_rows:
                    yield self._monitor_batch(batch)
        finally:
            cursor.close()
        if self.repacked:
            log.info("%d monitors were packed again (written before this version, by hand, or under another"
                     " layout)", self.repacked)

    def _has_packed(self) -> bool:
        row = self.con.execute("SELECT count(*) FROM information_schema.columns"
                               " WHERE table_name = 'monitors' AND column_name = 'packed'").fetchone()
        return bool(row and row[0])

    def _monitor_batch(self, batch: pa.RecordBatch) -> MonitorBatch:
        packed_column = batch.column("packed")
        if packed_column.null_count:  # rows to decode, check and pack
            batch, blobs = self._packed_again(batch)
        else:
            blobs = _blobs(packed_column)
        ids = batch.column("id").to_numpy()
        tags_column = batch.column("tags")
        with_tags = np.flatnonzero(pc.is_valid(tags_column).to_numpy(zero_copy_only=False))
        return MonitorBatch(ids=ids, accounts=batch.column("account_id").to_numpy(),
                            paused=batch.column("paused").to_numpy(zero_copy_only=False),
                            kinds=batch.column("type").to_pylist(), statuses=batch.column("status").to_pylist(),
                            names=_blobs(batch.column("name")), packed=blobs,
                            tags={int(ids[at]): tuple(tags_column[at].as_py()) for at in with_tags.tolist()})

    def _packed_again(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, Blobs]:
        """The rows of ``batch`` without stored bytes decoded, checked and packed (their bytes
        stored, unless read-only): the batch without its invalid rows (each logged), and the
        packed bytes of every row left."""
        packed: list[bytes | None] = batch.column("packed").to_pylist()
        keep = np.ones(len(packed), dtype=np.bool_)
        made = []
        names = ("id", "account_id", "name", "type", "spec", "interval_s", "timeout_s", "retries",
                 "recovery_threshold", "paused", "status", "tags", "integrations")
        stale = np.flatnonzero(pc.is_null(batch.column("packed")).to_numpy(zero_copy_only=False))
        for at, row in zip(stale.tolist(), batch.take(pa.array(stale)).select(names).to_pylist(), strict=True):
            row["tags"] = row["tags"] or []
            try:
                monitor = self._monitor_from_row(tuple(row.values()))
            except MonitorValidationError as exc:
                log.error("monitor %s is invalid and is skipped: %s", row["id"], exc)
                keep[at] = False
                continue
            packed[at] = pack(monitor, name=False)
            made.append(at)
        self.repacked += len(made)
        if made and not self.read_only:
            chosen = pa.array(made, pa.int64())
            self.con.register("_xuptime_packed", pa.table({
                "id": batch.column("id").take(chosen), "packed": pa.array([packed[at] for at in made], pa.binary()),
                "source": batch.column("source").take(chosen)}))
            try:
                self.con.execute(_STORE_PACKED, {"layout": LAYOUT})
            finally:
                self.con.unregister("_xuptime_packed")
        kept = [p for p, k in zip(packed, keep.tolist(), strict=True) if k]
        return (batch if keep.all() else batch.filter(pa.array(keep))), Blobs.of(kept)  # type: ignore[arg-type]

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
