# cython: language_level=3, boundscheck=False, wraparound=False
"""Columnar result buffer (compiled). Semantics in ``ResultBuffer.__doc__``."""

import numpy as np

from libc.stdint cimport int16_t, int64_t, uint8_t

from ext.columns import COLUMNS, DTYPES


cdef class ResultBuffer:
    """Fixed-capacity columnar buffer of check results.

    Each ``append`` writes one row straight into preallocated typed columns (no per-row
    Python object is kept, except the error text of a failed check, kept with its row index).
    ``flush`` copies the filled prefix into fresh numpy arrays, ready for an Arrow table and a
    DuckDB insert, and empties the buffer. Phase timings use ``-1`` for "not measured".

    Bounded: when full, ``append`` returns False and counts the row in ``dropped``; it never
    grows. The caller flushes on a timer or when ``full``. Not thread-safe.
    """

    def __cinit__(self, Py_ssize_t capacity=8192):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._len = 0
        self.dropped = 0
        self._arrays = {name: np.empty(capacity, dtype=DTYPES[name]) for name in COLUMNS}
        self._monitor_id = self._arrays["monitor_id"]
        self._ts_us = self._arrays["ts_us"]
        self._ok = self._arrays["ok"]
        self._latency_us = self._arrays["latency_us"]
        self._status_code = self._arrays["status_code"]
        self._error_code = self._arrays["error_code"]
        self._dns_us = self._arrays["dns_us"]
        self._connect_us = self._arrays["connect_us"]
        self._tls_us = self._arrays["tls_us"]
        self._ttfb_us = self._arrays["ttfb_us"]
        self._error_rows = []
        self._error_texts = []

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def full(self) -> bool:
        return self._len >= self._capacity

    def __len__(self) -> int:
        return self._len

    def append(self, int64_t monitor_id, int64_t ts_us, bint ok, int64_t latency_us,
               int status_code=0, int error_code=0, int64_t dns_us=-1, int64_t connect_us=-1,
               int64_t tls_us=-1, int64_t ttfb_us=-1, str error=None) -> bool:
        """Add one result; False (and ``dropped`` + 1) when the buffer is full."""
        return self.push(monitor_id, ts_us, ok, latency_us, status_code, error_code, dns_us, connect_us, tls_us,
                         ttfb_us, error)

    cdef bint push(self, int64_t monitor_id, int64_t ts_us, bint ok, int64_t latency_us, int status_code,
                   int error_code, int64_t dns_us, int64_t connect_us, int64_t tls_us, int64_t ttfb_us,
                   object error) except -1:
        """``append`` for compiled callers (``ext._fasthttp``): no argument boxing."""
        cdef Py_ssize_t i = self._len
        if i >= self._capacity:
            self.dropped += 1
            return False
        self._monitor_id[i] = monitor_id
        self._ts_us[i] = ts_us
        self._ok[i] = ok
        self._latency_us[i] = latency_us
        self._status_code[i] = <int16_t>status_code
        self._error_code[i] = <uint8_t>error_code
        self._dns_us[i] = dns_us
        self._connect_us[i] = connect_us
        self._tls_us[i] = tls_us
        self._ttfb_us[i] = ttfb_us
        if error is not None:
            self._error_rows.append(i)
            self._error_texts.append(error)
        self._len = i + 1
        return True

    def flush(self):
        """Return the buffered rows as ``{column: ndarray}`` (plus ``error_rows`` and
        ``error_texts``) and empty the buffer; None when empty."""
        cdef Py_ssize_t n = self._len
        if n == 0:
            return None
        out = {name: self._arrays[name][:n].copy() for name in COLUMNS}
        out["error_rows"] = np.asarray(self._error_rows, dtype=np.int32)
        out["error_texts"] = self._error_texts
        self._error_rows = []
        self._error_texts = []
        self._len = 0
        return out
