"""aggregate, health, metadata, load, method discovery and seldon-core base-class stubs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.components.loader import ComponentLoadError
from seldon_serving.protocol.errors import BadMetadata, BadRequest, NotImplementedByComponent
from seldon_serving.protocol.json_codec import decode_message
from tests.components._util import as_json, run

CHILD_A = {
    "data": {"names": ["p", "q"], "ndarray": [[0.2, 0.8]]},
    "meta": {
        "puid": "same",
        "tags": {"a": 1, "who": "A"},
        "requestPath": {"model-a": "a:1"},
        "metrics": [{"type": "COUNTER", "key": "a_calls", "value": 1}],
    },
}
CHILD_B = {
    "data": {"names": ["p", "q"], "ndarray": [[0.4, 0.6]]},
    "meta": {
        "puid": "same",
        "tags": {"b": 2, "who": "B"},
        "requestPath": {"model-b": "b:1"},
        "metrics": [{"type": "COUNTER", "key": "b_calls", "value": 1}],
    },
}


class Mean:
    def __init__(self) -> None:
        self.names_seen: list[list[list[str]]] = []

    def aggregate(self, Xs: list[np.ndarray], features_names: list[list[str]]) -> np.ndarray:
        self.names_seen.append(features_names)
        return np.mean(Xs, axis=0)


def test_aggregate_averages_and_merges_the_childrens_meta() -> None:
    mean = Mean()
    adapter = ComponentAdapter(mean, unit_id="combiner", image="mean:1")
    answer = as_json(run(adapter.aggregate([decode_message(CHILD_A), decode_message(CHILD_B)])))
    assert mean.names_seen == [[["p", "q"], ["p", "q"]]]
    assert answer["data"]["names"] == ["t:0", "t:1"]
    assert answer["data"]["ndarray"] == [[pytest.approx(0.3), pytest.approx(0.7)]]
    assert answer["meta"]["puid"] == "same"
    assert answer["meta"]["tags"] == {"a": 1, "b": 2, "who": "B"}
    assert answer["meta"]["requestPath"] == {"combiner": "mean:1", "model-a": "a:1", "model-b": "b:1"}
    assert [m["key"] for m in answer["meta"]["metrics"]] == ["a_calls", "b_calls"]


def test_aggregate_missing_or_empty() -> None:
    class Model:
        pass

    adapter = ComponentAdapter(Model())
    with pytest.raises(NotImplementedByComponent, match=r"^Aggregate not defined$"):  # Seldon's words
        run(adapter.aggregate([decode_message(CHILD_A)]))
    with pytest.raises(BadRequest, match="at least one message"):
        run(ComponentAdapter(Mean()).aggregate([]))


def test_aggregate_answer_keeps_the_first_childs_form() -> None:
    tensor_child = {"data": {"tensor": {"shape": [1, 2], "values": [1, 3]}}}
    answer = as_json(run(ComponentAdapter(Mean()).aggregate([decode_message(tensor_child)] * 2)))
    assert answer["data"]["tensor"] == {"shape": [1, 2], "values": [1.0, 3.0]}


def test_health_default_and_custom() -> None:
    class Plain:
        pass

    class Custom:
        def health_status(self) -> Any:
            return {"gpu": "ok"}

    assert as_json(run(ComponentAdapter(Plain()).health_status())) == {"strData": "healthy"}
    assert as_json(run(ComponentAdapter(Custom()).health_status())) == {"jsonData": {"gpu": "ok"}}


def test_metadata_defaults_come_from_the_image() -> None:
    class Plain:
        pass

    assert ComponentAdapter(Plain(), image="seldonio/mock_classifier:1.0").metadata() == {
        "name": "seldonio/mock_classifier",
        "versions": ["1.0"],
        "platform": "",
        "inputs": [],
        "outputs": [],
        "custom": {},
    }


def test_init_metadata_overrides_defaults() -> None:
    class Described:
        def init_metadata(self) -> dict[str, Any]:
            return {
                "name": "iris",
                "versions": ["2"],
                "platform": "sklearn",
                "inputs": [{"messagetype": "ndarray", "schema": {"names": ["a", "b"], "shape": [2]}}],
                "outputs": [{"name": "proba", "datatype": "FP64", "shape": [1, 3]}],
                "custom": {"author": "me"},
            }

    document = ComponentAdapter(Described(), image="x:1").metadata()
    assert document["name"] == "iris" and document["platform"] == "sklearn"
    assert document["outputs"][0]["datatype"] == "FP64"
    assert ComponentAdapter(Described()).implements("init_metadata")


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ({"versions": "1"}, "'versions' must be a list of strings"),
        ({"inputs": [{"messagetype": "tensor", "schema": {"shape": ["x"]}}]}, r"inputs\[0\] is invalid"),
        ({"outputs": [{"datatype": "FLOAT"}]}, r"outputs\[0\] is invalid"),
        ({"colour": "red"}, "unknown field"),
        (["not", "a", "dict"], "must return a dict"),
    ],
)
def test_invalid_metadata_is_bad_metadata(returned: Any, message: str) -> None:
    class Described:
        def init_metadata(self) -> Any:
            return returned

    adapter = ComponentAdapter(Described())
    with pytest.raises(BadMetadata, match=message) as caught:
        adapter.metadata()
    assert caught.value.status()["reason"] == "MICROSERVICE_BAD_METADATA"


def test_load_runs_once_and_failures_are_explained() -> None:
    class Heavy:
        loads = 0

        def load(self) -> None:
            Heavy.loads += 1

    adapter = ComponentAdapter(Heavy())
    adapter.load()
    adapter.load()
    assert Heavy.loads == 1

    class Broken:
        def load(self) -> None:
            raise FileNotFoundError("/mnt/models/model.joblib")

    with pytest.raises(ComponentLoadError, match=r"Broken.load\(\) failed: FileNotFoundError: /mnt/models"):
        ComponentAdapter(Broken()).load()


def test_async_load() -> None:
    class AsyncLoad:
        ready = False

        async def load(self) -> None:
            self.ready = True

    user = AsyncLoad()
    ComponentAdapter(user).load()  # no loop running: run to completion
    assert user.ready
    user2 = AsyncLoad()
    run(ComponentAdapter(user2).load_async())
    assert user2.ready


# --- seldon-core's SeldonComponent base class ------------------------------------------------


class SeldonNotImplementedError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class SeldonComponent:
    """Stand-in for seldon_core.user_model.SeldonComponent: every method a raising stub."""

    def predict(self, X: Any, names: Any, meta: Any = None) -> Any:
        raise SeldonNotImplementedError("predict is not implemented")

    def route(self, features: Any, feature_names: Any) -> Any:
        raise SeldonNotImplementedError("route is not implemented")

    def tags(self) -> Any:
        raise SeldonNotImplementedError("tags is not implemented")

    def class_names(self) -> Any:
        raise SeldonNotImplementedError("class_names is not implemented")

    def predict_raw(self, msg: Any) -> Any:
        raise SeldonNotImplementedError("predict_raw is not implemented")


for _stub in vars(SeldonComponent).values():
    if callable(_stub):
        _stub.__module__ = "seldon_core.user_model"


def test_inherited_stubs_count_as_missing() -> None:
    class Model(SeldonComponent):
        def predict(self, X: Any, names: Any, meta: Any = None) -> Any:
            return X * 3

    adapter = ComponentAdapter(Model())
    assert adapter.implements("predict") and not adapter.implements("route")
    assert "predict_raw" not in adapter.methods and "tags" not in adapter.methods
    answer = as_json(run(adapter.predict(decode_message({"data": {"ndarray": [[1, 2]]}}))))
    assert answer == {"data": {"names": ["t:0", "t:1"], "ndarray": [[3, 6]]}}


def test_not_implemented_raised_at_runtime_falls_back() -> None:
    class Maybe:
        def predict(self, X: Any, names: Any) -> Any:
            raise SeldonNotImplementedError("not today")

        def class_names(self) -> Any:
            raise SeldonNotImplementedError("none")

        def transform_input(self, X: Any, names: Any) -> Any:
            raise SeldonNotImplementedError("none")

    adapter = ComponentAdapter(Maybe())
    request = decode_message({"data": {"names": ["a"], "ndarray": [[1]]}})
    assert as_json(run(adapter.predict(request)))["data"] == {"names": [], "ndarray": []}
    assert as_json(run(adapter.transform_input(request)))["data"] == {"names": ["a"], "ndarray": [[1]]}


def test_not_implemented_from_route_is_a_400() -> None:
    class Router:
        def route(self, X: Any, names: Any) -> Any:
            raise SeldonNotImplementedError("no routing today")

    with pytest.raises(NotImplementedByComponent, match="no routing today") as caught:
        run(ComponentAdapter(Router()).route(decode_message({"data": {"ndarray": [[1]]}})))
    assert caught.value.http_status == 400
