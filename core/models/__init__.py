"""Domain models: monitors (one spec Struct per kind), check results, transitions, incidents
and channels; accounts and users in ``accounts``, status pages and maintenance in ``pages``
(re-exported here: callers import from ``core.models``).

Wire names are camelCase (``rename="camel"``); Python attributes are snake_case. A monitor is
flat on the wire (``{"name": ..., "type": "http", "url": ...}``) and split here into the
common ``Monitor`` fields and its kind's ``spec`` Struct.

``parse_monitor`` validates field by field so that every bad field is reported at once, each
named (``url``, ``interval``, ``headers.X-Foo``), and nothing is built from a bad definition.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
import secrets
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

import msgspec

from core.models.accounts import KEY_SCOPES, ROLES, Account, ApiKey, NewApiKey, Principal, User, hash_api_key
from core.models.pages import INCIDENT_STATES, Maintenance, PageIncident, PageSection, PageUpdate, StatusPage

__all__ = [
    "INCIDENT_STATES",
    "KEY_SCOPES",
    "KINDS",
    "ROLES",
    "STATUSES",
    "TOKEN_KINDS",
    "Account",
    "AgentSpec",
    "AgentThresholds",
    "ApiKey",
    "CheckResult",
    "Delivery",
    "DnsSpec",
    "ErrorCode",
    "FieldError",
    "HttpSpec",
    "Incident",
    "Integration",
    "Maintenance",
    "Monitor",
    "MonitorTimes",
    "MonitorValidationError",
    "NewApiKey",
    "PageIncident",
    "PageSection",
    "PageUpdate",
    "PingSpec",
    "Principal",
    "PushSpec",
    "StatusPage",
    "TcpSpec",
    "TlsSpec",
    "Transition",
    "Uptime",
    "User",
    "hash_api_key",
    "monitor_to_wire",
    "parse_json_path",
    "parse_monitor",
    "parse_resolver",
    "parse_status_ranges",
    "private_target",
    "wire_target",
]

STATUSES = ("pending", "up", "down", "paused", "maintenance")


class ErrorCode(enum.IntEnum):
    """Why a check failed; stored as a small integer in ``checks.error_code``."""

    OK = 0
    TIMEOUT = 1
    DNS = 2
    REFUSED = 3
    RESET = 4
    TLS = 5
    BAD_RESPONSE = 6
    STATUS = 7
    KEYWORD = 8
    REDIRECTS = 9
    CONNECT = 10
    UNREACHABLE = 11
    CLOSED = 12
    EXPECT = 13
    INTERNAL = 14
    CERT_EXPIRING = 15
    NO_PUSH = 16
    PUSH_DOWN = 17
    JSON = 18
    AGENT_SILENT = 19
    AGENT_THRESHOLD = 20

    @property
    def label(self) -> str:
        return self.name.lower()


class CheckResult(msgspec.Struct, gc=False):
    """One check's outcome. Times are microseconds; phases are -1 when they did not happen."""

    ok: bool
    latency_us: int
    status_code: int = 0
    error_code: int = 0
    error: str | None = None
    dns_us: int = -1
    connect_us: int = -1
    tls_us: int = -1
    ttfb_us: int = -1


class Transition(msgspec.Struct, array_like=True, gc=False):
    """A monitor's status change, produced by ``core.state`` in a worker."""

    monitor_id: int
    ts_us: int
    old: str
    new: str
    cause: str | None = None
    #: Stored as usual (status, incidents) but no notification is queued: the monitor is
    #: flapping, and one "flapping" message stands in for the stream (set in the serve process).
    quiet: bool = False


Seconds = Annotated[float, msgspec.Meta(gt=0, le=86400)]
Interval = Annotated[int, msgspec.Meta(ge=1, le=86400)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Count = Annotated[int, msgspec.Meta(ge=0, le=100)]
Threshold = Annotated[int, msgspec.Meta(ge=1, le=100)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_WHITESPACE = re.compile(r"[ \r\n\t]")


class HttpSpec(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, tag="http",
               tag_field="type"):
    """An HTTP(S) check. ``keepAlive`` reuses pooled connections to the same origin across
    checks; the default opens a new connection per check and closes it with a reset."""

    kind: ClassVar[str] = "http"
    url: Annotated[str, msgspec.Meta(max_length=4096)]
    method: str = "GET"
    headers: dict[str, str] = {}
    body: Annotated[str, msgspec.Meta(max_length=65536)] | None = None
    expected_status: list[str] = msgspec.field(default_factory=lambda: ["200-299"])
    keyword: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None
    follow_redirects: bool = True
    max_redirects: Annotated[int, msgspec.Meta(ge=0, le=30)] = 10
    verify_tls: bool = True
    keep_alive: bool = False
    max_body_bytes: Annotated[int, msgspec.Meta(ge=0, le=64 * 1024 * 1024)] = 1024 * 1024
    #: The body as JSON: the value at ``jsonPath`` (``$.a.b[0].c``) must exist and, with
    #: ``expectedValue``, equal it as text (``true``, ``42``, ``ok``, ``null``).
    json_path: Annotated[str, msgspec.Meta(min_length=1, max_length=512)] | None = None
    expected_value: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    #: HTTPS: resume the origin's TLS session on the next connection (an abbreviated
    #: handshake, as browsers make), or take a chain identical to the one the origin verified
    #: last as verified, while its certificates are valid, where the compiled engine runs the
    #: check; false: a full handshake, certificate verification included, every time. (Last:
    #: packed monitors written before it read as the default.)
    tls_resume: bool = True

    def check_fields(self) -> list[FieldError]:
        errors: list[FieldError] = []
        # (every monitor is checked again when the server starts: its netloc is read once)
        try:
            parts = urlsplit(self.url)
            host = parts.hostname
        except ValueError:  # e.g. an unclosed "[" of an IPv6 address
            return [FieldError("url", "is not a valid URL")]
        if parts.scheme not in ("http", "https"):
            errors.append(FieldError("url", "must be an http:// or https:// URL"))
        elif not host:
            errors.append(FieldError("url", "must include a host"))
        elif not valid_host(host):
            errors.append(FieldError("url", "the host is not a valid host name or IP address"))
        elif "@" in parts.netloc:  # (a user name, even an empty one, or a password)
            errors.append(FieldError("url", "must not hold credentials (user:password@); send an "
                                            "Authorization header instead"))
        else:
            try:
                _ = parts.port
            except ValueError:
                errors.append(FieldError("url", "port must be in 1..65535"))
        if _WHITESPACE.search(self.url) is not None:
            errors.append(FieldError("url", "must not contain whitespace"))
        if self.method.upper() not in _METHODS:
            errors.append(FieldError("method", f"must be one of {', '.join(_METHODS)}"))
        for key, value in self.headers.items():
            errors.extend(_header_problems(key, value))
        if (problem := _status_ranges_problem(tuple(self.expected_status))) is not None:
            errors.append(FieldError("expectedStatus", problem))
        if self.json_path is not None and parse_json_path(self.json_path) is None:
            errors.append(FieldError("jsonPath", "must be a path like $.status or $.items[0].state"))
        if self.expected_value is not None and self.json_path is None:
            errors.append(FieldError("expectedValue", "needs jsonPath"))
        return errors

    def target(self) -> str:
        """What the monitor checks, as people name it (the CLI's list, alert messages)."""
        return self.url

    def address(self) -> tuple[str, str] | None:
        """(field, host) of the host this monitor connects to, for the target policy."""
        return "url", urlsplit(self.url).hostname or ""


class TcpSpec(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, tag="tcp",
              tag_field="type"):
    """A TCP connect check; optionally sends ``send`` and expects ``expect`` in the reply."""

    kind: ClassVar[str] = "tcp"
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    port: Port
    send: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    expect: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)] | None = None

    def check_fields(self) -> list[FieldError]:
        if not valid_host(self.host):
            return [FieldError("host", "must be a host name or IP address")]
        return []

    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def address(self) -> tuple[str, str] | None:
        return "host", self.host


class TlsSpec(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, tag="tls",
              tag_field="type"):
    """A TLS certificate check: the handshake must verify (chain, host name, dates), and the
    certificate must stay valid for at least ``minDaysValid`` more days."""

    kind: ClassVar[str] = "tls"
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    port: Port = 443
    min_days_valid: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 14

    def check_fields(self) -> list[FieldError]:
        if not valid_host(self.host):
            return [FieldError("host", "must be a host name or IP address")]
        return []

    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def address(self) -> tuple[str, str] | None:
        return "host", self.host


DNS_RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "PTR", "SRV", "CAA")


class DnsSpec(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, tag="dns",
              tag_field="type"):
    """A DNS check: ``host`` must have ``recordType`` records (and, with ``expectedValue``, one
    of them must equal it). ``resolver`` (``ip`` or ``ip:port``) asks that server instead of
    the system's resolvers: monitor your own DNS servers."""

    kind: ClassVar[str] = "dns"
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    record_type: str = "A"
    expected_value: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None
    resolver: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None

    def check_fields(self) -> list[FieldError]:
        errors = []
        if not valid_host(self.host) or is_ip_literal(self.host):  # PTR: give the in-addr.arpa name
            errors.append(FieldError("host", "must be a domain name"))
        if self.record_type.upper() not in DNS_RECORD_TYPES:
            errors.append(FieldError("recordType", f"must be one of {', '.join(DNS_RECORD_TYPES)}"))
        if self.resolver is not None and parse_resolver(self.resolver) is None:
            errors.append(FieldError("resolver", "must be an IP address, optionally with :port"))
        return errors

    def target(self) -> str:
        return f"{self.host} {self.record_type}"

    def address(self) -> tuple[str, str] | None:
        return None  # a name looked up (through the resolver), not a host connected to


_JSON_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")


def parse_json_path(path: str) -> tuple[str | int, ...] | None:
    """``$.a.b[0]["c d"]`` (the ``$`` and the first dot optional) -> ("a", "b", 0, "c d")."""
    rest = path.strip()
    rest = rest[1:] if rest.startswith("$") else rest
    if rest and rest[0] not in ".[":
        rest = "." + rest
    steps: list[str | int] = []
    while rest:
        match = _JSON_STEP.match(rest)
        if match is None:
            return None
        name, index, quoted, single = match.groups()
        steps.append(int(index) if index is not None else next(v for v in (name, quoted, single) if v is not None))
        rest = rest[match.end():]
    return tuple(steps)


def parse_resolver(value: str) -> tuple[str, int] | None:
    """``ip``, ``ip:port``, ``[ipv6]:port`` -> (ip, port), or None if it is none of those."""
    host, port = value, 53
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _, raw = value.partition(":")
        if not raw.isdigit():
            return None
        port = int(raw)
    if not is_ip_literal(host) or not 1 <= port <= 65535:
        return None
    return host, port


class PingSpec(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, tag="ping",
               tag_field="type"):
    """An ICMP echo check: ``host`` must answer a ping before the timeout."""

    kind: ClassVar[str] = "ping"
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]

    def check_fields(self) -> list[FieldError]:
        if not valid_host(self.host):
            return [FieldError("host", "must be a host name or IP address")]
        return []

    def target(self) -> str:
        return self.host

    def address(self) -> tuple[str, str] | None:
        return "host", self.host


_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _new_token() -> str:
    return secrets.token_urlsafe(18)


class PushSpec(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, tag="push",
               tag_field="type"):
    """A heartbeat: the monitored job calls ``/api/push/{pushToken}`` (GET or POST,
    ``?status=up|down&msg=&ping=``) at least once per interval; ``grace`` more seconds are
    allowed before it counts as down. The token is generated when not given.

    With a cron ``schedule`` (read in ``timezone``) the interval is not used: the job is due
    at each time the schedule names, and a run due at ``d`` must ping between ``d - grace``
    and ``d + grace`` (Healthchecks' rule, with the grace on both sides for clocks that
    differ), else it is down at ``d + grace``."""

    kind: ClassVar[str] = "push"
    push_token: str = msgspec.field(default_factory=_new_token)
    grace: Annotated[int, msgspec.Meta(ge=0, le=86400 * 7)] = 0
    schedule: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None  # (None: UTC)

    def check_fields(self) -> list[FieldError]:
        errors = []
        if not _TOKEN.match(self.push_token):
            errors.append(FieldError("pushToken", "must be 8 to 64 letters, digits, - or _"))
        return errors  # (the schedule and zone: the monitors service, which may read zone files)

    @property
    def token(self) -> str:
        return self.push_token

    def target(self) -> str:
        return f"/api/push/{self.push_token}"

    def address(self) -> tuple[str, str] | None:
        return None  # nothing is connected to: the monitored side calls in


Percent = Annotated[float, msgspec.Meta(gt=0, le=100)]


class AgentThresholds(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """Limits an agent's report must stay under (each optional): CPU busy, memory used and
    the fullest real filesystem in percent, and the 1-minute load average."""

    cpu_percent: Percent | None = None
    memory_percent: Percent | None = None
    disk_percent: Percent | None = None
    load1: Annotated[float, msgspec.Meta(gt=0, le=100_000)] | None = None


class AgentSpec(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True, tag="agent",
                tag_field="type"):
    """A server watched by ``xuptime agent``, which posts a report to
    ``/api/agent/{agentToken}/report`` every few seconds. A report over a threshold is a
    failed check with the reason (``disk / at 95% > 90%``); ``forReports`` such reports in a
    row make the monitor down. No report for ``interval + grace`` seconds is down
    (``agent_silent``). The token is generated when not given."""

    kind: ClassVar[str] = "agent"
    agent_token: str = msgspec.field(default_factory=_new_token)
    thresholds: AgentThresholds = msgspec.field(default_factory=AgentThresholds)
    for_reports: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    grace: Annotated[int, msgspec.Meta(ge=0, le=86400)] = 30

    def check_fields(self) -> list[FieldError]:
        if not _TOKEN.match(self.agent_token):
            return [FieldError("agentToken", "must be 8 to 64 letters, digits, - or _")]
        return []

    @property
    def token(self) -> str:
        return self.agent_token

    def target(self) -> str:
        return f"/api/agent/{self.agent_token}/report"

    def address(self) -> tuple[str, str] | None:
        return None  # the agent calls in


Spec = HttpSpec | TcpSpec | TlsSpec | DnsSpec | PingSpec | PushSpec | AgentSpec
KINDS: dict[str, type[Spec]] = {"http": HttpSpec, "tcp": TcpSpec, "tls": TlsSpec, "dns": DnsSpec,
                                "ping": PingSpec, "push": PushSpec, "agent": AgentSpec}
#: Kinds whose monitored side calls in with a token (``spec.token``), which is its credential.
TOKEN_KINDS = frozenset({"push", "agent"})


class Monitor(msgspec.Struct, kw_only=True, rename="camel"):
    """A monitor as the engine sees it. ``timeout`` defaults to min(interval * 0.8, 30) s."""

    id: int = 0
    account_id: int = 1
    name: Name
    interval: Interval = 60
    timeout: Seconds | None = None
    retries: Count = 0
    recovery_threshold: Threshold = 1
    paused: bool = False
    tags: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]], msgspec.Meta(max_length=100)] = []
    #: Notification channels (integration ids) on top of the account's default channels.
    integrations: Annotated[list[Annotated[int, msgspec.Meta(ge=1)]], msgspec.Meta(max_length=50)] = []
    spec: HttpSpec | TcpSpec | TlsSpec | DnsSpec | PingSpec | PushSpec | AgentSpec | None = None
    status: str = "pending"

    @property
    def type(self) -> str:
        assert self.spec is not None
        return self.spec.kind

    @property
    def effective_timeout(self) -> float:
        if self.timeout is not None:
            return self.timeout
        return min(self.interval * 0.8, 30.0)


class Integration(msgspec.Struct, kw_only=True):
    """A notification channel as stored: ``config`` in wire form (camelCase), secrets
    included. Data only: ``core.alerting`` finds the provider of its ``type``."""

    id: int = 0
    account_id: int = 0
    name: str
    type: str
    config: dict[str, Any]
    template: str | None = None
    is_default: bool = False
    reminder_interval: int | None = None  # seconds between reminders while down; None: none
    created_at: str | None = None
    updated_at: str | None = None


class MonitorTimes(msgspec.Struct, kw_only=True, rename="camel"):
    """When a monitor was created and last changed, and since when it has had its status
    (ISO 8601 UTC, seconds; ``status_since`` None before its first transition). Kept in
    memory beside the monitor; ingest moves ``status_since`` with every transition."""

    created_at: str | None
    updated_at: str | None
    status_since: str | None


class Incident(msgspec.Struct, kw_only=True, rename="camel"):
    """A monitor's outage: open from its down transition until it is up again."""

    id: int
    monitor_id: int
    started_at: str | None
    resolved_at: str | None
    status: str  # "open" or "resolved"
    cause: str | None
    duration_seconds: float  # so far, while open


class Delivery(msgspec.Struct, kw_only=True, rename="camel"):
    """One message of a channel's outbox and where its delivery stands."""

    id: int
    monitor_id: int
    incident_id: int | None
    event: str
    status: str  # "pending", "sent" or "failed"
    attempts: int
    created_at: str | None
    delivered_at: str | None
    next_attempt_at: str | None  # while pending
    last_status: int | None
    last_response: str | None


class Uptime(msgspec.Struct, kw_only=True, rename="camel"):
    """One window of a monitor's record: the share of checks that were up (None without
    checks), how many there were, and the seconds its incidents covered."""

    uptime: float | None
    checks: int
    downtime_seconds: float


class FieldError(msgspec.Struct):
    field: str
    message: str


class MonitorValidationError(ValueError):
    """A monitor definition was refused; ``errors`` names every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


_COMMON = {f.encode_name: f for f in msgspec.structs.fields(Monitor) if f.name not in ("spec", "id", "status")}
_READ_ONLY = {"id", "status", "lastCheckAt", "lastLatencyMs", "createdAt", "updatedAt", "statusSince"}


def _convert_fields(data: dict[str, Any], names: dict[str, Any], errors: list[FieldError],
                    together: type | None = None) -> dict:
    """The fields of ``names`` present in ``data``, converted strictly, by field name. With
    ``together`` (``_together(names)``) they are first converted in one call, the common case;
    only input with a fault goes field by field, to name every bad field."""
    if together is not None:
        present = {wire: data[wire] for wire in names if wire in data}
        try:
            converted = msgspec.convert(present, together, strict=True)
        except msgspec.ValidationError:
            pass
        else:
            return {names[wire].name: getattr(converted, names[wire].name) for wire in present}
    out: dict[str, Any] = {}
    for wire, field in names.items():
        if wire not in data:
            if field.required:
                errors.append(FieldError(wire, "is required"))
            continue
        try:
            out[field.name] = msgspec.convert(data[wire], field.type, strict=True)
        except msgspec.ValidationError as exc:
            errors.append(FieldError(wire, _clean(str(exc))))
    return out


def _clean(message: str) -> str:
    # msgspec says "Expected `int`, got `str`" or "... - at `$[0]`"; keep the first part.
    return message.split(" - at `")[0]


def _together(key: Any, names: dict[str, Any]) -> type:
    """A Struct of these fields (wire names, types, required-ness: defaults do not matter, as
    only present fields are read back), made once per ``key``."""
    made = _TOGETHER.get(key)
    if made is None:
        made = _TOGETHER[key] = msgspec.defstruct(
            "Fields", [(f.name, f.type) if f.required else (f.name, f.type, None) for f in names.values()],
            rename={f.name: wire for wire, f in names.items()}, kw_only=True)
    return made


_TOGETHER: dict[Any, type] = {}


@functools.cache
def _spec_fields(spec_cls: type) -> dict[str, Any]:
    """A spec Struct's fields by wire name (msgspec evaluates annotations on every call: half
    a millisecond, which a bulk import of 1,000 monitors paid 1,000 times)."""
    return {f.encode_name: f for f in msgspec.structs.fields(spec_cls)}


def parse_monitor(data: Any, *, partial_of: Monitor | None = None) -> Monitor:
    """Build a Monitor from flat wire data, or raise MonitorValidationError naming every bad
    field. With ``partial_of``, ``data`` is a patch: absent fields keep their current values
    and ``type`` cannot change."""
    if not isinstance(data, dict):
        raise MonitorValidationError([FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    if partial_of is not None:
        base = monitor_to_wire(partial_of)
        if "type" in data and data["type"] != base["type"]:
            errors.append(FieldError("type", "cannot be changed; create a new monitor"))
        data = {**base, **{k: v for k, v in data.items() if k not in _READ_ONLY}, "type": base["type"]}
    else:
        for key in _READ_ONLY & data.keys():
            errors.append(FieldError(key, "is read-only"))
    kind = data.get("type")
    spec_cls = KINDS.get(kind) if isinstance(kind, str) else None
    if spec_cls is None:
        errors.append(FieldError("type", f"must be one of {', '.join(KINDS)}"))
    common = _convert_fields(data, _COMMON, errors, _together("common", _COMMON))
    spec_fields = _spec_fields(spec_cls) if spec_cls else {}
    known = set(_COMMON) | set(spec_fields) | {"type"} | (_READ_ONLY if partial_of else set())
    for key in data:
        if key not in known and key not in _READ_ONLY:
            errors.append(FieldError(key, "unknown field"))
    spec = None
    if spec_cls is not None:
        spec_values = _convert_fields(data, spec_fields, errors, _together(spec_cls, spec_fields))
        if not any(e.field in spec_fields for e in errors):
            spec = spec_cls(**spec_values)
            errors.extend(spec.check_fields())
    timeout, interval = common.get("timeout"), common.get("interval", 60)
    if timeout is not None and isinstance(interval, int) and timeout > interval:
        errors.append(FieldError("timeout", "must not exceed interval"))
    if errors:
        raise MonitorValidationError(errors)
    monitor = Monitor(**common, spec=spec)
    if partial_of is not None:
        monitor.id = partial_of.id
        monitor.account_id = partial_of.account_id
        monitor.status = partial_of.status
    return monitor


def monitor_to_wire(monitor: Monitor) -> dict[str, Any]:
    """The flat camelCase form of a monitor (common fields, ``type`` and spec fields)."""
    out = msgspec.to_builtins(monitor)
    spec = out.pop("spec") or {}
    out.pop("accountId", None)
    return {**out, "type": monitor.type, **spec}


_TCHAR = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token
#: Headers that frame or route the request: the engine writes them, a monitor may not.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "te", "trailer", "upgrade", "connection",
                             "keep-alive", "proxy-connection"})
_HOST_HEADER = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$")


def _header_problems(name: str, value: str) -> list[FieldError]:
    """A monitor's own request header: a token name, a value without control characters, no
    framing header (a second ``Content-Length`` would smuggle a request to the backend), and
    a ``Host`` that is a host (and port) only."""
    field = f"headers.{name}"
    if not _TCHAR.match(name) or len(name) > 256:
        return [FieldError(field, "is not a valid header name")]
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value) or len(value) > 8192:
        return [FieldError(field, "must not contain control characters (and at most 8192 characters)")]
    lower = name.lower()
    if lower in FRAMING_HEADERS:
        reason = "set keepAlive instead" if lower in ("connection", "keep-alive") else "the engine frames requests"
        return [FieldError(field, f"cannot be set: {reason}")]
    if lower == "host" and not _HOST_HEADER.match(value.strip()):
        return [FieldError(field, "must be a host name, optionally with :port")]
    return []


def wire_target(row: dict[str, Any]) -> str:
    """``Spec.target()`` of a monitor in its flat wire form (``monitor_to_wire``)."""
    spec_cls = KINDS[row["type"]]
    fields = _spec_fields(spec_cls)
    return msgspec.convert({k: v for k, v in row.items() if k in fields}, spec_cls).target()


@functools.lru_cache(maxsize=1024)
def _status_ranges_problem(items: tuple[str, ...]) -> str | None:
    try:
        parse_status_ranges(list(items))
    except ValueError as exc:
        return str(exc)
    return None


def parse_status_ranges(items: list[str]) -> list[tuple[int, int]]:
    """``["200-299", "301", "4xx"]`` -> inclusive ranges; ValueError names the bad item."""
    if not items:
        raise ValueError("must list at least one status or range")
    ranges: list[tuple[int, int]] = []
    for item in items:
        text = item.strip().lower()
        try:
            if len(text) == 3 and text.endswith("xx") and text[0].isdigit():
                lo, hi = int(text[0]) * 100, int(text[0]) * 100 + 99
            elif "-" in text:
                a, b = text.split("-", 1)
                lo, hi = int(a), int(b)
            else:
                lo = hi = int(text)
        except ValueError:
            raise ValueError(f"{item!r} is not a status code, range (200-299) or class (2xx)") from None
        if not (100 <= lo <= hi <= 599):
            raise ValueError(f"{item!r} must lie within 100-599, low to high")
        ranges.append((lo, hi))
    return ranges


@functools.lru_cache(maxsize=4096)  # (pure; a bulk import names the same hosts again and again)
def valid_host(host: str) -> bool:
    """An IP address, or a DNS name that can be looked up: at most 253 characters, labels of
    1 to 63 (after IDNA encoding), no spaces, slashes or control characters."""
    if "%" in host:  # a scoped IPv6 address (fe80::1%eth0) names a local interface: never a target
        return False
    if is_ip_literal(host):
        return True
    if any(c in host for c in " /\\:@?#[]") or any(ord(c) < 32 for c in host):
        return False
    try:
        encoded = host.rstrip(".").encode("idna")
    except UnicodeError:
        return False
    return 0 < len(encoded) <= 253 and all(0 < len(label) <= 63 for label in encoded.split(b"."))


def is_private_address(address: str) -> bool:
    """Loopback, private, link-local, shared, reserved, multicast or unspecified (what
    ``--deny-private-targets`` refuses); IPv4-mapped IPv6 addresses count as their IPv4."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified or ip in ipaddress.ip_network("100.64.0.0/10"))


def private_target(monitor: Monitor) -> tuple[str, str] | None:
    """(field, host) when the monitor's target is written as a private address or as
    ``localhost``; names that resolve to one are refused at check time instead."""
    found = monitor.spec.address()
    if found is None:
        return None
    field, host = found
    return (field, host) if is_private_host(host) else None


def is_private_host(host: str) -> bool:
    """A host written as a private, loopback or link-local address, or as ``localhost``."""
    name = host.strip("[]").rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost") or is_private_address(name)


@functools.lru_cache(maxsize=4096)  # (pure; the worker asks for every monitor it is given)
def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
