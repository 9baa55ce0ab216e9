# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""History answers encoded as the API's JSON items (compiled).

``raw_items`` (raw checks), ``rolled_items`` (rolled-up hours, from ``RecentHours``' arrays)
and ``raw_hour_items`` (hour buckets aggregated from raw checks) write the items of
``GET /monitors/{id}/history`` straight from arrays, comma-separated, without a Python object
per field: the same JSON objects the store's ``RAW_JSON`` and ``HOUR_JSON`` make in DuckDB,
number for number (latencies in ms rounded to the µs, as ``round(x / 1000, 3)``; timestamps
as ``core.clock.iso_ms``). Phases below 0 and a status code of 0 are ``null``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free
from libc.math cimport floor, round
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memcpy, strlen

cdef extern from "Python.h":
    char* PyOS_double_to_string(double val, char format_code, int precision, int flags, int* ptype) except NULL
    int Py_DTSF_ADD_DOT_0


cdef bytes json_string(str text):
    """``text`` as a JSON string, quotes included (UTF-8; control characters, quotes and
    backslashes escaped; a lone surrogate replaced)."""
    cdef bytes raw = text.encode("utf-8", "replace")
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw), i, at = 1
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n * 6 + 2)
    cdef char* o = PyBytes_AS_STRING(out)
    cdef unsigned char c
    o[0] = 34
    for i in range(n):
        c = s[i]
        if c == 34 or c == 92:
            o[at] = 92
            o[at + 1] = <char>c
            at += 2
        elif c < 32:
            o[at] = 92
            o[at + 1] = 117  # u
            o[at + 2] = 48
            o[at + 3] = 48
            o[at + 4] = <char>(48 + c // 16)
            o[at + 5] = <char>(c % 16 + (48 if c % 16 < 10 else 87))
            at += 6
        else:
            o[at] = <char>c
            at += 1
    o[at] = 34
    return out[:at + 1]


cdef inline Py_ssize_t put(char* out, const char* text) noexcept:
    cdef size_t n = strlen(text)
    memcpy(out, text, n)
    return <Py_ssize_t>n


cdef const char* _PAIRS = (b"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                           b"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                           b"8081828384858687888990919293949596979899")


cdef inline Py_ssize_t put_int(char* out, int64_t value) noexcept:
    """Decimal digits, two a division (``_PAIRS``)."""
    cdef char digits[24]
    cdef Py_ssize_t n = 24, i = 0, k
    cdef bint negative = value < 0
    cdef unsigned long long v = (<unsigned long long>0 - <unsigned long long>value) if negative \
        else <unsigned long long>value
    cdef unsigned long long pair
    while v >= 100:
        pair = (v % 100) * 2
        v //= 100
        n -= 2
        digits[n] = _PAIRS[pair]
        digits[n + 1] = _PAIRS[pair + 1]
    if v >= 10:
        n -= 2
        digits[n] = _PAIRS[v * 2]
        digits[n + 1] = _PAIRS[v * 2 + 1]
    else:
        n -= 1
        digits[n] = <char>(48 + v)
    if negative:
        out[0] = 45  # -
        i = 1
    k = 24 - n
    memcpy(out + i, digits + n, k)
    return i + k


cdef inline Py_ssize_t put_thousandths(char* out, int64_t k) noexcept:
    """``k / 1000`` as a decimal: ``12.345``, ``12.3``, ``12.0``."""
    cdef Py_ssize_t i = 0
    if k < 0:
        out[0] = 45
        i = 1
        k = -k
    i += put_int(out + i, k // 1000)
    cdef int frac = <int>(k % 1000)
    out[i] = 46  # .
    out[i + 1] = <char>(48 + frac // 100)
    i += 2
    if frac % 100:
        out[i] = <char>(48 + frac // 10 % 10)
        i += 1
        if frac % 10:
            out[i] = <char>(48 + frac % 10)
            i += 1
    return i


cdef inline double _round(double x) noexcept:
    """C's ``round`` (halves away from zero), inline: libm's call, twice a latency, was a tenth
    of encoding an hour. Exact below 2**52, where ``x - trunc(x)`` is; beyond it (and for NaN)
    libm's."""
    cdef double a = x if x >= 0 else -x
    cdef double r
    if not a < 4503599627370496.0:
        return round(x)
    r = <double>(<int64_t>a)
    if a - r >= 0.5:
        r += 1.0
    return r if x >= 0 else -r


cdef inline Py_ssize_t put_ms(char* out, double us) noexcept:
    """µs as ms rounded to 3 decimals, the way DuckDB's ``round(us / 1000, 3)`` computes it."""
    cdef double ms = us / 1000.0
    return put_thousandths(out, <int64_t>_round(_round(ms * 1000.0) / 1000.0 * 1000.0))


cdef inline Py_ssize_t put_two(char* out, int value) noexcept:
    out[0] = <char>(48 + value // 10)
    out[1] = <char>(48 + value % 10)
    return 2


cdef char _date[32]
cdef Py_ssize_t _date_len = 0
cdef int64_t _date_days = -2**62


cdef Py_ssize_t put_date(char* out, int64_t days) noexcept:
    """``YYYY-MM-DD`` of a day number since 1970-01-01 (proleptic Gregorian, H. Hinnant's
    civil-from-days)."""
    cdef int64_t z = days + 719468
    cdef int64_t era = (z if z >= 0 else z - 146096) // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t y = yoe + era * 400
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    cdef int64_t d = doy - (153 * mp + 2) // 5 + 1
    cdef int64_t m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    cdef Py_ssize_t i = 0
    if 0 <= y <= 9999:
        i += put_two(out + i, <int>(y // 100))
        i += put_two(out + i, <int>(y % 100))
    else:
        i += put_int(out + i, y)
    out[i] = 45
    i += 1
    i += put_two(out + i, <int>m)
    out[i] = 45
    i += 1
    i += put_two(out + i, <int>d)
    return i


cdef Py_ssize_t put_iso(char* out, int64_t ts_us) noexcept:
    """``"2026-12-01T17:30:11.042Z"`` (quotes included): UTC, milliseconds truncated."""
    global _date_len, _date_days
    cdef int64_t seconds = ts_us // 1000000
    if ts_us % 1000000 < 0:
        seconds -= 1
    cdef int64_t ms = (ts_us - seconds * 1000000) // 1000
    cdef int64_t days = seconds // 86400
    cdef int64_t rest = seconds - days * 86400
    if rest < 0:
        days -= 1
        rest += 86400
    cdef Py_ssize_t i = 1
    out[0] = 34
    if days != _date_days:  # (answers run through consecutive hours: a day's date is made once)
        _date_len = put_date(_date, days)
        _date_days = days
    memcpy(out + 1, _date, _date_len)
    i += _date_len
    out[i] = 84  # T
    i += 1
    i += put_two(out + i, <int>(rest // 3600))
    out[i] = 58
    i += 1
    i += put_two(out + i, <int>(rest // 60 % 60))
    out[i] = 58
    i += 1
    i += put_two(out + i, <int>(rest % 60))
    out[i] = 46
    out[i + 1] = <char>(48 + ms // 100)
    out[i + 2] = <char>(48 + ms // 10 % 10)
    out[i + 3] = <char>(48 + ms % 10)
    out[i + 4] = 90  # Z
    out[i + 5] = 34
    return i + 6


cdef inline Py_ssize_t put_hour(char* out, int64_t start_us, int64_t checks, int64_t up, double avg_us,
                                double min_us, double max_us, double p50, double p95, double p99) except -1:
    """One hour bucket as the API's item (``checks`` > 0)."""
    cdef Py_ssize_t at = put(out, b'{"ts":')
    at += put_iso(out + at, start_us)
    at += put(out + at, b',"checks":')
    at += put_int(out + at, checks)
    at += put(out + at, b',"up":')
    at += put_int(out + at, up)
    at += put(out + at, b',"uptime":')
    at += put_ratio(out + at, up, checks)
    at += put(out + at, b',"latencyMs":{"avg":')
    at += put_ms(out + at, avg_us)
    at += put(out + at, b',"min":')
    at += put_ms(out + at, min_us)
    at += put(out + at, b',"max":')
    at += put_ms(out + at, max_us)
    at += put(out + at, b',"p50":')
    at += put_ms(out + at, p50)
    at += put(out + at, b',"p95":')
    at += put_ms(out + at, p95)
    at += put(out + at, b',"p99":')
    at += put_ms(out + at, p99)
    at += put(out + at, b"}}")
    return at


cdef inline Py_ssize_t put_phase(char* out, int64_t us) noexcept:
    if us < 0:
        return put(out, b"null")
    return put_thousandths(out, us)


def raw_items(const int64_t[:] ts, const int8_t[:] ok, const int64_t[:] latency, const int16_t[:] status,
              object errors, const int64_t[:] dns, const int64_t[:] connect, const int64_t[:] tls,
              const int64_t[:] ttfb) -> bytes:
    """Raw checks as the API's items, comma-separated; ``errors`` is a sequence of the rows'
    error texts (``None``: no error)."""
    cdef Py_ssize_t n = ts.shape[0], i, at = 0, size = 0
    if not (ok.shape[0] == latency.shape[0] == status.shape[0] == dns.shape[0] == connect.shape[0]
            == tls.shape[0] == ttfb.shape[0] == len(errors) == n):
        raise ValueError("columns of different lengths")
    encoded = [None if e is None else json_string(e) for e in errors]
    for e in encoded:
        if e is not None:
            size += PyBytes_GET_SIZE(e)
    cdef char* out = <char*>malloc(n * 320 + size + 1)
    if out == NULL:
        raise MemoryError()
    cdef bytes text
    try:
        for i in range(n):
            if i:
                out[at] = 44
                at += 1
            at += put(out + at, b'{"ts":')
            at += put_iso(out + at, ts[i])
            at += put(out + at, b',"ok":true' if ok[i] else b',"ok":false')
            at += put(out + at, b',"latencyMs":')
            at += put_thousandths(out + at, latency[i])
            at += put(out + at, b',"statusCode":')
            at += put_int(out + at, status[i]) if status[i] else put(out + at, b"null")
            at += put(out + at, b',"error":')
            e = encoded[i]
            if e is None:
                at += put(out + at, b"null")
            else:
                text = <bytes>e
                memcpy(out + at, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))
                at += PyBytes_GET_SIZE(text)
            at += put(out + at, b',"phases":{"dnsMs":')
            at += put_phase(out + at, dns[i])
            at += put(out + at, b',"connectMs":')
            at += put_phase(out + at, connect[i])
            at += put(out + at, b',"tlsMs":')
            at += put_phase(out + at, tls[i])
            at += put(out + at, b',"ttfbMs":')
            at += put_phase(out + at, ttfb[i])
            at += put(out + at, b"}}")
        return PyBytes_FromStringAndSize(out, at)
    finally:
        free(out)


cdef int64_t _HOUR_US = 3600000000  # (typed: a bare literal this large is a Python int)


def rolled_items(const int32_t[:, ::1] checks, const int32_t[:, ::1] up, const int64_t[:, ::1] latency_sum,
                 const int64_t[:, ::1] latency_min, const int64_t[:, ::1] latency_max, const double[:, :, ::1] q,
                 Py_ssize_t row, int64_t first_hour, int64_t last_hour, int64_t[::1] ends, int64_t[::1] starts
                 ) -> tuple:
    """One row of ``RecentHours``' arrays (slot ``hour % slots``) as the API's hour items: the hours numbered ``last_hour`` down to ``first_hour`` that hold checks, newest
    first, at most ``len(ends)`` of them, straight from the arrays (no columns gathered first).
    Returns ``(items, taken, held)``; ``held`` counts every hour of the range that holds
    checks, taken or not. Item ``i`` ends at byte ``ends[i]`` (before its comma) and its hour
    starts at ``starts[i]`` µs: the caller may keep fewer items than were written."""
    cdef Py_ssize_t slots = checks.shape[1], at = 0, taken = 0, held = 0, s, k, span, limit = ends.shape[0]
    cdef int64_t hour, c
    if not (0 <= row < checks.shape[0] and up.shape[0] == latency_sum.shape[0] == latency_min.shape[0]
            == latency_max.shape[0] == q.shape[1] == checks.shape[0] and q.shape[0] == 3
            and up.shape[1] == latency_sum.shape[1] == latency_min.shape[1] == latency_max.shape[1]
            == q.shape[2] == slots and slots > 0 and starts.shape[0] == limit and first_hour >= 0):
        raise ValueError("arrays of different shapes, or a row outside them")
    if last_hour - first_hour >= slots:
        raise ValueError("more hours than the arrays hold")
    span = <Py_ssize_t>(last_hour - first_hour + 1) if last_hour >= first_hour else 0
    # the row's slots, walked back from the newest hour's (a slot a step: no division an hour)
    cdef const int32_t* n_row = &checks[row, 0]
    cdef const int32_t* u_row = &up[row, 0]
    cdef const int64_t* sum_row = &latency_sum[row, 0]
    cdef const int64_t* min_row = &latency_min[row, 0]
    cdef const int64_t* max_row = &latency_max[row, 0]
    cdef const double* p50_row = &q[0, row, 0]
    cdef const double* p95_row = &q[1, row, 0]
    cdef const double* p99_row = &q[2, row, 0]
    s = <Py_ssize_t>(last_hour % slots) if span else 0
    for k in range(span):
        if n_row[s] > 0:
            held += 1
        s = s - 1 if s else slots - 1
    cdef Py_ssize_t n = min(held, limit)
    cdef char* out = <char*>malloc(n * 400 + 1)
    if out == NULL:
        raise MemoryError()
    try:
        hour = last_hour
        s = <Py_ssize_t>(last_hour % slots) if span else 0
        for k in range(span):
            if taken == n:
                break
            c = n_row[s]
            if c > 0:
                if taken:
                    out[at] = 44
                    at += 1
                at += put_hour(out + at, hour * _HOUR_US, c, u_row[s], <double>sum_row[s] / <double>c,
                               <double>min_row[s], <double>max_row[s], p50_row[s], p95_row[s], p99_row[s])
                ends[taken] = at
                starts[taken] = hour * _HOUR_US
                taken += 1
            hour -= 1
            s = s - 1 if s else slots - 1
        return PyBytes_FromStringAndSize(out, at), taken, held
    finally:
        free(out)


cdef struct _Check:
    int64_t hour
    int64_t latency
    int64_t ok


cdef int _newest_hour_first(const void* a, const void* b) noexcept nogil:
    """Hour descending, latency ascending within an hour."""
    cdef const _Check* x = <const _Check*>a
    cdef const _Check* y = <const _Check*>b
    if x.hour != y.hour:
        return -1 if x.hour > y.hour else 1
    if x.latency != y.latency:
        return -1 if x.latency < y.latency else 1
    return 0


cdef double[3] _QUANTILES = [0.5, 0.95, 0.99]  # (``core.storage.rollups.QUANTILES``)


def raw_hour_items(const int64_t[::1] ts, const int8_t[::1] ok, const int64_t[::1] latency, int64_t[::1] ends,
                   int64_t[::1] starts) -> tuple:
    """Checks, in any order, as the API's items of the hour buckets they fall in: the rows
    ``core.storage.rollups.hour_aggregate_sql`` makes (percentiles interpolated as DuckDB's
    ``quantile_cont``), newest hour first, at most ``len(ends)`` of them, encoded without a
    numpy call (the parts of a page aggregated this way hold a few rows as often as not).
    Returns ``(items, taken, held)``, ``ends``/``starts`` filled as ``rolled_items`` does."""
    cdef Py_ssize_t n = ts.shape[0], i, j, g, at = 0, taken = 0, held = 0, limit = ends.shape[0], count, k
    cdef int64_t ups, total
    cdef double rank, below, above, frac
    cdef double q[3]
    if ok.shape[0] != n or latency.shape[0] != n or starts.shape[0] != limit:
        raise ValueError("columns of different lengths")
    if n == 0:
        return b"", 0, 0
    cdef _Check* rows = <_Check*>malloc(n * sizeof(_Check))
    cdef char* out = NULL
    if rows == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            rows[i].hour = ts[i] // _HOUR_US * _HOUR_US if ts[i] >= 0 else -((-ts[i] + _HOUR_US - 1) // _HOUR_US) * _HOUR_US
            rows[i].latency = latency[i]
            rows[i].ok = ok[i] != 0
        qsort(rows, n, sizeof(_Check), _newest_hour_first)
        held = 1
        for i in range(1, n):
            if rows[i].hour != rows[i - 1].hour:
                held += 1
        out = <char*>malloc(min(held, limit) * 400 + 1)
        if out == NULL:
            raise MemoryError()
        i = 0
        while i < n and taken < limit:
            j = i
            ups = total = 0
            while j < n and rows[j].hour == rows[i].hour:
                ups += rows[j].ok
                total += rows[j].latency
                j += 1
            count = j - i
            for g in range(3):
                rank = <double>(count - 1) * _QUANTILES[g]
                k = <Py_ssize_t>floor(rank)
                below = <double>rows[i + k].latency
                above = <double>rows[min(i + k + 1, j - 1)].latency
                frac = rank - <double>k  # (DuckDB's form, bit for bit: see rollups._hour_groups)
                q[g] = below * (1.0 - frac) + above * frac
            if taken:
                out[at] = 44
                at += 1
            at += put_hour(out + at, rows[i].hour, count, ups, <double>total / <double>count,
                           <double>rows[i].latency, <double>rows[j - 1].latency, q[0], q[1], q[2])
            ends[taken] = at
            starts[taken] = rows[i].hour
            taken += 1
            i = j
        return PyBytes_FromStringAndSize(out, at), taken, held
    finally:
        free(rows)
        free(out)


# Ratios by (part, whole), in a direct-mapped table of C strings: an hour's uptime repeats from
# hour to hour (137 of 138...), the shortest repr of a double costs far more than a lookup, and
# a lookup through a dict of tuples cost a third of encoding an hour (a tuple and two ints made
# for each).
cdef enum:
    _RATIO_SLOTS = 4096

cdef struct _Ratio:
    int64_t part
    int64_t whole      # 0: empty
    char text[32]
    Py_ssize_t len

cdef _Ratio _ratios[_RATIO_SLOTS]


cdef Py_ssize_t put_ratio(char* out, int64_t part, int64_t whole) except -1:
    """``part / whole`` as Python's ``repr`` of the float (shortest that reads back)."""
    if part == whole:
        return put(out, b"1.0")
    if part == 0:
        return put(out, b"0.0")
    cdef _Ratio* slot = &_ratios[(<uint64_t>part * <uint64_t>1000003 + <uint64_t>whole) % _RATIO_SLOTS]
    cdef char* text
    cdef size_t n
    if slot.whole != whole or slot.part != part:
        text = PyOS_double_to_string(<double>part / <double>whole, b"r", 0, Py_DTSF_ADD_DOT_0, NULL)
        n = strlen(text)
        if n >= sizeof(slot.text):  # (never for a ratio in [0, 1]; written through, not kept)
            memcpy(out, text, n)
            PyMem_Free(text)
            return <Py_ssize_t>n
        memcpy(slot.text, text, n)
        PyMem_Free(text)
        slot.part, slot.whole, slot.len = part, whole, <Py_ssize_t>n
    memcpy(out, slot.text, slot.len)
    return slot.len


