"""What every part of the DuckDB store shares: file name, reader count, errors, time helpers."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import sys
from collections.abc import Iterator
from typing import Any

import duckdb

from core.clock import iso_utc
from core.models import (
    KINDS,
)

__all__ = ["API_KEY_PREFIX", "DB_FILE", "HOUR_CACHE_MONITORS", "READERS", "SPEC_TYPES", "DuplicateError",
           "NewerSchemaError", "ReadOnlyQueryError", "finish", "iso", "transaction", "ts_of", "utcnow"]

log = logging.getLogger("xuptime.storage")

# DuckDB's Python client tries ``import pandas`` for every bound parameter; with pandas absent
# that is a failed import and a search of sys.path each time (about 0.1 ms per parameter,
# measured). A finder first on sys.meta_path answers "not installed" at once instead. (Setting
# ``sys.modules["pandas"] = None`` would too, but pyarrow reads that entry as a module.)
class _AbsentPandas:
    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name="pandas")


if importlib.util.find_spec("pandas") is None and not any(isinstance(f, _AbsentPandas) for f in sys.meta_path):
    sys.meta_path.insert(0, _AbsentPandas())  # type: ignore[arg-type]

SPEC_TYPES = dict(KINDS)

DB_FILE = "xuptime.duckdb"


def finish(cursor: Any) -> None:
    """End the result ``cursor`` may still hold, before it waits for its next use.

    DuckDB's Python client streams a SELECT's rows: after ``fetchone()`` the result stays open,
    and with it the statement's auto-commit transaction, until the cursor runs its next
    statement. While any transaction is open, DuckDB keeps the undo data of every later commit
    (each UPDATE of monitors' statuses: tens of MB at a million monitors), so a reader cursor
    idle in its pool after a ``fetchone()`` held the serve process's memory growing by hundreds
    of MB until some request happened to reuse it, and kept automatic checkpoints from running.
    """
    with contextlib.suppress(duckdb.InvalidInputException):  # (no result: nothing to end)
        cursor.fetchall()
READERS = 2  # threads of the server's read executor; the store has a reader cursor more (a read behind)
HOUR_CACHE_MONITORS = 256  # monitors whose rolled-up hours are kept in memory (LRU)


class DuplicateError(ValueError):
    """A unique name is already taken."""


class ReadOnlyQueryError(ValueError):
    """``query`` was given something other than SELECT/EXPLAIN statements."""


#: Every key starts with this, so a leaked key is recognisable (and greppable by scanners).
API_KEY_PREFIX = "xup_"


iso = iso_utc  # (the store's name for it)


def ts_of(ts_us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ts_us)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class NewerSchemaError(RuntimeError):
    """The database was written by a newer xuptime: neither read nor migrated (downgrades
    are not supported; the newer version is needed to read it)."""



@contextlib.contextmanager
def transaction(cur: Any) -> Iterator[Any]:
    """``cur`` in one transaction: committed when the block ends, rolled back if it raises."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield cur
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
