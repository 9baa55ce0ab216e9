"""Push (heartbeat) checker: instead of asking, xuptime waits to be told.

The monitored job calls ``/api/push/{pushToken}``; the main process hands each call to the
owning worker (``Env.pushes``). At each of the monitor's checks the latest push decides:

- a push since the previous check (less ``grace`` seconds): ``up``, with its ``ping`` as the
  latency (a push that says ``status=down`` does not wait for a check: the scheduler records
  it as a failure at once, decisive whatever ``retries`` says, and consumes it);
- none: down with ``no_push``;
- the monitor's first check, with no push yet: nothing is recorded (the job may not have had
  a chance to call yet).

It runs on the scheduler's callback path: no task, no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core.checkers.base import CheckContext, fail
from core.models import CheckResult, ErrorCode, PushSpec

__all__ = ["PreparedPush", "check", "prepare", "start"]


class PreparedPush:
    __slots__ = ("grace", "spec")

    def __init__(self, spec: PushSpec) -> None:
        self.spec = spec
        self.grace = float(spec.grace)


def prepare(spec: PushSpec) -> PreparedPush:
    return PreparedPush(spec)


def decide(prepared: PreparedPush, ctx: CheckContext) -> CheckResult | None:
    env, mid, now = ctx.env, ctx.monitor_id, time.time()
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
