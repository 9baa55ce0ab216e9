"""Issue 11, item 1 (in part): on a server that denies private targets, channels obey the
same policy as monitors: a target written as a private, loopback or link-local address is
refused when saved (every provider's target field), and a name that resolves to one is
refused when a message is sent."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.alerting.base import PublicResolver
from tests.integration.test_api import assert_error, send
from tests.integration.test_serve import Serve, cli

pytestmark = pytest.mark.slow

PRIVATE = [
    ("webhook", {"url": "http://127.0.0.1:8080/hook"}, "config.url"),
    ("webhook", {"url": "http://[::1]/hook"}, "config.url"),
    ("webhook", {"url": "http://localhost./hook"}, "config.url"),
    ("slack", {"webhookUrl": "http://10.1.2.3/services/T/B/x"}, "config.webhookUrl"),
    ("discord", {"webhookUrl": "http://metadata.localhost/api/webhooks/1/x"}, "config.webhookUrl"),
    ("jira", {"siteUrl": "http://192.168.1.10", "email": "a@example.com", "apiToken": "t", "projectKey": "OPS"},
     "config.siteUrl"),
    ("twitter", {"handle": "ops", "bearerToken": "t", "apiBaseUrl": "http://169.254.169.254"}, "config.apiBaseUrl"),
    ("email", {"host": "127.0.0.1", "from": "a@example.com", "to": ["b@example.com"]}, "config.host"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir: Path = tmp_path_factory.mktemp("channels") / "data"
    serve = Serve(data_dir, 1, "--deny-private-targets")
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        yield {"url": serve.url, "key": key}
    finally:
        assert serve.stop() == 0


@pytest.mark.parametrize(("kind", "config", "field"), PRIVATE)
def test_private_channel_targets_are_refused_when_saved(server: dict[str, Any], kind: str, config: dict[str, Any],
                                                        field: str) -> None:
    status, headers, body = send(server["url"] + "/api/v1/integrations", "POST",
                                 {"name": "inside", "type": kind, "config": config}, server["key"])
    assert_error(status, headers, body, 400)
    assert [e["field"] for e in body["data"]["errors"]] == [field], body


def test_a_change_to_a_private_target_is_refused(server: dict[str, Any]) -> None:
    base = server["url"] + "/api/v1/integrations"
    status, _, body = send(base, "POST", {"name": "ok", "type": "webhook",
                                          "config": {"url": "https://hooks.example.com/x"}}, server["key"])
    assert status == 201, body
    status, headers, answer = send(f"{base}/{body['data']['id']}", "PATCH",
                                   {"config": {"url": "http://127.0.0.1:9/x"}}, server["key"])
    assert_error(status, headers, answer, 400)


def test_a_name_that_resolves_to_a_private_address_is_refused_when_sent(server: dict[str, Any]) -> None:
    host = socket.gethostname()  # (Debian's /etc/hosts maps it to a loopback address)
    assert socket.gethostbyname(host).startswith("127.")
    base = server["url"] + "/api/v1/integrations"
    status, _, body = send(base, "POST", {"name": "by name", "type": "webhook",
                                          "config": {"url": f"http://{host}:9/hook"}}, server["key"])
    assert status == 201, body  # not written as a private address: saved
    status, _, result = send(f"{base}/{body['data']['id']}/test", "POST", {}, server["key"])
    assert status == 200 and result["data"]["delivered"] is False
    assert "private" in result["data"]["response"] or result["data"]["statusCode"] is None

    async def resolve() -> None:
        resolver = PublicResolver()
        try:
            with pytest.raises(OSError, match="private"):
                await resolver.resolve(host, 80)
        finally:
            await resolver.close()

    asyncio.run(resolve())


@pytest.mark.parametrize(("kind", "config"), [
    ("email", {"host": "{host}", "port": 2525, "security": "none", "from": "a@example.com", "to": "b@example.com"}),
    ("apprise", {"url": "json://{host}:9/notify"}),
])
def test_providers_that_connect_on_their_own_refuse_private_names_too(server: dict[str, Any], kind: str,
                                                                      config: dict[str, Any]) -> None:
    host = socket.gethostname()  # resolves to a loopback address (see above)
    filled = {k: (v.format(host=host) if isinstance(v, str) else v) for k, v in config.items()}
    base = server["url"] + "/api/v1/integrations"
    status, _, body = send(base, "POST", {"name": kind, "type": kind, "config": filled}, server["key"])
    assert status == 201, body
    status, _, result = send(f"{base}/{body['data']['id']}/test", "POST", {}, server["key"])
    assert status == 200 and result["data"]["delivered"] is False
    assert "resolves to a private address" in result["data"]["response"], result
