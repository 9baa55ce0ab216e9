"""The main process's monitors: every one as ``core.models.packed`` bytes by id, and beside
them, in arrays by id, what faces filter and count on (status, kind, account, paused) and the
names they search. A decoded ``Monitor`` for each of a million monitors held about 0.9 KB of
objects in the main process; packed, one takes about 100 bytes. The packed bytes and the names
are kept in two ``_Arena``s (one buffer each, not a Python object a monitor: 33 and 49 bytes
of object header each, and a list slot, for every monitor).

Reading a monitor builds a new object with the table's live status: nobody changes the table
through what they read, only through ``put``, ``set_status`` and ``pop``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from core.models import KINDS, STATUSES, Monitor
from core.models.packed import Blobs, MonitorBatch, pack, unpack

__all__ = ["MonitorTable"]

_KIND_NAMES = tuple(KINDS)
_KIND_CODES = {kind: i for i, kind in enumerate(_KIND_NAMES)}
_STATUS_CODES = {status: i for i, status in enumerate(STATUSES)}
_NO_KIND = 255


class _Arena:
    """Byte strings by id in one buffer. A ``put`` appends (a replaced string's bytes stay
    behind as garbage); once garbage is more than half the buffer and over a megabyte, the
    live strings are copied into a new one, so the buffer stays within twice what is live
    and each byte put is copied at most once more on average."""

    _COMPACT_ABOVE = 1 << 20

    def __init__(self) -> None:
        self._buf = bytearray()
        self._at = np.zeros(0, dtype=np.int64)
        self._size = np.full(0, -1, dtype=np.int32)  # -1: none
        self._garbage = 0

    def fit(self, size: int) -> None:
        old = len(self._size)
        if size > old:
            self._at = np.concatenate([self._at, np.zeros(size - old, dtype=np.int64)])
            self._size = np.concatenate([self._size, np.full(size - old, -1, dtype=np.int32)])

    def put(self, i: int, data: bytes) -> None:
        old = self._size.item(i)
        if old >= 0:
            self._garbage += old
        self._at[i] = len(self._buf)
        self._size[i] = len(data)
        self._buf += data
        if self._garbage > self._COMPACT_ABOVE and 2 * self._garbage > len(self._buf):
            self._compact()

    def put_many(self, ids: np.ndarray, blobs: Blobs) -> None:
        """``put`` of ``blobs[j]`` at ``ids[j]`` for every ``j`` (ids distinct), in one copy."""
        old = self._size[ids]
        self._garbage += int(old[old >= 0].sum())
        base = len(self._buf) - blobs.offsets.item(0)
        self._at[ids] = blobs.offsets[:-1] + base
        self._size[ids] = np.diff(blobs.offsets).astype(np.int32)
        self._buf += blobs.data[blobs.offsets.item(0):blobs.offsets.item(len(blobs))]
        if self._garbage > self._COMPACT_ABOVE and 2 * self._garbage > len(self._buf):
            self._compact()

    def pop(self, i: int) -> None:
        old = self._size.item(i)
        if old >= 0:
            self._garbage += old
            self._size[i] = -1

    def get(self, i: int) -> bytes | None:
        size = self._size.item(i) if 0 <= i < len(self._size) else -1
        if size < 0:
            return None
        at = self._at.item(i)
        with memoryview(self._buf) as view:  # (released at once: a bytearray cannot grow while viewed)
            return view[at:at + size].tobytes()

    def _compact(self) -> None:
        """The live strings into a new buffer, one at a time (at most the old and the new
        buffer at once: a view a string, all held, cost more than the strings)."""
        live = np.flatnonzero(self._size >= 0)
        at, size = self._at[live], self._size[live].astype(np.int64)
        packed = bytearray()
        with memoryview(self._buf) as view:
            for a, n in zip(at.tolist(), size.tolist(), strict=True):
                packed += view[a:a + n]
        self._buf = packed
        self._at[live] = np.cumsum(size) - size
        self._garbage = 0


class MonitorTable(Mapping[int, Monitor]):
    """Every monitor of the main process (see the module docstring). Ids are dense (a
    database sequence): the columns are indexed by id. Iteration is by id, ascending."""

    def __init__(self, monitors: Iterable[Monitor] = ()) -> None:
        self._packed = _Arena()
        self._names = _Arena()  # (UTF-8)
        self._held = np.zeros(0, dtype=np.bool_)
        self._revision = np.zeros(0, dtype=np.int64)
        self._revisions = 0  # (the last revision handed out)
        self._status = np.zeros(0, dtype=np.uint8)
        self._kind = np.zeros(0, dtype=np.uint8)
        self._paused = np.zeros(0, dtype=np.bool_)
        self._account = np.zeros(0, dtype=np.int64)
        self._tags: dict[int, tuple[str, ...]] = {}  # (only monitors that have tags)
        self._odd_status: dict[int, str] = {}  # (a status outside STATUSES: none expected)
        self._count = 0
        for monitor in monitors:
            self.put(monitor)

    def _fit(self, monitor_id: int) -> None:
        size = len(self._held)
        if monitor_id < size:
            return
        new = max(monitor_id + 1, size + size // 2, 1024)
        self._packed.fit(new)
        self._names.fit(new)
        for name in ("_held", "_status", "_kind", "_paused", "_account", "_revision"):
            old = getattr(self, name)
            grown = np.zeros(new, dtype=old.dtype)
            grown[:size] = old
            setattr(self, name, grown)

    # changes -----------------------------------------------------------------------------
    def put(self, monitor: Monitor) -> None:
        """Add or replace a monitor (its status too)."""
        mid = monitor.id
        if mid < 0:
            raise ValueError(f"monitor id {mid} cannot be held")
        self._fit(mid)
        if not self._held[mid]:
            self._count += 1
        self._packed.put(mid, pack(monitor, name=False))  # (the name is in ``_names``)
        self._held[mid] = True
        self._revisions += 1
        self._revision[mid] = self._revisions
        self._names.put(mid, monitor.name.encode())
        kind = monitor.spec.kind if monitor.spec is not None else None
        self._kind[mid] = _KIND_CODES.get(kind, _NO_KIND) if kind is not None else _NO_KIND
        self._paused[mid] = monitor.paused
        self._account[mid] = monitor.account_id
        if monitor.tags:
            self._tags[mid] = tuple(monitor.tags)
        else:
            self._tags.pop(mid, None)
        self.set_status(mid, monitor.status)

    @classmethod
    def from_batches(cls, batches: Iterable[MonitorBatch]) -> MonitorTable:
        """A table of stored monitors as the store reads them out in columns
        (``monitor_batches``): a million in about a second, no ``Monitor`` built."""
        table = cls()
        for batch in batches:
            table.put_batch(batch)
        return table

    def put_batch(self, batch: MonitorBatch) -> None:
        """``put`` of every monitor of ``batch`` (ids distinct), column by column."""
        ids = np.asarray(batch.ids, dtype=np.int64)
        if not len(ids):
            return
        if int(ids.min()) < 0:
            raise ValueError("monitor ids cannot be negative")
        self._fit(int(ids.max()))
        replaced = ids[self._held[ids]]
        self._count += len(ids) - len(replaced)
        self._packed.put_many(ids, batch.packed)
        self._names.put_many(ids, batch.names)
        self._held[ids] = True
        self._revision[ids] = np.arange(self._revisions + 1, self._revisions + 1 + len(ids))
        self._revisions += len(ids)
        self._kind[ids] = [_KIND_CODES.get(kind, _NO_KIND) for kind in batch.kinds]
        self._paused[ids] = batch.paused
        self._account[ids] = batch.accounts
        for mid in replaced.tolist():
            self._tags.pop(mid, None)
            self._odd_status.pop(mid, None)
        self._tags.update(batch.tags)
        codes = [_STATUS_CODES.get(status, -1) for status in batch.statuses]
        for at in (i for i, code in enumerate(codes) if code < 0):
            self._odd_status[int(ids[at])] = batch.statuses[at]
            codes[at] = 0
        self._status[ids] = codes

    def set_status(self, monitor_id: int, status: str) -> None:
        if monitor_id not in self:
            return
        code = _STATUS_CODES.get(status)
        if code is None:
            self._odd_status[monitor_id] = status
        else:
            self._odd_status.pop(monitor_id, None)
            self._status[monitor_id] = code

    def pop(self, monitor_id: int, default: Any = None) -> Any:
        """Remove a monitor; the monitor it was, or ``default``."""
        if monitor_id not in self:
            return default
        monitor = self[monitor_id]
        self._packed.pop(monitor_id)
        self._names.pop(monitor_id)
        self._held[monitor_id] = False
        self._tags.pop(monitor_id, None)
        self._odd_status.pop(monitor_id, None)
        self._count -= 1
        return monitor

    # reads ---------------------------------------------------------------------------------
    def __getitem__(self, monitor_id: int) -> Monitor:
        packed = self._packed.get(monitor_id)
        if packed is None:
            raise KeyError(monitor_id)
        monitor = unpack(packed, self.status(monitor_id))
        monitor.name = self.name(monitor_id)
        return monitor

    def __contains__(self, monitor_id: object) -> bool:
        return isinstance(monitor_id, int) and 0 <= monitor_id < len(self._held) and bool(self._held[monitor_id])

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids())

    def packed(self, monitor_id: int) -> bytes:
        """The monitor as ``pack`` wrote it without its name (workers need none; ``name`` has
        it), and with its status then (``status`` says the live one)."""
        packed = self._packed.get(monitor_id)
        if packed is None:
            raise KeyError(monitor_id)
        return packed

    def revisions_and_statuses(self, ids: list[int]) -> tuple[list[int], list[str]]:
        """For held ``ids``: each one's revision (a number no other ``put`` of any monitor
        had: it changes with every ``put``, not with a status) and live status, in two gathers
        (a page's worth at once)."""
        if not ids:
            return [], []
        statuses = [STATUSES[code] for code in self._status[ids].tolist()]
        for at, mid in enumerate(ids) if self._odd_status else ():
            statuses[at] = self._odd_status.get(mid, statuses[at])
        return self._revision[ids].tolist(), statuses

    def status(self, monitor_id: int) -> str:
        odd = self._odd_status.get(monitor_id)
        return odd if odd is not None else STATUSES[self._status.item(monitor_id)]

    def name(self, monitor_id: int) -> str:
        name = self._names.get(monitor_id)
        if name is None:
            raise KeyError(monitor_id)
        return name.decode()

    def kind(self, monitor_id: int) -> str | None:
        code = self._kind.item(monitor_id)
        return None if code == _NO_KIND else _KIND_NAMES[code]

    def account(self, monitor_id: int) -> int:
        return self._account.item(monitor_id)

    def paused(self, monitor_id: int) -> bool:
        return bool(self._paused.item(monitor_id))

    def tags(self, monitor_id: int) -> tuple[str, ...]:
        return self._tags.get(monitor_id, ())

    def _held_of(self, ids: list[int]) -> np.ndarray:
        chosen = np.asarray(ids, dtype=np.int64)
        inside = (chosen >= 0) & (chosen < len(self._held))
        chosen = chosen[inside]
        return chosen[self._held[chosen]]

    def ids(self) -> list[int]:
        """Every held id, ascending."""
        return np.flatnonzero(self._held).tolist()

    def top(self) -> int:
        """The highest held id (-1: none)."""
        held = np.flatnonzero(self._held)
        return int(held[-1]) if len(held) else -1

    def ids_by_account(self) -> dict[int, array[int]]:
        """account id -> its monitors' ids, ascending (C int64s: a million monitors' ids as
        Python ints in lists took 40 bytes each, as an ``array`` 8)."""
        held = np.flatnonzero(self._held)
        accounts = self._account[held]
        order = np.argsort(accounts, kind="stable")  # (stable: ids stay ascending within one)
        held, accounts = held[order], accounts[order]
        cuts = np.flatnonzero(np.diff(accounts)) + 1
        return {int(group_accounts[0]): array("q", group.astype(np.int64).tobytes())
                for group, group_accounts in zip(np.split(held, cuts), np.split(accounts, cuts), strict=True)
                if len(group)}

    def of_kinds(self, kinds: Iterable[str]) -> list[int]:
        """The ids of monitors of these kinds, ascending."""
        codes = [_KIND_CODES[k] for k in kinds if k in _KIND_CODES]
        return np.flatnonzero(self._held & np.isin(self._kind, codes)).tolist()

    def select(self, ids: list[int], *, status: str | None = None, kind: str | None = None,
               tag: str | None = None, q: str | None = None) -> list[int]:
        """The ``ids`` (held ones, in the order given) whose monitor has this status, kind,
        tag, and a name containing ``q`` (any case); from the columns, no monitor built."""
        chosen = self._held_of(ids)
        if status is not None:
            code = _STATUS_CODES.get(status)
            keep = self._status[chosen] == code if code is not None else np.zeros(len(chosen), dtype=np.bool_)
            if self._odd_status:
                keep |= np.asarray([self._odd_status.get(i) == status for i in chosen.tolist()], dtype=np.bool_)
            chosen = chosen[keep]
        if kind is not None:
            chosen = chosen[self._kind[chosen] == _KIND_CODES[kind]] if kind in _KIND_CODES else chosen[:0]
        out = chosen.tolist()
        if tag is not None:
            out = [i for i in out if tag in self._tags.get(i, ())]
        if q is not None:
            needle, name = q.lower(), self.name
            out = [i for i in out if needle in name(i).lower()]
        return out

    def status_counts(self, ids: list[int]) -> dict[str, int]:
        """How many of ``ids`` (held ones) are in each status (only statuses that occur)."""
        chosen = self._held_of(ids)
        counts = np.bincount(self._status[chosen], minlength=len(STATUSES)) if len(chosen) else \
            np.zeros(len(STATUSES), dtype=np.int64)
        out = {STATUSES[code]: int(n) for code, n in enumerate(counts.tolist()) if n}
        odd = set(chosen.tolist()) & self._odd_status.keys() if self._odd_status else ()
        for mid in odd:  # (counted under their code above: moved)
            status = self._odd_status[mid]
            held = STATUSES[self._status.item(mid)]
            out[held] -= 1
            if not out[held]:
                del out[held]
            out[status] = out.get(status, 0) + 1
        return out
