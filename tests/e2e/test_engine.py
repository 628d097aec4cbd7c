"""`seldon engine`, the pod-side engine, as Seldon's operator starts it: configured by
ENGINE_PREDICTOR (or ./deploymentdef.json), DEPLOYMENT_NAME and the ENGINE_SERVER_* ports."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests import helpers
from tests.helpers import free_port, seldon_bin

pytestmark = pytest.mark.slow

REQUEST = {"data": {"ndarray": [[1.0, 2.0]]}}


def encoded(predictor: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(predictor).encode()).decode()


def engine(env: dict[str, str], cwd: Path) -> Any:
    http, grpc_port = free_port(), free_port()
    env = {"ENGINE_SERVER_PORT": str(http), "ENGINE_SERVER_GRPC_PORT": str(grpc_port), **env}
    return (
        helpers.running(
            [seldon_bin(), "engine", "--host", "127.0.0.1"],
            cwd=cwd,
            env=env,
            ready_url=f"http://127.0.0.1:{http}/live",
            ready_port=grpc_port,
        ),
        http,
        grpc_port,
    )


def test_engine_serves_the_predictor_it_is_given_over_rest_and_grpc(
    start_microservice: Any, tmp_path: Path
) -> None:
    model = start_microservice("seldon_serving.components.builtin.MockClassifier")
    predictor = {
        "name": "main",
        "traffic": 50,  # the Mappings' business: the engine serves whatever reaches it
        "annotations": {"seldon.io/rest-read-timeout": "2000"},
        "graph": {
            "name": "ab",
            "implementation": "RANDOM_ABTEST",
            "parameters": [{"name": "ratioA", "value": "1.0", "type": "FLOAT"}],
            "children": [
                {
                    "name": "classifier",
                    "type": "MODEL",
                    "endpoint": {
                        "service_host": "127.0.0.1",
                        "service_port": model.http_port,
                        "type": "REST",
                    },
                },
                {"name": "other", "type": "MODEL", "implementation": "SIMPLE_MODEL"},
            ],
        },
        "componentSpecs": [
            {"spec": {"containers": [{"name": "classifier", "image": "seldonio/mock_classifier:1.0"}]}}
        ],
    }
    running, http, grpc_port = engine(
        {"ENGINE_PREDICTOR": encoded(predictor), "DEPLOYMENT_NAME": "dep"}, tmp_path
    )
    with running, httpx.Client(timeout=10) as client:
        for version in ("v0.1", "v1.0"):
            answer = client.post(f"http://127.0.0.1:{http}/api/{version}/predictions", json=REQUEST).json()
            assert answer["meta"]["routing"] == {"ab": 0}
            assert answer["meta"]["requestPath"] == {
                "ab": "RANDOM_ABTEST",
                "classifier": "seldonio/mock_classifier:1.0",
            }
            feedback = {"request": REQUEST, "response": answer, "reward": 1}
            assert (
                client.post(f"http://127.0.0.1:{http}/api/{version}/feedback", json=feedback).status_code
                == 200
            )
        assert client.get(f"http://127.0.0.1:{http}/ping").text == "pong"
        assert client.get(f"http://127.0.0.1:{http}/ready").text == "ready"
        assert (
            "seldon_api_executor_server_requests_seconds"
            in client.get(f"http://127.0.0.1:{http}/prometheus").text
        )
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            message = pb.SeldonMessage()
            message.data.ndarray.values.add().list_value.values.add().number_value = 1.0
            answer_pb = pb_grpc.SeldonStub(channel).Predict(message, metadata=[("seldon", "dep")], timeout=10)
            assert answer_pb.meta.routing["ab"] == 0


def test_engine_is_not_ready_while_a_graph_container_is_unreachable(tmp_path: Path) -> None:
    closed = free_port()
    predictor = {
        "name": "main",
        "graph": {
            "name": "model",
            "type": "MODEL",
            "endpoint": {"service_host": "127.0.0.1", "service_port": closed, "type": "REST"},
        },
    }
    running, http, _ = engine({"ENGINE_PREDICTOR": encoded(predictor), "DEPLOYMENT_NAME": "dep"}, tmp_path)
    with running:
        ready = httpx.get(f"http://127.0.0.1:{http}/ready", timeout=10)
        assert ready.status_code == 503
        assert f"127.0.0.1:{closed} is unreachable" in ready.text
        assert httpx.get(f"http://127.0.0.1:{http}/live", timeout=10).text == "live"


def test_engine_reads_deploymentdef_json_else_serves_a_simple_model(tmp_path: Path) -> None:
    (tmp_path / "deploymentdef.json").write_text(
        json.dumps(
            {"name": "p", "graph": {"name": "from-file", "type": "MODEL", "implementation": "SIMPLE_MODEL"}}
        )
    )
    running, http, _ = engine({"DEPLOYMENT_NAME": "dep"}, tmp_path)
    with running:
        answer = httpx.post(f"http://127.0.0.1:{http}/api/v0.1/predictions", json=REQUEST, timeout=10).json()
        assert answer["meta"]["requestPath"] == {"from-file": "SIMPLE_MODEL"}
    empty = tmp_path / "empty"
    empty.mkdir()
    running, http, _ = engine({}, empty)
    with running:
        answer = httpx.post(f"http://127.0.0.1:{http}/api/v0.1/predictions", json=REQUEST, timeout=10).json()
        assert answer["data"]["names"] == ["class0", "class1", "class2"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "ENGINE_PREDICTOR is not base64 (of the predictor's JSON)"),
        (base64.b64encode(b"[1, 2]").decode(), "ENGINE_PREDICTOR must hold one predictor (a JSON object)"),
        (encoded({"name": "p", "graph": {"name": "m", "implementation": "NO_SUCH"}}), "NO_SUCH"),
    ],
)
def test_a_bad_predictor_stops_the_engine_with_one_sentence(value: str, message: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [seldon_bin(), "engine", "--http-port", str(free_port()), "--grpc-port", str(free_port())],
        env={**os.environ, "ENGINE_PREDICTOR": value},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
