"""Issue 11, item 2: a template cannot make the server build a huge string. Every way a
sandboxed expression could grow its output (``%`` formatting, ``str.format`` widths, padding
methods, replacement and join) is refused when the channel is saved or previewed, and what
is left renders small: a property over templates built from every allowed construct."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.alerting.templates import MAX_OUTPUT, render, sample_context, validate_template
from tests.integration.test_api import assert_error, send
from tests.integration.test_serve import Serve, cli

HOSTILE = [
    '{{ "%0300000000d" % 1 }}',
    '{{ "%s" % monitor.name }}',
    '{{ "{:>100000000}".format(1) }}',
    '{{ "{0:>{1}}".format("x", 100000000) }}',
    '{{ monitor.name.format_map({}) }}',
    '{{ "x".ljust(100000000) }}',
    '{{ "x".rjust(100000000) }}',
    '{{ "x".center(100000000) }}',
    '{{ "1".zfill(100000000) }}',
    '{{ "\\t".expandtabs(100000000) }}',
    '{{ ("a" * 5000).replace("a", "a" * 5000) }}',
    '{{ ("a" * 5000).join(["a"] * 5000) }}',
    '{{ "a" * 100000000 }}',
    '{{ 10 ** 100000 }}',
    '{% for i in range(100000000) %}x{% endfor %}',
]


@pytest.mark.parametrize("template", HOSTILE)
def test_growing_expressions_are_refused(template: str) -> None:
    problem = validate_template(template)
    assert problem is not None and "SecurityError" in problem, (template, problem)


_PIECES = st.sampled_from([
    "{{ monitor.name }}", "{{ reason }}", "{{ monitor.target }}", "{{ duration }}", "{{ status | upper }}",
    "{{ monitor.name * 3 }}", "{{ (monitor.name ~ reason) * 100 }}", "{{ reason | replace('5', '55555') }}",
    "{{ monitor.name | truncate(10) }}", "{% if is_test %}TEST {% endif %}", "{{ duration_seconds * 2 }}",
    "{{ 2 ** 64 }}", "{{ 'x' * 10000 }}", "plain text ", "{{ monitor.name | title }}",
])


@settings(max_examples=200, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=40))
def test_whatever_is_allowed_renders_small(pieces: list[str]) -> None:
    template = "".join(pieces)[:1024]
    if validate_template(template) is not None:
        return  # (a cut in the middle of a tag; refused, rendered never)
    for event in ("down", "up", "reminder", "test"):
        assert len(render(template, sample_context(event))) <= MAX_OUTPUT


@pytest.mark.slow
def test_previews_and_saves_refuse_them_over_http(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        base = server.url + "/api/v1/integrations"
        status, _, hook = send(base, "POST", {"name": "hook", "type": "webhook",
                                              "config": {"url": "https://hooks.example.com/x"}}, key)
        assert status == 201
        for template in HOSTILE[:6]:
            status, headers, body = send(f"{base}/{hook['data']['id']}/preview", "POST", {"template": template}, key)
            assert_error(status, headers, body, 400)
            assert [e["field"] for e in body["data"]["errors"]] == ["template"]
            status, headers, body = send(base, "POST", {"name": "t", "type": "webhook", "template": template,
                                                        "config": {"url": "https://hooks.example.com/x"}}, key)
            assert_error(status, headers, body, 400)
        assert send(server.url + "/healthz", "GET", None, key)[0] == 200
    finally:
        assert server.stop() == 0
