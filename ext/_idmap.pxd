# cython: language_level=3
# An id -> int32 map in C, shared by the timing wheel (id -> node) and the compiled HTTP engine
# (monitor id -> slot): open addressing with linear probing in a power-of-two table kept at
# most half full, backward-shift deletion (no tombstones: a long-lived map of monitors that
# come and go never degrades). 12 bytes a table slot (packed: the padding of an aligned slot
# made it 16, a quarter of the table), so 24-48 bytes an id; a dict of Python ints took about
# 100 an id. Values are >= 0; -1 marks an empty slot and "not found".
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int32_t, int64_t, uint64_t


cdef packed struct Slot:
    int64_t key
    int32_t value      # -1 = empty


cdef struct IdMap:
    Slot *table
    int64_t mask       # capacity - 1
    Py_ssize_t size


cdef inline uint64_t id_hash(int64_t key) noexcept nogil:
    """Fibonacci hashing with a final mix, so sequential ids spread over the table."""
    cdef uint64_t h = <uint64_t>key * <uint64_t>0x9E3779B97F4A7C15
    return h ^ (h >> 32)


cdef inline int idmap_init(IdMap *m, int64_t capacity=1024) except -1:
    """``capacity``: a power of two."""
    cdef int64_t i
    m.table = <Slot *>PyMem_Malloc(capacity * sizeof(Slot))
    if not m.table:
        raise MemoryError()
    for i in range(capacity):
        m.table[i].value = -1
    m.mask = capacity - 1
    m.size = 0
    return 0


cdef inline void idmap_free(IdMap *m) noexcept:
    PyMem_Free(m.table)
    m.table = NULL
    m.size = 0


cdef inline int32_t idmap_get(const IdMap *m, int64_t key) noexcept:
    cdef uint64_t i = id_hash(key) & <uint64_t>m.mask
    while m.table[i].value != -1:
        if m.table[i].key == key:
            return m.table[i].value
        i = (i + 1) & <uint64_t>m.mask
    return -1


cdef inline int _idmap_grow(IdMap *m) except -1:
    cdef int64_t old_cap = m.mask + 1
    cdef int64_t cap = old_cap * 2
    cdef Slot *old = m.table
    cdef Slot *table = <Slot *>PyMem_Malloc(cap * sizeof(Slot))
    cdef int64_t k
    cdef uint64_t i
    if not table:
        raise MemoryError()
    for k in range(cap):
        table[k].value = -1
    for k in range(old_cap):
        if old[k].value != -1:
            i = id_hash(old[k].key) & <uint64_t>(cap - 1)
            while table[i].value != -1:
                i = (i + 1) & <uint64_t>(cap - 1)
            table[i] = old[k]
    m.table = table
    m.mask = cap - 1
    PyMem_Free(old)
    return 0


cdef inline int idmap_put(IdMap *m, int64_t key, int32_t value) except -1:
    """Set ``key`` to ``value`` (>= 0), replacing what it had."""
    cdef uint64_t i
    if (m.size + 1) * 2 > m.mask + 1:
        _idmap_grow(m)
    i = id_hash(key) & <uint64_t>m.mask
    while m.table[i].value != -1:
        if m.table[i].key == key:
            m.table[i].value = value
            return 0
        i = (i + 1) & <uint64_t>m.mask
    m.table[i].key = key
    m.table[i].value = value
    m.size += 1
    return 0


cdef inline int32_t idmap_pop(IdMap *m, int64_t key) noexcept:
    """Remove ``key``; its value, or -1 when it had none."""
    cdef uint64_t mask = <uint64_t>m.mask
    cdef uint64_t i = id_hash(key) & mask
    cdef uint64_t j, home
    cdef int32_t value
    while m.table[i].value != -1 and m.table[i].key != key:
        i = (i + 1) & mask
    value = m.table[i].value
    if value == -1:
        return -1
    # Backward-shift deletion: pull later entries of the probe run into the hole.
    j = i
    while True:
        j = (j + 1) & mask
        if m.table[j].value == -1:
            break
        home = id_hash(m.table[j].key) & mask
        if ((j - home) & mask) >= ((j - i) & mask):
            m.table[i] = m.table[j]
            i = j
    m.table[i].value = -1
    m.size -= 1
    return value
