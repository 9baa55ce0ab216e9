# cython: language_level=3
from libc.stdint cimport int32_t, int64_t

from ext._idmap cimport IdMap


cdef struct Node:
    int64_t ident      # the caller's id (a monitor id)
    int64_t deadline   # absolute, in the caller's time unit
    int64_t period     # > 0: re-armed at deadline + period when fired
    int32_t next       # intrusive doubly linked bucket list (-1 = none)
    int32_t prev
    int32_t slot       # bucket index, or -1 when the node is free


cdef struct Fired:
    int64_t deadline
    int64_t ident


cdef class TimingWheel:
    cdef:
        int64_t _tick
        int64_t _cur            # next tick to process; every tick < _cur is done
        int64_t _now            # the last time passed to advance()
        int _bits
        int _levels
        int64_t _mask
        int32_t *_heads         # levels * slots bucket heads + 1 for the expired bucket
        int64_t *_level_count   # live entries per level (the expired bucket is not counted)
        Node *_nodes
        int32_t _capacity
        int32_t _free           # head of the free-node list (linked through .next)
        IdMap _ids              # ident -> node
        Fired *_fired
        Py_ssize_t _fired_len
        Py_ssize_t _fired_cap
        int32_t _rearm_head     # periodic nodes waiting to be re-armed after an advance

    cdef int32_t _alloc(self) except -1
    cdef void _link(self, int32_t n) noexcept
    cdef void _unlink(self, int32_t n) noexcept
    cdef void _place(self, int32_t n) noexcept
    cdef int _cascade(self, int level) except -1
    cdef int _fire_bucket(self, int32_t bucket) except -1
    cdef int _push_fired(self, int64_t deadline, int64_t ident) except -1
    cdef list _collect(self)
    cdef int64_t _top_target(self) noexcept
