# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Hierarchical timing wheel (compiled). The design is in ``TimingWheel.__doc__``."""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport qsort

from ext._idmap cimport id_hash, idmap_free, idmap_get, idmap_init, idmap_pop, idmap_put

cdef enum:
    _EXPIRED_MARK = -2

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define XUPTIME_PREFETCH(p) __builtin_prefetch((const void *)(p))
    #else
    #define XUPTIME_PREFETCH(p) ((void)0)
    #endif
    """
    void XUPTIME_PREFETCH(const void *p) noexcept nogil


cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef int _cmp_fired(const void *a, const void *b) noexcept nogil:
    cdef const Fired *x = <const Fired *>a
    cdef const Fired *y = <const Fired *>b
    if x.deadline < y.deadline:
        return -1
    if x.deadline > y.deadline:
        return 1
    if x.ident < y.ident:
        return -1
    if x.ident > y.ident:
        return 1
    return 0


cdef class TimingWheel:
    """Hierarchical hashed timing wheel driven by an external clock.

    Time is an integer in the caller's unit (the scheduler uses milliseconds). The wheel never
    reads a clock: ``advance(now)`` moves it, which keeps tests deterministic.

    Layout (defaults ``tick=1``, ``slot_bits=8``, ``levels=4``): every level has
    ``2**slot_bits`` slots; a slot of level ``l`` spans ``tick * 2**(slot_bits*l)`` units::

        level  slot width         level range (1 ms tick)
        0      1 tick             256 ms
        1      256 ticks          65.5 s
        2      65,536 ticks       4.66 h
        3      16.7M ticks        49.7 days

    An entry whose deadline tick ``t`` agrees with the current tick ``cur`` on every digit above
    level ``l`` lives in level ``l``, slot ``(t >> slot_bits*l) & mask``. When ``cur`` enters a new
    slot of level ``l`` that slot is cascaded: its entries are re-placed, one level down or
    more. A deadline beyond the top level's range (overflow) is parked in the top-level slot
    that is reached last and re-placed each time that slot is cascaded, so any int64 deadline
    works. A deadline whose tick is already processed goes to an "expired" bucket that fires
    on the very next ``advance``, even one with the same ``now``.

    Firing contract: an entry fires on the first ``advance(now)`` with ``now`` at or past the
    last unit of its deadline's tick: never before its deadline, at most ``tick - 1`` units
    after it (exact when ``tick == 1``). ``advance`` returns the fired ids sorted by
    ``(deadline, id)``. An entry with ``period > 0`` is re-armed at ``deadline + period``
    (skipping whole periods that are already past, keeping its phase) and fires at most once
    per ``advance``.

    Costs: ``schedule``, re-``schedule`` and ``cancel`` are O(1): an id lookup in a C
    open-addressing table (load <= 1/2, Fibonacci hashing, backward-shift deletion) plus
    linking into an intrusive doubly linked bucket (slot count a power of two, indexing a mask).
    ``advance`` is O(ticks stepped + entries fired + entries cascaded); runs of ticks with
    nothing in the lower levels are skipped a whole slot at a time, so a long idle jump costs
    O(levels * slots). Each entry cascades at most ``levels - 1`` times per lap.

    Threading: none. One wheel per event loop; calls must not interleave across threads.
    """

    def __cinit__(self, int64_t tick=1, int64_t start=0, int slot_bits=8, int levels=4):
        if tick <= 0:
            raise ValueError("tick must be positive")
        if slot_bits < 1 or slot_bits > 16:
            raise ValueError("slot_bits must be in 1..16")
        if levels < 2 or slot_bits * levels > 62:
            raise ValueError("levels must be >= 2 and slot_bits * levels <= 62")
        self._tick = tick
        self._bits = slot_bits
        self._levels = levels
        self._mask = (<int64_t>1 << slot_bits) - 1
        self._now = start
        self._cur = _floordiv(start + 1, tick)
        cdef Py_ssize_t nbuckets = (<Py_ssize_t>levels << slot_bits) + 1
        self._heads = <int32_t *>PyMem_Malloc(nbuckets * sizeof(int32_t))
        self._level_count = <int64_t *>PyMem_Malloc(levels * sizeof(int64_t))
        self._capacity = 1024
        self._nodes = <Node *>PyMem_Malloc(self._capacity * sizeof(Node))
        self._fired_cap = 256
        self._fired = <Fired *>PyMem_Malloc(self._fired_cap * sizeof(Fired))
        if not self._heads or not self._level_count or not self._nodes or not self._fired:
            raise MemoryError()
        cdef Py_ssize_t i
        for i in range(nbuckets):
            self._heads[i] = -1
        for i in range(levels):
            self._level_count[i] = 0
        for i in range(self._capacity):
            self._nodes[i].next = <int32_t>(i + 1) if i + 1 < self._capacity else -1
            self._nodes[i].slot = -1
        self._free = 0
        idmap_init(&self._ids)
        self._fired_len = 0
        self._rearm_head = -1

    def __dealloc__(self):
        PyMem_Free(self._heads)
        PyMem_Free(self._level_count)
        PyMem_Free(self._nodes)
        PyMem_Free(self._fired)
        idmap_free(&self._ids)

    @property
    def tick(self) -> int:
        return self._tick

    @property
    def now(self) -> int:
        """The time of the last ``advance`` (or ``start``)."""
        return self._now

    def __len__(self) -> int:
        return self._ids.size

    def __contains__(self, ident) -> bool:
        try:
            return idmap_get(&self._ids, ident) != -1
        except (TypeError, OverflowError):
            return False

    def deadline(self, int64_t ident):
        """The pending deadline of ``ident``, or None when it is not scheduled."""
        cdef int32_t n = idmap_get(&self._ids, ident)
        if n == -1:
            return None
        return self._nodes[n].deadline

    def schedule(self, int64_t ident, int64_t deadline, int64_t period=0) -> None:
        """Arm ``ident`` at ``deadline``, replacing any pending deadline it has."""
        if period < 0:
            raise ValueError("period must be >= 0")
        cdef int32_t n = idmap_get(&self._ids, ident)
        if n == -1:
            n = self._alloc()
            idmap_put(&self._ids, ident, n)
        else:
            self._unlink(n)
        self._nodes[n].ident = ident
        self._nodes[n].deadline = deadline
        self._nodes[n].period = period
        self._place(n)

    def cancel(self, int64_t ident) -> bool:
        """Disarm ``ident``; returns whether it was scheduled."""
        cdef int32_t n = idmap_get(&self._ids, ident)
        if n == -1:
            return False
        idmap_pop(&self._ids, ident)
        self._unlink(n)
        self._nodes[n].slot = -1
        self._nodes[n].next = self._free
        self._free = n
        return True

    def clear(self) -> None:
        """Cancel everything."""
        cdef int64_t i
        idents = [self._ids.table[i].key for i in range(self._ids.mask + 1) if self._ids.table[i].value != -1]
        for ident in idents:
            self.cancel(ident)

    def advance(self, int64_t now) -> list:
        """Move time to ``now`` and return the ids that fired, sorted by (deadline, id)."""
        if now < self._now:
            raise ValueError("time went backwards: %d < %d" % (now, self._now))
        self._now = now
        self._fired_len = 0
        cdef int64_t nbits = self._bits
        cdef int64_t nslots = <int64_t>1 << nbits
        cdef int64_t now_tick = _floordiv(now + 1, self._tick)
        cdef int64_t step, nxt
        cdef int level, top
        self._fire_bucket(<int32_t>(self._levels * nslots))
        while self._cur < now_tick:
            if self._cur & self._mask == 0:
                top = 0
                while top + 1 < self._levels and (self._cur & ((<int64_t>1 << (nbits * (top + 1))) - 1)) == 0:
                    top += 1
                level = top
                while level >= 1:
                    self._cascade(level)
                    level -= 1
            self._fire_bucket(<int32_t>(self._cur & self._mask))
            if self._level_count[0] == 0:
                level = 0
                while level + 1 < self._levels and self._level_count[level + 1] == 0:
                    level += 1
                if level == self._levels - 1:
                    self._cur = now_tick
                elif level == self._levels - 2:
                    nxt = self._top_target()
                    self._cur = nxt if nxt < now_tick else now_tick
                else:
                    step = nbits * (level + 1)
                    nxt = ((self._cur >> step) + 1) << step
                    self._cur = nxt if nxt < now_tick else now_tick
            else:
                self._cur += 1
        cdef int32_t n = self._rearm_head
        cdef int32_t following
        cdef int64_t d, p, nd
        self._rearm_head = -1
        while n != -1:
            following = self._nodes[n].next
            d = self._nodes[n].deadline
            p = self._nodes[n].period
            nd = d + p
            if nd <= now:
                nd = d + p * ((now - d) // p + 1)
            self._nodes[n].deadline = nd
            self._place(n)
            n = following
        return self._collect()

    cdef list _collect(self):
        cdef Py_ssize_t i
        cdef bint ordered = True
        for i in range(1, self._fired_len):
            if _cmp_fired(&self._fired[i - 1], &self._fired[i]) > 0:
                ordered = False
                break
        if not ordered:
            qsort(self._fired, self._fired_len, sizeof(Fired), _cmp_fired)
        out = [None] * self._fired_len
        for i in range(self._fired_len):
            out[i] = self._fired[i].ident
        self._fired_len = 0
        return out

    # nodes ------------------------------------------------------------------------------
    cdef int32_t _alloc(self) except -1:
        cdef int32_t n, i, old
        cdef Node *grown
        if self._free == -1:
            old = self._capacity
            if old >= 0x3FFFFFFF:
                raise MemoryError("timing wheel is full")
            grown = <Node *>PyMem_Realloc(self._nodes, 2 * old * sizeof(Node))
            if not grown:
                raise MemoryError()
            self._nodes = grown
            self._capacity = 2 * old
            for i in range(old, self._capacity):
                self._nodes[i].next = i + 1 if i + 1 < self._capacity else -1
                self._nodes[i].slot = -1
            self._free = old
        n = self._free
        self._free = self._nodes[n].next
        return n

    cdef void _link(self, int32_t n) noexcept:
        cdef int32_t b = self._nodes[n].slot
        cdef int32_t head = self._heads[b]
        self._nodes[n].prev = -1
        self._nodes[n].next = head
        if head != -1:
            self._nodes[head].prev = n
        self._heads[b] = n
        if b < (self._levels << self._bits):
            self._level_count[b >> self._bits] += 1

    cdef void _unlink(self, int32_t n) noexcept:
        cdef int32_t b = self._nodes[n].slot
        cdef int32_t p = self._nodes[n].prev
        cdef int32_t x = self._nodes[n].next
        if b < 0:
            return
        if p != -1:
            self._nodes[p].next = x
        else:
            self._heads[b] = x
        if x != -1:
            self._nodes[x].prev = p
        if b < (self._levels << self._bits):
            self._level_count[b >> self._bits] -= 1

    cdef void _place(self, int32_t n) noexcept:
        cdef int64_t t = _floordiv(self._nodes[n].deadline, self._tick)
        cdef int64_t diff
        cdef int level = 0
        cdef int64_t digit
        if t < self._cur:
            self._nodes[n].slot = <int32_t>(self._levels << self._bits)
        else:
            diff = t ^ self._cur
            while level < self._levels and (diff >> (self._bits * (level + 1))) != 0:
                level += 1
            if level == self._levels:
                # Overflow: top-level slot 0 never holds a current-lap entry and is cascaded
                # at the start of every lap, when the entry is placed again.
                level = self._levels - 1
                digit = 0
            else:
                digit = (t >> (self._bits * level)) & self._mask
            self._nodes[n].slot = <int32_t>((level << self._bits) + digit)
        self._link(n)

    cdef int64_t _top_target(self) noexcept:
        """Where to jump when only the top level holds entries: the start of the next
        non-empty top slot of this lap, else the start of the earliest overflow lap."""
        cdef int top = self._levels - 1
        cdef int64_t shift = self._bits * top
        cdef int64_t lap_shift = self._bits * self._levels
        cdef int64_t digit = ((self._cur >> shift) & self._mask) + 1
        cdef int64_t lap = self._cur >> lap_shift
        cdef int64_t best, t
        cdef int32_t n
        while digit <= self._mask:
            if self._heads[(top << self._bits) + digit] != -1:
                return (lap << lap_shift) | (digit << shift)
            digit += 1
        best = lap + 1
        n = self._heads[top << self._bits]
        if n != -1:
            best = 0x7FFFFFFFFFFFFFFF >> lap_shift
            while n != -1:
                t = _floordiv(self._nodes[n].deadline, self._tick) >> lap_shift
                if t < best:
                    best = t
                n = self._nodes[n].next
            if best < lap + 1:
                best = lap + 1
        return best << lap_shift

    cdef int _cascade(self, int level) except -1:
        cdef int32_t b = <int32_t>((level << self._bits) + ((self._cur >> (self._bits * level)) & self._mask))
        cdef int32_t n = self._heads[b]
        cdef int32_t following
        self._heads[b] = -1
        while n != -1:
            following = self._nodes[n].next
            if following != -1:  # bucket order is random in memory: hide the next miss
                XUPTIME_PREFETCH(&self._nodes[following])
            self._level_count[level] -= 1
            self._place(n)
            n = following
        return 0

    cdef int _fire_bucket(self, int32_t b) except -1:
        cdef int32_t n = self._heads[b]
        cdef int32_t following
        cdef bint counted = b < (self._levels << self._bits)
        cdef int32_t after
        self._heads[b] = -1
        if n != -1 and self._nodes[n].next != -1:
            XUPTIME_PREFETCH(&self._nodes[self._nodes[n].next])
        while n != -1:
            following = self._nodes[n].next
            if following != -1:
                # Two-stage pipeline: the node after next, and the id-table slot of the next
                # node (loaded one step ago) that the erase below will touch.
                after = self._nodes[following].next
                if after != -1:
                    XUPTIME_PREFETCH(&self._nodes[after])
                XUPTIME_PREFETCH(&self._ids.table[id_hash(self._nodes[following].ident) & <uint64_t>self._ids.mask])
            if counted:
                self._level_count[b >> self._bits] -= 1
            self._push_fired(self._nodes[n].deadline, self._nodes[n].ident)
            if self._nodes[n].period > 0:
                self._nodes[n].slot = _EXPIRED_MARK
                self._nodes[n].next = self._rearm_head
                self._rearm_head = n
            else:
                idmap_pop(&self._ids, self._nodes[n].ident)
                self._nodes[n].slot = -1
                self._nodes[n].next = self._free
                self._free = n
            n = following
        return 0

    cdef int _push_fired(self, int64_t deadline, int64_t ident) except -1:
        cdef Fired *grown
        if self._fired_len == self._fired_cap:
            grown = <Fired *>PyMem_Realloc(self._fired, 2 * self._fired_cap * sizeof(Fired))
            if not grown:
                raise MemoryError()
            self._fired = grown
            self._fired_cap *= 2
        self._fired[self._fired_len].deadline = deadline
        self._fired[self._fired_len].ident = ident
        self._fired_len += 1
        return 0
