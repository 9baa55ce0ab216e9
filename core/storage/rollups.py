"""Hourly rollups of ``checks`` and the mergeable latency histogram they carry.

A row of ``checks_hourly`` sums one monitor's checks in one closed UTC hour: count, up count,
latency sum/min/max, the hour's exact p50/p95/p99 (``quantile_cont``, as a raw query would
give), and a sparse log-linear latency histogram (``hist_idx`` bins ascending, ``hist_cnt``
their counts) so longer buckets (days) can merge hours and still estimate percentiles.

Histogram bins (latency in µs, ``v >= 0``): values below 64 each have their own bin; above,
each power of two is split into 32 equal bins, so a bin is at most 1/32 of its lower bound
wide. Estimating a value by its bin's midpoint is off by at most 1/64 (1.6%) of the value.
Bin ``i`` for ``v >= 64``, with ``e = floor(log2 v)``: ``(e - 5) * 32 + (v >> (e - 5))``,
which continues the exact bins without a gap (``v = 64`` is bin 64).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["HOUR_COLUMNS", "HOUR_US", "QUANTILES", "aggregate_hours", "bin_of", "bin_sql", "hour_aggregate_sql",
           "merge_percentiles"]

HOUR_US = 3600 * 10**6
QUANTILES = (0.5, 0.95, 0.99)
_SUB = 32  # bins per power of two


def bin_sql(v: str) -> str:
    """SQL for the bin of integer column ``v`` (``log2`` rounding is corrected by one step)."""
    e0 = f"CAST(floor(log2(greatest({v}, 1))) AS INTEGER)"
    e = f"({e0} - CAST(({v} >> {e0}) = 0 AS INTEGER) + CAST(({v} >> {e0}) >= 2 AS INTEGER))"
    exact = f"greatest({v}, 0)"
    return f"CAST(CASE WHEN {v} < 64 THEN {exact} ELSE ({e} - 5) * {_SUB} + ({v} >> ({e} - 5)) END AS USMALLINT)"


def bin_of(values: np.ndarray) -> np.ndarray:
    """The bins of latencies in µs (the Python twin of ``bin_sql``)."""
    v = np.maximum(np.asarray(values, dtype=np.int64), 0)
    _, exp = np.frexp(np.maximum(v, 1).astype(np.float64))  # v = m * 2**exp, 0.5 <= m < 1: exact for < 2**53
    e = exp.astype(np.int64) - 1
    shift = np.maximum(e - 5, 0)
    return np.where(v < 64, v, (e - 5) * _SUB + (v >> shift))


def _bin_mid(bins: np.ndarray) -> np.ndarray:
    bins = bins.astype(np.int64)
    e = bins // _SUB + 4
    width = np.left_shift(1, np.maximum(e - 5, 0))
    low = (bins % _SUB + _SUB) * width
    return np.where(bins < 64, bins, low + (width - 1) / 2)


def merge_percentiles(hists: Iterable[tuple[Sequence[int], Sequence[int]]], lo: float, hi: float,
                      quantiles: Sequence[float] = QUANTILES) -> list[float]:
    """Estimate ``quantile_cont`` percentiles of the union of histograms ``(bins, counts)``.

    Each order statistic is taken as its bin's midpoint (within 1/64 of the true value) and
    interpolated like ``quantile_cont``; estimates are clamped to the known ``[lo, hi]``."""
    bins = np.concatenate([np.asarray(b, dtype=np.int64) for b, _ in hists] or [np.zeros(0, np.int64)])
    counts = np.concatenate([np.asarray(c, dtype=np.int64) for _, c in hists] or [np.zeros(0, np.int64)])
    if counts.sum() == 0:
        return [float("nan")] * len(quantiles)
    order = np.argsort(bins, kind="stable")
    unique, first = np.unique(bins[order], return_index=True)
    summed = np.add.reduceat(counts[order], first)
    cum = np.cumsum(summed)
    mids = _bin_mid(unique)
    out = []
    for q in quantiles:
        rank = q * (cum[-1] - 1)
        k = int(np.floor(rank))
        frac = rank - k
        x0 = mids[np.searchsorted(cum, k, side="right")]
        x1 = mids[np.searchsorted(cum, min(k + 1, cum[-1] - 1), side="right")]
        out.append(float(min(max(x0 + frac * (x1 - x0), lo), hi)))
    return out


#: The columns of ``_hour_groups`` (``checks_hourly``'s, less monitor and histogram).
HOUR_COLUMNS = ("hour", "checks", "up", "latency_sum", "latency_min", "latency_max", "p50", "p95", "p99")


def _hour_groups(ts_us: np.ndarray, ok: np.ndarray, latency_us: np.ndarray
                 ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """One monitor's checks (at least one) as the rows of ``hour_aggregate_sql`` (without
    monitor and histogram), newest hour first, column by column (``HOUR_COLUMNS``; hours in
    µs, int64 but the float64 percentiles), and the latencies sorted as it grouped them
    (newest hour first, ascending within an hour) with each hour's start and count in them.
    Percentiles interpolate as DuckDB's ``quantile_cont`` does, bit for bit: ``below * (1 - f) +
    above * f`` with ``f = rank - k`` (``below + f * (above - below)``, the textbook form,
    differs in the last bit for about one value in six, and now and then in the rounded µs)."""
    hour = np.asarray(ts_us, dtype=np.int64) // HOUR_US * HOUR_US
    lat = np.asarray(latency_us, dtype=np.int64)
    order = np.lexsort((lat, -hour))
    hour, lat, up = hour[order], lat[order], np.asarray(ok, dtype=np.int64)[order]
    starts = np.flatnonzero(np.r_[True, hour[1:] != hour[:-1]])
    counts = np.diff(np.r_[starts, len(hour)]).astype(np.int64)
    last = starts + counts - 1
    rank = (counts - 1)[:, None] * np.asarray(QUANTILES)[None, :]
    k = np.floor(rank).astype(np.int64)
    below = lat[starts[:, None] + k].astype(np.float64)
    above = lat[np.minimum(starts[:, None] + k + 1, last[:, None])].astype(np.float64)
    f = rank - k
    q = below * (1 - f) + above * f
    columns = {"hour": hour[starts], "checks": counts, "up": np.add.reduceat(up, starts),
               "latency_sum": np.add.reduceat(lat, starts), "latency_min": lat[starts], "latency_max": lat[last],
               "p50": q[:, 0], "p95": q[:, 1], "p99": q[:, 2]}
    return columns, lat, starts, counts


def aggregate_hours(ts_us: np.ndarray, ok: np.ndarray, latency_us: np.ndarray, *,
                    with_hist: bool) -> list[tuple]:
    """``_hour_groups``' columns as rows, newest first: (hour µs, checks, up, latency sum, min, max,
    p50, p95, p99, hist bins, hist counts); the histogram only ``with_hist``."""
    if len(ts_us) == 0:
        return []
    columns, lat, starts, counts = _hour_groups(ts_us, ok, latency_us)
    hists: list[tuple[list[int], list[int]] | tuple[None, None]] = [(None, None)] * len(starts)
    if with_hist:
        group = np.repeat(np.arange(len(starts)), counts)
        keys, n = np.unique(group * 65536 + bin_of(lat), return_counts=True)
        cuts = np.searchsorted(keys // 65536, np.arange(1, len(starts)))
        hists = [(b.tolist(), c.tolist()) for b, c in zip(np.split(keys % 65536, cuts), np.split(n, cuts), strict=True)]
    return [(*row, *hist) for row, hist in zip(zip(*(columns[k].tolist() for k in HOUR_COLUMNS), strict=True), hists,
                                                 strict=True)]


def hour_aggregate_sql(where: str) -> str:
    """One row per (monitor, UTC hour) of the ``checks`` rows matching ``where`` (whose ``?``
    parameters are bound twice): monitor_id, hour, checks, up, latency sum, min, max, p50,
    p95, p99 and the histogram: the rows of ``checks_hourly``."""
    stats = f"""SELECT monitor_id, date_trunc('hour', ts) AS hour, count(*) AS checks,
                       count(*) FILTER (WHERE ok) AS up, sum(latency_us) AS lsum, min(latency_us) AS lmin,
                       max(latency_us) AS lmax, quantile_cont(latency_us, [0.5, 0.95, 0.99]) AS q
                FROM checks WHERE {where} GROUP BY ALL"""
    return f"""WITH s AS ({stats}),
               b AS (SELECT monitor_id, date_trunc('hour', ts) AS hour, {bin_sql('latency_us')} AS bin, count(*) AS n
                     FROM checks WHERE {where} GROUP BY ALL),
               h AS (SELECT monitor_id, hour, list(bin ORDER BY bin) AS hidx,
                            list(CAST(n AS UINTEGER) ORDER BY bin) AS hcnt FROM b GROUP BY ALL)
               SELECT s.monitor_id, s.hour, s.checks, s.up, s.lsum, s.lmin, s.lmax, s.q[1] AS p50,
                      s.q[2] AS p95, s.q[3] AS p99, h.hidx, h.hcnt
               FROM s JOIN h USING (monitor_id, hour)"""
