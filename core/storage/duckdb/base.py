"""The store's connection: opening (read-write, or read-only for the CLI), migration, closing."""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from pathlib import Path

import duckdb

from core.storage.duckdb.common import (
    DB_FILE,
    READERS,
    NewerSchemaError,
    utcnow,
)
from core.storage.duckdb.integrations import alert_target
from core.storage.schema import LATEST, MIGRATIONS

__all__ = ["StoreBase", "keep_private"]

log = logging.getLogger("xuptime.storage")


def keep_private(data_dir: Path) -> None:
    """The data dir is its owner's alone (0700) and so is every file in it (0600): it holds
    the checks, the API key hashes and the channels' secrets. A dir or file that other users
    can read is fixed, with a warning saying what was open."""
    for path in (data_dir, *sorted(p for p in data_dir.iterdir() if p.is_file() or p.is_socket())):
        want = 0o700 if path.is_dir() else 0o600
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("%s was readable by other users (mode %o); it is now %o", path, mode, want)
            path.chmod(want)


class StoreBase:
    """One DuckDB file, its writer connection, reader cursors and the rollup cursor."""

    def __init__(self, data_dir: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(data_dir) / DB_FILE
        self.read_only = read_only
        if not read_only:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            keep_private(self.path.parent)
        elif not self.path.exists():
            raise FileNotFoundError(f"no xuptime database at {self.path}")
        # DuckDB sizes its thread pool from the machine, not from this process's CPU affinity.
        # No file but its own, ever: operators' SQL (``query``) cannot read or write files,
        # attach databases or load extensions, and nothing can turn that back on while it runs.
        self.con = duckdb.connect(str(self.path), read_only=read_only,
                                  config={"threads": max(1, len(os.sched_getaffinity(0))),
                                          "enable_external_access": False})
        self.con.create_function("xuptime_target", alert_target, [str, str], str, side_effects=False)
        try:
            # (kept: every thread asks, and only the writer may touch ``con``)
            self._version = self.migrate() if not read_only else self._not_newer()
        except BaseException:
            self.con.close()
            raise
        # Cursors for read-only queries from other threads, made here, once: a thread that is
        # not the writer's must never touch the writer's connection (see ``query``).
        self._readers: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        for _ in range(READERS + 1):
            self._readers.put(self.con.cursor())
        self._maint = self.con.cursor()  # the rollup job's, beside the writer
        self._rollup_lock = threading.Lock()
        #: Rolled-up hours that late rows landed in -> a counter bumped by each such row batch.
        self._dirty: dict[int, int] = {}
        self._rolling_to = 0
        #: Bumped when rolled-up hours are rewritten (not when new hours are appended).
        self._rollup_generation = 0
        self._hour_cache: collections.OrderedDict[int, tuple[int, int, list[tuple]]] = collections.OrderedDict()
        #: Stored batches so far, and per monitor the number of the last batch that held one of
        #: its rows; ``_late`` counts batches with rows in rolled-up hours (see ``history_version``).
        self._batches = self._late = 0
        self._changed: dict[int, int] = {}
        row = self.con.execute("SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM checks").fetchone()
        #: Bounds (µs) of every stored check's ts, or None when there are none.
        self._ts_range: tuple[int, int] | None = None if not row or row[0] is None else (int(row[0]), int(row[1]))
        try:  # (a read-only open of an older database has no rollups yet)
            row = self.con.execute("SELECT epoch_us(upto) FROM rollup_state WHERE name = 'hourly'").fetchone()
        except duckdb.CatalogException:
            row = None
        #: Exclusive end (µs) of the hours in ``checks_hourly``; None before the first rollup.
        self.rollup_upto_us: int | None = None if row is None else int(row[0])
        self._load_upkeep()  # type: ignore[attr-defined]

    # schema -----------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The file's schema version: read once when it is opened (and migrated), then kept, so
        any thread may ask (a reader asking the writer's connection would race the writer)."""
        version = getattr(self, "_version", None)
        return version if version is not None else self._read_version()

    def _read_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0) if row else 0

    def _not_newer(self) -> int:
        """The schema version, or ``NewerSchemaError`` when a newer xuptime wrote it."""
        version = self._read_version()
        if version > LATEST:
            raise NewerSchemaError(f"database schema v{version} is newer than this xuptime (v{LATEST})")
        return version

    def migrate(self) -> int:
        """Apply pending migrations, each atomically; returns the resulting version."""
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        version = self._not_newer()
        for number in range(version, LATEST):
            self.con.execute("BEGIN TRANSACTION")
            try:
                for statement in MIGRATIONS[number]:
                    self.con.execute(statement)
                self.con.execute("INSERT INTO schema_version VALUES (?, ?)", [number + 1, utcnow()])
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        if version < LATEST:
            # Schema changes go into the database file at once, not only into the WAL: a crash
            # must never leave DDL for WAL replay to trip over.
            self.con.execute("CHECKPOINT")
        return LATEST

    def evict_cached_blocks(self) -> None:
        """Drop the table blocks DuckDB keeps cached (unpinned, kept until memory is short: the
        default limit is 80% of RAM), by setting a tiny memory limit (DuckDB evicts down to it)
        and the one before back. For the server's start: reading every monitor leaves about 30 MB
        of blocks per million monitors cached that nothing reads again soon. Writer thread
        only, with no query running on another."""
        row = self.con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert row is not None
        limit = str(row[0])
        try:
            self.con.execute("SET memory_limit = '1MB'")
        except duckdb.Error:  # (more is pinned than that, an index: what could be dropped was)
            pass
        finally:
            # (set back by value: ``RESET memory_limit`` shows the default again but leaves the
            # buffer manager at the tiny limit, DuckDB 1.5.5)
            self.con.execute(f"SET memory_limit = '{limit}'")

    def close(self) -> None:
        for _ in range(READERS + 1):
            self._readers.get().close()
        self._maint.close()
        if not self.read_only:
            self.con.execute("CHECKPOINT")
        self.con.close()
