"""Databases written at every earlier schema version open, migrate and serve; a database from
a newer xuptime is refused with a clear message and left as it was.

The fixtures (``tests/fixtures/schemas/v{N}.duckdb.gz``) were written by the xuptime that
introduced each schema version (see ``make.py`` there), with monitors, a key, an hour of
checks, incidents and API usage; ``tests/fixtures/datadirs/`` keeps data dirs written through
the faces of a past commit before a restructure (see ``make.py`` there).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from core.models.retention import Retention
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
        assert sorted(monitors) == sorted(["database", "homepage"] + (["db-host"] if version >= 8 else []))
        assert (monitors["homepage"].retries, monitors["homepage"].tags, monitors["homepage"].status) == (
            1, ["web"], "down")
        assert monitors["database"].type == "tcp" and monitors["database"].interval == 30
        if version >= 2:  # API usage was kept from then on
            assert store.con.execute("SELECT requests FROM api_usage WHERE month = '2026-11'").fetchall() == [(42,)]
        users = store.list_users()
        if version >= 5:  # dashboard users from then on: the fixture's still signs in (Argon2id hash kept)
            found = store.find_user("fixture@example.com")
            assert found is not None and found[0].role == "admin" and found[1].startswith("$argon2id$")
        else:
            assert users == []
        pages = store.list_status_pages()
        if version >= 6:  # status pages from then on
            assert [(p.slug, p.sections[0].monitors) for p in pages] == [("fixture", [1, 2])]
            assert [u.message for u in store.page_incidents(pages[0].id)[0].updates] == ["A bad deploy"]
        else:
            assert pages == []
        windows = store.list_maintenance()
        if version >= 7:  # maintenance windows from then on
            assert [(w.name, w.tags, w.schedule, w.timezone) for w in windows] == [
                ("Nightly", ["web"], "0 3 * * *", "Europe/Berlin")]
            # (moved 12 hours from now: what the homepage's status is below must not depend on
            # the hour the test runs at; the window's 03:00 Berlin hour was a failure an hour a day)
            hour = (dt.datetime.now(ZoneInfo("Europe/Berlin")).hour + 12) % 24
            store.con.execute("UPDATE maintenance SET schedule = ?", [f"0 {hour} * * *"])
        else:
            assert windows == []
        if version >= 9:  # retention settings from then on
            assert store.retention.text() == {"raw": "1y", "hourly": "2y", "daily": "forever"}
        else:
            assert store.retention.text() == {"raw": "90d", "hourly": "2y", "daily": "forever"}
        # (the fixture's rows are of fixed days: kept whatever today is, not dropped by retention)
        store.set_retention(Retention(raw=None, hourly=None, daily=None))
        latest, newest = store.agent_latest(0)
        if version >= 8:  # agent reports from then on
            assert latest[3][1].hostname == "db-host-1" and monitors["db-host"].type == "agent"
            assert newest == {3: latest[3][0]}
            rows, _ = store.agent_raw(3, None, None, 10)
            assert [r[1] for r in rows] == [12.0, 11.0, 10.0] and rows[0][13] == [{"mount": "/", "used": 52,
                                                                                   "total": 100}]
        else:
            assert latest == {} and newest == {}
    finally:
        store.close()

    server = Serve(data_dir, 1)
    try:
        auth = {"X-API-Key": SECRET}
        status, _, page = call(server.url + "/api/v1/monitors", headers=auth)
        assert status == 200, page
        assert sorted(m["name"] for m in page["data"]) == sorted(["database", "homepage"] + (
            ["db-host"] if version >= 8 else []))
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


def test_a_data_dir_from_before_the_services_is_served_as_it_was(tmp_path: Path) -> None:
    """``tests/fixtures/datadirs/before-services``: written through the faces of the commit
    before the one door (issue 10) and its store split. Everything it held is still served,
    to the same accounts, by the CLI on the stopped dir and by the running server."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    fixtures = FIXTURES.parent / "datadirs"
    with gzip.open(fixtures / "before-services.duckdb.gz") as src, open(data_dir / DB_FILE, "wb") as dst:
        shutil.copyfileobj(src, dst)
    key, acme_key = (fixtures / "before-services.keys").read_text().split()

    listed = cli(data_dir, "monitors", "list").stdout  # stopped: the same op table, on the file
    for name, target in [("homepage", "http://127.0.0.1:"), ("database", "127.0.0.1:"),
                         ("resolver", "example.invalid MX"), ("gateway", "127.0.0.1"),
                         ("nightly job", "/api/push/fixture-push-token-0001"), ("acme site", "http://127.0.0.1:")]:
        line = next(row for row in listed.splitlines() if name in row)
        assert target in line, listed
    assert "fixture" in cli(data_dir, "keys", "list").stdout

    server = Serve(data_dir, 1)
    try:
        auth = {"X-API-Key": key}
        status, _, page = call(server.url + "/api/v1/monitors", headers=auth)
        assert status == 200, page
        by_name = {m["name"]: m for m in page["data"]}
        assert sorted(by_name) == ["certificate", "database", "gateway", "homepage", "nightly job", "resolver"]
        assert by_name["gateway"]["paused"] is True and by_name["gateway"]["status"] == "paused"
        assert by_name["homepage"]["status"] == "down" and by_name["homepage"]["integrations"] == [1]
        assert by_name["homepage"]["createdAt"].endswith("Z")
        status, _, acme = call(server.url + "/api/v1/monitors", headers={"X-API-Key": acme_key})
        assert status == 200 and [m["name"] for m in acme["data"]] == ["acme site"]
        status, _, _ = call(f"{server.url}/api/v1/monitors/{by_name['homepage']['id']}",
                                headers={"X-API-Key": acme_key})
        assert status == 404  # another account's monitor stays unseen

        status, _, channels = call(server.url + "/api/v1/integrations", headers=auth)
        assert status == 200 and [c["name"] for c in channels["data"]] == ["ops hook"]
        assert "fixture-channel-secret" not in json.dumps(channels)  # masked, as before
        status, _, sent = call(server.url + "/api/v1/integrations/1/deliveries", headers=auth)
        assert status == 200 and {d["event"] for d in sent["data"]} == {"down"} and len(sent["data"]) >= 2
        status, _, incidents = call(server.url + "/api/v1/incidents", headers=auth)
        assert status == 200 and len([i for i in incidents["data"] if i["resolvedAt"] is None]) >= 2

        status, _, pushed = call(server.url + "/api/push/fixture-push-token-0001?status=up", method="POST")
        assert status == 200 and pushed == {"ok": True}
        # The old sequence goes on: a new monitor gets a fresh id, after the old ones.
        added = cli(data_dir, "monitors", "add", "later", "--url", "http://127.0.0.1:9/", "--interval", "60").stdout
        assert added.startswith("added monitor ") and int(added.split()[2].rstrip(":")) > 7
    finally:
        assert server.stop() == 0
