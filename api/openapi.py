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

__all__ = ["add_request_bodies"]

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
           "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}}}
    components |= {"MonitorCreate": create, "MonitorPatch": patch, "ApiKeyCreate": key}
    components |= _integration_schemas()
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


_BODIES = {("/api/v1/monitors", "post"): "MonitorCreate",
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
    return document
