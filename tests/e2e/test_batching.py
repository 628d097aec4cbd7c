"""Adaptive batching end to end: `seldon microservice --max-batch-size/--max-batch-time-ms` and
the manifest's `seldon.io/max-batch-size` / `seldon.io/max-batch-time-ms` in `seldon serve`
(an in-process node and a process node).  Under 64 concurrent clients, with mixed shapes and
one bad request, every answer equals the unbatched server's answer to the same request, while
the model is called with many requests' rows at once (it tags each answer with the rows of
its call) and the batch size metric shows batches of more than one."""

from __future__ import annotations

import asyncio
import contextlib
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from google.protobuf import json_format

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests.helpers import Gateway, Server, enter_all, microservice

pytestmark = pytest.mark.slow

CLIENTS = 64

# A stand-in for a model with a fixed cost per call: row-wise, so batching must not change any
# answer; it tags each answer with the rows of the call that made it.
MODELS = {
    "BatchRows": """
        import time

        import numpy as np
        from seldon_core.user_model import SeldonResponse


        class BatchRows:
            def predict(self, X, features_names=None):
                if (X < 0).any():
                    raise ValueError("negative values are refused")
                time.sleep(0.003)
                return SeldonResponse(X * 2 + X.sum(axis=-1, keepdims=True), tags={"call_rows": len(X)})
    """,
    # Aggregates its rows: one answer row per call, which no batch can be split into.
    "BatchSum": """
        import time

        import numpy as np


        class BatchSum:
            def predict(self, X, features_names=None):
                time.sleep(0.003)
                return X.sum(axis=0, keepdims=True)
    """,
}


def write_models(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in MODELS.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return directory


def requests() -> list[dict[str, Any]]:
    """64 requests of three widths, 1-3 rows, ints and floats, ndarray and tensor, one with a
    negative value (refused by the model), one 1-d."""
    bodies: list[dict[str, Any]] = []
    for i in range(CLIENTS):
        width, rows = 2 + i % 3, 1 + i % 3
        values = [[float(i + r * 0.5 + c) for c in range(width)] for r in range(rows)]
        if i % 4 == 1:
            flat = [v for row in values for v in row]
            body: dict[str, Any] = {"data": {"tensor": {"shape": [rows, width], "values": flat}}}
        elif i % 9 == 0:
            body = {"data": {"ndarray": [[int(v) for v in row] for row in values]}}
        else:
            body = {"data": {"names": [f"f{c}" for c in range(width)], "ndarray": values}}
        bodies.append(body)
    bodies[13] = {"data": {"ndarray": [[1.0, -1.0]]}}
    bodies[30] = {"data": {"ndarray": [1.0, 2.0, 3.0]}}
    return bodies


def answer_of(status: Any, body: dict[str, Any]) -> tuple[Any, Any]:
    """(status, the body without what legitimately differs: puid and the per-call tag)."""
    meta = dict(body.get("meta") or {})
    meta.pop("puid", None)
    tags = dict(meta.pop("tags", None) or {})
    tags.pop("call_rows", None)
    if tags:
        meta["tags"] = tags
    return status, {**body, "meta": meta} if "meta" in body else body


def call_rows(body: dict[str, Any]) -> int:
    return int(((body.get("meta") or {}).get("tags") or {}).get("call_rows", 0))


async def rest_all(url: str, bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Every body POSTed at once, each on a connection of its own."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            reply = await client.post(url, json=body)
            return reply.status_code, reply.json()

        return list(await asyncio.gather(*(one(b) for b in bodies)))


async def grpc_all(target: str, bodies: list[dict[str, Any]], deployment: str | None = None) -> list[Any]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub: Any = pb_grpc.SeldonStub(channel) if deployment else pb_grpc.ModelStub(channel)
        metadata = (("seldon", deployment),) if deployment else None

        async def one(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            try:
                answer = await stub.Predict(
                    json_format.ParseDict(body, pb.SeldonMessage()), metadata=metadata
                )
            except grpc.aio.AioRpcError as exc:
                return exc.code().name, {"details": exc.details()}
            return "OK", json_format.MessageToDict(answer)

        return list(await asyncio.gather(*(one(b) for b in bodies)))


def batch_sizes(metrics_text: str, **labels: str) -> tuple[float, float]:
    """(sum, count) of seldon_batch_size over the series whose labels include `labels`."""
    totals = {"sum": 0.0, "count": 0.0}
    for match in re.finditer(r"^seldon_batch_size_(sum|count)\{([^}]*)\} (\S+)$", metrics_text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2]))
        if all(found.get(k) == v for k, v in labels.items()):
            totals[match[1]] += float(match[3])
    return totals["sum"], totals["count"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, Server]]:
    """(unbatched BatchRows, batched BatchRows, batched BatchSum) microservices."""
    models = write_models(tmp_path_factory.mktemp("batching") / "models")
    batching = ("--max-batch-size", "64", "--max-batch-time-ms", "20")
    with contextlib.ExitStack() as stack:
        plain, batched, summing = enter_all(
            stack,
            [
                microservice("BatchRows", cwd=models),
                microservice("BatchRows", *batching, cwd=models),
                microservice("BatchSum", *batching, cwd=models),
            ],
        )
        yield plain, batched, summing


def test_batched_rest_answers_equal_unbatched_ones_under_64_clients(servers: tuple[Server, ...]) -> None:
    plain, batched, _ = servers
    bodies = requests()
    expected = asyncio.run(rest_all(f"{plain.url}/predict", bodies))
    got = asyncio.run(rest_all(f"{batched.url}/predict", bodies))
    assert [answer_of(*g) for g in got] == [answer_of(*e) for e in expected]
    assert got[13][0] == 500 and got[13][1]["status"]["info"] == "negative values are refused"
    assert got[30] == (
        200,
        {"data": {"names": [], "ndarray": [8.0, 10.0, 12.0]}, "meta": {"tags": {"call_rows": 3}}},
    )
    # Unbatched, each call saw one request's rows; batched, most answers came from a bigger call.
    assert all(call_rows(body) <= 3 for status, body in expected if status == 200)
    assert sum(call_rows(body) > 3 for _, body in got) > CLIENTS // 2

    scraped = httpx.get(f"{batched.url}/metrics", timeout=10).text
    total, calls = batch_sizes(scraped)
    assert calls > 0 and total / calls > 2, (total, calls)
    assert "seldon_batch_wait_seconds_bucket" in scraped
    assert batch_sizes(httpx.get(f"{plain.url}/metrics", timeout=10).text) == (0.0, 0.0)


def test_batched_grpc_answers_equal_unbatched_ones(servers: tuple[Server, ...]) -> None:
    plain, batched, _ = servers
    bodies = requests()
    expected = asyncio.run(grpc_all(plain.grpc, bodies))
    got = asyncio.run(grpc_all(batched.grpc, bodies))
    assert [answer_of(*g) for g in got] == [answer_of(*e) for e in expected]
    assert got[13] == ("INTERNAL", {"details": "negative values are refused"})
    assert sum(call_rows(body) > 3 for _, body in got) > CLIENTS // 2


def v2_requests() -> list[dict[str, Any]]:
    """The same 64 requests as V2 inference requests (each with its own id)."""
    bodies: list[dict[str, Any]] = []
    for i, body in enumerate(requests()):
        data = body["data"]
        if "tensor" in data:
            shape, flat = data["tensor"]["shape"], data["tensor"]["values"]
        else:
            rows = data["ndarray"]
            shape = [len(rows), len(rows[0])] if isinstance(rows[0], list) else [len(rows)]
            flat = [v for row in rows for v in row] if isinstance(rows[0], list) else rows
        datatype = "INT64" if all(isinstance(v, int) for v in flat) else "FP64"
        bodies.append(
            {"id": f"r{i}", "inputs": [{"name": "x", "datatype": datatype, "shape": shape, "data": flat}]}
        )
    return bodies


def test_batched_v2_answers_equal_unbatched_ones(servers: tuple[Server, ...]) -> None:
    plain, batched, _ = servers
    bodies = v2_requests()

    def comparable(status: int, body: dict[str, Any]) -> tuple[int, Any]:
        parameters = dict(body.get("parameters") or {})
        parameters.pop("puid", None)
        parameters.pop("tags", None)  # call_rows differs by design
        return status, {**body, "parameters": parameters}

    expected = asyncio.run(rest_all(f"{plain.url}/v2/models/BatchRows/infer", bodies))
    got = asyncio.run(rest_all(f"{batched.url}/v2/models/BatchRows/infer", bodies))
    assert [comparable(*g) for g in got] == [comparable(*e) for e in expected]
    assert got[13][0] == 500 and "negative values are refused" in got[13][1]["error"]
    assert [body.get("id") for status, body in got if status == 200][:3] == ["r0", "r1", "r2"]
    rows = [int(body["parameters"]["tags"]["call_rows"]) for status, body in got if status == 200]
    assert sum(r > 3 for r in rows) > CLIENTS // 2, rows


def test_a_model_whose_answers_cannot_be_split_answers_each_request_alone(
    servers: tuple[Server, ...],
) -> None:
    _, _, summing = servers
    bodies = [{"data": {"ndarray": [[float(i), 1.0], [2.0, float(i)]]}} for i in range(32)]
    first = asyncio.run(rest_all(f"{summing.url}/predict", bodies))
    second = asyncio.run(rest_all(f"{summing.url}/predict", bodies))
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        assert (
            a == b == (200, {"data": {"names": ["t:0", "t:1"], "ndarray": [[i + 2.0, i + 1.0]]}, "meta": {}})
        )
    assert summing.log().count("cannot be split by request") == 1


def manifest(name: str, classes: str, graph: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    containers = [{"name": graph["name"], "env": [{"name": "MODEL_NAME", "value": classes}]}]
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {
            "annotations": annotations,
            "predictors": [
                {"name": "main", "componentSpecs": [{"spec": {"containers": containers}}], "graph": graph}
            ],
        },
    }


def test_manifest_batching_in_seldon_serve_inline_and_process_nodes_and_its_validation(
    tmp_path: Path, start_gateway: Any
) -> None:
    models = write_models(tmp_path / "m")

    def unit(**parameters: str) -> dict[str, Any]:
        params = [{"name": k, "value": v, "type": "STRING"} for k, v in parameters.items()]
        return {"name": "rows", "type": "MODEL", "parameters": params}

    batch = {"seldon.io/max-batch-size": "64", "seldon.io/max-batch-time-ms": "20"}
    docs = [
        manifest("plain", "BatchRows", unit(), {}),
        manifest("inline", "BatchRows", unit(), {**batch, "seldon.io/execution": "inline"}),
        # Per node, in a process of its own: the child microservice batches.
        manifest(
            "proc",
            "BatchRows",
            unit(**{"seldon.io/execution": "process", "seldon.io/max-batch-size": "64"}),
            {"seldon.io/max-batch-time-ms": "20"},
        ),
    ]
    (models / "deployments.yaml").write_text(yaml.safe_dump_all(docs))
    gateway: Gateway = start_gateway(models / "deployments.yaml")
    bodies = requests()

    def through(name: str) -> list[tuple[int, dict[str, Any]]]:
        return asyncio.run(rest_all(f"{gateway.url}/seldon/{name}/api/v1.0/predictions", bodies))

    expected = [answer_of(*e) for e in through("plain")]
    for name in ("inline", "proc"):
        got = through(name)
        assert [answer_of(*g) for g in got] == expected, name
        assert sum(call_rows(body) > 3 for _, body in got) > CLIENTS // 2, name
    over_grpc = asyncio.run(grpc_all(gateway.grpc, bodies, deployment="inline"))
    assert sum(call_rows(body) > 3 for _, body in over_grpc) > CLIENTS // 2
    assert over_grpc[13][0] == "INTERNAL"

    table = gateway.cli("get", "-o", "wide")
    assert table.returncode == 0, table.stderr
    line = next(row for row in table.stdout.splitlines() if row.startswith("inline"))
    assert "batching up to 64 requests (20 ms)" in line, line
    total, calls = batch_sizes(
        httpx.get(f"{gateway.admin_url}/metrics", timeout=10).text, deployment_name="inline"
    )
    assert calls > 0 and total / calls > 2, (total, calls)

    # A bad setting is refused when applied: one sentence naming the annotation and the node.
    bad = manifest("bad", "BatchRows", unit(), {"seldon.io/max-batch-size": "lots"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    applied = gateway.cli("apply", "-f", str(path))
    assert applied.returncode != 0
    assert (
        "spec.annotations.seldon.io/max-batch-size: seldon.io/max-batch-size of node 'rows' is 'lots': "
        "it must be a whole number of at least 1 (1: no batching)"
    ) in applied.stderr
    assert "Traceback" not in applied.stderr
