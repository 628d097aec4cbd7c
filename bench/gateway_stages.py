"""Where the gateway's time goes, in-process: the REST apps and their layers timed stage by stage.

No HTTP, no sockets: each stage is awaited N times in a loop on uvloop (as under uvicorn),
best of R repeats, and reported in microseconds per call.  Compares the gateway
(`seldon serve`, one in-process BenchModel node; the 3-node in-process chain) with the bare
microservice (`seldon microservice BenchModel`) on the same request.  A diagnostic for
bench/gateway_notes.md, not part of the benchmark run; it imports internals of
`seldon_serving`, so it may need adjusting when those change.

    .venv/bin/python bench/gateway_stages.py [--calls 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop
import yaml

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.engine import graph
from seldon_serving.engine.deployment import build_deployment
from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol import json_codec
from seldon_serving.servers.component_plane import ComponentPlane, metrics_sink
from seldon_serving.servers.gateway_metrics import GatewayMetrics
from seldon_serving.servers.gateway_rest import GatewayApp
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.microservice_rest import MicroserviceApp
from seldon_serving.spec.loading import parse_deployment

MODELS = Path(__file__).resolve().parent / "models"
BODY = b'{"data":{"ndarray":[[1.0,2.0,3.0,4.0]]}}'


def asgi_call(app: Any, path: str) -> Callable[[], Awaitable[None]]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
        "client": ("127.0.0.1", 40000),
    }
    message = {"type": "http.request", "body": BODY, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def send(_: dict[str, Any]) -> None:
        return None

    return lambda: app(scope, receive, send)


def gateway(manifest: str) -> tuple[GatewayApp, DataPlane, Any]:
    doc = yaml.safe_load((MODELS / manifest).read_text())
    deployment = build_deployment(parse_deployment(doc), base_dir=MODELS)
    plane = DataPlane(observer=GatewayMetrics(Metrics()))
    plane.install(deployment)
    return GatewayApp(plane, Metrics()), plane, deployment


async def timed(fn: Callable[[], Awaitable[Any]], calls: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            await fn()
        best = min(best, (time.perf_counter() - t0) / calls * 1e6)
    return best


async def noop() -> None:
    return None


async def main_async(calls: int, repeat: int) -> list[tuple[str, float]]:
    sys.path.insert(0, str(MODELS))
    from BenchModel import BenchModel

    metrics = Metrics()
    adapter = ComponentAdapter(
        BenchModel(), unit_id="model", service_type="MODEL", on_metrics=metrics_sink(metrics, {})
    )
    adapter.load()
    component = ComponentPlane(adapter, metrics, {})
    micro = MicroserviceApp(component)

    gw_app, gw_plane, gw_dep = gateway("gateway_single.yaml")
    chain_app, _chain_plane, chain_dep = gateway("gateway_chain3.yaml")
    obj = orjson.loads(BODY)
    msg = json_codec.decode_message(obj)
    root = gw_dep.primary.root
    chain_root = chain_dep.primary.root
    node_runner = root.runner
    answer = await gw_plane.predict("bench", None, msg)
    observer = gw_plane.observer

    async def timeout_block() -> None:
        async with asyncio.timeout(5.0):
            await noop()

    stages: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        (
            "microservice: whole ASGI app, POST /api/v1.0/predictions",
            asgi_call(micro, "/api/v1.0/predictions"),
        ),
        ("microservice: ComponentPlane.predict(msg)", lambda: component.predict(msg)),
        ("microservice: ComponentAdapter.predict(msg)", lambda: adapter.predict(msg)),
        (
            "gateway 1 node: whole ASGI app, POST /seldon/bench/api/v1.0/predictions",
            asgi_call(gw_app, "/seldon/bench/api/v1.0/predictions"),
        ),
        ("gateway 1 node: DataPlane.predict(name, msg)", lambda: gw_plane.predict("bench", None, msg)),
        ("gateway 1 node: graph.predict(root, msg, sink)", lambda: graph.predict(root, msg, None)),
        (
            "gateway 1 node: LocalRunner.transform_input(msg) (= adapter.predict)",
            lambda: node_runner.transform_input(msg),
        ),
        (
            "gateway 3-node chain: whole ASGI app",
            asgi_call(chain_app, "/seldon/bench/api/v1.0/predictions"),
        ),
        ("gateway 3-node chain: graph.predict(root, msg)", lambda: graph.predict(chain_root, msg, None)),
        ("asyncio.timeout(5) around an empty coroutine", timeout_block),
        ("an empty coroutine (loop overhead of this harness)", noop),
    ]
    out = [(name, await timed(fn, calls, repeat)) for name, fn in stages]

    sync_stages: list[tuple[str, Callable[[], Any]]] = [
        ("graph.new_puid()", graph.new_puid),
        (
            "GatewayMetrics.request (histogram observe)",
            lambda: observer.request("bench", "main", "predictions", 200, 0.001),
        ),
        ("json_codec.decode_message(obj)", lambda: json_codec.decode_message(obj)),
        (
            "json_codec.dumps(encode_message(answer))",
            lambda: json_codec.dumps(json_codec.encode_message(answer)),
        ),
        ("msg.copy_meta()", msg.copy_meta),
    ]
    for name, fn in sync_stages:
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            best = min(best, (time.perf_counter() - t0) / calls * 1e6)
        out.append((name, best))
    await gw_dep.close()
    await chain_dep.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = uvloop.run(main_async(args.calls, args.repeat))
    print("| stage (in-process, per call) | us |")
    print("|---|---|")
    for name, us in results:
        print(f"| {name} | {us:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
