"""What ``/metrics`` says of each monitor beyond its status: its newest check's outcome, HTTP
status and phases (blackbox_exporter's ``probe_*``), and its checks and failures counted since
the process started (Prometheus counters: a restart is a reset, which ``rate()`` expects).

Arrays indexed by monitor id (dense, like ``LastChecks``), updated per stored batch in a few
numpy calls: 19 bytes a monitor id. Phases are kept as ``recent.encode_latency`` codes (within
0.017% plus 1 µs), ``NO_PHASE`` where the check had none; ``ok`` is -1 until a monitor's first
check since the start (its status stands in for it until then).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.checkers.http import split_url
from core.models import Monitor
from core.services.recent import decode_latency, encode_latency

__all__ = ["NO_PHASE", "PHASES", "ProbeTable", "instance_of", "newest_rows"]

#: The batch columns of the phases, in the order kept.
PHASES = ("dns_us", "connect_us", "tls_us", "ttfb_us")
NO_PHASE = 65535  # (codes stop at 64,424: 2**31 µs)


def instance_of(monitor: Monitor) -> str | None:
    """What a monitor checks, as blackbox_exporter's ``instance`` shows a target: an HTTP URL
    without its user, password, query or fragment (they may hold secrets), ``host:port``, or
    the host. None for push and agent monitors (their only target is a secret token)."""
    spec = monitor.spec
    kind = monitor.type if spec is not None else None
    if kind == "http":
        try:
            scheme, _, host, port, path, _ = split_url(spec.url)  # type: ignore[union-attr]
        except ValueError:
            return None
        host = f"[{host}]" if host and ":" in host else host or ""
        return f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
    if kind in ("tcp", "tls"):
        host = spec.host  # type: ignore[union-attr]
        return f"[{host}]:{spec.port}" if ":" in host else f"{host}:{spec.port}"  # type: ignore[union-attr]
    if kind in ("dns", "ping"):
        return spec.host  # type: ignore[union-attr]
    return None


def newest_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of a batch's monitor ids (a monitor's later rows are its later checks): each monitor
    once, ascending, and the row of its newest check."""
    unique, first_in_reversed = np.unique(ids[::-1], return_index=True)
    return unique, len(ids) - 1 - first_in_reversed


def _grown(old: np.ndarray, size: int, fill: int) -> np.ndarray:
    grown = np.full((size, *old.shape[1:]), fill, dtype=old.dtype)
    grown[:len(old)] = old
    return grown


class ProbeTable:
    """Each monitor's newest outcome, HTTP status and phases, and its counts since the start."""

    def __init__(self) -> None:
        self._ok = np.full(0, -1, dtype=np.int8)
        self._code = np.zeros(0, dtype=np.int16)  # (0: none)
        self._phases = np.full((0, len(PHASES)), NO_PHASE, dtype=np.uint16)
        self._checks = np.zeros(0, dtype=np.uint32)
        self._failures = np.zeros(0, dtype=np.uint32)

    def _fit(self, top: int) -> None:
        if top < len(self._ok):
            return
        size = max(top + 1, 2 * len(self._ok), 1024)
        self._ok = _grown(self._ok, size, -1)
        self._code = _grown(self._code, size, 0)
        self._phases = _grown(self._phases, size, NO_PHASE)
        self._checks = _grown(self._checks, size, 0)
        self._failures = _grown(self._failures, size, 0)

    def note(self, batch: dict[str, Any]) -> None:
        """Take a stored batch (columns as ``ResultBuffer.flush`` gives them; a monitor's
        later rows are its later checks)."""
        ids = batch["monitor_id"]
        if not len(ids):
            return
        unique, last = newest_rows(ids)
        self._fit(int(unique[-1]))
        ok = np.asarray(batch["ok"], dtype=bool)
        self._ok[unique] = ok[last]
        self._code[unique] = np.clip(np.asarray(batch["status_code"])[last], 0, 32767)
        for column, name in enumerate(PHASES):
            values = np.asarray(batch[name])[last]
            self._phases[unique, column] = np.where(values < 0, NO_PHASE, encode_latency(values))
        np.add.at(self._checks, ids, 1)
        np.add.at(self._failures, ids[~ok], 1)

    def forget(self, monitor_id: int) -> None:
        if 0 <= monitor_id < len(self._ok):
            self._ok[monitor_id], self._code[monitor_id] = -1, 0
            self._phases[monitor_id] = NO_PHASE
            self._checks[monitor_id] = self._failures[monitor_id] = 0

    def gather(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Of each of ``ids``: ``ok`` (-1 unknown), ``code`` (0 none), ``phases`` (µs, -1
        none; one column per ``PHASES``), ``checks`` and ``failures``."""
        ids = np.asarray(ids, dtype=np.int64)
        self._fit(int(ids.max(initial=0)))
        codes = self._phases[ids]
        phases = np.where(codes == NO_PHASE, -1, decode_latency(codes))
        return {"ok": self._ok[ids], "code": self._code[ids], "phases": phases,
                "checks": self._checks[ids].astype(np.int64), "failures": self._failures[ids].astype(np.int64)}
