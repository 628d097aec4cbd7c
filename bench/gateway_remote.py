"""Start the gateway benchmark's remote chain: 3 `seldon microservice` processes + the gateway.

    python bench/gateway_remote.py --http-port P --grpc-port Q --work-dir DIR [--transport REST]

1. starts BenchTransformer (TRANSFORMER), BenchTransformer (TRANSFORMER) and BenchModel (MODEL)
   as `seldon microservice ... --workers 1 --host 127.0.0.1` on free ports (cwd bench/models),
   in this process's process group (bench/run_bench.py stops the whole group);
2. waits until each answers GET /health/ping;
3. writes DIR/remote3.json: one SeldonDeployment `bench` whose graph t1 -> t2 -> model reaches
   each node through `endpoint: {type: REST, service_host: 127.0.0.1, service_port: N}`;
4. replaces itself (exec) with `seldon serve DIR/remote3.json --workers 1 --state-dir DIR/state`,
   so the group is the gateway and its three components, and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lib.config import MODELS, OUR_VENV  # bench/lib: this script's directory is on sys.path
from lib.httpclient import get_problem
from lib.processes import free_ports

SELDON = OUR_VENV / "bin" / "seldon"
CHAIN = [("t1", "BenchTransformer", "TRANSFORMER"), ("t2", "BenchTransformer", "TRANSFORMER"),
         ("model", "BenchModel", "MODEL")]  # fmt: skip


def wait_ready(procs: list[subprocess.Popen[bytes]], ports: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(zip(procs, ports, strict=True))
    while pending:
        proc, port = pending[0]
        if proc.poll() is not None:
            sys.exit(f"gateway_remote: microservice on port {port} exited with code {proc.returncode}")
        if get_problem(f"http://127.0.0.1:{port}/health/ping") is None:
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            sys.exit(f"gateway_remote: microservice on port {port} not ready within {timeout:.0f} s")
        time.sleep(0.01)


def manifest(endpoints: list[tuple[str, int]]) -> dict[str, object]:
    graph: dict[str, object] | None = None
    for (name, _cls, kind), (transport, port) in reversed(list(zip(CHAIN, endpoints, strict=True))):
        graph = {
            "name": name,
            "type": kind,
            "endpoint": {"type": transport, "service_host": "127.0.0.1", "service_port": port},
            "children": [graph] if graph else [],
        }
    return {
        "apiVersion": "machinelearning.seldon.io/v1alpha2",
        "kind": "SeldonDeployment",
        "metadata": {"name": "bench"},
        "spec": {"name": "bench", "predictors": [{"name": "main", "replicas": 1, "graph": graph}]},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--transport", choices=("REST", "GRPC"), default="REST")
    parser.add_argument("--workers", type=int, default=1, help="gateway workers (components: 1 each)")
    args = parser.parse_args()

    ports = free_ports(2 * len(CHAIN), {args.http_port, args.grpc_port})
    procs = []
    for index, (_name, cls, kind) in enumerate(CHAIN):
        http, grpc_port = ports[2 * index], ports[2 * index + 1]
        argv = [str(SELDON), "microservice", cls, "--service-type", kind,
                "--http-port", str(http), "--grpc-port", str(grpc_port),
                "--workers", "1", "--host", "127.0.0.1"]  # fmt: skip
        procs.append(subprocess.Popen(argv, cwd=MODELS, stdin=subprocess.DEVNULL))
    wait_ready(procs, ports[0::2])
    endpoints = [
        (args.transport, ports[2 * i + (1 if args.transport == "GRPC" else 0)]) for i in range(len(CHAIN))
    ]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    path = args.work_dir / "remote3.json"
    path.write_text(json.dumps(manifest(endpoints), indent=2) + "\n")
    argv = [str(SELDON), "serve", str(path),
            "--http-port", str(args.http_port), "--grpc-port", str(args.grpc_port),
            "--workers", str(args.workers), "--state-dir", str(args.work_dir / "state"),
            "--host", "127.0.0.1", "--admin-port", "0"]  # fmt: skip
    sys.stdout.flush()
    os.execv(argv[0], argv)  # the components stay children of the gateway, in the same group
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
