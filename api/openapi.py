"""Request bodies in the OpenAPI document.

Handlers read their JSON bodies themselves (so every validation error has our error shape and
names its field), which leaves Litestar nothing to describe. The bodies are documented here
from the models that validate them: a monitor to create is one flat object per kind, told
apart by ``type``; a patch holds any of the fields; a key takes a name. The schemas are built
from ``core.models`` by msgspec, so they cannot drift from what the API accepts.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from core.alerting import EVENTS, PROVIDERS
from core.models import KINDS, Monitor

__all__ = ["add_documentation", "add_request_bodies"]

_SKIP = {"id", "account_id", "status", "spec"}
_REF = "#/components/schemas/{name}"


def _create_struct(kind: str, spec: type) -> type:
    fields: list[Any] = []
    for f in [*msgspec.structs.fields(Monitor), *msgspec.structs.fields(spec)]:
        if f.name in _SKIP:
            continue
        if f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT:
            fields.append((f.name, f.type))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, f.type, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, f.type, f.default))
    return msgspec.defstruct(f"{kind.capitalize()}MonitorCreate", fields, kw_only=True, rename="camel", tag=kind,
                             tag_field="type", forbid_unknown_fields=True)


def _schemas() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    creates = [_create_struct(kind, spec) for kind, spec in KINDS.items()]
    refs, components = msgspec.json.schema_components(creates, ref_template=_REF)
    create = {"oneOf": refs, "discriminator": {
        "propertyName": "type", "mapping": {kind: ref["$ref"] for kind, ref in zip(KINDS, refs, strict=True)}}}
    # A patch: any field of any kind, none required; the type itself cannot change.
    properties: dict[str, Any] = {}
    for name in components:
        for prop, schema in components[name]["properties"].items():
            if prop != "type":
                properties.setdefault(prop, copy.deepcopy(schema))
    patch = {"type": "object", "properties": properties, "additionalProperties": False,
             "description": "Fields to change; absent fields keep their values. Fields must belong to the "
                            "monitor's type, which cannot change."}
    key = {"type": "object", "required": ["name"], "additionalProperties": False,
           "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100},
                          "scope": {"enum": ["full", "read"], "default": "full",
                                    "description": "`read`: GET and HEAD only, outside the monthly quota, within "
                                                   "600 requests a minute of its own (for dashboards such as "
                                                   "Grafana's); `full`: everything the account may"}}}
    components |= {"MonitorCreate": create, "MonitorPatch": patch, "ApiKeyCreate": key}
    components |= _integration_schemas()
    components |= copy.deepcopy(_PAGE_BODIES)
    return components, create, patch


def _integration_schemas() -> dict[str, Any]:
    """One create schema per channel type (its ``config`` from the provider's Config struct)."""
    types = list(PROVIDERS)
    refs, components = msgspec.json.schema_components([p.Config for p in PROVIDERS.values()], ref_template=_REF)
    common = {"name": {"type": "string", "minLength": 1, "maxLength": 200},
              "template": {"anyOf": [{"type": "string", "maxLength": 4000}, {"type": "null"}],
                           "description": "Jinja2 (sandboxed); see the docs for the variables"},
              "isDefault": {"type": "boolean", "default": False,
                            "description": "attached to every monitor of the account"},
              "reminderInterval": {"anyOf": [{"type": "integer", "minimum": 60, "maximum": 604800}, {"type": "null"}],
                                   "description": "seconds between reminders while down"}}
    variants = {}
    for kind, ref in zip(types, refs, strict=True):
        variants[f"{kind.capitalize()}IntegrationCreate"] = {
            "type": "object", "required": ["name", "type", "config"], "additionalProperties": False,
            "properties": {"type": {"enum": [kind]}, "config": ref, **common}}
    create = {"oneOf": [{"$ref": _REF.format(name=n)} for n in variants], "discriminator": {
        "propertyName": "type", "mapping": {k: _REF.format(name=n) for k, n in zip(types, variants, strict=True)}}}
    patch = {"type": "object", "additionalProperties": False,
             "properties": {**common, "config": {"type": "object", "description": "config fields to change; a "
                                                 "masked secret sent back keeps the stored one"}}}
    preview = {"type": "object", "additionalProperties": False,
               "properties": {"event": {"enum": list(EVENTS), "default": "down"}, "template": common["template"]}}
    return {**components, **variants, "IntegrationCreate": create, "IntegrationPatch": patch,
            "IntegrationPreview": preview}


_SECTION = {"type": "object", "required": ["name", "monitors"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "monitors": {"type": "array", "maxItems": 500, "items": {"type": "integer", "minimum": 1}}}}
_PAGE_FIELDS = {
    "slug": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
             "description": "the page's address: /status/{slug}; unique"},
    "title": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": {"anyOf": [{"type": "string", "maxLength": 2000}, {"type": "null"}]},
    "sections": {"type": "array", "maxItems": 20, "items": _SECTION,
                 "description": "the account's monitors, grouped; at most 1000 on a page"},
    "public": {"type": "boolean", "default": True, "description": "shown at /status/{slug} (else 404 there)"}}
_STATES = {"enum": ["investigating", "identified", "monitoring", "resolved"]}
_MESSAGE = {"type": "string", "minLength": 1, "maxLength": 5000}
_PAGE_BODIES = {
    "StatusPageCreate": {"type": "object", "required": ["slug", "title"], "additionalProperties": False,
                         "properties": _PAGE_FIELDS,
                         "example": {"slug": "acme", "title": "Acme status", "description": "Our public services",
                                     "sections": [{"name": "Website", "monitors": [1, 2]}], "public": True}},
    "StatusPagePatch": {"type": "object", "additionalProperties": False, "properties": _PAGE_FIELDS},
    "PageIncidentCreate": {"type": "object", "required": ["title", "message"], "additionalProperties": False,
                           "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 200},
                                          "status": {**_STATES, "default": "investigating"}, "message": _MESSAGE},
                           "example": {"title": "Checkout errors", "status": "investigating",
                                       "message": "We are looking into failed payments."}},
    "PageIncidentUpdate": {"type": "object", "required": ["status", "message"], "additionalProperties": False,
                           "properties": {"status": _STATES, "message": _MESSAGE},
                           "example": {"status": "identified", "message": "A bad deploy; rolling back."}},
}

_WINDOW_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "monitors": {"type": "array", "items": {"type": "integer", "minimum": 1}, "description": "monitor ids"},
    "tags": {"type": "array", "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 64},
             "description": "the account's monitors with any of these tags"},
    "startsAt": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                 "description": "once: the start, with its offset"},
    "endsAt": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
               "description": "once: the end (at most 31 days after the start)"},
    "schedule": {"anyOf": [{"type": "string"}, {"type": "null"}],
                 "description": "recurring: a five-field cron expression, in timezone"},
    "duration": {"anyOf": [{"type": "integer", "minimum": 60, "maximum": 604800}, {"type": "null"}],
                 "description": "recurring: seconds each time lasts"},
    "timezone": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "recurring: an IANA zone"}}
_PAGE_BODIES |= {
    "MaintenanceCreate": {"type": "object", "required": ["name"], "additionalProperties": False,
                          "properties": _WINDOW_FIELDS,
                          "example": {"name": "Database upgrade", "tags": ["db"], "schedule": "0 3 * * 0",
                                      "duration": 3600, "timezone": "Europe/Berlin"}},
    "MaintenancePatch": {"type": "object", "additionalProperties": False, "properties": _WINDOW_FIELDS},
}

_BODIES = {("/api/v1/monitors", "post"): "MonitorCreate",
           ("/api/v1/maintenance", "post"): "MaintenanceCreate",
           ("/api/v1/maintenance/{window_id}", "patch"): "MaintenancePatch",
           ("/api/v1/status-pages", "post"): "StatusPageCreate",
           ("/api/v1/status-pages/{page_id}", "patch"): "StatusPagePatch",
           ("/api/v1/status-pages/{page_id}/incidents", "post"): "PageIncidentCreate",
           ("/api/v1/status-pages/{page_id}/incidents/{incident_id}/updates", "post"): "PageIncidentUpdate",
           ("/api/v1/monitors/{monitor_id}", "patch"): "MonitorPatch",
           ("/api/v1/api-keys", "post"): "ApiKeyCreate",
           ("/api/v1/integrations", "post"): "IntegrationCreate",
           ("/api/v1/integrations/{integration_id}", "patch"): "IntegrationPatch",
           ("/api/v1/integrations/{integration_id}/preview", "post"): "IntegrationPreview"}
_OPTIONAL = {"IntegrationPreview"}  # the body may be left out


def add_request_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the generated document with the JSON request bodies described."""
    document = copy.deepcopy(document)
    components, _, _ = _schemas()
    document.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for (path, method), name in _BODIES.items():
        operation = document.get("paths", {}).get(path, {}).get(method)
        if operation is not None:
            operation["requestBody"] = {"required": name not in _OPTIONAL, "content": {
                "application/json": {"schema": {"$ref": _REF.format(name=name)}}}}
    return add_documentation(document)


# Query parameters, response bodies and the routes outside /api/v1 ---------------------------
def _q(name: str, schema: dict[str, Any], description: str, example: Any = None) -> dict[str, Any]:
    param = {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
    if example is not None:
        param["example"] = example
    return param


_LIMIT = _q("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}, "Items per page (1-100).", 25)
_CURSOR = _q("cursor", {"type": "string"}, "`pagination.nextCursor` of the previous page; absent for the first.")
_TIME = ("An ISO 8601 time (`2026-11-02T10:00:00Z`), or Unix seconds, or Unix milliseconds (13 digits, as "
         "Grafana's `${__from}` gives).")
_PARAMS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("/api/v1/monitors", "get"): [
        _LIMIT, _CURSOR,
        _q("status", {"enum": ["pending", "up", "down", "paused", "maintenance"]}, "Only monitors in this status."),
        _q("type", {"enum": list(KINDS)}, "Only monitors of this kind."),
        _q("tag", {"type": "string"}, "Only monitors with this tag.", "prod"),
        _q("q", {"type": "string"}, "Only monitors whose name contains this (case-insensitive).", "api")],
    ("/api/v1/monitors/{monitor_id}/history", "get"): [
        _q("interval", {"enum": ["raw", "1m", "5m", "1h", "1d"], "default": "raw"},
           "`raw`: one item per check; otherwise buckets of this size with counts, uptime and latency percentiles."),
        _q("from", {"type": "string"}, f"Oldest time to include. {_TIME}", "2026-11-02T10:00:00Z"),
        _q("to", {"type": "string"}, f"Newest time to include. {_TIME}", "2026-11-02T11:00:00Z"),
        _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Items per page (1-1000)."),
        _CURSOR,
        _q("format", {"enum": ["json", "csv", "parquet"], "default": "json"},
           "`csv` or `parquet`: the whole `from`..`to` range as a file, oldest first, streamed (no `limit`, no "
           "`cursor`): checks with their phases flattened (`ts`, `ok`, `latencyMs`, `statusCode`, `error`, `dnsMs`, "
           "`connectMs`, `tlsMs`, `ttfbMs`, `region`) or buckets (`ts`, `checks`, `up`, `uptime`, `latencyAvgMs`, "
           "`latencyMinMs`, `latencyMaxMs`, `latencyP50Ms`, `latencyP95Ms`, `latencyP99Ms`).")],
    ("/api/v1/monitors/{monitor_id}/metrics", "get"): [
        _q("interval", {"enum": ["raw", "1m", "5m", "1h", "1d"], "default": "raw"},
           "`raw`: one item per agent report; otherwise buckets of this size with averages and maxima."),
        _q("from", {"type": "string"}, f"Oldest time to include. {_TIME}", "2026-11-02T10:00:00Z"),
        _q("to", {"type": "string"}, f"Newest time to include. {_TIME}", "2026-11-02T11:00:00Z"),
        _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Items per page (1-1000)."),
        _CURSOR],
    ("/api/v1/monitors/{monitor_id}/uptime", "get"): [
        _q("windows", {"type": "string", "default": "24h,7d,30d"},
           "Comma-separated windows ending now: a number and `m`, `h` or `d` (at most 365d).", "24h,7d,30d,90d")],
    ("/api/v1/incidents", "get"): [_LIMIT, _CURSOR],
    ("/api/v1/monitors/{monitor_id}/incidents", "get"): [_LIMIT, _CURSOR],
    ("/api/v1/api-keys", "get"): [_LIMIT, _CURSOR],
    ("/api/v1/integrations", "get"): [_LIMIT, _CURSOR],
    ("/api/v1/status-pages", "get"): [_LIMIT, _CURSOR],
    ("/api/v1/maintenance", "get"): [_LIMIT, _CURSOR],
    ("/api/v1/integrations/{integration_id}/deliveries", "get"): [
        _LIMIT, _CURSOR, _q("status", {"enum": ["pending", "sent", "failed"]}, "Only messages in this state.")],
}

_TS = {"type": "string", "format": "date-time"}
_WINDOW_FIELDS_OUT = {
    "name": {"type": "string"}, "monitors": {"type": "array", "items": {"type": "integer"}},
    "tags": {"type": "array", "items": {"type": "string"}},
    **{k: {"anyOf": [{"type": "string"}, {"type": "null"}]} for k in ("startsAt", "endsAt", "schedule", "timezone")},
    "duration": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}
_NTS = {"anyOf": [_TS, {"type": "null"}]}
_NUM = {"anyOf": [{"type": "number"}, {"type": "null"}]}
_PAGE = {"type": "object", "required": ["limit", "nextCursor"], "properties": {
    "limit": {"type": "integer"}, "nextCursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "total": {"type": "integer", "description": "items matching (where cheap to know)"}}}
_MONITOR_EXAMPLE = {"id": 1, "name": "homepage", "type": "http", "url": "https://example.com/", "method": "GET",
                    "interval": 60, "timeout": 10.0, "retries": 1, "recoveryThreshold": 1, "paused": False,
                    "tags": ["prod"], "integrations": [], "status": "up", "expectedStatus": ["200-299"],
                    "lastCheckAt": "2026-12-01T10:00:00.123Z", "lastLatencyMs": 84.2,
                    "createdAt": "2026-11-01T09:00:00Z", "updatedAt": "2026-11-01T09:00:00Z",
                    "statusSince": "2026-11-30T22:14:05Z"}
_RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Pagination": _PAGE,
    "Monitor": {"type": "object", "required": ["id", "name", "type", "status"], "properties": {
        "id": {"type": "integer"}, "type": {"enum": list(KINDS)},
        "status": {"enum": ["pending", "up", "down", "paused", "maintenance"]},
        "lastCheckAt": _NTS, "lastLatencyMs": _NUM, "createdAt": _NTS, "updatedAt": _NTS, "statusSince": _NTS},
        "description": "The monitor's fields as created (those of its type; see MonitorCreate) and these.",
        "example": _MONITOR_EXAMPLE},
    "Check": {"type": "object", "properties": {
        "ts": _TS, "ok": {"type": "boolean"}, "latencyMs": _NUM,
        "statusCode": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "error": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "phases": {"type": "object", "properties": {k: _NUM for k in ("dnsMs", "connectMs", "tlsMs", "ttfbMs")}}},
        "example": {"ts": "2026-12-01T10:00:00.123Z", "ok": True, "latencyMs": 84.2, "statusCode": 200,
                    "error": None, "phases": {"dnsMs": 1.1, "connectMs": 10.3, "tlsMs": 30.2, "ttfbMs": 40.0}}},
    "Bucket": {"type": "object", "properties": {
        "ts": _TS, "checks": {"type": "integer"}, "up": {"type": "integer"}, "uptime": _NUM,
        "latencyMs": {"type": "object", "properties": {k: _NUM for k in ("avg", "min", "max", "p50", "p95", "p99")}}},
        "example": {"ts": "2026-12-01T10:00:00.000Z", "checks": 60, "up": 60, "uptime": 1.0,
                    "latencyMs": {"avg": 80.1, "min": 61.0, "max": 140.2, "p50": 78.0, "p95": 120.5, "p99": 138.0}}},
    "Uptime": {"type": "object", "additionalProperties": {"type": "object", "properties": {
        "uptime": _NUM, "checks": {"type": "integer"}, "downtimeSeconds": {"type": "number"}}},
        "example": {"24h": {"uptime": 0.9993, "checks": 1440, "downtimeSeconds": 60.0}}},
    "Incident": {"type": "object", "properties": {
        "id": {"type": "integer"}, "monitorId": {"type": "integer"}, "startedAt": _TS, "resolvedAt": _NTS,
        "status": {"enum": ["open", "resolved"]}, "cause": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "durationSeconds": {"type": "number"}},
        "example": {"id": 6, "monitorId": 4, "startedAt": "2026-12-01T20:03:16Z", "resolvedAt": "2026-12-01T20:04:06Z",
                    "status": "resolved", "cause": "status 503, expected 200-299", "durationSeconds": 49.4}},
    "ApiKey": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "prefix": {"type": "string"}, "createdAt": _TS,
        "lastUsedAt": _NTS, "revokedAt": _NTS, "scope": {"enum": ["full", "read"]},
        "secret": {"type": "string", "description": "on create only"}},
        "example": {"id": 1, "name": "grafana", "prefix": "xup_OfvmFxKL", "createdAt": "2026-12-01T20:04:46Z",
                    "lastUsedAt": None, "revokedAt": None, "scope": "read"}},
    "Usage": {"type": "object", "properties": {
        "month": {"type": "string"}, "limit": {"type": "integer"}, "used": {"type": "integer"},
        "remaining": {"type": "integer"}, "reset": {"type": "integer", "description": "Unix seconds"},
        "resetAt": _TS},
        "example": {"month": "2026-12", "limit": 100000, "used": 7, "remaining": 99993, "reset": 1798761600,
                    "resetAt": "2027-01-01T00:00:00Z"}},
    "Retention": {"type": "object", "properties": {
        tier: {"type": "string", "pattern": "^([0-9]{1,6}[smhdwy]|forever)$"} for tier in ("raw", "hourly", "daily")},
        "description": "How long each tier of history is kept: raw checks and agents' reports, hourly and daily "
                       "rollups (raw <= hourly <= daily; raw at least 1d).",
        "example": {"raw": "90d", "hourly": "2y", "daily": "forever"}},
    "Integration": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "type": {"enum": list(PROVIDERS)},
        "config": {"type": "object", "description": "the type's settings; secrets masked"},
        "template": {"anyOf": [{"type": "string"}, {"type": "null"}]}, "isDefault": {"type": "boolean"},
        "reminderInterval": {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "createdAt": _TS, "updatedAt": _TS},
        "example": {"id": 2, "name": "ops slack", "type": "slack", "config": {"webhookUrl": "https://hooks.sl…••••"},
                    "template": None, "isDefault": True, "reminderInterval": 3600,
                    "createdAt": "2026-12-01T09:00:00Z", "updatedAt": "2026-12-01T09:00:00Z"}},
    "StatusPage": {"type": "object", "properties": {
        "id": {"type": "integer"}, **_PAGE_FIELDS, "createdAt": _NTS, "updatedAt": _NTS},
        "example": {"id": 1, "slug": "acme", "title": "Acme status", "description": None,
                    "sections": [{"name": "Website", "monitors": [1, 2]}], "public": True,
                    "createdAt": "2026-12-01T09:00:00Z", "updatedAt": "2026-12-01T09:00:00Z"}},
    "PageIncident": {"type": "object", "properties": {
        "id": {"type": "integer"}, "pageId": {"type": "integer"}, "title": {"type": "string"}, "status": _STATES,
        "createdAt": _NTS, "updatedAt": _NTS, "resolvedAt": _NTS,
        "updates": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "status": _STATES, "message": {"type": "string"}, "createdAt": _NTS}}}},
        "example": {"id": 3, "pageId": 1, "title": "Checkout errors", "status": "identified",
                    "createdAt": "2026-12-01T10:00:00Z", "updatedAt": "2026-12-01T10:20:00Z", "resolvedAt": None,
                    "updates": [{"id": 4, "status": "identified", "message": "A bad deploy; rolling back.",
                                 "createdAt": "2026-12-01T10:20:00Z"}]}},
    "Maintenance": {"type": "object", "properties": {
        "id": {"type": "integer"}, **_WINDOW_FIELDS_OUT, "createdAt": _NTS, "updatedAt": _NTS},
        "example": {"id": 1, "name": "Database upgrade", "monitors": [], "tags": ["db"], "startsAt": None,
                    "endsAt": None, "schedule": "0 3 * * 0", "duration": 3600, "timezone": "Europe/Berlin",
                    "createdAt": "2026-12-01T09:00:00Z", "updatedAt": "2026-12-01T09:00:00Z"}},
    "AgentReport": {"type": "object", "required": ["cpuPercent", "memory"], "properties": {
        "ts": {"type": "number", "description": "Unix seconds when measured"},
        "hostname": {"type": "string", "maxLength": 256}, "os": {"type": "string", "maxLength": 256},
        "uptimeS": {"type": "number", "minimum": 0}, "cpuPercent": {"type": "number", "minimum": 0, "maximum": 100},
        "load": {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 3, "maxItems": 3},
        "memory": {"$ref": _REF.format(name="AgentBytes")}, "swap": {"$ref": _REF.format(name="AgentBytes")},
        "disks": {"type": "array", "maxItems": 64, "items": {"type": "object", "required": [
            "mount", "usedBytes", "totalBytes"], "properties": {"mount": {"type": "string"},
                                                                "usedBytes": {"type": "integer"},
                                                                "totalBytes": {"type": "integer"}}}},
        "network": {"type": "object", "properties": {"rxBytesPerS": {"type": "number"},
                                                     "txBytesPerS": {"type": "number"}}},
        "processes": {"type": "integer", "minimum": 0}, "version": {"type": "string"}},
        "example": {"ts": 1796160000, "hostname": "db1", "os": "Debian GNU/Linux 12", "uptimeS": 86400,
                    "cpuPercent": 12.5, "load": [0.4, 0.3, 0.2],
                    "memory": {"usedBytes": 2147483648, "totalBytes": 8589934592},
                    "disks": [{"mount": "/", "usedBytes": 10737418240, "totalBytes": 53687091200}],
                    "network": {"rxBytesPerS": 1200.5, "txBytesPerS": 800.0}, "processes": 142}},
    "AgentBytes": {"type": "object", "required": ["usedBytes", "totalBytes"], "properties": {
        "usedBytes": {"type": "integer", "minimum": 0}, "totalBytes": {"type": "integer", "minimum": 0}}},
    "AgentSample": {"type": "object", "description": "One report (interval=raw), percents computed",
                    "properties": {"ts": _TS, "cpuPercent": {"type": "number"}, "memory": {"type": "object"},
                                   "swap": {"type": ["object", "null"]}, "load": {"type": ["array", "null"]},
                                   "disks": {"type": "array"}, "network": {"type": ["object", "null"]},
                                   "processes": {"type": ["integer", "null"]},
                                   "uptimeS": {"type": ["integer", "null"]}}},
    "AgentBucket": {"type": "object", "description": "Reports in one bucket: averages and maxima, each disk's "
                                                     "fullest", "properties": {
        "ts": _TS, "reports": {"type": "integer"}, "cpuPercent": {"type": "object"},
        "memoryPercent": {"type": "object"}, "swapPercent": _NUM, "load1": {"type": ["object", "null"]},
        "network": {"type": ["object", "null"]}, "processes": {"type": ["integer", "null"]},
        "disks": {"type": "array"}}},
    "Delivery": {"type": "object", "properties": {
        "id": {"type": "integer"}, "monitorId": {"type": "integer"}, "event": {"enum": list(EVENTS)},
        "status": {"enum": ["pending", "sent", "failed"]}, "attempts": {"type": "integer"}, "createdAt": _TS,
        "deliveredAt": _NTS, "nextAttemptAt": _NTS}},
}


def _envelope(item: str, *, many: bool = False, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    data = schema or {"$ref": _REF.format(name=item)}
    if many:
        return {"type": "object", "required": ["data", "pagination"], "properties": {
            "data": {"type": "array", "items": data}, "pagination": {"$ref": _REF.format(name="Pagination")}}}
    return {"type": "object", "required": ["data"], "properties": {"data": data}}


_HISTORY = {"oneOf": [{"$ref": _REF.format(name="Check")}, {"$ref": _REF.format(name="Bucket")}],
            "description": "a Check per check (interval=raw) or a Bucket per interval"}
_RESPONSES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/v1/monitors", "get"): _envelope("Monitor", many=True),
    ("/api/v1/monitors", "post"): _envelope("Monitor"),
    ("/api/v1/monitors/bulk", "post"): _envelope("Monitor", schema={"type": "array", "items": {
        "$ref": _REF.format(name="Monitor")}}),
    ("/api/v1/monitors/{monitor_id}", "get"): _envelope("Monitor"),
    ("/api/v1/monitors/{monitor_id}", "patch"): _envelope("Monitor"),
    ("/api/v1/monitors/{monitor_id}/pause", "post"): _envelope("Monitor"),
    ("/api/v1/monitors/{monitor_id}/resume", "post"): _envelope("Monitor"),
    ("/api/v1/monitors/{monitor_id}/history", "get"): _envelope("Check", many=True, schema=_HISTORY),
    ("/api/v1/monitors/{monitor_id}/uptime", "get"): _envelope("Uptime"),
    ("/api/v1/monitors/{monitor_id}/metrics", "get"): _envelope("AgentSample", many=True, schema={"oneOf": [
        {"$ref": _REF.format(name="AgentSample")}, {"$ref": _REF.format(name="AgentBucket")}]}),
    ("/api/v1/incidents", "get"): _envelope("Incident", many=True),
    ("/api/v1/monitors/{monitor_id}/incidents", "get"): _envelope("Incident", many=True),
    ("/api/v1/api-keys", "get"): _envelope("ApiKey", many=True),
    ("/api/v1/api-keys", "post"): _envelope("ApiKey"),
    ("/api/v1/account/usage", "get"): _envelope("Usage"),
    ("/api/v1/settings/retention", "get"): _envelope("Retention"),
    ("/api/v1/settings/retention", "patch"): _envelope("Retention"),
    ("/api/v1/integrations", "get"): _envelope("Integration", many=True),
    ("/api/v1/integrations", "post"): _envelope("Integration"),
    ("/api/v1/integrations/{integration_id}", "get"): _envelope("Integration"),
    ("/api/v1/integrations/{integration_id}", "patch"): _envelope("Integration"),
    ("/api/v1/integrations/{integration_id}/deliveries", "get"): _envelope("Delivery", many=True),
    ("/api/v1/maintenance", "get"): _envelope("Maintenance", many=True),
    ("/api/v1/maintenance", "post"): _envelope("Maintenance"),
    ("/api/v1/maintenance/{window_id}", "get"): _envelope("Maintenance"),
    ("/api/v1/maintenance/{window_id}", "patch"): _envelope("Maintenance"),
    ("/api/v1/status-pages", "get"): _envelope("StatusPage", many=True),
    ("/api/v1/status-pages", "post"): _envelope("StatusPage"),
    ("/api/v1/status-pages/{page_id}", "get"): _envelope("StatusPage"),
    ("/api/v1/status-pages/{page_id}", "patch"): _envelope("StatusPage"),
    ("/api/v1/status-pages/{page_id}/incidents", "get"): _envelope("PageIncident", schema={
        "type": "array", "items": {"$ref": _REF.format(name="PageIncident")}}),
    ("/api/v1/status-pages/{page_id}/incidents", "post"): _envelope("PageIncident"),
    ("/api/v1/status-pages/{page_id}/incidents/{incident_id}/updates", "post"): _envelope("PageIncident"),
}

_OUTSIDE: dict[str, dict[str, Any]] = {
    "/metrics": {"get": {
        "operationId": "metrics", "tags": ["metrics"], "summary": "Prometheus metrics of the key's account",
        "description": "The text exposition format (`text/plain; version=0.0.4`): per monitor `xuptime_monitor_up`, "
                       "latency and check counters, labelled `monitor_id`, `name`, `type`. Needs an API key.",
        "security": [{"bearer": []}, {"apiKeyHeader": []}, {"apiKeyQuery": []}],
        "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"},
                      "example": "xuptime_monitor_up{monitor_id=\"1\",name=\"homepage\",type=\"http\"} 1\n"}}},
                      "401": {"description": "API key missing or invalid"}}}},
    "/api/push/{token}": {**{method: {
        "operationId": f"pushHeartbeat{method.capitalize()}", "tags": ["push"], "security": [],
        "summary": "A heartbeat of a push monitor (no API key: the token is the secret)",
        "parameters": [
            {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "the monitor's `pushToken`"},
            _q("status", {"enum": ["up", "down"], "default": "up"}, "`down` reports a failed run."),
            _q("msg", {"type": "string", "maxLength": 500}, "A note kept with the check.", "backup done"),
            _q("ping", {"type": "number", "minimum": 0}, "The job's own run time in ms (shown as latency).")],
        "responses": {"200": {"description": "taken", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}, "example": {"ok": True}}}},
            "400": {"description": "a parameter is invalid (error payload naming it)"},
            "404": {"description": "no monitor has this token"}}} for method in ("get", "post")}},
    "/api/push/{token}/start": {**{method: {
        "operationId": f"pushStart{method.capitalize()}", "tags": ["push"], "security": [],
        "summary": "A push monitor's job started: its next ping reports the run time as latency",
        "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
                        "description": "the monitor's `pushToken`"}],
        "responses": {"200": {"description": "taken", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}, "example": {"ok": True}}}},
            "404": {"description": "no push monitor has this token"}}} for method in ("get", "post")}},
    "/api/agent/{token}/report": {"post": {
        "operationId": "agentReport", "tags": ["agents"], "security": [],
        "summary": "A server agent's report, or a list of them (no API key: the token is the secret)",
        "description": "At most 64 KiB. `cpuPercent` and `memory` are required; `ts` (Unix seconds, when "
                       "measured) defaults to arrival. Reports not newer than the agent's last stored one are "
                       "duplicates: counted, not stored.",
        "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
                        "description": "the monitor's `agentToken`"}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
            {"$ref": _REF.format(name="AgentReport")},
            {"type": "array", "items": {"$ref": _REF.format(name="AgentReport")}, "minItems": 1,
             "maxItems": 500}]}}}},
        "responses": {"202": {"description": "stored", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"data": {"type": "object", "properties": {
                "stored": {"type": "integer"}, "duplicates": {"type": "integer"}, "interval": {"type": "integer"}}}}},
            "example": {"data": {"stored": 1, "duplicates": 0, "interval": 60}}}}},
            "400": {"description": "a field is invalid (error payload naming it)"},
            "404": {"description": "no agent monitor has this token"},
            "413": {"description": "the body is over 64 KiB"},
            "415": {"description": "the body is not application/json"},
            "429": {"description": "too many requests for this token (Retry-After)"}}}},
    "/healthz": {"get": {
        "operationId": "health", "tags": ["health"], "security": [], "summary": "Liveness of the server",
        "responses": {"200": {"description": "the main process answers", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"status": {"const": "ok"}}}, "example": {"status": "ok"}}}}}}},
}


#: Responses that are files with ``format=`` (besides their JSON).
_FILES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/v1/monitors/{monitor_id}/history", "get"): {
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}}


def add_documentation(document: dict[str, Any]) -> dict[str, Any]:
    """Query parameters, typed response bodies with examples, and the routes outside
    ``/api/v1`` (``/metrics``, ``/api/push/{token}``, ``/healthz``), added to ``document`` in
    place (handlers read their own query strings, so Litestar cannot see them)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(copy.deepcopy(_RESPONSE_SCHEMAS))
    if "MonitorPatch" in schemas:  # every field of every kind, as the monitor shows them
        fields = schemas["MonitorPatch"]["properties"]
        schemas["Monitor"]["properties"] = {**fields, **schemas["Monitor"]["properties"]}
    paths = document.setdefault("paths", {})
    for (path, method), params in _PARAMS.items():
        operation = paths.get(path, {}).get(method)
        if operation is not None:
            known = {p["name"] for p in operation.get("parameters", [])}
            operation.setdefault("parameters", []).extend(p for p in params if p["name"] not in known)
    for (path, method), schema in _RESPONSES.items():
        operation = paths.get(path, {}).get(method)
        if operation is None:
            continue
        for status, response in operation.get("responses", {}).items():
            if status.startswith("2") and "content" in response:
                response["content"] = {"application/json": {"schema": schema}, **_FILES.get((path, method), {})}
    for path, operations in _OUTSIDE.items():
        paths.setdefault(path, {}).update(operations)
    return document
