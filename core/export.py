"""The CLI's exports (``xuptime export``, ``xuptime sql --format ... --out``): a streamed
operation (``core.ops.STREAM_OPS``) read from the running server's control socket as an Arrow
IPC stream, or run on the data dir itself when no server runs, written a batch at a time into
a file (CSV, Parquet, or a JSON array) with a progress bar when standard error is a terminal.

The file appears whole or not at all: it is written beside its name and renamed at the end;
an export that fails midway (a stream cut short, a query stopped) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import datetime as dt
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from core.clock import instant_us
from core.services.exports import Encoder, csv_chunk

__all__ = ["ExportError", "parse_time", "run_export"]

#: Threads encoding CSV (pyarrow lets go of the GIL): it costs five times Parquet's encoding.
CSV_THREADS = 2
_AGO = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ExportError(Exception):
    """An export that could not be made; the message is for the user."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors


def parse_time(name: str, value: str | None, now: dt.datetime | None = None) -> int | None:
    """``--from``/``--to`` as µs: ISO 8601 (UTC unless it says), Unix seconds or milliseconds
    (as the API reads them), or a duration back from now (``90m``, ``24h``, ``7d``, ``4w``)."""
    if value is None:
        return None
    text = value.strip()
    ago = _AGO.match(text)
    if ago:
        moment = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=int(ago.group(1)) * _UNIT_S[ago.group(2)])
        return int(moment.timestamp() * 1_000_000)
    try:
        return instant_us(text)
    except ValueError:
        raise ExportError(f"--{name}: {value!r} is not a time (ISO 8601, Unix seconds or milliseconds, "
                          "or a duration back from now such as 24h or 7d)") from None


class _File:
    """The output: CSV or Parquet through an ``Encoder``, or a JSON array; ``-`` is standard
    output. Written to a temporary file beside the name, renamed by ``finish``."""

    def __init__(self, out: str, fmt: str) -> None:
        self.fmt = fmt
        self.rows = 0
        self.path: Path | None = None if out == "-" else Path(out)
        self._tmp: Path | None = None
        if self.path is None:
            self._file: IO[bytes] = sys.stdout.buffer
        else:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent or ".")
            self._tmp = Path(name)
            os.fchmod(fd, 0o644 & ~_umask())  # (as an ordinary file of the user's would be)
            self._file = os.fdopen(fd, "wb")
        self._encoder = Encoder(fmt) if fmt == "parquet" else None
        self._first = True
        #: CSV batches being encoded on other threads, oldest first (written in order).
        self._pending: collections.deque[concurrent.futures.Future[bytes]] = collections.deque()
        self._pool = concurrent.futures.ThreadPoolExecutor(CSV_THREADS) if fmt == "csv" else None

    def write(self, batch: pa.RecordBatch) -> None:
        if self._pool is not None:
            self._pending.append(self._pool.submit(csv_chunk, batch, self._first))
            self._first = False
            while len(self._pending) > CSV_THREADS:
                self._file.write(self._pending.popleft().result())
        elif self._encoder is not None:
            self._file.write(self._encoder.write(batch))
        else:
            for row in batch.to_pylist():
                self._file.write((b"[" if self._first else b",\n") + json.dumps(row, default=str).encode())
                self._first = False
        self.rows += batch.num_rows

    def finish(self) -> None:
        if self._pool is not None:
            while self._pending:
                self._file.write(self._pending.popleft().result())
            self._pool.shutdown()
        elif self._encoder is not None:
            self._file.write(self._encoder.close())
        else:
            self._file.write(b"[]\n" if self._first else b"]\n")
        self._file.flush()
        if self.path is not None and self._tmp is not None:
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.path)
            self._tmp = None

    def abandon(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Progress:
    """A progress bar on standard error (rich), when it is a terminal; else nothing."""

    def __init__(self, what: str, enabled: bool) -> None:
        self._bar: Any = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def start(self, total: int | None) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task("export", total=total)

    def advance(self, rows: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, rows)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _from_server(data_dir: Path, op: str, args: dict[str, Any]
                 ) -> tuple[dict[str, Any], Iterator[pa.RecordBatch]] | None:
    """The operation's header and batches through the control socket; None when no server
    answers. The socket stays open until the batches are read."""
    from core.cli import ServerNotRunning, control_socket

    try:
        sock = control_socket(data_dir, op, args, timeout=600)
    except ServerNotRunning:
        return None
    stream = sock.makefile("rb")
    answer = json.loads(stream.readline() or b'{"ok": false, "error": "the server closed the connection"}')
    if not answer.get("ok"):
        stream.close()
        sock.close()
        raise ExportError(answer.get("error", "failed"), answer.get("errors"))
    reader = pa.ipc.open_stream(stream)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except (pa.ArrowInvalid, OSError) as exc:
            raise ExportError(f"the server's stream was cut short ({exc}): see its log") from None
        finally:
            stream.close()
            sock.close()

    return answer["data"], batches()


def run_export(data_dir: Path, op: str, args: dict[str, Any], out: str, fmt: str, what: str) -> int:
    """Run a streamed operation into ``out``; the rows written."""
    try:
        target = _File(out, fmt)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from None
    try:
        with _Progress(what, out != "-") as progress:
            got = _from_server(data_dir, op, args)
            if got is not None:
                header, batches = got
                progress.start(header.get("rows"))
                for batch in batches:
                    target.write(batch)
                    progress.advance(batch.num_rows)
                target.finish()
            else:
                asyncio.run(_here(data_dir, op, args, target, progress))
        return target.rows
    except BaseException:
        target.abandon()
        raise


async def _here(data_dir: Path, op: str, args: dict[str, Any], target: _File, progress: _Progress) -> None:
    from core import ops
    from core.cli import _run_here
    from core.storage.duckdb import DB_FILE

    if not (data_dir / DB_FILE).exists():
        raise ExportError(f"no database in {data_dir} yet (start `xuptime serve` or add a monitor first)")

    async def work(services: Any) -> None:
        header, batches = await ops.stream(services, op, args)
        progress.start(header.get("rows"))
        async for batch in batches:
            target.write(batch)
            progress.advance(batch.num_rows)
        target.finish()

    await _run_here(data_dir, op, args, True, work)
