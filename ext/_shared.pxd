# cython: language_level=3
from libc.stdint cimport int32_t


cdef class Shared:
    """Byte strings many users share, kept once by key with a count of users (``_shared.pyx``)."""

    cdef:
        dict _ids       # key -> index
        list _keys      # index -> key, None when free
        list _items     # index -> string, None when free
        list _notes     # index -> what the caller keeps beside it (a status table's text)
        list _free
        int32_t *users
        const char **data
        int32_t *size
        int32_t cap

    cdef int32_t take(self, object key, bytes item, object note) except -1
    cdef int give(self, int32_t i) except -1
    cdef object note(self, int32_t i)
    cdef int _grow(self) except -1
