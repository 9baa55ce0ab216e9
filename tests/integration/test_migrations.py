"""Databases written at every earlier schema version open, migrate and serve; a database from
a newer xuptime is refused with a clear message and left as it was.

The fixtures (``tests/fixtures/schemas/v{N}.duckdb.gz``) were written by the xuptime that
introduced each schema version (see ``make.py`` there), with monitors, a key, an hour of
checks, incidents and API usage.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from core.storage.duckdb import DB_FILE, DuckDBStore
from core.storage.schema import LATEST
from tests.integration.test_api import call
from tests.integration.test_serve import Serve, cli

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent.parent / "fixtures" / "schemas"
SECRET = "xup_fixturefixturefixturefixture0000"
VERSIONS = sorted(int(p.name[1:].split(".")[0]) for p in FIXTURES.glob("v*.duckdb.gz"))


def _data_dir(tmp_path: Path, version: int) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with gzip.open(FIXTURES / f"v{version}.duckdb.gz") as src, open(data_dir / DB_FILE, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return data_dir


def test_every_released_schema_has_a_fixture() -> None:
    assert list(range(1, LATEST + 1)) == VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
def test_an_old_database_migrates_and_serves(tmp_path: Path, version: int) -> None:
    data_dir = _data_dir(tmp_path, version)
    store = DuckDBStore(data_dir)
    try:
        assert store.schema_version() == LATEST
        monitors = {m.name: m for m in store.list_monitors()}
        assert sorted(monitors) == ["database", "homepage"]
        assert (monitors["homepage"].retries, monitors["homepage"].tags, monitors["homepage"].status) == (
            1, ["web"], "down")
        assert monitors["database"].type == "tcp" and monitors["database"].interval == 30
        if version >= 2:  # API usage was kept from then on
            assert store.con.execute("SELECT requests FROM api_usage WHERE month = '2026-11'").fetchall() == [(42,)]
    finally:
        store.close()

    server = Serve(data_dir, 1)
    try:
        auth = {"X-API-Key": SECRET}
        status, _, page = call(server.url + "/api/v1/monitors", headers=auth)
        assert status == 200, page
        assert sorted(m["name"] for m in page["data"]) == ["database", "homepage"]
        home = next(m for m in page["data"] if m["name"] == "homepage")
        assert home["status"] == "down" and home["url"] == "http://127.0.0.1:9/"
        query = "?from=2026-11-02T10:00:00Z&to=2026-11-02T11:00:00Z"
        status, _, history = call(f"{server.url}/api/v1/monitors/{home['id']}/history{query}&limit=100",
                                  headers=auth)
        assert status == 200 and len(history["data"]) == 60
        assert history["data"][0]["statusCode"] == 500 and history["data"][-1]["ok"] is True
        status, _, hours = call(f"{server.url}/api/v1/monitors/{home['id']}/history{query}&interval=1h",
                                headers=auth)
        assert status == 200 and [(h["checks"], h["up"]) for h in hours["data"]] == [(60, 50)]
        status, _, incidents = call(f"{server.url}/api/v1/monitors/{home['id']}/incidents", headers=auth)
        assert status == 200 and len(incidents["data"]) == 2
        status, _, usage = call(server.url + "/api/v1/account/usage", headers=auth)
        assert status == 200 and usage["data"]["limit"] == 100_000
        # The served database takes writes at the new schema.
        assert "created account" in cli(data_dir, "accounts", "create", f"after-v{version}").stdout
    finally:
        assert server.stop() == 0


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    data_dir = _data_dir(tmp_path, VERSIONS[-1])
    con = duckdb.connect(str(data_dir / DB_FILE))
    con.execute("INSERT INTO schema_version VALUES (?, now())", [LATEST + 1])
    con.close()
    before = hashlib.sha256((data_dir / DB_FILE).read_bytes()).hexdigest()
    message = f"database schema v{LATEST + 1} is newer than this xuptime (v{LATEST})"
    listed = cli(data_dir, "monitors", "list", "--json", check=False)
    assert listed.returncode != 0 and message in listed.stderr, listed.stderr
    assert "Traceback" not in listed.stderr
    served = subprocess.run([sys.executable, "-m", "core.cli", "serve", "--data-dir", str(data_dir), "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert served.returncode != 0 and message in served.stderr + served.stdout
    assert "Traceback" not in served.stderr
    assert hashlib.sha256((data_dir / DB_FILE).read_bytes()).hexdigest() == before
