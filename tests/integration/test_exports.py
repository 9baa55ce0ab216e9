"""Exports as a user makes them: a monitor's history as CSV and Parquet from the API (the same
checks and buckets as its JSON pages), ``xuptime export`` and ``xuptime sql --format/--out``
through a running server and on the stopped data dir; bad input refused with nothing written.
(And the read-only key a Grafana user makes with the CLI.)"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.integration.test_alerts import Target
from tests.integration.test_api import assert_error, call, send
from tests.integration.test_serve import Serve, cli, wait_for

pytestmark = pytest.mark.slow  # real xuptime serve processes

CHECK_COLUMNS = ["ts", "ok", "latencyMs", "statusCode", "error", "dnsMs", "connectMs", "tlsMs", "ttfbMs", "region"]


def fetch(url: str, key: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def json_pages(url: str, key: str) -> list[dict[str, Any]]:
    """Every item of a history query, newest first, page by page."""
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, _, body = call(f"{url}&limit=1000{cursor}", headers={"X-API-Key": key})
        assert status == 200, body
        items += body["data"]
        if not body["pagination"]["nextCursor"]:
            return items
        cursor = f"&cursor={body['pagination']['nextCursor']}"


def test_history_exports_and_the_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    cli(data_dir, "accounts", "create", "other")
    server = Serve(data_dir, 1)
    target = Target()
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        other = cli(data_dir, "keys", "create", "--account", "other").stdout.splitlines()[-1]
        made = cli(data_dir, "keys", "create", "--read-only", "--name", "grafana").stdout.splitlines()
        assert made[0].startswith("Read-only API key") and made[-1].startswith("xup_")
        scopes = {k["name"]: k["scope"] for k in json.loads(cli(data_dir, "keys", "list", "--json").stdout)}
        assert scopes == {"default": "full", "grafana": "read"}
        base = f"{server.url}/api/v1/monitors"
        web = send(base, "POST", {"name": "web", "type": "http", "url": target.url, "interval": 1}, key)[2]["data"]
        send(base, "POST", {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": 1}, key)
        history = f"{base}/{web['id']}/history"
        wait_for(lambda: len(call(f"{history}?limit=10", headers={"X-API-Key": key})[2]["data"]) >= 6, 30,
                 "six checks")
        until = int(time.time() * 1000)  # (a fixed end: checks go on arriving)
        span = f"from=0&to={until}"

        # CSV: the JSON pages' checks, oldest first, phases flattened, ISO times
        status, headers, body = fetch(f"{history}?{span}&format=csv", key)
        assert status == 200 and headers["content-type"].startswith("text/csv")
        assert headers["content-disposition"] == f'attachment; filename="monitor-{web["id"]}-raw.csv"'
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert list(rows[0]) == CHECK_COLUMNS
        pages = json_pages(f"{history}?{span}", key)
        assert [r["ts"][:23] for r in rows] == [p["ts"][:23] for p in reversed(pages)]
        assert [float(r["latencyMs"]) for r in rows] == [p["latencyMs"] for p in reversed(pages)]
        assert {r["ok"] for r in rows} == {"true"} and {r["statusCode"] for r in rows} == {"200"}
        assert rows[0]["ts"].endswith("Z") and "T" in rows[0]["ts"] and rows[0]["tlsMs"] == ""

        # Parquet: the same rows, typed
        status, headers, body = fetch(f"{history}?{span}&format=parquet", key)
        assert status == 200 and headers["content-type"] == "application/vnd.apache.parquet"
        table = pq.read_table(io.BytesIO(body))
        assert table.column_names == CHECK_COLUMNS and table.num_rows == len(rows)
        assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
        assert table.column("latencyMs").to_pylist() == [float(r["latencyMs"]) for r in rows]

        # buckets: the JSON buckets, oldest first
        status, _, body = fetch(f"{history}?{span}&interval=1m&format=csv", key)
        buckets = list(csv.DictReader(io.StringIO(body.decode())))
        json_buckets = json_pages(f"{history}?{span}&interval=1m", key)
        assert [int(b["checks"]) for b in buckets] == [b["checks"] for b in reversed(json_buckets)]
        assert sum(int(b["checks"]) for b in buckets) == len(rows)
        assert [float(b["latencyP95Ms"]) for b in buckets] == [b["latencyMs"]["p95"] for b in reversed(json_buckets)]

        # an empty range: the header, no rows; bad input: the error payload
        status, _, body = fetch(f"{history}?from=0&to=1000&format=csv", key)
        assert status == 200 and body.decode().splitlines() == [",".join(f'"{c}"' for c in CHECK_COLUMNS)]
        assert_error(*call(f"{history}?format=xlsx", headers={"X-API-Key": key}), 400)
        assert_error(*call(f"{history}?format=csv&cursor=abc", headers={"X-API-Key": key}), 400)
        assert_error(*call(f"{history}?format=csv", headers={"X-API-Key": other}), 404)

        # the CLI through the running server
        out = tmp_path / "web.parquet"
        done = cli(data_dir, "export", "--monitor", str(web["id"]), "--from", "0", "--to", str(until),
                   "--out", str(out))
        assert f"{len(rows)} rows written" in done.stderr.replace(",", "")
        assert pq.read_table(out).equals(table)
        everything = cli(data_dir, "export", "--all", "--to", str(until), "--format", "csv", "--out", "-").stdout
        every = list(csv.DictReader(io.StringIO(everything)))
        assert list(every[0]) == ["monitorId", *CHECK_COLUMNS]
        assert sum(r["monitorId"] == str(web["id"]) for r in every) == len(rows)
        assert {r["ok"] for r in every if r["monitorId"] != str(web["id"])} == {"false"}
        query = f"SELECT monitor_id, count(*) AS n, avg(latency_us) / 1000 AS ms FROM checks" \
                f" WHERE ts <= make_timestamp({until * 1000}) GROUP BY ALL ORDER BY 1"
        table_text = cli(data_dir, "sql", query).stdout.splitlines()
        assert table_text[0].split() == ["monitor_id", "n", "ms"]
        assert all(len(cell.split(".")[-1]) <= 3 for line in table_text[1:] for cell in line.split()[2:])  # rounded
        as_json = json.loads(cli(data_dir, "sql", query, "--format", "json").stdout)
        assert as_json["columns"] == ["monitor_id", "n", "ms"]
        counts = cli(data_dir, "sql", query, "--format", "csv").stdout.splitlines()
        assert counts[0] == '"monitor_id","n","ms"' and counts[1].startswith(f'{web["id"]},{len(rows)},')
        cli(data_dir, "sql", query, "--out", str(tmp_path / "counts.parquet"))
        assert pq.read_table(tmp_path / "counts.parquet").column("n").to_pylist()[0] == len(rows)

        # refused: nothing written, a clear word
        refused = cli(data_dir, "sql", "UPDATE monitors SET name = 'x'", "--out", str(tmp_path / "no.csv"), check=False)
        assert refused.returncode != 0 and "only SELECT" in refused.stderr and not (tmp_path / "no.csv").exists()
        bad = cli(data_dir, "export", "--monitor", "999", "--out", str(tmp_path / "no.parquet"), check=False)
        assert bad.returncode != 0 and "no monitor 999" in bad.stderr and not (tmp_path / "no.parquet").exists()
        assert not list(tmp_path.glob(".no.*"))  # (no temporary file left behind either)
        nowhere = cli(data_dir, "export", "--all", "--out", str(tmp_path / "missing" / "x.csv"), check=False)
        assert nowhere.returncode != 0 and "cannot write" in nowhere.stderr and "Traceback" not in nowhere.stderr
    finally:
        assert server.stop() == 0

    # the stopped data dir: the same export, read-only; on a terminal, with a progress bar
    again = tmp_path / "again.parquet"
    terminal = on_a_terminal(["export", "--monitor", str(web["id"]), "--from", "0", "--to", str(until),
                              "--out", str(again), "--data-dir", str(data_dir)])
    assert pq.read_table(again).equals(table)
    assert "export" in terminal and f"{len(rows)}/{len(rows)}" in terminal and "rows written" in terminal
    piped = cli(data_dir, "export", "--monitor", str(web["id"]), "--to", str(until), "--out", str(again))
    assert piped.stderr.strip() == f"{len(rows)} rows written to {again}"  # (no bar when not a terminal)


def on_a_terminal(args: list[str]) -> str:
    """What ``xuptime ARGS`` writes to standard error when that is a terminal (a pty)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "core.cli", *args], stdout=subprocess.DEVNULL,
                                stderr=slave, env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # (EIO: the other end closed)
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(60) == 0, out
        return out.decode(errors="replace")
    finally:
        os.close(master)
