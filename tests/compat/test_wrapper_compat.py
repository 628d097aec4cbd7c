"""Our microservice against seldon-core's own wrapper, request by request over REST: status
codes and bodies compared exactly (bytes, where Seldon's answer is the contract), for what
a user of the wrapper meets at its edges."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.compat.conftest import MODELS, NO_TENSORFLOW, run_seldon_client
from tests.helpers import free_port, running, seldon_bin

pytestmark = [pytest.mark.compat, pytest.mark.slow]

FAILURE_FLAGS = (1, "FAILURE")  # proto3 JSON writes the enum by number (Flask) or by name (ours)


def post(endpoints: Any, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"http://{endpoints.rest()}{path}", json=body, timeout=30)


def same_failure(ours: httpx.Response, theirs: httpx.Response) -> None:
    assert ours.status_code == theirs.status_code, (ours.text, theirs.text)
    mine, seldons = ours.json()["status"], theirs.json()["status"]
    assert mine["status"] in FAILURE_FLAGS and seldons["status"] in FAILURE_FLAGS
    assert {k: v for k, v in mine.items() if k != "status"} == {
        k: v for k, v in seldons.items() if k != "status"
    }


NO_TF = {"tensorflow": False}  # none of these needs tftensors
OPERATOR_ENV = {  # what Seldon's operator sets in a graph container
    "PREDICTIVE_UNIT_ID": "node1",
    "PREDICTIVE_UNIT_IMAGE": "me/img:2.0",
    "SELDON_DEPLOYMENT_ID": "dep",
    "PREDICTOR_ID": "pred",
    "PREDICTOR_LABELS": '{"version": "v1"}',
}
METADATA = "name: my-model\nversions: [v3]\ninputs:\n- messagetype: ndarray\n  schema: {names: [a, b]}\n"


@pytest.fixture(scope="module")
def sides(servers_for: Any) -> dict[str, tuple[Any, Any]]:
    """Every (ours, the wrapper's) pair this module needs, started at once."""
    return servers_for(
        {
            "echo": ("Echo", "MODEL", NO_TF),
            "combiner": ("MeanCombiner", "COMBINER", NO_TF),
            "api": ("UsesSeldonApi", "MODEL", NO_TF),
            "custom": ("CustomError", "MODEL", NO_TF),
            "hooks": ("GrpcHooks", "MODEL", NO_TF),
            "raw": ("RawBoth", "MODEL", NO_TF),
            "metadata": ("Echo", "MODEL", {**NO_TF, "env": {"MODEL_METADATA": METADATA}}),
            "bad-metadata": ("Echo", "MODEL", {**NO_TF, "env": {"MODEL_METADATA": "versions: 3"}}),
            "metrics": ("MetricsModel", "MODEL", {**NO_TF, "env": OPERATOR_ENV}),
            "no-metrics": (
                "MetricsModel",
                "MODEL",
                {**NO_TF, "env": {"INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false"}},
            ),
        }
    )


@pytest.fixture(scope="module")
def echo(sides: dict[str, tuple[Any, Any]]) -> tuple[Any, Any]:
    return sides["echo"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", {"data": {"ndarray": [[1, 2], [3, 4]]}}),
        ("/predict", {"data": {"names": ["a", "b"], "ndarray": [[1.5, -2.0]]}}),
        ("/predict", {"data": {"tensor": {"shape": [1, 2], "values": [1.0, 2.5]}}}),
        ("/predict", {"strData": "hello"}),
        ("/predict", {"jsonData": {"z": 1, "a": {"y": [1, 2], "b": None}}}),
        ("/api/v1.0/predictions", {"data": {"ndarray": [[1]]}, "meta": {"tags": {"t": "v"}}}),
        ("/send-feedback", {"request": {"data": {"ndarray": [[1, 2]]}}, "reward": 1.0}),
        ("/api/v0.1/feedback", {"request": {"data": {"tensor": {"shape": [1, 1], "values": [2]}}}}),
        ("/send-feedback", {"response": {"meta": {"routing": {"x": 0}}}, "reward": 0.5}),
    ],
)
def test_answers_are_the_wrappers_byte_for_byte(echo: tuple[Any, Any], path: str, body: Any) -> None:
    ours, theirs = (post(side, path, body) for side in echo)
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content


@pytest.mark.parametrize("path", ["/predict", "/transform-input", "/transform-output", "/route"])
def test_a_request_without_data_is_refused_as_the_wrapper_does(echo: tuple[Any, Any], path: str) -> None:
    body = {"dta": {"ndarray": [[1]]}}
    ours, theirs = (post(side, path, body) for side in echo)
    same_failure(ours, theirs)
    assert ours.json()["status"]["info"] == "Invalid request data type: {'dta': {'ndarray': [[1]]}}"


def test_route_and_aggregate_not_defined_in_the_wrappers_words(echo: tuple[Any, Any]) -> None:
    for path, body, words in (
        ("/route", {"data": {"ndarray": [[1]]}}, "Route not defined"),
        ("/aggregate", {"seldonMessages": [{"data": {"ndarray": [[1]]}}]}, "Aggregate not defined"),
        ("/aggregate", [{"data": {"ndarray": [[1]]}}], "Aggregate not defined"),
    ):
        ours, theirs = (post(side, path, body) for side in echo)
        same_failure(ours, theirs)
        assert ours.json()["status"]["info"] == words


def test_aggregate_takes_a_bare_list_of_messages(sides: dict[str, tuple[Any, Any]]) -> None:
    combiner = sides["combiner"]
    messages = [{"data": {"ndarray": [[1.0, 2.0]]}}, {"data": {"ndarray": [[3.0, 4.0]]}}]
    for body in (messages, {"seldonMessages": messages}):
        ours, theirs = (post(side, "/aggregate", body) for side in combiner)
        assert ours.status_code == theirs.status_code == 200
        assert ours.content == theirs.content


def test_a_typo_inside_data_is_refused_where_the_wrapper_answers_nothing(echo: tuple[Any, Any]) -> None:
    # A deliberate difference: the wrapper answers 200 with an empty array for
    # {"data": {"ndarry": ...}}, a silent wrong answer; ours names the field.
    ours, theirs = (post(side, "/predict", {"data": {"ndarry": [[1, 2]]}}) for side in echo)
    assert theirs.status_code == 200 and theirs.json()["data"]["ndarray"] == []
    assert ours.status_code == 400
    status = ours.json()["status"]
    assert status["reason"] == "MICROSERVICE_BAD_DATA"
    assert status["info"] == "data.ndarry is not a field of data (names, ndarray, tensor, tftensor)"
    for path in ("/transform-input", "/route", "/send-feedback", "/aggregate"):
        body: Any = {"data": {"ndarry": [[1]]}}
        if path == "/send-feedback":
            body = {"request": body, "reward": 1}
        elif path == "/aggregate":
            body = [body]
        answer = post(echo[0], path, body)
        assert (
            answer.status_code == 400 and "ndarry is not a field of data" in answer.json()["status"]["info"]
        )


def test_a_class_written_against_seldon_cores_api_runs_unchanged(sides: dict[str, tuple[Any, Any]]) -> None:
    # Under the wrapper `seldon_core` is the real package; under ours, our stand-in (the real
    # one is not installed beside us).
    api = sides["api"]
    body = {"data": {"ndarray": [[1.0, 2.0]]}}
    ours, theirs = (post(side, "/predict", body) for side in api)
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content
    assert ours.json()["meta"]["tags"] == {"doubled": True}
    ours, theirs = (post(side, "/predict", {"data": {"ndarray": [[-1.0]]}}) for side in api)
    assert ours.status_code == theirs.status_code == 422
    assert ours.content == theirs.content
    ours, theirs = (post(side, "/route", body) for side in api)
    same_failure(ours, theirs)
    assert ours.json()["status"]["info"] == "no routing here"


def test_a_custom_application_error_keeps_its_status_and_body(sides: dict[str, tuple[Any, Any]]) -> None:
    ours, theirs = (post(side, "/predict", {"data": {"ndarray": [[1.0]]}}) for side in sides["custom"])
    assert ours.status_code == theirs.status_code == 402
    assert ours.content == theirs.content
    assert ours.json()["status"] == {
        "status": 1,
        "info": "Test-Error-Msg",
        "code": 1402,
        "reason": "Application Error",
    }


def test_grpc_hooks_and_raw_methods_get_protobuf_over_grpc(
    sides: dict[str, tuple[Any, Any]], compat_python: Any
) -> None:
    hooks, raw = sides["hooks"], sides["raw"]
    calls = []
    for sides, method in ((hooks, "predict"), (hooks, "transform-input"), (hooks, "route"), (raw, "predict")):
        for side in sides:
            calls.append(
                {
                    "call": "microservice",
                    "client": {"transport": "grpc", "microservice_endpoint": side.grpc_endpoint()},
                    "kwargs": {"method": method, "data": [[1.0, 2.0]]},
                }
            )
    for side in hooks:
        calls.append(
            {
                "call": "microservice_feedback",
                "client": {"transport": "grpc", "microservice_endpoint": side.grpc_endpoint()},
                "kwargs": {
                    "prediction_request": {"data": {"ndarray": [[1.0]]}},
                    "prediction_response": {"data": {"ndarray": [[3.0]]}},
                    "reward": 0.5,
                },
            }
        )
    results = run_seldon_client(compat_python, calls)
    for ours, theirs in zip(results[::2], results[1::2], strict=True):
        assert ours["success"] and theirs["success"], (ours, theirs)
        assert ours["response"] == theirs["response"]
    answers = [r["response"] for r in results[::2]]
    assert answers[0]["data"] == {"names": ["tripled"], "ndarray": [[3.0, 6.0]]}
    assert answers[1] == {"strData": "transform_input_grpc"}
    assert answers[3] == {"strData": "SeldonMessage"}
    assert answers[4] == {"strData": "feedback 0.5"}
    # over REST the same classes take their plain / dict paths, as under the wrapper
    for sides, body in ((hooks, {"data": {"ndarray": [[1.0]]}}), (raw, {"data": {"ndarray": [[1.0]]}})):
        ours, theirs = (post(side, "/predict", body) for side in sides)
        assert ours.status_code == theirs.status_code == 200
        assert ours.content == theirs.content


def test_model_metadata_from_the_environment(sides: dict[str, tuple[Any, Any]]) -> None:
    ours, theirs = (httpx.get(f"http://{side.rest()}/metadata", timeout=30) for side in sides["metadata"])
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content
    assert ours.json()["name"] == "my-model" and ours.json()["versions"] == ["v3"]
    bad = [httpx.get(f"http://{side.rest()}/metadata", timeout=30) for side in sides["bad-metadata"]]
    assert bad[0].status_code == bad[1].status_code == 500
    assert (
        bad[0].json()["status"]["reason"] == bad[1].json()["status"]["reason"] == "MICROSERVICE_BAD_METADATA"
    )


def samples(text: str) -> set[tuple[str, frozenset[tuple[str, str]], float]]:
    """Every sample of a Prometheus scrape, without the worker's id (a process id)."""
    out = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = frozenset((k, v) for k, v in sample.labels.items() if k != "worker_id")
            out.add((sample.name, labels, round(sample.value, 9)))
    return out


def wrapper_samples(text: str) -> set[tuple[str, frozenset[tuple[str, str]], float]]:
    """The samples of our scrape that the wrapper has too: without our request histogram."""
    return {s for s in samples(text) if not s[0].startswith("seldon_api_microservice_requests_seconds")}


def test_custom_metrics_are_exported_as_the_wrapper_exports_them(sides: dict[str, tuple[Any, Any]]) -> None:
    pair = sides["metrics"]
    for side in pair:
        assert post(side, "/predict", {"data": {"ndarray": [[1.0]]}}).status_code == 200
        feedback = {"request": {"data": {"ndarray": [[1.0]]}}, "reward": 0.5}
        assert post(side, "/send-feedback", feedback).status_code == 200
    ours, theirs = (httpx.get(f"http://127.0.0.1:{side.metrics}/metrics", timeout=30).text for side in pair)
    # our request histogram is an addition the wrapper does not have (docs/metrics.md)
    mine, seldons = wrapper_samples(ours), samples(theirs)
    assert mine == seldons
    names = {name for name, _, _ in mine}
    assert {"mycounter_total", "mygauge", "mytimer_bucket", "mytimer_sum", "mytimer_count"} <= names
    assert {"seldon_api_model_feedback_total", "seldon_api_model_feedback_reward_total"} <= names
    timer = next(
        labels for name, labels, _ in mine if name == "mytimer_count" and ("method", "predict") in labels
    )
    assert dict(timer) == {
        "mytag": "a",
        "method": "predict",
        "deployment_name": "dep",
        "seldon_deployment_name": "dep",
        "predictor_name": "pred",
        "predictor_version": "v1",
        "model_name": "node1",
        "model_image": "me/img",
        "image_name": "me/img",
        "model_version": "2.0",
        "image_version": "2.0",
    }
    # and on our REST port too
    rest = httpx.get(f"http://{pair[0].rest()}/metrics", timeout=30).text
    assert wrapper_samples(rest) == mine


def test_metrics_can_be_left_out_of_answers(sides: dict[str, tuple[Any, Any]]) -> None:
    ours, theirs = (post(side, "/predict", {"data": {"ndarray": [[1.0]]}}) for side in sides["no-metrics"])
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content
    assert "metrics" not in ours.json()["meta"]


def test_the_legacy_positional_form_serves_both_protocols(compat_python: Any) -> None:
    # `MyModel REST` (Seldon 0.x images' start command): seldon-core 1.18 refuses it ("this CLI
    # does not take API type"); ours takes it and serves both protocols, on the ports of the
    # environment, as 1.18 serves its own form.
    http, grpc_port = free_port(), free_port()
    env = {
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(http),
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(grpc_port),
        "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": str(free_port()),
    }
    args = [seldon_bin("seldon-core-microservice"), "Echo", "REST"]
    ready = f"http://127.0.0.1:{http}/health/ping"
    with running(args, cwd=MODELS, env=env, ready_url=ready, ready_port=grpc_port):
        assert (
            httpx.post(f"http://127.0.0.1:{http}/predict", json={"data": {"ndarray": [[1]]}}).status_code
            == 200
        )
    theirs = subprocess.run(
        [str(compat_python.parent / "seldon-core-microservice"), "Echo", "REST"],
        cwd=MODELS,
        env={**os.environ, **env, "PYTHONPATH": str(NO_TENSORFLOW), "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert theirs.returncode != 0 and "does not take API type" in theirs.stdout + theirs.stderr
