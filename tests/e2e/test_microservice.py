"""`seldon microservice` over real ports: what a user of Seldon's wrapper notices."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests.helpers import Server, microservice, seldon_bin
from tests.transport import Transport

MODELS = Path(__file__).resolve().parent.parent / "compat" / "models"
X = [[1.0, 2.0, 3.0, 4.0]]


@pytest.fixture(scope="module")
def model() -> Iterator[Server]:
    with microservice("LinearSoftmax", cwd=MODELS, workers=2) as server:
        yield server


@pytest.fixture(scope="module")
def failing() -> Iterator[Server]:
    with microservice("Failing", cwd=MODELS) as server:
        yield server


def test_predict_keeps_the_request_form(model: Server) -> None:
    r = httpx.post(
        f"{model.url}/predict",
        json={"data": {"names": list("abcd"), "tensor": {"shape": [1, 4], "values": X[0]}}},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["data"]["names"] == ["a", "b", "c"]
    assert body["data"]["tensor"]["shape"] == [1, 3]
    assert abs(sum(body["data"]["tensor"]["values"]) - 1.0) < 1e-9
    assert body["meta"]["tags"] == {"model": "linear-softmax"}

    r = httpx.post(f"{model.url}/api/v1.0/predictions", json={"data": {"ndarray": X}})
    assert r.status_code == 200 and len(r.json()["data"]["ndarray"][0]) == 3


def test_form_and_query_bodies_like_seldons_wrapper(model: Server) -> None:
    import json

    message = json.dumps({"data": {"ndarray": X}})
    r = httpx.post(f"{model.url}/predict", data={"json": message})
    assert r.status_code == 200 and "ndarray" in r.json()["data"]
    r = httpx.get(f"{model.url}/predict", params={"json": message})
    assert r.status_code == 200 and "ndarray" in r.json()["data"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"data": {"tensor": {"shape": [2, 2], "values": [1]}}}',
        b'{"data": {"ndarray": [[1, 2], [3]]}}',
        b"",
    ],
)
def test_bad_body_is_400_with_a_failure_status_and_the_server_keeps_serving(
    model: Server, body: bytes
) -> None:
    r = httpx.post(f"{model.url}/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    status = r.json()["status"]
    assert status["status"] == "FAILURE" and status["reason"] == "MICROSERVICE_BAD_DATA"
    assert status["info"] and "Traceback" not in status["info"]
    assert httpx.post(f"{model.url}/predict", json={"data": {"ndarray": X}}).status_code == 200


def test_user_exception_is_a_server_error_naming_it(failing: Server, transport: Transport) -> None:
    reply = transport.predict(failing, {"data": {"ndarray": X}})
    assert reply.failed_like(500)  # REST 500, gRPC INTERNAL
    assert "model exploded on purpose" in reply.info
    if transport.name == "rest":
        assert reply.body["status"]["reason"] == "MICROSERVICE_INTERNAL_ERROR"
    assert httpx.get(f"{failing.url}/health/ping").text == "pong"


def test_health_metadata_and_metrics(model: Server) -> None:
    assert httpx.get(f"{model.url}/health/ping").text == "pong"
    assert httpx.get(f"{model.url}/health/status").json()["strData"] == "healthy"  # meta too, as Seldon
    assert "name" in httpx.get(f"{model.url}/metadata").json()
    for _ in range(4):
        httpx.post(f"{model.url}/predict", json={"data": {"ndarray": X}})
    metrics = httpx.get(f"{model.url}/metrics").text
    assert "mycounter" in metrics
    assert httpx.get(f"{model.url}/seldon.json").json()["openapi"].startswith("3.")


def test_grpc_predict_on_the_model_and_the_seldon_service(model: Server) -> None:
    request = pb.SeldonMessage()
    request.data.tensor.shape.extend([1, 4])
    request.data.tensor.values.extend(X[0])
    with grpc.insecure_channel(model.grpc) as channel:
        answer = pb_grpc.ModelStub(channel).Predict(request, timeout=10)
        assert list(answer.data.tensor.shape) == [1, 3]
        assert list(answer.data.names) == ["a", "b", "c"]
        # the external Seldon service also answers on a component, like Seldon's wrapper
        assert (
            pb_grpc.SeldonStub(channel).Predict(request, timeout=10).data.WhichOneof("data_oneof") == "tensor"
        )


def test_sigterm_drains_and_exits_cleanly(start_microservice: Callable[..., Server]) -> None:
    service = start_microservice("LinearSoftmax", cwd=MODELS, workers=2)
    assert httpx.post(f"{service.url}/predict", json={"data": {"ndarray": X}}).status_code == 200
    service.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    while service.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.process.returncode == 0


def test_bad_parameters_are_one_sentence() -> None:
    import subprocess

    result = subprocess.run(
        [
            seldon_bin(),
            "microservice",
            "LinearSoftmax",
            "--parameters",
            '[{"name":"scale","value":"x","type":"FLOAT"}]',
        ],
        cwd=MODELS,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "scale" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_class_that_cannot_load_stops_a_multi_worker_server_with_its_sentence(tmp_path: Path) -> None:
    # Every worker would fail alike: the server says why once per worker and stops, instead of
    # restarting them until "workers keep dying" with a traceback each time.
    import subprocess

    from tests.helpers import free_port

    (tmp_path / "NoWeights.py").write_text(
        "class NoWeights:\n"
        "    def load(self):\n"
        "        raise FileNotFoundError('weights.bin is missing')\n"
        "    def predict(self, X, names):\n"
        "        return X\n"
    )
    result = subprocess.run(
        [seldon_bin(), "microservice", "NoWeights", "--workers", "2",
         "--http-port", str(free_port()), "--grpc-port", str(free_port())],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "weights.bin is missing" in result.stderr
    assert "Traceback" not in result.stderr and "keep dying" not in result.stderr
