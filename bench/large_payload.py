"""Large payloads: 10,000-row requests to one `seldon microservice` worker, REST (ndarray and
tensor JSON) and gRPC (tensor), with wrk and h2load.

    .venv/bin/python bench/large_payload.py [--tree before=/path/to/old/src] [--tree after=src]
        [--repeat 3] [--duration 10] [--seldon] [--json bench/out/large_payload.json]

Each `--tree LABEL=DIR` is a source tree of seldon_serving (its `src` directory) put first on the
server's PYTHONPATH, so the same run measures the code before and after a change (default: this
checkout's own `src`).  `--seldon` adds seldon-core 1.18.2's wrapper (.venv-compat) as a peer.

The model is bench/models/LargeModel.py (a linear layer, 3 -> 3, ~0.1 ms for 10,000 rows): the
cost measured is the protocol's.  The request: 10,000 x 3 float64 rows of 4 decimals, uniform in
[-10, 10] (seeded), ~240 KB as ndarray JSON; the answer ~440 KB.  Per cell: a fresh server, the
answer checked against numpy's (and, across trees, byte for byte against the first tree's), a
2 s warm-up, then `wrk -t1 -c4 -d<duration>` (REST) or `h2load -c4 -m1` (gRPC); the server's
CPU time per answered request comes from its process group's /proc counters.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from lib.config import MODELS, OUR_VENV, OUT, REPO, SELDON_VENV  # bench/lib: on sys.path
from lib.httpclient import get_problem, http_request
from lib.loadgen import parse_h2load, parse_wrk, secs
from lib.processes import ProcessGroup, free_ports, group_cpu_seconds

ROWS, COLS = 10_000, 3
CONNECTIONS = 4  # one worker: 4 in flight keep it busy without queueing much
REST_PATH = "/api/v1.0/predictions"
GRPC_METHOD = "/seldon.protos.Model/Predict"


def request_rows() -> np.ndarray:
    return np.round(np.random.default_rng(14).uniform(-10.0, 10.0, (ROWS, COLS)), 4)


def bodies() -> dict[str, bytes]:
    rows = request_rows()
    ndarray = json.dumps({"data": {"ndarray": rows.tolist()}}, separators=(",", ":")).encode()
    tensor = json.dumps(
        {"data": {"tensor": {"shape": [ROWS, COLS], "values": rows.ravel().tolist()}}}, separators=(",", ":")
    ).encode()
    return {"ndarray": ndarray, "tensor": tensor}


def grpc_request() -> bytes:
    from seldon_serving.protocol._pb import prediction_pb2 as pb

    rows = request_rows()
    message = pb.SeldonMessage()
    message.data.tensor.shape.extend([ROWS, COLS])
    message.data.tensor.values.extend(rows.ravel().tolist())
    return message.SerializeToString()


def expected() -> np.ndarray:
    sys.path.insert(0, str(MODELS))
    try:
        from LargeModel import LargeModel

        return np.asarray(LargeModel().predict(request_rows()))
    finally:
        sys.path.remove(str(MODELS))


def check_answer(form: str, raw: bytes) -> str | None:
    try:
        data = json.loads(raw)["data"]
        got = np.asarray(data["ndarray"]) if form == "ndarray" else np.asarray(data["tensor"]["values"])
    except (ValueError, KeyError, TypeError):
        return f"unexpected answer: {raw[:200]!r}"
    want = expected()
    if got.size != want.size or not np.allclose(got.reshape(want.shape), want, rtol=0, atol=1e-12):
        return "wrong numbers"
    return None


def launch(label: str, tree: Path | None, seldon: bool, http: int, grpc: int, metrics: int) -> ProcessGroup:
    env: dict[str, str] = {}
    if seldon:
        argv = [str(SELDON_VENV / "bin" / "seldon-core-microservice"), "LargeModel",
                "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
                "--workers", "1", "--grpc-workers", "1"]  # fmt: skip
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    else:
        argv = [str(OUR_VENV / "bin" / "seldon"), "microservice", "LargeModel",
                "--http-port", str(http), "--grpc-port", str(grpc),
                "--workers", "1", "--host", "127.0.0.1"]  # fmt: skip
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
    return ProcessGroup(argv, OUT / "large_payload" / f"{label}.log", cwd=MODELS, env=env)


def wrk(port: int, body: bytes, duration: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(dir=OUT, suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        env = {**os.environ, "BENCH_BODY_FILE": body_file.name, "BENCH_CONTENT_TYPE": "application/json"}
        command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{secs(duration)}", "--latency",
                   "-s", str(REPO / "bench" / "post.lua"), f"http://127.0.0.1:{port}{REST_PATH}"]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        return {"failed": f"wrk exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    return parse_wrk(done.stdout)


def h2load(port: int, request: bytes, duration: float) -> dict[str, Any]:
    with (
        tempfile.NamedTemporaryFile(dir=OUT, suffix=".bin") as body_file,
        tempfile.NamedTemporaryFile(dir=OUT, suffix=".log") as log,
    ):
        body_file.write(b"\x00" + len(request).to_bytes(4, "big") + request)
        body_file.flush()
        command = ["h2load", "-t1", f"-c{CONNECTIONS}", "-m1", "-D", secs(duration), "-d", body_file.name,
                   "-H", "content-type: application/grpc", "-H", "te: trailers", "--log-file", log.name,
                   f"http://127.0.0.1:{port}{GRPC_METHOD}"]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
        if done.returncode != 0:
            return {"failed": f"h2load exit {done.returncode}: {done.stderr.strip()[-300:]}"}
        return parse_h2load(done.stdout, log.name)


def measure(
    group: ProcessGroup, run: Any, duration: float, warmup: float
) -> dict[str, Any]:  # run: duration -> result
    run(warmup)
    cpu0 = group_cpu_seconds(group.pgid)
    result: dict[str, Any] = run(duration)
    cpu = group_cpu_seconds(group.pgid) - cpu0
    if result.get("requests"):
        result["server_cpu_us_per_req"] = round(cpu / result["requests"] * 1e6, 1)
    return result


def one_server(
    label: str, tree: Path | None, seldon: bool, args: argparse.Namespace, first_answers: dict[str, bytes]
) -> dict[str, Any]:
    http, grpc, metrics = free_ports(3)
    group = launch(label, tree, seldon, http, grpc, metrics)
    out: dict[str, Any] = {}
    group.start()
    try:
        group.wait_ready(lambda: get_problem(f"http://127.0.0.1:{http}/health/ping"), 60.0, 0.05)
        for form, body in bodies().items():
            status, raw = http_request(f"http://127.0.0.1:{http}{REST_PATH}", body, timeout=30)
            problem = f"HTTP {status}" if status != 200 else check_answer(form, raw)
            if problem is None and form in first_answers and raw != first_answers[form]:
                problem = "answer differs byte for byte from the first tree's"
            first_answers.setdefault(form, raw)
            if problem is not None:
                out[f"rest-{form}"] = {"failed": problem}
                continue
            out[f"rest-{form}"] = measure(group, lambda d, b=body: wrk(http, b, d), args.duration, 2.0)
        if args.grpc:
            request = grpc_request()
            out["grpc-tensor"] = measure(group, lambda d: h2load(grpc, request, d), args.duration, 2.0)
    finally:
        group.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", default=[], help="LABEL=DIR: a seldon_serving src tree")
    parser.add_argument("--seldon", action="store_true", help="also seldon-core's wrapper (.venv-compat)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--no-grpc", dest="grpc", action="store_false")
    parser.add_argument("--json", type=Path, default=OUT / "large_payload.json")
    args = parser.parse_args()
    trees: list[tuple[str, Path | None]] = []
    for item in args.tree:
        label, _, directory = item.partition("=")
        trees.append((label, Path(directory).resolve()))
    if not trees:
        trees.append(("ours", None))
    servers: list[tuple[str, Path | None, bool]] = [(label, tree, False) for label, tree in trees]
    if args.seldon:
        servers.append(("seldon-core", None, True))

    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in servers}
    for repeat in range(args.repeat):
        first_answers: dict[str, bytes] = {}
        for label, tree, seldon in servers:  # interleaved: a disturbance hits every server alike
            answers = first_answers if not seldon else {}
            result = one_server(label, tree, seldon, args, answers)
            runs[label].append(result)
            print(json.dumps({"repeat": repeat, "server": label, **result}), flush=True)
            time.sleep(1.0)

    summary = summarise(runs)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2) + "\n")
    for line in table(summary):
        print(line)
    return 0


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per server and cell: median, min and max of req/s, p50, p99 and CPU us/req over the repeats."""
    summary: dict[str, dict[str, Any]] = {}
    for label, results in runs.items():
        for cell in sorted({key for result in results for key in result}):
            cells = [r[cell] for r in results if cell in r and "failed" not in r[cell]]
            if not cells:
                summary.setdefault(label, {})[cell] = {"failed": results[0].get(cell, {}).get("failed")}
                continue
            entry = {}
            for field in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_req"):
                values = [c[field] for c in cells if c.get(field) is not None]
                if values:
                    entry[field] = [statistics.median(values), min(values), max(values)]
            entry["errors"] = sum(c.get("errors", 0) for c in cells)
            summary.setdefault(label, {})[cell] = entry
    return summary


def table(summary: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| server | cell | req/s median (min-max) | p50 ms | p99 ms | server CPU us/req | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, cells in summary.items():
        for cell, entry in cells.items():
            if "failed" in entry:
                lines.append(f"| {label} | {cell} | failed: {entry['failed']} | | | | |")
                continue

            def fmt(field: str, digits: int, entry: dict[str, Any] = entry) -> str:
                if field not in entry:
                    return "-"
                med, low, high = entry[field]
                return f"{med:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"

            lines.append(
                f"| {label} | {cell} | {fmt('rps', 1)} | {fmt('p50_ms', 2)} | {fmt('p99_ms', 2)} "
                f"| {fmt('server_cpu_us_per_req', 0)} | {entry['errors']} |"
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
