"""What a server agent reports (``POST /api/agent/{token}/report``), and how a report is
judged against its monitor's thresholds.

A report is one JSON object, or a list of them (an agent sending the backlog it kept while the
server was unreachable); either way at most 64 KiB. Every field is bounded, so a report costs
the same to store whoever sends it: at most ``MAX_DISKS`` filesystems, names of at most 256
characters, no other field. ``ts`` (Unix seconds, when the agent measured) defaults to the
time it arrives; reports of one monitor are kept in time order, and one not newer than the
last stored is a duplicate (acknowledged, not stored again: an agent that resends a batch
whose answer it lost must not count twice).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from core.models import FieldError

__all__ = ["MAX_DISKS", "MAX_REPORT_BYTES", "AgentDisk", "AgentMemory", "AgentNetwork", "AgentReport",
           "breaches", "decode_reports", "disk_percent", "used_percent"]

MAX_REPORT_BYTES = 64 * 1024
MAX_DISKS = 64
MAX_BATCH = 500

Bytes = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=1e13)]
Text = Annotated[str, msgspec.Meta(max_length=256)]
Load = Annotated[float, msgspec.Meta(ge=0, le=1e6)]


class AgentMemory(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    used_bytes: Bytes
    total_bytes: Bytes


class AgentDisk(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    mount: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    used_bytes: Bytes
    total_bytes: Bytes


class AgentNetwork(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    rx_bytes_per_s: Rate
    tx_bytes_per_s: Rate


class AgentReport(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """One sample of a server. Only ``cpuPercent`` and ``memory`` are required (what every
    platform can tell); the rest is shown and charted when present."""

    cpu_percent: Annotated[float, msgspec.Meta(ge=0, le=100)]
    memory: AgentMemory
    ts: Annotated[float, msgspec.Meta(gt=0, lt=1e11)] | None = None
    hostname: Text | None = None
    os: Text | None = None
    uptime_s: Annotated[float, msgspec.Meta(ge=0, le=2**40)] | None = None  # (stored in whole seconds)
    load: Annotated[list[Load], msgspec.Meta(min_length=3, max_length=3)] | None = None
    swap: AgentMemory | None = None
    disks: Annotated[list[AgentDisk], msgspec.Meta(max_length=MAX_DISKS)] = []
    network: AgentNetwork | None = None
    processes: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] | None = None
    version: Text | None = None

    @property
    def memory_percent(self) -> float:
        return _percent(self.memory.used_bytes, self.memory.total_bytes)


_ONE = msgspec.json.Decoder(AgentReport)
_MANY = msgspec.json.Decoder(Annotated[list[AgentReport], msgspec.Meta(min_length=1, max_length=MAX_BATCH)])


def decode_reports(body: bytes) -> list[AgentReport]:
    """The report(s) in ``body``, or ``ValueError`` with the field at fault (``memory.usedBytes``,
    ``[3].cpuPercent``) as a ``FieldError``."""
    stripped = body.lstrip()
    try:
        if stripped[:1] == b"[":
            return _MANY.decode(body)
        return [_ONE.decode(body)]
    except msgspec.ValidationError as exc:
        raise ReportError(_field_error(str(exc))) from None
    except msgspec.DecodeError:
        raise ReportError(FieldError("body", "must be a JSON report object, or a list of them")) from None


class ReportError(ValueError):
    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message)
        self.error = error


def _field_error(text: str) -> FieldError:
    """msgspec's ``Expected `int`, got `str` - at `$[2].memory.usedBytes``` as a field error."""
    message, _, where = text.partition(" - at `")
    field = where.rstrip("`").removeprefix("$").removeprefix(".") or "body"
    if message.startswith("Object contains unknown field"):
        name = message.split("`")[1]
        field, message = (f"{field}.{name}" if field != "body" else name), "unknown field"
    elif message.startswith("Object missing required field"):
        name = message.split("`")[1]
        field, message = (f"{field}.{name}" if field != "body" else name), "is required"
    return FieldError(field, message)


def used_percent(used: int | None, total: int | None) -> float | None:
    """``used`` of ``total`` in percent; None when either is missing or ``total`` is 0 (a
    host without swap)."""
    return 100.0 * used / total if used is not None and total else None


def _percent(used: int, total: int) -> float:
    return used_percent(used, total) or 0.0


def disk_percent(disk: AgentDisk) -> float:
    return _percent(disk.used_bytes, disk.total_bytes)


def breaches(report: AgentReport, cpu: float | None, memory: float | None, disk: float | None,
             load1: float | None) -> str | None:
    """Why ``report`` is over its thresholds (``disk / at 95% > 90%``; several joined with
    ``; ``), or None when it is within them. A threshold is crossed when the value exceeds it."""
    reasons = []
    if cpu is not None and report.cpu_percent > cpu:
        reasons.append(f"cpu at {report.cpu_percent:.0f}% > {cpu:g}%")
    if memory is not None and (used := report.memory_percent) > memory:
        reasons.append(f"memory at {used:.0f}% > {memory:g}%")
    if disk is not None:
        for d in report.disks:
            if (used := disk_percent(d)) > disk:
                reasons.append(f"disk {d.mount} at {used:.0f}% > {disk:g}%")
    if load1 is not None and report.load is not None and report.load[0] > load1:
        reasons.append(f"load {report.load[0]:.2f} > {load1:g}")
    return "; ".join(reasons)[:500] if reasons else None
