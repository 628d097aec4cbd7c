"""*_raw methods: whole messages as JSON dicts, precedence, and falling back when not implemented."""

from __future__ import annotations

import json
from typing import Any

import pytest

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.protocol.errors import BadMetric, UserCodeError
from seldon_serving.protocol.json_codec import decode_message
from tests.components._util import as_json, feedback, run

TENSOR_REQ = {
    "data": {"names": ["a"], "tensor": {"shape": [1, 2], "values": [1.0, 2.0]}},
    "meta": {"puid": "r1"},
}


class SeldonNotImplementedError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


def test_predict_raw_gets_a_plain_json_dict_and_wins_over_predict() -> None:
    seen: list[Any] = []

    class Raw:
        def predict(self, X: Any, names: Any) -> Any:
            raise AssertionError("predict_raw takes precedence")

        def predict_raw(self, msg: dict[str, Any]) -> dict[str, Any]:
            seen.append(msg)
            json.dumps(msg)  # plain JSON: no numpy arrays inside
            values = msg["data"]["tensor"]["values"]
            return {"jsonData": {"sum": sum(values)}, "meta": {"tags": {"raw": True}}}

    adapter = ComponentAdapter(Raw(), unit_id="raw-model")
    assert adapter.implements("predict")
    answer = as_json(run(adapter.predict(decode_message(TENSOR_REQ))))
    # The raw answer is returned as the user built it (no meta added), as seldon-core does.
    assert answer == {"jsonData": {"sum": 3.0}, "meta": {"tags": {"raw": True}}}
    assert seen[0]["meta"] == {"puid": "r1"}
    assert seen[0]["data"]["tensor"] == {"shape": [1, 2], "values": [1.0, 2.0]}


def test_raw_not_implemented_falls_back_to_the_plain_method() -> None:
    class Fallback:
        def predict_raw(self, msg: dict[str, Any]) -> dict[str, Any]:
            raise SeldonNotImplementedError("predict_raw is not implemented")

        def predict(self, X: Any, names: Any) -> Any:
            return X + 1

    answer = as_json(run(ComponentAdapter(Fallback()).predict(decode_message(TENSOR_REQ))))
    assert answer["data"]["tensor"]["values"] == [2.0, 3.0]


def test_route_raw_and_aggregate_raw() -> None:
    class RawRouter:
        def route_raw(self, msg: dict[str, Any]) -> dict[str, Any]:
            return {"data": {"ndarray": [[len(msg["data"]["names"])]]}}

        def aggregate_raw(self, msgs: dict[str, Any]) -> dict[str, Any]:
            return {"strData": f"{len(msgs['seldonMessages'])} children"}

    adapter = ComponentAdapter(RawRouter())
    assert adapter.implements("route") and adapter.implements("aggregate")
    assert as_json(run(adapter.route(decode_message(TENSOR_REQ))))["data"]["ndarray"] == [[1]]
    children = [decode_message(TENSOR_REQ)] * 3
    assert as_json(run(adapter.aggregate(children))) == {"strData": "3 children"}


def test_send_feedback_raw_gets_the_feedback_dict() -> None:
    class RawFeedback:
        def send_feedback_raw(self, fb: dict[str, Any]) -> dict[str, Any]:
            return {"jsonData": {"reward": fb["reward"], "routing": fb["response"]["meta"]["routing"]}}

    body = {"request": TENSOR_REQ, "response": {"meta": {"routing": {"r": 2}}}, "reward": 0.5}
    assert feedback(ComponentAdapter(RawFeedback()), body) == {
        "jsonData": {"reward": 0.5, "routing": {"r": 2}}
    }


def test_health_status_raw() -> None:
    class RawHealth:
        def health_status_raw(self) -> dict[str, Any]:
            return {"strData": "warming up"}

    assert as_json(run(ComponentAdapter(RawHealth()).health_status())) == {"strData": "warming up"}


def test_raw_answer_that_is_not_a_message_is_a_user_error() -> None:
    class Wrong:
        def predict_raw(self, msg: dict[str, Any]) -> Any:
            return [1, 2, 3]

        def transform_input_raw(self, msg: dict[str, Any]) -> Any:
            return {"data": {"tensor": {"shape": [3], "values": [1]}}}

    adapter = ComponentAdapter(Wrong())
    with pytest.raises(UserCodeError, match=r"predict_raw\(\) must return a SeldonMessage dict, got list"):
        run(adapter.predict(decode_message(TENSOR_REQ)))
    with pytest.raises(UserCodeError, match=r"transform_input_raw\(\) returned an invalid SeldonMessage"):
        run(adapter.transform_input(decode_message(TENSOR_REQ)))


def test_metrics_in_a_raw_answer_are_checked_and_exported() -> None:
    received: list[tuple[Any, str]] = []

    class RawMetrics:
        def predict_raw(self, msg: dict[str, Any]) -> dict[str, Any]:
            return {"strData": "ok", "meta": {"metrics": [{"type": "GAUGE", "key": "load", "value": 0.3}]}}

    adapter = ComponentAdapter(RawMetrics(), on_metrics=lambda m, tag: received.append((m, tag)))
    answer = as_json(run(adapter.predict(decode_message(TENSOR_REQ))))
    assert answer["meta"]["metrics"][0]["key"] == "load"
    assert received[0][1] == "predict" and received[0][0][0]["value"] == pytest.approx(0.3)

    class RawBadMetric:
        def predict_raw(self, msg: dict[str, Any]) -> dict[str, Any]:
            return {"strData": "ok", "meta": {"metrics": [{"type": "GAUGE", "key": "", "value": 1}]}}

    with pytest.raises(BadMetric):
        run(ComponentAdapter(RawBadMetric()).predict(decode_message(TENSOR_REQ)))
