"""gRPC load client for the benchmark: N calls in flight for a fixed duration.

Two protocols:

* ``seldon``: ``/seldon.protos.Model/Predict`` with a SeldonMessage holding a [1, 4]
  tensor, built with OUR generated stubs (``seldon_serving.protocol._pb``); the wire
  format is Seldon's, so the same client drives our server and seldon-core's.
  Run it with the project venv (``.venv/bin/python``).
* ``v2``: ``/inference.GRPCInferenceService/ModelInfer`` with a FP64 [1, 4] tensor,
  built with MLServer's own stubs (``mlserver.grpc.dataplane_pb2``); run it with
  MLServer's venv.

One Python client process tops out near 2-2.5k req/s on this kind of machine, and
SO_REUSEPORT balances per TCP connection, so the load can be spread over several
client processes (``--processes``), each with several channels (``--channels``,
each its own TCP connection).  ``--inflight`` is the TOTAL number of calls in
flight, split evenly over processes and then over channels.  All processes start
measuring at the same wall-clock instant (after ``--warmup`` seconds) and stop
``--duration`` seconds later; latencies of every process are merged before the
percentiles are taken.

Prints one JSON object: requests, errors, rps, p50_ms, p99_ms, and the setup.
``--dump-body PATH`` instead writes the request as an h2load body (gRPC framing:
byte 0, 4-byte big-endian length, serialized message) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import subprocess
import sys
import time
from typing import Any

VALUES = [1.0, 2.0, 3.0, 4.0]


def build_call(
    proto: str, model_name: str, row: list[float] | None = None, output: str | None = None
) -> tuple[str, Any, Any, Any]:
    """(method path, request message, stub factory(channel) -> callable, response check).
    `row`: another request row than VALUES (any answer with data then counts as an answer);
    `output`: the V2 output to ask for by name."""
    values = row or VALUES
    if proto == "seldon":
        from seldon_serving.protocol._pb import prediction_pb2, prediction_pb2_grpc

        request = prediction_pb2.SeldonMessage(
            data=prediction_pb2.DefaultData(
                tensor=prediction_pb2.Tensor(shape=[1, len(values)], values=values)
            )
        )

        def seldon_check(response: Any) -> bool:
            if row is not None:
                return bool(response.data.tensor.values) or bool(response.data.ndarray.values)
            return len(response.data.tensor.values) == 3 or len(response.data.ndarray.values) == 1

        return (
            "/seldon.protos.Model/Predict",
            request,
            lambda channel: prediction_pb2_grpc.ModelStub(channel).Predict,
            seldon_check,
        )
    if proto == "v2":
        from mlserver.grpc import dataplane_pb2, dataplane_pb2_grpc

        tensor = dataplane_pb2.ModelInferRequest.InferInputTensor(
            name="x",
            datatype="FP64",
            shape=[1, len(values)],
            contents=dataplane_pb2.InferTensorContents(fp64_contents=values),
        )
        outputs = [dataplane_pb2.ModelInferRequest.InferRequestedOutputTensor(name=output)] if output else []
        request = dataplane_pb2.ModelInferRequest(model_name=model_name, inputs=[tensor], outputs=outputs)

        def v2_check(response: Any) -> bool:
            outputs = response.outputs
            if row is not None:
                return bool(outputs)
            return bool(outputs) and (
                len(outputs[0].contents.fp64_contents) == 3 or len(response.raw_output_contents) == 1
            )

        return (
            "/inference.GRPCInferenceService/ModelInfer",
            request,
            lambda channel: dataplane_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer,
            v2_check,
        )
    raise SystemExit(f"unknown --proto {proto!r}")


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def run_one_process(args: argparse.Namespace) -> dict[str, Any]:
    import grpc

    _, request, stub_factory, check = _call(args)
    channels = [
        grpc.aio.insecure_channel(
            args.target,
            # A local subchannel pool gives each channel its own TCP connection
            # (otherwise channels with equal arguments share one).
            options=[("grpc.use_local_subchannel_pool", 1), ("grpc.channel_id", index)],
        )
        for index in range(args.channels)
    ]
    calls = [stub_factory(channel) for channel in channels]
    # perf_counter is per process; the wall clock gives every process the same window.
    wall_to_perf = time.perf_counter() - time.time()
    start = (args.start_at if args.start_at else time.time() + args.warmup) + wall_to_perf
    end = start + args.duration
    latencies: list[float] = []
    counters = {"errors": 0, "bad": 0}
    first_error: list[str] = []

    async def worker(call: Any) -> None:
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            try:
                response = await call(request, timeout=10.0)
            except grpc.aio.AioRpcError as exc:
                if t0 >= start:
                    counters["errors"] += 1
                if not first_error:
                    first_error.append(f"{exc.code().name}: {exc.details()}")
                await asyncio.sleep(0.001)
                continue
            t1 = time.perf_counter()
            if t0 >= start and t1 <= end:
                latencies.append(t1 - t0)
                if not check(response):
                    counters["bad"] += 1

    tasks = [asyncio.create_task(worker(calls[i % len(calls)])) for i in range(args.inflight)]
    await asyncio.gather(*tasks)
    for channel in channels:
        await channel.close()
    return {
        "requests": len(latencies),
        "errors": counters["errors"],
        "bad_answers": counters["bad"],
        "first_error": first_error[0] if first_error else None,
        "latencies_us": [round(value * 1e6) for value in latencies],
    }


def summarize(parts: list[dict[str, Any]], args: argparse.Namespace, inflight_total: int) -> dict[str, Any]:
    latencies = sorted(value for part in parts for value in part["latencies_us"])
    requests = sum(part["requests"] for part in parts)
    errors = [part["first_error"] for part in parts if part.get("first_error")]
    p50 = percentile(latencies, 50)
    p99 = percentile(latencies, 99)
    return {
        "client": "grpc_load.py (grpc.aio)",
        "proto": args.proto,
        "target": args.target,
        "processes": args.processes,
        "channels_per_process": args.channels,
        "inflight_total": inflight_total,
        "duration_s": args.duration,
        "requests": requests,
        "errors": sum(part["errors"] for part in parts),
        "bad_answers": sum(part["bad_answers"] for part in parts),
        "first_error": errors[0] if errors else None,
        "rps": requests / args.duration if args.duration else 0.0,
        "p50_ms": p50 / 1000.0 if p50 is not None else None,
        "p99_ms": p99 / 1000.0 if p99 is not None else None,
    }


def run_processes(args: argparse.Namespace) -> dict[str, Any]:
    """Fork ``--processes`` copies of this script (each one process, its share of the
    in-flight calls) and merge their latencies."""
    start_at = time.time() + max(args.warmup, 1.0)  # leave the children time to import grpc
    per_process = [args.inflight // args.processes] * args.processes
    for index in range(args.inflight % args.processes):
        per_process[index] += 1
    children = []
    for share in per_process:
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--target", args.target,
            "--proto", args.proto,
            "--model-name", args.model_name,
            "--duration", str(args.duration),
            "--inflight", str(share),
            "--channels", str(args.channels),
            "--start-at", repr(start_at),
            "--child",
            *(["--row-file", args.row_file] if args.row_file else []),
            *(["--output", args.output] if args.output else []),
        ]  # fmt: skip
        children.append(subprocess.Popen(command, stdout=subprocess.PIPE))
    parts = []
    try:
        for child in children:
            out, _ = child.communicate(timeout=args.warmup + args.duration + 60)
            if child.returncode != 0:
                raise SystemExit(f"client process failed with exit code {child.returncode}")
            parts.append(json.loads(out))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return summarize(parts, args, args.inflight)


def _call(args: argparse.Namespace) -> tuple[str, Any, Any, Any]:
    row = None
    if args.row_file:
        with open(args.row_file) as handle:
            row = json.load(handle)
    return build_call(args.proto, args.model_name, row, args.output)


def dump_body(args: argparse.Namespace) -> None:
    _, request, _, _ = _call(args)
    payload = request.SerializeToString()
    with open(args.dump_body, "wb") as handle:
        handle.write(b"\x00" + struct.pack(">I", len(payload)) + payload)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", default="127.0.0.1:5000", help="host:port of the gRPC server")
    parser.add_argument("--proto", choices=("seldon", "v2"), default="seldon")
    parser.add_argument("--model-name", default="bench", help="V2 model name (v2 only)")
    parser.add_argument("--row-file", help="a JSON list: the request row instead of [1, 2, 3, 4]")
    parser.add_argument("--output", help="V2 output to request by name (v2 only)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before")
    parser.add_argument("--inflight", type=int, default=16, help="calls in flight in total")
    parser.add_argument("--channels", type=int, default=1, help="channels (TCP connections) per process")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dump-body", metavar="PATH", help="write the h2load request body and exit")
    args = parser.parse_args()
    if args.dump_body:
        dump_body(args)
        return
    if args.child:
        print(json.dumps(asyncio.run(run_one_process(args))))
        return
    if args.processes > 1:
        result = run_processes(args)
    else:
        part = asyncio.run(run_one_process(args))
        result = summarize([part], args, args.inflight)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
