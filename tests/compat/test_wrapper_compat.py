"""Our microservice against seldon-core's own wrapper, request by request over REST: status
codes and bodies compared exactly (bytes, where Seldon's answer is the contract), for what
a user of the wrapper meets at its edges."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.compat.conftest import run_seldon_client

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


@pytest.fixture(scope="module")
def echo(servers_for: Any) -> tuple[Any, Any]:
    return servers_for("Echo", "MODEL")


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


def test_aggregate_takes_a_bare_list_of_messages(servers_for: Any) -> None:
    combiner = servers_for("MeanCombiner", "COMBINER")
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


def test_a_class_written_against_seldon_cores_api_runs_unchanged(servers_for: Any) -> None:
    # Under the wrapper `seldon_core` is the real package; under ours, our stand-in (the real
    # one is not installed beside us).
    sides = servers_for("UsesSeldonApi", "MODEL")
    body = {"data": {"ndarray": [[1.0, 2.0]]}}
    ours, theirs = (post(side, "/predict", body) for side in sides)
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content
    assert ours.json()["meta"]["tags"] == {"doubled": True}
    ours, theirs = (post(side, "/predict", {"data": {"ndarray": [[-1.0]]}}) for side in sides)
    assert ours.status_code == theirs.status_code == 422
    assert ours.content == theirs.content
    ours, theirs = (post(side, "/route", body) for side in sides)
    same_failure(ours, theirs)
    assert ours.json()["status"]["info"] == "no routing here"


def test_a_custom_application_error_keeps_its_status_and_body(servers_for: Any) -> None:
    sides = servers_for("CustomError", "MODEL")
    ours, theirs = (post(side, "/predict", {"data": {"ndarray": [[1.0]]}}) for side in sides)
    assert ours.status_code == theirs.status_code == 402
    assert ours.content == theirs.content
    assert ours.json()["status"] == {
        "status": 1,
        "info": "Test-Error-Msg",
        "code": 1402,
        "reason": "Application Error",
    }


def test_grpc_hooks_and_raw_methods_get_protobuf_over_grpc(servers_for: Any, compat_python: Any) -> None:
    hooks = servers_for("GrpcHooks", "MODEL")
    raw = servers_for("RawBoth", "MODEL")
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
