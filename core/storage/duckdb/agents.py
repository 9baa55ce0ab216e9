"""Agent reports: appended in batches (one Arrow table a flush, never ``executemany``), each
agent's newest report kept beside them, and the series read back raw or in buckets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import msgspec
import pyarrow as pa

from core.models.agents import AgentReport

__all__ = ["AgentStore"]

_SCHEMA = 8  # the version that added agent reports
_DISK = pa.struct([("mount", pa.string()), ("used", pa.int64()), ("total", pa.int64())])
_ARROW = pa.schema([
    ("monitor_id", pa.int64()), ("ts", pa.timestamp("us")), ("cpu_percent", pa.float32()), ("mem_used", pa.int64()),
    ("mem_total", pa.int64()), ("swap_used", pa.int64()), ("swap_total", pa.int64()), ("load1", pa.float32()),
    ("load5", pa.float32()), ("load15", pa.float32()), ("rx_bps", pa.float64()), ("tx_bps", pa.float64()),
    ("processes", pa.int32()), ("uptime_s", pa.int64()), ("disks", pa.list_(_DISK)),
])
_COLUMNS = ", ".join(_ARROW.names)
_RAW = ("epoch_us(ts), cpu_percent, mem_used, mem_total, swap_used, swap_total, load1, load5, load15, rx_bps,"
        " tx_bps, processes, uptime_s, disks")
HOUR_US = 3600 * 10**6


class AgentStore:
    """Agent reports and each agent's newest one."""

    con: duckdb.DuckDBPyConnection
    schema_version: Callable[[], int]  # (StoreBase's)
    _reading: Callable[[], Any]  # (HistoryStore's)

    def insert_agent_reports(self, reports: list[tuple[int, int, AgentReport]]) -> int:
        """Append ``(monitor id, ts µs, report)`` rows (each monitor's in time order) and keep
        each monitor's newest in ``agents``; one transaction, two statements whatever the count."""
        if not reports:
            return 0
        cols: dict[str, list[Any]] = {name: [] for name in _ARROW.names}
        newest: dict[int, tuple[int, AgentReport]] = {}
        for mid, ts_us, r in reports:
            cols["monitor_id"].append(mid)
            cols["ts"].append(ts_us)
            cols["cpu_percent"].append(r.cpu_percent)
            cols["mem_used"].append(r.memory.used_bytes)
            cols["mem_total"].append(r.memory.total_bytes)
            cols["swap_used"].append(r.swap.used_bytes if r.swap else None)
            cols["swap_total"].append(r.swap.total_bytes if r.swap else None)
            load = r.load or (None, None, None)
            cols["load1"].append(load[0])
            cols["load5"].append(load[1])
            cols["load15"].append(load[2])
            cols["rx_bps"].append(r.network.rx_bytes_per_s if r.network else None)
            cols["tx_bps"].append(r.network.tx_bytes_per_s if r.network else None)
            cols["processes"].append(r.processes)
            cols["uptime_s"].append(r.uptime_s)
            cols["disks"].append([{"mount": d.mount, "used": d.used_bytes, "total": d.total_bytes} for d in r.disks])
            newest[mid] = (ts_us, r)
        table = pa.Table.from_pydict(cols, schema=_ARROW)
        latest = pa.Table.from_pydict(
            {"monitor_id": list(newest), "last_ts": [ts for ts, _ in newest.values()],
             "report": [msgspec.json.encode(r).decode() for _, r in newest.values()]},
            schema=pa.schema([("monitor_id", pa.int64()), ("last_ts", pa.timestamp("us")), ("report", pa.string())]))
        self.con.register("_xuptime_agent_reports", table)
        self.con.register("_xuptime_agents", latest)
        try:
            self.con.execute("BEGIN TRANSACTION")
            try:
                self.con.execute(f"INSERT INTO agent_reports ({_COLUMNS})"
                                 f" SELECT {_COLUMNS} FROM _xuptime_agent_reports")
                self.con.execute("""INSERT INTO agents SELECT monitor_id, last_ts, report FROM _xuptime_agents
                                    ON CONFLICT (monitor_id) DO UPDATE SET last_ts = excluded.last_ts,
                                                                           report = excluded.report""")
                self.con.execute("COMMIT")
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
        finally:
            self.con.unregister("_xuptime_agent_reports")
            self.con.unregister("_xuptime_agents")
        return len(reports)

    def agent_latest(self) -> dict[int, tuple[int, AgentReport]]:
        """monitor id -> (ts µs, report) of each agent's newest stored report."""
        if self.schema_version() < _SCHEMA:  # (an older file, opened read-only by the CLI)
            return {}
        decoder = msgspec.json.Decoder(AgentReport)
        return {int(m): (int(ts), decoder.decode(report)) for m, ts, report in
                self.con.execute("SELECT monitor_id, epoch_us(last_ts), report FROM agents").fetchall()}

    def delete_agent_reports(self, monitor_id: int) -> None:
        """(Inside the caller's transaction: a deleted monitor's reports go with it.)"""
        self.con.execute("DELETE FROM agent_reports WHERE monitor_id = ?", [monitor_id])
        self.con.execute("DELETE FROM agents WHERE monitor_id = ?", [monitor_id])

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
            rows = _probe(cur, monitor_id, from_us, to_us, limit + 1, HOUR_US // 60, fetch)
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
            rows = _probe(cur, monitor_id, from_us, to_us, limit + 1, bucket_us, fetch)
        return rows[:limit], len(rows) > limit


def _probe(cur: duckdb.DuckDBPyConnection, monitor_id: int, lo: int | None, hi: int | None, need: int,
           align_us: int, fetch: Callable[[int, int], list[tuple]]) -> list[tuple]:
    """``fetch(start, hi)`` over windows growing 8x back from ``hi`` (the monitor's newest
    report when open) until it returns ``need`` rows or passes ``lo``: the newest page of a long
    history reads only its last hours."""
    if hi is None:
        row = cur.execute("SELECT epoch_us(last_ts) FROM agents WHERE monitor_id = ?", [monitor_id]).fetchone()
        if row is None:
            return []
        hi = int(row[0])
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
