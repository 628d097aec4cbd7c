"""One remote graph hop, isolated: the gateway's runner for a REST or gRPC node calling one
`seldon microservice BenchTransformer` (1 worker), one call at a time, every call timed.

    .venv/bin/python bench/hop_latency.py [--calls 5000] [--repeat 3] [--transport REST GRPC]
        [--json bench/out/hop_latency.json]

The client is seldon_serving's own `engine.remote.RestRunner` / `GrpcRunner` (whichever tree is
first on PYTHONPATH: run it with `PYTHONPATH=/old/src` to measure an older client in the same
session), on uvloop as in the gateway.  Also timed: the microservice's own share, as the p50 of a
bare blocking client (http.client, or a grpc sync stub) to the same node, so that
`runner p50 - bare p50` is what the runner adds over a minimal client.  Garbage-collector pauses
during the calls are counted (gc.callbacks) to tell them from network stalls in the p99.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import uvloop
from lib.config import MODELS, OUR_VENV, OUT  # bench/lib: on sys.path
from lib.httpclient import get_problem
from lib.processes import free_ports

from seldon_serving.engine.remote import GrpcRunner, RestRunner
from seldon_serving.protocol import json_codec
from seldon_serving.protocol._pb import prediction_pb2 as pb

BODY = b'{"data":{"ndarray":[[1.0,2.0,3.0,4.0]]}}'


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_us": round(pick(0.50), 1),
        "p90_us": round(pick(0.90), 1),
        "p99_us": round(pick(0.99), 1),
        "max_us": round(ordered[-1], 1),
        "mean_us": round(statistics.fmean(ordered), 1),
    }


class GcWatch:
    """Collections (and their time) while armed."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._start


async def runner_calls(transport: str, port: int, calls: int) -> dict[str, Any]:
    runner: RestRunner | GrpcRunner
    if transport == "REST":
        runner = RestRunner("t", "127.0.0.1", port, "TRANSFORMER", 1 << 22)
    else:
        runner = GrpcRunner("t", "127.0.0.1", port, "TRANSFORMER", 1 << 22)
    msg = json_codec.decode_request(json_codec.loads(BODY))
    try:
        for _ in range(200):  # warm-up: connection, caches
            await runner.transform_input(msg)
        watch = GcWatch()
        gc.callbacks.append(watch)
        samples = []
        clock = time.perf_counter_ns
        cpu0 = time.process_time()
        for _ in range(calls):
            t0 = clock()
            await runner.transform_input(msg)
            samples.append((clock() - t0) / 1000.0)
        cpu = time.process_time() - cpu0
        gc.callbacks.remove(watch)
    finally:
        await runner.close()
    return {
        **percentiles(samples),
        "client_cpu_us_per_call": round(cpu / calls * 1e6, 1),
        "gc_collections": watch.count,
        "gc_ms": round(watch.seconds * 1e3, 2),
    }


def bare_calls(transport: str, port: int, calls: int) -> dict[str, Any]:
    samples = []
    clock = time.perf_counter_ns
    if transport == "REST":
        connection = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(BODY))}
        for i in range(calls + 200):
            t0 = clock()
            connection.request("POST", "/transform-input", BODY, headers)
            connection.getresponse().read()
            if i >= 200:
                samples.append((clock() - t0) / 1000.0)
        connection.close()
    else:
        request = json_codec_to_proto()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                "/seldon.protos.Transformer/TransformInput",
                request_serializer=pb.SeldonMessage.SerializeToString,
                response_deserializer=pb.SeldonMessage.FromString,
            )
            for i in range(calls + 200):
                t0 = clock()
                call(request)
                if i >= 200:
                    samples.append((clock() - t0) / 1000.0)
    return percentiles(samples)


def json_codec_to_proto() -> pb.SeldonMessage:
    from seldon_serving.protocol import proto_codec

    return proto_codec.message_to_proto(json_codec.decode_request(json_codec.loads(BODY)))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--transport", nargs="+", default=["REST", "GRPC"])
    parser.add_argument("--label", default="ours")
    parser.add_argument("--json", type=Path, default=OUT / "hop_latency.json")
    args = parser.parse_args()

    http_port, grpc_port = free_ports(2)
    argv = [str(OUR_VENV / "bin" / "seldon"), "microservice", "BenchTransformer",
            "--service-type", "TRANSFORMER", "--http-port", str(http_port), "--grpc-port", str(grpc_port),
            "--workers", "1", "--host", "127.0.0.1"]  # fmt: skip
    node = subprocess.Popen(argv, cwd=MODELS, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    results: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 30
        while get_problem(f"http://127.0.0.1:{http_port}/health/ping") is not None:
            if time.monotonic() > deadline or node.poll() is not None:
                sys.exit("hop_latency: the microservice did not start")
            time.sleep(0.05)
        for repeat in range(args.repeat):
            for transport in args.transport:
                port = http_port if transport == "REST" else grpc_port
                runner = uvloop.run(runner_calls(transport, port, args.calls))
                bare = bare_calls(transport, port, args.calls)
                added = round(runner["p50_us"] - bare["p50_us"], 1)
                row = {"label": args.label, "repeat": repeat, "transport": transport, "runner": runner,
                       "bare": bare, "runner_minus_bare_p50_us": added}  # fmt: skip
                results.append(row)
                print(json.dumps(row), flush=True)
    finally:
        node.terminate()
        node.wait(10)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
