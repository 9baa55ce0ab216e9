"""What a kept TLS session costs: the compiled engine's memory with N HTTPS origins, each
holding the session its server gave, against the same origins without one.

The engine keeps the newest session per origin (``tlsResume``); an origin is (host, port,
account, TLS), so N accounts monitoring one server make N origins here, as N distinct hosts
would. One loopback TLS server (nginx from ``bench.engine``, tickets on) answers every check;
each origin gets one check, then the sessions are dropped (``forget_session``) and the RSS
read again. Usage: ``python -m bench.sessions [--origins N]``. Prints a table, then one JSON
line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import tempfile
from pathlib import Path
from typing import Any

from bench.engine import ensure_tools, log, target


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


async def measure(url_port: int, ca: Path, origins: int) -> dict[str, Any]:
    from core.checkers import http
    from core.engine.scheduler import raw_sockaddr
    from core.models import parse_monitor
    from ext import HttpEngine, ResultBuffer

    buffer = ResultBuffer(origins + 16)
    done: list[int] = []
    engine = HttpEngine(buffer, lambda count, notable: done.append(count), lambda mid, for_good: None)
    engine.configure_tls(*http.tls_settings(ssl.create_default_context()), cafile=str(ca))
    loop = asyncio.get_running_loop()
    loop.add_reader(engine.fileno(), engine.on_ready)
    address = raw_sockaddr(socket.AF_INET, ("127.0.0.1", url_port))
    m = parse_monitor({"name": "s", "type": "http", "url": f"https://127.0.0.1:{url_port}/", "interval": 60})
    spec = http.compiled_spec(http.prepare(m.spec))  # type: ignore[arg-type]
    assert spec is not None
    indexes = []
    for account in range(origins):
        origin = engine.origin(("127.0.0.1", url_port, account, 2))
        engine.set_address(origin, socket.AF_INET, address)
        engine.set_tls(origin, "127.0.0.1", True, True)
        engine.add(account + 1, origin, spec.request, spec.table, spec.expected, 5.0, False, False, False,
                   spec.max_body, 60_000)
        indexes.append(origin)
    before = rss_bytes()
    ok = 0
    for start in range(0, origins, 200):  # 200 handshakes in flight at a time
        for account in range(start, min(origins, start + 200)):
            engine.start(account + 1)
        while engine.inflight:
            await asyncio.sleep(0.005)
            engine.expire()
        batch = buffer.flush()
        ok += int(batch["ok"].sum()) if batch is not None else 0
    kept = sum(engine.has_session(i) for i in indexes)
    with_sessions = rss_bytes()
    for i in indexes:
        engine.forget_session(i)
    without = rss_bytes()
    loop.remove_reader(engine.fileno())
    engine.close()
    return {"origins": origins, "ok": ok, "sessions": kept, "rss_before_mb": before / 2**20,
            "rss_with_sessions_mb": with_sessions / 2**20, "rss_after_forget_mb": without / 2**20,
            "per_session_bytes": round((with_sessions - before) / max(1, kept))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--origins", type=int, default=20_000)
    args = parser.parse_args()
    ensure_tools()
    with tempfile.TemporaryDirectory(prefix="xuptime-sessions-") as tmp, target(Path(tmp)) as nginx:
        log(f"{args.origins:,} HTTPS origins, one check each")
        out = asyncio.run(measure(nginx.resume_port, nginx.dir / "ca.pem", args.origins))
    out["bench"] = "sessions"
    print(f"origins {out['origins']:,}: {out['ok']:,} checks ok, {out['sessions']:,} sessions kept")
    print(f"engine process RSS: {out['rss_before_mb']:.1f} MB before, {out['rss_with_sessions_mb']:.1f} MB with "
          f"the sessions ({out['per_session_bytes']:,} B a session), {out['rss_after_forget_mb']:.1f} MB after "
          "forgetting them (the allocator keeps freed pages)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
