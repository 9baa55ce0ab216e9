"""Issue 11, item 4 (file modes): the data dir is its owner's alone. A new one is 0700 with
every file 0600 (the database, its WAL, the control socket); an existing one left readable
by others is fixed at start, with a warning saying what was open."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.integration.test_api import send
from tests.integration.test_serve import Serve, add, cli

pytestmark = pytest.mark.slow


def _modes(data_dir: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in [data_dir, *data_dir.iterdir()]}


def test_a_new_data_dir_is_private(data_dir: Path) -> None:
    server = Serve(data_dir, 1)
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        status, _, _ = send(server.url + "/api/v1/integrations", "POST", {
            "name": "pager", "type": "webhook", "config": {"url": "https://hooks.example.com/T0/B0/secret-path",
                                                          "secret": "signing-secret-0001"}}, key)
        assert status == 201
        modes = _modes(data_dir)
        assert {"data", "xuptime.duckdb", "xuptime.sock"} <= set(modes)
        assert modes.pop("data") == 0o700
        assert all(mode == 0o600 for mode in modes.values()), modes  # the WAL with the secret too
    finally:
        assert server.stop() == 0
    assert all(mode in (0o600, 0o700) for mode in _modes(data_dir).values())


def test_an_open_data_dir_is_closed_with_a_warning(data_dir: Path) -> None:
    add(data_dir, "m", "--url", "http://127.0.0.1:9/", "--interval", "3600")
    data_dir.chmod(0o755)
    (data_dir / "xuptime.duckdb").chmod(0o644)
    server = Serve(data_dir, 1)
    try:
        assert _modes(data_dir)["data"] == 0o700 and _modes(data_dir)["xuptime.duckdb"] == 0o600
    finally:
        assert server.stop() == 0
    output = server.output()
    assert "was readable by other users (mode 755)" in output and "(mode 644)" in output
