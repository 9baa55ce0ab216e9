"""Exports: Arrow batches in, CSV or Parquet bytes out, a batch at a time, so an export of any
size holds one batch in memory (the API's ``?format=``, ``xuptime export``, ``xuptime sql
--out``). And the bridge that runs a store's batch generator on the store's threads for the
event loop.

CSV: a header line, RFC 4180 quoting, timestamps in ISO 8601 UTC (``2026-12-01T10:00:05.123456Z``),
an empty field for null. Parquet: the columns' own types (timestamps UTC, µs), zstd, one row
group a batch.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["FORMATS", "MEDIA_TYPES", "Encoder", "encode", "stream_batches"]

FORMATS = ("csv", "parquet")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def _for_csv(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Timestamps as ISO 8601 text (Arrow's CSV writer puts a space where ISO has a ``T``)."""
    columns, changed = [], False
    for column in batch.columns:
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
            changed = True
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


class Encoder:
    """One file's bytes, written a batch at a time: ``write`` gives the bytes the batch made,
    ``close`` the rest (Parquet's footer). Every batch must have the first one's schema."""

    def __init__(self, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}")
        self.fmt = fmt
        self.rows = 0
        self._sink = io.BytesIO()
        self._writer: Any = None

    def _drain(self) -> bytes:
        data = self._sink.getvalue()
        self._sink.seek(0)
        self._sink.truncate()
        return data

    def write(self, batch: pa.RecordBatch) -> bytes:
        if self.fmt == "csv":
            batch = _for_csv(batch)
            if self._writer is None:
                self._writer = pacsv.CSVWriter(self._sink, batch.schema)
        elif self._writer is None:
            self._writer = pq.ParquetWriter(self._sink, batch.schema, compression="zstd")
        self._writer.write_batch(batch)
        self.rows += batch.num_rows
        return self._drain()

    def close(self, schema: pa.Schema | None = None) -> bytes:
        """The file's end. With no batch written, an empty file of ``schema``'s columns."""
        if self._writer is None and schema is not None:
            empty = pa.RecordBatch.from_pylist([], schema=schema)
            if self.fmt == "csv":
                self._writer = pacsv.CSVWriter(self._sink, _for_csv(empty).schema)
            else:
                self._writer = pq.ParquetWriter(self._sink, schema, compression="zstd")
        if self._writer is not None:
            self._writer.close()
        return self._drain()


def encode(batches: Iterable[pa.RecordBatch], fmt: str, schema: pa.Schema | None = None) -> Iterator[bytes]:
    """The file's bytes, chunk by chunk, as ``batches`` are read."""
    encoder = Encoder(fmt)
    for batch in batches:
        chunk = encoder.write(batch)
        if chunk:
            yield chunk
    yield encoder.close(schema)


async def stream_batches(run: Callable[..., Any], make: Callable[[], Iterator[pa.RecordBatch]]
                         ) -> AsyncIterator[pa.RecordBatch]:
    """``make()``'s batches, each pulled on a store thread through ``run`` (``StoreThreads.read``):
    the event loop never waits on DuckDB. The generator is closed however the stream ends
    (a client that goes away stops the query)."""
    generator = await run(make)
    done = object()
    try:
        while (batch := await run(next, generator, done)) is not done:
            yield batch
    finally:
        await run(generator.close)
