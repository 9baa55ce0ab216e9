"""History and uptime of one monitor.

``GET /api/v1/monitors/{id}/history``: ``interval=raw`` (default) lists checks newest first;
``1m|5m|1h|1d`` lists buckets that hold checks, newest first; latency percentiles are exact for
minutes and hours and, for days, estimated from hourly histograms within 1.6%.
``limit`` is 1..1000 (default 100); ``from``/``to`` are ISO 8601 or Unix seconds.
``GET /api/v1/monitors/{id}/uptime?windows=24h,7d,30d``: ratio, checks, and downtime seconds
(incident time inside the window) per window, keyed by the window as given.

Encoded history answers are cached (``AnswerCache``): a dashboard or status page that many
people watch asks for the same month of hours over and over, and recomputing 720 buckets per
viewer would make the API's cost grow with the audience instead of with the data.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any

import msgspec
import numpy as np
from litestar import MediaType, Request, Response, get, patch
from litestar.di import NamedDependency as Named
from litestar.params import FromPath
from litestar.response import Stream

from api.errors import BadRequest
from api.monitors import decode_cursor, encode_cursor, json_body, parse_limit
from api.schemas import ERROR_RESPONSES, WRITE_RESPONSES
from core.clock import instant_us, iso_ms
from core.models import FieldError
from core.services import HistoryService, Invalid, MonitorService
from core.services.exports import FORMATS, MEDIA_TYPES, Encoder

__all__ = ["AnswerCache", "monitor_history", "monitor_uptime"]

BUCKETS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
_WINDOW = re.compile(r"^(\d{1,4})([mhdw])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# Bucket starts repeat from request to request: format each once.
_iso = functools.lru_cache(maxsize=1 << 16)(iso_ms)


class AnswerCache:
    """Encoded answers keyed by query, each kept with the ``history_version`` of its monitor
    read before it was computed, and served only while that version is current: the store
    bumps it after committing any change that could alter the answer, so a hit is byte for byte
    what recomputing would give (never older than the data at that version). Requests that
    miss together share one computation (``fill``), so a crowd arriving at once costs one
    query, not one each. Least recently used answers are dropped beyond ``max_bytes``.
    Event-loop only, no locking."""

    def __init__(self, max_bytes: int = 32 << 20) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: collections.OrderedDict[Hashable, tuple[Hashable, bytes]] = collections.OrderedDict()
        self._pending: dict[Hashable, tuple[Hashable, asyncio.Future[bytes]]] = {}
        #: Answers served from the cache, and computations started (benchmarks report both:
        #: a history figure means something only with its hit rate beside it).
        self.hits = self.computed = 0

    def fill(self, key: Hashable, version: Hashable, make: Callable[[], Awaitable[bytes]]) -> Awaitable[bytes]:
        """The answer from ``make()``, or from a computation of the same key and version that is
        already running. A caller that is cancelled does not cancel it for the others."""
        pending = self._pending.get(key)
        if pending is None or pending[0] != version:
            self.computed += 1
            task = asyncio.ensure_future(make())
            pending = self._pending[key] = (version, task)
            task.add_done_callback(functools.partial(self._filled, key, version))
        return asyncio.shield(pending[1])

    def _filled(self, key: Hashable, version: Hashable, task: asyncio.Future[bytes]) -> None:
        if self._pending.get(key, (None, None))[1] is task:
            del self._pending[key]
        if not task.cancelled() and task.exception() is None:
            self.put(key, version, task.result())

    def get(self, key: Hashable, version: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] != version:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: Hashable, version: Hashable, body: bytes) -> None:
        if len(body) > self.max_bytes // 4:
            return
        self._drop(key)
        self._entries[key] = (version, body)
        self.size += len(body)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry[1])


def _bucket(ts_us: int, checks: int, up: int, ms: list[Any]) -> dict[str, Any]:
    """One bucket of the answer; ``ms``: avg, min, max, p50, p95, p99 latency in ms."""
    return {"ts": _iso(ts_us), "checks": checks, "up": up, "uptime": up / checks,
            "latencyMs": {"avg": ms[0], "min": ms[1], "max": ms[2], "p50": ms[3], "p95": ms[4], "p99": ms[5]}}


def _ms(us: Any) -> float | None:
    return None if us is None else round(us / 1000, 3)


def parse_time(field: str, raw: str | None) -> int | None:
    """ISO 8601 (a missing zone means UTC), Unix seconds or Unix milliseconds -> µs since the epoch."""
    if raw is None or raw == "":
        return None
    try:
        return instant_us(raw)
    except ValueError:
        raise BadRequest(f"Invalid {field}",
                         [{"field": field, "message": "must be ISO 8601, Unix seconds or Unix milliseconds"}]) from None


def series_query(params: Any, what: str) -> tuple[str, int, int | None, int | None, int | None]:
    """A series' query (``interval``, ``limit`` 1..1000, ``from``, ``to``, ``cursor``) as
    ``(interval, limit, from µs, to µs, before µs)``, or a 400 naming every bad parameter."""
    interval = params.get("interval", "raw")
    errors = []
    if interval != "raw" and interval not in BUCKETS:
        errors.append({"field": "interval", "message": "must be one of raw, 1m, 5m, 1h, 1d"})
    limit = parse_limit(params.get("limit"), default=100, maximum=1000)
    start, end = parse_time("from", params.get("from")), parse_time("to", params.get("to"))
    if start is not None and end is not None and start > end:
        errors.append({"field": "from", "message": "must not be after to"})
    if errors:
        raise BadRequest(f"Invalid {what} query", errors)
    cursor = params.get("cursor")
    return interval, limit, start, end, decode_cursor(cursor) if cursor else None


@get("/monitors/{monitor_id:int}/history", operation_id="getMonitorHistory", tags=["history"],
     responses=ERROR_RESPONSES)
async def monitor_history(request: Request[int, Any, Any], monitors: Named[MonitorService],
                          history: Named[HistoryService],
                          monitor_id: FromPath[int]) -> Response[Any]:
    """Checks or time buckets of one monitor, newest first; with ``format=csv|parquet``, the
    whole range as a file, oldest first, streamed."""
    interval, limit, start, end, before = series_query(request.query_params, "history")
    monitors.require(request.user, monitor_id)
    account = request.user
    fmt = request.query_params.get("format")
    if fmt is not None and fmt != "json":
        return await _export(history, account, monitor_id, interval, start, end, before, fmt)
    cache: AnswerCache = request.app.state.history_cache
    key = (monitor_id, interval, start, end, before, limit)
    version = history.version(monitor_id)  # before the read: see AnswerCache
    body = cache.get(key, version)
    if body is None:
        async def make() -> bytes:
            if interval in ("raw", "1h"):
                return await _encoded(history, account, monitor_id, interval, start, end, before, limit)
            return msgspec.json.encode(await _history(history, account, monitor_id, interval, start, end, before,
                                                      limit))
        body = await cache.fill(key, version, make)
    # The body is that dict, already encoded (a bytes content is sent as it is).
    return Response(body, media_type=MediaType.JSON)  # type: ignore[arg-type]


async def _export(history: HistoryService, account: int, monitor_id: int, interval: str, start: int | None,
                  end: int | None, before: int | None, fmt: str) -> Response[Any]:
    """The range as a CSV or Parquet file, streamed (one batch of checks in memory at a time)."""
    errors = []
    if fmt not in FORMATS:
        errors.append({"field": "format", "message": f"must be one of json, {', '.join(FORMATS)}"})
    if before is not None:
        errors.append({"field": "cursor", "message": "an export is the whole range: no cursor"})
    if errors:
        raise BadRequest("Invalid history query", errors)
    _, batches = await history.export(account, [monitor_id], BUCKETS.get(interval), start, end)

    async def chunks() -> AsyncIterator[bytes]:
        encoder = Encoder(fmt)  # (on a thread: a batch's CSV takes tens of ms the loop must not wait)
        async for batch in batches:
            chunk = await asyncio.to_thread(encoder.write, batch)
            if chunk:
                yield chunk
        yield await asyncio.to_thread(encoder.close)

    name = f"monitor-{monitor_id}-{interval}.{fmt}"
    return Stream(chunks(), media_type=MEDIA_TYPES[fmt],
                  headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _encoded(history: HistoryService, account: int, monitor_id: int, interval: str, start: int | None,
                   end: int | None, before: int | None, limit: int) -> bytes:
    """Raw checks or hour buckets, each item already encoded by the store (the two questions a
    dashboard, Grafana and the status pages ask most, uncached as often as not)."""
    read = history.raw_json if interval == "raw" else history.hours_json
    items, oldest, more = await read(account, monitor_id, start, end, before, limit)
    pagination = {"limit": limit, "nextCursor": encode_cursor(oldest) if more and oldest is not None else None}
    return b'{"data":[' + items + b'],"pagination":' + msgspec.json.encode(pagination) + b"}"


async def _history(history: HistoryService, account: int, monitor_id: int, interval: str, start: int | None,
                   end: int | None, before: int | None, limit: int) -> dict[str, Any]:
    if interval == "raw":
        rows, more = await history.raw(account, monitor_id, start, end, before, limit)
        data = [{"ts": _iso(r[0]), "ok": r[1], "latencyMs": _ms(r[2]), "statusCode": r[3], "error": r[4],
                 "phases": {"dnsMs": _ms(r[5]), "connectMs": _ms(r[6]), "tlsMs": _ms(r[7]), "ttfbMs": _ms(r[8])}}
                for r in rows]
    else:
        rows, more = await history.buckets(account, monitor_id, BUCKETS[interval], start, end, before, limit)
        # Six latencies a bucket, up to 1000 buckets: round them to µs in one numpy pass.
        ms = np.round(np.array([(r[3], r[4], r[5], *r[6]) for r in rows], dtype=np.float64).reshape(-1, 6) / 1000,
                      3).tolist()
        data = [_bucket(r[0], r[1], r[2], m) for r, m in zip(rows, ms, strict=True)]
    next_cursor = encode_cursor(rows[-1][0]) if more and rows else None
    return {"data": data, "pagination": {"limit": limit, "nextCursor": next_cursor}}


@get("/monitors/{monitor_id:int}/uptime", operation_id="getMonitorUptime", tags=["history"], responses=ERROR_RESPONSES)
async def monitor_uptime(request: Request[int, Any, Any], history: Named[HistoryService],
                         monitor_id: FromPath[int]) -> dict[str, Any]:
    """Uptime ratio, check count and downtime per window (default 24h,7d,30d)."""
    raw = request.query_params.get("windows") or "24h,7d,30d"
    windows = []
    for label in [w.strip() for w in raw.split(",") if w.strip()]:
        match = _WINDOW.match(label)
        if not match or int(match.group(1)) == 0 or int(match.group(1)) * _UNIT_S[match.group(2)] > 366 * 86400:
            raise BadRequest("Invalid windows", [{"field": "windows",
                                                  "message": f"{label!r}: use e.g. 90m, 24h, 7d, 4w (up to 366 days)"}])
        windows.append((label, int(match.group(1)) * _UNIT_S[match.group(2)]))
    if not windows or len(windows) > 10:
        raise BadRequest("Invalid windows", [{"field": "windows", "message": "give 1 to 10 windows"}])
    return {"data": await history.uptime(request.user, monitor_id, windows)}


@get("/settings/retention", operation_id="getRetention", tags=["history"], responses=ERROR_RESPONSES)
async def get_retention(request: Request[int, Any, Any], history: Named[HistoryService]) -> dict[str, Any]:
    """How long the server keeps each tier of history: ``raw`` checks (and agents' reports),
    ``hourly`` and ``daily`` rollups, each a duration (``90d``, ``2y``) or ``forever``."""
    return {"data": history.retention(request.user).text()}


@patch("/settings/retention", operation_id="updateRetention", tags=["history"], responses=WRITE_RESPONSES)
async def update_retention(request: Request[int, Any, Any], history: Named[HistoryService]) -> dict[str, Any]:
    """Change some tiers (``{"raw": "30d"}``; the others stay), for the whole server: only an
    admin of its own account may. Rows past the new retention go within a minute; a tier
    is never kept shorter than a finer one (raw <= hourly <= daily)."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise Invalid("Invalid retention", [FieldError("body", "must be a JSON object of tiers")])
    return {"data": (await history.set_retention(request.user, body)).text()}
