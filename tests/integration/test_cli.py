"""The CLI a new user meets in the first hour, run as they would run it: ``--version``, a
readable ``status``, ``monitors show|edit|history``, ``users``, JSON logs with one line per
status change, and clear words (never a traceback) for a wrong data dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_serve import Serve, cli, closed_port, wait_for

pytestmark = pytest.mark.slow


def test_version_and_help_for_every_flag(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "core.cli", "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("xuptime 0.")
    helped = subprocess.run([sys.executable, "-m", "core.cli", "serve", "--help"], capture_output=True, text=True,
                            timeout=30).stdout
    for flag in ("--public-url", "--log-format", "--host", "--port", "--demo"):
        assert flag in helped


def test_a_monitor_from_the_cli_and_json_logs(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1, "--log-format", "json")
    try:
        port = closed_port()
        added = cli(data_dir, "monitors", "add", "closed", "--type", "tcp", "--host", "127.0.0.1", "--port",
                    str(port), "--interval", "1").stdout
        monitor_id = int(added.split()[2].rstrip(":"))
        wait_for(lambda: "status:   down" in cli(data_dir, "monitors", "show", str(monitor_id)).stdout, 20,
                 "the monitor to be down")
        shown = cli(data_dir, "monitors", "show", str(monitor_id)).stdout
        assert f"closed (monitor {monitor_id}, tcp 127.0.0.1:{port})" in shown and "x" in shown.split("failed):")[1]
        as_json = json.loads(cli(data_dir, "monitors", "show", str(monitor_id), "--json").stdout)
        assert as_json["status"] == "down" and as_json["uptime24h"] == 0.0 and as_json["recent"]
        def newest_two() -> list[dict] | None:
            rows = json.loads(cli(data_dir, "monitors", "history", str(monitor_id), "--json", "--limit", "2").stdout)
            return rows if len(rows) == 2 else None

        history = wait_for(newest_two, 20, "two checks")
        assert len(history) == 2 and not history[0]["ok"] and history[0]["tsUs"] > history[1]["tsUs"]
        table = cli(data_dir, "monitors", "history", str(monitor_id)).stdout
        assert table.splitlines()[0].split() == ["when", "ok", "latency", "ms", "status", "error"]
        assert "FAIL" in table
        edited = cli(data_dir, "monitors", "edit", str(monitor_id), "--json", '{"interval": 30, "tags": ["x"]}')
        assert "every 30 s" in edited.stdout
        bad = cli(data_dir, "monitors", "edit", str(monitor_id), "--json", '{"interval": 0}', check=False)
        assert bad.returncode == 2 and "interval:" in bad.stderr and "Traceback" not in bad.stderr
        assert json.loads(cli(data_dir, "monitors", "show", str(monitor_id), "--json").stdout)["interval"] == 30
        status = cli(data_dir, "status").stdout
        assert "1/1 engine workers ready" in status and "results written" in status
        assert json.loads(cli(data_dir, "status", "--json").stdout)["workers"][0]["ready"] is True
    finally:
        assert server.stop() == 0
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    changes = [x for x in lines if x["logger"] == "xuptime.transitions"]
    assert changes and changes[0]["monitor_id"] == monitor_id and changes[0]["new"] == "down"
    assert changes[0]["ts"].endswith("Z") and "closed" in changes[0]["message"]


def test_users_from_the_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    cli(data_dir, "users", "create", "Ops@Example.com", "--role", "editor", "--password", "ops-password")
    typed = subprocess.run([sys.executable, "-m", "core.cli", "users", "create", "v@example.com", "--data-dir",
                            str(data_dir)], input="piped-password\n", capture_output=True, text=True, timeout=60)
    assert typed.returncode == 0, typed.stderr
    users = json.loads(cli(data_dir, "users", "list", "--json").stdout)
    assert [(u["email"], u["role"]) for u in users] == [("ops@example.com", "editor"), ("v@example.com", "viewer")]
    assert "ops-password" not in (data_dir / "xuptime.duckdb").read_bytes().decode("latin-1")
    short = cli(data_dir, "users", "create", "x@example.com", "--password", "short", check=False)
    assert short.returncode == 2 and "password:" in short.stderr
    cli(data_dir, "users", "set-password", "v@example.com", "--password", "another-password")
    cli(data_dir, "users", "remove", "v@example.com")
    assert "v@example.com" not in cli(data_dir, "users", "list").stdout
    missing = cli(data_dir, "users", "remove", "nobody@example.com", check=False)
    assert missing.returncode == 2 and "no user" in missing.stderr


def test_a_wrong_data_dir_is_said_plainly(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    proc = subprocess.run([sys.executable, "-m", "core.cli", "serve", "--data-dir", str(a_file), "--port",
                           str(closed_port())], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "is not a directory" in proc.stderr and "Traceback" not in proc.stderr
    data_dir = tmp_path / "data"
    server = Serve(data_dir, 1)
    try:
        second = subprocess.run([sys.executable, "-m", "core.cli", "serve", "--data-dir", str(data_dir), "--port",
                                 str(closed_port())], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "already running" in second.stderr and "Traceback" not in second.stderr
    finally:
        assert server.stop() == 0
