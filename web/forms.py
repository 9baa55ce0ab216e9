"""The monitor and channel forms: which fields each kind shows, and how a posted form becomes
the same JSON object the API takes (so the services validate both alike, and their field
errors land beside the fields of the same name).

Every input's ``name`` is the API's field name (``url``, ``interval``, ``expectedStatus``...).
A field's ``kind`` says how its text becomes a value: ``int``, ``float``, ``bool`` (a checkbox:
absent is false), ``list`` (comma-separated), ``headers`` (``Name: value`` per line), ``ids``
(repeated values), ``text``, ``choice``, ``secret`` (a masked value sent back unchanged keeps
the stored one, as the API does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import FormMultiDict

from core.models import FieldError
from core.services import Forbidden, ServiceError

__all__ = ["COMMON", "KIND_FIELDS", "KIND_LABELS", "Field", "field_errors", "form_to_monitor", "monitor_values"]


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"
    required: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    placeholder: str = ""
    attrs: dict[str, str] = field(default_factory=dict)


COMMON = (
    Field("name", "Name", required=True, help="Shown in lists, notifications and status pages."),
    Field("interval", "Check every (seconds)", "int", required=True, attrs={"min": "1", "max": "86400"}),
    Field("timeout", "Timeout (seconds)", "float", help="Empty: the kind's default (at most the interval).",
          attrs={"min": "0.1", "step": "0.1"}),
    Field("retries", "Retries before down", "int", help="Failed checks in a row, beyond the first, before "
          "the monitor is down.", attrs={"min": "0", "max": "100"}),
    Field("recoveryThreshold", "Checks to recover", "int", help="Good checks in a row before a down "
          "monitor is up again.", attrs={"min": "1", "max": "100"}),
    Field("tags", "Tags", "list", help="Comma-separated, e.g. prod, eu"),
)

KIND_LABELS = {"http": "HTTP(S)", "tcp": "TCP port", "tls": "TLS certificate", "dns": "DNS record",
               "ping": "Ping (ICMP)", "push": "Push (heartbeat)", "agent": "Server agent"}

KIND_FIELDS: dict[str, tuple[Field, ...]] = {
    "http": (
        Field("url", "URL", required=True, placeholder="https://example.com/health", attrs={"type": "url"}),
        Field("method", "Method", "choice", choices=("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")),
        Field("expectedStatus", "Expected status", "list", help="Codes or ranges, comma-separated: 200-299, 301"),
        Field("keyword", "Keyword", help="Down unless the body contains this text."),
        Field("jsonPath", "JSON path", help="e.g. $.status; with an expected value, the body must be JSON."),
        Field("expectedValue", "Expected value", help="The value at the JSON path, as text."),
        Field("headers", "Request headers", "headers", help="One 'Name: value' per line."),
        Field("body", "Request body", "textarea"),
        Field("followRedirects", "Follow redirects", "bool"),
        Field("maxRedirects", "At most redirects", "int", attrs={"min": "0", "max": "30"}),
        Field("verifyTls", "Verify TLS certificates", "bool"),
        Field("tlsResume", "Resume TLS sessions between checks", "bool"),
        Field("keepAlive", "Keep the connection alive between checks", "bool"),
    ),
    "tcp": (
        Field("host", "Host", required=True, placeholder="db.example.com"),
        Field("port", "Port", "int", required=True, attrs={"min": "1", "max": "65535"}),
        Field("send", "Send", help="Bytes to send after connecting (optional)."),
        Field("expect", "Expect", help="Down unless the answer contains this text (optional)."),
    ),
    "tls": (
        Field("host", "Host", required=True, placeholder="example.com"),
        Field("port", "Port", "int", attrs={"min": "1", "max": "65535"}),
        Field("minDaysValid", "Down when fewer days remain", "int", attrs={"min": "0", "max": "3650"}),
    ),
    "dns": (
        Field("host", "Name", required=True, placeholder="example.com"),
        Field("recordType", "Record type", "choice", choices=("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "CAA",
                                                              "SRV", "PTR")),
        Field("expectedValue", "Expected value", help="Down unless an answer equals this (optional)."),
        Field("resolver", "Resolver", help="host or host:port; empty: the system's."),
    ),
    "ping": (
        Field("host", "Host", required=True, placeholder="192.0.2.10"),
    ),
    "push": (
        Field("grace", "Grace (seconds)", "int", help="Extra time after the interval (or the scheduled time) "
              "before a missing heartbeat is down.", attrs={"min": "0", "max": "604800"}),
        Field("schedule", "Cron schedule", placeholder="0 3 * * *", help="Instead of the interval: when the job "
              "runs, as cron writes it (minute hour day month weekday). Each run must ping within the grace."),
        Field("timezone", "Time zone", placeholder="Europe/Berlin", help="The zone the schedule is read in "
              "(an IANA name); 03:00 stays 03:00 local when clocks change."),
    ),
    "agent": (
        Field("grace", "Grace (seconds)", "int", help="Extra time after the interval before a silent agent is "
              "down.", attrs={"min": "0", "max": "86400"}),
        Field("forReports", "Reports in a row", "int", help="How many reports over a threshold, in a row, make "
              "the monitor down.", attrs={"min": "1", "max": "100"}),
        Field("thresholds.cpuPercent", "CPU above (%)", "float", help="Empty: no limit.",
              attrs={"min": "0.1", "max": "100", "step": "0.1"}),
        Field("thresholds.memoryPercent", "Memory above (%)", "float", attrs={"min": "0.1", "max": "100",
                                                                              "step": "0.1"}),
        Field("thresholds.diskPercent", "Any disk above (%)", "float", attrs={"min": "0.1", "max": "100",
                                                                              "step": "0.1"}),
        Field("thresholds.load1", "Load (1 min) above", "float", attrs={"min": "0.01", "step": "0.01"}),
    ),
}


def field_errors(exc: ServiceError) -> dict[str, str]:
    """A service's refusal as ``{field: message}`` to show beside the fields (the reason under
    ``form`` when it names none). A role's refusal is not a field error: it is raised again,
    to be the 403 page."""
    if isinstance(exc, Forbidden):
        raise exc
    errors: dict[str, str] = {}
    for e in exc.errors or []:
        errors.setdefault(e.field, e.message)
    return errors or {"form": exc.reason}


def _text(form: FormMultiDict, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_to_monitor(form: FormMultiDict, kind: str, *, editing: bool) -> tuple[dict[str, Any], list[FieldError]]:
    """The posted form as the API's monitor object (and conversion errors, by field). On
    create an empty optional field is left out (its default applies); on edit it is sent as
    null (cleared) unless the field is required."""
    data: dict[str, Any] = {} if editing else {"type": kind}
    errors: list[FieldError] = []
    for f in (*COMMON, *KIND_FIELDS.get(kind, ())):
        if f.kind == "bool":
            data[f.name] = form.get(f.name) in ("on", "true", "1")
            continue
        raw = form.get(f.name) if f.kind == "textarea" else _text(form, f.name)
        if not isinstance(raw, str):
            raw = ""
        if f.kind in ("textarea", "headers"):
            raw = raw.replace("\r\n", "\n")
        if raw.strip() == "":
            if f.required:
                data[f.name] = ""
            elif editing:
                data[f.name] = [] if f.kind == "list" else {} if f.kind == "headers" else None
            continue
        try:
            data[f.name] = _convert(f, raw)
        except ValueError as exc:
            errors.append(FieldError(f.name, str(exc)))
    for name in [n for n in data if "." in n]:  # thresholds.cpuPercent -> {"thresholds": {"cpuPercent": ...}}
        outer, _, inner = name.partition(".")
        value = data.pop(name)
        if value is not None:
            data.setdefault(outer, {})[inner] = value
        elif editing:
            data.setdefault(outer, {})
    ids = form.getall("integrations", [])
    try:
        data["integrations"] = sorted({int(i) for i in ids})
    except ValueError:
        errors.append(FieldError("integrations", "must be channel ids"))
    return data, errors


def _convert(f: Field, raw: str) -> Any:
    if f.kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if f.kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
    if f.kind == "list":
        return [part.strip() for part in raw.split(",") if part.strip()]
    if f.kind == "headers":
        headers = {}
        for n, line in enumerate(raw.split("\n"), 1):
            if not line.strip():
                continue
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"line {n}: must be 'Name: value'")
            headers[name.strip()] = value.strip()
        return headers
    return raw


def monitor_values(wire: dict[str, Any]) -> dict[str, str | bool | list[int]]:
    """A monitor's wire form as form values (what the edit form shows)."""
    values: dict[str, Any] = {}
    for key, value in wire.items():
        if isinstance(value, bool) or key == "integrations":
            values[key] = value
        elif isinstance(value, list):
            values[key] = ", ".join(str(v) for v in value)
        elif key == "thresholds" and isinstance(value, dict):
            values.update((f"thresholds.{k}", "" if v is None else f"{v:g}") for k, v in value.items())
        elif isinstance(value, dict):
            values[key] = "\n".join(f"{k}: {v}" for k, v in value.items())
        else:
            values[key] = "" if value is None else str(value)
    return values


def posted_values(form: FormMultiDict) -> dict[str, Any]:
    """The posted form as it was typed (a refused form is shown again with these)."""
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != "_csrf"}
    values["integrations"] = [int(i) for i in form.getall("integrations", []) if str(i).isdigit()]
    for fields in KIND_FIELDS.values():
        for f in fields:
            if f.kind == "bool":
                values[f.name] = form.get(f.name) in ("on", "true", "1")
    return values


# notification channels ---------------------------------------------------------------------
CHANNEL_HELP = {
    "slack": "An incoming-webhook URL from your Slack app (Features -> Incoming Webhooks).",
    "discord": "A channel webhook URL (Server settings -> Integrations -> Webhooks).",
    "jira": "Jira Service Management: an issue per incident, resolved when the monitor is up again. "
            "The API token is made at id.atlassian.com for the e-mail address given.",
    "twitter": "Posts to X with an OAuth 2.0 user-context bearer token of the account.",
    "webhook": "A JSON POST per event; with a secret, signed in X-Xuptime-Signature (HMAC-SHA256).",
    "email": "SMTP: STARTTLS on 587, TLS on 465; several recipients comma-separated.",
    "apprise": "Any service Apprise knows, as an Apprise URL (needs the apprise package).",
}


def channel_fields(config: type) -> tuple[Field, ...]:
    """A channel type's config fields, from its Config struct (names ``config.<field>``)."""
    import msgspec

    info = msgspec.inspect.type_info(config)
    fields = []
    for f in info.fields:  # type: ignore[attr-defined]
        t = f.type
        while isinstance(t, msgspec.inspect.Metadata):
            t = t.type
        optional = isinstance(t, msgspec.inspect.UnionType) and any(
            isinstance(x, msgspec.inspect.NoneType) for x in t.types)
        if isinstance(t, msgspec.inspect.UnionType):
            t = next((x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)), t)
            while isinstance(t, msgspec.inspect.Metadata):
                t = t.type
        kind = ("bool" if isinstance(t, msgspec.inspect.BoolType) else "int" if isinstance(t, msgspec.inspect.IntType)
                else "list" if isinstance(t, msgspec.inspect.ListType)
                else "json" if isinstance(t, msgspec.inspect.DictType) else "text")
        label = "".join(" " + c.lower() if c.isupper() else c for c in f.encode_name).capitalize()
        fields.append(Field(f"config.{f.encode_name}", label, kind, required=f.required and not optional))
    return tuple(fields)


def form_to_channel(form: FormMultiDict, kind: str, config: type, secret: frozenset[str], *,
                    editing: bool) -> tuple[dict[str, Any], list[FieldError]]:
    """The posted channel form as the API's object: ``name``, ``isDefault``,
    ``reminderInterval``, ``template`` and ``config``."""
    import json

    data: dict[str, Any] = {} if editing else {"type": kind}
    errors: list[FieldError] = []
    data["name"] = _text(form, "name")
    data["isDefault"] = form.get("isDefault") in ("on", "true", "1")
    reminder = _text(form, "reminderInterval")
    try:
        data["reminderInterval"] = int(reminder) if reminder else None
    except ValueError:
        errors.append(FieldError("reminderInterval", "must be a whole number of seconds"))
    template = form.get("template")
    data["template"] = template.replace("\r\n", "\n") if isinstance(template, str) and template.strip() else None
    values: dict[str, Any] = {}
    for f in channel_fields(config):
        name = f.name.removeprefix("config.")
        if f.kind == "bool":
            values[name] = form.get(f.name) in ("on", "true", "1")
            continue
        raw = _text(form, f.name)
        if not raw:
            if editing and name in secret:
                continue  # (an empty secret field keeps the stored secret)
            if f.required:
                values[name] = ""
            elif editing:
                values[name] = None if f.kind in ("text", "int") else [] if f.kind == "list" else {}
            continue
        try:
            if f.kind == "json":
                values[name] = json.loads(raw)
            else:
                values[name] = _convert(f, raw)
        except ValueError:
            errors.append(FieldError(f.name, "must be JSON" if f.kind == "json" else "has the wrong form"))
    if name_to := values.get("to"):  # (e-mail: one address or several)
        values["to"] = [part.strip() for part in name_to.split(",")] if isinstance(name_to, str) else name_to
    data["config"] = values
    return data, errors


def channel_values(wire: dict[str, Any]) -> dict[str, Any]:
    """A channel's wire form (secrets masked) as form values."""
    import json

    values: dict[str, Any] = {"name": wire.get("name", ""), "isDefault": wire.get("isDefault", False),
                              "reminderInterval": "" if wire.get("reminderInterval") is None
                              else str(wire["reminderInterval"]), "template": wire.get("template") or ""}
    for key, value in (wire.get("config") or {}).items():
        if isinstance(value, bool):
            values[f"config.{key}"] = value
        elif isinstance(value, list):
            values[f"config.{key}"] = ", ".join(map(str, value))
        elif isinstance(value, dict):
            values[f"config.{key}"] = json.dumps(value) if value else ""
        else:
            values[f"config.{key}"] = "" if value is None else str(value)
    return values
