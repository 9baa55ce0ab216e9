"""Exports: Arrow batches in, CSV or Parquet bytes out, a batch at a time, so an export of any
size holds one batch in memory (the API's ``?format=``, ``xuptime export``, ``xuptime sql
--out``). And the bridge that runs a store's batch generator on the store's threads for the
event loop.

CSV: a header line, RFC 4180 quoting, timestamps in ISO 8601 UTC (``2026-12-01T10:00:05.123456Z``),
an empty field for null. Parquet: the columns' own types (timestamps UTC, µs), zstd, one row
group a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["FORMATS", "MEDIA_TYPES", "Encoder", "csv_chunk", "stream_batches"]

FORMATS = ("csv", "parquet")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def _for_csv(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Timestamps as ISO 8601 text (Arrow's CSV writer puts a space where ISO has a ``T``).
    Made from the naive UTC value: a cast or ``strftime`` of a zoned one looks the zone up
    for every value (1.3 µs each, most of an export's time)."""
    columns, changed = [], False
    for column in batch.columns:
        if pa.types.is_timestamp(column.type):
            text = pc.cast(column.cast(pa.timestamp(column.type.unit)), pa.string())
            text = pc.replace_substring(text, " ", "T", max_replacements=1)
            column = pc.binary_join_element_wise(text, "Z" if column.type.tz else "", "")
            changed = True
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth a Parquet dictionary (few values: text, flags, small integers). On every
    column, pyarrow's default, timestamps and latencies fell back from it page by page: twice
    the file and 60% more time (measured on 10M checks)."""
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_boolean(f.type) or (pa.types.is_integer(f.type) and f.type.bit_width <= 16)
            or f.name == "monitorId"]


def csv_chunk(batch: pa.RecordBatch, header: bool) -> bytes:
    """One batch as CSV lines (with the header line first if ``header``). Stateless: batches
    may be encoded on several threads at once (pyarrow lets go of the GIL) and joined in order."""
    sink = io.BytesIO()
    pacsv.write_csv(_for_csv(batch), sink, pacsv.WriteOptions(include_header=header))
    return sink.getvalue()


class Encoder:
    """One file's bytes, written a batch at a time: ``write`` gives the bytes the batch made,
    ``close`` the rest (Parquet's footer). Every batch must have the first one's schema;
    the streams exported give at least one, empty if there are no rows (a CSV's header, a
    Parquet file of no rows)."""

    def __init__(self, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}")
        self.fmt = fmt
        self._sink = io.BytesIO()
        self._writer: Any = None
        self._header = True

    def _drain(self) -> bytes:
        data = self._sink.getvalue()
        self._sink.seek(0)
        self._sink.truncate()
        return data

    def _parquet(self, schema: pa.Schema) -> Any:
        return pq.ParquetWriter(self._sink, schema, compression="zstd", use_dictionary=_dictionary_columns(schema))

    def write(self, batch: pa.RecordBatch) -> bytes:
        if self.fmt == "csv":
            chunk, self._header = csv_chunk(batch, self._header), False
            return chunk
        if self._writer is None:
            self._writer = self._parquet(batch.schema)
        self._writer.write_batch(batch)
        return self._drain()

    def close(self) -> bytes:
        """The file's end (Parquet's footer; nothing more for CSV)."""
        if self._writer is not None:
            self._writer.close()
        return self._drain()


async def stream_batches(run: Callable[..., Any], make: Callable[[], Iterator[pa.RecordBatch]]
                         ) -> AsyncIterator[pa.RecordBatch]:
    """``make()``'s batches, each pulled on a store thread through ``run`` (``StoreThreads.read``):
    the event loop never waits on DuckDB, and the next batch is read while the consumer works
    on this one (one ahead: two batches in memory at most). The generator is closed however the
    stream ends (a client that goes away stops the query)."""
    generator = await run(make)
    done = object()
    ahead: asyncio.Future[Any] | None = asyncio.ensure_future(run(next, generator, done))
    try:
        while ahead is not None and (batch := await ahead) is not done:
            ahead = asyncio.ensure_future(run(next, generator, done))
            yield batch
        ahead = None
    finally:
        if ahead is not None:  # (the consumer stopped early: let the read in flight end first)
            with contextlib.suppress(Exception):
                await ahead
        await run(generator.close)
