"""Push (heartbeat) checker: instead of asking, xuptime waits to be told.

The monitored job calls ``/api/push/{pushToken}``; the main process hands each call to the
owning worker (``Env.pushes``). At each of the monitor's checks the latest push decides:

- a push since the previous check (less ``grace`` seconds): ``up``, with its ``ping`` as the
  latency (a push that says ``status=down`` does not wait for a check: the scheduler records
  it as a failure at once, decisive whatever ``retries`` says, and consumes it);
- none: down with ``no_push``;
- the monitor's first check, with no push yet: nothing is recorded (the job may not have had
  a chance to call yet).

With a cron ``schedule`` the monitor is timed instead (the scheduler arms ``next_due``): each
run due at ``d`` (the schedule read in its ``timezone``, croniter, so 03:00 stays 03:00 local
across DST changes) is judged once, at ``d + grace``: up if a push came at ``d - grace`` or
later, else ``no_push`` naming the run. A worker that began watching inside a run's window
has nothing to go on and records nothing for that run. A push that says ``up`` while the
monitor is down is a result at once (the scheduler's), so a late run recovers when it pings.

It runs on the scheduler's callback path: no task, no I/O.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

from core.checkers.base import CheckContext, Env, fail
from core.models import CheckResult, ErrorCode, Monitor, PushSpec

__all__ = ["PreparedPush", "check", "next_due", "prepare", "start"]


class PreparedPush:
    __slots__ = ("cron", "grace", "pending", "spec", "zone")

    def __init__(self, monitor: Monitor) -> None:
        spec = monitor.spec
        assert isinstance(spec, PushSpec)
        self.spec = spec
        self.grace = float(spec.grace)
        self.zone = zoneinfo.ZoneInfo(spec.timezone or "UTC")
        self.cron: Any = None
        if spec.schedule is not None:
            from croniter import croniter

            self.cron = croniter(spec.schedule, dt.datetime.now(self.zone))
        #: The run being waited for (wall seconds), once armed.
        self.pending: float | None = None

    def run_after(self, ts: float) -> float:
        """The first run the schedule names strictly after ``ts`` (wall seconds). A local time
        that happens twice when clocks go back names one run, the first, as cron runs it once."""
        self.cron.set_current(dt.datetime.fromtimestamp(ts, self.zone), force=True)
        before = dt.datetime.fromtimestamp(ts, self.zone).replace(tzinfo=None)
        for _ in range(4):
            run = float(self.cron.get_next(float))
            if dt.datetime.fromtimestamp(run, self.zone).replace(tzinfo=None) != before:
                return run
        return run


def prepare(monitor: Monitor) -> PreparedPush:
    return PreparedPush(monitor)


def next_due(prepared: PreparedPush, env: Env, mid: int) -> float | None:
    """When a cron heartbeat is next judged (wall seconds); None for one checked every interval."""
    if prepared.cron is None:
        return None
    if prepared.pending is None:
        prepared.pending = prepared.run_after(env.now() - prepared.grace)
    return prepared.pending + prepared.grace


def _judge_run(prepared: PreparedPush, ctx: CheckContext) -> CheckResult | None:
    env, mid, now = ctx.env, ctx.monitor_id, ctx.env.now()
    run, grace = prepared.pending, prepared.grace
    if run is None or now < run + grace - 0.001:
        return None  # (armed early: nothing is due yet)
    prepared.pending = prepared.run_after(run)
    last = env.pushes.get(mid)
    if last is not None and last[0] >= run - grace:
        _, ok, _, ping_ms = last
        # A failure the job reported was recorded when it came: not again.
        return CheckResult(True, int(ping_ms * 1000) if ping_ms is not None and ping_ms >= 0 else 0) if ok else None
    if env.watching.get(mid, 0.0) > run - grace:
        return None  # watched only since inside this run's window: nothing to go on
    due = dt.datetime.fromtimestamp(run, prepared.zone)
    until = dt.datetime.fromtimestamp(run + grace, prepared.zone)
    return fail(ctx, ErrorCode.NO_PUSH, f"the run due at {due:%Y-%m-%d %H:%M} {due.tzname()} did not ping"
                                        f" by {until:%H:%M:%S}")


def decide(prepared: PreparedPush, ctx: CheckContext) -> CheckResult | None:
    if prepared.cron is not None:
        return _judge_run(prepared, ctx)
    env, mid = ctx.env, ctx.monitor_id
    now = env.now()
    previous = env.push_checked.get(mid)
    env.push_checked[mid] = now
    last = env.pushes.get(mid)
    if last is not None and (previous is None or last[0] >= previous - prepared.grace):
        _, ok, msg, ping_ms = last
        latency_us = int(ping_ms * 1000) if ping_ms is not None and ping_ms >= 0 else 0
        if ok:
            return CheckResult(True, latency_us)
        return CheckResult(False, latency_us, 0, int(ErrorCode.PUSH_DOWN), (msg or "the job reported down")[:500])
    if previous is None:
        return None  # first check, nothing heard yet: too early to tell
    waited = now - (last[0] if last is not None else previous)
    return fail(ctx, ErrorCode.NO_PUSH, f"no push for {waited:.0f} s")


def start(prepared: PreparedPush, ctx: CheckContext, done: Callable[[CheckResult | None], None],
          timeout: float) -> Any:
    # Decided now, reported on the next loop turn: the scheduler records the job first.
    return ctx.env.loop.call_soon(done, decide(prepared, ctx))


async def check(prepared: PreparedPush, ctx: CheckContext) -> CheckResult:
    """The coroutine form (tests, tools): a first check with nothing heard yet is ``no_push``."""
    return decide(prepared, ctx) or fail(ctx, ErrorCode.NO_PUSH, "no push yet")
