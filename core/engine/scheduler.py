"""Per-worker scheduler: a timing wheel of every monitor's next due time, a bounded set of
in-flight checks, the state machine, and the result buffer.

- Time is milliseconds from ``clock.monotonic_ms()``; the wheel has a 1 ms tick and is
  advanced by a ticker every ``tick_s`` (5 ms) on the event loop.
- A monitor is periodic in the wheel with period ``interval``; its phase is a deterministic
  offset from its id (``id * 2654435761 mod interval``), so 100k monitors at 60 s spread
  evenly over the minute instead of firing together, and keep their phase across restarts.
- At most ``limit`` checks run at once (plus up to ``min_inflight`` on the general checkers
  when the compiled path holds them all); due monitors beyond that wait in a FIFO (each
  monitor at most once). A monitor still running or queued when it is due again is skipped
  and counted in ``skipped_overlap``.
- ``limit`` adapts (AIMD) between ``min_inflight`` and ``max_inflight`` (the open-file bound)
  to event-loop lag, measured as the ticker's own lateness: above ``LAG_HIGH`` it is cut by a
  quarter, below ``LAG_LOW`` with checks waiting it grows by an eighth, at most every 100 ms.
  Without this, an overloaded worker starts so many checks that each waits seconds for CPU,
  they all hit their timeouts, and goodput collapses instead of levelling off.
- Lateness (start minus due time) goes into a per-millisecond histogram.
- Results go into the ``ResultBuffer``; ``on_flush(batch, transitions)`` is called every
  ``flush_s`` (250 ms) while a status change waits, every ``quiet_flush_s`` (1 s) while none
  does (each flush is a statement in the serve process, whose fixed cost is most of a small
  batch's), or as soon as ``flush_rows`` rows are waiting.
- HTTP and HTTPS monitors run on the compiled path (``ext._fasthttp``;
  TLS through the same OpenSSL, set up as the general checker's context) once their origin
  has an address: no Python per check; their results reach the state machine
  only when they could change a status (a failure, or a monitor not quietly ``up``). Host
  names are resolved here (the system resolver, as the general checker), off the hot path,
  when first seen, then every interval of the origin's most frequent monitor (at most
  ``RESOLVE_EVERY`` seconds), the next check reporting the lookup's time as its DNS phase;
  until then, and for every other monitor, checks run on the general checkers. Redirects
  are followed there, each hop's origin made and looked up as a monitor's own
  (``_fast_route``). A response the compiled path does not handle moves its monitor to the
  general path.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import heapq
import logging
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from core.checkers import REGISTRY, CheckContext, Checker, Env, http
from core.checkers.http import url_of_head
from core.clock import Clock, MonotonicClock
from core.engine.entry import STATUS_CODES, STATUS_NAMES, Entry
from core.models import CheckResult, ErrorCode, HttpSpec, Monitor, Transition, is_ip_literal, is_private_address
from core.models.packed import pack, unpack, without_url
from core.state import MonitorState, observe
from ext import HttpEngine, ResultBuffer, TimingWheel

__all__ = ["Scheduler", "phase_offset", "run_with_deadline"]

log = logging.getLogger("xuptime.scheduler")
#: A compiled-path origin: host, port, account (accounts never share a connection), and 0 for
#: plain TCP, 1 TLS without verification, 2 TLS verified (``http.CompiledSpec.tls``).
OriginKey = tuple[str, int, int, int]
LATENESS_BUCKETS = 10_001  # 0..10_000 ms; the last bucket holds everything later
LAG_HIGH = 0.025  # s of event-loop lag above which the in-flight limit shrinks
LAG_LOW = 0.008  # s of lag below which it may grow
ADAPT_EVERY = 0.1  # s
CAP_GAIN = 2.0  # in-flight cap = gain x rate x lowest mean latency (see Scheduler._latency_cap)
RESOLVE_EVERY = 60.0  # s between lookups of a compiled-path origin's host name
RESOLVE_AT_ONCE = 64  # lookups in flight at most
HOP_ORIGINS = 16  # origins a compiled monitor's redirects may lead to; beyond, the general checker follows them


async def run_with_deadline(checker: Checker, prepared: Any, ctx: CheckContext, timeout: float,
                            task: asyncio.Task[Any] | None = None) -> CheckResult:
    """Run one check under the caller-owned deadline. Always returns a result: a timeout
    names the phase it hit, and a checker bug becomes an ``internal`` result (logged).
    ``task`` is the task running this coroutine, when the caller knows it (saves a lookup
    that costs a getpid() syscall per call on CPython 3.11)."""
    # One timer handle that cancels the task and marks the expiry: asyncio.timeout() does the
    # same with several times the bookkeeping, measurable at tens of thousands of checks/s.
    if task is None:
        task = asyncio.current_task()
    assert task is not None
    deadline = _Deadline(task)
    handle = ctx.env.loop.call_later(timeout, deadline.expire)
    try:
        return await checker.check(prepared, ctx)
    except asyncio.CancelledError:
        if not deadline.expired:
            raise
        task.uncancel()
        return ctx.result(False, 0, ErrorCode.TIMEOUT, f"timed out after {timeout:g} s ({ctx.phase})")
    except Exception as exc:  # a checker bug must not take the worker down
        log.exception("checker failed for monitor %d", ctx.monitor_id)
        return ctx.result(False, 0, ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}")
    finally:
        handle.cancel()


class _Deadline:
    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.expired = False

    def expire(self) -> None:
        self.expired = True
        self.task.cancel()


def phase_offset(monitor_id: int, interval_ms: int) -> int:
    """Deterministic, well-spread offset of a monitor inside its interval."""
    return (monitor_id * 2654435761) % interval_ms


class Scheduler:
    """One worker's checks (see the module docstring for the rules). Owns its monitors'
    wheel entries, in-flight jobs, state machines and result buffer; everything runs on one
    event loop, so none of it is locked. ``upsert``/``delete`` take effect at the next tick:
    a changed monitor keeps its phase, a check in flight finishes under the old definition."""

    def __init__(
        self,
        on_flush: Callable[[dict[str, Any], list[Transition]], None],
        *,
        clock: Clock | None = None,
        max_inflight: int = 1024,
        min_inflight: int = 32,
        initial_inflight: int = 256,
        buffer_rows: int = 65_536,
        flush_rows: int = 32_768,
        flush_s: float = 0.25,
        quiet_flush_s: float = 1.0,
        tick_s: float = 0.005,
        compiled_http: bool | None = None,
    ) -> None:
        """``compiled_http``: use ``ext._fasthttp`` where it applies (default: when it is
        built and the clock is the real one; it keeps time with the system's clocks)."""
        self.clock = clock or MonotonicClock()
        self.on_flush = on_flush
        self.max_inflight = max_inflight
        self.min_inflight = min(min_inflight, max_inflight)
        self.limit = max(self.min_inflight, min(initial_inflight, max_inflight))
        self.lag_ewma = 0.0
        self._adapt_checks = 0
        self._adapt_at = 0.0
        self._adapt_cpu = 0.0
        self._latency_sum = 0  # µs of the checks finished on the general path since the last adapt
        self._min_now = self._min_prev = float("inf")
        self._min_reset_at = 0.0
        self._next_tick_at = 0.0
        self._next_adapt_at = 0.0
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.quiet_flush_s = max(flush_s, quiet_flush_s)
        self.tick_s = tick_s
        self.wheel = TimingWheel(tick=1, start=self.clock.monotonic_ms())
        self.buffer = ResultBuffer(buffer_rows)
        #: Monitors held as objects: every monitor not asleep in the compiled engine.
        self.entries: dict[int, Entry] = {}
        self._scratch = MonitorState()  # (the state machine's step for a monitor asleep)
        self.inflight: dict[int, Any] = {}  # monitor id -> Task or fast-path job (both have cancel())
        self.queue: collections.deque[tuple[int, int]] = collections.deque()
        self.queued: set[int] = set()
        self.transitions: list[Transition] = []
        self.lateness = np.zeros(LATENESS_BUCKETS, dtype=np.int64)
        self.checks = 0
        self.skipped_overlap = 0
        self._env: Env | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        if compiled_http is None:
            compiled_http = clock is None
        self.fast: Any = None
        if compiled_http and HttpEngine is not None and isinstance(self.clock, MonotonicClock):
            self.fast = HttpEngine(self.buffer, self._fast_done, self._fast_fallback)
            self.fast.set_clock(self.clock.origin_ns, self.lateness)
            self.fast.limit = self.limit
            # Idle sockets count against the same open-file budget as checks in flight.
            self.fast.max_idle = max(64, max_inflight // 4)
            # XUPTIME_CLOSE=fin: close with a FIN as wrk does (bench.engine measures both ways).
            self.fast.close_with_reset = os.environ.get("XUPTIME_CLOSE", "rst") != "fin"
            # HTTPS as the general checker's context makes it (the same OpenSSL in-process).
            self.fast.configure_tls(*http.tls_settings(ssl.create_default_context()))
            self.fast.json_judge = http.json_problem  # (the general checker's own judge)
            self.fast.max_sessions = _env_count("XUPTIME_TLS_SESSIONS", self.fast.max_sessions)
            self.fast.route = self._fast_route
        #: Compiled-path origins: (host, port, account, TLS) -> engine origin index, and how many monitors use
        #: each. Origins given by a host name are looked up when first used and then every
        #: ``_resolve_every`` seconds, from a heap of (when, origin), at most
        #: ``RESOLVE_AT_ONCE`` at a time (100k distinct hosts must not mean 100k lookups at once).
        self._origins: dict[OriginKey, int] = {}
        self._origin_at: dict[int, OriginKey] = {}  # (engine origin index -> key)
        self._origin_users: dict[OriginKey, int] = {}
        self._named: set[OriginKey] = set()
        self._resolve_queue: list[tuple[float, OriginKey]] = []  # a heap
        #: Seconds between lookups of an origin: its most frequent monitor's interval, at
        #: most ``RESOLVE_EVERY`` (a name that stops resolving shows at that monitor's next check).
        self._resolve_every: dict[OriginKey, float] = {}
        self._resolving: dict[OriginKey, asyncio.Task[None]] = {}
        #: Origins a compiled monitor's redirects led to (each counted once among its users).
        self._hop_origins: dict[int, set[OriginKey]] = {}

    # monitor set -------------------------------------------------------------------------
    def upsert(self, monitor: Monitor, packed: bytes | None = None) -> None:
        """Add or replace a monitor (``packed``: ``pack``'s bytes of it, when the caller has them).
        A replaced monitor keeps its phase and state counters."""
        entry = Entry(monitor, REGISTRY[monitor.type], packed)
        old = self._entry(monitor.id)
        if old is not None and ("paused" if old.paused else old.status) == monitor.status:
            entry.carry(old)
        self.entries[monitor.id] = entry
        if old is not None:
            self._release(monitor.id, old)
        if monitor.paused:
            self.wheel.cancel(monitor.id)
            return
        if entry.checker.next_due is not None:
            if self._env is not None and (old is None or old.paused):
                self._env.watching[monitor.id] = self.clock.wall_us() / 1e6  # (new or resumed: watched from now)
            if self._arm(monitor.id, entry):
                return
        if self.fast is not None and monitor.type == "http":
            self._compile(monitor, entry)
        if not entry.compiled:
            entry.packed = None  # (held as objects: the bytes would be a second copy)
        old_interval_ms = old.interval_ms if old is not None and not old.paused else None
        if not (old_interval_ms == entry.interval_ms and monitor.id in self.wheel and old is not None
                and old.due_ms is None):  # (same cadence: keep the pending deadline)
            self._schedule_periodic(monitor)
        self._sleep(monitor.id, entry)

    @property
    def count(self) -> int:
        """Monitors of the shard, held or asleep."""
        return len(self.entries) + (self.fast.asleep if self.fast is not None else 0)

    def monitor(self, mid: int) -> Monitor | None:
        """A monitor of the shard as last upserted, with its live status (None: not here)."""
        entry = self.entries.get(mid)
        if entry is not None:
            return entry.monitor
        state = self.fast.state(mid) if self.fast is not None else None
        if state is None:
            return None
        return self._whole(mid, unpack(self.fast.packed(mid), STATUS_NAMES[state[0]]))

    def _whole(self, mid: int, monitor: Monitor) -> Monitor:
        """An asleep monitor as it came: its URL, if it was left out of the bytes the engine
        keeps (``_compile``), put back from its request line and ``Host``."""
        spec = monitor.spec
        if not isinstance(spec, HttpSpec) or spec.url:
            return monitor
        url = url_of_head(self.fast.head(mid))
        assert url is not None  # (left out only when the head gave it back: ``_compile``)
        return msgspec.structs.replace(monitor, spec=msgspec.structs.replace(spec, url=url))

    def _entry(self, mid: int) -> Entry | None:
        """The monitor's entry; one asleep in the compiled engine is woken into one (held
        until it can sleep again)."""
        entry = self.entries.get(mid)
        if entry is not None or self.fast is None or not self.fast.asleep:
            return entry
        woken = self.fast.wake(mid)
        if woken is None:
            return None
        packed, status, failures, successes, origin = woken
        kept = unpack(packed)
        monitor = self._whole(mid, kept)
        entry = Entry(monitor, REGISTRY["http"], packed if monitor is kept else pack(monitor))
        entry.short = None if monitor is kept else packed  # (kept without its URL)
        entry.status, entry.failures, entry.successes = STATUS_NAMES[status], failures, successes
        entry.compiled, entry.origin = True, self._origin_at[origin]
        entry.shed()
        self.entries[mid] = entry
        return entry

    def _sleep(self, mid: int, entry: Entry) -> None:
        """Hand a compiled monitor's state to the engine and drop its entry, unless a check of
        it runs on the general path (its result needs the entry): a worker holds no object
        for a monitor on the compiled path (about 240 bytes a monitor with its dict slot)."""
        if not entry.compiled or mid in self.inflight or mid in self.queued:
            return
        entry.shed()
        assert entry.packed is not None
        kept = entry.short if entry.short is not None else entry.packed
        self.fast.sleep(mid, kept, STATUS_CODES.get(entry.status, 0), entry.failures, entry.successes,
                        entry.retries, entry.recovery)
        del self.entries[mid]

    def _schedule_periodic(self, monitor: Monitor) -> None:
        interval_ms = monitor.interval * 1000
        now = self.clock.monotonic_ms()
        offset = phase_offset(monitor.id, interval_ms)
        first = now + (offset - now) % interval_ms
        self.wheel.schedule(monitor.id, first, interval_ms)

    def _arm(self, mid: int, entry: Entry) -> bool:
        """Arm a timed monitor's next look (one-shot, on the wall clock's time); False when
        it is periodic after all (a push monitor without a schedule). Before ``start`` there
        is no environment yet: ``start`` arms them."""
        assert entry.checker.next_due is not None
        if self._env is None:
            return True
        now_s = self.clock.wall_us() / 1e6
        self._env.watching.setdefault(mid, now_s)
        due = entry.checker.next_due(entry.prepared, self._env, mid)
        if due is None:
            entry.due_ms = None
            return False
        now_ms = self.clock.monotonic_ms()
        entry.due_ms = now_ms + max(0, int((due - now_s) * 1000 + 0.999))
        self.wheel.schedule(mid, entry.due_ms, 0)
        return True

    def report(self, mid: int, ts: float, ok: bool, reason: str | None) -> None:
        """An agent's report, judged against its thresholds by the serve process: a result at
        once (``ok`` False: over a threshold, ``reason`` says which); ``forReports`` failures
        in a row make the monitor down. Re-arms the watch for its silence."""
        entry = self.entries.get(mid)
        if self._env is None or entry is None or entry.paused or entry.monitor.type != "agent":
            return
        env = self._env
        if ts > env.reports.get(mid, 0.0):
            env.reports[mid] = ts
        self._record_now(mid, entry, ts, ok, None, ErrorCode.OK if ok else ErrorCode.AGENT_THRESHOLD,
                         None if ok else reason, retries=entry.prepared.for_reports - 1)
        if mid not in self.inflight:
            self._arm(mid, entry)

    def push(self, mid: int, ts: float, ok: bool, msg: str | None, ping_ms: float | None) -> None:
        """Record a heartbeat of a push monitor for its next check (``core.checkers.push``).

        A push that reports a failure (``status=down``) is a result at once, not at the next
        deadline, and a decisive one (the job said so: no retries): a daily job's failure
        alerts now, and a failure followed by a success before the deadline is not lost. It
        is consumed: the next check needs a newer push (or it is ``no_push``)."""
        entry = self.entries.get(mid)
        if self._env is None or entry is None or entry.monitor.type != "push":
            return
        if ok or entry.paused:
            self._env.pushes[mid] = (ts, ok, msg, ping_ms)
            if ok and entry.status == "down" and not entry.paused:
                self._record_now(mid, entry, ts, True, ping_ms, ErrorCode.OK, None)  # a late job recovers now
            return
        if entry.due_ms is None:  # (a cron heartbeat keeps it: the run it answers is judged as down)
            self._env.pushes.pop(mid, None)
            self._env.push_checked[mid] = ts
        else:
            self._env.pushes[mid] = (ts, ok, msg, ping_ms)
        self._record_now(mid, entry, ts, False, ping_ms, ErrorCode.PUSH_DOWN, (msg or "the job reported down")[:500])

    def _record_now(self, mid: int, entry: Entry, ts: float, ok: bool, ping_ms: float | None, code: ErrorCode,
                    error: str | None, retries: int = 0) -> None:
        """A result told by the monitored side, recorded at once (not at a check): a heartbeat,
        decisive by default (the job said so: no retries), or an agent's report."""
        ts_us = int(ts * 1_000_000)
        latency_us = int(ping_ms * 1000) if ping_ms is not None and ping_ms >= 0 else 0
        self.checks += 1
        self.buffer.append(mid, ts_us, ok, latency_us, 0, int(code), -1, -1, -1, -1, error)
        transition = observe(entry, mid, ok, ts_us, retries, entry.recovery, error)
        if transition is not None:
            self.transitions.append(transition)

    def _compile(self, monitor: Monitor, entry: Entry) -> None:
        spec = http.compiled_spec(entry.prepared)
        if spec is None:
            return
        key = self._use_origin(spec.host, spec.port, monitor.account_id, spec.tls, entry.interval_ms)
        mid = monitor.id
        self.fast.add(mid, self._origins[key], spec.request, spec.table, spec.expected, entry.timeout, spec.keep_alive,
                      spec.head, spec.follow, spec.max_body, entry.interval_ms, phase_offset(mid, entry.interval_ms),
                      spec.resume, spec.keyword, spec.json, spec.max_redirects)
        self.fast.set_quiet(mid, entry.status == "up" and not entry.failures)
        entry.compiled, entry.origin = True, key
        # Asleep, it is kept without its URL when its request line and Host give it back
        # exactly (``_whole``): the URL is most of a plain monitor's packed bytes.
        spec = monitor.spec
        if isinstance(spec, HttpSpec) and url_of_head(self.fast.head(mid)) == spec.url:
            short = without_url(entry.packed, spec.url) if entry.packed is not None else None
            entry.short = short if short is not None else pack(monitor, url=False)
        entry.shed()

    def _use_origin(self, host: str, port: int, account: int, tls: int, interval_ms: int) -> OriginKey:
        """The compiled-path origin of ``host``/``port`` for ``account`` (``tls`` as
        ``CompiledSpec.tls``), made on first use, with one user more; a host name is looked
        up at least every ``interval_ms``. One origin (its idle connections, its TLS session)
        per account: accounts never share a connection."""
        key, literal = (host, port, account, tls), is_ip_literal(host)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = self.fast.origin(key)
            self._origin_at[origin] = key
            if tls:
                self.fast.set_tls(origin, host, tls == 2, literal)
            if literal:  # no lookup needed: usable at once
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                self._set_address(key, family, (host, port, 0, 0)[:4 if family == socket.AF_INET6 else 2])
        key = self._origin_at[origin]  # (one tuple an origin, not one a monitor)
        if not literal:
            every = min(RESOLVE_EVERY, interval_ms / 1000, self._resolve_every.get(key, RESOLVE_EVERY))
            self._resolve_every[key] = every
            if key not in self._named:
                self._named.add(key)
                heapq.heappush(self._resolve_queue, (0.0, key))  # first lookups go first
        self._origin_users[key] = self._origin_users.get(key, 0) + 1
        return key

    def _drop_origin(self, key: OriginKey) -> None:
        """One user of ``key`` fewer; an origin no monitor uses is no longer looked up."""
        users = self._origin_users.get(key, 1) - 1
        if users > 0:
            self._origin_users[key] = users
        else:
            self._origin_users.pop(key, None)
            self._named.discard(key)
            self._resolve_every.pop(key, None)
            self.fast.forget_session(self._origins[key])

    def _release(self, mid: int, entry: Entry) -> None:
        """Take a replaced or removed monitor off the compiled path, with the origins it and
        its redirects used."""
        if not entry.compiled:
            return
        entry.compiled = False
        self.fast.remove(mid)
        if entry.origin is not None:
            self._drop_origin(entry.origin)
        for key in self._hop_origins.pop(mid, ()):
            self._drop_origin(key)

    def _fast_route(self, mid: int, current: Any, status: int, location: bytes) -> tuple[Any, int, bytes] | str | None:
        """The next hop of a compiled monitor's redirect (``HttpEngine.route``), as the
        general checker makes it (``PreparedHttp.redirect`` from ``current``, None: the
        monitor's URL): ``(target, engine origin, request)``, its origin made and looked up
        like the monitor's own; the failure's text for a location the general checker cannot
        follow; None when only the general checker can go there (TLS to a name that is not
        ASCII), or when the monitor's redirects led to ``HOP_ORIGINS`` origins already (a
        server sending to a new host each time would otherwise make origins without end).
        Runs once per place a monitor is sent from (the engine keeps the answer),
        inside the engine's event handling: it makes origins, nothing else. Never raises."""
        try:
            entry = self.entries.get(mid)
            if entry is not None:
                prepared, account, interval_ms = entry.prepared, entry.account_id, entry.interval_ms
            else:  # asleep: its definition, not woken (waking would change the engine mid-event)
                packed = self.fast.packed(mid)
                if packed is None:
                    return None
                monitor = self._whole(mid, unpack(packed))
                prepared, account, interval_ms = http.prepare(monitor.spec), monitor.account_id, monitor.interval * 1000
            try:
                target = prepared.redirect(current if current is not None else prepared.first, location, status)
            except ValueError:
                return "redirect to an unsupported location"
            if target.tls and not target.host.isascii():
                return None
            tls = (2 if prepared.verify else 1) if target.tls else 0
            key = (target.host.strip("[]"), target.port, account, tls)
            used = self._hop_origins.setdefault(mid, set())
            if key not in used:
                if len(used) >= HOP_ORIGINS:
                    return None
                key = self._use_origin(*key, interval_ms)
                used.add(key)
            return target, self._origins[key], target.request
        except Exception:
            log.exception("following a redirect on the compiled path failed")
            return None

    def _resolve_due(self, now: float) -> None:
        """Start the lookups that are due, a bounded number at a time."""
        queue = self._resolve_queue
        while queue and queue[0][0] <= now and len(self._resolving) < RESOLVE_AT_ONCE:
            _, key = heapq.heappop(queue)
            if key in self._named and key not in self._resolving:
                assert self._loop is not None
                task = self._loop.create_task(self._resolve(key))
                self._resolving[key] = task
                task.add_done_callback(functools.partial(self._resolved, key))

    def _resolved(self, key: OriginKey, _: asyncio.Task[None]) -> None:
        self._resolving.pop(key, None)
        if key in self._named and self._loop is not None:
            every = self._resolve_every.get(key, RESOLVE_EVERY)
            heapq.heappush(self._resolve_queue, (self._loop.time() + every, key))

    async def _lookup(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """The system resolver's answer, as the general checker asks it (the same first address)."""
        assert self._loop is not None
        return await self._loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)

    async def _resolve(self, key: OriginKey) -> None:
        """Give the engine the origin's address and how long the lookup took (the next check
        of the origin reports it as its DNS phase); a failed lookup, or an address this server
        may not connect to, leaves its checks to the general checker, which reports why."""
        assert self._loop is not None and self._env is not None
        host, port = key[0], key[1]
        started = time.perf_counter_ns()
        try:
            infos = await self._lookup(host, port)
        except (OSError, UnicodeError):
            self.fast.clear_address(self._origins[key])
            return
        family, _, _, _, address = infos[0]
        self._set_address(key, family, address, (time.perf_counter_ns() - started) // 1000)

    def _set_address(self, key: OriginKey, family: int, address: tuple[Any, ...], dns_us: int = -1) -> None:
        deny = self._env.deny_private if self._env is not None else os.environ.get("XUPTIME_DENY_PRIVATE") == "1"
        if deny and is_private_address(address[0]):
            self.fast.clear_address(self._origins[key])  # the general checker says why
            return
        self.fast.set_address(self._origins[key], family, raw_sockaddr(family, address), dns_us)

    def remove(self, monitor_id: int) -> None:
        old = self._entry(monitor_id)
        self.entries.pop(monitor_id, None)
        if old is not None:
            self._release(monitor_id, old)
        self.wheel.cancel(monitor_id)
        job = self.inflight.pop(monitor_id, None)
        if job is not None:
            job.cancel()
        if monitor_id in self.queued:
            self.queued.discard(monitor_id)
            self.queue = collections.deque(item for item in self.queue if item[0] != monitor_id)
        if self._env is not None:
            for kept in (self._env.pushes, self._env.push_checked, self._env.reports, self._env.watching,
                         self._env.silent):
                kept.pop(monitor_id, None)

    # running -----------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._env = Env(loop)
        clock = self.clock
        self._env.now = lambda: clock.wall_us() / 1e6
        for mid, entry in self.entries.items():
            if entry.checker.next_due is not None and not entry.paused and not self._arm(mid, entry):
                self._schedule_periodic(entry.monitor)
        self._last_flush = loop.time()
        self._next_tick_at = loop.time()
        self._ticker = loop.call_soon(self._tick)
        if self.fast is not None:
            loop.add_reader(self.fast.fileno(), self.fast.on_ready)
            self._resolve_due(loop.time())

    async def stop(self) -> None:
        """Stop scheduling, cancel running checks, and flush what is buffered."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self.fast is not None and self._loop is not None:
            self._loop.remove_reader(self.fast.fileno())
            self.fast.close()
            for task in list(self._resolving.values()):
                task.cancel()
        jobs = list(self.inflight.values())
        self.inflight.clear()
        for job in jobs:
            job.cancel()
        tasks = [job for job in jobs if isinstance(job, asyncio.Task)]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.queue.clear()
        self.queued.clear()
        self.flush()
        if self._env is not None:
            self._env.close()

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        self.lag_ewma += 0.2 * (max(0.0, now - self._next_tick_at) - self.lag_ewma)
        if now >= self._next_adapt_at:
            self._adapt(now)
            self._next_adapt_at = now + ADAPT_EVERY
        try:
            if self.fast is not None:
                self.fast.limit = self.limit
                self.fast.expire()
                self._resolve_due(now)
            self.run_due()
            every = self.flush_s if self.transitions else self.quiet_flush_s
            if len(self.buffer) >= self.flush_rows or loop.time() - self._last_flush >= every:
                self.flush()
        except Exception:  # the ticker must survive anything
            log.exception("scheduler tick failed")
        self._next_tick_at = loop.time() + self.tick_s
        self._ticker = loop.call_later(self.tick_s, self._tick)

    def _adapt(self, now: float) -> None:
        cap = self._latency_cap(now)
        if self.lag_ewma > LAG_HIGH:
            self.limit = max(self.min_inflight, self.limit * 3 // 4)
        elif cap is not None and self.limit > 2 * cap:
            self.limit = max(self.min_inflight, cap, self.limit * 3 // 4)
        elif self.lag_ewma < LAG_LOW and (cap is None or self.limit < cap) and (
                self.queue or self.busy >= self.limit or (self.fast is not None and self.fast.queued)):
            self.limit = min(self.max_inflight, self.limit + max(8, self.limit // 8))
        if self.queue:
            self._next_queued()

    def _latency_cap(self, now: float) -> int | None:
        """How many checks in flight can still help while this process is busy (over half a
        core): ``CAP_GAIN`` x completions per second x the lowest mean check latency of recent
        windows. Beyond that, checks only wait in queues (here, in the kernel, at the target)
        and each costs more CPU: over loopback the compiled path needs about a hundred, and at
        two thousand it did a fifth fewer checks. None (no cap) while the process has CPU to
        spare, as with slow remote targets, or there is too little to go on."""
        done, latency_us = self.checks - self._adapt_checks, self._latency_sum
        if self.fast is not None:
            latency_us += self.fast.take_latency()
        self._latency_sum = 0
        self._adapt_checks = self.checks
        elapsed, self._adapt_at = now - self._adapt_at, now
        cpu_now = time.process_time()
        cpu, self._adapt_cpu = cpu_now - self._adapt_cpu, cpu_now
        if done < 50 or elapsed <= 0:
            return None
        mean_s = latency_us / done / 1e6
        if now >= self._min_reset_at:  # forget old minimums slowly: the targets may change
            self._min_prev, self._min_now = self._min_now, mean_s
            self._min_reset_at = now + 10.0
        self._min_now = min(self._min_now, mean_s)
        if cpu < 0.5 * elapsed:
            return None
        floor = min(self._min_prev, self._min_now)
        return max(self.min_inflight, int(CAP_GAIN * done / elapsed * floor))

    def run_due(self) -> None:
        """Advance the wheel to now and start (or queue) every due monitor."""
        now = self.clock.monotonic_ms()
        due = self.wheel.advance(now)
        inflight, queued, fast = self.inflight, self.queued, self.fast
        if fast is not None and due:
            due = fast.start_due(due, now, inflight, queued)  # returns what it does not run
        for mid in due:
            if mid in inflight or mid in queued:
                self.skipped_overlap += 1
                continue
            entry = self._entry(mid)
            if entry is None:
                continue
            if entry.due_ms is not None:
                due_ms = entry.due_ms
            else:
                interval_ms = entry.interval_ms
                due_ms = now - (now - phase_offset(mid, interval_ms)) % interval_ms
            if len(inflight) < self._general_room():
                self._start(mid, entry, due_ms, now)
            else:
                self.queue.append((mid, due_ms))
                queued.add(mid)

    @property
    def busy(self) -> int:
        """Checks in flight on either path."""
        return len(self.inflight) + (self.fast.inflight if self.fast is not None else 0)

    @property
    def overlaps(self) -> int:
        """Due checks skipped because the previous one was still running or waiting."""
        return self.skipped_overlap + (self.fast.skipped_overlap if self.fast is not None else 0)

    def _start(self, mid: int, entry: Entry, due_ms: int, now: int) -> None:
        late = now - due_ms
        self.lateness[late if late < LATENESS_BUCKETS else LATENESS_BUCKETS - 1] += 1
        assert self._loop is not None and self._env is not None
        start = entry.checker.start
        if start is not None:  # the checker's callback fast path, when it can take this check
            ctx = CheckContext(self._env, mid, entry.account_id)
            ts_us = self.clock.wall_us()
            job = start(entry.prepared, ctx, functools.partial(self._finished, mid, entry, ts_us), entry.timeout)
            if job is not None:
                self.inflight[mid] = job
                return
        self.inflight[mid] = self._loop.create_task(self._run(mid, entry))

    def _general_room(self) -> int:
        """In-flight places for the general checkers: what the compiled path leaves of
        ``limit``, but never fewer than ``min_inflight``, so a saturated compiled path cannot
        starve HTTPS and the other kinds."""
        if self.fast is None:
            return self.limit
        return max(self.min_inflight, self.limit - self.fast.inflight)

    def _next_queued(self) -> None:
        while self.queue and len(self.inflight) < self._general_room():
            mid, due_ms = self.queue.popleft()
            self.queued.discard(mid)
            entry = self._entry(mid)
            if entry is not None:
                self._start(mid, entry, due_ms, self.clock.monotonic_ms())

    async def _run(self, mid: int, entry: Entry) -> None:
        assert self._env is not None
        ctx = CheckContext(self._env, mid, entry.account_id)
        ts_us = self.clock.wall_us()
        task = self.inflight.get(mid)
        try:
            result = await run_with_deadline(entry.checker, entry.prepared, ctx, entry.timeout,
                                             task if isinstance(task, asyncio.Task) else None)
        except asyncio.CancelledError:
            if self.inflight.get(mid) is task:
                self.inflight.pop(mid, None)
            raise
        self._finished(mid, entry, ts_us, result)

    def _finished(self, mid: int, entry: Entry, ts_us: int, result: CheckResult | None) -> None:
        """A check ended (either path): free its slot, start waiting ones, record the result
        (None: nothing to record yet, as for a push monitor in its first interval)."""
        self.inflight.pop(mid, None)
        if self.queue:
            self._next_queued()
        current = self.entries.get(mid)
        if current is not entry:  # removed or replaced while running: its result no longer applies
            if current is not None:
                self._sleep(mid, current)  # (the replacement waited for this check to end)
            return
        if entry.due_ms is not None and not entry.paused:
            self._arm(mid, entry)  # (after the check: it moved what the next look depends on)
        if result is None:
            return
        self.checks += 1
        self._latency_sum += result.latency_us
        self.buffer.append(mid, ts_us, result.ok, result.latency_us, result.status_code, result.error_code,
                           result.dns_us, result.connect_us, result.tls_us, result.ttfb_us, result.error)
        if result.ok and entry.status == "up" and not entry.failures:
            entry.successes += 1  # the common case, without a call: nothing can change
        else:
            transition = observe(entry, mid, result.ok, ts_us, entry.retries, entry.recovery, result.error)
            if transition is not None:
                self.transitions.append(transition)
        if entry.compiled:
            self._sleep(mid, entry)

    def _fast_done(self, count: int, notable: list[tuple[int, bool, int, str | None]]) -> None:
        """Checks that ended on the compiled path (their rows are in the buffer already);
        ``notable`` are the results that may change a status. Never raises: it runs inside
        the engine's event handling, which must finish its batch."""
        try:
            self.checks += count
            fast, scratch = self.fast, self._scratch
            for mid, ok, ts_us, error in notable:
                entry = self.entries.get(mid)
                if entry is None:  # asleep in the engine: one step on its counters there
                    state = fast.state(mid)
                    if state is None:
                        continue
                    status, scratch.failures, scratch.successes, retries, recovery = state
                    scratch.status = STATUS_NAMES[status]
                    transition = observe(scratch, mid, ok, ts_us, retries, recovery, error)
                    fast.set_state(mid, STATUS_CODES[scratch.status], scratch.failures, scratch.successes)
                else:
                    transition = observe(entry, mid, ok, ts_us, entry.retries, entry.recovery, error)
                    if entry.compiled:
                        fast.set_quiet(mid, entry.status == "up" and not entry.failures)
                        self._sleep(mid, entry)
                if transition is not None:
                    self.transitions.append(transition)
            if self.queue:
                self._next_queued()
        except Exception:
            log.exception("recording compiled-path results failed")

    def _fast_fallback(self, mid: int, for_good: bool = True) -> None:
        """The compiled path handed over a check it cannot judge (``for_good``: nor any later
        one of the monitor), or cannot take yet (a redirect to an origin not looked up yet):
        run it on the general checker now (as a task: nothing may start synchronously in
        here). Never raises."""
        try:
            entry = self._entry(mid)
            if entry is not None and self._loop is not None and mid not in self.inflight:
                if for_good:
                    self._release(mid, entry)
                entry.hold()
                self.inflight[mid] = self._loop.create_task(self._run(mid, entry))
        except Exception:
            log.exception("handing a check to the general checker failed")

    def flush(self) -> None:
        if self._loop is not None:
            self._last_flush = self._loop.time()
        batch = self.buffer.flush()
        if batch is None and not self.transitions:
            return
        transitions, self.transitions = self.transitions, []
        if batch is None:
            batch = _empty_batch()
        self.on_flush(batch, transitions)


def _env_count(name: str, default: int) -> int:
    """A count from the environment (a whole number from 0), else ``default``."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit():
        log.warning("%s=%r is not a whole number: %d is used", name, raw, default)
        return default
    return int(raw)


def _empty_batch() -> dict[str, Any]:
    from ext import COLUMNS, DTYPES

    batch: dict[str, Any] = {name: np.empty(0, dtype=DTYPES[name]) for name in COLUMNS}
    batch["error_rows"] = np.empty(0, dtype=np.int32)
    batch["error_texts"] = []
    return batch


def raw_sockaddr(family: int, address: tuple[Any, ...]) -> bytes:
    """The C ``struct sockaddr_in``/``sockaddr_in6`` of a ``getaddrinfo`` address."""
    port = struct.pack("!H", address[1])
    packed = socket.inet_pton(family, address[0])
    if family == socket.AF_INET:
        return struct.pack("=H", family) + port + packed + bytes(8)
    return struct.pack("=H", family) + port + struct.pack("=I", address[2]) + packed + struct.pack("=I", address[3])
