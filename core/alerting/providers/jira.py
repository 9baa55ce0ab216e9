"""Jira Service Management (Jira Cloud REST API v3): one issue per incident.

- **Down**: the issue is found by its label ``xuptime-incident-<id>`` (JQL search) or created
  in ``projectKey`` with ``issueType``, a summary from ``summaryTemplate``, the rendered
  template as its description (Atlassian Document Format), ``priority``, ``labels`` and any
  other ``fields`` (by field id, or by field name, looked up once via ``/rest/api/3/field``).
  Looking up before creating makes a retry after a crash find the issue instead of opening a
  second one.
- **Recovery** and **reminders**: a comment on that issue; on recovery, the issue is moved
  through the transition named ``resolveTransition`` (matched by transition or target status
  name), when set.
- **Test**: reads the project (``GET /rest/api/3/project/{key}``): credentials, site and
  project are checked without creating anything.

Authentication is HTTP basic with the account email and an API token. 401/403 and 400 (field
errors, reported by field) are final; 429 and 5xx are retried (``Retry-After`` honoured).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

import msgspec

from core.alerting.base import FieldProblem, SendContext, SendResult, check_url, http_outcome, request_json
from core.alerting.templates import render, validate_template

__all__ = ["JiraProvider"]

_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,19}$")
_FIELD_ID = re.compile(r"^(customfield_\d+|[a-z][a-zA-Z]*)$")
DEFAULT_SUMMARY = "{{ monitor.name }} is down{% if reason %}: {{ reason }}{% endif %}"


class JiraConfig(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    site_url: Annotated[str, msgspec.Meta(max_length=512)]
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    api_token: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    project_key: str
    issue_type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] = "Task"
    resolve_transition: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    priority: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    labels: list[Annotated[str, msgspec.Meta(min_length=1, max_length=255)]] = []
    fields: dict[str, Any] = {}
    summary_template: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)] | None = None


def _adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document, one paragraph per line."""
    paragraphs = [{"type": "paragraph", "content": [{"type": "text", "text": line}]}
                  for line in text.splitlines() if line.strip()]
    return {"type": "doc", "version": 1, "content": paragraphs or [{"type": "paragraph", "content": []}]}


def _errors(text: str) -> str:
    """Jira's ``{"errorMessages": [...], "errors": {"field": "message"}}`` in one line."""
    try:
        body = json.loads(text)
        parts = list(body.get("errorMessages") or []) + [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
        return "; ".join(parts) or text
    except (ValueError, AttributeError):
        return text


class JiraProvider:
    type: ClassVar[str] = "jira"
    Config: ClassVar[type[msgspec.Struct]] = JiraConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"apiToken"})
    #: Config fields naming the host a message goes to (the target policy applies to them).
    target_fields: ClassVar[frozenset[str]] = frozenset({"siteUrl"})
    min_interval: ClassVar[float] = 0.2
    default_template: ClassVar[str] = (
        "{% if event == 'up' %}Recovered after {{ duration }} (at {{ resolved }})."
        "{% elif event == 'flapping' %}{{ monitor.name }} is flapping: {{ changes }} changes between up and down "
        "since {{ started }}; alerts are held until it settles."
        "{% elif event == 'settled' %}Settled after {{ changes }} changes; it is {{ status }}."
        "{% elif event == 'reminder' %}"
        "Still down after {{ duration }}.{% else %}{{ monitor.name }} ({{ monitor.type }}) is down since {{ started }}."
        "{% if reason %}\nReason: {{ reason }}{% endif %}{% if monitor.target %}\nTarget: {{ monitor.target }}"
        "{% endif %}{% if link %}\nDetails: {{ link }}{% endif %}{% endif %}")

    def __init__(self) -> None:
        self._field_ids: dict[tuple[str, str], dict[str, str]] = {}  # (site, email) -> field name -> id

    @staticmethod
    def check(config: JiraConfig) -> list[FieldProblem]:
        errors: list[FieldProblem] = []
        check_url(config.site_url, "config.siteUrl", errors)
        if config.email is not None and "@" not in config.email:
            errors.append(FieldProblem("config.email", "must be the Atlassian account's email address"))
        if config.project_key is not None and not _KEY.match(config.project_key):
            errors.append(FieldProblem("config.projectKey", "must be a Jira project key such as OPS"))
        if config.summary_template is not None and (problem := validate_template(config.summary_template)):
            errors.append(FieldProblem("config.summaryTemplate", problem))
        for label in config.labels or []:
            if any(c.isspace() for c in label):
                errors.append(FieldProblem("config.labels", f"{label!r}: labels cannot contain spaces"))
        return errors

    @staticmethod
    def _headers(config: JiraConfig) -> dict[str, str]:
        token = base64.b64encode(f"{config.email}:{config.api_token}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def payload(self, ctx: SendContext) -> dict[str, Any]:
        """The create-issue request (fields by name not yet resolved to ids)."""
        config: JiraConfig = ctx.config
        summary = render(config.summary_template or DEFAULT_SUMMARY, ctx.event).replace("\n", " ")[:255]
        fields: dict[str, Any] = {
            "project": {"key": config.project_key}, "issuetype": {"name": config.issue_type},
            "summary": summary or "xuptime incident", "description": _adf(ctx.text),
            "labels": [*config.labels, "xuptime", f"xuptime-incident-{ctx.event['incident_id']}"]}
        if config.priority:
            fields["priority"] = {"name": config.priority}
        fields.update(config.fields)
        return {"fields": fields}

    async def send(self, ctx: SendContext) -> SendResult:
        config: JiraConfig = ctx.config
        site, headers = config.site_url.rstrip("/"), self._headers(config)
        event = ctx.event["event"]
        if event == "test":
            status, response_headers, text = await request_json(
                ctx.session, "GET", f"{site}/rest/api/3/project/{quote(config.project_key)}", headers=headers)
            if status == 200:
                return SendResult(True, status, f"project {config.project_key} is reachable")
            return http_outcome(status, response_headers, _errors(text))
        found = await self._find(ctx, site, headers)
        if isinstance(found, SendResult):
            return found
        if event in ("down", "flapping"):  # (a flapping spell is an issue of its own, keyed by its start)
            if found is not None:
                return SendResult(True, 200, f"{found} already open for this incident", reference=found)
            return await self._create(ctx, site, headers)
        if found is None:
            return SendResult(False, None, f"no Jira issue for incident {ctx.event['incident_id']}", retry=False)
        status, response_headers, text = await request_json(
            ctx.session, "POST", f"{site}/rest/api/3/issue/{found}/comment", {"body": _adf(ctx.text)}, headers)
        if not 200 <= status < 300:
            return http_outcome(status, response_headers, _errors(text))
        if event in ("up", "settled") and config.resolve_transition:
            return await self._transition(ctx, site, headers, found)
        return SendResult(True, status, f"commented on {found}", reference=found)

    async def _find(self, ctx: SendContext, site: str, headers: dict[str, str]) -> str | SendResult | None:
        jql = f'labels = "xuptime-incident-{ctx.event["incident_id"]}" ORDER BY created ASC'
        status, response_headers, text = await request_json(
            ctx.session, "GET", f"{site}/rest/api/3/search/jql?jql={quote(jql)}&fields=key&maxResults=1",
            headers=headers)
        if status != 200:
            return http_outcome(status, response_headers, _errors(text))
        try:
            issues = json.loads(text).get("issues") or []
        except ValueError:
            return SendResult(False, status, "unreadable search answer", retry=True)
        return str(issues[0]["key"]) if issues else None

    async def _field_map(self, ctx: SendContext, site: str, headers: dict[str, str]) -> dict[str, str]:
        config: JiraConfig = ctx.config
        cache_key = (site, config.email)
        if cache_key not in self._field_ids:
            status, _, text = await request_json(ctx.session, "GET", f"{site}/rest/api/3/field", headers=headers)
            fields = json.loads(text) if status == 200 else []
            self._field_ids[cache_key] = {str(f["name"]).lower(): str(f["id"]) for f in fields if "name" in f}
        return self._field_ids[cache_key]

    async def _create(self, ctx: SendContext, site: str, headers: dict[str, str]) -> SendResult:
        body = self.payload(ctx)
        config: JiraConfig = ctx.config
        named = [name for name in config.fields if not _FIELD_ID.match(name)]
        if named:
            ids = await self._field_map(ctx, site, headers)
            for name in named:
                value = body["fields"].pop(name)
                field_id = ids.get(name.lower())
                if field_id is None:
                    return SendResult(False, None, f"no Jira field named {name!r}", retry=False)
                body["fields"][field_id] = value
        status, response_headers, text = await request_json(ctx.session, "POST", f"{site}/rest/api/3/issue", body,
                                                            headers)
        if status == 201:
            key = json.loads(text).get("key")
            return SendResult(True, status, f"created {key}", reference=key)
        return http_outcome(status, response_headers, _errors(text))

    async def _transition(self, ctx: SendContext, site: str, headers: dict[str, str], key: str) -> SendResult:
        wanted = str(ctx.config.resolve_transition).lower()
        url = f"{site}/rest/api/3/issue/{key}/transitions"
        status, response_headers, text = await request_json(ctx.session, "GET", url, headers=headers)
        if status != 200:
            return http_outcome(status, response_headers, _errors(text))
        transitions = json.loads(text).get("transitions") or []
        match = next((t for t in transitions if str(t.get("name", "")).lower() == wanted
                      or str((t.get("to") or {}).get("name", "")).lower() == wanted), None)
        if match is None:
            names = ", ".join(str(t.get("name")) for t in transitions) or "none"
            wanted_name = ctx.config.resolve_transition
            return SendResult(False, 400, f"{key}: no transition {wanted_name!r} (available: {names})", retry=False)
        status, response_headers, text = await request_json(ctx.session, "POST", url,
                                                            {"transition": {"id": str(match["id"])}}, headers)
        if 200 <= status < 300:
            return SendResult(True, status, f"commented on {key} and moved it to {match.get('name')}", reference=key)
        return http_outcome(status, response_headers, _errors(text))
