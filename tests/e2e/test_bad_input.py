"""Bad input against real servers: every refusal is a 4xx (gRPC: a client-side code) whose
body is a Seldon FAILURE status saying what was wrong, a model's exception is a 500 naming
it, nothing of a traceback ever reaches a client, and the server keeps answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import grpc
import httpx
import pytest

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests import helpers
from tests.deploy.gateway import EXAMPLES, deployment, unit, write
from tests.helpers import ROOT

pytestmark = pytest.mark.slow

MODELS = ROOT / "tests" / "compat" / "models"
SMALL_LIMIT = 4096
ROW4 = {"data": {"ndarray": [[1.0, 2.0, 3.0, 4.0]]}}
ROW2 = {"data": {"ndarray": [[1.0, 2.0]]}}


class Server:
    """A running server with one keep-alive client."""

    def __init__(self, server: helpers.Server) -> None:
        self.url = server.url
        self.grpc = server.grpc
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def post(self, path: str, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(
            path, content=content, headers={"content-type": "application/json", **headers}
        )


def serving(context: AbstractContextManager[helpers.Server]) -> Iterator[Server]:
    with context as running:
        server = Server(running)
        yield server
        server.client.close()


def microservice(model: str, *extra: str) -> Iterator[Server]:
    yield from serving(helpers.microservice(model, *extra, cwd=MODELS, log_level="CRITICAL"))


@pytest.fixture(scope="module")
def model() -> Iterator[Server]:
    yield from microservice("LinearSoftmax")


@pytest.fixture(scope="module")
def small_model() -> Iterator[Server]:
    yield from microservice("LinearSoftmax", "--max-message-size", str(SMALL_LIMIT))


@pytest.fixture(scope="module")
def failing() -> Iterator[Server]:
    yield from microservice("Failing")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The seed's examples plus `boom`, a user class that raises, with a small message limit."""
    manifests = tmp_path_factory.mktemp("manifests")
    write(manifests, "boom.yaml", deployment("boom", unit("boom", "MODEL"), {"boom": "Failing"}), "Failing")
    yield from serving(
        helpers.gateway(
            EXAMPLES,
            manifests,
            state_dir=tmp_path_factory.mktemp("state"),
            args=["--max-message-size", str(SMALL_LIMIT)],
            log_level="CRITICAL",
        )
    )


def failure(response: httpx.Response, status: int, *info: str) -> dict[str, Any]:
    """The body is exactly a FAILURE status whose info says each of `info`; no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    assert set(body) == {"status"}, body
    assert body["status"]["status"] == "FAILURE" and body["status"]["reason"], body
    for words in info:
        assert words in body["status"]["info"], body["status"]["info"]
    return body["status"]


def big_body(size: int) -> bytes:
    rows = ",".join(["[1.0,2.0,3.0,4.0]"] * (size // 18 + 1))
    return f'{{"data":{{"ndarray":[{rows}]}}}}'.encode()


def big_grpc_request(size: int) -> pb.SeldonMessage:
    request = pb.SeldonMessage()
    request.data.tensor.shape.extend([size // 32 + 1, 4])
    request.data.tensor.values.extend([1.0] * ((size // 32 + 1) * 4))
    return request


def still_serving(server: Server, path: str, body: dict[str, Any]) -> None:
    ping = "/health/ping" if path == "/predict" else "/ping"
    assert server.client.get(ping).text == "pong"
    assert server.post(path, body).status_code == 200


# --- size limits ----------------------------------------------------------------------------


def test_rest_body_over_the_default_4_mib_is_413(model: Server) -> None:
    failure(
        model.post("/predict", big_body(4 * 1024 * 1024 + 1)), 413, "larger than the limit of 4194304 bytes"
    )
    assert model.post("/predict", big_body(3 * 1024 * 1024)).status_code == 200
    still_serving(model, "/predict", ROW4)


def test_grpc_message_over_the_default_limit_is_resource_exhausted(model: Server) -> None:
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(model.grpc, options=options) as channel:
        stub = pb_grpc.ModelStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(big_grpc_request(5 * 1024 * 1024), timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(stub.Predict(big_grpc_request(1024 * 1024), timeout=30).data.tensor.values) > 0


@pytest.mark.parametrize("fixture", ["small_model", "gateway"])
def test_max_message_size_is_configurable(fixture: str, request: pytest.FixtureRequest) -> None:
    server: Server = request.getfixturevalue(fixture)
    path = "/predict" if fixture == "small_model" else "/seldon/mymodel/api/v1.0/predictions"
    failure(
        server.post(path, big_body(SMALL_LIMIT + 1)), 413, f"larger than the limit of {SMALL_LIMIT} bytes"
    )
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb_grpc.ModelStub(channel) if fixture == "small_model" else pb_grpc.SeldonStub(channel)
        metadata = () if fixture == "small_model" else (("seldon", "mymodel"),)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(big_grpc_request(2 * SMALL_LIMIT), metadata=metadata, timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    still_serving(server, path, ROW4 if fixture == "small_model" else ROW2)


# --- malformed requests ---------------------------------------------------------------------

BAD_REQUESTS = [
    # (body, info the answer must contain)
    (b'{"data": {"ndarray": [[1, 2, 3, 4]]', "Invalid JSON"),
    (b'{"data": {"ndarray": [[NaN, 2, 3, 4]]}}', "Invalid JSON"),  # JSON has no NaN literal
    (b"[1, 2]", "must be a JSON object"),
    (b'{"data": {"tensor": {"shape": [1, 4], "values": "1,2,3,4"}}}', "data.tensor.values must be a list"),
    (b'{"data": {"tensor": {"shape": [1, 4], "values": [1, "a", 3, 4]}}}', "data.tensor.values must be"),
    (b'{"data": {"names": "abcd", "ndarray": [[1, 2, 3, 4]]}}', "data.names must be a list of strings"),
    (
        b'{"meta": {"routing": {"r": "left"}}, "data": {"ndarray": [[1]]}}',
        "meta.routing.r must be an integer",
    ),
    (b'{"data": {"ndarray": [[1, 2, 3, 4], [1, 2]]}}', "ragged"),
    (
        b'{"data": {"tensor": {"shape": [2, 4], "values": [1, 2, 3, 4]}}}',
        "shape [2,4] does not match 4 values",
    ),
    (
        b'{"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "99999"}, '
        b'{"size": "99999"}]}}}}',
        "a filled tensor may hold at most",
    ),
    (b'{"binData": "not base64!"}', "binData is not valid base64"),
    (b'{"strData": "a", "binData": "YQ=="}', "a message carries only one of them"),
]


@pytest.mark.parametrize(("body", "info"), BAD_REQUESTS)
def test_microservice_refuses_bad_requests_saying_why(model: Server, body: bytes, info: str) -> None:
    status = failure(model.post("/predict", body), 400, info)
    assert status["reason"] == "MICROSERVICE_BAD_DATA"
    still_serving(model, "/predict", ROW4)


@pytest.mark.parametrize(("body", "info"), BAD_REQUESTS)
def test_gateway_refuses_bad_requests_saying_why(gateway: Server, body: bytes, info: str) -> None:
    failure(gateway.post("/seldon/mymodel/api/v1.0/predictions", body), 400, info)
    still_serving(gateway, "/seldon/mymodel/api/v1.0/predictions", ROW2)


@pytest.mark.parametrize(
    ("body", "info"),
    [
        ({"data": {"ndarray": [["a", "b"]]}}, "node 'mymodel': mock_classifier needs numeric data"),
        ({"strData": "hello"}, "needs numeric data, got str"),
        ({"data": {"ndarray": [1.0, 2.0]}}, "needs a 2-D array"),
    ],
)
def test_gateway_numeric_model_refuses_what_it_cannot_compute(
    gateway: Server, body: dict[str, Any], info: str
) -> None:
    failure(gateway.post("/seldon/mymodel/api/v1.0/predictions", body), 400, info)


def test_unknown_deployment_path_and_method(gateway: Server, model: Server) -> None:
    failure(gateway.post("/seldon/nosuch/api/v1.0/predictions", ROW2), 404, "no deployment named 'nosuch'")
    failure(gateway.post("/api/v1.0/predictions", ROW2, seldon="nosuch"), 404, "no deployment named 'nosuch'")
    failure(gateway.post("/api/v1.0/predictions", ROW2), 404, "deployments are running; name one")
    failure(gateway.client.get("/seldon/mymodel/api/v1.0/metadata/nosuch"), 404, "has no model 'nosuch'")
    failure(gateway.client.get("/nosuch"), 404, "no such path: /nosuch")
    failure(
        gateway.client.put("/seldon/mymodel/api/v1.0/predictions", content=b"{}"), 405, "PUT is not allowed"
    )
    failure(model.client.get("/nosuch"), 404, "no such path: /nosuch")
    response = model.client.delete("/predict")
    failure(response, 405, "DELETE is not allowed on /predict")
    assert response.headers["allow"] == "GET, POST"
    still_serving(gateway, "/seldon/mymodel/api/v1.0/predictions", ROW2)
    still_serving(model, "/predict", ROW4)


def test_bad_feedback_is_refused(gateway: Server) -> None:
    path = "/seldon/mymab/api/v1.0/feedback"
    response = {"meta": {"routing": {"eg-router": 0}}, "data": {"ndarray": [[0.5]]}}
    failure(gateway.post(path, {"response": response, "reward": "lots"}), 400, "reward must be a number")
    failure(gateway.post(path, {"response": response, "reward": 7}), 400, "reward must be in [0, 1]")
    failure(gateway.post(path, {"response": response, "reward": "NaN"}), 400, "reward must be in [0, 1]")
    assert gateway.post(path, {"request": ROW2, "response": response, "reward": 1}).status_code == 200


# --- model exceptions -----------------------------------------------------------------------


def test_user_exception_is_500_naming_the_error(failing: Server) -> None:
    status = failure(failing.post("/predict", ROW4), 500, "model exploded on purpose")
    assert status["reason"] == "MICROSERVICE_INTERNAL_ERROR"
    assert failing.client.get("/health/ping").text == "pong"


def test_user_exception_in_a_graph_is_500_naming_the_node(gateway: Server) -> None:
    status = failure(
        gateway.post("/seldon/boom/api/v1.0/predictions", ROW2),
        500,
        "node 'boom'",
        "model exploded on purpose",
    )
    assert status["code"] == 203 and status["reason"] == "Microservice error"
    still_serving(gateway, "/seldon/mymodel/api/v1.0/predictions", ROW2)


# --- gRPC -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["model", "gateway"])
def test_grpc_bytes_that_are_no_message_are_invalid_argument(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    server: Server = request.getfixturevalue(fixture)
    service = "Model" if fixture == "model" else "Seldon"
    with grpc.insecure_channel(server.grpc) as channel:
        raw = channel.unary_unary(f"/seldon.protos.{service}/Predict")
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\xff\xff\xff\xff", metadata=(("seldon", "mymodel"),), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid seldon.protos.SeldonMessage" in (info.value.details() or "")


def test_grpc_shape_mismatch_and_unknown_deployment(gateway: Server) -> None:
    request = pb.SeldonMessage()
    request.data.tensor.shape.extend([2, 2])
    request.data.tensor.values.extend([1.0, 2.0, 3.0])
    with grpc.insecure_channel(gateway.grpc) as channel:
        stub = pb_grpc.SeldonStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, metadata=(("seldon", "mymodel"),), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "shape [2,2] does not match 3 values" in (info.value.details() or "")
        request.data.tensor.values.append(4.0)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, metadata=(("seldon", "nosuch"),), timeout=10)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no deployment named 'nosuch'" in (info.value.details() or "")


# --- NaN and Infinity -----------------------------------------------------------------------


def test_nan_in_proto3_string_form_goes_through_and_comes_back(model: Server, gateway: Server) -> None:
    tensor = {"data": {"tensor": {"shape": [1, 4], "values": ["NaN", "Infinity", "-Infinity", 1.0]}}}
    answer = model.post("/predict", tensor)
    assert answer.status_code == 200 and answer.json()["data"]["tensor"]["values"] == ["NaN"] * 3
    answer = model.post("/predict", {"data": {"tensor": {"shape": [1, 4], "values": ["NaN", 1, 2, 3]}}})
    assert answer.json()["data"]["tensor"]["values"] == ["NaN"] * 3
    two = {"data": {"tensor": {"shape": [1, 2], "values": ["Infinity", 1.0]}}}
    assert gateway.post("/seldon/mymodel/api/v1.0/predictions", two).json()["data"]["tensor"]["values"] == [
        1.0
    ]
    failure(gateway.post("/seldon/myout/api/v1.0/predictions", two), 400, "needs finite numbers")
