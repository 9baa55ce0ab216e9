# cython: language_level=3
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t


cdef class ResultBuffer:
    cdef:
        Py_ssize_t _capacity
        Py_ssize_t _len
        readonly Py_ssize_t dropped
        object _arrays          # column name -> numpy array (the storage)
        int64_t[::1] _monitor_id
        int64_t[::1] _ts_us
        uint8_t[::1] _ok
        int64_t[::1] _latency_us
        int16_t[::1] _status_code
        uint8_t[::1] _error_code
        int64_t[::1] _dns_us
        int64_t[::1] _connect_us
        int64_t[::1] _tls_us
        int64_t[::1] _ttfb_us
        list _error_rows
        list _error_texts

    cdef bint push(self, int64_t monitor_id, int64_t ts_us, bint ok, int64_t latency_us, int status_code,
                   int error_code, int64_t dns_us, int64_t connect_us, int64_t tls_us, int64_t ttfb_us,
                   object error) except -1
