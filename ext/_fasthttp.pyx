# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled HTTP/1.1 checks over TCP and TLS: the engine's per-check hot path. See ``HttpEngine``."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport EAGAIN, EINPROGRESS, EINTR, errno
from libc.stdint cimport int32_t, int64_t, intptr_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove, memset, strerror
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec
from posix.unistd cimport close
from libc.time cimport time

from _ssl import err_codes_to_names as _SSL_REASONS

from ext cimport _openssl as ossl
from ext._buffer cimport ResultBuffer
from ext._shared cimport Shared
from ext._idmap cimport IdMap, idmap_free, idmap_get, idmap_init, idmap_pop, idmap_put


cdef extern from "<errno.h>":
    int ECONNRESET, ECONNREFUSED, EPIPE, ESHUTDOWN, ENETUNREACH, EHOSTUNREACH

cdef extern from "<string.h>":
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen) nogil

cdef extern from "<sys/socket.h>":
    ctypedef unsigned int socklen_t
    struct sockaddr:
        pass
    struct linger:
        int l_onoff
        int l_linger
    int socket(int domain, int type, int protocol) nogil
    int connect(int fd, const sockaddr *addr, socklen_t len) nogil
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    ssize_t sendmsg(int fd, const msghdr *msg, int flags) nogil
    ssize_t recv(int fd, void *buf, size_t n, int flags) nogil
    int setsockopt(int fd, int level, int name, const void *val, socklen_t len) nogil
    int getsockopt(int fd, int level, int name, void *val, socklen_t *len) nogil
    int SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC, SOL_SOCKET, SO_LINGER, SO_ERROR, MSG_NOSIGNAL, MSG_PEEK
    int MSG_DONTWAIT

cdef extern from "<sys/epoll.h>":
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int flags) nogil
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event) nogil
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout) nogil
    int EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP, EPOLLET


# Error codes of ``core.models.ErrorCode`` (a test checks they agree).
DEF E_TIMEOUT = 1
DEF E_REFUSED = 3
DEF E_TLS = 5
DEF E_RESET = 4
DEF E_BAD_RESPONSE = 6
DEF E_STATUS = 7
DEF E_KEYWORD = 8
DEF E_REDIRECTS = 9
DEF E_JSON = 18
DEF E_CONNECT = 10
DEF E_UNREACHABLE = 11
DEF E_CLOSED = 12

DEF C_FREE = 0
DEF C_CONNECTING = 1
DEF C_BUSY = 2
DEF C_IDLE = 3
DEF C_HANDSHAKE = 4  # connected, TLS handshake under way

# The chunked body decoder's states (``Conn.chunk``).
DEF K_SIZE = 0      # hex digits of a chunk's size
DEF K_SIZE_LF = 1   # the LF after them
DEF K_DATA = 2      # the chunk's bytes
DEF K_DATA_CR = 3   # the CRLF after them
DEF K_DATA_LF = 4
DEF K_END_CR = 5    # after the last (empty) chunk: the CRLF that ends the body (no trailers)
DEF K_END_LF = 6

#: The same codes by name, for the test that compares them with ``ErrorCode``.
CODES = {"TIMEOUT": E_TIMEOUT, "REFUSED": E_REFUSED, "TLS": E_TLS, "RESET": E_RESET, "STATUS": E_STATUS,
         "KEYWORD": E_KEYWORD, "JSON": E_JSON, "CONNECT": E_CONNECT, "BAD_RESPONSE": E_BAD_RESPONSE,
         "REDIRECTS": E_REDIRECTS,
         "UNREACHABLE": E_UNREACHABLE, "CLOSED": E_CLOSED}


def classify_errno(int err) -> tuple:
    """``(error code, message)`` of a failed connect, send or receive (``err`` 0: the peer
    reset the connection), worded as the general checker words them
    (``core.checkers.base.classify_os_error``; a test holds the two together, since this
    compiled leaf imports nothing from ``core``)."""
    if err == 0 or err == ECONNRESET or err == EPIPE or err == ESHUTDOWN:
        return E_RESET, "connection reset by peer"
    if err == ECONNREFUSED:
        return E_REFUSED, "connection refused"
    if err == ENETUNREACH or err == EHOSTUNREACH:
        return E_UNREACHABLE, "unreachable: " + strerror(err).decode()
    return E_CONNECT, "connect: " + strerror(err).decode()

DEF MAX_HEAD = 65536
DEF MAX_KEYWORD = 1024  # bytes (``HttpSpec.keyword``: at most 1024 characters, UTF-8 may be longer: refused)
DEF READ_SIZE = 65536
DEF EVENTS = 512
DEF MAX_ROUTES = 16  # redirects a monitor keeps the next hop of (a server naming a new place each time: no more)
DEF MAX_KEPT_LOCATION = 1024  # bytes: a longer location is routed at each check, never kept

cdef struct Conn:
    uint32_t gen          # bumped per socket on this fd: events of a closed socket are ignored
    uint8_t state
    uint8_t reused        # it has carried a complete response before
    uint8_t in_body
    uint8_t close_after   # not reusable once this response ends
    int32_t mon           # the Mon slot it serves, or -1
    int32_t origin
    int32_t idle_prev     # per-origin idle list (most recent at the head)
    int32_t idle_next
    int32_t lru_prev      # every idle connection, most recently parked at the head
    int32_t lru_next
    int32_t sent          # request bytes written
    int32_t status
    int64_t body_left     # -1: the body ends at EOF; chunked: what is left of this chunk
    int64_t body_seen     # body bytes (decoded) so far
    char *head            # headers that arrived in pieces (malloc'd), or NULL
    ossl.SSL *ssl         # TLS on this socket, else NULL
    char *carry           # keyword search: the last bytes searched (malloc'd, the keyword's size)
    char *body            # JSON test: the body's first ``max_body`` bytes (malloc'd), or NULL
    int32_t body_len
    int32_t body_cap
    int32_t head_len
    int32_t head_cap
    int32_t carry_len
    uint8_t chunked       # the body is framed by chunks: ``chunk`` is the decoder's state
    uint8_t chunk
    uint8_t digits        # hex digits of the chunk size read so far
    uint8_t found         # the keyword was found in the body
    uint8_t redirect      # the response is a redirect to follow: ``location`` holds where
    char *location        # (malloc'd, ``location_len`` bytes) or NULL
    int32_t location_len

cdef struct Mon:
    # (ordered so that it packs with few holes: 96 bytes; what a check in flight needs
    # beside it is in its ``Flight``)
    int64_t mid
    int64_t at            # its request's own part, then its packed definition, in ``_arena``
    int64_t timeout_ns
    int32_t req_len       # bytes of the request's own part (the request line and Host)
    int32_t packed_len    # bytes of the packed definition while asleep, else 0
    int32_t tail          # the rest of its request in ``_tails``, or -1 (all of it is its own)
    int32_t table         # its status table in ``_tables``
    int32_t origin
    int32_t fd            # the connection of the check in flight, or -1
    int32_t pos           # index in ``_flight``, or -1
    int32_t failures      # while asleep: the state machine's counters and settings
    int32_t successes
    int32_t retries
    int32_t recovery
    int32_t interval_ms   # (at most a day)
    int32_t phase_ms      # its offset inside the interval (the scheduler's ``phase_offset``)
    int32_t max_body      # (at most 64 MiB)
    int32_t test          # its body tests (keyword, JSON) in ``_tests``, or -1
    uint8_t used          # the slot holds a monitor
    uint8_t live          # checks may take this path (cleared when a response needs the general one)
    uint8_t keep_alive
    uint8_t head_only
    uint8_t follow
    uint8_t quiet         # ``up`` with no failures: a success needs no state step in Python
    uint8_t retried
    uint8_t queued        # waiting in ``_queue`` for a free in-flight place
    uint8_t asleep        # its state is kept here (the counters above), not by the scheduler
    uint8_t status        # while asleep: 0 pending, 1 up, 2 down
    uint8_t resume        # TLS: resume its origin's session when it has one (``tlsResume``)
    uint8_t json          # its body is gathered for a JSON test
    uint8_t max_redirects # (``follow``)

cdef struct Flight:
    # A check in flight: ``_flight[mon.pos]`` (a few hundred at a time, not one a monitor).
    int32_t slot
    int32_t connect_us
    int32_t tls_us
    int32_t dns_us        # its origin's lookup, when this is the first check since it
    int32_t origin        # where the current hop goes: the monitor's origin, or a redirect's
    int32_t hop           # the current hop's request in ``_hops`` (a user of it), or -1: the monitor's own
    int32_t hops          # redirects followed so far
    int64_t tls_ns
    int64_t ts_us
    int64_t start_ns
    int64_t connect_ns
    int64_t sent_ns
    int64_t first_ns

cdef struct Waiting:
    # A due check waiting for a free place in flight, and when it was due (scheduler's ms).
    int32_t slot
    int64_t due_ms

cdef struct Origin:
    char addr[28]         # a sockaddr_in or sockaddr_in6
    socklen_t addrlen
    int family
    uint8_t resolved
    uint8_t tls           # connections speak TLS (``set_tls``)
    uint8_t verify        # ... verifying the peer's chain and name
    uint8_t ip            # ``name`` is an IP address: no SNI, verified against IP SANs
    int32_t idle_head
    int32_t dns_us        # the last lookup's time until a check reports it, else -1
    char *name            # TLS: the name sent as SNI and verified (malloc'd), else NULL
    ossl.SSL_SESSION *session  # TLS: the newest session the server gave, for resumption
    int32_t session_prev  # origins holding a session, most recently given or offered first
    int32_t session_next
    int64_t verified_until     # TLS: the chain last verified (its digest below) holds until then
    unsigned char verified[32]


cdef inline int64_t mono_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t wall_us() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000000 + ts.tv_nsec // 1000


cdef inline int64_t doubled(int64_t cap, int64_t first, int64_t need) noexcept nogil:
    """A buffer's new capacity: ``cap`` (``first`` while it has none) doubled until it holds
    ``need`` bytes."""
    if cap == 0:
        cap = first
    while cap < need:
        cap *= 2
    return cap


cdef inline bint name_is(const char *p, Py_ssize_t n, const char *lower, Py_ssize_t m) noexcept nogil:
    """``p[:n]`` equals ``lower`` (lowercase ASCII, length ``m``) ignoring ASCII case."""
    cdef Py_ssize_t i
    if n != m:
        return False
    for i in range(n):
        if (p[i] | 0x20) != lower[i]:
            return False
    return True


cdef inline bint has_token(const char *p, Py_ssize_t n, const char *lower, Py_ssize_t m) noexcept nogil:
    """``lower`` occurs in ``p[:n]`` ignoring ASCII case."""
    cdef Py_ssize_t i, j
    for i in range(n - m + 1):
        for j in range(m):
            if (p[i + j] | 0x20) != lower[j]:
                break
        else:
            return True
    return False


cdef inline bint is_tchar(unsigned char ch) noexcept nogil:
    """A header name byte (RFC 9110 ``tchar``)."""
    if b'a' <= ch <= b'z' or b'A' <= ch <= b'Z' or b'0' <= ch <= b'9':
        return True
    return ch in b"!#$%&'*+-.^_`|~"


cdef inline bint is_field_char(unsigned char ch) noexcept nogil:
    """A header value or reason phrase byte: HTAB, SP, VCHAR or obs-text (no CTL, no DEL)."""
    return ch == 9 or (32 <= ch and ch != 127)


cdef Py_ssize_t line_end(const char *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Where the line starting at ``i`` ends: the index of its CR, which must be followed by
    LF; -1 when a byte of the line is a CTL (a bare CR or LF included) or it has no CRLF."""
    cdef unsigned char ch
    while i < n:
        ch = <unsigned char>p[i]
        if ch == 13:
            return i if i + 1 < n and p[i + 1] == b'\n' else -1
        if not is_field_char(ch):
            return -1
        i += 1
    return -1


cdef class HttpEngine:
    """HTTP/1.1 checks over TCP and TLS run in C: one ``epoll`` set for all their sockets,
    registered once with the event loop (``fileno``/``on_ready``), so a check costs its
    system calls (``send``, ``recv``; ``socket``, ``connect``, ``close`` for a new connection),
    its OpenSSL calls over HTTPS, and a little C, with no Python call, object or timer per check.

    Scope: monitors the caller ``add``s (GET/HEAD/... with a prebuilt request, a status
    table, maybe a keyword and a JSON test, to an address the caller resolved; over TLS when
    their origin is ``set_tls``). Responses framed by ``Content-Length``, by EOF or by chunks,
    or that carry no body (HEAD, 204, 304), are judged here. Anything else (a 1xx, another
    transfer coding, chunk extensions or trailers, headers over 64 KiB, a malformed response,
    a TLS error Python has no name for) makes the monitor leave this path for good: its check
    is handed to ``fallback(monitor_id, True)`` to be run again by the general checker, which
    knows every case and its exact error; later checks of it return 0 from ``start``.

    Redirects (``follow``) are followed here as the general checker follows them: the
    redirect's body read as framed, then the next hop on a new connection, with the request
    ``route(monitor_id, target, status, location)`` builds (the general checker's own code:
    ``(target, origin, request)``, a failure's text, or None when only the general checker
    can follow it). Each monitor keeps the next hop of up to 16 places it was sent from
    (locations up to 1 KiB: a monitor holds a few KiB of hops at most), so ``route`` runs
    once per place, not once per check. A hop to an origin with no address
    yet hands that one check over (``fallback(monitor_id, False)``); the monitor stays here.

    TLS: OpenSSL on the same non-blocking sockets, contexts made as Python's
    (``configure_tls``), SNI and the name verified as Python's ``ssl`` does; failures worded
    as the general checker words Python's exceptions. Sessions the server gives are kept per
    origin and resumed by monitors that allow it, while their certificate is still valid.

    Scheduling: ``start_due`` takes the wheel's due ids, starts up to ``limit`` checks in
    flight and queues the rest (FIFO, each monitor at most once; one due while it still runs
    or waits is skipped and counted), recording lateness in the caller's histogram.

    Connections: with keep-alive, an idle connection per origin is reused (most recent
    first); one that turns out dead before any response byte is replaced once by a fresh
    one, as in the general checker. At most ``max_idle`` idle connections are kept over all
    origins (the longest idle is closed first). Every socket closes with an RST
    (``SO_LINGER`` 0) unless ``close_with_reset`` is off.

    Results: each check appends one row to ``buffer`` (``ts`` = its wall-clock start,
    latency, status, error, connect, TLS and first-byte times; DNS when the caller's lookup
    of its origin came just before it: ``set_address``).
    Rows that may change a monitor's status (a failure, or any result of a monitor not
    marked ``quiet``) are also collected as ``(monitor_id, ok, ts_us, error)`` and passed,
    with the number of finished checks, to ``on_done(count, notable)`` once per batch of
    events (and from ``expire``). Deadlines are checked by ``expire``, which the caller runs
    every few milliseconds. ``on_done`` may start checks; ``fallback`` runs in the middle of
    event handling and must not (it may ``remove`` the monitor). Not thread-safe: one event
    loop.
    """

    cdef:
        int _epfd
        ResultBuffer _buffer
        object _on_done
        object _fallback
        Conn *_conns
        int32_t _nconns
        Mon *_mons
        int32_t _nmons
        int32_t _cap_mons
        int32_t _free_mon
        # A monitor's request is its own part (the request line and Host, in the arena) and a
        # rest most monitors share (User-Agent, Accept, Connection), kept once in ``_tails``.
        Shared _tails
        Shared _tables     # status tables, each with its text ("200-299" and the like)
        Shared _tests      # body tests: keywords (UTF-8, b"" for none) and JSON tests (notes)
        # Redirect hops: requests by (origin, request), noted with (route's target, origin);
        # used by the routes that lead to them and by checks on them.
        Shared _hops
        dict _routes        # monitor id -> {(hop or -1, status, location): hop}
        char *_window       # a keyword's search across two reads: the carry, then the new start
        # Every monitor's own request part, then its packed definition while asleep, in one
        # buffer (not a bytes object each: 33 bytes of header, allocator rounding, a list
        # slot); a replaced part is left as garbage until ``_compact``.
        char *_arena
        int64_t _arena_len
        int64_t _arena_cap
        int64_t _garbage
        IdMap _slots        # monitor id -> Mon slot
        Origin *_origins
        int32_t _norigins
        int32_t _cap_origins
        dict _origin_ids    # key -> origin index
        Flight *_flight     # the checks in flight
        int32_t _nflight
        int32_t _cap_flight
        char *_rbuf
        char *_wbuf         # a TLS request made whole (one record, not one a piece)
        Py_ssize_t _wcap
        ossl.SSL_CTX *_tls[2]  # TLS contexts: [0] without verification, [1] verifying
        epoll_event *_events
        list _notable
        Py_ssize_t _done
        readonly Py_ssize_t fallbacks
        #: Checks handed over once (a redirect to an origin with no address yet).
        readonly Py_ssize_t detours
        #: ``(monitor_id, target, status, location) -> (target, origin, request) | str | None``:
        #: the next hop of a redirect (see the class). It runs inside event handling: it may
        #: make origins, never add, remove or start monitors.
        public object route
        #: ``(test, body, truncated) -> None or why it fails`` for monitors with a JSON test
        #: (``core.checkers.http.json_problem``: the general checker's own judge).
        public object json_judge
        #: TLS handshakes completed, how many of them resumed a session, and how many full
        #: ones found the chain their origin verified last (``_verify``).
        readonly Py_ssize_t handshakes
        readonly Py_ssize_t resumed
        readonly Py_ssize_t verify_skipped
        #: TLS sessions kept (one an origin at most), and how many are kept at most: past it
        #: the one given or offered longest ago is dropped (about 7.7 KB each, its server's
        #: chain included).
        readonly Py_ssize_t sessions
        public Py_ssize_t max_sessions
        int32_t _session_head
        int32_t _session_tail
        readonly Py_ssize_t skipped_overlap
        readonly Py_ssize_t queued
        #: Monitors whose state this engine keeps (``sleep``).
        readonly Py_ssize_t asleep
        #: Idle keep-alive connections kept at most, over all origins: beyond it the longest
        #: idle one is closed (a keep-alive monitor per host would otherwise hold a socket
        #: per host, and run into the open-file limit).
        public Py_ssize_t max_idle
        Py_ssize_t _idle_total
        int32_t _lru_head
        int32_t _lru_tail
        int64_t _latency_sum  # µs, of the checks recorded since the last take_latency()
        #: Checks in flight on this path at most; the rest of the due ones wait in a FIFO.
        public Py_ssize_t limit
        #: Close sockets with an RST (``SO_LINGER`` 0: no TIME_WAIT at any rate), else with an
        #: ordinary FIN, as browsers and wrk do (set before checks start).
        public bint close_with_reset
        Waiting *_queue     # FIFO in [_qhead, _qtail); stale entries are skipped
        Py_ssize_t _qhead
        Py_ssize_t _qtail
        Py_ssize_t _qcap
        int64_t _origin_ns  # the scheduler's monotonic clock: ms since this
        int64_t[::1] _lateness

    def __cinit__(self, ResultBuffer buffer not None, on_done, fallback):
        self._epfd = epoll_create1(EPOLL_CLOEXEC)
        if self._epfd < 0:
            raise OSError(errno, strerror(errno).decode())
        self._buffer = buffer
        self._on_done = on_done
        self._fallback = fallback
        self._tails = Shared()
        self._tables = Shared()
        self._tests = Shared()
        self._hops = Shared()
        self._routes = {}
        self._arena = NULL
        idmap_init(&self._slots)
        self._origin_ids = {}
        self._notable = []
        self._rbuf = <char *>malloc(READ_SIZE)
        self._window = <char *>malloc(2 * MAX_KEYWORD)
        self._events = <epoll_event *>malloc(EVENTS * sizeof(epoll_event))
        self._mons = NULL
        self._conns = NULL
        self._origins = NULL
        self._flight = NULL
        self._queue = NULL
        self._wbuf = NULL
        self._tls[0] = self._tls[1] = NULL
        if self._rbuf == NULL or self._events == NULL or self._window == NULL:
            raise MemoryError()
        self._free_mon = -1
        self.limit = 256
        self.max_idle = 4096
        self.close_with_reset = True
        self._lru_head = self._lru_tail = -1
        self._session_head = self._session_tail = -1
        self.max_sessions = 100_000
        self._origin_ns = mono_ns()

    def __dealloc__(self):
        cdef int32_t i
        self._close_all()
        if self._epfd >= 0:
            close(self._epfd)
        free(self._rbuf)
        free(self._window)
        free(self._events)
        free(self._mons)
        idmap_free(&self._slots)
        free(self._conns)
        free(self._flight)
        free(self._queue)
        free(self._arena)
        free(self._wbuf)
        for i in range(self._norigins):
            free(self._origins[i].name)
            if self._origins[i].session != NULL:
                ossl.SSL_SESSION_free(self._origins[i].session)
        free(self._origins)
        for i in range(2):
            if self._tls[i] != NULL:
                ossl.SSL_CTX_free(self._tls[i])

    def set_clock(self, int64_t origin_ns, lateness) -> None:
        """Share the scheduler's clock (``time.monotonic_ns()`` at its zero) and its lateness
        histogram (int64, one bucket per ms, the last for everything later)."""
        self._origin_ns = origin_ns
        self._lateness = lateness

    # setup ----------------------------------------------------------------------------
    def fileno(self) -> int:
        return self._epfd

    @property
    def inflight(self) -> int:
        return self._nflight

    @property
    def idle(self) -> int:
        return self._idle_total

    def origin(self, key) -> int:
        """The index of an origin (any hashable key, e.g. host and port), made on first use."""
        cdef int32_t i
        found = self._origin_ids.get(key)
        if found is not None:
            return found
        i = self._norigins
        if i == self._cap_origins:  # grow by doubling: a monitor per host means 100k origins
            grown = <Origin *>realloc(self._origins, (i * 2 if i else 64) * sizeof(Origin))
            if grown == NULL:
                raise MemoryError()
            self._origins = grown
            self._cap_origins = i * 2 if i else 64
        memset(&self._origins[i], 0, sizeof(Origin))
        self._origins[i].idle_head = -1
        self._origins[i].dns_us = -1
        self._origins[i].session_prev = self._origins[i].session_next = -1
        self._norigins = i + 1
        self._origin_ids[key] = i
        return i

    def set_address(self, int origin, int family, bytes sockaddr not None, int64_t dns_us=-1) -> None:
        """Connect new sockets of ``origin`` to ``sockaddr`` (the raw ``struct sockaddr``);
        ``dns_us``: the lookup that found it took so long (the origin's next check reports it)."""
        cdef Origin *o
        if not 0 <= origin < self._norigins or not 0 < len(sockaddr) <= 28:
            raise ValueError("bad origin or address")
        o = &self._origins[origin]
        memcpy(o.addr, PyBytes_AS_STRING(sockaddr), len(sockaddr))
        o.addrlen = <socklen_t>len(sockaddr)
        o.family = family
        o.resolved = 1
        o.dns_us = <int32_t>(dns_us if -1 <= dns_us < 0x7fffffff else 0x7fffffff)

    def clear_address(self, int origin) -> None:
        if 0 <= origin < self._norigins:
            self._origins[origin].resolved = 0

    def configure_tls(self, bytes ciphers not None, uint64_t options, int minimum, int maximum,
                      unsigned long verify_flags, bint common_name, cafile=None) -> None:
        """Make the TLS contexts (one verifying, one not) as a Python ``ssl.SSLContext`` is
        made: its cipher string, ``options``, ``minimum_version``/``maximum_version`` (-2/-1:
        OpenSSL's own bounds), ``verify_flags``, ``hostname_checks_common_name``; the system's
        trust store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured, as Python's
        ``load_default_certs`` does), plus ``cafile`` if given. Both libraries are the same
        OpenSSL in this process, so a handshake ends here as it ends there."""
        cdef int i
        cdef ossl.SSL_CTX *ctx
        for i in range(2):
            ctx = ossl.SSL_CTX_new(ossl.TLS_client_method())
            if ctx == NULL:
                raise MemoryError()
            if self._tls[i] != NULL:
                ossl.SSL_CTX_free(self._tls[i])
            self._tls[i] = ctx
            ossl.SSL_CTX_clear_options(ctx, <uint64_t>-1)
            ossl.SSL_CTX_set_options(ctx, options)
            if ossl.SSL_CTX_set_cipher_list(ctx, ciphers) != 1:
                ossl.ERR_clear_error()
                raise ValueError(f"OpenSSL refused the cipher string {ciphers!r}")
            ossl.SSL_CTX_set_min_proto_version(ctx, minimum if minimum > 0 else 0)
            ossl.SSL_CTX_set_max_proto_version(ctx, maximum if maximum > 0 else 0)
            # (moving: a request is written again from wherever it is made whole; released:
            # an idle keep-alive connection holds no 34 KiB of buffers)
            ossl.SSL_CTX_set_mode(ctx, ossl.SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | ossl.SSL_MODE_RELEASE_BUFFERS)
            ossl.SSL_CTX_set_session_cache_mode(ctx, ossl.SSL_SESS_CACHE_CLIENT | ossl.SSL_SESS_CACHE_NO_INTERNAL_STORE)
            ossl.SSL_CTX_sess_set_new_cb(ctx, _on_new_session)
            ossl.SSL_CTX_set_app_data(ctx, <void *>self)
            if i == 1:
                ossl.SSL_CTX_set_verify(ctx, ossl.SSL_VERIFY_PEER, NULL)
                ossl.SSL_CTX_set_cert_verify_callback(ctx, _verify_chain, NULL)
                ossl.X509_VERIFY_PARAM_set_flags(ossl.SSL_CTX_get0_param(ctx), verify_flags)
                ossl.X509_VERIFY_PARAM_set_hostflags(
                    ossl.SSL_CTX_get0_param(ctx), ossl.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS
                    | (0 if common_name else ossl.X509_CHECK_FLAG_NEVER_CHECK_SUBJECT))
                ossl.SSL_CTX_set_default_verify_paths(ctx)
                if cafile is not None:
                    path = str(cafile).encode()
                    if ossl.SSL_CTX_load_verify_locations(ctx, path, NULL) != 1:
                        ossl.ERR_clear_error()
                        raise ValueError(f"cannot load certificates from {cafile}")
            else:
                ossl.SSL_CTX_set_verify(ctx, ossl.SSL_VERIFY_NONE, NULL)
            ossl.ERR_clear_error()

    def set_tls(self, int origin, str name not None, bint verify, bint ip) -> None:
        """Connections of ``origin`` speak TLS to ``name`` (sent as SNI unless ``ip``; the
        certificate verified against it when ``verify``). ``configure_tls`` comes first."""
        cdef Origin *o
        cdef bytes raw = name.encode("ascii")
        if not 0 <= origin < self._norigins or self._tls[0] == NULL or b"\0" in raw:
            raise ValueError("bad origin, or TLS not configured")
        o = &self._origins[origin]
        free(o.name)
        o.name = <char *>malloc(len(raw) + 1)
        if o.name == NULL:
            raise MemoryError()
        memcpy(o.name, PyBytes_AS_STRING(raw), len(raw) + 1)
        o.tls, o.verify, o.ip = 1, verify, ip
        self.forget_session(origin)

    def forget_session(self, int origin) -> None:
        """Drop the TLS session kept for ``origin``, and the chain it verified last (its last
        monitor went, or it names another host)."""
        if not 0 <= origin < self._norigins:
            return
        self._origins[origin].verified_until = 0
        self._drop_session(origin)

    cdef void _drop_session(self, int32_t origin) noexcept:
        cdef Origin *o = &self._origins[origin]
        if o.session == NULL:
            return
        ossl.SSL_SESSION_free(o.session)
        o.session = NULL
        self._session_unlink(origin)
        self.sessions -= 1

    cdef void _session_unlink(self, int32_t origin) noexcept:
        cdef Origin *o = &self._origins[origin]
        if o.session_prev >= 0:
            self._origins[o.session_prev].session_next = o.session_next
        else:
            self._session_head = o.session_next
        if o.session_next >= 0:
            self._origins[o.session_next].session_prev = o.session_prev
        else:
            self._session_tail = o.session_prev
        o.session_prev = o.session_next = -1

    cdef void _session_push(self, int32_t origin) noexcept:
        """Put ``origin`` (not in the list) at its head. An origin is in the list exactly
        while it holds a session."""
        cdef Origin *o = &self._origins[origin]
        o.session_prev = -1
        o.session_next = self._session_head
        if self._session_head >= 0:
            self._origins[self._session_head].session_prev = origin
        else:
            self._session_tail = origin
        self._session_head = origin

    def has_session(self, int origin) -> bool:
        return 0 <= origin < self._norigins and self._origins[origin].session != NULL

    cdef int _verify(self, ossl.X509_STORE_CTX *store, intptr_t tag) noexcept:
        """Verify a server's chain (``X509_verify_cert``: chain, dates, name), unless it is
        the very chain this origin verified last, every certificate as sent (their digests),
        for a monitor that takes shortcuts (``tlsResume``), before the first expiry in that
        chain: what a resumed session would skip too. The trust store and the name do not
        change while the engine runs; whatever else differs is verified in full."""
        cdef intptr_t origin = (tag >> 1) - 1
        cdef unsigned char digest[32]
        cdef bint known
        cdef int r
        cdef Origin *o
        if not 0 <= origin < self._norigins:
            return ossl.X509_verify_cert(store)
        known = chain_digest(store, digest)
        o = &self._origins[origin]
        if (tag & 1 and known and o.verified_until > time(NULL) and memcmp(digest, o.verified, 32) == 0
                and self._sent_current(store)):
            self.verify_skipped += 1
            return 1
        r = ossl.X509_verify_cert(store)
        o.verified_until = chain_until(store) if r == 1 and known else 0
        if o.verified_until:
            memcpy(o.verified, digest, 32)
        return r

    cdef bint _sent_current(self, ossl.X509_STORE_CTX *store) noexcept:
        """Every certificate the server sent is within its dates now (not yet valid is
        caught here; expiry by ``verified_until`` too)."""
        cdef ossl.stack_st_X509 *sent = ossl.X509_STORE_CTX_get0_untrusted(store)
        cdef ossl.X509 *x
        cdef int i
        for i in range(ossl.sk_X509_num(sent)):
            x = ossl.sk_X509_value(sent, i)
            if ossl.X509_cmp_current_time(ossl.X509_get0_notBefore(x)) >= 0 \
                    or ossl.X509_cmp_current_time(ossl.X509_get0_notAfter(x)) <= 0:
                return False
        return True

    cdef int _keep_session(self, intptr_t origin, ossl.SSL_SESSION *session) noexcept:
        """A server gave a session (a TLS 1.3 ticket after the handshake, or 1.2's at its
        end): the origin keeps the newest; 1 when taken (OpenSSL then leaves it to us)."""
        cdef Origin *o
        if not 0 <= origin < self._norigins:
            return 0
        o = &self._origins[origin]
        if not o.tls or self.max_sessions <= 0:
            return 0
        if o.session != NULL:
            ossl.SSL_SESSION_free(o.session)
            self._session_unlink(<int32_t>origin)
        else:
            self.sessions += 1
        o.session = session
        self._session_push(<int32_t>origin)
        while self.sessions > self.max_sessions and self._session_tail >= 0:
            self._drop_session(self._session_tail)
        return 1

    def add(self, int64_t monitor_id, int origin, bytes request not None, bytes expected not None,
            str expected_text not None, double timeout_s, bint keep_alive, bint head_only, bint follow,
            int64_t max_body, int64_t interval_ms=1000, int64_t phase_ms=0, bint resume=True,
            bytes keyword=None, json=None, int max_redirects=10) -> None:
        """Register (or replace) a monitor; a replaced one's check in flight is dropped.
        ``phase_ms``: where in each interval it is due (lateness is counted from there);
        ``resume``: on a TLS origin, resume its kept session (else a full handshake each time);
        ``keyword``: the first ``max_body`` bytes of the body must hold it; ``json``: a JSON
        test the body (its first ``max_body`` bytes) is given to, with ``json_judge``;
        ``max_redirects``: redirects followed at most (``follow``), 0 to 255."""
        cdef int32_t slot
        cdef Mon *m
        cdef const char *r = PyBytes_AS_STRING(request)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(request), own = n
        cdef const char *eol
        if len(expected) != 1000 or not 0 <= origin < self._norigins:
            raise ValueError("bad status table or origin")
        if n >= 0x7fffffff:
            raise ValueError("request too long")
        if keyword is not None and not 0 < len(keyword) <= MAX_KEYWORD:
            raise ValueError("a keyword is 1 to 1024 bytes")
        self.remove(monitor_id)
        if self._free_mon >= 0:
            slot = self._free_mon
            self._free_mon = <int32_t>self._mons[slot].pos
        else:
            slot = self._nmons
            if slot == self._cap_mons and not self._grow_mons(slot * 2 if slot else 1024):
                raise MemoryError()
            self._nmons = slot + 1
        m = &self._mons[slot]
        memset(m, 0, sizeof(Mon))
        # Its own part: up to the end of the second line (the request line and Host).
        eol = <const char *>memmem(r, n, b"\r\n", 2)
        if eol != NULL:
            eol = <const char *>memmem(eol + 2, n - (eol + 2 - r), b"\r\n", 2)
            if eol != NULL:
                own = eol + 2 - r
        if own < n:
            rest = request[own:]
            m.tail = self._tails.take(rest, rest, None)
        else:
            m.tail = -1
        # (by its text: two lists can make one table, and a failure quotes the monitor's own)
        m.table = self._tables.take(expected_text, expected, expected_text)
        m.test = self._tests.take((keyword, json), keyword or b"", json) if keyword or json is not None else -1
        m.json = json is not None
        self._reserve(own)
        m.at = self._arena_len
        memcpy(self._arena + m.at, r, own)
        self._arena_len += own
        m.req_len = <int32_t>own
        m.mid = monitor_id
        m.origin = origin
        m.fd = -1
        m.pos = -1
        m.used = m.live = 1
        m.keep_alive = keep_alive
        m.head_only = head_only
        m.follow = follow
        m.max_redirects = <uint8_t>(max_redirects if 0 <= max_redirects <= 255 else 0 if max_redirects < 0 else 255)
        m.resume = resume
        m.max_body = <int32_t>(max_body if 0 <= max_body < 0x7fffffff else 0 if max_body < 0 else 0x7fffffff)
        m.timeout_ns = <int64_t>(timeout_s * 1e9)
        m.interval_ms = <int32_t>(interval_ms if 0 < interval_ms <= 86_400_000 else 1 if interval_ms <= 0 else 86_400_000)
        m.phase_ms = <int32_t>(phase_ms % m.interval_ms)
        idmap_put(&self._slots, monitor_id, slot)

    def remove(self, int64_t monitor_id) -> None:
        """Forget a monitor; its check in flight (if any) is dropped without a result."""
        cdef int32_t s = idmap_pop(&self._slots, monitor_id)
        if s < 0:
            return
        cdef Mon *m = &self._mons[s]
        if m.fd >= 0:
            self._close(m.fd)
        self._unflight(s)
        if m.queued:
            m.queued = 0
            self.queued -= 1
        if m.asleep:
            m.asleep = 0
            self.asleep -= 1
        m.used = m.live = 0
        m.pos = self._free_mon  # the free list runs through ``pos``
        self._free_mon = s
        if m.tail >= 0:
            self._tails.give(m.tail)
        self._tables.give(m.table)
        if m.test >= 0:
            self._tests.give(m.test)
        routes = self._routes.pop(monitor_id, None)
        if routes is not None:
            for hop in routes.values():
                self._hops.give(hop)
        self._garbage += m.req_len + m.packed_len
        m.req_len = m.packed_len = 0
        self._compact_maybe()

    # monitors whose state is kept here ------------------------------------------------
    # A monitor on this path needs no Python object between results that could change its
    # status: the scheduler hands its state machine's counters and its packed definition
    # over (``sleep``), reads and writes them for such results (``state``/``set_state``), and
    # takes them back (``wake``) when it needs the monitor as an object.
    def sleep(self, int64_t monitor_id, bytes packed not None, int status, int failures, int successes,
              int retries, int recovery) -> None:
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s < 0:
            raise KeyError(monitor_id)
        cdef Mon *m = &self._mons[s]
        cdef Py_ssize_t n = PyBytes_GET_SIZE(packed)
        if n >= 0x7fffffff:
            raise ValueError("packed definition too long")
        if not m.asleep:
            m.asleep = 1
            self.asleep += 1
        if m.at + m.req_len + m.packed_len == self._arena_len:  # (the last piece: grows in place)
            self._arena_len = m.at + m.req_len
            self._reserve(n)
        else:  # a new piece: its own request part copied, the old piece left as garbage
            self._garbage += m.req_len + m.packed_len
            self._reserve(m.req_len + n)
            memcpy(self._arena + self._arena_len, self._arena + m.at, m.req_len)
            m.at = self._arena_len
            self._arena_len += m.req_len
        memcpy(self._arena + self._arena_len, PyBytes_AS_STRING(packed), n)
        self._arena_len += n
        m.packed_len = <int32_t>n
        m.retries, m.recovery = retries, recovery
        self._compact_maybe()
        self._set_state(m, status, failures, successes)

    cdef inline void _set_state(self, Mon *m, int status, int failures, int successes) noexcept:
        m.status, m.failures, m.successes = <uint8_t>status, failures, successes
        m.quiet = status == 1 and failures == 0

    def state(self, int64_t monitor_id):
        """``(status, failures, successes, retries, recovery)`` of an asleep monitor, else None."""
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s < 0 or not self._mons[s].asleep:
            return None
        cdef Mon *m = &self._mons[s]
        return m.status, m.failures, m.successes, m.retries, m.recovery

    def set_state(self, int64_t monitor_id, int status, int failures, int successes) -> None:
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s >= 0 and self._mons[s].asleep:
            self._set_state(&self._mons[s], status, failures, successes)

    def packed(self, int64_t monitor_id):
        """An asleep monitor's packed definition (it stays asleep), else None."""
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s < 0 or not self._mons[s].asleep:
            return None
        return PyBytes_FromStringAndSize(self._arena + self._mons[s].at + self._mons[s].req_len,
                                         self._mons[s].packed_len)

    def head(self, int64_t monitor_id):
        """A monitor's own request part (the request line and ``Host``), else None."""
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s < 0:
            return None
        return PyBytes_FromStringAndSize(self._arena + self._mons[s].at, self._mons[s].req_len)

    def wake(self, int64_t monitor_id):
        """Take an asleep monitor's state back: ``(packed, status, failures, successes,
        origin)``; None when it is not asleep here. It stays on this path."""
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s < 0 or not self._mons[s].asleep:
            return None
        cdef Mon *m = &self._mons[s]
        packed = PyBytes_FromStringAndSize(self._arena + m.at + m.req_len, m.packed_len)
        if m.at + m.req_len + m.packed_len == self._arena_len:
            self._arena_len -= m.packed_len
        else:
            self._garbage += m.packed_len
        m.packed_len = 0
        m.asleep = 0
        self.asleep -= 1
        self._compact_maybe()
        return packed, m.status, m.failures, m.successes, m.origin

    def memory(self) -> dict:
        """What the monitors' strings take: ``arena`` bytes live (own request parts and packed
        definitions), ``garbage`` bytes awaiting compaction, distinct shared request ``tails``
        and status ``tables`` in use, redirect ``hops`` kept (their requests) and the ``routes``
        leading to them."""
        return {"arena": self._arena_len - self._garbage, "garbage": self._garbage, "tails": len(self._tails),
                "tables": len(self._tables), "hops": len(self._hops),
                "routes": sum(len(routes) for routes in self._routes.values())}

    def take_latency(self) -> int:
        """The summed latency (µs) of the checks recorded since the last call."""
        total, self._latency_sum = self._latency_sum, 0
        return total

    def set_quiet(self, int64_t monitor_id, bint quiet) -> None:
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s >= 0:
            self._mons[s].quiet = quiet

    def takes(self, int64_t monitor_id) -> bool:
        """The monitor is registered, still on this path, and its origin has an address."""
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s < 0:
            return False
        cdef Mon *m = &self._mons[s]
        return bool(m.live and self._origins[m.origin].resolved)

    # checks ---------------------------------------------------------------------------
    def start(self, int64_t monitor_id) -> int:
        """Start a check now: 1 when started (its result comes through the buffer), 2 when
        the previous one is still running or waiting (nothing started), 0 when this path
        cannot take it. (``start_due`` is the scheduler's way in; this one ignores ``limit``.)"""
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s < 0:
            return 0
        cdef Mon *m = &self._mons[s]
        if not m.live or not self._origins[m.origin].resolved:
            return 0
        if m.pos >= 0 or m.queued:
            return 2
        self._begin(s)
        return 1

    def start_due(self, list due not None, int64_t now_ms, dict busy not None, set waiting not None) -> list:
        """Take the due monitors (ids from the wheel at ``now_ms``) that this path runs: start
        each while fewer than ``limit`` are in flight, queue the rest (FIFO), skip (and count)
        one whose previous check is still running or waiting here or, per ``busy`` and
        ``waiting``, on the general path. Returns the ids left to the general path."""
        cdef list rest = []
        cdef int32_t s
        cdef Mon *m
        cdef int64_t late
        cdef Py_ssize_t buckets = self._lateness.shape[0] if self._lateness is not None else 0
        for item in due:
            s = idmap_get(&self._slots, <int64_t>item)
            if s < 0:
                rest.append(item)
                continue
            m = &self._mons[s]
            if not m.live or not self._origins[m.origin].resolved:
                rest.append(item)
                continue
            if m.pos >= 0 or m.queued or item in busy or item in waiting:
                self.skipped_overlap += 1
                continue
            # When it was due: the latest time at its phase.
            late = (now_ms - m.phase_ms) % m.interval_ms
            if late < 0:
                late += m.interval_ms
            if self._nflight < self.limit:
                if buckets:
                    self._lateness[late if late < buckets else buckets - 1] += 1
                self._begin(s)
            else:
                self._enqueue(s, now_ms - late)
        return rest

    cdef int _enqueue(self, int32_t s, int64_t due_ms) except -1:
        cdef Py_ssize_t i, j = 0
        cdef int32_t t
        if self._qtail == self._qcap:  # compact (dropping stale entries), then grow if need be
            for i in range(self._qhead, self._qtail):
                t = self._queue[i].slot
                if self._mons[t].queued == 1:
                    self._mons[t].queued = 2  # kept once, even if listed twice
                    self._queue[j] = self._queue[i]
                    j += 1
            for i in range(j):
                self._mons[self._queue[i].slot].queued = 1
            self._qhead, self._qtail = 0, j
            if j * 2 >= self._qcap:
                grown = <Waiting *>realloc(self._queue, (self._qcap * 2 if self._qcap else 1024) * sizeof(Waiting))
                if grown == NULL:
                    raise MemoryError()
                self._queue = grown
                self._qcap = self._qcap * 2 if self._qcap else 1024
        self._queue[self._qtail].slot = s
        self._queue[self._qtail].due_ms = due_ms
        self._qtail += 1
        self._mons[s].queued = 1
        self.queued += 1
        return 0

    cdef int _drain(self) except -1:
        """Start waiting checks while there is room."""
        cdef int32_t s
        cdef int64_t now_ms, late
        cdef Py_ssize_t buckets = self._lateness.shape[0] if self._lateness is not None else 0
        if self.queued == 0:
            return 0
        now_ms = (mono_ns() - self._origin_ns) // 1000000
        while self._qhead < self._qtail and self._nflight < self.limit:
            s = self._queue[self._qhead].slot
            late = now_ms - self._queue[self._qhead].due_ms
            self._qhead += 1
            if self._mons[s].queued != 1:
                continue  # removed (or re-added) while waiting
            self._mons[s].queued = 0
            self.queued -= 1
            if late < 0:
                late = 0
            if buckets:
                self._lateness[late if late < buckets else buckets - 1] += 1
            self._begin(s)
        if self._qhead == self._qtail:
            self._qhead = self._qtail = 0
        return 0

    cdef Flight *_fly(self, int32_t s) except NULL:
        """Put slot ``s`` in flight: its ``Flight``, timed from now."""
        cdef Flight *f
        if self._nflight == self._cap_flight:
            grown = <Flight *>realloc(self._flight, (self._cap_flight * 2 if self._cap_flight else 256) * sizeof(Flight))
            if grown == NULL:
                raise MemoryError()
            self._flight = grown
            self._cap_flight = self._cap_flight * 2 if self._cap_flight else 256
        f = &self._flight[self._nflight]
        f.slot = s
        f.ts_us = wall_us()
        f.start_ns = mono_ns()
        f.connect_us = f.tls_us = -1
        f.connect_ns = f.first_ns = f.sent_ns = f.tls_ns = 0
        f.origin = self._mons[s].origin
        f.hop = -1
        f.hops = 0
        f.dns_us = self._origins[f.origin].dns_us
        self._origins[f.origin].dns_us = -1
        self._mons[s].pos = self._nflight
        self._nflight += 1
        return f

    cdef int _begin(self, int32_t s) except -1:
        self._fly(s)
        self._mons[s].retried = 0
        self._go(s, self._mons[s].keep_alive)
        return 0

    cdef int _go(self, int32_t s, bint reuse) except -1:
        """Put check ``s`` on a connection: an idle one of its hop's origin, else a new one."""
        cdef Mon *m = &self._mons[s]
        cdef Origin *o = &self._origins[self._flight[m.pos].origin]
        cdef int32_t fd = -1
        cdef Conn *c
        while reuse:
            fd = o.idle_head
            if fd < 0:
                break
            self._idle_unlink(fd)
            if not self._stale(fd):
                break
            self._close(fd)
            fd = -1
        if fd < 0:
            fd = self._open(s)
            if fd < 0:
                return 0  # failed and recorded
        c = &self._conns[fd]
        c.mon = s
        m.fd = fd
        if c.state == C_IDLE:
            c.state = C_BUSY
            self._send(fd)
        return 0

    cdef bint _stale(self, int32_t fd) noexcept:
        """An idle connection has bytes nobody asked for, or the peer closed it: its event
        may still be waiting in the epoll set, so ask the socket itself. Such bytes would be
        taken for the next request's answer (a server's unsolicited 500 recorded against
        whichever monitor reused the connection)."""
        cdef char byte
        cdef ssize_t n
        if self._conns[fd].ssl != NULL and ossl.SSL_has_pending(self._conns[fd].ssl):
            return True  # decrypted (or read) already, and not asked for
        n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT)
        return not (n < 0 and errno == EAGAIN)

    cdef int32_t _open(self, int32_t s) except -2:
        """A new non-blocking socket for check ``s``, connecting; -1 when that failed at once
        (the failure is recorded)."""
        cdef Mon *m = &self._mons[s]
        cdef Origin *o = &self._origins[self._flight[m.pos].origin]
        cdef linger lg
        cdef epoll_event ev
        cdef int fd, err
        fd = socket(o.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        if fd < 0:
            self._os_failure(s, errno)
            return -1
        if self.close_with_reset:
            lg.l_onoff = 1
            lg.l_linger = 0
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg))
        if fd >= self._nconns and not self._grow_conns(fd + 1):
            close(fd)
            raise MemoryError()
        cdef Conn *c = self._conn_begin(fd, s, C_CONNECTING)
        self._flight[m.pos].connect_ns = mono_ns()
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
        ev.data.u64 = (<uint64_t>c.gen << 32) | <uint32_t>fd
        if ((connect(fd, <sockaddr *>o.addr, o.addrlen) != 0 and errno != EINPROGRESS)
                or epoll_ctl(self._epfd, EPOLL_CTL_ADD, fd, &ev) != 0):
            err = errno
            c.state = C_FREE
            c.mon = -1
            close(fd)
            self._os_failure(s, err)
            return -1
        return fd

    cdef Conn *_conn_begin(self, int32_t fd, int32_t s, uint8_t state) noexcept:
        """A new socket ``fd`` for check ``s``: a new generation (events of the socket that
        had this fd before are ignored), nothing sent or received yet."""
        cdef Conn *c = &self._conns[fd]
        c.gen += 1
        c.state = state
        c.reused = c.in_body = c.close_after = 0
        c.mon = s
        c.origin = self._flight[self._mons[s].pos].origin
        c.idle_prev = c.idle_next = -1
        c.sent = 0
        c.status = 0
        c.body_left = c.body_seen = 0
        c.head_len = 0
        c.ssl = NULL
        c.carry = c.body = NULL
        c.carry_len = c.body_len = c.body_cap = 0
        c.chunked = c.found = c.redirect = 0
        c.location = NULL
        c.location_len = 0
        return c

    cdef inline int32_t _req_total(self, const Mon *m) noexcept:
        """The whole request's length: its own part and the shared rest, or a redirect hop's."""
        if m.pos >= 0 and self._flight[m.pos].hop >= 0:
            return self._hops.size[self._flight[m.pos].hop]
        return m.req_len + (self._tails.size[m.tail] if m.tail >= 0 else 0)

    cdef int _send(self, int32_t fd) except -1:
        cdef Conn *c = &self._conns[fd]
        cdef Mon *m = &self._mons[c.mon]
        cdef int32_t total = self._req_total(m), hop
        cdef iovec iov[2]
        cdef msghdr msg
        cdef ssize_t n
        if c.sent == 0:
            self._flight[m.pos].sent_ns = mono_ns()
            c.status = 0
            c.in_body = c.close_after = 0
            c.body_left = c.body_seen = 0
            c.head_len = 0
            c.carry_len = c.body_len = 0
            c.chunked = c.found = c.redirect = 0
            c.location_len = 0
        if c.ssl != NULL:
            return self._tls_send(fd)
        memset(&msg, 0, sizeof(msg))
        msg.msg_iov = iov
        hop = self._flight[m.pos].hop
        while c.sent < total:
            # (the buffers are looked up again each time: nothing here moves them, but the
            # arena may have moved since the last call)
            if hop >= 0:
                iov[0].iov_base = <void *>(self._hops.data[hop] + c.sent)
                iov[0].iov_len = total - c.sent
                msg.msg_iovlen = 1
            elif c.sent < m.req_len:
                iov[0].iov_base = self._arena + m.at + c.sent
                iov[0].iov_len = m.req_len - c.sent
                msg.msg_iovlen = 1
                if m.tail >= 0:
                    iov[1].iov_base = <void *>self._tails.data[m.tail]
                    iov[1].iov_len = self._tails.size[m.tail]
                    msg.msg_iovlen = 2
            else:
                iov[0].iov_base = <void *>(self._tails.data[m.tail] + (c.sent - m.req_len))
                iov[0].iov_len = total - c.sent
                msg.msg_iovlen = 1
            n = sendmsg(fd, &msg, MSG_NOSIGNAL)
            if n > 0:
                c.sent += <int32_t>n
            elif n < 0 and errno == EINTR:
                continue
            elif n < 0 and errno == EAGAIN:
                return 0  # EPOLLOUT (edge) brings us back
            else:
                self._io_failure(fd, errno if n < 0 else 0)
                return 0
        return 0

    cdef int _tls_send(self, int32_t fd) except -1:
        """Write the whole request as one TLS record (own part and shared rest made whole
        first); after a short write OpenSSL needs the same bytes again, from anywhere."""
        cdef Conn *c = &self._conns[fd]
        cdef Mon *m = &self._mons[c.mon]
        cdef int32_t total = self._req_total(m)
        cdef const char *buf = self._arena + m.at
        cdef int32_t hop = self._flight[m.pos].hop
        cdef int n, e
        if hop >= 0:
            buf = self._hops.data[hop]
        elif m.tail >= 0:
            if total > self._wcap:
                grown = <char *>realloc(self._wbuf, total)
                if grown == NULL:
                    raise MemoryError()
                self._wbuf, self._wcap = grown, total
            memcpy(self._wbuf, self._arena + m.at, m.req_len)
            memcpy(self._wbuf + m.req_len, self._tails.data[m.tail], self._tails.size[m.tail])
            buf = self._wbuf
        ossl.ERR_clear_error()
        n = ossl.SSL_write(c.ssl, buf, total)
        if n > 0:
            c.sent = total  # (no partial writes: all of it or nothing)
            return 0
        e = ossl.SSL_get_error(c.ssl, n)
        if e == ossl.SSL_ERROR_WANT_WRITE or e == ossl.SSL_ERROR_WANT_READ:
            ossl.ERR_clear_error()
            return 0
        return self._tls_failure(fd, e)

    def on_ready(self) -> None:
        """Handle every ready socket (the event loop calls this when ``fileno`` is readable)."""
        cdef int n, i
        cdef uint64_t data
        cdef int32_t fd
        cdef uint32_t ev, gen
        cdef Conn *c
        while True:
            n = epoll_wait(self._epfd, self._events, EVENTS, 0)
            if n < 0 and errno == EINTR:
                continue
            for i in range(n):
                data = self._events[i].data.u64
                ev = self._events[i].events
                fd = <int32_t>(data & 0xffffffff)
                c = &self._conns[fd]
                if c.gen != <uint32_t>(data >> 32) or c.state == C_FREE:
                    continue  # a socket closed earlier in this batch
                if c.state == C_HANDSHAKE:
                    self._handshake(fd)
                    continue  # (a response cannot come before its request: nothing to read yet)
                if c.state == C_CONNECTING:
                    if not ev & (EPOLLOUT | EPOLLERR | EPOLLHUP):
                        continue
                    gen = c.gen
                    self._connected(fd)
                    # Bytes (or a close) that came with the connect completion raise no
                    # other edge: read them now (``c`` may have moved: look it up again).
                    c = &self._conns[fd]
                    if c.gen != gen or c.state != C_BUSY or c.ssl != NULL \
                            or not ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
                        continue
                if ev & EPOLLOUT and c.ssl != NULL and c.state == C_BUSY and c.mon >= 0 \
                        and c.sent < self._req_total(&self._mons[c.mon]):
                    gen = c.gen
                    self._send(fd)  # (TLS: a record not yet written must go before any read)
                    c = &self._conns[fd]
                    if c.gen != gen or c.state == C_FREE:
                        continue
                if ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
                    if c.ssl != NULL:
                        self._tls_readable(fd)
                    else:
                        self._readable(fd, ev)
                elif ev & EPOLLOUT and c.ssl == NULL and c.state == C_BUSY and c.mon >= 0 \
                        and c.sent < self._req_total(&self._mons[c.mon]):
                    self._send(fd)
            if n < EVENTS:
                break
        self._report()

    cdef int _connected(self, int32_t fd) except -1:
        cdef Conn *c = &self._conns[fd]
        cdef Mon *m = &self._mons[c.mon]
        cdef int err = 0
        cdef socklen_t len_ = sizeof(err)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len_) != 0:
            err = errno
        if err != 0:
            self._io_failure(fd, err)
            return 0
        cdef Flight *f = &self._flight[m.pos]
        f.connect_us = (mono_ns() - f.connect_ns) // 1000
        if self._origins[c.origin].tls:
            return self._tls_begin(fd)
        c.state = C_BUSY
        self._send(fd)
        return 0

    # TLS ------------------------------------------------------------------------------
    cdef int _tls_begin(self, int32_t fd) except -1:
        """Connected: start the handshake (SNI, the name to verify, a session to resume)."""
        cdef Conn *c = &self._conns[fd]
        cdef Mon *m = &self._mons[c.mon]
        cdef Origin *o = &self._origins[c.origin]
        cdef ossl.SSL *ssl = ossl.SSL_new(self._tls[1 if o.verify else 0])
        if ssl == NULL:
            ossl.ERR_clear_error()
            raise MemoryError()
        c.ssl = ssl
        ossl.SSL_set_fd(ssl, fd)
        # (the origin, and whether the monitor takes shortcuts: ``_verify``)
        ossl.SSL_set_app_data(ssl, <void *>((<intptr_t>c.origin + 1) * 2 + (1 if m.resume else 0)))
        if not o.ip:
            ossl.SSL_set_tlsext_host_name(ssl, o.name)
        if o.verify:
            if o.ip:
                ossl.X509_VERIFY_PARAM_set1_ip_asc(ossl.SSL_get0_param(ssl), o.name)
            else:
                ossl.X509_VERIFY_PARAM_set1_host(ossl.SSL_get0_param(ssl), o.name, 0)
        if m.resume and o.session != NULL:
            if session_usable(o.session):
                ossl.SSL_set_session(ssl, o.session)
                self._session_unlink(c.origin)  # (offered: now the most recent)
                self._session_push(c.origin)
            else:
                self._drop_session(c.origin)
        ossl.ERR_clear_error()
        c.state = C_HANDSHAKE
        self._flight[m.pos].tls_ns = mono_ns()
        return self._handshake(fd)

    cdef int _handshake(self, int32_t fd) except -1:
        cdef Conn *c = &self._conns[fd]
        cdef Flight *f
        cdef int r, e
        ossl.ERR_clear_error()
        r = ossl.SSL_connect(c.ssl)
        if r == 1:
            f = &self._flight[self._mons[c.mon].pos]
            f.tls_us = (mono_ns() - f.tls_ns) // 1000
            self.handshakes += 1
            if ossl.SSL_session_reused(c.ssl):
                self.resumed += 1
            c.state = C_BUSY
            self._send(fd)
            return 0
        e = ossl.SSL_get_error(c.ssl, r)
        if e == ossl.SSL_ERROR_WANT_READ or e == ossl.SSL_ERROR_WANT_WRITE:
            return 0  # the socket's next edge brings it back
        return self._tls_failure(fd, e)

    cdef int _tls_failure(self, int32_t fd, int e) except -1:
        """A TLS call failed (``SSL_get_error``'s ``e``): judged as the general checker judges
        the exception Python's ``ssl`` raises for it (``core.checkers.base.classify_os_error``
        on uvloop's ``start_tls``): the peer's close or reset is ``reset``, a socket error
        its errno, a failed verification ``TLS: `` and OpenSSL's reason (Python's wording for a
        name that does not match), any other TLS error ``TLS: `` and Python's name for its
        reason. One with no such name goes to the general checker to be worded."""
        cdef Conn *c = &self._conns[fd]
        cdef int err = errno
        cdef unsigned long code = ossl.ERR_peek_last_error()
        cdef long verify
        ossl.ERR_clear_error()
        if e == ossl.SSL_ERROR_SYSCALL and code == 0:
            if c.in_body or c.head_len:
                return self._io_failure(fd, err) if err else self._eof(fd)
            return self._io_failure(fd, err)  # (0: EOF in the handshake, which is a reset there)
        if e == ossl.SSL_ERROR_ZERO_RETURN:
            return self._eof(fd)
        if code != 0 and ossl.ERR_GET_LIB(code) == ossl.ERR_LIB_SSL \
                and ossl.ERR_GET_REASON(code) == ossl.SSL_R_UNEXPECTED_EOF_WHILE_READING:
            return self._eof(fd) if c.state != C_HANDSHAKE else self._io_failure(fd, 0)
        if code != 0 and ossl.ERR_GET_LIB(code) == ossl.ERR_LIB_SSL \
                and ossl.ERR_GET_REASON(code) == ossl.SSL_R_CERTIFICATE_VERIFY_FAILED:
            verify = ossl.SSL_get_verify_result(c.ssl)
            name = self._origins[c.origin].name.decode("ascii")
            if verify == ossl.X509_V_ERR_HOSTNAME_MISMATCH:
                text = f"Hostname mismatch, certificate is not valid for '{name}'."
            elif verify == ossl.X509_V_ERR_IP_ADDRESS_MISMATCH:
                text = f"IP address mismatch, certificate is not valid for '{name}'."
            else:
                text = ossl.X509_verify_cert_error_string(verify).decode("utf-8", "replace")
            return self._fail_conn(fd, E_TLS, "TLS: " + text)
        reason = _SSL_REASONS.get((ossl.ERR_GET_LIB(code), ossl.ERR_GET_REASON(code))) if code != 0 else None
        if reason is None or c.state != C_HANDSHAKE:
            return self._hand_over(fd)
        return self._fail_conn(fd, E_TLS, "TLS: " + reason)

    cdef int _readable(self, int32_t fd, uint32_t ev) except -1:
        """Read what the socket has. Its events are edge-triggered, so this reads until the
        kernel has nothing more whenever the event also reported the peer's close (``ev``): a
        FIN or RST that came with the last bytes raises no further event. Without one, a read
        shorter than the buffer took everything, and any later arrival raises a new edge."""
        cdef Conn *c = &self._conns[fd]
        cdef ssize_t n
        cdef int r
        cdef bint drain = (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0
        while True:
            n = recv(fd, self._rbuf, READ_SIZE, 0)
            if n < 0:
                if errno == EINTR:
                    continue
                if errno == EAGAIN:
                    return 0
                if c.state == C_IDLE:
                    self._close(fd)
                else:
                    self._io_failure(fd, errno)
                return 0
            if c.state == C_IDLE:
                self._close(fd)  # the peer closed it, or sent bytes nobody asked for
                return 0
            if n == 0:
                self._eof(fd)
                return 0
            if self._flight[self._mons[c.mon].pos].first_ns == 0:
                self._flight[self._mons[c.mon].pos].first_ns = mono_ns()
            r = self._feed(fd, self._rbuf, n)
            if r != 0 or c.state != C_BUSY or (n < READ_SIZE and not drain):
                return 0  # (``c`` is still valid: nothing here grows the table)

    cdef int _tls_readable(self, int32_t fd) except -1:
        """``_readable`` through TLS: records are decrypted one at a time, so it reads until
        OpenSSL wants more from the socket (or the check ended)."""
        cdef Conn *c = &self._conns[fd]
        cdef int n, e
        while True:
            ossl.ERR_clear_error()
            n = ossl.SSL_read(c.ssl, self._rbuf, READ_SIZE)
            if n <= 0:
                e = ossl.SSL_get_error(c.ssl, n)
                if e == ossl.SSL_ERROR_WANT_READ or e == ossl.SSL_ERROR_WANT_WRITE:
                    ossl.ERR_clear_error()
                    return 0
                if c.state == C_IDLE:
                    ossl.ERR_clear_error()
                    self._close(fd)
                    return 0
                return self._tls_failure(fd, e)
            if c.state == C_IDLE:
                self._close(fd)  # bytes nobody asked for
                return 0
            if self._flight[self._mons[c.mon].pos].first_ns == 0:
                self._flight[self._mons[c.mon].pos].first_ns = mono_ns()
            if self._feed(fd, self._rbuf, n) != 0 or c.state != C_BUSY:
                return 0

    cdef int _feed(self, int32_t fd, const char *data, Py_ssize_t n) except -1:
        """Consume response bytes; 1 when the check ended (recorded or handed over)."""
        cdef Conn *c = &self._conns[fd]
        cdef Mon *m = &self._mons[c.mon]
        cdef const char *end
        cdef const char *buf
        cdef Py_ssize_t used, take, cap, scan
        cdef char *grown
        if not c.in_body:
            if c.head_len == 0:
                end = <const char *>memmem(data, n, b"\r\n\r\n", 4)
                if end != NULL:
                    used = end - data + 4
                    if used > MAX_HEAD or self._parse_head(fd, data, used) < 0:
                        return self._hand_over(fd)
                    data += used
                    n -= used
                elif n > MAX_HEAD:
                    return self._hand_over(fd)
            if not c.in_body:  # headers in pieces: gather them, scanning only what is new
                if c.head_len + n > MAX_HEAD + 3:
                    return self._hand_over(fd)
                if c.head_len + n > c.head_cap:
                    cap = doubled(c.head_cap, 1024, c.head_len + n)
                    grown = <char *>realloc(c.head, cap)
                    if grown == NULL:
                        raise MemoryError()
                    c.head = grown
                    c.head_cap = <int32_t>cap
                memcpy(c.head + c.head_len, data, n)
                scan = c.head_len - 3 if c.head_len > 3 else 0
                c.head_len += <int32_t>n
                end = <const char *>memmem(c.head + scan, c.head_len - scan, b"\r\n\r\n", 4)
                if end == NULL:
                    return 0
                used = end - c.head + 4
                if used > MAX_HEAD or self._parse_head(fd, c.head, used) < 0:
                    return self._hand_over(fd)
                data = c.head + used  # still valid: freed only at the next response or close
                n = c.head_len - used
        # body
        if c.chunked:
            return self._chunks(fd, data, n)
        if c.body_left < 0:  # ends at EOF
            return self._body(fd, data, n)
        take = n if n < c.body_left else c.body_left
        c.body_left -= take
        if n > take:
            c.close_after = 1  # bytes beyond the response: the connection is out of step
        if self._body(fd, data, take):
            return 1
        if c.body_left == 0:
            return self._complete(fd)
        return 0

    cdef int _body(self, int32_t fd, const char *data, Py_ssize_t n) except -1:
        """Body bytes (after framing): searched for the keyword within the first ``max_body``,
        counted; past ``max_body`` the response ends there (1), as the general checker
        stops reading (the connection is not reused)."""
        cdef Conn *c = &self._conns[fd]
        cdef Mon *m = &self._mons[c.mon]
        cdef int64_t room = m.max_body - c.body_seen
        if room > 0 and n > 0 and m.test >= 0 and not c.redirect:  # (a redirect's body is not tested)
            if self._tests.size[m.test] and not c.found:
                self._search(c, m.test, data, n if n < room else room)
            if m.json:
                self._gather(c, data, n if n < room else room)
        c.body_seen += n
        if c.body_seen > m.max_body:
            c.close_after = 1
            return self._complete(fd)
        return 0

    cdef int _search(self, Conn *c, int32_t k, const char *data, Py_ssize_t n) except -1:
        """Look for keyword ``k`` in the body read so far, of which ``data`` is the newest
        part: in ``data``, and across its start (the last bytes before it, kept in
        ``c.carry``, joined to its first ones)."""
        cdef const char *word = self._tests.data[k]
        cdef Py_ssize_t size = self._tests.size[k], head, keep
        if c.carry_len:
            head = n if n < size - 1 else size - 1
            memcpy(self._window, c.carry, c.carry_len)
            memcpy(self._window + c.carry_len, data, head)
            if memmem(self._window, c.carry_len + head, word, size) != NULL:
                c.found = 1
                return 0
        if memmem(data, n, word, size) != NULL:
            c.found = 1
            return 0
        if size == 1:
            return 0
        if c.carry == NULL:
            c.carry = <char *>malloc(size)
            if c.carry == NULL:
                raise MemoryError()
        if n >= size - 1:
            memcpy(c.carry, data + n - (size - 1), size - 1)
            c.carry_len = <int32_t>(size - 1)
        else:  # (the carry's tail, then all of data)
            keep = size - 1 - n if c.carry_len > size - 1 - n else c.carry_len
            memmove(c.carry, c.carry + c.carry_len - keep, keep)
            memcpy(c.carry + keep, data, n)
            c.carry_len = <int32_t>(keep + n)
        return 0

    cdef int _gather(self, Conn *c, const char *data, Py_ssize_t n) except -1:
        """Keep body bytes for the JSON test (the caller keeps them within ``max_body``)."""
        cdef int64_t cap
        if c.body_len + n > c.body_cap:
            cap = doubled(c.body_cap, 4096, c.body_len + n)
            grown = <char *>realloc(c.body, cap)
            if grown == NULL:
                raise MemoryError()
            c.body, c.body_cap = grown, <int32_t>cap
        memcpy(c.body + c.body_len, data, n)
        c.body_len += <int32_t>n
        return 0

    cdef int _chunks(self, int32_t fd, const char *data, Py_ssize_t n) except -1:
        """Decode a chunked body (RFC 9112 section 7.1): sizes of hex digits ended by CRLF,
        each chunk's bytes followed by CRLF, an empty chunk and CRLF at the end. A size with
        an extension or whitespace, a trailer field, or anything malformed goes to the general
        checker (which knows every case and its error); 1 when the check ended."""
        cdef Conn *c = &self._conns[fd]
        cdef Py_ssize_t i = 0, take
        cdef unsigned char ch
        cdef int v
        while i < n:
            ch = <unsigned char>data[i]
            if c.chunk == K_DATA:
                take = n - i if n - i < c.body_left else c.body_left
                c.body_left -= take
                if c.body_left == 0:
                    c.chunk = K_DATA_CR
                if self._body(fd, data + i, take):
                    return 1
                i += take
                continue
            i += 1
            if c.chunk == K_SIZE:
                if b'0' <= ch <= b'9':
                    v = ch - 48
                elif b'a' <= (ch | 0x20) <= b'f':
                    v = (ch | 0x20) - 87
                elif ch == b'\r' and c.digits:
                    c.chunk = K_SIZE_LF
                    continue
                else:
                    return self._hand_over(fd)
                if c.digits == 15:
                    return self._hand_over(fd)
                c.digits += 1
                c.body_left = c.body_left * 16 + v
            elif c.chunk == K_SIZE_LF:
                if ch != b'\n':
                    return self._hand_over(fd)
                c.digits = 0
                c.chunk = K_DATA if c.body_left else K_END_CR
            elif c.chunk == K_DATA_CR or c.chunk == K_END_CR:
                if ch != b'\r':
                    return self._hand_over(fd)
                c.chunk += 1
            elif c.chunk == K_DATA_LF:
                if ch != b'\n':
                    return self._hand_over(fd)
                c.chunk = K_SIZE
                c.body_left = 0
            else:  # K_END_LF
                if ch != b'\n':
                    return self._hand_over(fd)
                if i < n:
                    c.close_after = 1  # bytes beyond the response
                return self._complete(fd)
        return 0

    cdef int _parse_head(self, int32_t fd, const char *p, Py_ssize_t n) except -2:
        """Parse a status line and headers (``n`` bytes, ending in CRLF CRLF); -1 when the
        response needs the general checker.

        Strict (RFC 9112), so that what is judged here is judged the same by the general
        checker: ``HTTP/1.0`` or ``HTTP/1.1``, a three-digit status from 200, every line ended
        by CRLF with no other control byte (a bare CR or LF, a NUL), header names of token
        bytes followed at once by the colon (no space before it, no obs-fold), at most one
        ``Content-Length`` of digits, or one ``Transfer-Encoding: chunked`` without it (HTTP/1.1
        only). Anything else is handed over: the general checker reports it as
        ``bad_response``, or knows the case (1xx, other codings)."""
        cdef Conn *c = &self._conns[fd]
        cdef Mon *m = &self._mons[c.mon]
        cdef Py_ssize_t i, k, line, colon, vs, ve, eol, loc_start = 0, loc_end = 0
        cdef int status, minor
        cdef int64_t length = -1, v
        cdef int32_t hop = self._flight[m.pos].hop
        cdef bint keep = False, close_ = False, location = False, chunked = False, head_only
        cdef char *grown
        if n < 16 or p[0] != b'H' or p[1] != b'T' or p[2] != b'T' or p[3] != b'P' or p[4] != b'/' \
                or p[5] != b'1' or p[6] != b'.' or not (p[7] == b'0' or p[7] == b'1') or p[8] != b' ':
            return -1
        minor = p[7] - 48
        if not (b'1' <= p[9] <= b'9' and b'0' <= p[10] <= b'9' and b'0' <= p[11] <= b'9') \
                or not (p[12] == b' ' or p[12] == b'\r'):
            return -1
        status = (p[9] - 48) * 100 + (p[10] - 48) * 10 + (p[11] - 48)
        if status < 200:
            return -1  # interim responses: the general checker
        eol = line_end(p, 12, n)  # the reason phrase
        if eol < 0:
            return -1
        i = eol + 2
        while True:  # one header line per turn; the block ends with an empty line
            if i + 1 >= n:
                return -1
            if p[i] == b'\r':
                if p[i + 1] != b'\n':
                    return -1
                break
            line = i
            while i < n and is_tchar(<unsigned char>p[i]):
                i += 1
            if i == line or i >= n or p[i] != b':':
                return -1  # an empty name, a byte that is not a token, or space before the colon
            colon = i
            eol = line_end(p, colon + 1, n)
            if eol < 0:
                return -1
            i = eol + 2
            vs = colon + 1
            ve = eol
            while vs < ve and (p[vs] == b' ' or p[vs] == b'\t'):
                vs += 1
            while ve > vs and (p[ve - 1] == b' ' or p[ve - 1] == b'\t'):
                ve -= 1
            if name_is(p + line, colon - line, b"content-length", 14):
                if length >= 0 or ve == vs or ve - vs > 15:
                    return -1
                v = 0
                for k in range(vs, ve):
                    if not b'0' <= p[k] <= b'9':
                        return -1
                    v = v * 10 + (p[k] - 48)
                length = v
            elif name_is(p + line, colon - line, b"transfer-encoding", 17):
                if chunked or not name_is(p + vs, ve - vs, b"chunked", 7):
                    return -1  # (a second one, or codings: the general checker)
                chunked = True
            elif name_is(p + line, colon - line, b"connection", 10):
                if has_token(p + vs, ve - vs, b"close", 5):
                    close_ = True
                if has_token(p + vs, ve - vs, b"keep-alive", 10):
                    keep = True
            elif name_is(p + line, colon - line, b"location", 8) and not location:
                location = True  # (the first one, as the general checker takes it)
                loc_start, loc_end = vs, ve
        if i + 2 != n:
            return -1  # (the caller cut the block at its first CRLF CRLF)
        if chunked and (length >= 0 or minor == 0):
            return -1  # (both framings at once is an error; chunks in HTTP/1.0 are odd)
        if m.follow and loc_end > loc_start and (status == 301 or status == 302 or status == 303
                                                 or status == 307 or status == 308):
            grown = <char *>realloc(c.location, loc_end - loc_start)
            if grown == NULL:
                raise MemoryError()
            c.location = grown
            memcpy(c.location, p + loc_start, loc_end - loc_start)
            c.location_len = <int32_t>(loc_end - loc_start)
            c.redirect = 1
        c.status = status
        c.in_body = 1
        c.body_seen = 0
        c.close_after = close_ or (minor == 0 and not keep)
        head_only = m.head_only if hop < 0 else memcmp(self._hops.data[hop], b"HEAD ", 5) == 0
        if head_only or status == 204 or status == 304:
            c.body_left = 0
        elif chunked:
            c.chunked = 1
            c.chunk = K_SIZE
            c.digits = 0
            c.body_left = 0
        elif length >= 0:
            c.body_left = length
        else:
            c.body_left = -1
            c.close_after = 1
        return 0

    cdef int _eof(self, int32_t fd) except -1:
        cdef Conn *c = &self._conns[fd]
        cdef Mon *m = &self._mons[c.mon]
        if c.in_body and c.body_left < 0:
            c.close_after = 1
            return self._complete(fd)
        if self._flight[m.pos].first_ns == 0 and c.reused and not m.retried:
            return self._retry(fd)
        if c.in_body:
            return self._fail_conn(fd, E_CLOSED, "connection closed before the body was complete")
        if c.head_len:
            return self._hand_over(fd)  # a partial head, then EOF: let the general checker judge it
        return self._fail_conn(fd, E_CLOSED, "connection closed before a response")

    cdef int _retry(self, int32_t fd) except -1:
        """A reused connection died before answering: once more on a fresh one."""
        cdef int32_t s = self._conns[fd].mon
        self._conns[fd].mon = -1
        self._close(fd)
        self._mons[s].retried = 1
        self._mons[s].fd = -1
        self._flight[self._mons[s].pos].first_ns = 0
        return self._go(s, False)

    cdef int _io_failure(self, int32_t fd, int err) except -1:
        cdef Conn *c = &self._conns[fd]
        cdef int32_t s = c.mon
        cdef Mon *m = &self._mons[s]
        if c.state == C_BUSY and self._flight[m.pos].first_ns == 0 and c.reused and not m.retried:
            return self._retry(fd)
        if c.state == C_BUSY and not c.in_body and c.head_len:
            return self._hand_over(fd)  # part of a head: the general checker may refuse it already
        cdef int status = c.status if c.in_body else 0  # (a failure after the head keeps its status)
        c.mon = -1
        self._close(fd)
        m.fd = -1
        self._os_failure(s, err, status)
        return 0

    cdef int _os_failure(self, int32_t s, int err, int status=0) except -1:
        code, message = classify_errno(err)
        self._record(s, False, status, code, message)
        return 0

    cdef int _fail_conn(self, int32_t fd, int code, str message) except -1:
        cdef int32_t s = self._conns[fd].mon
        cdef int status = self._conns[fd].status if self._conns[fd].in_body else 0
        self._conns[fd].mon = -1
        self._close(fd)
        self._mons[s].fd = -1
        self._record(s, False, status, code, message)
        return 0

    cdef int _complete(self, int32_t fd) except -1:
        """The response ended: judge its status, park or close the connection, record; 1."""
        cdef Conn *c = &self._conns[fd]
        cdef int32_t s = c.mon
        cdef Mon *m = &self._mons[s]
        cdef int status = c.status
        cdef bint ok = 0 <= status < 1000 and self._tables.data[m.table][status] != 0
        cdef bint found = c.found
        if c.redirect:
            return self._redirect(fd)
        problem = None
        if ok and m.json:  # (judged before the connection is parked or closed: the body is in it)
            try:
                problem = self.json_judge(self._tests.note(m.test), PyBytes_FromStringAndSize(c.body, c.body_len),
                                          c.body_seen > m.max_body)
            except Exception:
                return self._hand_over(fd)  # (the general checker says what it makes of it)
            if c.body_cap > 65536:  # (an idle connection holds no big body)
                free(c.body)
                c.body = NULL
                c.body_cap = 0
        self._let_go(fd)
        if not ok:
            self._record(s, False, status, E_STATUS,
                         f"status {status}, expected {self._tables.note(m.table)}")
        elif m.test >= 0 and self._tests.size[m.test] and not found:
            self._record(s, False, status, E_KEYWORD, "keyword not found in the response body")
        elif problem is not None:
            self._record(s, False, status, E_JSON, problem)
        else:
            self._record(s, True, status, 0, None)
        return 1

    cdef int _let_go(self, int32_t fd) except -1:
        """The response on ``fd`` ended: park the connection for the monitor's next check
        when it carried the monitor's own request (a redirect's hop asks for a close, as the
        general checker's does), kept alive, whole, and the response allows; else close it."""
        cdef Conn *c = &self._conns[fd]
        cdef Mon *m = &self._mons[c.mon]
        # (a response that came before the whole request was written leaves it out of step)
        cdef bint park = (m.keep_alive and not c.close_after and c.sent == self._req_total(m)
                          and self._flight[m.pos].hop < 0)
        c.mon = -1
        m.fd = -1
        if park:
            c.state = C_IDLE
            c.reused = 1
            c.sent = 0
            c.in_body = 0
            if c.head != NULL:
                free(c.head)
                c.head = NULL
            c.head_len = c.head_cap = 0
            self._idle_push(fd)
        else:
            self._close(fd)
        return 0

    cdef int _redirect(self, int32_t fd) except -1:
        """A redirect to follow ended (its body read as framed, as the general checker reads
        it): fail past ``max_redirects``, else go on with the next hop on a new connection,
        timed as the check's last hop. 1."""
        cdef Conn *c = &self._conns[fd]
        cdef int32_t s = c.mon, h
        cdef Mon *m = &self._mons[s]
        cdef int status = c.status
        cdef Flight *f
        cdef Origin *o
        location = PyBytes_FromStringAndSize(c.location, c.location_len)
        self._let_go(fd)
        f = &self._flight[m.pos]
        if f.hops >= m.max_redirects:
            self._record(s, False, status, E_REDIRECTS, f"more than {m.max_redirects} redirects")
            return 1
        key = (f.hop, status, location)
        routes = self._routes.get(m.mid)
        found = routes.get(key) if routes is not None else None
        if found is not None:
            h = found
            self._hops.users[h] += 1  # (the check's)
        else:
            if self.route is None:
                return self._hand_over_check(s, True)
            step = self.route(m.mid, self._hops.note(f.hop)[0] if f.hop >= 0 else None, status, location)
            if step is None:
                return self._hand_over_check(s, True)
            if isinstance(step, str):
                self._record(s, False, status, E_BAD_RESPONSE, step)
                return 1
            target, origin, request = step
            if not 0 <= origin < self._norigins or not isinstance(request, bytes):
                raise ValueError("route gave a bad origin or request")
            h = self._hops.take((origin, request), request, (target, origin))  # (the check's)
            if routes is None:
                routes = self._routes[m.mid] = {}
            if len(routes) < MAX_ROUTES and len(location) <= MAX_KEPT_LOCATION:
                routes[key] = h
                self._hops.users[h] += 1  # (the route's)
        f = &self._flight[m.pos]  # (route may have grown the origins, nothing else)
        if f.hop >= 0:
            self._hops.give(f.hop)
        f.hop = h
        f.hops += 1
        f.origin = <int32_t>self._hops.note(h)[1]
        o = &self._origins[f.origin]
        if not o.resolved:
            return self._hand_over_check(s, False)
        # Phases are the last hop's.
        f.connect_us = f.tls_us = -1
        f.connect_ns = f.first_ns = f.sent_ns = f.tls_ns = 0
        f.dns_us = o.dns_us
        o.dns_us = -1
        m.retried = 1  # (a new connection: nothing to retry)
        self._go(s, False)
        return 1

    cdef int _hand_over(self, int32_t fd) except -1:
        """The response needs the general checker: drop this attempt and hand the monitor over
        for good."""
        cdef int32_t s = self._conns[fd].mon
        self._conns[fd].mon = -1
        self._close(fd)
        self._mons[s].fd = -1
        return self._hand_over_check(s, True)

    cdef int _hand_over_check(self, int32_t s, bint for_good) except -1:
        """Drop check ``s`` (no connection of it is open) and give it to ``fallback``; the
        monitor leaves this path when ``for_good``. 1."""
        cdef Mon *m = &self._mons[s]
        if for_good:
            m.live = 0
            self.fallbacks += 1
        else:
            self.detours += 1
        self._unflight(s)
        self._fallback(m.mid, for_good)
        return 1

    cdef int _record(self, int32_t s, bint ok, int status, int code, str error) except -1:
        cdef Mon *m = &self._mons[s]
        if m.pos < 0:
            raise RuntimeError("a result for a check not in flight")
        cdef Flight f = self._flight[m.pos]  # (a copy: taking it out of flight moves another in its place)
        cdef int64_t now = mono_ns()
        cdef int64_t ttfb = (f.first_ns - f.sent_ns) // 1000 if f.first_ns and f.sent_ns else -1
        self._unflight(s)
        self._buffer.push(m.mid, f.ts_us, ok, (now - f.start_ns) // 1000, status, code, f.dns_us, f.connect_us,
                          f.tls_us, ttfb, error)
        self._latency_sum += (now - f.start_ns) // 1000
        self._done += 1
        if not ok or not m.quiet:
            self._notable.append((m.mid, ok, f.ts_us, error))
        return 0

    def feed_test(self, int64_t monitor_id, int fd, list pieces not None, int end) -> bint:
        """For tests and fuzzing: judge a response as if ``pieces`` (bytes) arrived one by one
        on ``fd`` for a check of ``monitor_id`` whose request was written, then the peer closed
        the connection (``end`` 1) or reset it (2), or nothing more came (0). ``fd`` must be a socket this engine may close. The outcome lands where a
        real check's does (a row in the buffer, or ``fallback``); True when the check ended,
        False when it still waits (it is then dropped, without a row)."""
        cdef int32_t s = idmap_get(&self._slots, monitor_id)
        if s < 0 or fd < 0:
            raise ValueError("unknown monitor or bad fd")
        cdef Mon *m = &self._mons[s]
        cdef Conn *c
        cdef Flight *f
        cdef bytes piece
        if m.pos >= 0 or m.queued:
            raise ValueError("the monitor has a check running")
        if fd >= self._nconns and not self._grow_conns(fd + 1):
            raise MemoryError()
        c = &self._conns[fd]
        if c.state != C_FREE:
            raise ValueError("fd is in use here")
        f = self._fly(s)
        f.sent_ns = f.start_ns
        m.retried = 1
        c = self._conn_begin(fd, s, C_BUSY)
        c.sent = self._req_total(m)  # as if the request were written
        m.fd = fd
        for piece in pieces:
            if m.fd != fd or c.state != C_BUSY:
                break
            if self._flight[m.pos].first_ns == 0:
                self._flight[m.pos].first_ns = mono_ns()
            self._feed(fd, PyBytes_AS_STRING(piece), PyBytes_GET_SIZE(piece))
        if end and m.fd == fd and c.state == C_BUSY:
            if end == 1:
                self._eof(fd)
            else:
                self._io_failure(fd, 104)  # ECONNRESET
        if m.fd == fd and c.state == C_BUSY and c.head_len:
            self._hand_over(fd)  # as ``expire`` does with a partial head
        ended = m.fd != fd
        if not ended:
            c.mon = -1
            self._close(fd)
            m.fd = -1
            self._unflight(s)
        elif c.state == C_IDLE:
            self._close(fd)  # parked for reuse: not ours to keep
        self._report()
        return ended

    def expire(self) -> None:
        """Fail the checks past their deadline (the caller runs this every few ms), then
        report what finished since the last report."""
        cdef int64_t now = mono_ns()
        cdef int32_t i = 0, s, fd
        cdef Mon *m
        while i < self._nflight:
            s = self._flight[i].slot
            m = &self._mons[s]
            if now - self._flight[i].start_ns < m.timeout_ns:
                i += 1
                continue
            fd = m.fd
            if fd >= 0 and self._conns[fd].state == C_BUSY and self._conns[fd].head_len:
                # Part of a head, then silence: the general checker's parser may have refused
                # those bytes already (it checks as it goes); let it say, as for any head.
                self._hand_over(fd)
                continue
            phase = ("connect" if fd >= 0 and self._conns[fd].state == C_CONNECTING else
                     "tls" if fd >= 0 and self._conns[fd].state == C_HANDSHAKE else "waiting for the response")
            if fd >= 0:
                self._conns[fd].mon = -1
                self._close(fd)
                m.fd = -1
            self._record(s, False, 0, E_TIMEOUT, f"timed out after {m.timeout_ns / 1e9:g} s ({phase})")
            # _record removed slot i (the last one moved into it): look at i again
        self._report()

    cdef int _report(self) except -1:
        self._drain()
        if self._done == 0:
            return 0
        count, notable = self._done, self._notable
        self._done = 0
        self._notable = []
        self._on_done(count, notable)
        return 0

    # bookkeeping ----------------------------------------------------------------------
    cdef int _unflight(self, int32_t s) except -1:
        cdef Mon *m = &self._mons[s]
        cdef int32_t pos = m.pos
        if pos < 0:
            return 0
        if self._flight[pos].hop >= 0:
            self._hops.give(self._flight[pos].hop)
        self._nflight -= 1
        self._flight[pos] = self._flight[self._nflight]
        self._mons[self._flight[pos].slot].pos = pos
        m.pos = -1
        return 0

    cdef void _idle_push(self, int32_t fd) noexcept:
        cdef Conn *c = &self._conns[fd]
        cdef Origin *o = &self._origins[c.origin]
        c.idle_prev = -1
        c.idle_next = o.idle_head
        if o.idle_head >= 0:
            self._conns[o.idle_head].idle_prev = fd
        o.idle_head = fd
        c.lru_prev = -1
        c.lru_next = self._lru_head
        if self._lru_head >= 0:
            self._conns[self._lru_head].lru_prev = fd
        else:
            self._lru_tail = fd
        self._lru_head = fd
        self._idle_total += 1
        while self._idle_total > self.max_idle and self._lru_tail >= 0:
            self._close(self._lru_tail)  # (unlinks it from both lists)

    cdef void _idle_unlink(self, int32_t fd) noexcept:
        cdef Conn *c = &self._conns[fd]
        cdef Origin *o = &self._origins[c.origin]
        if c.idle_prev >= 0:
            self._conns[c.idle_prev].idle_next = c.idle_next
        else:
            o.idle_head = c.idle_next
        if c.idle_next >= 0:
            self._conns[c.idle_next].idle_prev = c.idle_prev
        c.idle_prev = c.idle_next = -1
        if c.lru_prev >= 0:
            self._conns[c.lru_prev].lru_next = c.lru_next
        else:
            self._lru_head = c.lru_next
        if c.lru_next >= 0:
            self._conns[c.lru_next].lru_prev = c.lru_prev
        else:
            self._lru_tail = c.lru_prev
        c.lru_prev = c.lru_next = -1
        self._idle_total -= 1

    cdef void _close(self, int32_t fd) noexcept:
        """Close a socket with an RST (``SO_LINGER`` 0 was set at creation)."""
        cdef Conn *c = &self._conns[fd]
        if c.state == C_FREE:
            return
        if c.state == C_IDLE:
            self._idle_unlink(fd)
        c.state = C_FREE
        c.mon = -1
        if c.head != NULL:
            free(c.head)
            c.head = NULL
        c.head_len = c.head_cap = 0
        free(c.carry)
        free(c.body)
        free(c.location)
        c.carry = c.body = c.location = NULL
        c.location_len = 0
        c.body_len = c.body_cap = 0
        if c.ssl != NULL:
            # No close_notify (the socket goes with an RST, as on the general path), but
            # counted as shut down: else OpenSSL marks the session unresumable at the free.
            ossl.SSL_set_shutdown(c.ssl, ossl.SSL_SENT_SHUTDOWN | ossl.SSL_RECEIVED_SHUTDOWN)
            ossl.SSL_free(c.ssl)
            c.ssl = NULL
        close(fd)

    cdef void _close_all(self) noexcept:
        cdef int32_t fd
        for fd in range(self._nconns):
            self._close(fd)
        for fd in range(self._nflight):
            if self._flight[fd].hop >= 0:
                self._hops.give(self._flight[fd].hop)
        for fd in range(self._nmons):
            self._mons[fd].fd = -1
            self._mons[fd].pos = -1 if self._mons[fd].used else self._mons[fd].pos
            if self._mons[fd].queued:
                self._mons[fd].queued = 0
        self._nflight = 0
        self._qhead = self._qtail = 0
        self.queued = 0

    def close(self) -> None:
        """Drop every connection and check in flight (no results)."""
        self._close_all()

    cdef bint _grow_conns(self, int32_t need) noexcept:
        cdef int32_t size = self._nconns * 2 if self._nconns else 1024
        while size < need:
            size *= 2
        grown = <Conn *>realloc(self._conns, size * sizeof(Conn))
        if grown == NULL:
            return False
        memset(grown + self._nconns, 0, (size - self._nconns) * sizeof(Conn))
        self._conns = grown
        self._nconns = size
        return True

    cdef bint _grow_mons(self, int32_t size) noexcept:
        """Room for ``size`` monitor slots."""
        mons = <Mon *>realloc(self._mons, size * sizeof(Mon))
        if mons == NULL:
            return False
        self._mons = mons
        self._cap_mons = size
        return True

    cdef int _reserve(self, Py_ssize_t n) except -1:
        """Room for ``n`` more bytes at the arena's end (it may move: no pointer into it
        is kept across calls, only offsets)."""
        cdef int64_t cap
        if self._arena_len + n <= self._arena_cap:
            return 0
        cap = doubled(self._arena_cap, 65536, self._arena_len + n)
        grown = <char *>realloc(self._arena, cap)
        if grown == NULL:
            raise MemoryError()
        self._arena = grown
        self._arena_cap = cap
        return 0

    cdef int _compact_maybe(self) except -1:
        """Once garbage is over a megabyte and half the arena, copy the live pieces into a
        new one: the arena stays within twice what is live, and each byte put is copied at
        most once more on average."""
        cdef int64_t live = self._arena_len - self._garbage, at = 0
        cdef int64_t cap = doubled(0, 65536, live + live // 4)
        cdef int32_t s
        cdef Mon *m
        cdef char *fresh
        if self._garbage <= 1 << 20 or 2 * self._garbage <= self._arena_len:
            return 0
        fresh = <char *>malloc(cap)
        if fresh == NULL:
            raise MemoryError()
        for s in range(self._nmons):
            m = &self._mons[s]
            if m.used:
                memcpy(fresh + at, self._arena + m.at, m.req_len + m.packed_len)
                m.at = at
                at += m.req_len + m.packed_len
        free(self._arena)
        self._arena, self._arena_len, self._arena_cap, self._garbage = fresh, at, cap, 0
        return 0


cdef int _on_new_session(ossl.SSL *ssl, ossl.SSL_SESSION *session) noexcept nogil:
    """OpenSSL's word that the server gave a session (called inside ``SSL_connect`` or
    ``SSL_read``, which run with the GIL held): kept by the connection's origin."""
    cdef void *engine = ossl.SSL_CTX_get_app_data(ossl.SSL_get_SSL_CTX(ssl))
    cdef intptr_t origin = (<intptr_t>ossl.SSL_get_app_data(ssl) >> 1) - 1
    if engine == NULL:
        return 0
    with gil:
        return (<HttpEngine>engine)._keep_session(origin, session)


cdef int _verify_chain(ossl.X509_STORE_CTX *store, void *arg) noexcept nogil:
    """OpenSSL's chain verification, through ``HttpEngine._verify`` (inside ``SSL_connect``,
    which runs with the GIL held)."""
    cdef ossl.SSL *ssl = <ossl.SSL *>ossl.X509_STORE_CTX_get_ex_data(store, ossl.SSL_get_ex_data_X509_STORE_CTX_idx())
    cdef void *engine
    if ssl == NULL:
        return ossl.X509_verify_cert(store)
    engine = ossl.SSL_CTX_get_app_data(ossl.SSL_get_SSL_CTX(ssl))
    with gil:
        return (<HttpEngine>engine)._verify(store, <intptr_t>ossl.SSL_get_app_data(ssl))


cdef bint chain_digest(ossl.X509_STORE_CTX *store, unsigned char *out) noexcept:
    """SHA-256 over the SHA-256 of each certificate the server sent, in order; False when it
    sent none or more than 16."""
    cdef ossl.stack_st_X509 *sent = ossl.X509_STORE_CTX_get0_untrusted(store)
    cdef unsigned char each[16 * 32]
    cdef unsigned int size
    cdef int i, n = ossl.sk_X509_num(sent) if sent != NULL else 0
    if not 0 < n <= 16:
        return False
    for i in range(n):
        if ossl.X509_digest(ossl.sk_X509_value(sent, i), ossl.EVP_sha256(), each + 32 * i, &size) != 1:
            return False
    return ossl.EVP_Digest(each, 32 * n, out, &size, ossl.EVP_sha256(), NULL) == 1


cdef int64_t chain_until(ossl.X509_STORE_CTX *store) noexcept:
    """When the first certificate of the verified chain (the trust anchor included) expires,
    as Unix time; 0 when it cannot be told."""
    cdef ossl.stack_st_X509 *chain = ossl.X509_STORE_CTX_get0_chain(store)
    cdef int i, days, secs, n = ossl.sk_X509_num(chain) if chain != NULL else 0
    cdef int64_t now = time(NULL), until = 0, at
    for i in range(n):
        if ossl.ASN1_TIME_diff(&days, &secs, NULL, ossl.X509_get0_notAfter(ossl.sk_X509_value(chain, i))) != 1:
            return 0
        at = now + <int64_t>days * 86400 + secs
        if until == 0 or at < until:
            until = at
    return until


cdef bint session_usable(ossl.SSL_SESSION *session) noexcept:
    """A kept session may be offered: resumable, within its lifetime, and its certificate
    still valid now (a resumed handshake verifies nothing: an expiry since the full one must
    show as a full handshake's failure)."""
    cdef ossl.X509 *peer
    if not ossl.SSL_SESSION_is_resumable(session):
        return False
    if ossl.SSL_SESSION_get_time(session) + ossl.SSL_SESSION_get_timeout(session) <= time(NULL):
        return False
    peer = ossl.SSL_SESSION_get0_peer(session)
    return peer == NULL or ossl.X509_cmp_current_time(ossl.X509_get0_notAfter(peer)) > 0

