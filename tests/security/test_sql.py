"""Issue 11, item 3: ``xuptime sql`` is read-only SQL over the data and nothing else, with
the server running (the control socket) and stopped (the file), as a local user of the CLI
would try it: no write through ``EXPLAIN ANALYZE``, no sequence moved, no file read or
written, no database attached, no extension installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_serve import Serve, add, cli

pytestmark = pytest.mark.slow

ATTACKS = [
    ("EXPLAIN ANALYZE UPDATE monitors SET name = 'pwned'", "read-only"),
    ("EXPLAIN ANALYZE DELETE FROM checks", "read-only"),
    ("EXPLAIN ANALYZE INSERT INTO accounts (name) VALUES ('pwned')", "read-only"),
    ("SELECT nextval('monitors_id_seq')", "read-only"),
    ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
    ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
    ("SELECT * FROM glob('/etc/*')", "file system operations are disabled"),
    ("UPDATE monitors SET name = 'pwned'", "only SELECT"),
    ("ATTACH '{dir}/other.db'", "only SELECT"),
    ("INSTALL httpfs", "only SELECT"),
    ("SET enable_external_access = true", "only SELECT"),
    ("SELECT 1; DROP TABLE monitors", "only SELECT"),
]
COPY_OUT = "EXPLAIN ANALYZE COPY (SELECT * FROM monitors) TO '{dir}/stolen.csv'"


def _attack(data_dir: Path) -> None:
    for sql, said in ATTACKS:
        refused = cli(data_dir, "sql", sql.format(dir=data_dir.parent), check=False)
        assert refused.returncode == 2 and said in refused.stderr, (sql, refused.stderr)
        assert "Traceback" not in refused.stderr
    copied = cli(data_dir, "sql", COPY_OUT.format(dir=data_dir.parent), check=False)
    assert copied.returncode == 2 and not (data_dir.parent / "stolen.csv").exists()
    assert not (data_dir.parent / "other.db").exists()
    listed = cli(data_dir, "sql", "SELECT name FROM monitors ORDER BY id").stdout
    assert "pwned" not in listed and "victim" in listed
    assert "pwned" not in cli(data_dir, "sql", "SELECT name FROM accounts").stdout


def test_sql_on_a_stopped_data_dir_reads_only_the_data(data_dir: Path) -> None:
    add(data_dir, "victim", "--url", "http://127.0.0.1:9/", "--interval", "3600")
    _attack(data_dir)
    # the sequence did not move: the next monitor gets the next id
    assert add(data_dir, "next", "--url", "http://127.0.0.1:9/", "--interval", "3600") == 2


def test_sql_through_the_running_server_reads_only_the_data(data_dir: Path) -> None:
    add(data_dir, "victim", "--url", "http://127.0.0.1:9/", "--interval", "3600")
    server = Serve(data_dir, 1)
    try:
        _attack(data_dir)
        assert "victim" in cli(data_dir, "monitors", "list").stdout
    finally:
        assert server.stop() == 0
