"""Where a saturated keep-alive run (or, with ``--https``, the HTTPS run with a full handshake
a check) spends its CPU: the worker and the main process sampled by py-spy (native frames
included) during ``bench.engine``'s setup of that run, on the same nginx.

It gives no throughput figure (sampling stops the processes for each sample: native frames
need it); it says where the time goes: for each process, of the samples of its busy threads,
the share whose innermost frame is each function (self time), and the share under a few
named stages (inclusive); beside it, ``bench.engine`` gives each process's share of a core.
Usage: ``python -m bench.profile [--monitors N] [--seconds S]``. Prints two tables, then one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.engine import WARMUP, Xuptime, ensure_tools, log, target

#: Inclusive stages: a sample counts for a stage when any frame of its stack names it.
STAGES = {
    "worker": {
        "compiled engine (on_ready)": "on_ready",
        "sendmsg (requests)": "sendmsg",
        "recv (responses, and the peek before reusing a connection)": ";recv",
        "wheel and due checks (run_due)": "run_due",
        "state machine for notable results": "_fast_done",
        "result frames to the main process (flush)": "flush",
    },
    "main": {
        "ingest (results into DuckDB)": "ingest (core/storage",
        "DuckDB itself": "duckdb",
        "frames from the workers (_pump)": "_pump",
    },
}


def py_spy() -> str:
    """py-spy (a bench tool, not a dependency of the product): installed from PyPI when missing."""
    beside = Path(sys.executable).parent / "py-spy"
    if not beside.exists() and shutil.which("py-spy") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy>=0.3.14"], check=True)
    return str(beside) if beside.exists() else str(shutil.which("py-spy"))


def folded(pid: int, seconds: float, out: Path) -> Counter[str]:
    """py-spy's folded stacks of ``pid``'s busy threads over ``seconds`` (native frames)."""
    spy = py_spy()
    subprocess.run([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250",
                    "--native", "--format", "raw", "--output", str(out)],
                   check=True, capture_output=True)
    stacks: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def summary(stacks: Counter[str], stages: dict[str, str], top: int = 15) -> dict[str, Any]:
    total = sum(stacks.values()) or 1
    leaves: Counter[str] = Counter()
    for stack, count in stacks.items():
        leaf = stack.rsplit(";", 1)[-1]
        leaves[leaf.split(" (")[0]] += count
    inclusive = {name: sum(c for s, c in stacks.items() if needle in s) / total for name, needle in stages.items()}
    # Waiting in the loop's own epoll (not the engine's, under on_ready): idle.
    inclusive["waiting for events (idle)"] = sum(
        c for s, c in stacks.items()
        if s.rsplit(";", 1)[-1].startswith(("epoll_wait", "epoll_pwait")) and "on_ready" not in s) / total
    return {"samples": total, "self": [(name, count / total) for name, count in leaves.most_common(top)],
            "stages": inclusive}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=None, help="default: 200k (plain), 5k (https)")
    parser.add_argument("--https", action="store_true",
                        help="bench.engine's HTTPS run instead: a full handshake a check (verified)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    ensure_tools()
    py_spy()
    monitors = args.monitors or (5_000 if args.https else 200_000)
    out: dict[str, Any] = {"bench": "profile", "https": args.https, "monitors": monitors, "seconds": args.seconds}
    with tempfile.TemporaryDirectory(prefix="xuptime-profile-") as tmp, target(Path(tmp)) as nginx:
        x = Xuptime(Path(tmp), "profiled")
        if args.https:
            x.load([nginx.https_url], monitors, 1, False, fields={"tlsResume": False})
            x.start(env={"SSL_CERT_FILE": str(nginx.dir / "ca.pem")})
        else:
            x.load([nginx.url()], monitors, 1, True)
            x.start()
        try:
            x.wait_loaded(monitors)
            time.sleep(WARMUP)
            assert x.proc is not None
            pids = {"main": x.proc.pid, "worker": x.stats()["workers"][0]["pid"]}
            log(f"sampling {pids} for {args.seconds:g} s")
            results: dict[str, Counter[str]] = {}

            def sample(name: str) -> None:
                results[name] = folded(pids[name], args.seconds, Path(tmp) / f"{name}.txt")

            threads = [threading.Thread(target=sample, args=(name,)) for name in pids]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            x.stop()
    for name in ("worker", "main"):
        s = summary(results[name], STAGES[name])
        out[name] = s
        print(f"\n{name} ({s['samples']:,} samples)")
        for stage, share in s["stages"].items():
            print(f"  {share:6.1%}  {stage}")
        print("  self time, innermost frames:")
        for leaf, share in s["self"]:
            print(f"  {share:6.1%}  {leaf}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
