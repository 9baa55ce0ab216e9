"""Issue 11, item 7: a full disk loses no result quietly. On a data dir in a small tmpfs that
is filled up while monitors are checked, results wait in memory (counted in ``status`` and
``/metrics``, logged), a create is a 503 in the error shape, and when space returns the
waiting results are written and nothing was dropped. (Needs root, for the mount: the
machines this project runs its tests on are root.)"""

from __future__ import annotations

import contextlib
import http.server
import os
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_api import assert_error, send
from tests.integration.test_serve import Serve, add, cli, sql, wait_for

pytestmark = pytest.mark.slow


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _status(data_dir: Path) -> dict[str, Any]:
    from core.cli import control_request

    return control_request(data_dir, "stats")


def test_a_full_disk_keeps_results_and_refuses_writes_clearly(small_disk: Path) -> None:
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    data_dir = small_disk / "data"
    for i in range(40):
        add(data_dir, f"m{i}", "--url", f"http://127.0.0.1:{target.server_address[1]}/{i}", "--interval", "1")
    server = Serve(data_dir, 1)
    filler = small_disk / "filler"
    try:
        key = cli(data_dir, "keys", "create").stdout.splitlines()[-1]
        wait_for(lambda: _status(data_dir)["rowsWritten"] >= 80, 20, "results written")
        stat = os.statvfs(small_disk)
        # Unbuffered: a buffered file would hold the bytes the disk refused and raise again on close.
        with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):  # every byte left
            out.write(bytes(stat.f_bavail * stat.f_frsize))
            while True:
                out.write(bytes(65536))
        wait_for(lambda: _status(data_dir)["rowsSpilled"] >= 80, 30, "results waiting in memory")

        def refused() -> bool:
            status, headers, body = send(server.url + "/api/v1/monitors", "POST",
                                         {"name": "late", "type": "tcp", "host": "127.0.0.1", "port": 9}, key)
            if status == 503:
                assert_error(status, headers, body, 503)
                return True
            return False

        wait_for(refused, 20, "a create refused with 503")
        request = urllib.request.Request(server.url + "/metrics", headers={"X-API-Key": key})
        with urllib.request.urlopen(request, timeout=10) as response:
            exposition = response.read().decode()
        waiting_line = next(line for line in exposition.splitlines() if line.startswith("xuptime_results_waiting "))
        assert float(waiting_line.split()[1]) > 0
        waiting = _status(data_dir)
        assert waiting["rowsDropped"] == 0
        before = waiting["rowsWritten"] + waiting["rowsSpilled"]
        filler.unlink()  # space again
        wait_for(lambda: _status(data_dir)["rowsSpilled"] == 0, 30, "the waiting results written")
        done = _status(data_dir)
        assert done["rowsDropped"] == 0 and done["rowsWritten"] >= before
        assert send(server.url + "/api/v1/monitors", "POST",
                    {"name": "after", "type": "tcp", "host": "127.0.0.1", "port": 9}, key)[0] == 201
    finally:
        with contextlib.suppress(FileNotFoundError):
            filler.unlink()
        assert server.stop() == 0
        target.shutdown()
        target.server_close()
    assert "out of space" in server.output()
    written = sql(data_dir, "SELECT count(*) FROM checks")[0][0]
    assert written >= done["rowsWritten"]
