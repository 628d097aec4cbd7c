"""predict / transform_*: calling conventions, answer forms, names, meta and errors."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.components.response import ComponentResponse
from seldon_serving.protocol.errors import BadMetric, BadRequest, SeldonError, UserCodeError
from seldon_serving.protocol.json_codec import decode_message
from tests.components._util import as_json, predict, run

NDARRAY_REQ = {"data": {"names": ["a", "b"], "ndarray": [[1, 2]]}}
TENSOR_REQ = {"data": {"names": ["a", "b"], "tensor": {"shape": [1, 2], "values": [1.0, 2.0]}}}
TFTENSOR_REQ = {
    "data": {
        "tftensor": {
            "dtype": "DT_FLOAT",
            "tensorShape": {"dim": [{"size": "1"}, {"size": "2"}]},
            "floatVal": [1, 2],
        }
    }
}


class Doubler:
    def predict(self, X: np.ndarray, feature_names: list[str]) -> np.ndarray:
        return X * 2


# --- answer forms ----------------------------------------------------------------------------


def test_ndarray_request_gets_ndarray_answer_with_t_names() -> None:
    assert predict(Doubler(), NDARRAY_REQ) == {"data": {"names": ["t:0", "t:1"], "ndarray": [[2, 4]]}}


def test_tensor_request_gets_tensor_answer() -> None:
    answer = predict(Doubler(), TENSOR_REQ)
    assert answer["data"] == {"names": ["t:0", "t:1"], "tensor": {"shape": [1, 2], "values": [2.0, 4.0]}}


def test_tftensor_request_gets_tftensor_answer_typed_from_the_array() -> None:
    class Probabilities:
        def predict(self, X: np.ndarray, names: list[str]) -> np.ndarray:
            assert X.dtype == np.float32 and X.tolist() == [[1.0, 2.0]]
            return np.array([[0.25, 0.75]])  # float64

    message = run(ComponentAdapter(Probabilities()).predict(decode_message(TFTENSOR_REQ)))
    assert message.form == "tftensor"
    assert message.tf_dtype == "DT_DOUBLE"
    assert message.payload.tolist() == [[0.25, 0.75]]
    assert message.names == ["t:0", "t:1"]


def test_non_numeric_answer_is_ndarray_even_for_tensor_request() -> None:
    class Labeller:
        def predict(self, X: np.ndarray, names: list[str]) -> list[str]:
            return ["setosa", "virginica"]

    assert predict(Labeller(), TENSOR_REQ)["data"] == {"names": [], "ndarray": ["setosa", "virginica"]}


def test_numeric_answer_to_str_request_is_tensor() -> None:
    class Lengths:
        def predict(self, X: str, names: list[str]) -> list[int]:
            return [len(X), 0, 1]

    answer = predict(Lengths(), {"strData": "hello"})
    assert answer["data"] == {"names": [], "tensor": {"shape": [3], "values": [5.0, 0.0, 1.0]}}


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ({"label": "cat"}, {"jsonData": {"label": "cat"}}),
        ("a cat", {"strData": "a cat"}),
        (b"\x00\x01", {"binData": "AAE="}),
    ],
)
def test_dict_str_bytes_answers(returned: Any, expected: dict[str, Any]) -> None:
    class Model:
        def predict(self, X: Any, names: list[str]) -> Any:
            return returned

    assert predict(Model(), NDARRAY_REQ) == expected


def test_non_array_payloads_reach_predict_unchanged() -> None:
    seen: list[Any] = []

    class Model:
        def predict(self, X: Any, names: list[str]) -> Any:
            seen.append(X)
            return X

    assert predict(Model(), {"jsonData": {"q": [1, 2]}}) == {"jsonData": {"q": [1, 2]}}
    assert predict(Model(), {"binData": "AAE="}) == {"binData": "AAE="}
    assert seen == [{"q": [1, 2]}, b"\x00\x01"]


def test_unknown_return_type_is_a_clear_error() -> None:
    class Model:
        def predict(self, X: Any, names: list[str]) -> Any:
            return 3.5

    with pytest.raises(BadRequest, match="Unknown data type returned as payload"):
        predict(Model(), NDARRAY_REQ)


def test_one_dimensional_answer_has_no_names() -> None:
    class Model:
        def predict(self, X: Any, names: list[str]) -> Any:
            return np.array([0.1, 0.9])

    assert predict(Model(), NDARRAY_REQ)["data"] == {"names": [], "ndarray": [0.1, 0.9]}


# --- class names -----------------------------------------------------------------------------


def test_class_names_attribute_names_the_columns() -> None:
    class Iris(Doubler):
        def __init__(self) -> None:
            self.class_names = ["setosa", "versicolor"]

    assert predict(Iris(), NDARRAY_REQ)["data"]["names"] == ["setosa", "versicolor"]


def test_class_names_method_names_the_columns() -> None:
    class Iris(Doubler):
        def class_names(self) -> list[str]:
            return ["yes", "no"]

    assert predict(Iris(), TENSOR_REQ)["data"]["names"] == ["yes", "no"]


def test_class_names_set_in_load_are_seen() -> None:
    class Late(Doubler):
        def load(self) -> None:
            self.class_names = ["x", "y"]

    adapter = ComponentAdapter(Late())
    adapter.load()
    assert as_json(run(adapter.predict(decode_message(NDARRAY_REQ))))["data"]["names"] == ["x", "y"]


# --- calling conventions ---------------------------------------------------------------------


def test_meta_is_passed_when_the_signature_takes_it() -> None:
    seen: list[Any] = []

    class WithMeta:
        def predict(self, X: Any, features_names: list[str], meta: dict[str, Any] | None = None) -> Any:
            seen.append((features_names, meta))
            return X

    class WithKwargs:
        def predict(self, X: Any, features_names: list[str], **kwargs: Any) -> Any:
            seen.append(kwargs)
            return X

    request = {**NDARRAY_REQ, "meta": {"puid": "abc", "tags": {"t": 1}}}
    predict(WithMeta(), request)
    predict(WithKwargs(), request)
    assert seen[0] == (["a", "b"], {"puid": "abc", "tags": {"t": 1}})
    assert seen[1] == {"meta": {"puid": "abc", "tags": {"t": 1}}}


def test_type_error_inside_old_style_predict_is_not_retried() -> None:
    calls = []

    class Old:
        def predict(self, X: Any, feature_names: list[str]) -> Any:
            calls.append(1)
            raise TypeError("unsupported operand")

    with pytest.raises(UserCodeError, match="unsupported operand"):
        predict(Old(), NDARRAY_REQ)
    assert calls == [1]  # the signature decided: no second call with other arguments


def test_async_methods_are_awaited() -> None:
    class AsyncModel:
        async def predict(self, X: Any, names: list[str]) -> Any:
            await asyncio.sleep(0)
            return X + 1

        async def tags(self) -> dict[str, Any]:
            return {"async": True}

    answer = predict(AsyncModel(), NDARRAY_REQ)
    assert answer["data"]["ndarray"] == [[2, 3]]
    assert answer["meta"]["tags"] == {"async": True}


def test_sync_methods_run_in_the_executor_when_given() -> None:
    threads: list[str] = []

    class Model:
        def predict(self, X: Any, names: list[str]) -> Any:
            threads.append(threading.current_thread().name)
            return X

    with ThreadPoolExecutor(1, thread_name_prefix="user-pool") as pool:
        predict(Model(), NDARRAY_REQ, executor=pool)
    predict(Model(), NDARRAY_REQ)
    assert threads[0].startswith("user-pool")
    assert threads[1] == threading.current_thread().name  # inline without an executor


def test_missing_predict_answers_empty_and_transforms_are_identity() -> None:
    class Nothing:
        pass

    adapter = ComponentAdapter(Nothing())
    request = decode_message(NDARRAY_REQ)
    assert as_json(run(adapter.predict(request)))["data"] == {"names": [], "ndarray": []}
    assert as_json(run(adapter.transform_input(request)))["data"] == NDARRAY_REQ["data"]
    assert as_json(run(adapter.transform_output(request)))["data"] == NDARRAY_REQ["data"]
    assert not adapter.implements("predict") and not adapter.implements("transform_input")


def test_transformers_follow_the_class_names_rule() -> None:
    class Scale:
        def transform_input(self, X: Any, names: list[str]) -> Any:
            return X / 2

        def transform_output(self, X: Any, names: list[str]) -> Any:
            return X * 10

    adapter = ComponentAdapter(Scale())
    request = decode_message(TENSOR_REQ)
    assert as_json(run(adapter.transform_input(request)))["data"] == {
        "names": ["t:0", "t:1"],
        "tensor": {"shape": [1, 2], "values": [0.5, 1.0]},
    }
    assert as_json(run(adapter.transform_output(request)))["data"]["tensor"]["values"] == [10.0, 20.0]


# --- meta ------------------------------------------------------------------------------------


class Tagged(Doubler):
    def tags(self) -> dict[str, Any]:
        return {"model": "v2", "shared": "from-tags"}

    def metrics(self) -> list[dict[str, Any]]:
        return [{"type": "COUNTER", "key": "calls", "value": 1}]


def test_meta_merges_request_class_and_runtime_parts() -> None:
    class Runtime(Tagged):
        def predict(self, X: Any, names: list[str]) -> Any:
            return ComponentResponse(
                X, tags={"shared": "from-runtime"}, metrics=[{"type": "GAUGE", "key": "g", "value": 0.5}]
            )

    request = {
        **NDARRAY_REQ,
        "meta": {
            "puid": "p-1",
            "tags": {"incoming": 1, "shared": "from-request"},
            "routing": {"router": 0},
            "requestPath": {"upstream": "img:1"},
            "metrics": [{"type": "TIMER", "key": "t", "value": 3}],
        },
    }
    meta = predict(Runtime(), request, unit_id="model", image="me:2")["meta"]
    assert meta["puid"] == "p-1"
    assert meta["tags"] == {"incoming": 1, "shared": "from-runtime", "model": "v2"}
    assert meta["routing"] == {"router": 0}
    assert meta["requestPath"] == {"model": "me:2", "upstream": "img:1"}
    assert [m["key"] for m in meta["metrics"]] == ["t", "calls", "g"]


def test_no_unit_id_means_no_request_path_and_empty_meta_is_omitted() -> None:
    assert "meta" not in predict(Doubler(), NDARRAY_REQ)


def test_seldon_response_like_objects_are_unwrapped() -> None:
    class SeldonResponse:  # the shape of seldon_core.user_model.SeldonResponse
        def __init__(self, data: Any, tags: Any = None, metrics: Any = None) -> None:
            self.data, self.tags, self.metrics = data, tags or {}, metrics or []

    class Model:
        def predict(self, X: Any, names: list[str]) -> Any:
            return SeldonResponse([[1.0]], tags={"runtime": "yes"})

    answer = predict(Model(), NDARRAY_REQ)
    assert answer == {"data": {"names": ["t:0"], "ndarray": [[1.0]]}, "meta": {"tags": {"runtime": "yes"}}}


@pytest.mark.parametrize(
    ("metric", "problem"),
    [
        ({"type": "COUNTER", "value": 1}, "'key'"),
        ({"type": "SUMMARY", "key": "k", "value": 1}, "'type'"),
        ({"type": "GAUGE", "key": "k", "value": "high"}, "'value'"),
        ({"type": "GAUGE", "key": "k", "value": 1, "tags": {"a": 1}}, "'tags'"),
    ],
)
def test_bad_metric_is_named(metric: dict[str, Any], problem: str) -> None:
    class Model(Doubler):
        def metrics(self) -> list[dict[str, Any]]:
            return [metric]

    with pytest.raises(BadMetric) as caught:
        predict(Model(), NDARRAY_REQ)
    assert problem in str(caught.value) and "metrics()" in str(caught.value)
    assert caught.value.status()["reason"] == "MICROSERVICE_BAD_METRIC"


def test_metrics_go_to_the_sink_with_seldons_method_tag() -> None:
    received: list[tuple[list[dict[str, Any]], str]] = []
    adapter = ComponentAdapter(Tagged(), on_metrics=lambda metrics, tag: received.append((metrics, tag)))
    run(adapter.predict(decode_message(NDARRAY_REQ)))
    run(adapter.transform_input(decode_message(NDARRAY_REQ)))
    assert received == [
        ([{"key": "calls", "type": "COUNTER", "value": 1.0}], "predict"),
        ([{"key": "calls", "type": "COUNTER", "value": 1.0}], "inputtransform"),
    ]


def test_metrics_can_be_kept_out_of_the_answer() -> None:
    answer = predict(Tagged(), NDARRAY_REQ, include_metrics_in_response=False)
    assert "metrics" not in answer["meta"] and answer["meta"]["tags"]["model"] == "v2"


# --- errors ----------------------------------------------------------------------------------


def test_user_exception_becomes_500_with_its_message_only() -> None:
    class Failing:
        def predict(self, X: Any, names: list[str]) -> Any:
            raise ValueError("model weights not loaded")

    with pytest.raises(UserCodeError) as caught:
        predict(Failing(), NDARRAY_REQ)
    assert caught.value.status() == {
        "code": -1,
        "info": "model weights not loaded",
        "reason": "MICROSERVICE_INTERNAL_ERROR",
        "status": "FAILURE",
    }
    assert caught.value.http_status == 500


def test_seldon_microservice_exception_keeps_status_and_reason() -> None:
    class SeldonMicroserviceException(Exception):  # the shape of seldon-core's exception
        status_code = 400

        def __init__(
            self, message: str, status_code: int | None = None, reason: str = "MICROSERVICE_BAD_DATA"
        ):
            super().__init__()
            self.message = message
            if status_code is not None:
                self.status_code = status_code
            self.reason = reason

    class Picky:
        def predict(self, X: Any, names: list[str]) -> Any:
            raise SeldonMicroserviceException("need 4 features", status_code=422, reason="WRONG_SHAPE")

    with pytest.raises(SeldonError) as caught:
        predict(Picky(), NDARRAY_REQ)
    assert caught.value.http_status == 422
    assert caught.value.status()["reason"] == "WRONG_SHAPE"
    assert str(caught.value) == "need 4 features"


def test_ragged_ndarray_answer_is_still_an_ndarray() -> None:
    class Ragged:
        def predict(self, X: Any, names: list[str]) -> Any:
            return [[1, 2], [3]]

    assert predict(Ragged(), NDARRAY_REQ)["data"] == {"names": [], "ndarray": [[1, 2], [3]]}
