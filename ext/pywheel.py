"""Pure-Python twin of ``ext._wheel.TimingWheel``: same API, same algorithm, same output.

It is the oracle for the property tests and the fallback when the extension is not built.
Buckets are insertion-ordered dicts (O(1) unlink) instead of intrusive index lists.
"""

from __future__ import annotations

__all__ = ["TimingWheel"]


class _Node:
    __slots__ = ("bucket", "deadline", "ident", "period")

    def __init__(self, ident: int, deadline: int, period: int) -> None:
        self.ident = ident
        self.deadline = deadline
        self.period = period
        self.bucket = -1


class TimingWheel:
    """Hierarchical timing wheel; see the compiled ``ext._wheel.TimingWheel`` for the design."""

    def __init__(self, tick: int = 1, start: int = 0, slot_bits: int = 8, levels: int = 4) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        if slot_bits < 1 or slot_bits > 16:
            raise ValueError("slot_bits must be in 1..16")
        if levels < 2 or slot_bits * levels > 62:
            raise ValueError("levels must be >= 2 and slot_bits * levels <= 62")
        self._tick = tick
        self._bits = slot_bits
        self._levels = levels
        self._mask = (1 << slot_bits) - 1
        self._now = start
        self._cur = (start + 1) // tick
        self._expired = levels << slot_bits
        self._buckets: list[dict[int, _Node]] = [{} for _ in range(self._expired + 1)]
        self._level_count = [0] * levels
        self._index: dict[int, _Node] = {}

    @property
    def tick(self) -> int:
        return self._tick

    @property
    def now(self) -> int:
        """The time of the last ``advance`` (or ``start``)."""
        return self._now

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, ident: object) -> bool:
        return ident in self._index

    def deadline(self, ident: int) -> int | None:
        node = self._index.get(ident)
        return None if node is None else node.deadline

    def schedule(self, ident: int, deadline: int, period: int = 0) -> None:
        if period < 0:
            raise ValueError("period must be >= 0")
        node = self._index.get(ident)
        if node is None:
            node = _Node(ident, deadline, period)
            self._index[ident] = node
        else:
            self._unlink(node)
            node.deadline = deadline
            node.period = period
        self._place(node)

    def cancel(self, ident: int) -> bool:
        node = self._index.pop(ident, None)
        if node is None:
            return False
        self._unlink(node)
        return True

    def clear(self) -> None:
        for ident in list(self._index):
            self.cancel(ident)

    def advance(self, now: int) -> list[int]:
        if now < self._now:
            raise ValueError(f"time went backwards: {now} < {self._now}")
        self._now = now
        bits, levels, mask = self._bits, self._levels, self._mask
        now_tick = (now + 1) // self._tick
        fired: list[tuple[int, int]] = []
        rearm: list[_Node] = []
        self._fire_bucket(self._expired, fired, rearm)
        while self._cur < now_tick:
            cur = self._cur
            if cur & mask == 0:
                top = 0
                while top + 1 < levels and cur & ((1 << (bits * (top + 1))) - 1) == 0:
                    top += 1
                for level in range(top, 0, -1):
                    self._cascade(level)
            self._fire_bucket(cur & mask, fired, rearm)
            if self._level_count[0] == 0:
                level = 0
                while level + 1 < levels and self._level_count[level + 1] == 0:
                    level += 1
                if level == levels - 1:
                    self._cur = now_tick
                elif level == levels - 2:
                    self._cur = min(self._top_target(), now_tick)
                else:
                    step = bits * (level + 1)
                    self._cur = min(((cur >> step) + 1) << step, now_tick)
            else:
                self._cur = cur + 1
        for node in rearm:
            d, p = node.deadline, node.period
            nd = d + p
            if nd <= now:
                nd = d + p * ((now - d) // p + 1)
            node.deadline = nd
            self._place(node)
        fired.sort()
        return [ident for _, ident in fired]

    def _unlink(self, node: _Node) -> None:
        b = node.bucket
        if b < 0:
            return
        del self._buckets[b][node.ident]
        if b < self._expired:
            self._level_count[b >> self._bits] -= 1
        node.bucket = -1

    def _place(self, node: _Node) -> None:
        t = node.deadline // self._tick
        if t < self._cur:
            b = self._expired
        else:
            diff = t ^ self._cur
            level = 0
            while level < self._levels and diff >> (self._bits * (level + 1)):
                level += 1
            if level == self._levels:
                level = self._levels - 1
                digit = 0
            else:
                digit = (t >> (self._bits * level)) & self._mask
            b = (level << self._bits) + digit
            self._level_count[level] += 1
        node.bucket = b
        self._buckets[b][node.ident] = node

    def _top_target(self) -> int:
        top = self._levels - 1
        shift = self._bits * top
        lap_shift = self._bits * self._levels
        lap = self._cur >> lap_shift
        for digit in range(((self._cur >> shift) & self._mask) + 1, self._mask + 1):
            if self._buckets[(top << self._bits) + digit]:
                return (lap << lap_shift) | (digit << shift)
        overflow = self._buckets[top << self._bits]
        best = lap + 1
        if overflow:
            best = max(best, min((n.deadline // self._tick) >> lap_shift for n in overflow.values()))
        return best << lap_shift

    def _cascade(self, level: int) -> None:
        b = (level << self._bits) + ((self._cur >> (self._bits * level)) & self._mask)
        nodes = self._buckets[b]
        self._buckets[b] = {}
        self._level_count[level] -= len(nodes)
        for node in nodes.values():
            self._place(node)

    def _fire_bucket(self, b: int, fired: list[tuple[int, int]], rearm: list[_Node]) -> None:
        nodes = self._buckets[b]
        if not nodes:
            return
        self._buckets[b] = {}
        if b < self._expired:
            self._level_count[b >> self._bits] -= len(nodes)
        for node in nodes.values():
            fired.append((node.deadline, node.ident))
            node.bucket = -1
            if node.period > 0:
                rearm.append(node)
            else:
                del self._index[node.ident]
