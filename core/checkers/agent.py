"""Agent checker: a server agent reports in (``/api/agent/{token}/report``); the check is only
for its silence.

Each report is a result at once (``Scheduler.report``: over a threshold is a failure with the
reason, ``forReports`` in a row make the monitor down). The scheduler arms this checker for the
moment the agent has been silent ``interval + grace`` seconds, counted from its newest report
or, when it has sent none since this worker started, from when the worker began to watch it
(a restarted server gives every agent its full allowance). Then, and every ``interval`` seconds
while the silence lasts, it records ``agent_silent``. A report re-arms it.

It runs on the scheduler's callback path: no task, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.checkers.base import CheckContext, Env
from core.models import AgentSpec, CheckResult, ErrorCode, Monitor

__all__ = ["PreparedAgent", "check", "next_due", "prepare", "start"]


class PreparedAgent:
    __slots__ = ("for_reports", "grace", "interval", "thresholds")

    def __init__(self, monitor: Monitor) -> None:
        spec = monitor.spec
        assert isinstance(spec, AgentSpec)
        self.interval = monitor.interval
        self.grace = float(spec.grace)
        self.for_reports = spec.for_reports
        t = spec.thresholds
        self.thresholds = (t.cpu_percent, t.memory_percent, t.disk_percent, t.load1)


def prepare(monitor: Monitor) -> PreparedAgent:
    return PreparedAgent(monitor)


def _since(env: Env, mid: int) -> float:
    """The start of the current silence: the newest report, or when watching began."""
    return max(env.reports.get(mid, 0.0), env.watching.get(mid, 0.0))


def next_due(prepared: PreparedAgent, env: Env, mid: int) -> float:
    """The wall time at which the agent's silence is next worth a look."""
    interval = prepared.interval
    due = _since(env, mid) + interval + prepared.grace
    silent = env.silent.get(mid)
    if silent is not None and silent >= _since(env, mid):
        due = max(due, silent + interval)
    return due


def decide(prepared: PreparedAgent, ctx: CheckContext) -> CheckResult | None:
    env, mid = ctx.env, ctx.monitor_id
    now = env.now()
    if now < next_due(prepared, env, mid) - 0.001:
        return None  # a report came in since this look was armed
    env.silent[mid] = now
    last = env.reports.get(mid)
    if last is None:
        return _silent(f"no report from the agent for {now - _since(env, mid):.0f} s (none since the server started)")
    return _silent(f"no report from the agent for {now - last:.0f} s")


def _silent(why: str) -> CheckResult:
    return CheckResult(False, 0, 0, int(ErrorCode.AGENT_SILENT), why)


def start(prepared: PreparedAgent, ctx: CheckContext, done: Callable[[CheckResult | None], None],
          timeout: float) -> Any:
    return ctx.env.loop.call_soon(done, decide(prepared, ctx))


async def check(prepared: PreparedAgent, ctx: CheckContext) -> CheckResult:
    """The coroutine form (tools): silent now, whatever the allowance."""
    return _silent("no report from the agent")
