"""Each monitor's recent window, in memory: its last ``BARS`` checks (the heartbeat bar: ok
and latency) and its checks and up-checks per hour for the last ``HOURS`` hours (the 24 h
uptime of the monitors list). Pages read it without a database round trip: at scale, a
per-monitor question over raw ``checks`` scans every monitor's rows of the window (they are
stored in arrival order), which costs far more than a page may.

Arrays are indexed by monitor id (dense: a database sequence) and updated per batch in a few
numpy calls. A monitor's bars are a ring in arrival order: ``_next`` counts its checks so far,
so slot ``i`` is filled once ``i < _next`` (no timestamps kept: nothing shows them; a
monitor's exact recent checks are a history page); bit ``i`` of ``_ok`` is that slot's
outcome, and its latency is kept on a 16-bit logarithmic scale (``encode_latency``: exact
below 3 ms, within 0.017% plus 1 µs above, up to 2**31 µs). Hours are wall-clock hours
shared by every monitor, so slot ``hour % HOURS`` belongs to one hour at a time; ``_hour``
tracks the newest and slots of hours that have left the window are zeroed as it moves.
Each monitor has its checks an hour; its failed checks an hour only while it has any in the
window (a row of a pool, ``_fail_at``: most monitors never fail in a day, and a row is given
back once its failures have left the window); up = checks - failed. Checks an hour are
a byte a monitor (255: a check every 14 s) until a monitor has more in one hour; it then
counts in a 16-bit row of another pool (``_wide_at``), given back once no hour of the window
holds more than 255. Counts saturate at 65,535 an hour (a check every 55 ms). Memory:
``BARS * 2 + 16 + HOURS`` bytes per monitor id (100 bytes; 100 MB for a million monitors,
where 64-bit timestamps, 32-bit counts and latencies and a byte an outcome took 582), and
``HOURS * 2 + 8`` for each one that failed in the last day or is checked more often than every
14 s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BARS", "HOURS", "RecentWindow", "decode_latency", "encode_latency"]

BARS = 30
HOURS = 24
HOUR_US = 3600 * 10**6


#: Codes a unit of ln(1 + µs): 2**31 µs is code 64,424, and neighbouring codes differ by
#: 1/3000 of a latency (0.033%), so decoding is within 0.017% plus 1 µs (the rounding),
#: and exact below 2,999 µs.
_LOG_SCALE = 3000.0


def encode_latency(latency_us: np.ndarray) -> np.ndarray:
    """Latencies (µs, clipped to 0..2**31-1) as 16-bit codes on a logarithmic scale."""
    clipped = np.clip(np.asarray(latency_us, dtype=np.float64), 0, 2**31 - 1)
    return np.rint(np.log1p(clipped) * _LOG_SCALE).astype(np.uint16)


def decode_latency(codes: np.ndarray) -> np.ndarray:
    """The latencies (µs, int64) that ``encode_latency`` coded."""
    decoded = np.rint(np.expm1(np.asarray(codes, dtype=np.float64) / _LOG_SCALE))
    return np.minimum(decoded, 2**31 - 1).astype(np.int64)


def _grown(old: np.ndarray, rows: int) -> np.ndarray:
    """``old`` with zero rows added up to ``rows``. Only the old rows are written: the new
    ones stay pages the kernel has not handed out until a monitor of theirs is checked
    (``vstack`` of zeros wrote them all, so the room kept for ids to come was resident)."""
    grown = np.zeros((rows, *old.shape[1:]), dtype=old.dtype)
    grown[:len(old)] = old
    return grown


def _free_rows(pool: np.ndarray, of: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` free rows of a pool of rows (``of``: each row's monitor, -1 where free),
    the pool grown (at least doubling) when it has fewer: the pool, ``of``, the rows."""
    free = np.flatnonzero(of < 0)
    if len(free) < count:
        size = len(of)
        new = max(size + count - len(free), 2 * size, 64)
        pool = _grown(pool, new)
        of = np.concatenate([of, np.full(new - size, -1, dtype=np.int64)])
        free = np.flatnonzero(of < 0)
    return pool, of, free[:count]


class RecentWindow:
    """Recent checks and hourly counts per monitor (see the module's docstring)."""

    def __init__(self) -> None:
        self._latency = np.zeros((0, BARS), dtype=np.uint16)  # ``encode_latency`` codes
        self._ok = np.zeros(0, dtype=np.uint32)  # bit i: slot i's check was ok
        self._next = np.zeros(0, dtype=np.uint32)  # per monitor: checks noted so far (ring position)
        self._checks = np.zeros((0, HOURS), dtype=np.uint8)  # (0 while the monitor has a wide row)
        self._wide_at = np.zeros(0, dtype=np.int32)  # its row of ``_wide`` + 1 (0: none)
        self._wide = np.zeros((0, HOURS), dtype=np.uint16)  # (the pool of wide rows of checks)
        self._wide_of = np.zeros(0, dtype=np.int64)  # a wide row's monitor (-1: free)
        self._fail_at = np.zeros(0, dtype=np.int32)  # its row of ``_fails`` + 1 (0: none)
        self._fails = np.zeros((0, HOURS), dtype=np.uint16)  # (the pool of failure rows)
        self._fail_of = np.zeros(0, dtype=np.int64)  # a pool row's monitor (-1: free)
        self._hour = 0  # the newest hour (number since the epoch) in the window

    def fit(self, top: int) -> None:
        """Room for monitor ids up to ``top`` (at start, sized to it; later, doubling)."""
        size = len(self._next)
        if top < size:
            return
        new = max(top + 1, 2 * size, 1024)
        self._latency = _grown(self._latency, new)
        self._ok = _grown(self._ok, new)
        self._next = _grown(self._next, new)
        self._checks = _grown(self._checks, new)
        self._wide_at = _grown(self._wide_at, new)
        self._fail_at = _grown(self._fail_at, new)

    def _advance(self, hour: int) -> None:
        """Move the window's newest hour to ``hour``, emptying the slots of hours that left."""
        if hour <= self._hour:
            return
        for h in range(max(self._hour + 1, hour - HOURS + 1), hour + 1):
            self._checks[:, h % HOURS] = 0
            self._wide[:, h % HOURS] = 0
            self._fails[:, h % HOURS] = 0
        self._hour = hour
        clear = np.flatnonzero((self._fail_of >= 0) & ~self._fails.any(axis=1))
        self._fail_at[self._fail_of[clear]] = 0  # (their failures left the window)
        self._fail_of[clear] = -1
        narrow = np.flatnonzero((self._wide_of >= 0) & (self._wide.max(axis=1, initial=0) <= 255))
        owners = self._wide_of[narrow]  # (no hour left over 255: back to a byte an hour)
        self._checks[owners] = self._wide[narrow]
        self._wide_at[owners] = 0
        self._wide_of[narrow] = -1
        self._wide[narrow] = 0  # (a free row counts nothing: ``checks_per_hour`` sums them all)

    def note(self, batch: dict[str, Any], held: np.ndarray | None = None) -> None:
        """Take a stored batch's rows (columns ``monitor_id``, ``ts_us``, ``ok``, ``latency_us``);
        rows where ``held`` is true (checks made in maintenance) join the bars but not the
        hourly counts."""
        self.add(batch["monitor_id"], batch["ts_us"], batch["ok"], batch["latency_us"], held)

    def add(self, ids: np.ndarray, ts: np.ndarray, ok: np.ndarray, latency: np.ndarray,
            held: np.ndarray | None = None) -> None:
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        ts = np.asarray(ts, dtype=np.int64)
        ok = np.asarray(ok).astype(np.int8)
        latency = encode_latency(latency)
        self.fit(int(ids.max()))
        # hourly counts
        hours = ts // HOUR_US
        self._advance(int(hours.max()))
        keep = hours > self._hour - HOURS
        if held is not None:
            keep &= ~np.asarray(held, dtype=bool)
        self._count(ids[keep], hours[keep] % HOURS, np.ones(int(keep.sum()), dtype=np.int64), ok[keep])
        # the ring of recent checks: rows in (monitor, time) order, each placed after the
        # monitor's previous ones; of a monitor with more than BARS rows here, its newest BARS
        order = np.lexsort((ts, ids))
        ids, ok, latency = ids[order], ok[order], latency[order]
        unique, starts, counts = np.unique(ids, return_index=True, return_counts=True)
        rank = np.arange(len(ids)) - np.repeat(starts, counts)
        slot = (self._next[ids].astype(np.int64) + rank) % BARS
        self._next[unique] += counts.astype(np.uint32)
        newest = rank >= np.repeat(counts, counts) - BARS
        ids, ok, latency, slot = ids[newest], ok[newest], latency[newest], slot[newest]
        self._latency[ids, slot] = latency
        # (the outcome bits of a monitor's rows, merged per monitor: rows are still by monitor)
        first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        bits = np.left_shift(np.uint32(1), slot.astype(np.uint32))
        written = np.bitwise_or.reduceat(bits, first)
        good = np.bitwise_or.reduceat(np.where(ok != 0, bits, np.uint32(0)), first)
        self._ok[unique] = (self._ok[unique] & ~written) | good

    def _count(self, ids: np.ndarray, slots: np.ndarray, checks: np.ndarray, up: np.ndarray) -> None:
        """Add to the hourly counts, saturating (``np.add.at`` would wrap a uint16)."""
        if not len(ids):
            return
        keys, index = np.unique(ids * HOURS + slots, return_inverse=True)
        index = index.reshape(-1)
        owners, hours = keys // HOURS, keys % HOURS
        total = np.bincount(index, weights=checks, minlength=len(keys)).astype(np.int64)
        failed = total - np.bincount(index, weights=up, minlength=len(keys)).astype(np.int64)
        narrow = self._wide_at[owners] == 0
        over = narrow.copy()
        over[narrow] = self._checks[owners[narrow], hours[narrow]].astype(np.int64) + total[narrow] > 255
        if over.any():
            self._widen(np.unique(owners[over]))
            narrow = self._wide_at[owners] == 0
        (o, h), t = (owners[narrow], hours[narrow]), total[narrow]
        self._checks[o, h] = self._checks[o, h] + t  # (none over 255: those went wide above)
        wide = ~narrow
        rows, h = self._wide_at[owners[wide]] - 1, hours[wide]
        self._wide[rows, h] = np.minimum(self._wide[rows, h].astype(np.int64) + total[wide], 65_535)
        some = failed > 0
        if not some.any():
            return
        owners, hours, failed = owners[some], hours[some], failed[some]
        self._give_rows(np.unique(owners))
        rows = self._fail_at[owners] - 1
        self._fails[rows, hours] = np.minimum(self._fails[rows, hours].astype(np.int64) + failed, 65_535)

    def _widen(self, owners: np.ndarray) -> None:
        """A wide row for each of ``owners`` (unique, none wide yet), holding its counts so far."""
        self._wide, self._wide_of, rows = _free_rows(self._wide, self._wide_of, len(owners))
        self._wide[rows] = self._checks[owners]
        self._checks[owners] = 0
        self._wide_of[rows] = owners
        self._wide_at[owners] = rows + 1

    def _counted(self, monitor_id: int, slots: list[int] | slice) -> int:
        row = int(self._wide_at[monitor_id]) - 1
        return int(self._wide[row, slots].sum()) if row >= 0 else int(self._checks[monitor_id, slots].sum())

    def _give_rows(self, owners: np.ndarray) -> None:
        """A failure row for each of ``owners`` (ascending, unique) that has none."""
        owners = owners[self._fail_at[owners] == 0]
        if not len(owners):
            return
        self._fails, self._fail_of, rows = _free_rows(self._fails, self._fail_of, len(owners))
        self._fails[rows] = 0
        self._fail_of[rows] = owners
        self._fail_at[owners] = rows + 1

    def _failed(self, monitor_id: int, slots: list[int] | slice) -> int:
        row = int(self._fail_at[monitor_id]) - 1
        return int(self._fails[row, slots].sum()) if row >= 0 else 0

    def bars(self, monitor_id: int) -> list[tuple[bool, int]]:
        """The monitor's recent checks, oldest first: ``(ok, latency µs)``."""
        if not 0 <= monitor_id < len(self._next):
            return []
        n = int(self._next[monitor_id])
        bits, lat = int(self._ok[monitor_id]), decode_latency(self._latency[monitor_id]).tolist()
        order = range(n) if n < BARS else [*range(n % BARS, BARS), *range(n % BARS)]
        return [(bool(bits >> i & 1), lat[i]) for i in order]

    def checks_per_hour(self) -> float:
        """Checks an hour, every monitor together, over the window."""
        return float(self._checks.sum(dtype=np.int64) + self._wide.sum(dtype=np.int64)) / HOURS

    def uptime(self, monitor_id: int) -> tuple[int, int]:
        """``(checks, up)`` over the window's hours (the current one so far included)."""
        if not 0 <= monitor_id < len(self._next):
            return 0, 0
        checks = self._counted(monitor_id, slice(None))
        return checks, max(0, checks - self._failed(monitor_id, slice(None)))

    def since(self, monitor_id: int, hour_us: int) -> tuple[int, int]:
        """``(checks, up)`` of the window's hours from the one starting at ``hour_us`` on."""
        if not 0 <= monitor_id < len(self._next):
            return 0, 0
        first = max(hour_us // HOUR_US, self._hour - HOURS + 1)
        slots = [h % HOURS for h in range(first, self._hour + 1)]
        if not slots:
            return 0, 0
        checks = self._counted(monitor_id, slots)
        return checks, max(0, checks - self._failed(monitor_id, slots))

    def since_all(self, hour_us: int) -> tuple[np.ndarray, np.ndarray]:
        """``since`` of every monitor id at once: ``(checks, up)``, int64 arrays indexed by id."""
        first = max(hour_us // HOUR_US, self._hour - HOURS + 1)
        slots = [h % HOURS for h in range(first, self._hour + 1)]
        checks = self._checks[:, slots].sum(axis=1, dtype=np.int64)
        failed = np.zeros(len(checks), dtype=np.int64)
        if slots:
            wide = np.flatnonzero(self._wide_of >= 0)
            checks[self._wide_of[wide]] = self._wide[wide][:, slots].sum(axis=1, dtype=np.int64)
            fails = np.flatnonzero(self._fail_of >= 0)
            failed[self._fail_of[fails]] = self._fails[fails][:, slots].sum(axis=1, dtype=np.int64)
        return checks, np.maximum(0, checks - failed)

    def forget(self, monitor_id: int) -> None:
        if 0 <= monitor_id < len(self._next):
            self._next[monitor_id] = 0
            self._checks[monitor_id] = 0
            wide = int(self._wide_at[monitor_id]) - 1
            if wide >= 0:
                self._wide_at[monitor_id] = 0
                self._wide_of[wide] = -1
                self._wide[wide] = 0
            row = int(self._fail_at[monitor_id]) - 1
            if row >= 0:
                self._fail_at[monitor_id] = 0
                self._fail_of[row] = -1

    def load_hours(self, ids: np.ndarray, hours_us: np.ndarray, checks: np.ndarray, up: np.ndarray) -> None:
        """Hourly counts from the store (at start), for hours inside the window."""
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        hours = np.asarray(hours_us, dtype=np.int64) // HOUR_US
        self.fit(int(ids.max()))
        self._advance(int(hours.max()))
        keep = hours > self._hour - HOURS
        self._count(ids[keep], hours[keep] % HOURS, np.asarray(checks, dtype=np.int64)[keep],
                    np.asarray(up, dtype=np.int64)[keep])

    def load_bars(self, ids: np.ndarray, ts: np.ndarray, ok: np.ndarray, latency: np.ndarray) -> None:
        """Recent checks from the store (at start), without counting them into the hours
        (``load_hours`` did)."""
        self.add(ids, ts, ok, latency, held=np.ones(len(ids), dtype=bool))
