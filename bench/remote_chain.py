"""What a remote graph hop adds, REST and gRPC: the 3-node chain in-process (gw-chain3) against
the same chain with every node its own `seldon microservice` (gw-remote3, bench/gateway_remote.py),
at one request in flight (bench/seq_latency.py), repeated, optionally for several source trees.

    .venv/bin/python bench/remote_chain.py [--tree before=/old/src] [--tree after=src] [--repeat 3]
        [--duration 10] [--json bench/out/remote_chain.json]

Per hop, as in the gateway section of RESULTS.md: (p50 remote3 - p50 chain3) / 3, and the same
for p90 and p99.  Each `--tree LABEL=DIR` is put first on PYTHONPATH for the gateway and its
components (default: this checkout).  Every start is fresh; the trees and transports are
interleaved within a repeat so a disturbance of the machine hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lib.config import BENCH, MODELS, OUR_VENV, OUT  # bench/lib: on sys.path
from lib.httpclient import http_request
from lib.processes import (
    ProcessGroup,
    children_cpu_seconds,
    free_ports,
    group_cpu_seconds,
    machine_busy_seconds,
)

BODY = b'{"data":{"ndarray":[[1.0,2.0,3.0,4.0]]}}'
PATH = "/seldon/bench/api/v1.0/predictions"


def launch(kind: str, tree: Path | None, http: int, grpc: int, work: Path) -> ProcessGroup:
    env = {"PYTHONPATH": str(tree)} if tree is not None else {}
    if kind == "chain3":
        argv = [str(OUR_VENV / "bin" / "seldon"), "serve", str(MODELS / "gateway_chain3.yaml"),
                "--http-port", str(http), "--grpc-port", str(grpc), "--workers", "1",
                "--state-dir", str(work / "state"), "--host", "127.0.0.1", "--admin-port", "0",
                "--execution", "inline"]  # fmt: skip
    else:
        transport = "GRPC" if kind == "remote3-grpc" else "REST"
        argv = [str(OUR_VENV / "bin" / "python"), str(BENCH / "gateway_remote.py"),
                "--http-port", str(http), "--grpc-port", str(grpc), "--work-dir", str(work),
                "--transport", transport]  # fmt: skip
    return ProcessGroup(argv, work / "log.txt", cwd=MODELS, env=env)


def seq(port: int, duration: float) -> dict[str, Any]:
    body_file = OUT / "remote_chain_body.json"
    body_file.write_bytes(BODY)
    command = [str(OUR_VENV / "bin" / "python"), str(BENCH / "seq_latency.py"),
               "--url", f"http://127.0.0.1:{port}{PATH}", "--body-file", str(body_file),
               "--duration", str(duration), "--min-requests", "2000"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    if done.returncode != 0:
        return {"failed": done.stderr.strip()[-300:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def one(kind: str, label: str, tree: Path | None, duration: float) -> dict[str, Any]:
    http, grpc = free_ports(2)
    work = OUT / "remote_chain" / f"{label}-{kind}-{http}"
    work.mkdir(parents=True, exist_ok=True)
    group = launch(kind, tree, http, grpc, work)
    group.start()
    try:

        def ready() -> str | None:
            try:
                status, raw = http_request(f"http://127.0.0.1:{http}{PATH}", BODY)
            except OSError as exc:
                return str(exc)
            return None if status == 200 and b"ndarray" in raw else f"HTTP {status}: {raw[:200]!r}"

        group.wait_ready(ready, 60.0, 0.05)
        seq(http, 2.0)  # warm-up
        # "other CPU %": the machine's busy time not spent by the servers or the client, as a share
        # of both cores: what tells a run disturbed by other work from a slow one.
        busy0, server0, client0 = (
            machine_busy_seconds(),
            group_cpu_seconds(group.pgid),
            children_cpu_seconds(),
        )
        started = time.monotonic()
        result = seq(http, duration)
        wall = time.monotonic() - started
        server = group_cpu_seconds(group.pgid) - server0
        client = children_cpu_seconds() - client0
        other = machine_busy_seconds() - busy0 - server - client
        result["other_cpu_pct"] = round(max(0.0, other) / (wall * (os.cpu_count() or 1)) * 100, 1)
        if result.get("requests"):
            result["server_cpu_us_per_req"] = round(server / result["requests"] * 1e6, 1)
        return result
    finally:
        group.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", default=[], help="LABEL=DIR: a seldon_serving src tree")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=OUT / "remote_chain.json")
    args = parser.parse_args()
    trees: list[tuple[str, Path | None]] = [
        (item.partition("=")[0], Path(item.partition("=")[2]).resolve()) for item in args.tree
    ] or [("ours", None)]

    kinds = ("chain3", "remote3-rest", "remote3-grpc")
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeat):
        for label, tree in trees:
            cells = {kind: one(kind, label, tree, args.duration) for kind in kinds}
            row: dict[str, Any] = {"repeat": repeat, "tree": label, **cells}
            base = cells["chain3"]
            for kind in kinds[1:]:
                cell = cells[kind]
                if "failed" in cell or "failed" in base:
                    continue
                for q in ("p50", "p90", "p99"):
                    row[f"{kind} per hop {q} us"] = round((cell[f"{q}_ms"] - base[f"{q}_ms"]) / 3 * 1e3, 1)
            runs.append(row)
            print(json.dumps(row), flush=True)
            time.sleep(1.0)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(runs, indent=2) + "\n")

    print("| tree | transport | per hop p50 us median (min-max) | per hop p99 us median (min-max) |")
    print("|---|---|---|---|")
    for label, _ in trees:
        for kind in kinds[1:]:
            cells = [r for r in runs if r["tree"] == label and f"{kind} per hop p50 us" in r]
            if not cells:
                continue
            parts = []
            for q in ("p50", "p99"):
                values = [r[f"{kind} per hop {q} us"] for r in cells]
                parts.append(f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})")
            print(f"| {label} | {kind} | {parts[0]} | {parts[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
