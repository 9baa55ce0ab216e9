"""Monitors, the same for every face: the API, the CLI (through the control socket) and,
later, the pages. A face parses its input, calls one method, and shows the answer.

Every method takes the caller's account: another account's monitor is ``NotFound``, never a
hint that it exists. Reads come from memory (the engine's monitor set and each
monitor's timestamps, kept in step with the database by every change). Writes validate
everything first (fields, the account's own channels, a push token nobody else holds or is
taking, private targets on servers that deny them) and change nothing when refused; then
the service stores the change in one statement on the writer thread (concurrent creates are
committed together) and tells the owning worker once.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from core.models import (
    FieldError,
    Monitor,
    MonitorTimes,
    MonitorValidationError,
    PushSpec,
    parse_monitor,
    private_target,
)
from core.models.packed import unpack
from core.services.access import Actor, account_of
from core.services.context import Catalog, EngineLink, GroupCommit, StoreThreads
from core.services.errors import Conflict, Invalid, NotFound
from core.services.maintenance import schedule_problems

if TYPE_CHECKING:
    from core.storage.base import Store

__all__ = ["MAX_BULK", "MonitorPage", "MonitorService"]

#: One page: (monitor, its timestamps) pairs, the number matching, and whether more follow.
MonitorPage = tuple[list[tuple[Monitor, MonitorTimes]], int, bool]
#: A monitor with its times.
Found = tuple[Monitor, MonitorTimes]
_NO_TIMES = MonitorTimes(created_at=None, updated_at=None, status_since=None)

#: Monitors in one bulk create at most.
MAX_BULK = 1000
MAX_RUN_S = 86400  # a push job's start counts for its run time this long
#: How long a small batch of writes waits for more before it is committed (a commit costs
#: about 3 ms whatever its size, so 16 clients committing one at a time wait on each other).
CREATE_LINGER_S = 0.002
CREATE_BATCH = 16  # writes that commit at once without waiting for more


class MonitorService:
    """Every monitor operation of every face. Refusals are ``Invalid`` (400), ``NotFound``
    (404) and ``Conflict`` (409) with the fields at fault; faces word them their own way."""

    def __init__(self, store: Store, threads: StoreThreads, engine: EngineLink, catalog: Catalog, *,
                 deny_private: bool = False) -> None:
        self.store = store
        self.threads = threads
        self.engine = engine
        self.catalog = catalog
        #: Refuse monitors of private, loopback and link-local targets (shared installs).
        self.deny_private = deny_private
        self._counts: dict[int, tuple[int, dict[str, int]]] = {}  # account -> (catalog generation, counts)
        self._starts: dict[int, float] = {}  # push monitor id -> when its job said it started
        #: Creates, and changes (pause and resume included), committed in batches.
        self._creates: GroupCommit[Monitor, Found] = GroupCommit(
            threads, store.create_monitors, self._created, batch=CREATE_BATCH, limit=MAX_BULK, linger=CREATE_LINGER_S)
        self._changes: GroupCommit[tuple[Monitor, bool], Found | None] = GroupCommit(
            threads, store.update_monitors, self._changed, batch=CREATE_BATCH, limit=MAX_BULK,
            linger=CREATE_LINGER_S)

    # reads ---------------------------------------------------------------------------------
    async def get(self, actor: Actor, monitor_id: int) -> Found:
        """The monitor (with its live status) and its timestamps."""
        return self.require(account_of(actor), monitor_id), self.catalog.times.get(monitor_id) or _NO_TIMES

    def require(self, account_id: int, monitor_id: int) -> Monitor:
        """The live monitor, or ``NotFound``."""
        monitors = self.engine.monitors
        if monitor_id not in monitors or monitors.account(monitor_id) != account_id:
            raise NotFound("Monitor not found")
        return monitors[monitor_id]

    def page(self, actor: Actor, after_id: int, limit: int, *, status: str | None = None,
             kind: str | None = None, tag: str | None = None, q: str | None = None) -> MonitorPage:
        """One keyset page of the account's monitors by id, from memory (no database round
        trip): ``(monitors with their timestamps, total matching, more after this page)``."""
        ids, total, more = self.page_ids(actor, after_id, limit, status=status, kind=kind, tag=tag, q=q)
        monitors, times = self.engine.monitors, self.catalog.times
        return [(monitors[i], times.get(i) or _NO_TIMES) for i in ids], total, more

    def page_ids(self, actor: Actor, after_id: int, limit: int, *, status: str | None = None,
                 kind: str | None = None, tag: str | None = None, q: str | None = None
                 ) -> tuple[list[int], int, bool]:
        """``page`` without building the monitors: their ids (of the actor's account: ``peek``
        and the other per-id reads below may be used on them), total, more."""
        monitors = self.engine.monitors
        ids = self.catalog.account_ids.get(account_of(actor), [])
        if status is not None or kind is not None or tag is not None or q is not None:
            ids = monitors.select(ids, status=status, kind=kind, tag=tag, q=q)
        start = bisect.bisect_right(ids, after_id)
        chosen = ids[start:start + limit + 1]
        return [i for i in chosen[:limit] if i in monitors], len(ids), len(chosen) > limit

    def peek(self, monitor_id: int) -> Found:
        """A monitor ``page_ids`` gave (no owner check here), with its timestamps."""
        return self.engine.monitors[monitor_id], self.catalog.times.get(monitor_id) or _NO_TIMES

    def live(self, ids: list[int]) -> list[tuple[int, str, str | None, tuple[int, int] | None]]:
        """For ids ``page_ids`` gave: each monitor's revision (a number that stays the same
        while its definition does and changes when it changes, not when its status does: what
        faces key per-monitor caches on), live status, since when it has had it (ISO
        8601, to the second) and newest check (ts µs, latency µs); a few gathers a page."""
        revisions, statuses = self.engine.monitors.revisions_and_statuses(ids)
        return list(zip(revisions, statuses, self.catalog.times.since_many(ids),
                        self.catalog.last_checks.get_many(ids), strict=True))

    def stats(self) -> dict[str, Any]:
        return {"creates": {"commits": self._creates.commits, "monitors": self._creates.stored},
                "changes": {"commits": self._changes.commits, "monitors": self._changes.stored}}

    def every(self) -> list[Monitor]:
        """Every account's monitors, by id (the CLI's list: the operator sees them all)."""
        return list(self.engine.monitors.values())  # (by id: the table iterates so)

    def owner_of(self, monitor_id: int) -> int | None:
        """The account of a monitor, for faces that act as the operator (the CLI)."""
        monitors = self.engine.monitors
        return monitors.account(monitor_id) if monitor_id in monitors else None

    def account_monitors(self, actor: Actor) -> list[Monitor]:
        """The account's live monitors, by id."""
        account_id = account_of(actor)
        monitors = self.engine.monitors
        return [monitors[i] for i in self.catalog.account_ids.get(account_id, []) if i in monitors]

    def probe_figures(self, actor: Actor) -> tuple[Iterator[Monitor], dict[str, np.ndarray]]:
        """The account's live monitors (by id), decoded as the iterator is read, and, in
        arrays aligned with them, ``ids``, their newest check (``ts`` µs, 0 before the first;
        ``latency`` µs) and ``ProbeTable.gather``'s figures: what ``/metrics`` shows, read
        from memory. Only the monitors' bytes are copied here: the iterator may be read on
        another thread (decoding 100k monitors took 0.74 s of the event loop)."""
        table = self.engine.monitors
        held = [i for i in self.catalog.account_ids.get(account_of(actor), []) if i in table]
        rows = [(table.packed(i), table.status(i), table.name(i)) for i in held]
        ids = np.asarray(held, dtype=np.int64)
        figures = self.catalog.probes.gather(ids)
        figures["ts"], figures["latency"] = self.catalog.last_checks.gather(ids)
        figures["ids"] = ids
        return (_decoded(packed, status, name) for packed, status, name in rows), figures

    def version(self) -> int:
        """A number that changes whenever a monitor's status may have changed or a monitor
        came or went (what faces cache summaries against)."""
        return self.catalog.generation

    def count(self, actor: Actor) -> int:
        """How many monitors the account has."""
        return len(self.catalog.account_ids.get(account_of(actor), ()))

    def status_counts(self, actor: Actor) -> dict[str, int]:
        """How many of the account's monitors are in each status (cached until a status
        changes or a monitor comes or goes: a list page asks for it every time)."""
        account_id = account_of(actor)
        cached = self._counts.get(account_id)
        if cached is not None and cached[0] == self.catalog.generation:
            return cached[1]
        counts = self.engine.monitors.status_counts(self.catalog.account_ids.get(account_id, []))
        self._counts[account_id] = (self.catalog.generation, counts)
        return counts

    def recent(self, monitor: Monitor) -> tuple[list[tuple[bool, int]], float | None]:
        """A monitor's heartbeat bar (its last checks, oldest first: ok, latency µs) and
        its uptime over the last 24 hours, from memory. ``monitor`` comes from ``get`` or
        ``page`` (so its owner was checked)."""
        checks, up = self.catalog.recent.uptime(monitor.id)
        return self.catalog.recent.bars(monitor.id), (up / checks if checks else None)

    def watch(self, actor: Actor, after: str | None = None
              ) -> contextlib.AbstractContextManager[asyncio.Queue[dict[str, Any]]]:
        """Subscribe to the account's status changes (``{"event": "status", "id", "status",
        "since", "seq"}``, ``created``, ``deleted``, or ``resync``) until the context ends;
        with ``after`` (a ``live_mark``), those since that mark first."""
        return self.catalog.live.subscribe(account_of(actor), after)

    def live_mark(self, actor: Actor) -> str:
        """Where the account's status changes are now (for a page about to be rendered)."""
        return self.catalog.live.mark(account_of(actor))

    def last_check(self, monitor_id: int) -> tuple[int, int] | None:
        """The newest check of a monitor: (ts µs, latency µs), or None before the first."""
        return self.catalog.last_checks.get(monitor_id)

    async def push(self, token: str, ok: bool, msg: str | None, ping_ms: float | None) -> None:
        """A heartbeat for the push monitor with this token (``NotFound`` if there is none).
        A paused monitor's heartbeats are taken and ignored. Without ``ping_ms``, a job that
        said it started (``push_start``) in the last ``MAX_RUN_S`` reports its run time."""
        monitor_id = self._push_monitor(token)
        now = time.time()
        started = self._starts.pop(monitor_id, None)
        if ping_ms is None and started is not None and now - started <= MAX_RUN_S:
            ping_ms = (now - started) * 1000
        await self.engine.push(monitor_id, now, ok, msg, ping_ms)

    def push_start(self, token: str) -> None:
        """The job behind this push token started: its next ping measures its run time."""
        self._starts[self._push_monitor(token)] = time.time()

    def _push_monitor(self, token: str) -> int:
        monitor_id = self.catalog.tokens.get(token)
        monitors = self.engine.monitors
        if not monitor_id or monitor_id not in monitors or monitors.kind(monitor_id) != "push":
            raise NotFound("Unknown push token")
        return monitor_id

    # writes --------------------------------------------------------------------------------
    async def create(self, actor: Actor, data: Any) -> Found:
        """Validate and store a new monitor, and schedule it on its worker."""
        account_id = account_of(actor, "editor")
        monitor = self.parse(data)
        monitor.account_id = account_id
        self._check(account_id, monitor)
        with self._taking_tokens([monitor]):
            return await self._creates.one(monitor)

    async def create_many(self, actor: Actor, items: Any) -> list[Found]:
        """Up to ``MAX_BULK`` monitors, all or none: every item is validated first (errors
        name the item, ``monitors[3].url``), then they are stored in one transaction."""
        account_id = account_of(actor, "editor")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BULK:
            raise Invalid("Invalid monitors", [FieldError("monitors", f"must be a list of 1 to {MAX_BULK} monitors")])
        monitors, errors = [], []
        tokens: dict[str, int] = {}
        for i, item in enumerate(items):
            try:
                monitor = self.parse(item)
                monitor.account_id = account_id
                self._check(account_id, monitor)
            except (Invalid, Conflict) as exc:
                errors += [FieldError(f"monitors[{i}].{e.field}", e.message) for e in exc.errors or []]
                continue
            token = getattr(monitor.spec, "token", None)
            if token is not None and tokens.setdefault(token, i) != i:
                errors.append(FieldError(f"monitors[{i}].{monitor.type}Token",
                                         f"is the same as monitors[{tokens[token]}]'s"))
            monitors.append(monitor)
        if errors:
            raise Invalid("Invalid monitors", errors)
        with self._taking_tokens(monitors):
            return await self._creates.many(monitors)

    async def update(self, actor: Actor, monitor_id: int, data: Any) -> Found:
        """Change some fields (the type cannot change); a change of ``paused`` pauses or
        resumes. One statement (committed with other changes waiting), then the worker is
        told once."""
        account_id = account_of(actor, "editor")
        current = self.require(account_id, monitor_id)
        if not isinstance(data, dict):
            raise Invalid("Invalid monitor", [FieldError("body", "must be a JSON object")])
        updated = self.parse(data, current)
        self._check(account_id, updated)
        with self._taking_tokens([updated]):
            found = await self._changes.one((updated, updated.paused != current.paused))
        if found is None:
            raise NotFound("Monitor not found")
        self.catalog.index_token(found[0], current)
        return found

    async def delete(self, actor: Actor, monitor_id: int) -> None:
        """Delete the monitor with its results and incidents; its worker forgets it."""
        monitor = self.require(account_of(actor, "editor"), monitor_id)
        if not await self.threads.write(self.store.delete_monitor, monitor_id):
            raise NotFound("Monitor not found")
        await self.engine.delete(monitor_id)
        self.catalog.remove(monitor_id, monitor)
        self.catalog.generation += 1
        self.catalog.live.publish(monitor.account_id, {"event": "deleted", "id": monitor_id})

    async def set_paused(self, actor: Actor, monitor_id: int, paused: bool) -> Found:
        """Pause (no checks, no alerts) or resume (pending again, whatever its status was) a
        monitor."""
        current = self.require(account_of(actor, "editor"), monitor_id)
        found = await self._changes.one((msgspec.structs.replace(current, paused=paused), True))
        if found is None:
            raise NotFound("Monitor not found")
        return found

    # the write path ----------------------------------------------------------------------
    async def _created(self, created: list[Found]) -> None:
        """After a batch of creates committed: index them, and give them to their workers
        (one frame per worker)."""
        live = self.catalog.live
        self.catalog.generation += 1
        for monitor, times in created:
            self.catalog.times.put(monitor.id, times)
            self.catalog.add(monitor)
            live.publish(monitor.account_id, {"event": "created", "id": monitor.id, "status": monitor.status})
        await self.engine.upsert_many([monitor for monitor, _ in created])

    async def _changed(self, changed: list[Found | None]) -> None:
        """After a batch of changes committed: their times, and their workers told once."""
        stored = [found for found in changed if found is not None]
        live = self.catalog.live
        self.catalog.generation += 1
        for monitor, times in stored:
            self.catalog.times.put(monitor.id, times)
            live.publish(monitor.account_id, {"event": "status", "id": monitor.id, "status": monitor.status,
                                              "since": times.status_since})
        await self.engine.upsert_many([monitor for monitor, _ in stored])

    # validation ----------------------------------------------------------------------------
    @staticmethod
    def parse(data: Any, current: Monitor | None = None) -> Monitor:
        """A monitor definition (or, with ``current``, a patch of one) checked field by field."""
        try:
            return parse_monitor(data, partial_of=current)
        except MonitorValidationError as exc:
            raise Invalid("Invalid monitor", exc.errors) from None

    def _check(self, account_id: int, monitor: Monitor) -> None:
        """What a monitor may name beyond its own fields."""
        channels = self.catalog.integrations
        unknown = [i for i in monitor.integrations if (c := channels.get(i)) is None or c.account_id != account_id]
        if unknown:
            raise Invalid("Invalid monitor", [FieldError("integrations",
                                                         f"no such integration: {', '.join(map(str, unknown))}")])
        spec = monitor.spec
        if isinstance(spec, PushSpec) and (spec.schedule is not None or spec.timezone is not None):
            problems = schedule_problems(spec.schedule, spec.timezone or "UTC")
            if spec.schedule is None:  # (a zone alone is kept for a schedule to come)
                problems = [p for p in problems if p.field != "schedule"]
            if problems:
                raise Invalid("Invalid monitor", problems)
        token = getattr(monitor.spec, "token", None)
        owner = self.catalog.tokens.get(token) if token is not None else None
        if owner is not None and (owner != monitor.id or not monitor.id):
            raise Conflict(f"{monitor.type.capitalize()} token already in use",
                           [FieldError(f"{monitor.type}Token", "is used by another monitor")])
        if self.deny_private and (found := private_target(monitor)) is not None:
            field, host = found
            raise Invalid("Invalid monitor", [FieldError(field, f"{host}: private and loopback targets are not "
                                                                "allowed on this server")])

    @contextlib.contextmanager
    def _taking_tokens(self, monitors: list[Monitor]) -> Iterator[None]:
        """Hold the tokens (push and agent) of monitors being written (as owned by no monitor, id 0) until
        the catalog indexes them: two concurrent creates with one token cannot both pass
        ``_check``. A write that fails lets them go."""
        taken = []
        for monitor in monitors:
            token = getattr(monitor.spec, "token", None)
            if token is not None and token not in self.catalog.tokens:
                self.catalog.tokens[token] = 0
                taken.append(token)
        try:
            yield
        except BaseException:
            for token in taken:
                if self.catalog.tokens.get(token) == 0:
                    del self.catalog.tokens[token]
            raise


def _decoded(packed: bytes, status: str, name: str) -> Monitor:
    monitor = unpack(packed, status)
    monitor.name = name
    return monitor
