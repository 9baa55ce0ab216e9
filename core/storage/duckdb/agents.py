"""Agent reports: appended in batches (one statement a commit, never a statement a row), each
agent's newest report saved beside them now and then, and the series read back raw or in
buckets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import duckdb
import msgspec

from core.models.agents import AgentReport

__all__ = ["AgentStore"]

_SCHEMA = 8  # the version that added agent reports
_ROWS = msgspec.json.Encoder()
_INSERT = """
    INSERT INTO agent_reports (monitor_id, ts, cpu_percent, mem_used, mem_total, swap_used, swap_total, load1, load5,
                               load15, rx_bps, tx_bps, processes, uptime_s, disks)
    SELECT r.m, make_timestamp(r.t), r.c, r.mu, r.mt, r.su, r.st, r.l[1], r.l[2], r.l[3], r.rx, r.tx, r.p, r.u,
           [{'mount': d.mount, 'used': d.usedBytes, 'total': d.totalBytes} FOR d IN coalesce(r.d, [])]
    FROM (SELECT unnest(from_json($rows, '[{"m": "BIGINT", "t": "BIGINT", "c": "REAL", "mu": "BIGINT", "mt": "BIGINT",
                                            "su": "BIGINT", "st": "BIGINT", "l": ["REAL"], "rx": "DOUBLE",
                                            "tx": "DOUBLE", "p": "INTEGER", "u": "BIGINT",
                                            "d": [{"mount": "VARCHAR", "usedBytes": "BIGINT",
                                                   "totalBytes": "BIGINT"}]}]')) AS r)"""
_RAW = ("epoch_us(ts), cpu_percent, mem_used, mem_total, swap_used, swap_total, load1, load5, load15, rx_bps,"
        " tx_bps, processes, uptime_s, disks")
HOUR_US = 3600 * 10**6
AHEAD_US = 300 * 10**6  # (a report's ts may be this far ahead of the server's clock)


class AgentStore:
    """Agent reports and each agent's newest one."""

    con: duckdb.DuckDBPyConnection
    schema_version: Callable[[], int]  # (StoreBase's)
    _reading: Callable[[], Any]  # (HistoryStore's)

    def insert_agent_reports(self, reports: list[tuple[int, int, AgentReport]]) -> int:
        """Append ``(monitor id, ts µs, report)`` rows in one statement, whatever the count.
        The rows travel as one JSON parameter unnested by DuckDB: for the tens of rows a
        commit holds that cost about half of scanning an Arrow table (measured: 2.3 vs 4.0 ms
        for 30 rows; a statement's fixed cost is most of it, so callers batch)."""
        if not reports:
            return 0
        rows = [{"m": mid, "t": ts_us, "c": r.cpu_percent, "mu": r.memory.used_bytes, "mt": r.memory.total_bytes,
                 "su": r.swap.used_bytes if r.swap else None, "st": r.swap.total_bytes if r.swap else None,
                 "l": r.load, "rx": r.network.rx_bytes_per_s if r.network else None,
                 "tx": r.network.tx_bytes_per_s if r.network else None, "p": r.processes,
                 "u": None if r.uptime_s is None else int(r.uptime_s), "d": r.disks}
                for mid, ts_us, r in reports]
        self.con.execute(_INSERT, {"rows": _ROWS.encode(rows).decode()})
        return len(reports)

    def save_agents(self, latest: list[tuple[int, int, AgentReport]]) -> None:
        """Keep each agent's newest report (its host name, OS, version...) for the next start:
        ``(monitor id, ts µs, report)``, one statement."""
        if not latest:
            return
        rows = [{"m": mid, "t": ts_us, "r": _ROWS.encode(r).decode()} for mid, ts_us, r in latest]
        self.con.execute("""INSERT INTO agents SELECT r.m, make_timestamp(r.t), r.r
                            FROM (SELECT unnest(from_json($rows, '[{"m": "BIGINT", "t": "BIGINT", "r": "VARCHAR"}]'))
                                  AS r)
                            ON CONFLICT (monitor_id) DO UPDATE SET last_ts = excluded.last_ts,
                                                                   report = excluded.report""",
                         {"rows": _ROWS.encode(rows).decode()})

    def agent_latest(self, since_us: int) -> tuple[dict[int, tuple[int, AgentReport]], dict[int, int]]:
        """Each agent's newest report as last saved (``save_agents``), and the newest stored
        report time (µs) of every agent with reports since ``since_us``: what a duplicate is
        not newer than (reports are saved in batches, so the saved ones may lag)."""
        if self.schema_version() < _SCHEMA:  # (an older file, opened read-only by the CLI)
            return {}, {}
        decoder = msgspec.json.Decoder(AgentReport)
        latest = {int(m): (int(ts), decoder.decode(report)) for m, ts, report in
                  self.con.execute("SELECT monitor_id, epoch_us(last_ts), report FROM agents").fetchall()}
        newest = {int(m): int(ts) for m, ts in self.con.execute(
            "SELECT monitor_id, epoch_us(max(ts)) FROM agent_reports WHERE ts >= make_timestamp(?) GROUP BY 1",
            [since_us]).fetchall()}
        return latest, newest

    def _raw_floor(self, from_us: int | None) -> int | None:
        """``from_us`` moved up to the raw tier's retention (reports past it are never shown)."""
        floor = self.floor_us("raw", time.time_ns() // 1000)  # type: ignore[attr-defined]
        return floor if from_us is None else from_us if floor is None else max(from_us, floor)

    def agent_raw(self, monitor_id: int, from_us: int | None, to_us: int | None, limit: int
                  ) -> tuple[list[tuple], bool]:
        """Reports newest first within [from, to] (µs, inclusive): ``(rows, more)``; a row is
        ``(ts µs, cpu, mem used, mem total, swap used, swap total, load1, load5, load15, rx,
        tx, processes, uptime s, [disk dicts])``."""
        if self.schema_version() < _SCHEMA:
            return [], False
        with self._reading() as cur:
            def fetch(start: int, end: int) -> list[tuple]:
                return cur.execute(f"""SELECT {_RAW} FROM agent_reports WHERE monitor_id = ?
                                       AND ts >= make_timestamp(?) AND ts <= make_timestamp(?)
                                       ORDER BY ts DESC LIMIT ?""", [monitor_id, start, end, limit + 1]).fetchall()
            rows = _probe(self._raw_floor(from_us), to_us, limit + 1, HOUR_US // 60, fetch)
        return rows[:limit], len(rows) > limit

    def agent_buckets(self, monitor_id: int, bucket_s: int, from_us: int | None, to_us: int | None, limit: int
                      ) -> tuple[list[tuple], bool]:
        """Buckets that hold reports, newest first: ``(ts µs, reports, cpu avg, cpu max, memory
        % avg, memory % max, swap % avg, load1 avg, load1 max, rx avg, tx avg, processes max,
        [(mount, fullest %, newest used, newest total)])``."""
        if self.schema_version() < _SCHEMA:
            return [], False
        bucket_us = bucket_s * 10**6
        with self._reading() as cur:
            def fetch(start: int, end: int) -> list[tuple]:
                return cur.execute(
                    """WITH r AS (SELECT epoch_us(ts) // $b * $b AS b, * FROM agent_reports WHERE monitor_id = $m
                                  AND ts >= make_timestamp($lo) AND ts <= make_timestamp($hi)),
                       top AS (SELECT b, count(*) AS n, avg(cpu_percent) AS cpu, max(cpu_percent) AS cpu_max,
                                      avg(100.0 * mem_used / nullif(mem_total, 0)) AS mem,
                                      max(100.0 * mem_used / nullif(mem_total, 0)) AS mem_max,
                                      avg(100.0 * swap_used / nullif(swap_total, 0)) AS swap,
                                      avg(load1) AS load, max(load1) AS load_max, avg(rx_bps) AS rx,
                                      avg(tx_bps) AS tx, max(processes) AS procs
                               FROM r GROUP BY b ORDER BY b DESC LIMIT $n),
                       d AS (SELECT b, d.mount AS mount, max(100.0 * d.used / nullif(d.total, 0)) AS pct,
                                    arg_max(d.used, ts) AS used, arg_max(d.total, ts) AS total
                             FROM (SELECT b, ts, unnest(disks) AS d FROM r WHERE b IN (SELECT b FROM top))
                             GROUP BY b, d.mount)
                       SELECT top.*, coalesce((SELECT list((mount, pct, used, total) ORDER BY mount) FROM d
                                               WHERE d.b = top.b), [])
                       FROM top ORDER BY b DESC""",
                    {"b": bucket_us, "m": monitor_id, "lo": start, "hi": end, "n": limit + 1}).fetchall()
            rows = _probe(self._raw_floor(from_us), to_us, limit + 1, bucket_us, fetch)
        return rows[:limit], len(rows) > limit


def _probe(lo: int | None, hi: int | None, need: int, align_us: int,
           fetch: Callable[[int, int], list[tuple]]) -> list[tuple]:
    """``fetch(start, hi)`` over windows growing 8x back from ``hi`` (when open: now, plus the
    few minutes a report may be ahead) until it returns ``need`` rows or passes ``lo``: the
    newest page of a long history reads only its last hours."""
    if hi is None:
        hi = time.time_ns() // 1000 + AHEAD_US
    floor = lo if lo is not None else 0
    width = HOUR_US
    while True:
        start = (hi - width) // align_us * align_us
        if start <= floor or width > 400 * 24 * HOUR_US:
            return fetch(floor, hi)
        rows = fetch(start, hi)
        if len(rows) >= need:
            return rows
        width *= 8
