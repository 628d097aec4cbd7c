"""V2 on real servers, as a client without a V2 library meets it (plain HTTP and our own stubs of
the protocol's .proto): errors in the protocol's form with the right status and gRPC code,
raw methods, transformers and meta through a graph, model names, metadata, and graph nodes of
other processes."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import yaml

from seldon_serving.engine import remote_v2
from seldon_serving.engine.remote import GrpcRunner, RestRunner
from seldon_serving.protocol import v2
from seldon_serving.protocol._pb import open_inference_v2_pb2 as v2pb
from seldon_serving.protocol._pb import open_inference_v2_pb2_grpc as v2grpc
from seldon_serving.protocol.message import V2, SeldonMessage
from tests.deploy.gateway import deployment, unit
from tests.helpers import ROOT, Server, enter_all, gateway, microservice

pytestmark = pytest.mark.slow

MODELS = Path(__file__).parent / "v2_models"
DOUBLER = ROOT / "tests" / "compat" / "v2_models"
X = {"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    manifests = tmp_path_factory.mktemp("manifests")
    for source in (DOUBLER / "V2Doubler.py", MODELS / "V2AddOne.py"):
        shutil.copy(source, manifests / source.name)
    with contextlib.ExitStack() as stack:
        doubler, raw, meta = enter_all(
            stack,
            [
                microservice(
                    "V2Doubler", "--model-name", "doubler", cwd=DOUBLER, env={"PREDICTIVE_UNIT_ID": "node-d"}
                ),
                microservice("V2Raw", cwd=MODELS),
                microservice("V2Metadata", cwd=MODELS),
            ],
        )
        chain = deployment(
            "chain",
            unit("add", "TRANSFORMER", children=[unit("double", "MODEL")]),
            {"add": "V2AddOne", "double": "V2Doubler"},
        )
        chain["metadata"]["annotations"] = {"seldon.io/execution": "inline"}
        remote_rest = deployment("remote-rest", unit("node-d", "MODEL", endpoint=("REST", doubler.http_port)))
        remote_grpc = deployment("remote-grpc", unit("node-d", "MODEL", endpoint=("GRPC", doubler.grpc_port)))
        for doc in (chain, remote_rest, remote_grpc):
            (manifests / f"{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc))
        (gw,) = enter_all(stack, [gateway(manifests, state_dir=tmp_path_factory.mktemp("state"))])
        yield {"doubler": doubler, "raw": raw, "meta": meta, "gw": gw}


def infer(server: Server, model: str, body: Any, path: str = "", **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else v2.dumps(body)
    return httpx.post(f"{server.url}{path}/v2/models/{model}/infer", content=content, timeout=10, **kwargs)


def stub(server: Server) -> tuple[grpc.Channel, v2grpc.GRPCInferenceServiceStub]:
    channel = grpc.insecure_channel(server.grpc)
    return channel, v2grpc.GRPCInferenceServiceStub(channel)


def one_sentence_error(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    for word in words:
        assert word in body["error"], body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return str(body["error"])


def test_errors_answer_the_protocols_form_with_the_right_status(servers: dict[str, Any]) -> None:
    doubler, gw = servers["doubler"], servers["gw"]
    for server, model in ((doubler, "doubler"), (gw, "chain")):
        bad_type = {"inputs": [{**X, "datatype": "FLOAT"}]}
        one_sentence_error(infer(server, model, bad_type), 400, "datatype 'FLOAT'")
        mismatch = {"inputs": [{**X, "shape": [3, 2]}]}
        one_sentence_error(infer(server, model, mismatch), 400, "has 2 elements but its shape [3, 2] needs 6")
        one_sentence_error(infer(server, "nobody", {"inputs": [X]}), 404, "nobody")
        header = {"Inference-Header-Content-Length": "12x"}
        one_sentence_error(
            infer(server, model, {"inputs": [X]}, headers=header), 400, "'12x' is not a byte count"
        )
        one_sentence_error(infer(server, model, b"{nope"), 400, "Invalid JSON")
        wrong_method = httpx.get(f"{server.url}/v2/models/{model}/infer", timeout=10)
        one_sentence_error(wrong_method, 405, "GET is not allowed")
        assert wrong_method.headers["allow"] == "POST"
        one_sentence_error(httpx.get(f"{server.url}/v2/models/{model}/nothing", timeout=10), 404)
    one_sentence_error(
        infer(servers["raw"], "V2Raw", {"inputs": [{**X, "name": "boom"}]}), 500, "boom was asked for"
    )


def test_grpc_errors_have_seldons_codes(servers: dict[str, Any]) -> None:
    for server, model in ((servers["doubler"], "doubler"), (servers["gw"], "chain")):
        channel, client = stub(server)
        with channel:
            bad = v2pb.ModelInferRequest(model_name=model)
            bad.inputs.add(name="x", datatype="FP32", shape=[2]).contents.fp32_contents.extend([1.0])
            with pytest.raises(grpc.RpcError) as caught:
                client.ModelInfer(bad)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.details() == "input 'x' has 1 elements but its shape [2] needs 2"
            bad.model_name = "nobody"
            with pytest.raises(grpc.RpcError) as caught:
                client.ModelInfer(bad)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.RpcError) as caught:
                client.ModelReady(v2pb.ModelReadyRequest(name="nobody"))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    channel, client = stub(servers["raw"])
    with channel:
        boom = v2pb.ModelInferRequest(model_name="V2Raw")
        boom.inputs.add(name="boom", datatype="INT8", shape=[1]).contents.int_contents.append(1)
        with pytest.raises(grpc.RpcError) as caught:
            client.ModelInfer(boom)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert "boom was asked for" in (caught.value.details() or "")


def test_model_names_on_a_microservice(servers: dict[str, Any]) -> None:
    doubler = servers["doubler"]
    # --model-name names it, any version is it, and its graph node name (PREDICTIVE_UNIT_ID) too
    for path in ("doubler", "doubler/versions/1", "doubler/versions/latest", "node-d"):
        answer = infer(doubler, path, {"inputs": [X]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == [2.0, 4.0]
    one_sentence_error(infer(doubler, "V2Doubler", {"inputs": [X]}), 404, "serves 'doubler'")
    assert httpx.get(f"{doubler.url}/v2/models/doubler/ready", timeout=10).json() == {
        "name": "doubler",
        "ready": True,
    }
    assert httpx.get(f"{doubler.url}/v2/health/live", timeout=10).json() == {"live": True}
    server = httpx.get(f"{doubler.url}/v2", timeout=10).json()
    assert server["name"] == "seldon-serving" and "binary_tensor_data" in server["extensions"]
    # Seldon's own protocol still answers on the same port
    seldon = httpx.post(f"{doubler.url}/predict", json={"data": {"ndarray": [[1.0, 2.0]]}}, timeout=10)
    assert seldon.json()["data"]["ndarray"] == [[2.0, 4.0]]


def test_v2_metadata_from_the_class_and_a_dict_answer(servers: dict[str, Any]) -> None:
    meta = servers["meta"]
    document = httpx.get(f"{meta.url}/v2/models/V2Metadata", timeout=10).json()
    assert document == {
        "name": "V2Metadata",
        "versions": ["3"],
        "platform": "python",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
    }
    channel, client = stub(meta)
    with channel:
        answer = client.ModelMetadata(v2pb.ModelMetadataRequest(name="V2Metadata"))
    assert list(answer.inputs[0].shape) == [-1, 2] and answer.outputs[0].name == "y"
    summed = infer(meta, "V2Metadata", {"inputs": [{**X, "shape": [2, 1]}]}).json()
    assert summed["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]}]


def test_predict_raw_gets_the_v2_request_as_a_dict(servers: dict[str, Any]) -> None:
    request = {"id": "r-7", "parameters": {"p": 1}, "inputs": [X], "outputs": [{"name": "first"}]}
    answer = infer(servers["raw"], "V2Raw", request)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "model_name": "V2Raw",
        "id": "r-7",
        "outputs": [{"name": "first", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}],
    }
    everything = infer(servers["raw"], "V2Raw", {"inputs": [X]}).json()
    assert everything["outputs"][0]["data"] == ["inputs"]


def test_a_graph_transforms_and_carries_meta_in_parameters(servers: dict[str, Any]) -> None:
    gw = servers["gw"]
    request = {"id": "q1", "parameters": {"puid": "my-puid", "tags": {"client": "t"}}, "inputs": [X]}
    for path in ("", "/seldon/chain", "/seldon/default/chain"):
        answer = infer(gw, "chain", request, path=path)
        assert answer.status_code == 200, (path, answer.text)
        body = answer.json()
        assert body["outputs"][0]["data"] == [4.0, 6.0]  # (x + 1) * 2
        assert body["id"] == "q1" and body["model_name"] == "chain"
        parameters = body["parameters"]
        assert parameters["puid"] == "my-puid"
        assert parameters["tags"] == {"client": "t", "added": 1}
        assert set(parameters["requestPath"]) == {"add", "double"}
    # binary in, binary out (Triton's extension) through the graph
    tensor = v2.InferPayload([v2.Tensor("x", "FP16", np.array([[1, 2]], np.float16))], binary=True)
    tensor.parameters["binary_data_output"] = True
    body, length = v2.encode_rest_body(tensor, response=False)
    headers = {"Inference-Header-Content-Length": str(length), "Content-Type": "application/octet-stream"}
    answer = infer(gw, "chain", body, headers=headers)
    assert answer.status_code == 200, answer.text
    decoded = v2.decode_rest_body(
        answer.content, answer.headers["inference-header-content-length"], response=True
    )
    assert decoded.tensors[0].data.tolist() == [[4.0, 6.0]] and decoded.tensors[0].datatype == "FP16"
    assert httpx.get(f"{gw.url}/v2/models/chain/ready", timeout=10).json() == {"name": "chain", "ready": True}
    assert httpx.get(f"{gw.url}/v2/health/ready", timeout=10).json() == {"ready": True}


def test_rest_and_grpc_nodes_answer_v2_through_the_gateway(servers: dict[str, Any]) -> None:
    gw = servers["gw"]
    for model in ("remote-rest", "remote-grpc"):
        assert infer(gw, model, {"inputs": [X]}).json()["outputs"][0]["data"] == [2.0, 4.0]
    # Seldon's protocol to the same deployments is untouched
    seldon = httpx.post(
        f"{gw.url}/seldon/remote-rest/api/v1.0/predictions", json={"data": {"ndarray": [[1, 2]]}}, timeout=10
    )
    assert seldon.json()["data"]["ndarray"] == [[2.0, 4.0]]
    channel, client = stub(gw)
    with channel:
        for model in ("remote-rest", "remote-grpc"):
            request = v2pb.ModelInferRequest(model_name=model)
            request.inputs.add(name="x", datatype="FP32", shape=[2]).contents.fp32_contents.extend([1.0, 2.0])
            answer = client.ModelInfer(request)
            values = v2.decode_proto_response(answer).tensors[0].data.tolist()
            assert values == [2.0, 4.0], (model, values)


def test_the_remote_v2_calls_reach_a_node_by_its_node_name(servers: dict[str, Any]) -> None:
    """How a gateway calls a REST (binary and JSON) or gRPC (raw and typed) node with V2."""
    asyncio.run(_remote_calls(servers["doubler"]))


async def _remote_calls(doubler: Server) -> None:
    rest = RestRunner("node-d", "127.0.0.1", doubler.http_port, "MODEL", 4 * 2**20)
    over_grpc = GrpcRunner("node-d", "127.0.0.1", doubler.grpc_port, "MODEL", 4 * 2**20)
    try:
        for binary in (False, True):
            payload = v2.InferPayload([v2.Tensor("x", "INT16", np.array([[3, 4]], np.int16))], binary=binary)
            msg = SeldonMessage(form=V2, payload=payload, names=["x"], meta={"puid": "p-1", "tags": {"t": 1}})
            for answer in (await remote_v2.rest_infer(rest, msg), await remote_v2.grpc_infer(over_grpc, msg)):
                assert answer.form == V2
                assert answer.payload.tensors[0].data.tolist() == [[6, 8]]
                assert answer.payload.tensors[0].datatype == "INT16"
                assert answer.meta.get("puid") == "p-1" and answer.meta.get("tags") == {"t": 1}
    finally:
        await rest.close()
        await over_grpc.close()


def test_v2_answers_conform_to_the_openapi_documents_v2_paths(servers: dict[str, Any]) -> None:
    """The V2 paths of our OpenAPI documents describe what the servers answer, errors included."""
    import schemathesis
    from schemathesis.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from seldon_serving.servers.openapi import gateway_openapi, microservice_openapi

    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    doubler, gw = servers["doubler"], servers["gw"]
    documents = (
        (doubler, "doubler", microservice_openapi("doubler"), {}),
        (gw, "chain", gateway_openapi([("default", "chain", ["add", "double"])]), {}),
        (
            gw,
            "chain",
            gateway_openapi([("default", "chain", ["add", "double"])]),
            {"deployment": "chain"},
        ),
    )
    for server, model, document, extra in documents:
        schema = schemathesis.openapi.from_dict(document)
        prefix = "/seldon/{deployment}" if extra else ""
        for body in (
            {"inputs": [X]},
            {"inputs": [{**X, "datatype": "nope"}]},
            {"inputs": [X], "outputs": [{"name": "z"}]},
        ):
            operation = schema[f"{prefix}/v2/models/{{model}}/infer"]["POST"]
            case = operation.Case(
                path_parameters={"model": model, **extra}, body=body, media_type="application/json"
            )
            response = case.call(base_url=server.url, timeout=10)
            assert response.status_code in (200, 400), response.text
            case.validate_response(response, checks=checks)
        for path in (
            f"{prefix}/v2/models/{{model}}",
            f"{prefix}/v2/models/{{model}}/ready",
            f"{prefix}/v2/health/ready",
        ):
            case = schema[path]["GET"].Case(path_parameters={"model": model, **extra})
            response = case.call(base_url=server.url, timeout=10)
            assert response.status_code == 200, (path, response.text)
            case.validate_response(response, checks=checks)


def test_v2_through_the_oauth_front_end_needs_the_deployments_token(tmp_path: Path) -> None:
    from tests.e2e.test_oauth import Front, manifests, start

    with start(manifests(tmp_path)) as server:
        front = Front(server)
        token_a = front.token("key-a", "secret-a").json()["access_token"]
        bearer = {"Authorization": f"Bearer {token_a}"}
        request = {"inputs": [{**X, "datatype": "FP64"}]}
        for path in ("", "/seldon/dep-a"):
            answer = infer(server, "dep-a", request, path=path, headers=bearer)
            assert answer.status_code == 200, answer.text
            assert answer.json()["parameters"]["requestPath"] == {"dep-a": "seldonio/mock_classifier:1.0"}
        one_sentence_error(infer(server, "dep-a", request), 401)
        one_sentence_error(
            infer(server, "dep-b", request, headers=bearer), 401, "does not open deployment 'dep-b'"
        )
        one_sentence_error(infer(server, "dep-b", request, path="/seldon/dep-b", headers=bearer), 401)
        proto = v2pb.ModelInferRequest(model_name="dep-a")
        proto.inputs.add(name="x", datatype="FP64", shape=[1, 2]).contents.fp64_contents.extend([1.0, 2.0])
        channel, client = stub(server)
        with channel:
            assert len(client.ModelInfer(proto, metadata=[("oauth_token", token_a)]).outputs) == 1
            proto.model_name = "dep-b"
            for metadata in ([], [("oauth_token", token_a)]):
                with pytest.raises(grpc.RpcError) as caught:
                    client.ModelInfer(proto, metadata=metadata)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_seldon_engine_speaks_v2_for_its_deployment(tmp_path: Path) -> None:
    from tests.e2e.test_engine import encoded, engine

    predictor = {
        "name": "main",
        "graph": {"name": "simple", "type": "MODEL", "implementation": "SIMPLE_MODEL"},
    }
    running, http, grpc_port = engine(
        {"ENGINE_PREDICTOR": encoded(predictor), "DEPLOYMENT_NAME": "dep"}, tmp_path
    )
    with running, httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=10) as client:
        seldon = client.post("/api/v1.0/predictions", json={"data": {"ndarray": [[1.0, 2.0]]}}).json()
        answer = client.post(
            "/v2/models/dep/infer", content=v2.dumps({"inputs": [{**X, "datatype": "FP64"}]})
        )
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        assert output["data"] == [v for row in seldon["data"]["ndarray"] for v in row]
        assert answer.json()["parameters"]["requestPath"] == seldon["meta"]["requestPath"]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            ready = v2grpc.GRPCInferenceServiceStub(channel).ModelReady(v2pb.ModelReadyRequest(name="dep"))
            assert ready.ready
