"""Server agents: their reports in, judged and stored; their series and newest values out.

A report (``POST /api/agent/{token}/report``) is taken in this order, and refused at the first
step that fails, having changed nothing: the token names an agent monitor (else ``NotFound``);
the token has requests left (a bucket of ``BURST`` refilled at ``RATE`` a second: else
``Limited``); every report in the body is valid (``Invalid`` naming the field); no report is
more than ``MAX_AHEAD_S`` ahead of the server's clock or older than ``MAX_AGE_S``. Reports not
newer than the agent's last stored one are duplicates: acknowledged, not stored (an agent
that lost an answer sends the batch again). The rest are judged against the monitor's
thresholds, committed with whatever other agents sent meanwhile (one insert per commit:
``GroupCommit``), and only then handed to the owning worker as results and acknowledged. An
acknowledged report is on disk.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec

from core.models import AgentSpec, FieldError, Monitor
from core.models.agents import AgentReport, ReportError, breaches, decode_reports
from core.services.access import Actor, account_of
from core.services.context import Catalog, EngineLink, GroupCommit, StoreThreads
from core.services.errors import Invalid, Limited, NotFound

if TYPE_CHECKING:
    from core.services.monitors import MonitorService
    from core.storage.base import Store

__all__ = ["Ack", "AgentService"]

BURST = 30  # requests a token may make at once (a backlog goes in batches of reports)
RATE = 1.0  # requests a second after that
MAX_AHEAD_S = 300  # a report's ts may be this far ahead of the server's clock
MAX_AGE_S = 7 * 86400  # ... and no older than this
BUCKETS = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
BATCH, LINGER_S, QUIET_GAPS = 512, 1.0, 6.0

Row = tuple[int, int, AgentReport, bool, "str | None"]  # monitor id, ts µs, report, ok, reason


class Ack(msgspec.Struct, rename="camel"):
    """What an agent is told: reports stored, duplicates skipped, and the interval the server
    expects reports at (the monitor's)."""

    stored: int
    duplicates: int
    interval: int


class AgentService:
    """Agents' reports, their newest values, and their series."""

    def __init__(self, store: Store, threads: StoreThreads, engine: EngineLink, monitors: MonitorService,
                 catalog: Catalog) -> None:
        self.store, self.threads, self.engine, self.monitors, self.catalog = store, threads, engine, monitors, catalog
        #: monitor id -> (ts µs, report) of its newest stored report.
        self.latest: dict[int, tuple[int, AgentReport]] = {}
        #: monitor id -> ts µs of the newest report accepted (stored or on its way): what a
        #: duplicate is not newer than.
        self._newest: dict[int, int] = {}
        self._buckets: dict[int, tuple[float, float]] = {}  # monitor id -> (tokens, at)
        self._dirty: set[int] = set()  # agents whose newest report is not saved yet
        # A commit's fixed cost is most of it (a few ms): reports wait up to LINGER_S to share
        # one while others keep coming (a fleet reporting on its own clocks), QUIET_GAPS mean
        # gaps once they stop (clients that wait for their answer), none once BATCH wait.
        self._commits: GroupCommit[list[Row], list[Row]] = GroupCommit(
            threads, self._store_many, self._stored, batch=BATCH, linger=LINGER_S, quiet=QUIET_GAPS)
        self.reports = self.duplicates = 0

    async def load(self) -> None:
        since = int((time.time() - MAX_AGE_S - MAX_AHEAD_S) * 1_000_000)  # (older reports are refused anyway)
        self.latest, self._newest = await self.threads.write(self.store.agent_latest, since)

    async def save(self) -> None:
        """Write the newest report of every agent that reported since the last save (the
        serve process calls this every minute and at exit: host names and the like for
        the next start; what is a duplicate is decided from the reports themselves)."""
        dirty, self._dirty = self._dirty, set()
        rows = [(mid, *self.latest[mid]) for mid in dirty if mid in self.latest]
        try:
            await self.threads.write(self.store.save_agents, rows)
        except BaseException:
            self._dirty |= dirty
            raise

    # reports in -------------------------------------------------------------------------------
    def monitor_of(self, token: str) -> Monitor:
        """The agent monitor this token reports for (``NotFound`` when none)."""
        mid = self.catalog.tokens.get(token)
        monitor = self.engine.monitors.get(mid) if mid else None
        if monitor is None or monitor.type != "agent":
            raise NotFound("Unknown agent token")
        return monitor

    async def report(self, token: str, body: bytes) -> Ack:
        """Take the report(s) in ``body`` for the agent with ``token`` (see the module's rules)."""
        monitor = self.monitor_of(token)
        self._take(monitor.id)
        try:
            reports = decode_reports(body)
        except ReportError as exc:
            raise Invalid("Invalid report", [exc.error]) from None
        now = time.time()
        stamped = []
        for i, r in enumerate(reports):
            ts = r.ts if r.ts is not None else now
            where = f"[{i}].ts" if len(reports) > 1 else "ts"
            if ts > now + MAX_AHEAD_S:
                raise Invalid("Invalid report", [FieldError(where, "is ahead of the server's clock by more than "
                                                                   f"{MAX_AHEAD_S} s")])
            if ts < now - MAX_AGE_S:
                raise Invalid("Invalid report", [FieldError(where, "is older than 7 days")])
            stamped.append((int(ts * 1_000_000), r))
        stamped.sort(key=lambda item: item[0])
        mid = monitor.id
        newest = previous = self._newest.get(mid, 0)
        spec = monitor.spec
        assert isinstance(spec, AgentSpec)
        t = spec.thresholds
        rows: list[Row] = []
        for ts_us, r in stamped:
            if ts_us <= newest:
                continue
            newest = ts_us
            reason = breaches(r, t.cpu_percent, t.memory_percent, t.disk_percent, t.load1)
            rows.append((mid, ts_us, r, reason is None, reason))
        duplicates = len(stamped) - len(rows)
        self.duplicates += duplicates
        if rows:
            self._newest[mid] = newest
            try:
                await self._commits.one(rows)
            except BaseException:
                if self._newest.get(mid) == newest:  # not stored: a retry must not be a duplicate
                    self._newest[mid] = previous
                raise
        return Ack(stored=len(rows), duplicates=duplicates, interval=monitor.interval)

    def _take(self, mid: int) -> None:
        now = time.monotonic()
        tokens, at = self._buckets.get(mid, (float(BURST), now))
        tokens = min(float(BURST), tokens + (now - at) * RATE)
        if tokens < 1:
            raise Limited("Too many reports from this agent", max(1, int((1 - tokens) / RATE + 0.999)))
        self._buckets[mid] = (tokens - 1, now)

    def _store_many(self, batches: list[list[Row]]) -> list[list[Row]]:
        self.store.insert_agent_reports([(mid, ts, r) for rows in batches for mid, ts, r, _, _ in rows])
        return batches

    async def _stored(self, batches: list[list[Row]]) -> None:
        results = []
        for rows in batches:
            for mid, ts_us, r, ok, reason in rows:
                current = self.latest.get(mid)
                if current is None or ts_us > current[0]:
                    self.latest[mid] = (ts_us, r)
                    self._dirty.add(mid)
                results.append((mid, ts_us / 1e6, ok, reason))
            self.reports += len(rows)
        await self.engine.report(results)

    # series out -------------------------------------------------------------------------------
    def newest(self, actor: Actor, monitor_id: int) -> tuple[int, AgentReport] | None:
        """The agent's newest report: (ts µs, report), or None before the first."""
        self._require(actor, monitor_id)
        return self.latest.get(monitor_id)

    async def series(self, actor: Actor, monitor_id: int, interval: str, start: int | None, end: int | None,
                     limit: int) -> tuple[list[tuple], bool]:
        """Reports (``interval`` raw) or buckets (1m, 5m, 1h, 1d) newest first: ``(rows, more)``
        (the rows of ``Store.agent_raw`` and ``Store.agent_buckets``)."""
        self._require(actor, monitor_id)
        if interval == "raw":
            return await self.threads.read(self.store.agent_raw, monitor_id, start, end, limit)
        if interval not in BUCKETS:
            raise Invalid("Invalid metrics query", [FieldError("interval", "must be one of raw, 1m, 5m, 1h, 1d")])
        return await self.threads.read(self.store.agent_buckets, monitor_id, BUCKETS[interval], start, end, limit)

    def _require(self, actor: Actor, monitor_id: int) -> Monitor:
        monitor = self.monitors.require(account_of(actor), monitor_id)
        if monitor.type != "agent":
            raise NotFound("Not an agent monitor: it has no metrics")
        return monitor

    def gauges(self, actor: Actor) -> list[tuple[Monitor, int, AgentReport]]:
        """Every agent of the account with its newest report, for ``/metrics``."""
        account = account_of(actor)
        out = []
        for mid in self.catalog.account_ids.get(account, []):
            found = self.latest.get(mid)
            monitor = self.engine.monitors.get(mid)
            if found is not None and monitor is not None:
                out.append((monitor, found[0], found[1]))
        return out

    def stats(self) -> dict[str, Any]:
        return {"agents": {"reports": self.reports, "duplicates": self.duplicates,
                           "commits": self._commits.commits, "closedBy": dict(self._commits.closed)}}
