# cython: language_level=3, boundscheck=False, wraparound=False
"""Byte strings kept once for many users: ``Shared``. The compiled HTTP engine keeps its
requests' common rest and its status tables in them (``_fasthttp.pyx``)."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int32_t
from libc.stdlib cimport free, realloc


cdef class Shared:
    """Byte strings many monitors use (requests' common rest, status tables) by index, each
    kept once with the number of its users; an index (and its string) is given back when its
    last user goes. ``data``/``size`` point into the strings, which ``_items`` keeps alive."""

    def __cinit__(self):
        self._ids, self._keys, self._items, self._notes, self._free = {}, [], [], [], []

    def __dealloc__(self):
        free(self.users)
        free(self.data)
        free(self.size)

    cdef int32_t take(self, object key, bytes item, object note) except -1:
        """The index of ``key`` (added with ``item`` and ``note`` on first use), counting one
        user more."""
        cdef int32_t i
        found = self._ids.get(key)
        if found is not None:
            i = found
            self.users[i] += 1
            return i
        if self._free:
            i = self._free.pop()
            self._keys[i], self._items[i], self._notes[i] = key, item, note
        else:
            i = len(self._items)
            if i == self.cap:
                self._grow()
            self._keys.append(key)
            self._items.append(item)
            self._notes.append(note)
        self._ids[key] = i
        self.users[i] = 1
        self.data[i] = PyBytes_AS_STRING(item)
        self.size[i] = <int32_t>PyBytes_GET_SIZE(item)
        return i

    cdef int give(self, int32_t i) except -1:
        """One user of index ``i`` fewer."""
        self.users[i] -= 1
        if self.users[i] == 0:
            del self._ids[self._keys[i]]
            self._keys[i] = self._items[i] = self._notes[i] = None
            self._free.append(i)
        return 0

    cdef object note(self, int32_t i):
        return self._notes[i]

    cdef int _grow(self) except -1:
        cdef int32_t cap = self.cap * 2 if self.cap else 64
        users = <int32_t *>realloc(self.users, cap * sizeof(int32_t))
        if users == NULL:
            raise MemoryError()
        self.users = users
        data = <const char **>realloc(self.data, cap * sizeof(const char *))
        if data == NULL:
            raise MemoryError()
        self.data = data
        size = <int32_t *>realloc(self.size, cap * sizeof(int32_t))
        if size == NULL:
            raise MemoryError()
        self.size = size
        self.cap = cap
        return 0

    def __len__(self) -> int:
        return len(self._ids)
