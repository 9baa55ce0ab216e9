"""The ``xuptime`` command.

Every subcommand takes ``--data-dir`` (default ``$XUPTIME_DATA_DIR``, then ``./xuptime-data``).
Commands that touch the data go through the running server when there is one (its Unix
socket ``xuptime.sock`` in the data dir answers), and open the DuckDB file directly when
the server is stopped, so they never fight the server for the file.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import core.agent

__all__ = ["main"]


class ServerNotRunning(Exception):
    pass


class CommandError(Exception):
    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def default_data_dir() -> str:
    return os.environ.get("XUPTIME_DATA_DIR") or "./xuptime-data"


def control_socket(data_dir: Path, op: str, args: dict[str, Any] | None, timeout: float) -> socket.socket:
    """A connection to the running server with the request sent; ServerNotRunning when
    nobody answers."""
    from core.main import CONTROL_SOCKET

    path = data_dir / CONTROL_SOCKET
    if not path.exists():
        raise ServerNotRunning
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        raise ServerNotRunning from None
    sock.sendall(json.dumps({"op": op, "args": args or {}}).encode() + b"\n")
    return sock


def control_request(data_dir: Path, op: str, args: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
    """One request to the running server; ServerNotRunning when nobody answers."""
    with control_socket(data_dir, op, args, timeout) as sock:
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    response = json.loads(data)
    if not response.get("ok"):
        raise CommandError(response.get("error", "failed"), response.get("errors"))
    return response["data"]


def _run(data_dir: Path, op: str, args: dict[str, Any]) -> Any:
    """Through the server if it runs, else the same operation (``core.ops``) directly on the
    data dir: read-only for the operations that only read."""
    try:
        return control_request(data_dir, op, args)
    except ServerNotRunning:
        pass
    from core import ops
    from core.storage.duckdb import DB_FILE

    if op in ops.NEEDS_SERVER:
        raise CommandError(f"{op} needs a running server")
    read_only = op in ops.READ_ONLY_OPS
    if read_only and not (data_dir / DB_FILE).exists():
        if op == "monitors.list":
            return []
        raise CommandError(f"no database in {data_dir} yet (start `xuptime serve` or add a monitor first)")
    import asyncio

    return asyncio.run(_run_here(data_dir, op, args, read_only))


async def _run_here(data_dir: Path, op: str, args: dict[str, Any], read_only: bool,
                    work: Callable[[Any], Awaitable[Any]] | None = None) -> Any:
    """``op`` on the data dir itself (or ``work(services)`` instead: a streamed operation)."""
    import duckdb

    from core import ops
    from core.engine.table import MonitorTable
    from core.services import DormantEngine, ServiceError, Services, StoreThreads
    from core.storage.duckdb import READERS, DuckDBStore

    threads = StoreThreads(READERS)
    try:
        try:
            store = await threads.write(DuckDBStore, data_dir, read_only=read_only)
        except duckdb.IOException as exc:
            raise CommandError(f"cannot open the database (is another process using it?): {exc}") from None
        try:
            monitors = await threads.write(lambda: MonitorTable.from_batches(store.monitor_batches()))
            services = Services.build(store, threads, DormantEngine(monitors))
            await services.load(light=work is not None)
            try:
                return await (work(services) if work is not None else ops.run(services, op, args))
            except (ServiceError, ops.OpError) as exc:
                payload = ops.error_payload(exc)
                raise CommandError(payload["error"], payload.get("errors")) from None
        finally:
            await threads.write(store.close)
    finally:
        threads.shutdown()


def _monitor_from_args(ns: argparse.Namespace) -> dict[str, Any]:
    if ns.json:
        try:
            data = json.loads(ns.json)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--json is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CommandError("--json must be a JSON object")
        return data
    data: dict[str, Any] = {}
    if ns.name is not None:
        data["name"] = ns.name
    data["type"] = ns.type or ("tcp" if ns.host and not ns.url else "http")
    for key in ("url", "host", "port", "interval", "timeout", "retries", "keyword", "method"):
        value = getattr(ns, key)
        if value is not None:
            data[key] = value
    if ns.recovery_threshold is not None:
        data["recoveryThreshold"] = ns.recovery_threshold
    if ns.expected_status:
        data["expectedStatus"] = ns.expected_status
    if ns.keep_alive:
        data["keepAlive"] = True
    if ns.insecure:
        data["verifyTls"] = False
    if ns.tag:
        data["tags"] = ns.tag
    return data


def _cell(value: Any) -> str:
    """A table cell: nothing for null, floats to three decimals (no trailing zeros)."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:,.3f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return str(value)


def _print_table(columns: list[str], rows: list[list[Any]], file: Any = None) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)).rstrip(), file=file)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip(), file=file)


def _when(ts_us: int | None) -> str:
    if not ts_us:
        return "never"
    import datetime as dt

    return dt.datetime.fromtimestamp(ts_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _target(m: dict[str, Any]) -> str:
    from core.models import wire_target

    return wire_target(m)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xuptime")
    except PackageNotFoundError:  # (a checkout that is not installed)
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    # ``--data-dir`` is taken before the command and after it; the default lives on the top
    # parser only, or a subcommand's default would override one given before the command.
    top = argparse.ArgumentParser(add_help=False)
    top.add_argument("--data-dir", default=default_data_dir(),
                     help="data directory (default: $XUPTIME_DATA_DIR, then ./xuptime-data)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS,
                        help="data directory (default: $XUPTIME_DATA_DIR, then ./xuptime-data)")
    parser = argparse.ArgumentParser(prog="xuptime", description="Self-hosted uptime monitoring at scale.",
                                     parents=[top])
    parser.add_argument("--version", action="version", version=f"xuptime {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the monitor (engine workers + storage)")
    serve.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port of the dashboard and API (default 8080)")
    serve.add_argument("--workers", type=int, default=0, help="engine worker processes (default: cores)")
    serve.add_argument("--max-inflight", type=int, default=0,
                       help="concurrent checks per worker (default: sized from the open-file limit)")
    serve.add_argument("--demo", action="store_true", help="add demo monitors against a local demo target")
    serve.add_argument("--http-server", choices=("uvicorn", "granian"), default="uvicorn",
                       help="embedded ASGI server (granian: optional, `pip install granian`; see bench/README.md)")
    serve.add_argument("--keep-alive", type=float, default=75.0, metavar="SECONDS",
                       help="keep an idle HTTP connection open this long (default 75: agents reporting every "
                            "30 or 60 s reuse one connection)")
    serve.add_argument("--retention", metavar="TIER=DURATION,...",
                       help="how long history is kept: raw checks, hourly and daily rollups, e.g. "
                            "raw=90d,hourly=2y,daily=forever (the defaults); tiers not named keep their setting, "
                            "which is kept across restarts (change it while running: xuptime retention --set)")
    serve.add_argument("--history-memory", type=int, default=256, metavar="MB",
                       help="memory for each monitor's newest checks and last month of hours, which answer "
                            "history pages without a database read (default 256; half each; 0 turns it off; "
                            "past what it holds, pages are read from the database)")
    serve.add_argument("--alert-retry-base", type=float, default=2.0, metavar="SECONDS",
                       help="first retry of a failed notification after this long, doubling each time (default 2)")
    serve.add_argument("--body-timeout", type=float, default=30.0, metavar="SECONDS",
                       help="answer 408 to a request whose body has not arrived this long after its head "
                            "(default: 30)")
    serve.add_argument("--deny-private-targets", action="store_true",
                       help="refuse monitors of private, loopback and link-local addresses (for shared installs)")
    serve.add_argument("--public-url", metavar="URL",
                       help="the dashboard's address as users reach it (e.g. https://status.example.com); "
                            "links in notifications start with it (default: the address served on)")
    serve.add_argument("--flap-changes", type=int, default=5, metavar="N",
                       help="a monitor changing between up and down more than N times in --flap-window is "
                            "flapping: one message instead of a stream (default 5)")
    serve.add_argument("--flap-window", type=int, default=600, metavar="SECONDS",
                       help="the flapping window; a flapping monitor settles after this long without a change "
                            "(default 600)")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING or ERROR")
    serve.add_argument("--log-format", choices=("text", "json"), default="text",
                       help="text: one readable line per event (default); json: one JSON object per line")

    monitors = sub.add_parser("monitors", parents=[common], help="add, list, pause or remove monitors")
    msub = monitors.add_subparsers(dest="action", required=True)
    add = msub.add_parser("add", parents=[common], help="add a monitor")
    add.add_argument("name", nargs="?", help="the monitor's name (or give it in --json)")
    add.add_argument("--json", help="the whole monitor as JSON (API field names)")
    add.add_argument("--type", choices=["http", "tcp", "tls", "dns", "ping", "push", "agent"],
                     help="other fields of a kind (minDaysValid, recordType, ...) go in --json")
    add.add_argument("--url", help="http: the URL to check")
    add.add_argument("--host", help="tcp, tls, dns, ping: the host name or address")
    add.add_argument("--port", type=int, help="tcp, tls: the port")
    add.add_argument("--method", help="http: the method (default GET)")
    add.add_argument("--interval", type=int, help="seconds between checks (1..86400, default 60)")
    add.add_argument("--timeout", type=float, help="seconds a check may take (default: the kind's)")
    add.add_argument("--retries", type=int, help="failed checks in a row, beyond the first, before down")
    add.add_argument("--recovery-threshold", type=int, help="good checks in a row before a down monitor is up")
    add.add_argument("--keyword", help="http: down unless the body contains this text")
    add.add_argument("--expected-status", action="append", help="e.g. 200-299 (repeatable)")
    add.add_argument("--keep-alive", action="store_true", help="reuse one connection across checks")
    add.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    add.add_argument("--tag", action="append", help="a tag (repeatable)")
    lst = msub.add_parser("list", parents=[common], help="list monitors")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for action in ("remove", "pause", "resume"):
        p = msub.add_parser(action, parents=[common], help=f"{action} a monitor")
        p.add_argument("id", type=int, help="the monitor's id (see `xuptime monitors list`)")
    show = msub.add_parser("show", parents=[common], help="a monitor's settings, status and recent checks")
    show.add_argument("id", type=int, help="the monitor's id")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    edit = msub.add_parser("edit", parents=[common], help="change some of a monitor's fields")
    edit.add_argument("id", type=int, help="the monitor's id")
    edit.add_argument("--json", dest="changes", required=True, metavar="JSON",
                      help='the fields to change, with API names, e.g. \'{"interval": 30, "tags": ["prod"]}\'')
    hist = msub.add_parser("history", parents=[common], help="a monitor's latest checks, newest first")
    hist.add_argument("id", type=int, help="the monitor's id")
    hist.add_argument("--limit", type=int, default=20, help="how many checks (default 20, at most 10000)")
    hist.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sql = sub.add_parser("sql", parents=[common], help="run a read-only SQL query")
    sql.add_argument("query", help="one SELECT (read-only; no files, no extensions)")
    sql.add_argument("--json", action="store_true", help="print JSON instead of a table (--format json)")
    sql.add_argument("--format", choices=["table", "csv", "json", "parquet"], default=None,
                     help="table (the default; at most 10,000 rows, numbers rounded), or every row as csv, json "
                          "or parquet (default with --out: from its suffix)")
    sql.add_argument("--out", help="write to this file (whole or not at all) instead of standard output")

    export = sub.add_parser("export", parents=[common],
                            help="write checks (or buckets) to a Parquet or CSV file, a batch at a time")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--monitor", type=int, help="one monitor's id (oldest first)")
    which.add_argument("--all", action="store_true", help="every monitor of the account (with a monitorId column)")
    export.add_argument("--account", default="default", help="with --all: the account (default: default)")
    export.add_argument("--from", dest="start", help="ISO 8601, Unix seconds or ms, or back from now (24h, 7d)")
    export.add_argument("--to", dest="end", help="as --from (default: now)")
    export.add_argument("--interval", default="raw", choices=["raw", "1m", "5m", "1h", "1d"],
                        help="raw checks (default), or buckets of one monitor")
    export.add_argument("--format", choices=["parquet", "csv"], default=None,
                        help="default: from --out's suffix, else parquet")
    export.add_argument("--out", required=True, help="the file to write (whole or not at all); - for standard "
                                                     "output (csv)")

    accounts = sub.add_parser("accounts", parents=[common], help="create or list accounts")
    asub = accounts.add_subparsers(dest="action", required=True)
    acreate = asub.add_parser("create", parents=[common], help="create an account")
    acreate.add_argument("name", help="the account's name")
    acreate.add_argument("--monthly-limit", type=int, help="API requests per calendar month (default 100000)")
    alist = asub.add_parser("list", parents=[common], help="list accounts")
    alist.add_argument("--json", action="store_true", help="print JSON instead of a table")

    keys = sub.add_parser("keys", parents=[common], help="create, list or revoke API keys")
    ksub = keys.add_subparsers(dest="action", required=True)
    kcreate = ksub.add_parser("create", parents=[common],
                              help="create an API key; the secret is the last line of output, shown once")
    klist = ksub.add_parser("list", parents=[common], help="list an account's keys (prefixes, never secrets)")
    klist.add_argument("--json", action="store_true", help="print JSON instead of a table")
    krevoke = ksub.add_parser("revoke", parents=[common], help="revoke a key")
    krevoke.add_argument("id", type=int, help="the key's id (see `xuptime keys list`)")
    for p in (kcreate, klist, krevoke):
        p.add_argument("--account", default="default", help="account name (default: default)")
    kcreate.add_argument("--name", default="default", help="a label for the key")
    kcreate.add_argument("--read-only", action="store_true",
                         help="a key that can only read (GET and HEAD), outside the monthly quota: for dashboards "
                              "such as Grafana's")

    retention = sub.add_parser("retention", parents=[common],
                               help="show or change how long history is kept (raw checks, hourly and daily rollups)")
    retention.add_argument("--set", metavar="TIER=DURATION,...",
                           help="change tiers, e.g. raw=30d or hourly=1y,daily=forever (the others stay); rows "
                                "past the new retention go within a minute")
    retention.add_argument("--json", action="store_true", help="print JSON")

    users = sub.add_parser("users", parents=[common], help="create, list or remove dashboard users")
    usub = users.add_subparsers(dest="action", required=True)
    ucreate = usub.add_parser("create", parents=[common], help="create a user (prompts for the password)")
    ucreate.add_argument("email", help="the e-mail address the user signs in with")
    ucreate.add_argument("--role", choices=["admin", "editor", "viewer"], default="viewer",
                         help="admin: everything; editor: monitors and the like; viewer: read only (default)")
    ucreate.add_argument("--account", default="default", help="account name (default: default)")
    ulist = usub.add_parser("list", parents=[common], help="list every account's users")
    ulist.add_argument("--json", action="store_true", help="print JSON instead of a table")
    uremove = usub.add_parser("remove", parents=[common], help="remove a user (their sessions end)")
    uremove.add_argument("email", help="the user's e-mail address")
    upass = usub.add_parser("set-password", parents=[common],
                            help="set a user's password (prompts; their sessions end)")
    upass.add_argument("email", help="the user's e-mail address")
    for p in (ucreate, upass):
        p.add_argument("--password", help="the password (prompted for, unechoed, when not given; "
                                          "visible to other local users in the process list when given)")

    status = sub.add_parser("status", parents=[common], help="how the running server is doing")
    status.add_argument("--json", action="store_true", help="every counter, as JSON")

    agent = sub.add_parser("agent", help="report this host's health to a server (an agent monitor's token)",
                           description="The server agent (also served as one file at /agent/xuptime-agent.py).")
    core.agent.add_arguments(agent)
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.storage.duckdb import NewerSchemaError

    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command == "agent":
        core.agent.check_arguments(parser, ns)
        return core.agent.run(ns)
    data_dir = Path(ns.data_dir)
    # Everything this process writes in the data dir (the database, its WAL, the socket) is
    # its owner's alone: other local users never see a window of a readable file.
    os.umask(0o077)
    try:
        return _main(ns, data_dir)
    except NewerSchemaError as exc:
        print(f"xuptime: {exc}; run a newer xuptime on {data_dir}", file=sys.stderr)
        return 2


def _main(ns: argparse.Namespace, data_dir: Path) -> int:
    try:
        if ns.command == "serve":
            return _serve(ns, data_dir)
        if ns.command == "monitors":
            return _monitors(ns, data_dir)
        if ns.command == "accounts":
            return _accounts(ns, data_dir)
        if ns.command == "keys":
            return _keys(ns, data_dir)
        if ns.command == "users":
            return _users(ns, data_dir)
        if ns.command == "retention":
            return _retention(ns, data_dir)
        if ns.command == "sql":
            return _sql(ns, data_dir)
        if ns.command == "export":
            return _export(ns, data_dir)
        if ns.command == "status":
            try:
                stats = control_request(data_dir, "stats")
            except ServerNotRunning:
                raise CommandError(f"no server is running on {data_dir}") from None
            if ns.json:
                print(json.dumps(stats))
            else:
                _print_status(stats)
            return 0
    except CommandError as exc:
        print(f"xuptime: {exc}", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error['field']}: {error['message']}", file=sys.stderr)
        return 2
    return 1


def _monitors(ns: argparse.Namespace, data_dir: Path) -> int:
    if ns.action == "add":
        row = _run(data_dir, "monitors.add", {"monitor": _monitor_from_args(ns)})
        print(f"added monitor {row['id']}: {row['name']} ({row['type']} {_target(row)})")
        return 0
    if ns.action == "list":
        rows = _run(data_dir, "monitors.list", {})
        if ns.json:
            print(json.dumps(rows))
        else:
            _print_table(["id", "name", "type", "target", "interval", "status"],
                         [[m["id"], m["name"], m["type"], _target(m), m["interval"], m["status"]] for m in rows])
        return 0
    if ns.action == "show":
        m = _run(data_dir, "monitors.show", {"id": ns.id})
        if ns.json:
            print(json.dumps(m))
            return 0
        uptime = "-" if m["uptime24h"] is None else f"{m['uptime24h'] * 100:.2f}%"
        bar = "".join("+" if c["ok"] else "x" for c in m["recent"]) or "-"
        print(f"{m['name']} (monitor {m['id']}, {m['type']} {_target(m)})")
        print(f"  status:   {m['status']}{' since ' + m['statusSince'] if m.get('statusSince') else ''}")
        print(f"  every:    {m['interval']} s, retries {m['retries']}, tags {', '.join(m['tags']) or '-'}")
        print(f"  24 h:     {uptime} up; recent checks (oldest first, + ok, x failed): {bar}")
        last = m["lastLatencyMs"]
        print(f"  last:     {_when(m['lastCheckUs'])}{'' if last is None else f', {last:.1f} ms'}")
        return 0
    if ns.action == "edit":
        try:
            changes = json.loads(ns.changes)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--json is not valid JSON: {exc}") from None
        m = _run(data_dir, "monitors.edit", {"id": ns.id, "changes": changes})
        print(f"monitor {m['id']} saved: {m['name']} ({m['type']} {_target(m)}), every {m['interval']} s")
        return 0
    if ns.action == "history":
        rows = _run(data_dir, "monitors.history", {"id": ns.id, "limit": ns.limit})
        if ns.json:
            print(json.dumps(rows))
        else:
            _print_table(["when", "ok", "latency ms", "status", "error"],
                         [[_when(r["tsUs"]), "ok" if r["ok"] else "FAIL",
                           "" if r["latencyMs"] is None else f"{r['latencyMs']:.1f}", r["statusCode"] or "",
                           r["error"] or ""] for r in rows])
        return 0
    result = _run(data_dir, f"monitors.{ns.action}", {"id": ns.id})
    if ns.action == "remove":
        print(f"removed monitor {ns.id}")
    else:
        print(f"monitor {ns.id} is {result['status']}")
    return 0


def _accounts(ns: argparse.Namespace, data_dir: Path) -> int:
    if ns.action == "create":
        account = _run(data_dir, "accounts.create", {"name": ns.name, "monthlyLimit": ns.monthly_limit})
        print(f"created account {account['id']}: {account['name']} "
              f"(monthly API limit {account['monthlyRequestLimit']:,} requests)")
        return 0
    rows = _run(data_dir, "accounts.list", {})
    if ns.json:
        print(json.dumps(rows))
    else:
        _print_table(["id", "name", "monthly limit", "created"],
                     [[a["id"], a["name"], a["monthlyRequestLimit"], a["createdAt"]] for a in rows])
    return 0


def _retention(ns: argparse.Namespace, data_dir: Path) -> int:
    tiers = _run(data_dir, "retention.set", {"set": ns.set}) if ns.set else _run(data_dir, "retention.show", {})
    if ns.json:
        print(json.dumps(tiers))
    else:
        _print_table(["tier", "kept"], [[tier, kept] for tier, kept in tiers.items()])
    return 0


def _keys(ns: argparse.Namespace, data_dir: Path) -> int:
    if ns.action == "create":
        key = _run(data_dir, "keys.create", {"account": ns.account, "name": ns.name,
                                             "scope": "read" if ns.read_only else "full"})
        kind = "Read-only API key" if key.get("scope") == "read" else "API key"
        print(f"{kind} {key['id']} ({key['name']}) for account {ns.account}, prefix {key['prefix']}.")
        print("Store it now: it is shown only this once. Send it as 'Authorization: Bearer <key>'.")
        print(key["secret"])
        return 0
    if ns.action == "revoke":
        _run(data_dir, "keys.revoke", {"account": ns.account, "id": ns.id})
        print(f"revoked key {ns.id}")
        return 0
    rows = _run(data_dir, "keys.list", {"account": ns.account})
    if ns.json:
        print(json.dumps(rows))
    else:
        _print_table(["id", "name", "prefix", "scope", "created", "last used", "revoked"],
                     [[k["id"], k["name"], k["prefix"], k["scope"], k["createdAt"], k["lastUsedAt"], k["revokedAt"]]
                      for k in rows])
    return 0


def _format_of(out: str | None, given: str | None, default: str) -> str:
    if given is not None:
        return given
    suffix = Path(out).suffix.lower().lstrip(".") if out and out != "-" else ""
    return {"csv": "csv", "parquet": "parquet", "pq": "parquet", "json": "json"}.get(suffix, default)


def _sql(ns: argparse.Namespace, data_dir: Path) -> int:
    from core.export import ExportError, run_export

    fmt = "json" if ns.json else _format_of(ns.out, ns.format, "table")
    if fmt == "table" or (fmt == "json" and ns.out is None):
        result = _run(data_dir, "sql", {"sql": ns.query})
        if fmt == "json":
            print(json.dumps(result, default=str))
        elif ns.out is None:
            _print_table(result["columns"], result["rows"])
        else:
            with open(ns.out, "w") as file:
                _print_table(result["columns"], result["rows"], file)
        return 0
    if fmt == "parquet" and ns.out in (None, "-"):
        raise CommandError("--format parquet needs --out FILE")
    try:
        rows = run_export(data_dir, "sql.stream", {"sql": ns.query}, ns.out or "-", fmt, "query")
    except ExportError as exc:
        raise CommandError(str(exc), exc.errors) from None
    if ns.out not in (None, "-"):
        print(f"{rows:,} rows written to {ns.out}", file=sys.stderr)
    return 0


def _export(ns: argparse.Namespace, data_dir: Path) -> int:
    from core.export import ExportError, parse_time, run_export

    fmt = _format_of(ns.out, ns.format, "parquet")
    if fmt not in ("csv", "parquet"):
        raise CommandError("--format must be parquet or csv")
    if fmt == "parquet" and ns.out == "-":
        raise CommandError("Parquet goes to a file: give --out FILE")
    try:
        args = {"interval": ns.interval, "from": parse_time("from", ns.start), "to": parse_time("to", ns.end)}
        if ns.monitor is not None:
            args["id"] = ns.monitor
        else:
            args["account"] = ns.account
        rows = run_export(data_dir, "export", args, ns.out, fmt, "export")
    except ExportError as exc:
        raise CommandError(str(exc), exc.errors) from None
    if ns.out != "-":
        print(f"{rows:,} rows written to {ns.out}", file=sys.stderr)
    return 0


def _print_status(s: dict[str, Any]) -> None:
    """``xuptime status`` for people (``--json`` has every counter)."""
    workers = s.get("workers", [])
    ready = sum(1 for w in workers if w.get("ready"))
    monitors = sum(w.get("monitors", 0) for w in workers)
    restarts = sum(w.get("restarts", 0) for w in workers)
    print(f"server:    running; {ready}/{len(workers)} engine workers ready"
          f"{f', {restarts} restart(s)' if restarts else ''}; {s.get('rssBytes', 0) / 2**20:.0f} MiB (main process)")
    print(f"monitors:  {monitors} scheduled; {s.get('inflight', 0)} checks in flight, {s.get('queued', 0)} queued")
    print(f"checks:    {s.get('checks', 0)} done; lateness p50 {s.get('latenessP50Ms')} ms, "
          f"p99 {s.get('latenessP99Ms')} ms; {s.get('skippedOverlap', 0)} skipped (still running), "
          f"{s.get('dropped', 0)} dropped")
    print(f"storage:   {s.get('rowsWritten', 0)} results written, {s.get('rowsSpilled', 0)} waiting in memory, "
          f"{s.get('rowsDropped', 0)} lost")
    live = s.get("live", {})
    print(f"dashboard: {live.get('streams', 0)} live page(s) open")


def _password(ns: argparse.Namespace) -> str:
    if ns.password is not None:
        return ns.password
    import getpass

    if not sys.stdin.isatty():  # (a pipe: one line, for scripts)
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CommandError("the passwords differ")
    return first


def _users(ns: argparse.Namespace, data_dir: Path) -> int:
    if ns.action == "create":
        user = _run(data_dir, "users.create", {"email": ns.email, "password": _password(ns), "role": ns.role,
                                               "account": ns.account})
        print(f"user {user['id']} {user['email']} ({user['role']}) in account {ns.account}")
        return 0
    if ns.action == "remove":
        _run(data_dir, "users.remove", {"email": ns.email})
        print(f"removed {ns.email}")
        return 0
    if ns.action == "set-password":
        _run(data_dir, "users.set-password", {"email": ns.email, "password": _password(ns)})
        print(f"password of {ns.email} changed; their sessions have ended")
        return 0
    rows = _run(data_dir, "users.list", {})
    if ns.json:
        print(json.dumps(rows))
    else:
        _print_table(["id", "email", "role", "account", "created"],
                     [[u["id"], u["email"], u["role"], u["accountId"], u["createdAt"]] for u in rows])
    return 0


def _serve(ns: argparse.Namespace, data_dir: Path) -> int:
    import uvloop

    import web
    from api.app import create_app
    from core.logs import configure
    from core.main.process import ServeProcess
    from core.services import Services

    configure(ns.log_level, ns.log_format)
    try:
        control_request(data_dir, "ping", timeout=2)
    except ServerNotRunning:
        pass
    except Exception:
        pass
    else:
        print(f"xuptime: a server is already running on {data_dir}", file=sys.stderr)
        return 2
    def make_app(services: Services) -> Any:  # the faces over the services: the API and the pages
        return create_app(services, body_timeout=ns.body_timeout, pages=web.routes(services),
                          page_errors=web.error_page)

    server = ServeProcess(data_dir, make_app, host=ns.host, port=ns.port, workers=ns.workers,
                          demo_monitors=ns.demo, max_inflight=ns.max_inflight, http_server=ns.http_server,
                          alert_retry_base=ns.alert_retry_base, deny_private=ns.deny_private_targets,
                          public_url=ns.public_url, flap_changes=ns.flap_changes, flap_window_s=ns.flap_window,
                          keep_alive_s=ns.keep_alive, retention=ns.retention,
                          history_memory=max(0, ns.history_memory) << 20)
    if not 1 <= ns.keep_alive <= 3600:
        raise CommandError("--keep-alive must be 1 to 3600 seconds")
    if ns.retention is not None:
        from core.models.retention import RetentionError, parse_retention

        try:
            parse_retention(ns.retention)  # (checked again over the kept setting once the store is open)
        except RetentionError as exc:
            raise CommandError(f"--retention: {exc}") from None
    if data_dir.exists() and not data_dir.is_dir():
        raise CommandError(f"{data_dir} is not a directory; give --data-dir a directory (it is made if missing)")
    import duckdb

    try:
        uvloop.run(server.run())
    except duckdb.IOException as exc:
        raise CommandError(f"cannot open the database in {data_dir}: another process holds it "
                           f"(a running server or another xuptime command?): {exc}") from None
    except PermissionError as exc:
        raise CommandError(f"cannot use {data_dir}: {exc.strerror} ({exc.filename})") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
